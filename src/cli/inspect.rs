//! `check` and `stats`: read-only views of a vault's health and size.

use anyhow::{Result, bail};

use super::args::*;

pub fn check(_a: CheckArgs) -> Result<u8> {
    bail!("check: not built yet")
}

pub fn stats(_a: StatsArgs) -> Result<u8> {
    bail!("stats: not built yet")
}
