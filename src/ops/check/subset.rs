//! `--read-data-subset`: which packs a `check --read-data-subset` run downloads.

use std::str::FromStr;

use crate::error::{Error, Result};
use crate::format::id::Id;

/// Which packs `--read-data-subset` reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Subset {
    /// About this percentage of the packs, chosen at random each run.
    Percent(f64),
    /// Part `n` of `of` (1-based): stable across runs, so running 1/t … t/t reads every pack.
    Part { n: u64, of: u64 },
}

impl FromStr for Subset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Subset> {
        let bad = || {
            Error::InvalidInput(format!(
                "--read-data-subset {s:?}: give a percentage like 10% or a part like 1/7"
            ))
        };
        if let Some(p) = s.trim().strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(v > 0.0 && v <= 100.0) {
                return Err(bad());
            }
            return Ok(Subset::Percent(v));
        }
        let (n, of) = s.split_once('/').ok_or_else(bad)?;
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        let of: u64 = of.trim().parse().map_err(|_| bad())?;
        if n == 0 || of == 0 || n > of {
            return Err(bad());
        }
        Ok(Subset::Part { n, of })
    }
}

impl Subset {
    /// Whether pack `id` is read; `seed` makes percentage picks differ between runs.
    pub(super) fn selects(&self, id: &Id, seed: &[u8; 32]) -> bool {
        match *self {
            Subset::Part { n, of } => {
                let v = u64::from_be_bytes(id.0[..8].try_into().expect("8 bytes"));
                v % of == n - 1
            }
            Subset::Percent(p) if p >= 100.0 => true,
            Subset::Percent(p) => {
                let h = blake3::keyed_hash(seed, &id.0);
                let v = u64::from_be_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"));
                (v as f64) < p / 100.0 * u64::MAX as f64
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_parse_and_reject() {
        assert_eq!("10%".parse::<Subset>().unwrap(), Subset::Percent(10.0));
        assert_eq!(
            "2/7".parse::<Subset>().unwrap(),
            Subset::Part { n: 2, of: 7 }
        );
        for bad in ["0%", "101%", "x%", "0/3", "4/3", "1/0", "half", ""] {
            let e = bad.parse::<Subset>().unwrap_err().to_string();
            assert!(e.contains("--read-data-subset"), "{bad}: {e}");
        }
    }

    #[test]
    fn parts_cover_every_pack_exactly_once() {
        let seed = [7u8; 32];
        for i in 0..200u32 {
            let id = Id::of_object(&i.to_le_bytes());
            let hits = (1..=5)
                .filter(|n| Subset::Part { n: *n, of: 5 }.selects(&id, &seed))
                .count();
            assert_eq!(hits, 1);
        }
    }

    #[test]
    fn percentages_pick_about_that_share() {
        let seed = [9u8; 32];
        let picked = (0..2000u32)
            .filter(|i| Subset::Percent(25.0).selects(&Id::of_object(&i.to_le_bytes()), &seed))
            .count();
        assert!((400..600).contains(&picked), "{picked} of 2000");
        assert!(
            (0..50u32)
                .all(|i| Subset::Percent(100.0).selects(&Id::of_object(&i.to_le_bytes()), &seed))
        );
    }
}
