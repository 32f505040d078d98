//! `diff` and `find`: how a vault's snapshots differ, and a path's history across them.

use anyhow::{Result, bail};

use super::args::*;

pub fn diff(_a: DiffArgs) -> Result<u8> {
    bail!("diff: not built yet")
}

pub fn find(_a: FindArgs) -> Result<u8> {
    bail!("find: not built yet")
}
