//! Stats: how big the archived data is, what the vault stores for it, and what each snapshot
//! added. Works per distinct tree (snapshots share most of theirs), so it costs about as much
//! as reading the newest snapshot's trees once, not once per snapshot.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{NodeKind, Tree};
use crate::vault::index::Index;
use crate::vault::{DATA, INDEX, KEYS, SNAPSHOTS, Vault};

/// One snapshot's share.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotStats {
    pub id: Id,
    pub time: jiff::Timestamp,
    pub host: String,
    pub label: String,
    pub files: u64,
    /// Sum of its files' sizes.
    pub logical_bytes: u64,
    /// Stored bytes of the blobs no older snapshot uses: what keeping this snapshot costs
    /// on top of the older ones.
    pub added_bytes: u64,
    /// Chunks no older snapshot uses.
    pub added_chunks: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub snapshots: usize,
    /// Sum over snapshots of their files' sizes: what restoring every snapshot would write.
    pub logical_bytes: u64,
    /// Sizes of the distinct chunks the snapshots use, before compression.
    pub unique_bytes: u64,
    /// Stored bytes (compressed, encrypted) of the blobs the snapshots use.
    pub stored_bytes: u64,
    /// Everything in storage: packs, index files, snapshots, keys, config and locks.
    pub vault_bytes: u64,
    /// Bytes in packs that no snapshot uses (until prune reclaims them).
    pub unused_bytes: u64,
    /// logical_bytes / stored_bytes: deduplication and compression together.
    pub ratio: f64,
    /// logical_bytes / unique_bytes.
    pub dedup_ratio: f64,
    /// unique_bytes / stored data bytes.
    pub compression_ratio: f64,
    pub chunks: usize,
    pub tree_blobs: usize,
    pub packs: usize,
    pub index_files: usize,
    /// Oldest first.
    pub per_snapshot: Vec<SnapshotStats>,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// What stats keeps of one tree.
#[derive(Default)]
struct Skeleton {
    files: u64,
    bytes: u64,
    subtrees: Vec<Id>,
    /// Distinct chunks of its files.
    chunks: Vec<Id>,
}

/// Sizes of the archived data, of what the vault stores for it, and of each snapshot's share.
pub fn stats(vault: &Vault) -> Result<Stats> {
    let index = vault.load_index()?;
    let snaps = vault.list_snapshots()?;
    let skeletons = skeletons(vault, &index, &snaps)?;
    let mut out = Stats {
        snapshots: snaps.len(),
        ..Stats::default()
    };
    let stored_data = charge_snapshots(&index, &snaps, &skeletons, &mut out)?;
    count_storage(vault, &mut out)?;
    out.ratio = ratio(out.logical_bytes, out.stored_bytes);
    out.dedup_ratio = ratio(out.logical_bytes, out.unique_bytes);
    out.compression_ratio = ratio(out.unique_bytes, stored_data);
    Ok(out)
}

/// Every distinct tree of the snapshots, kept as what stats needs of it; an error if one
/// cannot be read.
fn skeletons(
    vault: &Vault,
    index: &Index,
    snaps: &[(Id, Snapshot)],
) -> Result<HashMap<Id, Skeleton>> {
    // Each distinct tree is visited once and kept only as what stats needs of it: its file
    // count and bytes, subfolders and distinct chunks (issue 18: not every decoded node).
    let skeletons: std::sync::Mutex<HashMap<Id, Skeleton>> = Default::default();
    let failed = crate::vault::walk::visit_trees(
        vault,
        index,
        snaps.iter().map(|(_, s)| s.tree),
        &|id, t| {
            skeletons
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, Skeleton::of(&t));
        },
    );
    if let Some((id, e)) = failed.iter().next() {
        return Err(Error::corrupt(
            format!("tree {}", id.to_hex()),
            format!("{e}; stats needs every tree: run `sitevault check`"),
        ));
    }
    Ok(skeletons.into_inner().unwrap_or_else(|p| p.into_inner()))
}

impl Skeleton {
    /// What stats keeps of `tree`.
    fn of(tree: &Tree) -> Skeleton {
        let mut k = Skeleton::default();
        let mut chunks: HashSet<Id> = HashSet::new();
        for n in &tree.nodes {
            match &n.kind {
                NodeKind::File { chunks: c } => {
                    k.files += 1;
                    k.bytes += n.size;
                    for id in c {
                        if chunks.insert(*id) {
                            k.chunks.push(*id);
                        }
                    }
                }
                NodeKind::Dir { subtree } => k.subtrees.push(*subtree),
                NodeKind::Symlink { .. } => {}
            }
        }
        k
    }
}

/// Stored and raw length of a blob the snapshots use.
fn stored_len(index: &Index, id: &Id) -> Result<(u64, u64)> {
    let loc = index.get(id).ok_or_else(|| {
        Error::corrupt(
            format!("blob {}", id.to_hex()),
            "a snapshot uses it but no index lists it: run `sitevault check`",
        )
    })?;
    Ok((loc.stored_len as u64, loc.raw_len as u64))
}

/// Files and bytes below tree `id`, memoised bottom-up over the shared trees.
fn total(
    id: &Id,
    skeletons: &HashMap<Id, Skeleton>,
    memo: &mut HashMap<Id, (u64, u64)>,
) -> (u64, u64) {
    if let Some(t) = memo.get(id) {
        return *t;
    }
    let mut sum = (0, 0);
    if let Some(k) = skeletons.get(id) {
        sum = (k.files, k.bytes);
        for sub in &k.subtrees {
            let (f, b) = total(sub, skeletons, memo);
            sum.0 += f;
            sum.1 += b;
        }
    }
    memo.insert(*id, sum);
    sum
}

/// Charge each blob to the first snapshot that uses it: fills the per-snapshot shares and the
/// totals in `out`, and returns the stored bytes of the data blobs.
fn charge_snapshots(
    index: &Index,
    snaps: &[(Id, Snapshot)],
    skeletons: &HashMap<Id, Skeleton>,
    out: &mut Stats,
) -> Result<u64> {
    let mut totals: HashMap<Id, (u64, u64)> = HashMap::new();
    // Oldest first: a blob is charged to the first snapshot that uses it. A tree already
    // seen brings nothing new, so it is not descended again.
    let mut seen = Seen::default();
    for (id, s) in snaps {
        let (files, logical) = total(&s.tree, skeletons, &mut totals);
        let (added_bytes, added_chunks) = seen.charge(index, skeletons, s.tree)?;
        out.logical_bytes += logical;
        out.stored_bytes += added_bytes;
        out.per_snapshot.push(SnapshotStats {
            id: *id,
            time: s.time,
            host: s.host.clone(),
            label: s.label.clone(),
            files,
            logical_bytes: logical,
            added_bytes,
            added_chunks,
        });
    }
    out.unique_bytes += seen.unique_bytes;
    out.chunks = seen.chunks.len();
    out.tree_blobs = seen.trees.len();
    Ok(seen.stored_data)
}

/// The trees and chunks already charged to a snapshot, and what the chunks add up to.
#[derive(Default)]
struct Seen {
    trees: HashSet<Id>,
    chunks: HashSet<Id>,
    /// Stored bytes of the chunks.
    stored_data: u64,
    /// Raw bytes of the chunks.
    unique_bytes: u64,
}

impl Seen {
    /// Charge the trees and chunks below `root` not seen before; returns their stored bytes
    /// and how many chunks they are.
    fn charge(
        &mut self,
        index: &Index,
        skeletons: &HashMap<Id, Skeleton>,
        root: Id,
    ) -> Result<(u64, u64)> {
        let mut added_bytes = 0;
        let mut added_chunks = 0;
        let mut stack = vec![root];
        while let Some(tid) = stack.pop() {
            if !self.trees.insert(tid) {
                continue;
            }
            added_bytes += stored_len(index, &tid)?.0;
            let Some(k) = skeletons.get(&tid) else {
                continue;
            };
            for c in &k.chunks {
                if self.chunks.insert(*c) {
                    let (stored, raw) = stored_len(index, c)?;
                    added_bytes += stored;
                    added_chunks += 1;
                    self.stored_data += stored;
                    self.unique_bytes += raw;
                }
            }
            stack.extend(k.subtrees.iter().copied());
        }
        Ok((added_bytes, added_chunks))
    }
}

/// What the vault holds in storage: packs, unused blob bytes, index files, and every object's
/// bytes; needs `out.stored_bytes` already counted.
fn count_storage(vault: &Vault, out: &mut Stats) -> Result<()> {
    let packs = vault.list_ids(DATA)?;
    out.packs = packs.len();
    let pack_bytes: u64 = packs.iter().map(|(_, s)| s).sum();
    // What prune could free: blob bytes the index lists (every copy) that no snapshot uses.
    // Pack preambles and headers are framing, never freed, so they are not counted.
    let listed: u64 = vault
        .scan_index()?
        .packs()
        .iter()
        .flat_map(|p| p.blobs.iter())
        .map(|b| b.stored_len as u64)
        .sum();
    out.unused_bytes = listed.saturating_sub(out.stored_bytes);
    out.index_files = vault.list_ids(INDEX)?.len();
    out.vault_bytes = pack_bytes;
    // `config` is one object, not a folder, so it is fetched rather than listed.
    out.vault_bytes += vault
        .store()
        .get(crate::vault::CONFIG)?
        .map_or(0, |b| b.len() as u64);
    for prefix in [INDEX, SNAPSHOTS, KEYS, crate::vault::lock::LOCKS] {
        out.vault_bytes += vault
            .store()
            .list(prefix)?
            .iter()
            .map(|o| o.size)
            .sum::<u64>();
    }
    Ok(())
}
