//! `repair snapshots`: for each snapshot that cannot be restored whole, a new snapshot without
//! the files and folders that are lost.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::mpsc::sync_channel;

use rayon::prelude::*;
use serde::Serialize;

use super::{REPAIRED_TAG, holdings, uploader_result};
use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::pack::BlobKind;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::store::in_download_pool;
use crate::vault::Vault;
use crate::vault::index::Index;
use crate::vault::packer::{PACKS_IN_FLIGHT, Packer, Uploaded, upload_packs};

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

/// Entries left out of a tree: path components below it, and whether each is a folder.
type Removed = Vec<(Vec<Vec<u8>>, bool)>;

/// What one tree becomes once lost entries are left out.
#[derive(Clone)]
enum Fixed {
    Unreadable,
    Tree {
        id: Id,
        changed: bool,
        /// Components below this tree, and whether it is a folder.
        removed: Removed,
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
    /// What tree `id` becomes (each distinct tree is fixed once).
    fn fix(&mut self, id: &Id) -> Result<Fixed> {
        if let Some(f) = self.memo.get(id) {
            return Ok(f.clone());
        }
        let fixed = match self.vault.load_tree(self.index, id) {
            Err(_) => Fixed::Unreadable,
            Ok(t) => self.fix_tree(id, t)?,
        };
        self.memo.insert(*id, fixed.clone());
        Ok(fixed)
    }

    /// Tree `t` (stored as `id`) without its lost entries, stored anew when that changed it.
    fn fix_tree(&mut self, id: &Id, mut t: Tree) -> Result<Fixed> {
        let mut removed = Vec::new();
        let mut changed = false;
        let mut keep = Vec::with_capacity(t.nodes.len());
        for mut n in std::mem::take(&mut t.nodes) {
            let (kept, c) = self.fix_node(&mut n, &mut removed)?;
            changed |= c;
            if kept {
                keep.push(n);
            }
        }
        t.nodes = keep;
        let id = if changed { self.store_tree(&t)? } else { *id };
        Ok(Fixed::Tree {
            id,
            changed,
            removed,
        })
    }

    /// Whether entry `n` stays, and whether its tree changes; what is left out (the entry, or
    /// entries below a folder) goes in `removed`. A kept folder is pointed at its fixed tree.
    fn fix_node(&mut self, n: &mut Node, removed: &mut Removed) -> Result<(bool, bool)> {
        let lost = match &mut n.kind {
            NodeKind::File { chunks } => chunks.iter().any(|c| self.bad.contains(c)),
            NodeKind::Dir { subtree } => match self.fix(subtree)? {
                Fixed::Unreadable => {
                    removed.push((vec![n.name.clone()], true));
                    return Ok((false, true));
                }
                Fixed::Tree {
                    id: sub,
                    changed,
                    removed: below,
                } => {
                    for (mut p, d) in below {
                        p.insert(0, n.name.clone());
                        removed.push((p, d));
                    }
                    *subtree = sub;
                    return Ok((true, changed));
                }
            },
            NodeKind::Symlink { .. } => false,
        };
        if lost {
            removed.push((vec![n.name.clone()], false));
        }
        Ok((!lost, lost))
    }

    /// The id of fixed tree `t`, stored through the packer unless this is a dry run.
    fn store_tree(&self, t: &Tree) -> Result<Id> {
        let bytes = t.encode();
        Ok(match self.packer {
            Some(p) => p.add_blob(BlobKind::Tree, &bytes)?,
            None => self.vault.blob_id(BlobKind::Tree, &bytes),
        })
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

/// Path components below the snapshot's root as its path style writes them.
fn display(s: &Snapshot, comps: &[Vec<u8>]) -> String {
    let c: Vec<&[u8]> = comps.iter().map(|c| c.as_slice()).collect();
    String::from_utf8_lossy(&s.path_style.join(&c)).into_owned()
}

/// One repaired snapshot to write: its original's position in `snaps`, its new root tree, and
/// the entries left out (path components, and whether each is a folder).
type SnapshotPlan = (usize, Id, Removed);

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
        unrepairable: unreadable_records(unreadable),
        ..Default::default()
    };
    let h = holdings(vault)?;
    let index = Index::new().with_packs(&h.packs);
    let reach = crate::vault::walk::reachable(vault, &index, snaps.iter().map(|(_, s)| s.tree));
    let (bad, verified) = lost_chunks(vault, &index, &h.stored, &reach.trees, opts.read_data);
    report.blobs_verified = verified;
    let plans = fix_trees(vault, &index, &bad, snaps, opts.dry_run, &mut report)?;

    // Trees and their index files are stored: now the repaired snapshots, then the originals go.
    if !opts.dry_run && !plans.is_empty() {
        fence()?;
    }
    write_repaired(vault, snaps, plans, opts, fence, &mut report)?;
    Ok(report)
}

/// The snapshot records that cannot be read, as unrepairable.
fn unreadable_records(unreadable: &[(Id, Error)]) -> Vec<Unrepairable> {
    unreadable
        .iter()
        .map(|(id, e)| Unrepairable {
            id: *id,
            reason: format!(
                "the snapshot record cannot be read ({e}); `sitevault forget` removes it"
            ),
        })
        .collect()
}

/// Fix the tree of each of `snaps`, storing new trees (and their packs and index files) unless
/// this is a dry run. Counts intact and unrepairable snapshots in `report`; returns the plans
/// of the repaired snapshots to write.
fn fix_trees(
    vault: &Vault,
    index: &Index,
    bad: &HashSet<Id>,
    snaps: &[(Id, Snapshot)],
    dry_run: bool,
    report: &mut RepairSnapshotsReport,
) -> Result<Vec<SnapshotPlan>> {
    let (tx, rx) = sync_channel(PACKS_IN_FLIGHT);
    let packer = Packer::new(vault, index, tx);
    let mut plans: Vec<SnapshotPlan> = Vec::new();
    let walked: Result<()> = std::thread::scope(|scope| {
        let uploader = (!dry_run).then(|| scope.spawn(|| upload_packs(vault, rx)));
        let mut fixer = Fixer {
            vault,
            index,
            bad,
            packer: (!dry_run).then_some(&packer),
            memo: HashMap::new(),
        };
        let walked =
            plan_snapshots(&mut fixer, snaps, report, &mut plans).and_then(|()| packer.finish());
        packer.close();
        let uploaded: Result<Uploaded> = match uploader {
            Some(u) => uploader_result(u),
            None => Ok(Uploaded::default()),
        };
        walked.and(uploaded.map(|_| ()))
    });
    walked?;
    report.tree_blobs_added = packer.tree_blobs.load(std::sync::atomic::Ordering::Relaxed);
    Ok(plans)
}

/// Fix each snapshot's root tree: intact and unrepairable ones go in `report`, the rest in
/// `plans`.
fn plan_snapshots(
    fixer: &mut Fixer,
    snaps: &[(Id, Snapshot)],
    report: &mut RepairSnapshotsReport,
    plans: &mut Vec<SnapshotPlan>,
) -> Result<()> {
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
    Ok(())
}

/// Store the repaired snapshot of each plan (unless a dry run), forgetting its original with
/// `forget`, and report each in `report`.
fn write_repaired(
    vault: &Vault,
    snaps: &[(Id, Snapshot)],
    plans: Vec<SnapshotPlan>,
    opts: &RepairSnapshotsOptions,
    fence: &dyn Fn() -> Result<()>,
    report: &mut RepairSnapshotsReport,
) -> Result<()> {
    // A snapshot repaired before (same point in time, same repaired tree) is not written twice.
    let existing = if plans.is_empty() {
        Vec::new()
    } else {
        vault.scan_snapshots()?.readable
    };
    for (i, root, removed) in plans {
        let (orig, s) = &snaps[i];
        let mut r = repaired_entry(*orig, s, &removed);
        if !opts.dry_run {
            r.repaired = Some(save_repaired(vault, s, root, &existing)?);
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
    Ok(())
}

/// The report entry for snapshot `s` (`orig`), naming the files and folders left out.
fn repaired_entry(orig: Id, s: &Snapshot, removed: &Removed) -> RepairedSnapshot {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for (comps, is_dir) in removed {
        let p = display(s, comps);
        if *is_dir { dirs.push(p) } else { files.push(p) }
    }
    files.sort();
    dirs.sort();
    RepairedSnapshot {
        original: orig,
        time: s.time,
        host: s.host.clone(),
        label: s.label.clone(),
        repaired: None,
        files_removed: files,
        dirs_removed: dirs,
        forgotten: false,
    }
}

/// Store `s` repaired (root tree `root`, incomplete, tagged), or find the twin of an earlier
/// repair among `existing`: the repaired snapshot's id.
fn save_repaired(vault: &Vault, s: &Snapshot, root: Id, existing: &[(Id, Snapshot)]) -> Result<Id> {
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
    Ok(match twin {
        Some((id, _)) => *id,
        None => vault.save_snapshot(&fixed)?,
    })
}
