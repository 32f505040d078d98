//! Check's first pass over the packs: index files a batch at a time, each listed pack's own
//! header compared with its listing, and the headers of packs no index file lists. It ends
//! with the index restore would use.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use rayon::prelude::*;

use super::record::{self, Digest, HeaderRecord};
use super::{CheckOptions, CheckReport, Damage, pack_label, problem};
use crate::error::{Error, ErrorKind, Result};
use crate::format::id::Id;
use crate::format::index::{IndexFile, IndexPack};
use crate::format::pack::PackedBlob;
use crate::vault::index::Index;
use crate::vault::index::build::IndexBuilder;
use crate::vault::{DATA, INDEX, Vault};

/// Index files fetched at once (in parallel) by `check`.
const INDEX_BATCH: usize = 32;

/// What is wrong with one listing of a pack in an index file.
enum Finding {
    /// The pack is not stored: the blobs the listing names.
    Missing(Vec<Id>),
    Disagrees(String),
    Unreadable(String),
}

/// What `check` learned of the packs before it reads data and walks the snapshots.
pub(super) struct Packs {
    /// Stored packs with their sizes, in id order.
    pub stored: Vec<(Id, u64)>,
    /// Each listed pack with the index file (a number into `file_ids`) that lists it first.
    pub listed: Vec<(Id, u32, Digest)>,
    pub file_ids: Vec<Id>,
    /// The headers of packs no index file in force lists.
    pub unindexed: Vec<IndexPack>,
    /// Packs whose header agreed with the index, with their digests for the record.
    pub verified: Vec<(Id, Digest)>,
    /// Where this host's check record lives, if it has a cache folder.
    pub record_path: Option<PathBuf>,
    /// The index restore would use: the index files' view of the packs.
    pub index: Index,
    /// The blobs of the packs no index lists.
    pub spare: Index,
}

impl Packs {
    /// The index file that lists pack `id` first, if one in force lists it.
    pub(crate) fn listed_in(&self, id: &Id) -> Option<Id> {
        self.listed
            .binary_search_by(|(p, ..)| p.cmp(id))
            .ok()
            .map(|i| self.file_ids[self.listed[i].1 as usize])
    }
}

/// Read the index files and the pack headers, report what is wrong, and build the index.
pub(super) fn check_packs(
    vault: &Vault,
    opts: &CheckOptions,
    report: &mut CheckReport,
    damage: &mut Damage,
) -> Result<Packs> {
    // Index files, a batch at a time: each file's packs go into the index restore would use
    // and have their headers read and compared at once, so one batch is held decoded, never
    // the whole index (issue 18).
    let mut stored = vault.list_ids(DATA)?;
    stored.sort_unstable();
    report.packs = stored.len();
    let index_ids = vault.list_ids_union(INDEX, 1)?;
    report.index_files = index_ids.len();
    let mut scan = IndexScan::new(vault, stored, &index_ids, opts)?;
    for batch in index_ids.chunks(INDEX_BATCH) {
        scan.add_batch(batch, report)?;
    }
    scan.warn_stale(report);
    let listed = scan.in_force();
    let verified = scan.decide(&listed, report, damage);
    let unindexed = unindexed_packs(vault, &scan.stored, &listed, report)?;

    // The index restore would use: the index files' view of the packs.
    let index = scan.builder.finish()?;
    report.index_on_disk = index.is_on_disk();
    // An in-memory index of the blobs in the packs no index lists.
    let spare = Index::new().with_packs(&unindexed);
    Ok(Packs {
        stored: scan.stored,
        listed,
        file_ids: scan.file_ids,
        unindexed,
        verified,
        record_path: scan.record_path,
        index,
        spare,
    })
}

/// The index files read so far, and what their listings and the packs' headers showed.
struct IndexScan<'a> {
    vault: &'a Vault,
    /// Stored packs with their sizes, in id order.
    stored: Vec<(Id, u64)>,
    builder: IndexBuilder,
    record_path: Option<PathBuf>,
    /// Headers this host verified before, with the listing they were compared with.
    record: HeaderRecord,
    file_ids: Vec<Id>,
    readable: Vec<bool>,
    superseded: HashSet<Id>,
    /// Every (pack, file) listing with its digest (§7.6): a pack's first listing in a file in
    /// force is the one checked.
    listings: Vec<(Id, u32, Digest)>,
    /// What is wrong with a listing; it counts only if its file turns out to be in force.
    findings: HashMap<(Id, u32), Finding>,
}

impl<'a> IndexScan<'a> {
    /// An empty scan, with an index builder sized for `index_ids` and this host's record.
    fn new(
        vault: &'a Vault,
        stored: Vec<(Id, u64)>,
        index_ids: &[(Id, u64)],
        opts: &CheckOptions,
    ) -> Result<IndexScan<'a>> {
        let expected = index_ids.iter().map(|(_, s)| *s).sum::<u64>() / 30;
        let builder = vault.index_builder(expected)?;
        let record_path = record::record_path(vault);
        let record = match &record_path {
            Some(p) if !opts.all_headers => HeaderRecord::load(vault, p),
            _ => HeaderRecord::default(),
        };
        Ok(IndexScan {
            vault,
            stored,
            builder,
            record_path,
            record,
            file_ids: Vec::new(),
            readable: Vec::new(),
            superseded: HashSet::new(),
            listings: Vec::new(),
            findings: HashMap::new(),
        })
    }

    /// The stored size of pack `id`, if it is stored.
    fn size_of(&self, id: &Id) -> Option<u64> {
        self.stored
            .binary_search_by(|(s, _)| s.cmp(id))
            .ok()
            .map(|i| self.stored[i].1)
    }

    /// Read one batch of index files, then the headers of the packs they list.
    fn add_batch(&mut self, batch: &[(Id, u64)], report: &mut CheckReport) -> Result<()> {
        let vault = self.vault;
        let loaded: Vec<(Id, Result<IndexFile>)> = batch
            .par_iter()
            .map(|(id, _)| (*id, vault.read_index_file(id)))
            .collect();
        let mut to_read: Vec<(u32, &IndexPack, u64)> = Vec::new();
        for (id, r) in &loaded {
            self.add_file(id, r, report, &mut to_read)?;
        }
        self.read_headers(&to_read, report);
        Ok(())
    }

    /// Take in one index file (or report it unreadable); its packs' headers to read go to
    /// `to_read`.
    fn add_file<'f>(
        &mut self,
        id: &Id,
        r: &'f Result<IndexFile>,
        report: &mut CheckReport,
        to_read: &mut Vec<(u32, &'f IndexPack, u64)>,
    ) -> Result<()> {
        let file = self.file_ids.len() as u32;
        self.file_ids.push(*id);
        self.readable.push(r.is_ok());
        let f = match r {
            Ok(f) => f,
            Err(e) => {
                report.errors.push(problem(
                    format!("{INDEX}/{}", id.to_hex()),
                    format!(
                        "{e}; backup and restore stop on it until `sitevault repair index` (or `sitevault prune`) rebuilds the index from the pack headers"
                    ),
                ));
                return Ok(());
            }
        };
        self.builder.add_file(*id, f)?;
        self.superseded.extend(f.supersedes.iter().copied());
        for p in &f.packs {
            self.add_listing(file, p, report, to_read);
        }
        Ok(())
    }

    /// Note one pack listing: skipped if the record has it, missing if the pack is not
    /// stored, otherwise its header goes to `to_read`.
    fn add_listing<'f>(
        &mut self,
        file: u32,
        p: &'f IndexPack,
        report: &mut CheckReport,
        to_read: &mut Vec<(u32, &'f IndexPack, u64)>,
    ) {
        let size = self.size_of(&p.id);
        // Digests matter only with a record to keep (one hash of each listing).
        let d = match (&self.record_path, size) {
            (Some(_), Some(size)) => record::digest(p, size),
            _ => Digest::default(),
        };
        self.listings.push((p.id, file, d));
        match size {
            Some(_) if self.record.contains(&d) => report.headers_skipped += 1,
            Some(size) => to_read.push((file, p, size)),
            None => {
                self.findings.insert(
                    (p.id, file),
                    Finding::Missing(p.blobs.iter().map(|b| b.id).collect()),
                );
            }
        }
    }

    /// Read the headers of `to_read` (in parallel) and note the listings they disagree with.
    fn read_headers(&mut self, to_read: &[(u32, &IndexPack, u64)], report: &mut CheckReport) {
        report.headers_read += to_read.len();
        let vault = self.vault;
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
                self.findings.insert((pack, file), f);
            }
        }
    }

    /// Warn of index files a later one supersedes that are still stored.
    fn warn_stale(&self, report: &mut CheckReport) {
        let stale = self
            .file_ids
            .iter()
            .filter(|id| self.superseded.contains(id))
            .count();
        if stale > 0 {
            report.warnings.push(problem(
                INDEX,
                format!(
                    "{stale} index file(s) are superseded but still stored (an interrupted prune); the next prune removes them"
                ),
            ));
        }
    }

    /// Each pack restore would read through the index: its first listing in a file in force,
    /// in pack id order.
    fn in_force(&mut self) -> Vec<(Id, u32, Digest)> {
        let in_force = |file: u32| {
            self.readable[file as usize] && !self.superseded.contains(&self.file_ids[file as usize])
        };
        let mut listed: Vec<(Id, u32, Digest)> = std::mem::take(&mut self.listings)
            .into_iter()
            .filter(|(_, file, _)| in_force(*file))
            .collect();
        listed.sort_unstable();
        listed.dedup_by_key(|(id, ..)| *id);
        listed
    }

    /// Report what is wrong with the `listed` packs; the packs found right are returned, for
    /// the new record.
    fn decide(
        &mut self,
        listed: &[(Id, u32, Digest)],
        report: &mut CheckReport,
        damage: &mut Damage,
    ) -> Vec<(Id, Digest)> {
        let mut findings = std::mem::take(&mut self.findings);
        // What is found wrong is reported; what is not goes into the new record.
        let mut decided: Vec<(Id, Finding)> = Vec::new();
        let mut verified: Vec<(Id, Digest)> = Vec::new();
        for (id, file, d) in listed {
            match findings.remove(&(*id, *file)) {
                Some(f) => decided.push((*id, f)),
                None if self.size_of(id).is_some() => verified.push((*id, *d)),
                None => {}
            }
        }
        drop(findings);
        report_findings(decided, report, damage);
        verified
    }
}

/// Report each pack found wrong: missing packs first, then the headers that disagree or
/// cannot be read, each by pack id.
fn report_findings(mut decided: Vec<(Id, Finding)>, report: &mut CheckReport, damage: &mut Damage) {
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

/// Read the headers of the stored packs no index file in force lists, warning of each.
fn unindexed_packs(
    vault: &Vault,
    stored: &[(Id, u64)],
    listed: &[(Id, u32, Digest)],
    report: &mut CheckReport,
) -> Result<Vec<IndexPack>> {
    // Packs no index file in force lists: their blobs tell "in no index, but recoverable"
    // from "lost".
    let is_listed = |id: &Id| listed.binary_search_by(|(p, ..)| p.cmp(id)).is_ok();
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
            Err(e) => report.warnings.push(orphan_unreadable(&id, &e)),
        }
        Ok(())
    })?;
    Ok(unindexed)
}

/// The warning for a pack in no index whose header cannot be read.
fn orphan_unreadable(id: &Id, e: &Error) -> super::Problem {
    problem(
        pack_label(id),
        if e.kind() == ErrorKind::Corrupt {
            format!(
                "in no index and damaged ({e}); nothing refers to it, and `sitevault prune` deletes it once every index file reads"
            )
        } else {
            format!("in no index and its header cannot be read ({e}); nothing refers to it")
        },
    )
}
