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
            && self.cdc_min % 2 == 0
            && self.cdc_max % 2 == 0
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
    pub fn max_chunk(&self) -> usize {
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
    pub fn next_chunk_len(&self, policy: Policy, buf: &[u8], eof: bool) -> usize {
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
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let n = self.next_chunk_len(policy, &data[pos..], true);
            out.push(n);
            pos += n;
        }
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
