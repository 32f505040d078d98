//! The write half of a backup's data path: decide which blobs are new, seal them (on all
//! cores), fill packs, and hand full packs to an uploader thread that stores them and writes
//! index files. Bounded channels give backpressure, so memory does not grow with input size.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::index::{IndexFile, IndexPack};
use crate::format::pack::BlobKind;
use crate::vault::Vault;
use crate::vault::index::Index;
use crate::vault::pack_writer::PackWriter;

/// Write an index file after this many packs, so a killed backup loses little indexing work.
pub(crate) const PACKS_PER_INDEX: usize = 8;
/// Full packs waiting for the uploader: none, a full pack is handed over when the uploader is
/// free (one more queued pack only held memory: night 1 of the e2e bench peaked 35 MiB higher
/// at the same speed).
pub(crate) const PACKS_IN_FLIGHT: usize = 0;
/// Chunks are sealed in parallel this many bytes at a time, then packed in order: enough work
/// for every core, while only this much sealed output waits in memory.
const SEAL_STEP: usize = 8 << 20;

pub(crate) struct Packer<'a> {
    vault: &'a Vault,
    index: &'a Index,
    /// Blobs this run has already queued, so concurrent files never store one twice.
    claimed: Mutex<HashSet<Id>>,
    /// Open packs, made when their first blob comes (a spooled one is a file).
    data: Mutex<Option<PackWriter>>,
    /// Big files' chunks fill packs of their own, so a file's chunks lie back to back and a
    /// restore reads it in few, large range requests instead of ranges broken by small files.
    big_data: Mutex<Option<PackWriter>>,
    tree: Mutex<Option<PackWriter>>,
    /// `None` once closed.
    uploads: Mutex<Option<SyncSender<PackWriter>>>,
    pub data_blobs: AtomicU64,
    pub tree_blobs: AtomicU64,
}

impl<'a> Packer<'a> {
    pub fn new(vault: &'a Vault, index: &'a Index, uploads: SyncSender<PackWriter>) -> Packer<'a> {
        Packer {
            vault,
            index,
            claimed: Mutex::new(HashSet::new()),
            data: Mutex::new(None),
            big_data: Mutex::new(None),
            tree: Mutex::new(None),
            uploads: Mutex::new(Some(uploads)),
            data_blobs: AtomicU64::new(0),
            tree_blobs: AtomicU64::new(0),
        }
    }

    /// True the first time this run sees a blob the vault does not have.
    fn claim(&self, id: Id) -> bool {
        !self.index.contains(&id) && self.claimed.lock().expect("claim lock").insert(id)
    }

    /// Store one blob unless the vault or this run already has it.
    pub fn add_blob(&self, kind: BlobKind, data: &[u8]) -> Result<Id> {
        let id = self.vault.blob_id(kind, data);
        if self.claim(id) {
            let sealed = self.vault.seal_blob(data)?;
            let pack = match kind {
                BlobKind::Data => &self.data,
                BlobKind::Tree => &self.tree,
            };
            self.push(pack, kind, id, &sealed, data.len())?;
        }
        Ok(id)
    }

    /// Store the data chunks of `buf` ending at `ends` (hashing and sealing in parallel on the
    /// current rayon pool); returns their ids in order. `big`: from the big-file worker, which
    /// handles one file at a time.
    pub fn add_chunks(&self, buf: &[u8], ends: &[usize], big: bool) -> Result<Vec<Id>> {
        let pack = if big { &self.big_data } else { &self.data };
        let mut ids = Vec::with_capacity(ends.len());
        let mut from = 0;
        while from < ends.len() {
            // Chunks [from, to) hold about SEAL_STEP bytes (at least one chunk).
            let base = if from == 0 { 0 } else { ends[from - 1] };
            let to = from + 1 + ends[from + 1..].partition_point(|&e| e - base <= SEAL_STEP);
            let sealed: Vec<(Id, Option<Vec<u8>>, usize)> = (from..to)
                .into_par_iter()
                .map(|i| {
                    let chunk = &buf[if i == 0 { 0 } else { ends[i - 1] }..ends[i]];
                    let id = self.vault.blob_id(BlobKind::Data, chunk);
                    let sealed = if self.claim(id) {
                        Some(self.vault.seal_blob(chunk)?)
                    } else {
                        None
                    };
                    Ok((id, sealed, chunk.len()))
                })
                .collect::<Result<_>>()?;
            for (id, s, len) in sealed {
                if let Some(s) = s {
                    self.push(pack, BlobKind::Data, id, &s, len)?;
                }
                ids.push(id);
            }
            from = to;
        }
        Ok(ids)
    }

    fn push(
        &self,
        lock: &Mutex<Option<PackWriter>>,
        kind: BlobKind,
        id: Id,
        sealed: &[u8],
        raw_len: usize,
    ) -> Result<()> {
        let counter = match kind {
            BlobKind::Data => &self.data_blobs,
            BlobKind::Tree => &self.tree_blobs,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let full = {
            let mut open = lock.lock().expect("pack lock");
            let w = match &mut *open {
                Some(w) => w,
                None => open.insert(self.vault.pack_writer(kind)?),
            };
            w.add(id, sealed, raw_len);
            if w.len() >= self.vault.config().pack_size as usize {
                open.take()
            } else {
                None
            }
        };
        match full {
            Some(w) => self.send(w),
            None => Ok(()),
        }
    }

    fn send(&self, w: PackWriter) -> Result<()> {
        // Clone the sender so the lock is not held while a full channel blocks.
        let tx = self.uploads.lock().expect("upload lock").clone();
        match tx {
            Some(tx) => tx.send(w).map_err(|_| uploader_stopped()),
            None => Err(uploader_stopped()),
        }
    }

    /// Send the partly filled packs and close the upload channel.
    pub fn finish(&self) -> Result<()> {
        for lock in [&self.data, &self.big_data, &self.tree] {
            let w = lock.lock().expect("pack lock").take();
            if let Some(w) = w.filter(|w| !w.is_empty()) {
                self.send(w)?;
            }
        }
        self.close();
        Ok(())
    }

    /// Close the upload channel (also on error paths, so the uploader thread ends).
    pub fn close(&self) {
        self.uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }
}

fn uploader_stopped() -> Error {
    Error::Store {
        object: "packs".into(),
        detail: "the pack uploader stopped".into(),
    }
}

/// What the uploader stored.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Uploaded {
    pub packs: u64,
    pub bytes: u64,
}

/// Store packs as they arrive, on as many threads as the store takes connections, then the
/// index files naming them (each worker indexes its own packs, always after storing them);
/// runs until the channel closes.
pub(crate) fn upload_packs(vault: &Vault, rx: Receiver<PackWriter>) -> Result<Uploaded> {
    let workers = vault.store().connections().max(1);
    if workers == 1 {
        return upload_worker(vault, &Mutex::new(rx));
    }
    let rx = Mutex::new(rx);
    let results: Vec<Result<Uploaded>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| scope.spawn(|| upload_worker(vault, &rx)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::InvalidInput("a pack uploader panicked".into())))
            })
            .collect()
    });
    let mut done = Uploaded::default();
    for r in results {
        let r = r?;
        done.packs += r.packs;
        done.bytes += r.bytes;
    }
    Ok(done)
}

/// The next full pack; the receiver is held only while taking it, not while it uploads.
fn next_pack(rx: &Mutex<Receiver<PackWriter>>) -> Option<PackWriter> {
    rx.lock().unwrap_or_else(|e| e.into_inner()).recv().ok()
}

fn upload_worker(vault: &Vault, rx: &Mutex<Receiver<PackWriter>>) -> Result<Uploaded> {
    let mut done = Uploaded::default();
    let mut unindexed: Vec<IndexPack> = Vec::new();
    while let Some(w) = next_pack(rx) {
        let kind = w.kind();
        let (bytes, id, blobs) = w.finish(vault.sealer())?;
        done.bytes += bytes.len();
        done.packs += 1;
        vault.save_pack(&id, bytes)?;
        unindexed.push(IndexPack { id, kind, blobs });
        if unindexed.len() >= PACKS_PER_INDEX {
            vault.save_index(&IndexFile {
                supersedes: vec![],
                packs: std::mem::take(&mut unindexed),
            })?;
        }
    }
    if !unindexed.is_empty() {
        vault.save_index(&IndexFile {
            supersedes: vec![],
            packs: unindexed,
        })?;
    }
    Ok(done)
}
