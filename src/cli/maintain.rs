//! `forget`, `prune` and `unlock`: the commands that remove things from a vault.

use anyhow::{Result, bail};
use serde_json::json;
use sitevault::prune::{PruneOptions, PruneReport};

use super::args::*;
use super::commands::{hostname, lock, open};
use super::output::{self, outln};
use super::EXIT_OK;

pub fn forget(_a: ForgetArgs) -> Result<u8> {
    bail!("forget: not built yet")
}

pub fn prune(a: PruneArgs) -> Result<u8> {
    let vault = open(&a.repo)?;
    let lock = lock(&vault, &a.lock, true, "prune")?;
    let opts = PruneOptions {
        dry_run: a.dry_run,
        max_unused: a.max_unused,
    };
    let r = sitevault::prune::prune(&vault, &opts, &|| lock.check())?;
    lock.release()?;
    if a.json {
        output::json(&serde_json::to_value(&r)?);
    } else {
        print_prune(&r);
    }
    Ok(EXIT_OK)
}

pub(super) fn print_prune(r: &PruneReport) {
    let would = if r.dry_run { "would " } else { "" };
    outln!(
        "{} snapshots use {} blobs; {} packs, {} before",
        r.snapshots,
        r.blobs_used,
        r.packs_before,
        output::bytes(r.bytes_before)
    );
    if r.packs_unindexed > 0 {
        outln!(
            "{} packs were in no index (left by interrupted backups)",
            r.packs_unindexed
        );
    }
    if r.packs_missing > 0 {
        outln!(
            "{} packs named in the index no longer exist; no snapshot needs them",
            r.packs_missing
        );
    }
    if !r.packs_unreadable.is_empty() {
        outln!(
            "{} packs in no index have an unreadable header and were left alone; run `sitevault check`",
            r.packs_unreadable.len()
        );
    }
    outln!(
        "{would}delete {} unused packs, repack {} partly used packs ({} rewritten into {} new packs)",
        r.packs_deleted,
        r.packs_repacked,
        output::bytes(r.bytes_rewritten),
        r.packs_written
    );
    outln!(
        "{would}free {}; {} packs, {} after ({} unused kept)",
        output::bytes(r.bytes_freed),
        r.packs_after,
        output::bytes(r.bytes_after),
        output::bytes(r.bytes_unused_after)
    );
}

pub fn unlock(a: UnlockArgs) -> Result<u8> {
    let vault = open(&a.repo)?;
    let removed = sitevault::lock::remove_locks(&vault, &hostname(), a.remove_all)?;
    for l in &removed {
        let who = match &l.info {
            Some(i) => format!("{} (process {} on {})", i.command, i.pid, i.host),
            None => "unreadable lock".into(),
        };
        outln!("removed {} {who}", l.name);
    }
    outln!("{} locks removed", removed.len());
    let _ = json!({});
    Ok(EXIT_OK)
}
