//! Check: prove that what a vault keeps is intact and, where it is not, say exactly which
//! packs, snapshots and file paths are affected.
//!
//! Structure (always): index files decode; every indexed pack exists and its own header agrees
//! with the index; snapshots decode; every tree they reach loads; every file's chunks are
//! indexed as data and add up to the file's size. With `--read-data` every selected pack is
//! downloaded whole, its name re-hashed, and every blob in it decrypted, decompressed and
//! re-hashed. Nothing is written.

pub mod record;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::config::ConfigAuth;
use crate::format::id::Id;
use crate::format::index::{IndexFile, IndexPack};
use crate::format::pack::{BlobKind, PackedBlob};
use crate::format::snapshot::Snapshot;
use crate::format::tree::NodeKind;
use crate::ops::check::record::Digest;
use crate::ops::forget::{ChainBreak, FORGETS, chain_breaks, scan_forgets};
use crate::vault::index::Index;
use crate::vault::{CONFIG, DATA, INDEX, SnapshotScan, Vault, pack_name};

/// Which packs `--read-data-subset` reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Subset {
    /// About this percentage of the packs, chosen at random each run.
    Percent(f64),
    /// Part `n` of `of` (1-based): stable across runs, so running 1/t … t/t reads every pack.
    Part { n: u64, of: u64 },
}

impl FromStr for Subset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Subset> {
        let bad = || {
            Error::InvalidInput(format!(
                "--read-data-subset {s:?}: give a percentage like 10% or a part like 1/7"
            ))
        };
        if let Some(p) = s.trim().strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(v > 0.0 && v <= 100.0) {
                return Err(bad());
            }
            return Ok(Subset::Percent(v));
        }
        let (n, of) = s.split_once('/').ok_or_else(bad)?;
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        let of: u64 = of.trim().parse().map_err(|_| bad())?;
        if n == 0 || of == 0 || n > of {
            return Err(bad());
        }
        Ok(Subset::Part { n, of })
    }
}

impl Subset {
    /// Whether pack `id` is read; `seed` makes percentage picks differ between runs.
    fn selects(&self, id: &Id, seed: &[u8; 32]) -> bool {
        match *self {
            Subset::Part { n, of } => {
                let v = u64::from_be_bytes(id.0[..8].try_into().expect("8 bytes"));
                v % of == n - 1
            }
            Subset::Percent(p) if p >= 100.0 => true,
            Subset::Percent(p) => {
                let h = blake3::keyed_hash(seed, &id.0);
                let v = u64::from_be_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"));
                (v as f64) < p / 100.0 * u64::MAX as f64
            }
        }
    }
}

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

/// Name every predecessor that vanished without a forget record, and damaged forget records.
fn tamper_evidence(vault: &Vault, snaps: &SnapshotScan, report: &mut CheckReport) -> Result<()> {
    let forgets = scan_forgets(vault)?;
    let present: HashSet<Id> = snaps
        .readable
        .iter()
        .map(|(id, _)| *id)
        .chain(snaps.unreadable.iter().map(|(id, _)| *id))
        .collect();
    let breaks = chain_breaks(&snaps.readable, &present, &forgets.forgotten());
    // A record that cannot be read matters only if it might explain a vanished snapshot;
    // otherwise it is a torn upload of a forget that deleted nothing (formats/ §9.3).
    for (id, e) in &forgets.unreadable {
        let object = format!("{FORGETS}/{}", id.to_hex());
        if !breaks.is_empty() {
            report.errors.push(problem(object, e.to_string()));
        } else if e.kind() == crate::error::ErrorKind::Corrupt {
            report.warnings.push(problem(
                object,
                format!(
                    "{e}; a torn upload of a forget that deleted nothing (no snapshot is missing without a record); `sitevault prune` removes it"
                ),
            ));
        } else {
            report.warnings.push(problem(object, e.to_string()));
        }
    }
    let caveat = if forgets.unreadable.is_empty() {
        ""
    } else {
        " (unless a damaged forget record names it)"
    };
    for b in &breaks {
        report.errors.push(problem(
            format!("snapshot {}", b.missing.to_hex()),
            format!(
                "gone, and no forget record names it{caveat}: it was the snapshot before {} (host {}, label {:?}, {}), so it was deleted outside sitevault (an attack or storage loss); on a versioned S3 bucket `--vault-as-of` a time before the deletion still reads it",
                b.successor.short(),
                b.host,
                b.label,
                b.before
            ),
        ));
    }
    report.vanished_snapshots = breaks;
    Ok(())
}

/// What is wrong with one listing of a pack in an index file.
enum Finding {
    /// The pack is not stored: the blobs the listing names.
    Missing(Vec<Id>),
    Disagrees(String),
    Unreadable(String),
}

/// Index files fetched at once (in parallel) by `check`.
const INDEX_BATCH: usize = 32;

/// What `read_data` needs to know of the packs.
struct ReadView<'a> {
    stored: &'a [(Id, u64)],
    /// Each listed pack with the index file (a number into `file_ids`) that lists it first.
    listed: &'a [(Id, u32, Digest)],
    file_ids: &'a [Id],
    unindexed: &'a [IndexPack],
}

/// What `check` learned about packs and blobs before it walks the snapshots.
#[derive(Default)]
struct Damage {
    packs: BTreeSet<Id>,
    /// (pack, blob) pairs that cannot be read back exactly.
    blobs: HashSet<(Id, Id)>,
}

pub fn check(vault: &Vault, opts: &CheckOptions) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    let mut damage = Damage::default();

    // The config and key files: unauthenticated JSON, so their own checks come first.
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

    // Index files, a batch at a time: each file's packs go into the index restore would use
    // and have their headers read and compared at once, so one batch is held decoded, never
    // the whole index (issue 18).
    let mut stored = vault.list_ids(DATA)?;
    stored.sort_unstable();
    report.packs = stored.len();
    let size_of = |id: &Id| {
        stored
            .binary_search_by(|(s, _)| s.cmp(id))
            .ok()
            .map(|i| stored[i].1)
    };
    let index_ids = vault.list_ids_union(INDEX, 1)?;
    report.index_files = index_ids.len();
    let expected = index_ids.iter().map(|(_, s)| *s).sum::<u64>() / 30;
    let mut builder = vault.index_builder(expected)?;
    // Headers this host verified before, with the listing they were compared with.
    let record_path = crate::ops::check::record::record_path(vault);
    let record = match &record_path {
        Some(p) if !opts.all_headers => crate::ops::check::record::HeaderRecord::load(vault, p),
        _ => crate::ops::check::record::HeaderRecord::default(),
    };
    let mut file_ids: Vec<Id> = Vec::new();
    let mut readable: Vec<bool> = Vec::new();
    let mut superseded: HashSet<Id> = HashSet::new();
    // Every (pack, file) listing with its digest (§7.6): a pack's first listing in a file in
    // force is the one checked.
    let mut listings: Vec<(Id, u32, Digest)> = Vec::new();
    // What is wrong with a listing; it counts only if its file turns out to be in force.
    let mut findings: HashMap<(Id, u32), Finding> = HashMap::new();
    for batch in index_ids.chunks(INDEX_BATCH) {
        let loaded: Vec<(Id, Result<IndexFile>)> = batch
            .par_iter()
            .map(|(id, _)| (*id, vault.read_index_file(id)))
            .collect();
        let mut to_read: Vec<(u32, &IndexPack, u64)> = Vec::new();
        for (id, r) in &loaded {
            let file = file_ids.len() as u32;
            file_ids.push(*id);
            readable.push(r.is_ok());
            let f = match r {
                Ok(f) => f,
                Err(e) => {
                    report.errors.push(problem(
                        format!("{INDEX}/{}", id.to_hex()),
                        format!(
                            "{e}; backup and restore stop on it until `sitevault repair index` (or `sitevault prune`) rebuilds the index from the pack headers"
                        ),
                    ));
                    continue;
                }
            };
            builder.add_file(*id, f)?;
            superseded.extend(f.supersedes.iter().copied());
            for p in &f.packs {
                let size = size_of(&p.id);
                // Digests matter only with a record to keep (one hash of each listing).
                let d = match (&record_path, size) {
                    (Some(_), Some(size)) => crate::ops::check::record::digest(p, size),
                    _ => Digest::default(),
                };
                listings.push((p.id, file, d));
                match size {
                    Some(_) if record.contains(&d) => report.headers_skipped += 1,
                    Some(size) => to_read.push((file, p, size)),
                    None => {
                        findings.insert(
                            (p.id, file),
                            Finding::Missing(p.blobs.iter().map(|b| b.id).collect()),
                        );
                    }
                }
            }
        }
        report.headers_read += to_read.len();
        let found: Vec<(Id, u32, Option<Finding>)> = to_read
            .par_iter()
            .map(|&(file, want, size)| {
                let f = match vault.read_pack_header(&want.id, size) {
                    Ok(got) => disagreement(want, &got, size).map(Finding::Disagrees),
                    Err(e) => Some(Finding::Unreadable(e.to_string())),
                };
                (want.id, file, f)
            })
            .collect();
        for (pack, file, f) in found {
            if let Some(f) = f {
                findings.insert((pack, file), f);
            }
        }
    }
    let stale = file_ids.iter().filter(|id| superseded.contains(id)).count();
    if stale > 0 {
        report.warnings.push(problem(
            INDEX,
            format!(
                "{stale} index file(s) are superseded but still stored (an interrupted prune); the next prune removes them"
            ),
        ));
    }

    // Each pack restore would read through the index: its first listing in a file in force.
    let in_force =
        |file: u32| readable[file as usize] && !superseded.contains(&file_ids[file as usize]);
    let mut listed: Vec<(Id, u32, Digest)> = listings
        .into_iter()
        .filter(|(_, file, _)| in_force(*file))
        .collect();
    listed.sort_unstable();
    listed.dedup_by_key(|(id, ..)| *id);
    let is_listed = |id: &Id| listed.binary_search_by(|(p, ..)| p.cmp(id)).is_ok();
    // What is found wrong is reported; what is not goes into the new record.
    let mut decided: Vec<(Id, Finding)> = Vec::new();
    let mut verified: Vec<(Id, Digest)> = Vec::new();
    for (id, file, d) in &listed {
        match findings.remove(&(*id, *file)) {
            Some(f) => decided.push((*id, f)),
            None if size_of(id).is_some() => verified.push((*id, *d)),
            None => {}
        }
    }
    drop(findings);
    // Missing packs first, then the headers that disagree or cannot be read, each by pack id.
    decided.sort_by_key(|(id, f)| (!matches!(f, Finding::Missing(_)), *id));
    for (id, f) in decided {
        damage.packs.insert(id);
        let detail = match f {
            Finding::Missing(blobs) => {
                let n = blobs.len();
                damage.blobs.extend(blobs.into_iter().map(|b| (id, b)));
                format!("listed in the index ({n} blobs) but missing from storage")
            }
            Finding::Disagrees(why) => format!("its header disagrees with the index: {why}"),
            Finding::Unreadable(e) => format!(
                "its header cannot be read: {e}; run `sitevault check --read-data` to see which blobs are affected, and `sitevault repair packs --from <vault>` to heal it from a copy"
            ),
        };
        report.errors.push(problem(pack_label(&id), detail));
    }

    // Packs no index file in force lists: their blobs tell "in no index, but recoverable"
    // from "lost".
    let orphans: Vec<(Id, u64)> = stored
        .iter()
        .filter(|(id, _)| !is_listed(id))
        .copied()
        .collect();
    let mut unindexed: Vec<IndexPack> = Vec::new();
    vault.each_pack_header(&orphans, &mut |id, h| {
        match h {
                Ok(got) => {
                    report.warnings.push(problem(
                        pack_label(&id),
                        "in no index (an interrupted backup or prune left it); the next backup or prune indexes it",
                    ));
                    unindexed.push(got);
                }
                Err(e) => report.warnings.push(problem(
                    pack_label(&id),
                    if e.kind() == crate::error::ErrorKind::Corrupt {
                        format!(
                            "in no index and damaged ({e}); nothing refers to it, and `sitevault prune` deletes it once every index file reads"
                        )
                    } else {
                        format!(
                            "in no index and its header cannot be read ({e}); nothing refers to it"
                        )
                    },
                )),
            }
        Ok(())
    })?;

    // The index restore would use: the index files' view of the packs.
    let index = builder.finish()?;
    report.index_on_disk = index.is_on_disk();
    let mut spare = Index::new();
    for p in &unindexed {
        spare.add_pack(p.id, p.kind, &p.blobs);
    }
    spare.finish();

    if opts.read_data != ReadData::None {
        let view = ReadView {
            stored: &stored,
            listed: &listed,
            file_ids: &file_ids,
            unindexed: &unindexed,
        };
        read_data(vault, opts.read_data, &view, &mut report, &mut damage)?;
    }
    // The record for the next check on this host: packs whose header agreed and whose data,
    // if read, was intact. A record that cannot be written only costs reads next time.
    if let Some(path) = &record_path {
        let digests = verified
            .into_iter()
            .filter(|(id, _)| !damage.packs.contains(id))
            .map(|(_, d)| d)
            .collect();
        if let Err(e) = crate::ops::check::record::save(vault, path, digests) {
            report.warnings.push(problem(
                crate::ops::check::record::RECORD_FILE,
                format!("{e}; the next check reads every pack header again"),
            ));
        }
    }

    // Snapshots and everything they reach.
    let snaps = vault.scan_snapshots()?;
    report.snapshots = snaps.readable.len() + snaps.unreadable.len();
    for (id, e) in &snaps.unreadable {
        report.errors.push(problem(
            format!("snapshot {}", id.to_hex()),
            format!(
                "{e}; it cannot be restored: `sitevault forget {}` removes it",
                id.short()
            ),
        ));
        report.damaged_snapshots.push(DamagedSnapshot {
            id: *id,
            time: None,
            host: String::new(),
            label: String::new(),
            unreadable: Some(e.to_string()),
            files: vec![],
            dirs: vec![],
        });
    }
    tamper_evidence(vault, &snaps, &mut report)?;

    // Trees are read through the index files plus the headers of packs no index lists, so a
    // damaged or lost index file hides nothing else; what only those packs hold is reported
    // below as needing a prune, not as lost.
    let full = if unindexed.is_empty() {
        std::borrow::Cow::Borrowed(&index)
    } else {
        std::borrow::Cow::Owned(index.with_packs(&unindexed))
    };
    let files = FileCheck::new(
        vault,
        &full,
        snaps.readable.iter().map(|(_, s)| s.tree),
        &index,
        &spare,
        &damage,
    );
    // A lookup the on-disk index could not read answered "not found": say so, not "lost".
    index.check_io()?;
    report.trees = files.skeleton.len() + files.failed.len();
    let mut failed: Vec<(&Id, &Error)> = files.failed.iter().collect();
    failed.sort_by_key(|(id, _)| **id);
    for (id, e) in failed {
        report
            .errors
            .push(problem(format!("tree {}", id.to_hex()), e.to_string()));
    }
    report.data_blobs = files.data_blobs;
    report.errors.extend(files.problems.iter().cloned());
    for (id, s) in &snaps.readable {
        if let Some(d) = files.attribute(id, s) {
            report.damaged_snapshots.push(d);
        }
    }
    report
        .damaged_snapshots
        .sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
    report.damaged_packs = damage.packs.into_iter().collect();
    Ok(report)
}

/// Why an index entry and a pack's own header disagree, if they do.
fn disagreement(want: &IndexPack, got: &IndexPack, size: u64) -> Option<String> {
    if want.kind != got.kind {
        return Some(format!(
            "the index says it holds {:?} blobs, the pack says {:?}",
            want.kind, got.kind
        ));
    }
    let key = |b: &PackedBlob| (b.id, b.offset, b.stored_len, b.raw_len);
    let a: BTreeSet<_> = want.blobs.iter().map(key).collect();
    let b: BTreeSet<_> = got.blobs.iter().map(key).collect();
    if a != b {
        let only_index = a.difference(&b).count();
        let only_pack = b.difference(&a).count();
        return Some(format!(
            "{only_index} blob entr(ies) only in the index, {only_pack} only in the pack"
        ));
    }
    let end = want
        .blobs
        .iter()
        .map(|b| b.offset as u64 + b.stored_len as u64)
        .max()
        .unwrap_or(0);
    (end > size).then(|| format!("blobs reach byte {end} of a {size}-byte pack"))
}

/// Download the selected packs whole, re-hash each against its name, and open every blob.
fn read_data(
    vault: &Vault,
    which: ReadData,
    view: &ReadView,
    report: &mut CheckReport,
    damage: &mut Damage,
) -> Result<()> {
    let seed: [u8; 32] = crate::format::crypto::random_array()?;
    let spare: HashMap<Id, &IndexPack> = view.unindexed.iter().map(|p| (p.id, p)).collect();
    // Packs whose header disagrees with the index (or does not read): their blobs are opened
    // where the index says, as restore would read them, so the files they hit are named.
    let disputed: BTreeSet<Id> = damage.packs.clone();
    let listed_in = |id: &Id| {
        view.listed
            .binary_search_by(|(p, ..)| p.cmp(id))
            .ok()
            .map(|i| view.file_ids[view.listed[i].1 as usize])
    };
    // Stored packs are listed in id order.
    let selected: Vec<Id> = view
        .stored
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| match which {
            ReadData::None => false,
            ReadData::All => true,
            ReadData::Subset(s) => s.selects(id, &seed),
        })
        .collect();
    struct PackRead {
        id: Id,
        bytes: u64,
        blobs: usize,
        hash_ok: bool,
        bad: Vec<(Id, String)>,
        fetch: Option<String>,
    }
    // Whole packs are held in memory here, so no more at once than uploads hold.
    let threads = vault.store().downloads().min(vault.store().connections());
    let results: Vec<PackRead> = crate::store::in_download_pool(threads, || {
        selected
            .par_iter()
            .map(|id| {
                let mut r = PackRead {
                    id: *id,
                    bytes: 0,
                    blobs: 0,
                    hash_ok: true,
                    bad: vec![],
                    fetch: None,
                };
                let name = pack_name(id);
                let bytes = match vault.store().get(&name) {
                    Ok(Some(b)) => b,
                    Ok(None) => {
                        r.fetch = Some("vanished while check ran".into());
                        return r;
                    }
                    Err(e) => {
                        r.fetch = Some(e.to_string());
                        return r;
                    }
                };
                // The blobs to open: a listed pack's own header (already compared with the
                // index), or, when the download's header does not parse, the index file's
                // listing read again; an unindexed pack's header as read before.
                let own = || {
                    let kind = crate::format::pack::parse_preamble(&bytes)?;
                    let blobs = crate::format::pack::parse_header(
                        vault.sealer(),
                        &bytes,
                        bytes.len() as u64,
                    )?;
                    Ok::<_, Error>((kind, blobs))
                };
                let from_index = |file: &Id| -> Result<Option<(BlobKind, Vec<PackedBlob>)>> {
                    let f = vault.read_index_file(file)?;
                    Ok(f.packs
                        .into_iter()
                        .find(|p| p.id == *id)
                        .map(|p| (p.kind, p.blobs)))
                };
                let (kind, blobs) = match (spare.get(id), listed_in(id)) {
                    (Some(p), _) => (p.kind, p.blobs.clone()),
                    (None, Some(file)) if disputed.contains(id) => match from_index(&file) {
                        Ok(Some(kb)) => kb,
                        Ok(None) | Err(_) => own().unwrap_or((BlobKind::Data, vec![])),
                    },
                    (None, Some(file)) => match own() {
                        Ok(kb) => kb,
                        Err(_) => match from_index(&file) {
                            Ok(Some(kb)) => kb,
                            Ok(None) => (BlobKind::Data, vec![]),
                            Err(e) => {
                                r.fetch = Some(format!(
                                    "its header does not parse and index/{} cannot be read again: {e}",
                                    file.to_hex()
                                ));
                                return r;
                            }
                        },
                    },
                    (None, None) => (BlobKind::Data, vec![]),
                };
                r.bytes = bytes.len() as u64;
                r.hash_ok = Id::of_object(&bytes) == *id;
                for b in &blobs {
                    r.blobs += 1;
                    let range = b.offset as usize..b.offset as usize + b.stored_len as usize;
                    let opened = match bytes.get(range) {
                        Some(sealed) => vault
                            .open_blob(sealed, &b.id, kind, b.raw_len, &name)
                            .map(|_| ()),
                        None => Err(Error::corrupt(&name, "blob lies beyond the pack's end")),
                    };
                    if let Err(e) = opened {
                        r.bad.push((b.id, e.to_string()));
                    }
                }
                r
            })
            .collect()
    });
    for r in results {
        report.packs_read += 1;
        report.bytes_read += r.bytes;
        report.blobs_read += r.blobs;
        let label = pack_label(&r.id);
        if let Some(e) = r.fetch {
            report
                .errors
                .push(problem(&label, format!("cannot be downloaded: {e}")));
            damage.packs.insert(r.id);
            continue;
        }
        let mut what = Vec::new();
        if !r.hash_ok {
            what.push("its content does not match its name (hash mismatch)".to_string());
        }
        if let Some((first, e)) = r.bad.first() {
            what.push(format!(
                "{} of {} blobs fail to decrypt, decompress or re-hash (first: blob {}: {e})",
                r.bad.len(),
                r.blobs,
                first.short()
            ));
        }
        if what.is_empty() {
            continue;
        }
        damage.packs.insert(r.id);
        if listed_in(&r.id).is_some() {
            report.errors.push(problem(&label, what.join("; ")));
        } else {
            report.warnings.push(problem(
                &label,
                format!("in no index and damaged: {}", what.join("; ")),
            ));
        }
        for (b, _) in r.bad {
            damage.blobs.insert((r.id, b));
        }
    }
    Ok(())
}

/// Per distinct tree: which of its files and subdirectories cannot be restored exactly. Trees
/// are checked as they are visited and dropped; only each tree's skeleton stays (its folders and
/// damaged files, by name), so check's memory follows the folders, not the files (issue 18).
struct FileCheck {
    /// Loaded trees: their subfolders (name, subtree) and damaged files (name, `None`), in name
    /// order.
    skeleton: HashMap<Id, Skeleton>,
    failed: HashMap<Id, Error>,
    /// Trees with damage somewhere below them (memoised over the shared trees).
    damaged: HashMap<Id, bool>,
    /// Trees restore cannot read: unreadable, or only in packs no index lists.
    lost_trees: HashSet<Id>,
    /// Trees with a damaged file.
    bad_files: HashSet<Id>,
    problems: Vec<Problem>,
    data_blobs: usize,
}

/// A loaded tree's subfolders (name, subtree) and damaged files (name, `None`).
type Skeleton = Vec<(Vec<u8>, Option<Id>)>;

/// What the visits of all trees found, gathered under one lock.
#[derive(Default)]
struct FileFindings {
    skeleton: HashMap<Id, Skeleton>,
    bad_files: HashSet<Id>,
    unindexed: Vec<Id>,
    wrong_kind: Vec<Id>,
    spare_only: usize,
    sizes: Vec<(Id, Vec<u8>, u64, u64)>,
    lost_trees: HashSet<Id>,
}

impl FileCheck {
    fn new(
        vault: &Vault,
        full: &Index,
        roots: impl IntoIterator<Item = Id>,
        index: &Index,
        spare: &Index,
        damage: &Damage,
    ) -> FileCheck {
        let found = std::sync::Mutex::new(FileFindings::default());
        // Chunks seen: one bit per index entry, and the few the index lacks by id.
        let seen = crate::vault::used::UsedSet::new(index.positions());
        let seen_other: std::sync::Mutex<HashSet<Id>> = Default::default();
        let failed = crate::vault::walk::visit_trees(vault, full, roots, &|tid, t| {
            // Looked up outside the lock (an on-disk index reads for each), gathered after.
            let mut mine = FileFindings::default();
            // Only in packs no index lists: intact, but restore cannot find it.
            if !index.contains(&tid) {
                mine.lost_trees.insert(tid);
                mine.spare_only += 1;
            }
            let mut skel = Vec::new();
            for n in &t.nodes {
                let chunks = match &n.kind {
                    NodeKind::Dir { subtree } => {
                        skel.push((n.name.clone(), Some(*subtree)));
                        continue;
                    }
                    NodeKind::File { chunks } => chunks,
                    NodeKind::Symlink { .. } => continue,
                };
                let mut bad = false;
                let mut total = 0u64;
                for c in chunks {
                    let (first, loc, indexed) = match index.locate(c) {
                        Some((pos, loc)) => (seen.insert(pos), Some(loc), true),
                        None => {
                            let first = seen_other
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(*c);
                            (first, spare.get(c), false)
                        }
                    };
                    match loc {
                        None => {
                            bad = true;
                            if first {
                                mine.unindexed.push(*c);
                            }
                        }
                        Some(loc) if loc.kind != BlobKind::Data => {
                            bad = true;
                            if first {
                                mine.wrong_kind.push(*c);
                            }
                        }
                        Some(loc) => {
                            if !indexed {
                                bad = true;
                                mine.spare_only += usize::from(first);
                            }
                            total += loc.raw_len as u64;
                            bad |= damage.blobs.contains(&(loc.pack, *c));
                        }
                    }
                }
                if !bad && total != n.size {
                    bad = true;
                    mine.sizes.push((tid, n.name.clone(), n.size, total));
                }
                if bad {
                    mine.bad_files.insert(tid);
                    skel.push((n.name.clone(), None));
                }
            }
            let mut g = found.lock().unwrap_or_else(|p| p.into_inner());
            let f = &mut *g;
            f.skeleton.insert(tid, skel);
            f.lost_trees.extend(mine.lost_trees);
            f.bad_files.extend(mine.bad_files);
            f.unindexed.append(&mut mine.unindexed);
            f.wrong_kind.append(&mut mine.wrong_kind);
            f.sizes.append(&mut mine.sizes);
            f.spare_only += mine.spare_only;
        });
        let mut f = found.into_inner().unwrap_or_else(|p| p.into_inner());
        // Trees are visited in parallel: report the lowest ids, so runs agree.
        f.unindexed.sort();
        f.wrong_kind.sort();
        f.sizes.sort();
        let mut lost_trees = f.lost_trees;
        lost_trees.extend(failed.keys().copied());
        let mut fc = FileCheck {
            skeleton: f.skeleton,
            failed,
            damaged: HashMap::new(),
            lost_trees,
            bad_files: f.bad_files,
            problems: Vec::new(),
            data_blobs: seen.count()
                + seen_other
                    .into_inner()
                    .unwrap_or_else(|p| p.into_inner())
                    .len(),
        };
        let (unindexed, spare_only, wrong_kind, sizes) =
            (f.unindexed, f.spare_only, f.wrong_kind, f.sizes);
        if let Some(first) = unindexed.first() {
            fc.problems.push(problem(
                "data",
                format!(
                    "{} chunk(s) that snapshots use are in no pack (first: {}): lost",
                    unindexed.len(),
                    first.to_hex()
                ),
            ));
        }
        if spare_only > 0 {
            fc.problems.push(problem(
                "index",
                format!(
                    "{spare_only} blob(s) that snapshots use are intact but only in packs no index lists, so restore cannot find them; run `sitevault prune` to index them"
                ),
            ));
        }
        if let Some(first) = wrong_kind.first() {
            fc.problems.push(problem(
                "data",
                format!(
                    "{} chunk(s) are indexed as tree blobs (first: {})",
                    wrong_kind.len(),
                    first.to_hex()
                ),
            ));
        }
        for (tid, name, want, got) in sizes.iter().take(20) {
            fc.problems.push(problem(
                format!("tree {}", tid.to_hex()),
                format!(
                    "file {:?} is {want} bytes but its chunks add up to {got}",
                    String::from_utf8_lossy(name)
                ),
            ));
        }
        // Damaged blobs are already reported with their packs.
        let mut ids: Vec<Id> = fc
            .skeleton
            .keys()
            .chain(fc.failed.keys())
            .copied()
            .collect();
        ids.sort();
        for id in ids {
            fc.is_damaged(&id);
        }
        fc
    }

    /// Whether anything below tree `id` is damaged (an unreadable tree is).
    fn is_damaged(&mut self, id: &Id) -> bool {
        if let Some(d) = self.damaged.get(id) {
            return *d;
        }
        let d = match self.skeleton.get(id) {
            _ if self.lost_trees.contains(id) => true,
            None => true,
            Some(skel) => {
                let mut d = self.bad_files.contains(id);
                let subs: Vec<Id> = skel.iter().filter_map(|(_, s)| *s).collect();
                for s in subs {
                    d |= self.is_damaged(&s);
                }
                d
            }
        };
        self.damaged.insert(*id, d);
        d
    }

    /// The damaged files and directories of one snapshot, if it has any.
    fn attribute(&self, id: &Id, s: &Snapshot) -> Option<DamagedSnapshot> {
        if !self.damaged.get(&s.tree).copied().unwrap_or(true) {
            return None;
        }
        let mut d = DamagedSnapshot {
            id: *id,
            time: Some(s.time),
            host: s.host.clone(),
            label: s.label.clone(),
            unreadable: None,
            files: vec![],
            dirs: vec![],
        };
        let mut prefix: Vec<Vec<u8>> = Vec::new();
        self.collect(s, &s.tree, &mut prefix, &mut d);
        Some(d)
    }

    fn collect(
        &self,
        s: &Snapshot,
        tree: &Id,
        prefix: &mut Vec<Vec<u8>>,
        out: &mut DamagedSnapshot,
    ) {
        let path = |prefix: &Vec<Vec<u8>>| {
            let comps: Vec<&[u8]> = prefix.iter().map(|c| c.as_slice()).collect();
            String::from_utf8_lossy(&s.path_style.join(&comps)).into_owned()
        };
        let skel = match self.skeleton.get(tree) {
            Some(k) if !self.lost_trees.contains(tree) => k,
            _ => {
                out.dirs.push(path(prefix));
                return;
            }
        };
        for (name, sub) in skel {
            prefix.push(name.clone());
            match sub {
                Some(subtree) if self.damaged.get(subtree).copied().unwrap_or(true) => {
                    self.collect(s, subtree, prefix, out)
                }
                Some(_) => {}
                None => out.files.push(path(prefix)),
            }
            prefix.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_parse_and_reject() {
        assert_eq!("10%".parse::<Subset>().unwrap(), Subset::Percent(10.0));
        assert_eq!(
            "2/7".parse::<Subset>().unwrap(),
            Subset::Part { n: 2, of: 7 }
        );
        for bad in ["0%", "101%", "x%", "0/3", "4/3", "1/0", "half", ""] {
            let e = bad.parse::<Subset>().unwrap_err().to_string();
            assert!(e.contains("--read-data-subset"), "{bad}: {e}");
        }
    }

    #[test]
    fn parts_cover_every_pack_exactly_once() {
        let seed = [7u8; 32];
        for i in 0..200u32 {
            let id = Id::of_object(&i.to_le_bytes());
            let hits = (1..=5)
                .filter(|n| Subset::Part { n: *n, of: 5 }.selects(&id, &seed))
                .count();
            assert_eq!(hits, 1);
        }
    }

    #[test]
    fn percentages_pick_about_that_share() {
        let seed = [9u8; 32];
        let picked = (0..2000u32)
            .filter(|i| Subset::Percent(25.0).selects(&Id::of_object(&i.to_le_bytes()), &seed))
            .count();
        assert!((400..600).contains(&picked), "{picked} of 2000");
        assert!(
            (0..50u32)
                .all(|i| Subset::Percent(100.0).selects(&Id::of_object(&i.to_le_bytes()), &seed))
        );
    }
}
