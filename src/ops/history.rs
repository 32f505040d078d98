//! History across snapshots: what changed between two (`diff`), and where a path appears in
//! each (`find`). Both lean on content addressing: a subtree with the same id in two places is
//! the same, so unchanged parts of a site are never descended.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::error::Result;
use crate::format::id::Id;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::pattern::PathFilter;
use crate::vault::Vault;
use crate::vault::index::Index;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Removed,
    Modified,
}

impl Change {
    /// The one-character mark `diff` prints.
    pub fn mark(self) -> char {
        match self {
            Change::Added => '+',
            Change::Removed => '-',
            Change::Modified => 'M',
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

fn kind_of(n: &Node) -> EntryKind {
    match n.kind {
        NodeKind::File { .. } => EntryKind::File,
        NodeKind::Dir { .. } => EntryKind::Dir,
        NodeKind::Symlink { .. } => EntryKind::Symlink,
    }
}

/// One changed entry; `path` is the original path (raw bytes: names need not be UTF-8).
#[derive(Debug, Clone)]
pub struct DiffEntry {
    pub change: Change,
    pub path: Vec<u8>,
    pub kind: EntryKind,
    /// Size in the first snapshot (files that existed there).
    pub size_before: Option<u64>,
    pub size_after: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DiffSummary {
    pub added: u64,
    pub removed: u64,
    pub modified: u64,
    /// Files whose content is unchanged but whose metadata (mtime, mode) changed: not listed.
    pub metadata_only: u64,
    pub bytes_added: u64,
    pub bytes_removed: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Diff {
    pub entries: Vec<DiffEntry>,
    pub summary: DiffSummary,
}

/// What changed from snapshot `a` to snapshot `b`, in path order. A file is modified when its
/// content (chunk list) or type changed; a new mtime on the same bytes only counts in
/// `metadata_only`, because Configuration Manager rewrites most files nightly unchanged.
pub fn diff(vault: &Vault, index: &Index, a: &Snapshot, b: &Snapshot) -> Result<Diff> {
    let mut d = Diff::default();
    let mut prefix = Vec::new();
    diff_trees(
        vault,
        index,
        b,
        Some(&a.tree),
        Some(&b.tree),
        &mut prefix,
        &mut d,
    )?;
    Ok(d)
}

fn load(vault: &Vault, index: &Index, id: Option<&Id>) -> Result<Tree> {
    match id {
        Some(id) => vault.load_tree(index, id),
        None => Ok(Tree::default()),
    }
}

fn subtree(n: &Node) -> Option<&Id> {
    match &n.kind {
        NodeKind::Dir { subtree } => Some(subtree),
        _ => None,
    }
}

fn diff_trees(
    vault: &Vault,
    index: &Index,
    snap: &Snapshot,
    a: Option<&Id>,
    b: Option<&Id>,
    prefix: &mut Vec<Vec<u8>>,
    d: &mut Diff,
) -> Result<()> {
    if a.is_some() && a == b {
        return Ok(());
    }
    let ta = load(vault, index, a)?;
    let tb = load(vault, index, b)?;
    // Both listings are sorted by name bytes: merge them.
    let (mut i, mut j) = (0, 0);
    while i < ta.nodes.len() || j < tb.nodes.len() {
        let order = match (ta.nodes.get(i), tb.nodes.get(j)) {
            (Some(x), Some(y)) => x.name.cmp(&y.name),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                one_side(vault, index, snap, &ta.nodes[i], Change::Removed, prefix, d)?;
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                one_side(vault, index, snap, &tb.nodes[j], Change::Added, prefix, d)?;
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let (x, y) = (&ta.nodes[i], &tb.nodes[j]);
                if kind_of(x) != kind_of(y) {
                    one_side(vault, index, snap, x, Change::Removed, prefix, d)?;
                    one_side(vault, index, snap, y, Change::Added, prefix, d)?;
                } else if let (Some(sa), Some(sb)) = (subtree(x), subtree(y)) {
                    prefix.push(x.name.clone());
                    diff_trees(vault, index, snap, Some(sa), Some(sb), prefix, d)?;
                    prefix.pop();
                } else if x.kind != y.kind || x.size != y.size {
                    prefix.push(x.name.clone());
                    d.entries.push(DiffEntry {
                        change: Change::Modified,
                        path: join(snap, prefix),
                        kind: kind_of(y),
                        size_before: Some(x.size),
                        size_after: Some(y.size),
                    });
                    prefix.pop();
                    d.summary.modified += 1;
                } else if x.mtime_ns != y.mtime_ns || x.unix != y.unix || x.win_attrs != y.win_attrs
                {
                    d.summary.metadata_only += 1;
                }
                i += 1;
                j += 1;
            }
        }
    }
    Ok(())
}

/// An entry only one snapshot has, and (for a directory) everything below it.
fn one_side(
    vault: &Vault,
    index: &Index,
    snap: &Snapshot,
    n: &Node,
    change: Change,
    prefix: &mut Vec<Vec<u8>>,
    d: &mut Diff,
) -> Result<()> {
    prefix.push(n.name.clone());
    let (before, after) = match change {
        Change::Removed => (Some(n.size), None),
        _ => (None, Some(n.size)),
    };
    d.entries.push(DiffEntry {
        change,
        path: join(snap, prefix),
        kind: kind_of(n),
        size_before: before.filter(|_| !n.is_dir()),
        size_after: after.filter(|_| !n.is_dir()),
    });
    match change {
        Change::Removed => {
            d.summary.removed += 1;
            d.summary.bytes_removed += n.size;
        }
        _ => {
            d.summary.added += 1;
            d.summary.bytes_added += n.size;
        }
    }
    if let Some(s) = subtree(n) {
        let t = vault.load_tree(index, s)?;
        for c in &t.nodes {
            one_side(vault, index, snap, c, change, prefix, d)?;
        }
    }
    prefix.pop();
    Ok(())
}

fn join(snap: &Snapshot, comps: &[Vec<u8>]) -> Vec<u8> {
    let c: Vec<&[u8]> = comps.iter().map(|c| c.as_slice()).collect();
    snap.path_style.join(&c)
}

/// One place a matching path appears.
#[derive(Debug, Clone)]
pub struct Hit {
    pub snapshot: Id,
    pub time: jiff::Timestamp,
    pub host: String,
    pub label: String,
    pub path: Vec<u8>,
    pub kind: EntryKind,
    pub size: u64,
    pub mtime_ns: i64,
}

/// Matches below one tree at one place: the same tree at the same path (most of a site from
/// one night to the next) is searched once for all snapshots.
type Found = Arc<Vec<(Vec<Vec<u8>>, Node)>>;

/// Every entry matching `pattern` in every snapshot of `snaps` (given oldest first), in
/// snapshot order, then path order.
pub fn find(
    vault: &Vault,
    index: &Index,
    snaps: &[(Id, Snapshot)],
    pattern: &PathFilter,
) -> Result<Vec<Hit>> {
    let mut memo: HashMap<(Id, Vec<Vec<u8>>), Found> = HashMap::new();
    let mut hits = Vec::new();
    for (id, s) in snaps {
        let found = search(
            vault,
            index,
            s,
            &s.tree,
            &mut Vec::new(),
            pattern,
            &mut memo,
        )?;
        for (comps, n) in found.iter() {
            hits.push(Hit {
                snapshot: *id,
                time: s.time,
                host: s.host.clone(),
                label: s.label.clone(),
                path: join(s, comps),
                kind: kind_of(n),
                size: n.size,
                mtime_ns: n.mtime_ns,
            });
        }
    }
    Ok(hits)
}

fn search(
    vault: &Vault,
    index: &Index,
    snap: &Snapshot,
    tree: &Id,
    prefix: &mut Vec<Vec<u8>>,
    pattern: &PathFilter,
    memo: &mut HashMap<(Id, Vec<Vec<u8>>), Found>,
) -> Result<Found> {
    let key = (*tree, prefix.clone());
    if let Some(f) = memo.get(&key) {
        return Ok(f.clone());
    }
    let t = vault.load_tree(index, tree)?;
    let mut out = Vec::new();
    for n in t.nodes {
        prefix.push(n.name.clone());
        let comps: Vec<&[u8]> = prefix.iter().map(|c| c.as_slice()).collect();
        if pattern.matches_include(snap.path_style, &comps) {
            out.push((prefix.clone(), n.clone()));
        }
        if let Some(s) = subtree(&n) {
            let below = search(vault, index, snap, s, prefix, pattern, memo)?;
            out.extend(below.iter().cloned());
        }
        prefix.pop();
    }
    let found = Arc::new(out);
    memo.insert(key, found.clone());
    Ok(found)
}
