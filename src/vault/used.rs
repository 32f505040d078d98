//! What the snapshots use: one bit per indexed blob (by its [`Index::position`]), set while
//! every distinct tree is visited once. A vault of 100 M blobs needs 12.5 MB for it, where a set
//! of ids took over 4 GB (issue 18).

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::snapshot::Snapshot;
use crate::format::tree::NodeKind;
use crate::vault::Vault;
use crate::vault::index::Index;

pub struct UsedSet {
    bits: Vec<AtomicU64>,
}

impl UsedSet {
    /// An empty set for an index of `positions` entries ([`Index::positions`]).
    pub fn new(positions: u64) -> UsedSet {
        UsedSet {
            bits: (0..positions.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    fn mark(&self, pos: u64) {
        self.insert(pos);
    }

    /// Mark position `pos`; true if it was not marked before.
    pub fn insert(&self, pos: u64) -> bool {
        let bit = 1 << (pos % 64);
        self.bits[(pos / 64) as usize].fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    /// Whether the blob at index position `pos` is used.
    pub fn contains(&self, pos: u64) -> bool {
        self.bits
            .get((pos / 64) as usize)
            .is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (pos % 64)) != 0)
    }

    /// Distinct blobs used.
    pub fn count(&self) -> usize {
        self.bits
            .iter()
            .map(|w| w.load(Ordering::Relaxed).count_ones() as usize)
            .sum()
    }
}

/// Every blob (data and tree) reachable from `snaps`. Fails if a tree cannot be read or a
/// used blob is in no pack: the vault is damaged, and whoever deletes must not guess.
pub fn used_set(vault: &Vault, index: &Index, snaps: &[(Id, Snapshot)]) -> Result<UsedSet> {
    let used = UsedSet::new(index.positions());
    // Missing blobs are rare (damage): their ids are kept to name the first one.
    let missing: Mutex<HashSet<Id>> = Mutex::default();
    let failed = crate::vault::walk::visit_trees(
        vault,
        index,
        snaps.iter().map(|(_, s)| s.tree),
        &|id, t| {
            let mut mark = |c: &Id| match index.position(c) {
                Some(p) => used.mark(p),
                None => {
                    missing.lock().unwrap_or_else(|p| p.into_inner()).insert(*c);
                }
            };
            mark(&id);
            for n in &t.nodes {
                if let NodeKind::File { chunks } = &n.kind {
                    chunks.iter().for_each(&mut mark);
                }
            }
        },
    );
    index.check_io()?;
    if let Some((tid, e)) = failed.iter().min_by_key(|(t, _)| **t) {
        return Err(Error::InvalidInput(format!(
            "tree {} cannot be read ({e}); prune stops rather than guess what is used: run `sitevault check`",
            tid.short()
        )));
    }
    let missing = missing.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(first) = missing.iter().min() {
        return Err(Error::InvalidInput(format!(
            "{} blob(s) that snapshots use are in no pack (first: {}); prune stops rather than make it worse: run `sitevault check`",
            missing.len(),
            first.short()
        )));
    }
    Ok(used)
}
