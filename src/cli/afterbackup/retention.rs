//! Step 4 of an afterbackup run (and of each off-site copy): `[retention]` over the job's
//! label, then prune when the config asks for it.

use anyhow::Result;
use serde_json::{Value, json};
use sitevault::job::RetentionSection;
use sitevault::prune::{PruneOptions, PruneReport};
use sitevault::retention;
use sitevault::vault::lock::VaultLock;

use super::log::RunLog;
use crate::cli::args::AfterbackupArgs;
use crate::cli::context::{lock, remove_snapshots};
use crate::cli::output;

/// Apply `[retention]` to `label`'s snapshots in `vault` under an exclusive lock; `where_`
/// names the vault in log lines (empty for the main one).
pub(super) fn apply_retention(
    vault: &sitevault::Vault,
    a: &AfterbackupArgs,
    ret: &RetentionSection,
    label: &str,
    log: &mut RunLog,
    where_: &str,
) -> Result<Value> {
    let excl = lock(vault, &a.lock, true, "afterbackup retention")?;
    let (kept, ids) = forget(vault, &excl, ret, label, log, where_)?;
    let pruned = if ret.prune {
        Some(prune(vault, &excl, ret, log, where_)?)
    } else {
        None
    };
    if let Some(k) = sitevault::immutable::keep_retained(vault, false)? {
        log.info(&format!(
            "retention{where_}: {} objects held until at least {}",
            k.objects,
            k.immutable_until
                .map_or_else(|| "-".to_string(), |t| t.to_string())
        ));
    }
    excl.release()?;
    Ok(json!({
        "kept": kept,
        "removed": ids.iter().map(|i| i.to_hex()).collect::<Vec<_>>(),
        "prune": pruned,
    }))
}

/// Remove the snapshots of `label` the policy does not keep; returns how many were kept and
/// the ids removed.
fn forget(
    vault: &sitevault::Vault,
    excl: &VaultLock,
    ret: &RetentionSection,
    label: &str,
    log: &mut RunLog,
    where_: &str,
) -> Result<(usize, Vec<sitevault::Id>)> {
    let snaps: Vec<_> = vault
        .list_snapshots()?
        .into_iter()
        .filter(|(_, s)| s.label == label)
        .collect();
    let plans = retention::plan(&snaps, &ret.policy(), &jiff::tz::TimeZone::system())?;
    let removed: Vec<_> = plans
        .iter()
        .flat_map(|g| g.decisions.iter())
        .filter(|d| !d.keep)
        .collect();
    let ids: Vec<sitevault::Id> = removed.iter().map(|d| d.id).collect();
    remove_snapshots(vault, excl, &ids, "afterbackup retention")?;
    for d in &removed {
        log.info(&format!(
            "retention{where_} removed snapshot {} of {} ({})",
            d.id.short(),
            d.time,
            d.reasons.join(", ")
        ));
    }
    let kept = snaps.len() - ids.len();
    log.info(&format!(
        "retention{where_}: kept {kept}, removed {} snapshot(s) of label {label}",
        ids.len()
    ));
    Ok((kept, ids))
}

/// Prune under `excl`, then remove expired old object versions; both are logged.
fn prune(
    vault: &sitevault::Vault,
    excl: &VaultLock,
    ret: &RetentionSection,
    log: &mut RunLog,
    where_: &str,
) -> Result<PruneReport> {
    let opts = PruneOptions {
        max_unused: ret.max_unused(),
        ..PruneOptions::default()
    };
    let p = sitevault::prune::prune(vault, &opts, &|| excl.check())?;
    log.info(&format!(
        "prune{where_}: freed {}, rewrote {}, {} packs left",
        output::bytes(p.bytes_freed),
        output::bytes(p.bytes_rewritten),
        p.packs_after
    ));
    if let Some(w) = sitevault::immutable::sweep_versions(vault, false)? {
        log.info(&format!(
            "prune{where_}: removed {} expired old versions ({}); {} held by Object Lock ({})",
            w.versions_removed,
            output::bytes(w.bytes_removed),
            w.versions_held,
            output::bytes(w.bytes_held)
        ));
    }
    Ok(p)
}
