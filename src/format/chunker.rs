//! Where chunks end. Pure functions over byte slices: no I/O, so the same code serves
//! streaming backup, tests and benchmarks.

use std::borrow::Cow;

use fastcdc::v2020::{self, Normalization};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Chunking parameters, stored in the vault config so every writer cuts the same way.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChunkerParams {
    pub cdc_min: u32,
    pub cdc_avg: u32,
    pub cdc_max: u32,
    /// Size of the offset-aligned chunks for page-structured database files.
    pub fixed_size: u32,
    /// Lower-case file extensions (without the dot) chunked at `fixed_size`.
    pub fixed_extensions: Vec<String>,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            cdc_min: 256 * 1024,
            cdc_avg: 1024 * 1024,
            cdc_max: 4 * 1024 * 1024,
            fixed_size: 64 * 1024,
            fixed_extensions: vec!["mdf".into(), "ndf".into(), "sdf".into()],
        }
    }
}

impl ChunkerParams {
    pub fn validate(&self) -> Result<()> {
        let ok = self.cdc_min >= 64
            && self.cdc_min <= self.cdc_avg
            && self.cdc_avg <= self.cdc_max
            && self.cdc_min <= 1024 * 1024
            && self.cdc_max >= 1024
            && self.cdc_max <= 16 * 1024 * 1024
            && self.cdc_min.is_multiple_of(2)
            && self.cdc_max.is_multiple_of(2)
            && self.cdc_avg.is_power_of_two()
            && (256..=(1 << 22)).contains(&self.cdc_avg)
            && self.fixed_size >= 512
            && self.fixed_size <= 64 * 1024 * 1024;
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidInput(format!(
                "invalid chunker parameters {self:?}"
            )))
        }
    }
}

/// How one file is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// FastCDC content-defined boundaries.
    ContentDefined,
    /// Fixed-size chunks at multiples of the size, from offset 0.
    Fixed(usize),
}

/// A configured chunker: FastCDC 2020 masks and a gear table seeded per vault.
#[derive(Debug, Clone)]
pub struct Chunker {
    params: ChunkerParams,
    mask_s: u64,
    mask_l: u64,
    gear: Cow<'static, [u64]>,
    gear_ls: Cow<'static, [u64]>,
}

impl Chunker {
    /// `seed` XORs the gear table so chunk sizes do not fingerprint content across vaults.
    pub fn new(params: ChunkerParams, seed: u64) -> Result<Chunker> {
        params.validate()?;
        let (mask_s, mask_l) = v2020::select_masks(params.cdc_avg as usize, Normalization::Level1);
        let (gear, gear_ls) = v2020::get_gear_with_seed(seed);
        Ok(Chunker {
            params,
            mask_s,
            mask_l,
            gear,
            gear_ls,
        })
    }

    pub fn params(&self) -> &ChunkerParams {
        &self.params
    }

    /// Largest chunk any policy produces; a streaming reader keeps at least this much buffered.
    pub(crate) fn max_chunk(&self) -> usize {
        (self.params.cdc_max as usize).max(self.params.fixed_size as usize)
    }

    /// The policy for a file name: fixed chunks for configured extensions, compared without case.
    pub fn policy_for(&self, file_name: &[u8]) -> Policy {
        let ext = match file_name.iter().rposition(|&b| b == b'.') {
            Some(dot) if dot + 1 < file_name.len() => &file_name[dot + 1..],
            _ => return Policy::ContentDefined,
        };
        let fixed = self
            .params
            .fixed_extensions
            .iter()
            .any(|e| e.as_bytes().eq_ignore_ascii_case(ext));
        if fixed {
            Policy::Fixed(self.params.fixed_size as usize)
        } else {
            Policy::ContentDefined
        }
    }

    /// Length of the chunk that starts at `buf[0]`. Unless `eof`, `buf` must hold at least
    /// [`Chunker::max_chunk`] bytes, so the answer does not depend on how the file was read.
    pub(crate) fn next_chunk_len(&self, policy: Policy, buf: &[u8], eof: bool) -> usize {
        debug_assert!(eof || buf.len() >= self.max_chunk());
        match policy {
            Policy::Fixed(size) => size.min(buf.len()),
            Policy::ContentDefined => {
                let p = &self.params;
                let (_, len) = v2020::cut_gear(
                    buf,
                    p.cdc_min as usize,
                    p.cdc_avg as usize,
                    p.cdc_max as usize,
                    self.mask_s,
                    self.mask_l,
                    self.mask_s << 1,
                    self.mask_l << 1,
                    &self.gear,
                    &self.gear_ls,
                );
                len
            }
        }
    }

    /// Chunk lengths for data held entirely in memory.
    pub fn chunk_lengths(&self, policy: Policy, data: &[u8]) -> Vec<usize> {
        let mut last = 0;
        self.boundaries(policy, data, true)
            .into_iter()
            .map(|b| b - std::mem::replace(&mut last, b))
            .collect()
    }

    /// Whether a chunk may start at `pos` of a buffer of `len` bytes: unless `eof`, at least one
    /// maximum chunk must follow, or the cut could depend on bytes not yet read.
    fn can_cut(&self, len: usize, pos: usize, eof: bool) -> bool {
        pos < len && (eof || len - pos >= self.max_chunk())
    }

    /// Append the ends of the chunks that start at `from` and before `until`; returns the last end.
    fn walk(
        &self,
        policy: Policy,
        buf: &[u8],
        eof: bool,
        from: usize,
        until: usize,
        out: &mut Vec<usize>,
    ) -> usize {
        let mut pos = from;
        while pos < until && self.can_cut(buf.len(), pos, eof) {
            pos += self.next_chunk_len(policy, &buf[pos..], eof);
            out.push(pos);
        }
        pos
    }

    /// End offsets of the chunks of `buf`, which starts at a chunk boundary. Unless `eof`, it
    /// stops where fewer than [`Chunker::max_chunk`] bytes remain; the caller keeps the rest
    /// (from the last end) and calls again with more data.
    pub fn boundaries(&self, policy: Policy, buf: &[u8], eof: bool) -> Vec<usize> {
        let mut out = Vec::new();
        self.walk(policy, buf, eof, 0, buf.len(), &mut out);
        out
    }

    /// Same result as [`Chunker::boundaries`], computed on all cores. Each `segment`-sized piece
    /// is chunked from its own start in parallel, walking on past its end by two average chunks.
    /// A cut depends only on where its chunk starts, so once the exact sequence of ends (which
    /// reaches into a piece through the previous piece's overrun) meets one of that piece's
    /// ends, every later end of the piece is exact too. The overrun almost always contains that
    /// meeting point; if not, the stitcher cuts serially until it finds one.
    pub fn boundaries_parallel(
        &self,
        policy: Policy,
        buf: &[u8],
        eof: bool,
        segment: usize,
    ) -> Vec<usize> {
        use rayon::prelude::*;
        let segment = segment.max(self.max_chunk());
        let n = buf.len().div_ceil(segment);
        if n <= 1 || matches!(policy, Policy::Fixed(_)) {
            return self.boundaries(policy, buf, eof);
        }
        let overrun = 2 * self.params.cdc_avg as usize;
        let pieces: Vec<Vec<usize>> = (0..n)
            .into_par_iter()
            .map(|k| {
                let mut v =
                    Vec::with_capacity((segment + overrun) / self.params.cdc_avg as usize + 2);
                self.walk(
                    policy,
                    buf,
                    eof,
                    k * segment,
                    (k + 1) * segment + overrun,
                    &mut v,
                );
                v
            })
            .collect();
        let mut pieces = pieces.into_iter();
        let mut out = pieces.next().unwrap_or_default();
        let mut pos = out.last().copied().unwrap_or(0);
        for (k, piece) in (1..n).zip(pieces) {
            let start = k * segment;
            let piece_end = piece.last().copied().unwrap_or(start);
            while self.can_cut(buf.len(), pos, eof) && pos < piece_end.max(start + 1) {
                let synced = if pos == start {
                    Some(0)
                } else {
                    piece.binary_search(&pos).ok().map(|i| i + 1)
                };
                if let Some(from) = synced {
                    out.extend_from_slice(&piece[from..]);
                    pos = piece_end.max(pos);
                    break;
                }
                pos += self.next_chunk_len(policy, &buf[pos..], eof);
                out.push(pos);
            }
        }
        // Whatever no piece covered (no meeting point anywhere) is cut serially.
        self.walk(policy, buf, eof, pos, buf.len(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small(seed: u64) -> Chunker {
        let p = ChunkerParams {
            cdc_min: 256,
            cdc_avg: 1024,
            cdc_max: 4096,
            fixed_size: 512,
            ..Default::default()
        };
        Chunker::new(p, seed).unwrap()
    }

    #[test]
    fn policy_follows_extension_without_case() {
        let c = Chunker::new(ChunkerParams::default(), 0).unwrap();
        assert_eq!(c.policy_for(b"CM_CEN.MDF"), Policy::Fixed(65536));
        assert_eq!(c.policy_for(b"log.ldf"), Policy::ContentDefined);
        assert_eq!(c.policy_for(b"Scupdb.sdf"), Policy::Fixed(65536));
        assert_eq!(c.policy_for(b"x.ndf"), Policy::Fixed(65536));
        assert_eq!(c.policy_for(b"mdf"), Policy::ContentDefined);
        assert_eq!(c.policy_for(b"a.mdf.bak"), Policy::ContentDefined);
    }

    #[test]
    fn invalid_params_are_refused() {
        let bad = ChunkerParams {
            cdc_avg: 1000,
            ..Default::default()
        };
        assert!(Chunker::new(bad, 0).is_err());
        let bad = ChunkerParams {
            cdc_min: 8 << 20,
            ..Default::default()
        };
        assert!(Chunker::new(bad, 0).is_err());
    }

    #[test]
    fn long_zero_runs_cut_at_max() {
        let c = small(1);
        let lens = c.chunk_lengths(Policy::ContentDefined, &vec![0u8; 20_000]);
        assert_eq!(lens[..4], [4096, 4096, 4096, 4096]);
        assert_eq!(lens.iter().sum::<usize>(), 20_000);
    }

    /// Data with the shapes that stress stitching: random runs, zero runs (no cut point but the
    /// maximum), and short repeated patterns.
    fn shaped(parts: &[(u8, usize, u64)]) -> Vec<u8> {
        let mut out = Vec::new();
        for &(kind, len, seed) in parts {
            match kind % 3 {
                0 => {
                    let mut v = vec![0u8; len];
                    blake3::Hasher::new_keyed(&[seed as u8; 32])
                        .finalize_xof()
                        .fill(&mut v);
                    out.extend(v);
                }
                1 => out.extend(std::iter::repeat_n(0u8, len)),
                _ => out.extend((0..len).map(|i| b"ABCDEFG"[i % (2 + seed as usize % 5)])),
            }
        }
        out
    }

    proptest! {
        #[test]
        fn parallel_boundaries_equal_serial(
            parts in proptest::collection::vec((any::<u8>(), 0usize..30_000, any::<u64>()), 0..6),
            segment in 4096usize..20_000,
            eof in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let data = shaped(&parts);
            let c = small(seed);
            prop_assert_eq!(
                c.boundaries_parallel(Policy::ContentDefined, &data, eof, segment),
                c.boundaries(Policy::ContentDefined, &data, eof)
            );
        }

        #[test]
        fn parallel_boundaries_around_segment_multiples(k in 1usize..5, delta in -3i64..=3, seed in any::<u64>()) {
            let segment = 8192;
            let len = (k * segment) as i64 + delta;
            let data = shaped(&[(0, len.max(0) as usize, seed)]);
            let c = small(seed);
            for eof in [true, false] {
                prop_assert_eq!(
                    c.boundaries_parallel(Policy::ContentDefined, &data, eof, segment),
                    c.boundaries(Policy::ContentDefined, &data, eof)
                );
            }
        }
    }

    proptest! {
        #[test]
        fn deterministic_and_bounded(data in proptest::collection::vec(any::<u8>(), 0..30_000), seed in any::<u64>()) {
            let a = small(seed).chunk_lengths(Policy::ContentDefined, &data);
            let b = small(seed).chunk_lengths(Policy::ContentDefined, &data);
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(a.iter().sum::<usize>(), data.len());
            for (i, l) in a.iter().enumerate() {
                prop_assert!(*l <= 4096);
                if i + 1 < a.len() { prop_assert!(*l >= 256); }
            }
        }

        #[test]
        fn fixed_chunks_are_offset_aligned(len in 0usize..10_000) {
            let data = vec![7u8; len];
            let lens = small(0).chunk_lengths(Policy::Fixed(512), &data);
            prop_assert_eq!(lens.iter().sum::<usize>(), len);
            prop_assert!(lens.iter().rev().skip(1).all(|l| *l == 512));
        }

        #[test]
        fn an_edit_only_changes_nearby_chunks(data in proptest::collection::vec(any::<u8>(), 20_000..40_000), at in 0usize..20_000) {
            let c = small(3);
            let before = c.chunk_lengths(Policy::ContentDefined, &data);
            let mut edited = data.clone();
            edited[at] ^= 0xff;
            let after = c.chunk_lengths(Policy::ContentDefined, &edited);
            // Boundaries well after the edit resynchronise.
            let ends = |l: &[usize]| l.iter().scan(0, |s, x| { *s += x; Some(*s) }).collect::<std::collections::HashSet<_>>();
            let (b, a) = (ends(&before), ends(&after));
            let late: Vec<_> = b.iter().filter(|e| **e > at + 3 * 4096).collect();
            prop_assert!(late.iter().all(|e| a.contains(e)), "boundaries far after the edit moved");
        }
    }
}
