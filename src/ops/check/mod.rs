//! Check: prove that what a vault keeps is intact and, where it is not, say exactly which
//! packs, snapshots and file paths are affected.
//!
//! Structure (always): index files decode; every indexed pack exists and its own header agrees
//! with the index; snapshots decode; every tree they reach loads; every file's chunks are
//! indexed as data and add up to the file's size. With `--read-data` every selected pack is
//! downloaded whole, its name re-hashed, and every blob in it decrypted, decompressed and
//! re-hashed. Nothing is written.

mod files;
mod packs;
mod read_data;
pub mod record;
mod snapshots;
mod subset;

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::format::config::ConfigAuth;
use crate::format::id::Id;
use crate::ops::forget::ChainBreak;
use crate::vault::{CONFIG, Vault};

pub use subset::Subset;

/// How much data `check` reads.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ReadData {
    /// Structure only: index files, pack headers, snapshots and trees.
    #[default]
    None,
    All,
    Subset(Subset),
}

#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    pub read_data: ReadData,
    /// Read every pack header, even those this host's check record says were verified
    /// (formats/ §7.6).
    pub all_headers: bool,
}

/// One thing found wrong (or, as a warning, untidy but harmless).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// The object concerned: `pack <hex>`, `index/<hex>`, `snapshot <hex>`, `tree <hex>`, ...
    pub object: String,
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.object, self.detail)
    }
}

/// A snapshot that cannot be restored whole, and what of it is lost.
#[derive(Debug, Clone, Serialize)]
pub struct DamagedSnapshot {
    pub id: Id,
    /// Absent when the snapshot record itself cannot be read.
    pub time: Option<jiff::Timestamp>,
    pub host: String,
    pub label: String,
    /// Why the snapshot record cannot be read, if it cannot.
    pub unreadable: Option<String>,
    /// Files whose content cannot be restored exactly (original paths).
    pub files: Vec<String>,
    /// Directories whose listing cannot be read: nothing below them can be restored.
    pub dirs: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub snapshots: usize,
    pub index_files: usize,
    pub packs: usize,
    pub trees: usize,
    /// Distinct data blobs the snapshots use.
    pub data_blobs: usize,
    pub packs_read: usize,
    pub blobs_read: usize,
    pub bytes_read: u64,
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
    /// Packs that are missing, unreadable, or hold damaged blobs.
    pub damaged_packs: Vec<Id>,
    pub damaged_snapshots: Vec<DamagedSnapshot>,
    /// Snapshots another one names as its predecessor that are gone with no forget record
    /// naming them: deleted outside sitevault (formats/ §9.3).
    pub vanished_snapshots: Vec<ChainBreak>,
    /// Whether check kept its index in a working file (past `--index-memory`, formats/ §7.4).
    pub index_on_disk: bool,
    /// Pack headers read and compared with the index.
    pub headers_read: usize,
    /// Pack headers not read: this host verified them, with the same index listing, before
    /// (formats/ §7.6; `--all-headers` reads them all).
    pub headers_skipped: usize,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }
}

fn problem(object: impl Into<String>, detail: impl Into<String>) -> Problem {
    Problem {
        object: object.into(),
        detail: detail.into(),
    }
}

fn pack_label(id: &Id) -> String {
    format!("pack {}", id.to_hex())
}

/// What `check` learned about packs and blobs before it walks the snapshots.
#[derive(Default)]
struct Damage {
    packs: BTreeSet<Id>,
    /// (pack, blob) pairs that cannot be read back exactly.
    blobs: HashSet<(Id, Id)>,
}

/// Check `vault` (reading data as `opts` says) and report everything found wrong.
pub fn check(vault: &Vault, opts: &CheckOptions) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    let mut damage = Damage::default();
    check_config(vault, &mut report)?;
    let mut packs = packs::check_packs(vault, opts, &mut report, &mut damage)?;
    if opts.read_data != ReadData::None {
        read_data::read_data(vault, opts.read_data, &packs, &mut report, &mut damage)?;
    }
    let verified = std::mem::take(&mut packs.verified);
    save_record(
        vault,
        packs.record_path.as_deref(),
        verified,
        &damage,
        &mut report,
    );
    // Snapshots and everything they reach.
    let snaps = snapshots::check_snapshots(vault, &mut report)?;
    files::check_files(vault, &packs, &snaps, &damage, &mut report)?;
    report
        .damaged_snapshots
        .sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
    report.damaged_packs = damage.packs.into_iter().collect();
    Ok(report)
}

/// Check the config and key files: unauthenticated JSON, so their own checks come first.
fn check_config(vault: &Vault, report: &mut CheckReport) -> Result<()> {
    match vault.config_auth() {
        ConfigAuth::Verified => {}
        ConfigAuth::Missing => report.warnings.push(problem(
            CONFIG,
            "it carries no config_mac (written by an older sitevault), so damage to it cannot be detected",
        )),
        ConfigAuth::Failed(why) => report.errors.push(problem(
            CONFIG,
            format!(
                "{why}; stored data still reads correctly, but the chunking, compression and pack-size settings new backups use may not be the vault's"
            ),
        )),
    }
    for (name, why) in vault.damaged_key_files()? {
        report.errors.push(problem(name, why));
    }
    Ok(())
}

/// Write the record for the next check on this host: packs whose header agreed and whose data,
/// if read, was intact. A record that cannot be written only costs reads next time.
fn save_record(
    vault: &Vault,
    path: Option<&Path>,
    verified: Vec<(Id, record::Digest)>,
    damage: &Damage,
    report: &mut CheckReport,
) {
    let Some(path) = path else {
        return;
    };
    let digests = verified
        .into_iter()
        .filter(|(id, _)| !damage.packs.contains(id))
        .map(|(_, d)| d)
        .collect();
    if let Err(e) = record::save(vault, path, digests) {
        report.warnings.push(problem(
            record::RECORD_FILE,
            format!("{e}; the next check reads every pack header again"),
        ));
    }
}
