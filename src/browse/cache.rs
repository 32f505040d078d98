//! Trees and chunks read on demand through bounded caches sized so the largest items still fit.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::pack::BlobKind;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::paths::{self, PathStyle};
use crate::vault::Vault;
use crate::vault::index::Index;

use super::{Browser, Entry, SnapInfo};

/// A decoded tree and roughly what it holds in memory (the cache's weight).
pub(super) struct CachedTree {
    pub(super) tree: Tree,
    pub(super) weight: u64,
}

#[derive(Clone)]
pub(super) struct TreeWeight;
impl quick_cache::Weighter<Id, Arc<CachedTree>> for TreeWeight {
    fn weight(&self, _: &Id, t: &Arc<CachedTree>) -> u64 {
        t.weight
    }
}

#[derive(Clone)]
pub(super) struct ChunkWeight;
impl quick_cache::Weighter<Id, Bytes> for ChunkWeight {
    fn weight(&self, _: &Id, b: &Bytes) -> u64 {
        b.len() as u64 + 64
    }
}

/// A cache of `capacity` whose shards each hold at least eight of the largest items (`largest`
/// bytes): quick_cache never admits an item heavier than its shard, and with its default shard
/// count a 4 MiB chunk would never be cached at all.
pub(super) fn sized_cache<V: Clone, W: quick_cache::Weighter<Id, V> + Clone>(
    capacity: u64,
    largest: u64,
    weighter: W,
) -> Result<quick_cache::sync::Cache<Id, V, W>> {
    let shards = (capacity / (largest * 8)).clamp(1, 16).next_power_of_two() as usize;
    let shards = if shards as u64 * largest * 8 > capacity {
        (shards / 2).max(1)
    } else {
        shards
    };
    let opts = quick_cache::OptionsBuilder::new()
        .estimated_items_capacity(shards * 64)
        .weight_capacity(capacity)
        .shards(shards)
        // New items go to the cold half: with quick_cache's default (3% cold) a chunk read ahead,
        // or a big folder's tree, would be evicted before its reader came back for it.
        .hot_allocation(0.5)
        .build()
        .map_err(|e| Error::InvalidInput(format!("cache settings: {e:?}")))?;
    Ok(quick_cache::sync::Cache::with_options(
        opts,
        weighter,
        Default::default(),
        Default::default(),
    ))
}

pub(super) fn read_chunk(vault: &Vault, index: &Index, id: &Id) -> Result<Bytes> {
    vault.read_blob(index, id, BlobKind::Data).map(Bytes::from)
}

impl Browser {
    /// The index the view reads through (reloaded with the snapshot list).
    pub fn index(&self) -> Arc<Index> {
        Arc::clone(&self.fresh().index)
    }

    /// A recovery point's top folder: its root tree, Windows volumes as `restore --target`
    /// names them (`E:` → `E`, `\\server\share` → `UNC/server/share`).
    pub(super) fn snap_root(&self, snap: &Arc<SnapInfo>) -> Result<Vec<(Vec<u8>, Entry)>> {
        let root = self.root_entries(snap)?;
        if snap.snapshot.path_style == PathStyle::Unix {
            return Ok(root);
        }
        // Volumes become paths of folders; shares of one server meet under `UNC/server`.
        #[derive(Default)]
        struct Dir {
            sub: BTreeMap<Vec<u8>, Dir>,
            leaf: Option<Entry>,
        }
        let mut top = Dir::default();
        for (name, e) in root {
            let folders = paths::volume_folders(&name)?;
            let mut d = &mut top;
            for f in &folders {
                d = d.sub.entry(f.clone()).or_default();
            }
            d.leaf = Some(e);
        }
        fn flatten(snap: &Arc<SnapInfo>, d: Dir) -> Vec<(Vec<u8>, Entry)> {
            d.sub
                .into_iter()
                .map(|(name, sub)| {
                    let e = match sub.leaf {
                        Some(leaf) => leaf,
                        None => Entry::Folder {
                            snap: Arc::clone(snap),
                            children: Arc::new(flatten(snap, sub)),
                        },
                    };
                    (name, e)
                })
                .collect()
        }
        Ok(flatten(snap, top))
    }

    pub(super) fn tree(&self, id: &Id) -> Result<Arc<CachedTree>> {
        self.trees.get_or_insert_with(id, || {
            let tree = self.vault.load_tree(&self.current().index, id)?;
            let weight = tree
                .nodes
                .iter()
                .map(|n| {
                    let chunks = match &n.kind {
                        NodeKind::File { chunks } => chunks.len() * 32,
                        NodeKind::Symlink { target } => target.len(),
                        NodeKind::Dir { .. } => 0,
                    };
                    (std::mem::size_of::<Node>() + n.name.len() + chunks) as u64
                })
                .sum::<u64>()
                + 64;
            Ok(Arc::new(CachedTree { tree, weight }))
        })
    }

    pub(super) fn chunk(&self, id: &Id) -> Result<Bytes> {
        self.chunks
            .get_or_insert_with(id, || read_chunk(&self.vault, &self.current().index, id))
    }
}
