//! Open files: where each chunk starts, and reads that fetch only what covers them and read ahead when sequential.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::tree::NodeKind;

use super::cache::read_chunk;
use super::{Browser, Entry, MAX_KERNEL_READ, READ_AHEAD};

/// An open file: where each chunk starts, and where its reader is, to see sequential reads.
pub struct OpenFile {
    pub(super) size: u64,
    /// Chunk ids and their offsets in the file.
    pub(super) chunks: Vec<(Id, u64)>,
    /// A symlink's target, served as its content (WebDAV has no symlinks).
    pub(super) inline: Option<Bytes>,
    /// Where the last read started and ended.
    pub(super) last: std::sync::Mutex<(u64, u64)>,
    /// Chunks below this have been read or scheduled ahead.
    pub(super) ahead: AtomicUsize,
    /// Reads ahead never go past this offset (a ranged GET's end).
    pub(super) limit: AtomicU64,
    pub(super) etag: String,
}

impl OpenFile {
    pub fn size(&self) -> u64 {
        self.size
    }
    /// A strong validator for HTTP: changes exactly when the content does.
    pub(crate) fn etag(&self) -> &str {
        &self.etag
    }
    /// Read ahead no further than `end` (a ranged request's end).
    pub(crate) fn limit_read_ahead(&self, end: u64) {
        self.limit.store(end, Ordering::Relaxed);
    }
    /// How many chunks the file is made of.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}

impl Browser {
    /// Open a file (or a symlink, whose content is its target) for reading.
    pub fn open(&self, e: &Entry) -> Result<OpenFile> {
        let Entry::Node { node, .. } = e else {
            return Err(Error::InvalidInput("not a file".into()));
        };
        let what = || format!("file {}", String::from_utf8_lossy(&node.name));
        let (chunks, size, inline) = match &node.kind {
            NodeKind::File { chunks } => {
                let st = self.current();
                let mut at = 0u64;
                let mut v = Vec::with_capacity(chunks.len());
                for id in chunks {
                    let loc = st.index.get(id).ok_or_else(|| {
                        Error::corrupt(what(), format!("chunk {id} is not in any index"))
                    })?;
                    v.push((*id, at));
                    at += loc.raw_len as u64;
                }
                if at != node.size {
                    return Err(Error::corrupt(
                        what(),
                        format!("chunks hold {at} bytes but the tree records {}", node.size),
                    ));
                }
                (v, at, None)
            }
            NodeKind::Symlink { target } => (
                Vec::new(),
                target.len() as u64,
                Some(Bytes::from(target.clone())),
            ),
            NodeKind::Dir { .. } => {
                return Err(Error::InvalidInput(format!("{} is a folder", what())));
            }
        };
        let mut h = blake3::Hasher::new();
        for (id, _) in &chunks {
            h.update(&id.0);
        }
        if let Some(t) = &inline {
            h.update(t);
        }
        h.update(&size.to_le_bytes());
        Ok(OpenFile {
            size,
            chunks,
            inline,
            last: std::sync::Mutex::new((u64::MAX, u64::MAX)),
            ahead: AtomicUsize::new(0),
            limit: AtomicU64::new(u64::MAX),
            etag: hex::encode(&h.finalize().as_bytes()[..16]),
        })
    }

    /// Up to `len` bytes at `offset` (fewer at the end of the file).
    pub fn read(&self, f: &OpenFile, offset: u64, len: usize) -> Result<Vec<u8>> {
        if offset >= f.size || len == 0 {
            return Ok(Vec::new());
        }
        let end = f.size.min(offset.saturating_add(len as u64));
        if let Some(t) = &f.inline {
            return Ok(t[offset as usize..end as usize].to_vec());
        }
        let chunk_end = |i: usize| f.chunks.get(i + 1).map_or(f.size, |c| c.1);
        let first = f
            .chunks
            .partition_point(|c| c.1 <= offset)
            .saturating_sub(1);
        let last = f.chunks.partition_point(|c| c.1 < end); // exclusive
        // Sequential: at or after the last read's start and at most one kernel read past its
        // end (the kernel sends a reader's requests a few at a time, not always in order).
        let sequential = {
            let mut last = f.last.lock().unwrap_or_else(|p| p.into_inner());
            let near = offset >= last.0 && offset <= last.1.saturating_add(MAX_KERNEL_READ);
            *last = (offset, end);
            near
        };
        if sequential {
            self.read_ahead(f, last, end);
        }
        let load = |i: usize| self.chunk(&f.chunks[i].0);
        let parts: Vec<Bytes> = if last - first > 1 {
            self.pool.install(|| {
                (first..last)
                    .into_par_iter()
                    .map(load)
                    .collect::<Result<_>>()
            })?
        } else {
            (first..last).map(load).collect::<Result<_>>()?
        };
        let mut out = Vec::with_capacity((end - offset) as usize);
        for (i, p) in (first..last).zip(parts) {
            let (cs, ce) = (f.chunks[i].1, chunk_end(i));
            if p.len() as u64 != ce - cs {
                return Err(Error::corrupt(
                    format!("chunk {}", f.chunks[i].0),
                    "its length differs from the index",
                ));
            }
            let from = offset.max(cs) - cs;
            let to = end.min(ce) - cs;
            out.extend_from_slice(&p[from as usize..to as usize]);
        }
        Ok(out)
    }

    /// Schedule the chunks from `from` on, up to [`READ_AHEAD`] bytes past `end`.
    pub(super) fn read_ahead(&self, f: &OpenFile, from: usize, end: u64) {
        let stop = end
            .saturating_add(READ_AHEAD)
            .min(f.limit.load(Ordering::Relaxed));
        let upto = f.chunks.partition_point(|c| c.1 < stop);
        let start = f.ahead.fetch_max(upto, Ordering::Relaxed).max(from);
        for i in start..upto {
            let id = f.chunks[i].0;
            if self.chunks.contains_key(&id) {
                continue;
            }
            // Holds the browser only through what the closure needs; a failed read ahead is
            // simply read again (and reported) when the reader gets there.
            let chunks = Arc::clone(&self.chunks);
            let vault = Arc::clone(&self.vault);
            let index = Arc::clone(&self.current().index);
            self.pool.spawn(move || {
                let _ = chunks.get_or_insert_with(&id, || read_chunk(&vault, &index, &id));
            });
        }
    }
}
