//! Copy snapshots from one vault to another (a local vault to its off-site copies). The two
//! vaults may have different keys: every blob is opened with the source's keys and stored
//! with the destination's, under the destination's ids, and trees are rebuilt with those ids.
//!
//! A snapshot counts as already copied when the destination holds one with the same time,
//! host, label and paths, so running `copy` again copies only what is new. Packs go first,
//! then their index files, then the snapshots: an interrupted copy leaves packs the next run
//! adopts (or prune removes), never a snapshot without its data.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::pack::BlobKind;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{NodeKind, Tree};
use crate::vault::Vault;
use crate::vault::index::Index;
use crate::vault::packer::{PACKS_IN_FLIGHT, Packer, upload_packs};

/// Stored bytes of one file's chunks read and re-sealed at a time: bounds memory for big files,
/// and is also the largest range read, so a cloud source is read in few requests.
const READ_WINDOW: u64 = 16 << 20;
/// Bytes of blobs not needed that one range read may span to join two that are.
const MAX_GAP: u64 = 256 << 10;

#[derive(Debug, Clone, Serialize)]
pub struct Copied {
    /// The snapshot in the source vault.
    pub from: Id,
    /// Its copy in the destination.
    pub to: Id,
    pub time: jiff::Timestamp,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CopyReport {
    pub copied: Vec<Copied>,
    /// Source snapshots the destination already holds.
    pub already_there: Vec<Id>,
    /// Chunk bytes read from the source (those the destination might lack).
    pub bytes_read: u64,
    pub data_blobs_added: u64,
    pub tree_blobs_added: u64,
    /// Bytes of new packs stored in the destination.
    pub bytes_added: u64,
    pub packs_added: u64,
}

/// Whether `a` and `b` are the same recovery point (same time, host, label and paths): a
/// snapshot the destination already holds in this sense is not copied again.
fn same_point(a: &Snapshot, b: &Snapshot) -> bool {
    a.time == b.time && a.host == b.host && a.label == b.label && a.paths == b.paths
}

/// Copy `wanted` (source snapshots, any order) into `dst`. `fence` is checked before the
/// snapshots are written (the destination lock is still held).
pub fn copy(
    src: &Vault,
    dst: &Vault,
    wanted: &[(Id, Snapshot)],
    fence: &dyn Fn() -> Result<()>,
) -> Result<CopyReport> {
    let mut report = CopyReport::default();
    let existing = dst.scan_snapshots()?;
    let todo = still_to_copy(wanted, &existing.readable, &mut report);
    if todo.is_empty() {
        return Ok(report);
    }
    let roots = copy_trees(src, dst, &todo, &mut report)?;

    // Every pack and index file is stored: now the snapshots, oldest first.
    fence()?;
    save_snapshots(dst, &todo, roots, existing.readable, &mut report)?;
    Ok(report)
}

/// The snapshots of `wanted` that `existing` (the destination's) holds no copy of, each point
/// once, oldest first; the others are noted in `report`.
fn still_to_copy<'a>(
    wanted: &'a [(Id, Snapshot)],
    existing: &[(Id, Snapshot)],
    report: &mut CopyReport,
) -> Vec<&'a (Id, Snapshot)> {
    let mut todo: Vec<&(Id, Snapshot)> = Vec::new();
    for w in wanted {
        if existing.iter().any(|(_, d)| same_point(&w.1, d)) {
            report.already_there.push(w.0);
        } else if !todo.iter().any(|t| same_point(&t.1, &w.1)) {
            todo.push(w);
        }
    }
    todo.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
    todo
}

/// Store the trees of `todo` and everything below them in `dst` (packs, then their index
/// files); returns the destination ids of their root trees, in order.
fn copy_trees(
    src: &Vault,
    dst: &Vault,
    todo: &[&(Id, Snapshot)],
    report: &mut CopyReport,
) -> Result<Vec<Id>> {
    let src_index = src.load_index()?;
    let mut dst_index = dst.load_index()?;
    dst.adopt_unindexed_packs(&mut dst_index)?;
    // With the same chunk-id key, ids carry over and blobs the destination has need not be read.
    let probe = b"sitevault copy: do the vaults share a chunk-id key?";
    let same_ids = src.blob_id(BlobKind::Data, probe) == dst.blob_id(BlobKind::Data, probe);

    let (tx, rx) = sync_channel(PACKS_IN_FLIGHT);
    let packer = Packer::new(dst, &dst_index, tx);
    let c = Copier {
        src,
        src_index: &src_index,
        dst_index: &dst_index,
        packer: &packer,
        same_ids,
        chunks: Mutex::new(HashMap::new()),
        trees: Mutex::new(HashMap::new()),
        bytes_read: AtomicU64::new(0),
    };
    let (roots, uploaded) = std::thread::scope(|scope| {
        let uploader = scope.spawn(|| upload_packs(dst, rx));
        let roots: Result<Vec<Id>> = todo
            .iter()
            .map(|(_, s)| c.tree(&s.tree))
            .collect::<Result<_>>()
            .and_then(|r| packer.finish().map(|_| r));
        // On an error the uploader must still be told to end.
        packer.close();
        let uploaded = uploader
            .join()
            .unwrap_or_else(|_| Err(Error::InvalidInput("the pack uploader panicked".into())));
        (roots, uploaded)
    });
    let roots = roots?;
    let uploaded = uploaded?;
    report.bytes_read = c.bytes_read.load(Ordering::Relaxed);
    report.data_blobs_added = packer.data_blobs.load(Ordering::Relaxed);
    report.tree_blobs_added = packer.tree_blobs.load(Ordering::Relaxed);
    report.bytes_added = uploaded.bytes;
    report.packs_added = uploaded.packs;
    Ok(roots)
}

/// Store a copy of each snapshot of `todo` (oldest first) with its root tree from `roots`,
/// after the destination's snapshots `here` (as listed at the start).
fn save_snapshots(
    dst: &Vault,
    todo: &[&(Id, Snapshot)],
    roots: Vec<Id>,
    mut here: Vec<(Id, Snapshot)>,
    report: &mut CopyReport,
) -> Result<()> {
    // A predecessor is named by its id in this vault: the newest one of the same host and
    // label here (as listed at the start), copies just made included.
    for ((from, s), tree) in todo.iter().map(|t| (t.0, &t.1)).zip(roots) {
        let mut copy = s.clone();
        copy.tree = tree;
        copy.previous = here
            .iter()
            .filter(|(_, h)| h.host == s.host && h.label == s.label && h.time <= s.time)
            .max_by_key(|(id, h)| (h.time, *id))
            .map(|(id, _)| *id);
        let to = dst.save_snapshot(&copy)?;
        here.push((to, copy));
        report.copied.push(Copied {
            from,
            to,
            time: s.time,
        });
    }
    Ok(())
}

struct Copier<'a> {
    src: &'a Vault,
    src_index: &'a Index,
    dst_index: &'a Index,
    packer: &'a Packer<'a>,
    same_ids: bool,
    /// Source id → destination id, for chunks and trees already handled in this run.
    chunks: Mutex<HashMap<Id, Id>>,
    trees: Mutex<HashMap<Id, Id>>,
    bytes_read: AtomicU64,
}

impl Copier<'_> {
    /// The destination id of source tree `id`, storing it and everything below it.
    fn tree(&self, id: &Id) -> Result<Id> {
        if let Some(t) = self.trees.lock().expect("tree map").get(id) {
            return Ok(*t);
        }
        let mut t: Tree = self.src.load_tree(self.src_index, id)?;
        // The folder's files are copied together, so small files that share a source pack
        // come in one range read instead of one each.
        let all: Vec<Id> = t
            .nodes
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::File { chunks } => Some(chunks.iter().copied()),
                _ => None,
            })
            .flatten()
            .collect();
        let mut mapped = self.chunks(&all)?.into_iter();
        for n in &mut t.nodes {
            match &mut n.kind {
                NodeKind::File { chunks } => {
                    for c in chunks.iter_mut() {
                        *c = mapped.next().ok_or_else(|| {
                            Error::InvalidInput("copy: chunk count changed".into())
                        })?;
                    }
                }
                NodeKind::Dir { subtree } => *subtree = self.tree(subtree)?,
                NodeKind::Symlink { .. } => {}
            }
        }
        let new = self.packer.add_blob(BlobKind::Tree, &t.encode())?;
        self.trees.lock().expect("tree map").insert(*id, new);
        Ok(new)
    }

    /// The destination ids of source chunks, copying those the destination lacks.
    fn chunks(&self, ids: &[Id]) -> Result<Vec<Id>> {
        let mut out = Vec::with_capacity(ids.len());
        let mut from = 0;
        while from < ids.len() {
            let (mut to, mut bytes) = (from, 0u64);
            while to < ids.len() && (to == from || bytes < READ_WINDOW) {
                bytes += self
                    .src_index
                    .get(&ids[to])
                    .map_or(0, |l| l.stored_len as u64);
                to += 1;
            }
            let window = &ids[from..to];
            let fetched = self.fetch(window)?;
            let mapped: Vec<Id> = window
                .par_iter()
                .map(|id| self.chunk(id, &fetched))
                .collect::<Result<_>>()?;
            out.extend(mapped);
            from = to;
        }
        Ok(out)
    }

    /// Whether chunk `id` must be read from the source.
    fn needed(&self, id: &Id) -> bool {
        !(self.chunks.lock().expect("chunk map").contains_key(id)
            || self.same_ids && self.dst_index.contains(id))
    }

    /// Read and open the chunks of `window` that must be copied: neighbours in a source pack
    /// come in one range read, and the reads run in parallel.
    fn fetch(&self, window: &[Id]) -> Result<HashMap<Id, Vec<u8>>> {
        let mut wanted: Vec<(Id, crate::vault::index::BlobLocation)> = Vec::new();
        for id in window {
            if self.needed(id) && !wanted.iter().any(|(w, _)| w == id) {
                let loc = self
                    .src_index
                    .get(id)
                    .ok_or_else(|| Error::corrupt(format!("blob {id}"), "not in any index"))?;
                crate::vault::index::check_blob_kind(loc.kind, BlobKind::Data, id)?;
                wanted.push((*id, loc));
            }
        }
        wanted.sort_by_key(|(_, l)| (l.pack, l.offset));
        // Ranges of `wanted`: (pack, start, end, first, last+1).
        let mut ranges: Vec<(Id, u64, u64, usize, usize)> = Vec::new();
        for (i, (_, l)) in wanted.iter().enumerate() {
            let (start, end) = (l.offset as u64, l.offset as u64 + l.stored_len as u64);
            match ranges.last_mut() {
                Some(r) if r.0 == l.pack && start <= r.2 + MAX_GAP => {
                    r.2 = r.2.max(end);
                    r.4 = i + 1;
                }
                _ => ranges.push((l.pack, start, end, i, i + 1)),
            }
        }
        let opened: Vec<Vec<(Id, Vec<u8>)>> = ranges
            .par_iter()
            .map(|&(pack, start, end, first, last)| {
                let name = crate::vault::pack_name(&pack);
                let buf = self.src.store().get_range_exact(&name, start..end)?;
                wanted[first..last]
                    .iter()
                    .map(|(id, l)| {
                        let at = (l.offset as u64 - start) as usize;
                        let sealed = &buf[at..at + l.stored_len as usize];
                        let data =
                            self.src
                                .open_blob(sealed, id, BlobKind::Data, l.raw_len, &name)?;
                        Ok((*id, data))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<_>>()?;
        Ok(opened.into_iter().flatten().collect())
    }

    fn chunk(&self, id: &Id, fetched: &HashMap<Id, Vec<u8>>) -> Result<Id> {
        if let Some(d) = self.chunks.lock().expect("chunk map").get(id) {
            return Ok(*d);
        }
        if self.same_ids && self.dst_index.contains(id) {
            return Ok(*id);
        }
        let data = fetched.get(id).ok_or_else(|| {
            Error::InvalidInput(format!("copy: chunk {} was not fetched", id.short()))
        })?;
        self.bytes_read
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        let new = self.packer.add_blob(BlobKind::Data, data)?;
        let mut map = self.chunks.lock().expect("chunk map");
        // A chunk twice in one window: the first to get here stored it.
        Ok(*map.entry(*id).or_insert(new))
    }
}
