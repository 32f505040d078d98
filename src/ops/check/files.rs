//! Check's walk of the trees the snapshots reach: every file's chunks indexed as data, intact,
//! and adding up to its size; then, per damaged snapshot, the paths that cannot be restored.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use super::packs::Packs;
use super::{CheckReport, Damage, DamagedSnapshot, Problem, problem};
use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::pack::BlobKind;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::vault::index::Index;
use crate::vault::used::UsedSet;
use crate::vault::{SnapshotScan, Vault};

/// Walk the trees of the readable snapshots and report the trees, files and snapshots that
/// cannot be restored exactly.
pub(super) fn check_files(
    vault: &Vault,
    packs: &Packs,
    snaps: &SnapshotScan,
    damage: &Damage,
    report: &mut CheckReport,
) -> Result<()> {
    // Trees are read through the index files plus the headers of packs no index lists, so a
    // damaged or lost index file hides nothing else; what only those packs hold is reported
    // below as needing a prune, not as lost.
    let index = &packs.index;
    let full = if packs.unindexed.is_empty() {
        std::borrow::Cow::Borrowed(index)
    } else {
        std::borrow::Cow::Owned(index.with_packs(&packs.unindexed))
    };
    let files = FileCheck::new(
        vault,
        &full,
        snaps.readable.iter().map(|(_, s)| s.tree),
        index,
        &packs.spare,
        damage,
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

/// What the tree visits share: the indexes they look chunks up in, and what they found.
struct TreeVisit<'a> {
    index: &'a Index,
    spare: &'a Index,
    damage: &'a Damage,
    found: Mutex<FileFindings>,
    /// Chunks seen: one bit per index entry, and the few the index lacks by id.
    seen: UsedSet,
    seen_other: Mutex<HashSet<Id>>,
}

impl TreeVisit<'_> {
    /// Check the files of one tree and gather its skeleton and findings.
    fn tree(&self, tid: Id, t: Tree) {
        // Looked up outside the lock (an on-disk index reads for each), gathered after.
        let mut mine = FileFindings::default();
        // Only in packs no index lists: intact, but restore cannot find it.
        if !self.index.contains(&tid) {
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
            if self.file_is_bad(tid, n, chunks, &mut mine) {
                mine.bad_files.insert(tid);
                skel.push((n.name.clone(), None));
            }
        }
        self.gather(tid, skel, mine);
    }

    /// Whether file `n` of tree `tid` cannot be restored exactly: a chunk lost, not data,
    /// only in unindexed packs or damaged, or chunks that do not add up to its size.
    fn file_is_bad(&self, tid: Id, n: &Node, chunks: &[Id], mine: &mut FileFindings) -> bool {
        let mut bad = false;
        let mut total = 0u64;
        for c in chunks {
            bad |= self.chunk_is_bad(c, &mut total, mine);
        }
        if !bad && total != n.size {
            bad = true;
            mine.sizes.push((tid, n.name.clone(), n.size, total));
        }
        bad
    }

    /// Whether chunk `c` cannot be read back as restore would; adds its length to `total`.
    /// Each finding is noted the first time the chunk is seen.
    fn chunk_is_bad(&self, c: &Id, total: &mut u64, mine: &mut FileFindings) -> bool {
        let (first, loc, indexed) = match self.index.locate(c) {
            Some((pos, loc)) => (self.seen.insert(pos), Some(loc), true),
            None => {
                let first = self
                    .seen_other
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(*c);
                (first, self.spare.get(c), false)
            }
        };
        match loc {
            None => {
                if first {
                    mine.unindexed.push(*c);
                }
                true
            }
            Some(loc) if loc.kind != BlobKind::Data => {
                if first {
                    mine.wrong_kind.push(*c);
                }
                true
            }
            Some(loc) => {
                let mut bad = false;
                if !indexed {
                    bad = true;
                    mine.spare_only += usize::from(first);
                }
                *total += loc.raw_len as u64;
                bad | self.damage.blobs.contains(&(loc.pack, *c))
            }
        }
    }

    /// Add one tree's skeleton and findings to what all visits found.
    fn gather(&self, tid: Id, skel: Skeleton, mut mine: FileFindings) {
        let mut g = self.found.lock().unwrap_or_else(|p| p.into_inner());
        let f = &mut *g;
        f.skeleton.insert(tid, skel);
        f.lost_trees.extend(mine.lost_trees);
        f.bad_files.extend(mine.bad_files);
        f.unindexed.append(&mut mine.unindexed);
        f.wrong_kind.append(&mut mine.wrong_kind);
        f.sizes.append(&mut mine.sizes);
        f.spare_only += mine.spare_only;
    }
}

impl FileCheck {
    /// Visit every tree below `roots` (through `full`) and check its files against `index`,
    /// `spare` and `damage`.
    fn new(
        vault: &Vault,
        full: &Index,
        roots: impl IntoIterator<Item = Id>,
        index: &Index,
        spare: &Index,
        damage: &Damage,
    ) -> FileCheck {
        let visit = TreeVisit {
            index,
            spare,
            damage,
            found: Mutex::new(FileFindings::default()),
            seen: UsedSet::new(index.positions()),
            seen_other: Default::default(),
        };
        let failed =
            crate::vault::walk::visit_trees(vault, full, roots, &|tid, t| visit.tree(tid, t));
        let mut f = visit.found.into_inner().unwrap_or_else(|p| p.into_inner());
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
            data_blobs: visit.seen.count()
                + visit
                    .seen_other
                    .into_inner()
                    .unwrap_or_else(|p| p.into_inner())
                    .len(),
        };
        fc.problems = chunk_problems(&f.unindexed, f.spare_only, &f.wrong_kind, &f.sizes);
        fc.mark_damaged();
        fc
    }

    /// Work out, in id order, which trees have damage below them.
    fn mark_damaged(&mut self) {
        // Damaged blobs are already reported with their packs.
        let mut ids: Vec<Id> = self
            .skeleton
            .keys()
            .chain(self.failed.keys())
            .copied()
            .collect();
        ids.sort();
        for id in ids {
            self.is_damaged(&id);
        }
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

    /// Add the damaged files and unreadable directories below `tree` (at path `prefix`) to
    /// `out`.
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

/// The problems with the chunks the snapshots use: lost, only in unindexed packs, indexed as
/// tree blobs, and (the first 20) files whose chunks do not add up to their size.
fn chunk_problems(
    unindexed: &[Id],
    spare_only: usize,
    wrong_kind: &[Id],
    sizes: &[(Id, Vec<u8>, u64, u64)],
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(first) = unindexed.first() {
        problems.push(problem(
            "data",
            format!(
                "{} chunk(s) that snapshots use are in no pack (first: {}): lost",
                unindexed.len(),
                first.to_hex()
            ),
        ));
    }
    if spare_only > 0 {
        problems.push(problem(
            "index",
            format!(
                "{spare_only} blob(s) that snapshots use are intact but only in packs no index lists, so restore cannot find them; run `sitevault prune` to index them"
            ),
        ));
    }
    if let Some(first) = wrong_kind.first() {
        problems.push(problem(
            "data",
            format!(
                "{} chunk(s) are indexed as tree blobs (first: {})",
                wrong_kind.len(),
                first.to_hex()
            ),
        ));
    }
    for (tid, name, want, got) in sizes.iter().take(20) {
        problems.push(problem(
            format!("tree {}", tid.to_hex()),
            format!(
                "file {:?} is {want} bytes but its chunks add up to {got}",
                String::from_utf8_lossy(name)
            ),
        ));
    }
    problems
}
