//! Repair: make a damaged vault whole again, or as whole as what survives allows.
//!
//! * `repair index` rebuilds every index file from the pack headers (§6.3), keeping an old
//!   index entry only for a pack whose header cannot be read.
//! * `repair snapshots` writes, for each snapshot that cannot be restored whole, a new snapshot
//!   without the files and folders that are lost, and names them; the originals stay unless
//!   asked to forget them.
//! * `repair packs --from` heals lost or damaged blobs with the same content from another
//!   vault holding the same snapshots (one fed by `copy`, whose keys may differ), then replaces
//!   the damaged packs.
//!
//! All three keep the write order of formats/ §12: new packs, then index files naming them,
//! then snapshots, and deletions last, so a crash at any point leaves a valid vault.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::mpsc::sync_channel;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::index::IndexPack;
use crate::format::pack::BlobKind;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{NodeKind, Tree};
use crate::store::in_download_pool;
use crate::vault::index::Index;
use crate::vault::packer::{PACKS_IN_FLIGHT, Packer, Uploaded, upload_packs};
use crate::vault::{DATA, INDEX, IndexScan, Vault, pack_name};

/// The tag a repaired snapshot carries, so `snapshots` shows what it is.
pub const REPAIRED_TAG: &str = "repaired";

/// Every pack the vault stores and what it holds, without trusting any single source: index
/// files for the packs they name, pack headers for the rest.
struct Holdings {
    scan: IndexScan,
    stored: HashMap<Id, u64>,
    packs: Vec<IndexPack>,
    /// Index entries whose pack is gone.
    missing: Vec<Id>,
    /// Stored packs that no index names and whose header cannot be read.
    unreadable: Vec<(Id, String)>,
}

fn holdings(vault: &Vault) -> Result<Holdings> {
    let scan = vault.scan_index()?;
    let stored: HashMap<Id, u64> = vault.list_ids(DATA)?.into_iter().collect();
    let mut packs = Vec::new();
    let mut missing = Vec::new();
    for p in scan.packs() {
        if stored.contains_key(&p.id) {
            packs.push(p);
        } else {
            missing.push(p.id);
        }
    }
    let listed: HashSet<Id> = packs.iter().map(|p| p.id).collect();
    let mut orphans: Vec<(Id, u64)> = stored
        .iter()
        .filter(|(id, _)| !listed.contains(id))
        .map(|(i, s)| (*i, *s))
        .collect();
    orphans.sort();
    let headers = read_headers(vault, &orphans);
    let mut unreadable = Vec::new();
    for (id, h) in headers {
        match h {
            Ok(p) => packs.push(p),
            Err(e) => unreadable.push((id, e.to_string())),
        }
    }
    packs.sort_by_key(|p| p.id);
    Ok(Holdings {
        scan,
        stored,
        packs,
        missing,
        unreadable,
    })
}

fn read_headers(vault: &Vault, packs: &[(Id, u64)]) -> Vec<(Id, Result<IndexPack>)> {
    in_download_pool(vault.store().downloads(), || {
        packs
            .par_iter()
            .map(|(id, size)| (*id, vault.read_pack_header(id, *size)))
            .collect()
    })
}

fn index_of(packs: &[IndexPack]) -> Index {
    let mut index = Index::new();
    for p in packs {
        index.add_pack(p.id, p.kind, &p.blobs);
    }
    index.finish();
    index
}

/// Store index files for `packs`, the last superseding `old`, then delete `old`.
fn replace_index(
    vault: &Vault,
    packs: Vec<IndexPack>,
    old: &[Id],
    fence: &dyn Fn() -> Result<()>,
) -> Result<usize> {
    fence()?;
    let written = crate::ops::prune::write_index(vault, packs, old)?;
    fence()?;
    for id in old {
        vault.store().delete(&format!("{INDEX}/{}", id.to_hex()))?;
    }
    Ok(written)
}

// ------------------------------------------------------------------------------------------
// repair index

#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairIndexReport {
    pub dry_run: bool,
    /// Packs the new index lists, and their blobs.
    pub packs: usize,
    pub blobs: usize,
    /// Packs whose header cannot be read but which an old index file still described: kept
    /// with the old entries (their blobs may still be readable; `check --read-data` tells).
    pub packs_from_old_index: Vec<Id>,
    /// Packs whose header cannot be read and that no old index file describes: left out.
    pub packs_unreadable: Vec<Id>,
    /// Packs old index files named that storage no longer holds: dropped.
    pub packs_missing: usize,
    pub index_files_replaced: usize,
    pub index_files_written: usize,
}

/// Rebuild the index from the pack headers. The caller holds an exclusive lock; `fence`
/// re-checks it before the new index is stored and before old files are deleted.
pub fn repair_index(
    vault: &Vault,
    dry_run: bool,
    fence: &dyn Fn() -> Result<()>,
) -> Result<RepairIndexReport> {
    let mut report = RepairIndexReport {
        dry_run,
        ..Default::default()
    };
    let scan = vault.scan_index()?;
    let old: HashMap<Id, IndexPack> = scan.packs().into_iter().map(|p| (p.id, p)).collect();
    let mut stored = vault.list_ids(DATA)?;
    stored.sort();
    report.packs_missing = old
        .keys()
        .filter(|id| stored.binary_search_by_key(*id, |(i, _)| *i).is_err())
        .count();
    let mut packs = Vec::new();
    for (id, h) in read_headers(vault, &stored) {
        match (h, old.get(&id)) {
            (Ok(p), _) => packs.push(p),
            (Err(_), Some(p)) => {
                report.packs_from_old_index.push(id);
                packs.push(p.clone());
            }
            (Err(_), None) => report.packs_unreadable.push(id),
        }
    }
    report.packs = packs.len();
    report.blobs = packs.iter().map(|p| p.blobs.len()).sum();
    report.index_files_replaced = scan.all.len();
    if dry_run || (packs.is_empty() && scan.all.is_empty()) {
        return Ok(report);
    }
    report.index_files_written = replace_index(vault, packs, &scan.all, fence)?;
    Ok(report)
}

// ------------------------------------------------------------------------------------------
// repair snapshots

#[derive(Debug, Clone, Default)]
pub struct RepairSnapshotsOptions {
    pub dry_run: bool,
    /// Delete each original once its repaired snapshot is stored.
    pub forget: bool,
    /// Read and verify every data blob the snapshots use, not only that it is indexed.
    pub read_data: bool,
    /// This machine's name, for the forget record of originals forgotten.
    pub host: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepairedSnapshot {
    pub original: Id,
    pub time: jiff::Timestamp,
    pub host: String,
    pub label: String,
    /// The new snapshot (`None` in a dry run).
    pub repaired: Option<Id>,
    /// Files left out because some of their content is lost (original paths).
    pub files_removed: Vec<String>,
    /// Folders left out because their listing cannot be read (everything below them).
    pub dirs_removed: Vec<String>,
    pub forgotten: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Unrepairable {
    pub id: Id,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairSnapshotsReport {
    pub dry_run: bool,
    pub snapshots: usize,
    pub intact: usize,
    pub repaired: Vec<RepairedSnapshot>,
    /// Snapshots nothing can be saved from (the record or the root folder is unreadable).
    pub unrepairable: Vec<Unrepairable>,
    /// Data blobs read and verified (with `read_data`).
    pub blobs_verified: usize,
    pub tree_blobs_added: u64,
}

/// What one tree becomes once lost entries are left out.
#[derive(Clone)]
enum Fixed {
    Unreadable,
    Tree {
        id: Id,
        changed: bool,
        /// Components below this tree, and whether it is a folder.
        removed: Vec<(Vec<Vec<u8>>, bool)>,
    },
}

struct Fixer<'a> {
    vault: &'a Vault,
    index: &'a Index,
    bad: &'a HashSet<Id>,
    packer: Option<&'a Packer<'a>>,
    memo: HashMap<Id, Fixed>,
}

impl Fixer<'_> {
    fn fix(&mut self, id: &Id) -> Result<Fixed> {
        if let Some(f) = self.memo.get(id) {
            return Ok(f.clone());
        }
        let fixed = match self.vault.load_tree(self.index, id) {
            Err(_) => Fixed::Unreadable,
            Ok(mut t) => {
                let mut removed = Vec::new();
                let mut changed = false;
                let mut keep = Vec::with_capacity(t.nodes.len());
                for mut n in std::mem::take(&mut t.nodes) {
                    let lost = match &mut n.kind {
                        NodeKind::File { chunks } => chunks.iter().any(|c| self.bad.contains(c)),
                        NodeKind::Dir { subtree } => match self.fix(subtree)? {
                            Fixed::Unreadable => {
                                removed.push((vec![n.name.clone()], true));
                                changed = true;
                                keep.push(None);
                                continue;
                            }
                            Fixed::Tree {
                                id: sub,
                                changed: c,
                                removed: below,
                            } => {
                                for (mut p, d) in below {
                                    p.insert(0, n.name.clone());
                                    removed.push((p, d));
                                }
                                changed |= c;
                                *subtree = sub;
                                false
                            }
                        },
                        NodeKind::Symlink { .. } => false,
                    };
                    if lost {
                        removed.push((vec![n.name.clone()], false));
                        changed = true;
                        keep.push(None);
                    } else {
                        keep.push(Some(n));
                    }
                }
                t.nodes = keep.into_iter().flatten().collect();
                let id = if changed {
                    let bytes = t.encode();
                    match self.packer {
                        Some(p) => p.add_blob(BlobKind::Tree, &bytes)?,
                        None => self.vault.blob_id(BlobKind::Tree, &bytes),
                    }
                } else {
                    *id
                };
                Fixed::Tree {
                    id,
                    changed,
                    removed,
                }
            }
        };
        self.memo.insert(*id, fixed.clone());
        Ok(fixed)
    }
}

/// Data blobs the snapshots use that cannot be read: in no pack, in a pack that is gone, or
/// (with `read_data`) failing verification.
fn lost_chunks(
    vault: &Vault,
    index: &Index,
    stored: &HashMap<Id, u64>,
    trees: &HashMap<Id, Tree>,
    read_data: bool,
) -> (HashSet<Id>, usize) {
    let mut used: BTreeSet<Id> = BTreeSet::new();
    for t in trees.values() {
        for n in &t.nodes {
            if let NodeKind::File { chunks } = &n.kind {
                used.extend(chunks.iter().copied());
            }
        }
    }
    let mut bad: HashSet<Id> = HashSet::new();
    let mut present = Vec::new();
    for c in used {
        match index.get(&c) {
            Some(l) if stored.contains_key(&l.pack) && l.kind == BlobKind::Data => present.push(c),
            _ => {
                bad.insert(c);
            }
        }
    }
    let mut verified = 0;
    if read_data {
        let failed: Vec<Id> = in_download_pool(vault.store().downloads(), || {
            present
                .par_iter()
                .filter(|c| vault.read_blob(index, c, BlobKind::Data).is_err())
                .copied()
                .collect()
        });
        verified = present.len() - failed.len();
        bad.extend(failed);
    }
    (bad, verified)
}

fn display(s: &Snapshot, comps: &[Vec<u8>]) -> String {
    let c: Vec<&[u8]> = comps.iter().map(|c| c.as_slice()).collect();
    String::from_utf8_lossy(&s.path_style.join(&c)).into_owned()
}

/// One repaired snapshot to write: its original's position in `snaps`, its new root tree, and
/// the entries left out (path components, and whether each is a folder).
type SnapshotPlan = (usize, Id, Vec<(Vec<Vec<u8>>, bool)>);

/// Repair `snaps` (the snapshots to look at). The caller holds a lock: shared, or exclusive
/// with `forget`; `fence` re-checks it before snapshots are stored and before any deletion.
pub fn repair_snapshots(
    vault: &Vault,
    snaps: &[(Id, Snapshot)],
    unreadable: &[(Id, Error)],
    opts: &RepairSnapshotsOptions,
    fence: &dyn Fn() -> Result<()>,
) -> Result<RepairSnapshotsReport> {
    let mut report = RepairSnapshotsReport {
        dry_run: opts.dry_run,
        snapshots: snaps.len() + unreadable.len(),
        ..Default::default()
    };
    for (id, e) in unreadable {
        report.unrepairable.push(Unrepairable {
            id: *id,
            reason: format!(
                "the snapshot record cannot be read ({e}); `sitevault forget` removes it"
            ),
        });
    }
    let h = holdings(vault)?;
    let index = index_of(&h.packs);
    let reach = crate::vault::walk::reachable(vault, &index, snaps.iter().map(|(_, s)| s.tree));
    let (bad, verified) = lost_chunks(vault, &index, &h.stored, &reach.trees, opts.read_data);
    report.blobs_verified = verified;

    let (tx, rx) = sync_channel(PACKS_IN_FLIGHT);
    let packer = Packer::new(vault, &index, tx);
    let mut plans: Vec<SnapshotPlan> = Vec::new();
    let walked: Result<()> = std::thread::scope(|scope| {
        let uploader = (!opts.dry_run).then(|| scope.spawn(|| upload_packs(vault, rx)));
        let mut fixer = Fixer {
            vault,
            index: &index,
            bad: &bad,
            packer: (!opts.dry_run).then_some(&packer),
            memo: HashMap::new(),
        };
        let mut walk = || -> Result<()> {
            for (i, (id, s)) in snaps.iter().enumerate() {
                match fixer.fix(&s.tree)? {
                    Fixed::Unreadable => report.unrepairable.push(Unrepairable {
                        id: *id,
                        reason: "its root folder listing cannot be read, so nothing in it can be saved; `sitevault forget` removes it".into(),
                    }),
                    Fixed::Tree { changed: false, .. } => report.intact += 1,
                    Fixed::Tree { id: root, removed, .. } => plans.push((i, root, removed)),
                }
            }
            packer.finish()
        };
        let walked = walk();
        packer.close();
        let uploaded: Result<Uploaded> = match uploader {
            Some(u) => u
                .join()
                .unwrap_or_else(|_| Err(Error::InvalidInput("the pack uploader panicked".into()))),
            None => Ok(Uploaded::default()),
        };
        walked.and(uploaded.map(|_| ()))
    });
    walked?;
    report.tree_blobs_added = packer.tree_blobs.load(std::sync::atomic::Ordering::Relaxed);

    // Trees and their index files are stored: now the repaired snapshots, then the originals go.
    if !opts.dry_run && !plans.is_empty() {
        fence()?;
    }
    // A snapshot repaired before (same point in time, same repaired tree) is not written twice.
    let existing = if plans.is_empty() {
        Vec::new()
    } else {
        vault.scan_snapshots()?.readable
    };
    for (i, root, removed) in plans {
        let (orig, s) = &snaps[i];
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        for (comps, is_dir) in &removed {
            let p = display(s, comps);
            if *is_dir { dirs.push(p) } else { files.push(p) }
        }
        files.sort();
        dirs.sort();
        let mut r = RepairedSnapshot {
            original: *orig,
            time: s.time,
            host: s.host.clone(),
            label: s.label.clone(),
            repaired: None,
            files_removed: files,
            dirs_removed: dirs,
            forgotten: false,
        };
        if !opts.dry_run {
            let mut fixed = s.clone();
            fixed.tree = root;
            fixed.complete = false;
            if !fixed.tags.iter().any(|t| t == REPAIRED_TAG) {
                fixed.tags.push(REPAIRED_TAG.into());
            }
            let twin = existing.iter().find(|(_, e)| {
                e.tree == root
                    && e.time == s.time
                    && e.host == s.host
                    && e.label == s.label
                    && e.paths == s.paths
            });
            r.repaired = Some(match twin {
                Some((id, _)) => *id,
                None => vault.save_snapshot(&fixed)?,
            });
            if opts.forget {
                crate::ops::forget::forget_snapshots(
                    vault,
                    &[*orig],
                    &opts.host,
                    "repair snapshots --forget",
                    fence,
                )?;
                r.forgotten = true;
            }
        }
        report.repaired.push(r);
    }
    Ok(report)
}

// ------------------------------------------------------------------------------------------
// repair packs --from

#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairPacksReport {
    pub dry_run: bool,
    pub packs_read: usize,
    /// Packs missing, unreadable, not matching their name, or holding a damaged blob.
    pub damaged_packs: Vec<Id>,
    /// Blobs the snapshots use that were lost or damaged here.
    pub blobs_lost: usize,
    /// Of those, rebuilt with content from the other vault (verified against their ids).
    pub blobs_healed: usize,
    /// Good blobs of damaged packs moved into new packs.
    pub blobs_salvaged: usize,
    /// Lost blobs the other vault could not supply.
    pub blobs_unhealed: Vec<Id>,
    pub packs_written: u64,
    pub bytes_written: u64,
    pub packs_deleted: usize,
    /// Packs in no index whose header cannot be read: left alone (nothing refers to them).
    pub packs_unreadable: Vec<Id>,
}

/// Read every stored pack whole, as `check --read-data` does: which packs are damaged (missing,
/// not matching their name, or holding a blob that fails), and which used blobs are lost.
/// Every pack, not only those of known used blobs: a lost tree may name chunks in any of them.
fn survey(
    vault: &Vault,
    index: &Index,
    h: &Holdings,
    used: &HashSet<Id>,
    report: &mut RepairPacksReport,
) -> (BTreeSet<Id>, HashSet<Id>) {
    let mut damaged: BTreeSet<Id> = h.missing.iter().copied().collect();
    report.packs_read = h.packs.len();
    let failed: Vec<(Id, bool, Vec<Id>)> = in_download_pool(vault.store().downloads(), || {
        h.packs
            .par_iter()
            .map(|p| {
                let name = pack_name(&p.id);
                let Ok(Some(bytes)) = vault.store().get(&name) else {
                    return (p.id, false, p.blobs.iter().map(|b| b.id).collect());
                };
                let whole = Id::of_object(&bytes) == p.id;
                let bad = p
                    .blobs
                    .iter()
                    .filter(|b| {
                        let r = b.offset as usize..b.offset as usize + b.stored_len as usize;
                        bytes.get(r).is_none_or(|sealed| {
                            vault
                                .open_blob(sealed, &b.id, p.kind, b.raw_len, &name)
                                .is_err()
                        })
                    })
                    .map(|b| b.id)
                    .collect();
                (p.id, whole, bad)
            })
            .collect()
    });
    let mut bad_here: HashSet<(Id, Id)> = HashSet::new();
    for (pack, whole, bad) in failed {
        if !whole || !bad.is_empty() {
            damaged.insert(pack);
        }
        bad_here.extend(bad.into_iter().map(|b| (pack, b)));
    }
    let lost = used
        .iter()
        .filter(|b| match index.get(b) {
            Some(l) => !h.stored.contains_key(&l.pack) || bad_here.contains(&(l.pack, **b)),
            None => true,
        })
        .copied()
        .collect();
    (damaged, lost)
}

/// Where the other vault keeps the content of this vault's blobs, learned by walking snapshots
/// both hold (same time, host, label and paths) side by side.
struct Sources<'a> {
    other: &'a Vault,
    other_index: &'a Index,
    same_ids: bool,
    /// Our blob id → the other vault's id for the same content.
    ids: HashMap<Id, (Id, BlobKind)>,
}

impl<'a> Sources<'a> {
    fn learn(
        ours: &Vault,
        index: &Index,
        other: &'a Vault,
        other_index: &'a Index,
        snaps: &[(Id, Snapshot)],
    ) -> Result<Sources<'a>> {
        let probe = b"sitevault repair: do the vaults share a chunk-id key?";
        let same_ids = ours.blob_id(BlobKind::Data, probe) == other.blob_id(BlobKind::Data, probe);
        let mut s = Sources {
            other,
            other_index,
            same_ids,
            ids: HashMap::new(),
        };
        let theirs = other.scan_snapshots()?.readable;
        let mut seen = HashSet::new();
        for (_, a) in snaps {
            let twin = theirs.iter().find(|(_, b)| {
                a.time == b.time && a.host == b.host && a.label == b.label && a.paths == b.paths
            });
            if let Some((_, b)) = twin {
                s.pair(ours, index, a.tree, b.tree, &mut seen);
            }
        }
        Ok(s)
    }

    /// Map tree `a` (ours) to `b` (theirs) and, where both are readable, everything below.
    fn pair(&mut self, ours: &Vault, index: &Index, a: Id, b: Id, seen: &mut HashSet<Id>) {
        self.ids.insert(a, (b, BlobKind::Tree));
        if !seen.insert(a) {
            return;
        }
        let (Ok(ta), Ok(tb)) = (
            ours.load_tree(index, &a),
            self.other.load_tree(self.other_index, &b),
        ) else {
            return;
        };
        for na in &ta.nodes {
            let Some(nb) = tb.nodes.iter().find(|n| n.name == na.name) else {
                continue;
            };
            match (&na.kind, &nb.kind) {
                (NodeKind::File { chunks: ca }, NodeKind::File { chunks: cb })
                    if ca.len() == cb.len() && na.size == nb.size =>
                {
                    for (x, y) in ca.iter().zip(cb) {
                        self.ids.insert(*x, (*y, BlobKind::Data));
                    }
                }
                (NodeKind::Dir { subtree: sa }, NodeKind::Dir { subtree: sb }) => {
                    self.pair(ours, index, *sa, *sb, seen)
                }
                _ => {}
            }
        }
    }

    /// The content of our data blob `id`, from the other vault, verified against `id`.
    fn data(&self, ours: &Vault, id: &Id) -> Option<Vec<u8>> {
        let mut candidates = Vec::new();
        if let Some((theirs, BlobKind::Data)) = self.ids.get(id) {
            candidates.push(*theirs);
        }
        if self.same_ids {
            candidates.push(*id);
        }
        candidates.into_iter().find_map(|theirs| {
            let data = self
                .other
                .read_blob(self.other_index, &theirs, BlobKind::Data)
                .ok()?;
            (ours.blob_id(BlobKind::Data, &data) == *id).then_some(data)
        })
    }

    /// Our tree for the other vault's tree `theirs`: its ids translated back to ours, with
    /// every blob below it we lack put in `out`. Returns our id for it.
    fn tree(
        &self,
        ours: &Vault,
        back: &HashMap<Id, Id>,
        have: &dyn Fn(&Id) -> bool,
        theirs: &Id,
        out: &mut Vec<(Id, BlobKind, Vec<u8>)>,
    ) -> Option<Id> {
        let mut t = self.other.load_tree(self.other_index, theirs).ok()?;
        for n in &mut t.nodes {
            match &mut n.kind {
                NodeKind::File { chunks } => {
                    for c in chunks.iter_mut() {
                        let known = if self.same_ids {
                            Some(*c)
                        } else {
                            back.get(c).copied()
                        };
                        if let Some(o) = known.filter(|o| have(o)) {
                            *c = o;
                            continue;
                        }
                        // Lost or unknown here: the content gives its id in our vault.
                        let data = self
                            .other
                            .read_blob(self.other_index, c, BlobKind::Data)
                            .ok()?;
                        *c = ours.blob_id(BlobKind::Data, &data);
                        out.push((*c, BlobKind::Data, data));
                    }
                }
                NodeKind::Dir { subtree } => {
                    let known = if self.same_ids {
                        Some(*subtree)
                    } else {
                        back.get(subtree).copied()
                    };
                    *subtree = match known.filter(|o| have(o)) {
                        Some(o) => o,
                        None => self.tree(ours, back, have, subtree, out)?,
                    };
                }
                NodeKind::Symlink { .. } => {}
            }
        }
        let bytes = t.encode();
        let id = ours.blob_id(BlobKind::Tree, &bytes);
        out.push((id, BlobKind::Tree, bytes));
        Some(id)
    }

    /// Everything needed to restore our lost blob `id` (and, for a tree, what is lost below
    /// it), verified: a data blob must hash to `id`, a rebuilt tree must encode to `id`.
    fn heal(
        &self,
        ours: &Vault,
        back: &HashMap<Id, Id>,
        have: &dyn Fn(&Id) -> bool,
        id: &Id,
    ) -> Option<Vec<(Id, BlobKind, Vec<u8>)>> {
        match self.ids.get(id) {
            Some((theirs, BlobKind::Tree)) => {
                let mut out = Vec::new();
                (self.tree(ours, back, have, theirs, &mut out)? == *id).then_some(out)
            }
            _ if self.same_ids
                && self
                    .other_index
                    .get(id)
                    .is_some_and(|l| l.kind == BlobKind::Tree) =>
            {
                let mut out = Vec::new();
                (self.tree(ours, back, have, id, &mut out)? == *id).then_some(out)
            }
            _ => self.data(ours, id).map(|d| vec![(*id, BlobKind::Data, d)]),
        }
    }
}

/// Heal this vault's lost and damaged blobs from `other`, then replace its damaged packs. The
/// caller holds an exclusive lock on this vault (and a shared one on `other`).
pub fn repair_packs(
    vault: &Vault,
    other: &Vault,
    dry_run: bool,
    fence: &dyn Fn() -> Result<()>,
) -> Result<RepairPacksReport> {
    let mut report = RepairPacksReport {
        dry_run,
        ..Default::default()
    };
    let h = holdings(vault)?;
    let index = index_of(&h.packs);
    let snaps = vault.scan_snapshots()?;
    if let Some((id, e)) = snaps.unreadable.first() {
        return Err(Error::InvalidInput(format!(
            "snapshot {} cannot be read ({e}); repair packs needs every snapshot record to know what is used: `sitevault forget` it first",
            id.short()
        )));
    }
    // Each distinct tree is visited and dropped: only the ids of what is used stay.
    let used = std::sync::Mutex::new(HashSet::new());
    let failed = crate::vault::walk::visit_trees(
        vault,
        &index,
        snaps.readable.iter().map(|(_, s)| s.tree),
        &|id, t| {
            let mut u = used.lock().unwrap_or_else(|p| p.into_inner());
            u.insert(id);
            for n in &t.nodes {
                if let NodeKind::File { chunks } = &n.kind {
                    u.extend(chunks.iter().copied());
                }
            }
        },
    );
    let mut used: HashSet<Id> = used.into_inner().unwrap_or_else(|p| p.into_inner());
    used.extend(failed.keys().copied());
    report.packs_unreadable = h.unreadable.iter().map(|(id, _)| *id).collect();
    let (damaged, mut lost) = survey(vault, &index, &h, &used, &mut report);
    lost.extend(failed.keys().copied());
    report.damaged_packs = damaged.iter().copied().collect();
    report.blobs_lost = lost.len();
    if damaged.is_empty() && lost.is_empty() {
        return Ok(report);
    }

    let other_index = other.load_index()?;
    let sources = Sources::learn(vault, &index, other, &other_index, &snaps.readable)?;
    let back: HashMap<Id, Id> = sources.ids.iter().map(|(o, (t, _))| (*t, *o)).collect();
    let have =
        |id: &Id| !lost.contains(id) && index.get(id).is_some_and(|l| !damaged.contains(&l.pack));
    let mut healed: Vec<(Id, BlobKind, Vec<u8>)> = Vec::new();
    let mut todo: Vec<Id> = lost.iter().copied().collect();
    todo.sort();
    for id in &todo {
        if healed.iter().any(|(h, _, _)| h == id) {
            continue;
        }
        match sources.heal(vault, &back, &have, id) {
            Some(blobs) => healed.extend(blobs),
            None => report.blobs_unhealed.push(*id),
        }
    }
    // Healing a tree can turn up more that is lost below it: count every blob rebuilt.
    let healed_ids: HashSet<Id> = healed.iter().map(|(id, _, _)| *id).collect();
    report.blobs_healed = healed_ids.len();
    report.blobs_lost = lost.union(&healed_ids).count();

    // Good blobs of damaged packs move to new packs, so the damaged packs can go.
    let keep: Vec<IndexPack> = h
        .packs
        .iter()
        .filter(|p| !damaged.contains(&p.id))
        .cloned()
        .collect();
    let good = index_of(&keep);
    let salvage: Vec<(Id, BlobKind)> = h
        .packs
        .iter()
        .filter(|p| damaged.contains(&p.id))
        .flat_map(|p| p.blobs.iter().map(move |b| (b.id, p.kind)))
        .filter(|(b, _)| !lost.contains(b) && !good.contains(b) && !healed_ids.contains(b))
        .collect();
    if dry_run {
        report.blobs_salvaged = salvage.len();
        return Ok(report);
    }
    let (tx, rx) = sync_channel(PACKS_IN_FLIGHT);
    let packer = Packer::new(vault, &good, tx);
    let stored: Result<Uploaded> = std::thread::scope(|scope| {
        let uploader = scope.spawn(|| upload_packs(vault, rx));
        let add = || -> Result<usize> {
            let mut salvaged = 0;
            for (b, kind) in &salvage {
                // Verified again as it is read: a blob that fails now is lost, not copied.
                if let Ok(data) = vault.read_blob(&index, b, *kind) {
                    packer.add_blob(*kind, &data)?;
                    salvaged += 1;
                }
            }
            for (_, kind, data) in &healed {
                packer.add_blob(*kind, data)?;
            }
            packer.finish()?;
            Ok(salvaged)
        };
        let added = add();
        packer.close();
        let uploaded = uploader
            .join()
            .unwrap_or_else(|_| Err(Error::InvalidInput("the pack uploader panicked".into())));
        report.blobs_salvaged = *added.as_ref().unwrap_or(&0);
        added.and(uploaded)
    });
    let stored = stored?;
    report.packs_written = stored.packs;
    report.bytes_written = stored.bytes;

    // The new packs are indexed by their own index files (stored after them). The switch:
    // one index for every kept pack, superseding the old files, then the damaged packs go.
    let new_files = vault.scan_index()?;
    let new_only: Vec<IndexPack> = new_files
        .readable
        .iter()
        .filter(|(id, _)| !h.scan.all.contains(id))
        .flat_map(|(_, f)| f.packs.iter().cloned())
        .collect();
    let mut after = keep;
    after.extend(new_only);
    replace_index(vault, after, &h.scan.all, fence)?;
    for p in &damaged {
        if h.stored.contains_key(p) {
            vault.store().delete(&pack_name(p))?;
            report.packs_deleted += 1;
        }
    }
    Ok(report)
}
