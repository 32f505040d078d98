//! Cutting file contents into chunks and storing them: big files go to the big-file worker, and
//! a stream is read batch by batch while the previous batch is chunked and sealed.

use std::fs::File;
use std::io::Read;
use std::sync::mpsc::{SyncSender, sync_channel};

use crate::error::{Error, Result};
use crate::format::chunker::{Chunker, Policy};
use crate::format::id::Id;

use super::Session;

/// Files at least this large go to the big-file worker, one at a time, chunked and sealed on
/// all cores; smaller ones are read whole by the directory walkers, many at once.
const BIG_FILE: u64 = 16 << 20;
/// Bytes read per step of a big file, and the piece each core chunks (a segment much larger than
/// the stitching overrun of two average chunks keeps parallel chunking efficient). Memory per big
/// file is two batches (one being read, one being sealed), whatever the file's size. 16 MiB
/// (from 32) cut nights 2+ of the e2e bench (scale 0.3) from 100 to 74 MiB peak RSS, at the
/// same speed; parallel chunking still gets two segments per batch on two cores.
const BATCH: usize = 16 << 20;
const SEGMENT: usize = 8 << 20;

pub(super) type Chunked = Result<(Vec<Id>, u64), ChunkError>;

/// A big file for the big-file worker, and where to send its chunk ids.
pub(super) struct BigJob {
    pub(super) file: File,
    pub(super) policy: Policy,
    pub(super) reply: SyncSender<Chunked>,
}

impl Session<'_> {
    /// Read `file` to the end, cutting chunks and storing new ones. Returns ids and bytes read.
    /// Big files are handed to the big-file worker; this walker waits for the answer.
    pub(super) fn chunk_file(&self, file: File, policy: Policy, size: u64) -> Chunked {
        if size >= BIG_FILE {
            let tx = self.big.lock().expect("big lock").clone();
            if let Some(tx) = tx {
                let (reply, answer) = sync_channel(1);
                if tx
                    .send(BigJob {
                        file,
                        policy,
                        reply,
                    })
                    .is_ok()
                {
                    return answer.recv().unwrap_or_else(|_| {
                        Err(ChunkError::Vault(Error::InvalidInput(
                            "the big-file worker stopped".into(),
                        )))
                    });
                }
                return Err(ChunkError::Vault(Error::InvalidInput(
                    "the big-file worker stopped".into(),
                )));
            }
        }
        self.chunk_stream_into_packs(file, policy, false)
    }

    /// Chunk all of `file` and store the new chunks; `big` says it came from the big-file worker.
    pub(super) fn chunk_stream_into_packs(&self, file: File, policy: Policy, big: bool) -> Chunked {
        let mut ids = Vec::new();
        let total = chunk_stream(
            self.vault.chunker(),
            policy,
            file,
            (BATCH, SEGMENT),
            |buf, ends| {
                ids.extend(self.packer.add_chunks(buf, ends, big)?);
                self.observer
                    .bytes_done(ends.last().copied().unwrap_or(0) as u64);
                Ok(())
            },
        )?;
        Ok((ids, total))
    }
}

/// Cut everything `reader` yields into chunks, calling `f` with each batch and the end offsets
/// of its chunks; returns the byte count. The next batch is read while `f` works on the current
/// one. A chunk is only cut with a maximum chunk of data after it (or at EOF), so the cuts equal
/// those of [`Chunker::boundaries`] on the whole content however reads fall.
pub(crate) fn chunk_stream<R: Read + Send>(
    chunker: &Chunker,
    policy: Policy,
    mut reader: R,
    (batch, segment): (usize, usize),
    mut f: impl FnMut(&[u8], &[usize]) -> Result<()> + Send,
) -> Result<u64, ChunkError> {
    let batch = batch.max(2 * chunker.max_chunk());
    // Two buffers, swapped each step and reused: a fresh 64 MiB allocation per step would cost
    // a page fault per 4 KiB (a fifth of the time on a re-read night, measured with perf).
    let mut buf = Vec::new();
    let mut spare = Vec::new();
    let mut eof = fill(&mut reader, &mut buf, batch)?;
    let mut total = 0u64;
    loop {
        let ends = chunker.boundaries_parallel(policy, &buf, eof, segment);
        let used = ends.last().copied().unwrap_or(0);
        total += used as u64;
        if eof {
            f(&buf, &ends).map_err(ChunkError::Vault)?;
            return Ok(total);
        }
        spare.clear();
        spare.extend_from_slice(&buf[used..]);
        let (read, done) = rayon::join(|| fill(&mut reader, &mut spare, batch), || f(&buf, &ends));
        done.map_err(ChunkError::Vault)?;
        eof = read?;
        std::mem::swap(&mut buf, &mut spare);
    }
}

/// Append from `reader` until `buf` holds `batch` bytes; true at end of file. `read_to_end`
/// appends without zero-filling and keeps buffers of small files small.
fn fill<R: Read>(reader: &mut R, buf: &mut Vec<u8>, batch: usize) -> Result<bool, ChunkError> {
    let want = batch.saturating_sub(buf.len());
    // Once a file has filled a batch it is big: size the buffer once instead of growing it.
    if buf.capacity() >= batch / 2 {
        buf.reserve_exact(want);
    }
    let got = reader
        .take(want as u64)
        .read_to_end(buf)
        .map_err(ChunkError::Io)?;
    Ok(got < want)
}

#[derive(Debug)]
pub(crate) enum ChunkError {
    Io(std::io::Error),
    Vault(Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::chunker::ChunkerParams;
    use proptest::prelude::*;

    /// Yields the data in reads of the given sizes, cycling, to mimic short reads.
    struct Jagged<'a> {
        data: &'a [u8],
        sizes: Vec<usize>,
        i: usize,
    }
    impl Read for Jagged<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let want = self.sizes[self.i % self.sizes.len()].max(1);
            self.i += 1;
            let n = want.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn small() -> Chunker {
        let p = ChunkerParams {
            cdc_min: 256,
            cdc_avg: 1024,
            cdc_max: 4096,
            fixed_size: 512,
            ..Default::default()
        };
        Chunker::new(p, 7).unwrap()
    }

    proptest! {
        #[test]
        fn streamed_cuts_equal_in_memory_cuts(
            data in proptest::collection::vec(any::<u8>(), 0..40_000),
            zeros in 0usize..20_000,
            sizes in proptest::collection::vec(1usize..9000, 1..8),
            fixed in any::<bool>(),
            batch in 8192usize..30_000,
        ) {
            let mut data = data;
            let mid = data.len() / 2;
            data.splice(mid..mid, std::iter::repeat_n(0u8, zeros));
            let c = small();
            let policy = if fixed { Policy::Fixed(512) } else { Policy::ContentDefined };
            let mut got = Vec::new();
            let mut joined = Vec::new();
            let total = chunk_stream(&c, policy, Jagged { data: &data, sizes, i: 0 }, (batch, 4096), |buf, ends| {
                let mut last = 0;
                for &e in ends {
                    got.push(e - last);
                    last = e;
                }
                joined.extend_from_slice(&buf[..last]);
                Ok(())
            }).unwrap();
            prop_assert!(joined == data, "the chunks do not reassemble the input");
            prop_assert_eq!(total as usize, data.len());
            prop_assert_eq!(got, c.chunk_lengths(policy, &data));
        }
    }
}
