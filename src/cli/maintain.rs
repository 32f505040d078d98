//! `forget`, `prune` and `unlock`: the commands that remove things from a vault.

use anyhow::{Result, bail};
use serde_json::json;
use sitevault::immutable::{RetentionReport, SweepReport};
use sitevault::prune::{PruneOptions, PruneReport};
use sitevault::retention::{self, GroupPlan, KeepWithin, Policy};
use sitevault::snapshot;
use sitevault::vault::SnapshotScan;
use sitevault::vault::lock::VaultLock;
use sitevault::{Id, Vault};

use super::args::*;
use super::context::*;
use super::exit::EXIT_OK;
use super::output::{self, outln};
use super::report::*;

pub fn forget(a: ForgetArgs) -> Result<u8> {
    let vault = open(&a.repo)?;
    // A dry run changes nothing, so it only needs to keep prune away while it reads.
    let lock = lock(&vault, &a.lock, !a.dry_run, "forget")?;
    let f = filter(&a.filter);
    let scan = vault.scan_snapshots()?;
    let unreadable_named = unreadable_named(&a.ids, &scan)?;
    let snaps: Vec<_> = scan
        .readable
        .into_iter()
        .filter(|(_, s)| f.matches(s))
        .collect();
    let policy = policy(&a.policy)?;
    let plans = plan(&a, &snaps, &policy, &f, &unreadable_named, &scan.unreadable)?;
    let remove = to_remove(&a, &plans, &unreadable_named);
    if !a.dry_run {
        remove_snapshots(&vault, &lock, &remove, "forget")?;
    }
    let after = Aftermath::of(&vault, &a, &remove, &lock)?;
    lock.release()?;
    if a.json {
        print_forget_json(&a, &plans, &remove, &after);
    } else {
        print_forget(&a, &plans, &remove, &after);
    }
    Ok(EXIT_OK)
}

/// The unreadable snapshots the arguments name; each other unreadable one gets a warning.
/// A snapshot whose record cannot be read can still be forgotten by its id, as check and
/// prune advise: it is only an object name then.
fn unreadable_named(ids: &[String], scan: &SnapshotScan) -> Result<Vec<Id>> {
    let mut unreadable_named = Vec::new();
    for (id, e) in &scan.unreadable {
        if let Some(r) = ids
            .iter()
            .find(|r| names_unreadable(r, id, &scan.unreadable))
        {
            let r = r.to_ascii_lowercase();
            if scan
                .readable
                .iter()
                .any(|(o, _)| o.to_hex().starts_with(&r))
            {
                bail!(
                    "snapshot prefix {r:?} is ambiguous: it matches a readable and an unreadable snapshot; give more hex digits"
                );
            }
            unreadable_named.push(*id);
        } else {
            eprintln!(
                "warning: snapshot {} cannot be read and is left alone: {e}",
                id.short()
            );
        }
    }
    Ok(unreadable_named)
}

/// The retention policy the `--keep-*` flags give (empty when none is given).
fn policy(p: &PolicyArgs) -> Result<Policy> {
    Ok(Policy {
        keep_last: p.keep_last.unwrap_or(0),
        keep_hourly: p.keep_hourly.unwrap_or(0),
        keep_daily: p.keep_daily.unwrap_or(0),
        keep_weekly: p.keep_weekly.unwrap_or(0),
        keep_monthly: p.keep_monthly.unwrap_or(0),
        keep_yearly: p.keep_yearly.unwrap_or(0),
        keep_within: p
            .keep_within
            .as_deref()
            .map(str::parse::<KeepWithin>)
            .transpose()?,
        keep_tags: p.keep_tags.clone(),
    })
}

/// What to keep and remove of `snaps`: by the policy, or exactly the snapshots named (the
/// unreadable ones among them are left to the caller).
fn plan(
    a: &ForgetArgs,
    snaps: &[(Id, sitevault::Snapshot)],
    policy: &Policy,
    f: &sitevault::SnapshotFilter,
    unreadable_named: &[Id],
    unreadable: &[(Id, sitevault::Error)],
) -> Result<Vec<GroupPlan>> {
    if a.ids.is_empty() {
        return Ok(retention::plan(
            snaps,
            policy,
            &jiff::tz::TimeZone::system(),
        )?);
    }
    if !policy.is_empty() {
        bail!("give snapshot ids or --keep-* rules, not both");
    }
    let mut ids = Vec::new();
    for r in &a.ids {
        if unreadable_named
            .iter()
            .any(|id| names_unreadable(r, id, unreadable))
        {
            continue;
        }
        ids.push(snapshot::select(snaps, r, f)?.0);
    }
    Ok(retention::plan_ids(snaps, &ids))
}

/// The snapshots to remove: those the plans do not keep, then the unreadable ones named
/// (each announced on stderr).
fn to_remove(a: &ForgetArgs, plans: &[GroupPlan], unreadable_named: &[Id]) -> Vec<Id> {
    let mut remove: Vec<Id> = plans
        .iter()
        .flat_map(|g| g.decisions.iter())
        .filter(|d| !d.keep)
        .map(|d| d.id)
        .collect();
    for id in unreadable_named {
        eprintln!(
            "{} unreadable snapshot {}",
            if a.dry_run {
                "would remove"
            } else {
                "removing"
            },
            id.to_hex()
        );
    }
    remove.extend(unreadable_named);
    remove
}

/// What follows the forgetting, still under its lock: the prune and the sweep of old
/// versions (with `--prune`), and the Object Lock retention of what is kept.
struct Aftermath {
    pruned: Option<PruneReport>,
    sweep: Option<SweepReport>,
    retained: Option<RetentionReport>,
}

impl Aftermath {
    /// Prune and sweep if asked, then extend the retention of what is kept.
    fn of(vault: &Vault, a: &ForgetArgs, remove: &[Id], lock: &VaultLock) -> Result<Aftermath> {
        let pruned = if a.prune {
            // A dry run previews the prune as if the snapshots were already gone.
            let opts = PruneOptions {
                dry_run: a.dry_run,
                max_unused: a.max_unused,
                assume_forgotten: if a.dry_run {
                    remove.iter().copied().collect()
                } else {
                    Default::default()
                },
                ..PruneOptions::default()
            };
            Some(sitevault::prune::prune(vault, &opts, &|| lock.check())?)
        } else {
            None
        };
        let sweep = if a.prune {
            sitevault::immutable::sweep_versions(vault, a.dry_run)?
        } else {
            None
        };
        // Forgotten snapshots' objects are no longer extended; what is kept stays held.
        let retained = if a.dry_run {
            None
        } else {
            sitevault::immutable::keep_retained(vault, false)?
        };
        Ok(Aftermath {
            pruned,
            sweep,
            retained,
        })
    }
}

/// `forget --json`: each group's kept and removed snapshots, and what followed.
fn print_forget_json(a: &ForgetArgs, plans: &[GroupPlan], remove: &[Id], after: &Aftermath) {
    let groups: Vec<_> = plans
        .iter()
        .map(|g| {
            let list = |keep: bool| -> Vec<serde_json::Value> {
                g.decisions
                    .iter()
                    .filter(|d| d.keep == keep)
                    .map(|d| {
                        json!({
                            "id": d.id.to_hex(),
                            "short_id": d.id.short(),
                            "time": d.time.to_string(),
                            "complete": d.complete,
                            "reasons": d.reasons,
                        })
                    })
                    .collect()
            };
            json!({
                "host": g.group.host,
                "label": g.group.label,
                "keep": list(true),
                "remove": list(false),
            })
        })
        .collect();
    output::json(&json!({
        "dry_run": a.dry_run,
        "groups": groups,
        "removed": if a.dry_run { 0 } else { remove.len() },
        "prune": after.pruned,
        "versions": after.sweep,
        "retention": after.retained,
    }));
}

/// `forget` as text: each group's decisions, the count removed, and what followed.
fn print_forget(a: &ForgetArgs, plans: &[GroupPlan], remove: &[Id], after: &Aftermath) {
    let tz = jiff::tz::TimeZone::system();
    for g in plans {
        let kept = g.decisions.iter().filter(|d| d.keep).count();
        outln!(
            "host {}, label {:?}: keep {kept}, remove {}",
            g.group.host,
            g.group.label,
            g.decisions.len() - kept
        );
        for d in &g.decisions {
            outln!(
                "  {:<6}  {}  {}  {:<10}  {}",
                if d.keep { "keep" } else { "remove" },
                d.id.short(),
                d.time
                    .to_zoned(tz.clone())
                    .strftime("%Y-%m-%d %H:%M:%S %:z"),
                if d.complete { "complete" } else { "incomplete" },
                d.reasons.join(", ")
            );
        }
    }
    if a.dry_run {
        outln!("dry run: {} snapshots would be removed", remove.len());
    } else {
        outln!("{} snapshots removed", remove.len());
    }
    if let Some(r) = &after.pruned {
        print_prune(r);
    }
    print_sweep(after.sweep.as_ref());
    super::report::print_retention(after.retained.as_ref());
}

/// Whether `r` (a snapshot argument) names the unreadable snapshot `id`: its full hex, or a
/// prefix of at least 4 digits that no other unreadable snapshot shares.
fn names_unreadable(r: &str, id: &Id, unreadable: &[(Id, sitevault::Error)]) -> bool {
    let r = r.to_ascii_lowercase();
    r.len() >= 4
        && id.to_hex().starts_with(&r)
        && unreadable
            .iter()
            .filter(|(o, _)| o.to_hex().starts_with(&r))
            .count()
            == 1
}

pub fn prune(a: PruneArgs) -> Result<u8> {
    let vault = open(&a.repo)?;
    let lock = lock(&vault, &a.lock, true, "prune")?;
    let opts = PruneOptions {
        dry_run: a.dry_run,
        max_unused: a.max_unused,
        ..PruneOptions::default()
    };
    let r = sitevault::prune::prune(&vault, &opts, &|| lock.check())?;
    let sweep = sitevault::immutable::sweep_versions(&vault, a.dry_run)?;
    lock.release()?;
    if a.json {
        let mut v = serde_json::to_value(&r)?;
        if let Some(w) = &sweep {
            v["versions"] = serde_json::to_value(w)?;
        }
        output::json(&v);
    } else {
        print_prune(&r);
        print_sweep(sweep.as_ref());
    }
    Ok(EXIT_OK)
}

pub fn unlock(a: UnlockArgs) -> Result<u8> {
    let vault = open(&a.repo)?;
    let removed = sitevault::vault::lock::remove_locks(&vault, &hostname(), a.remove_all)?;
    for l in &removed {
        let who = match &l.info {
            Some(i) => format!("{} (process {} on {})", i.command, i.pid, i.host),
            None => "unreadable lock".into(),
        };
        outln!("removed {} {who}", l.name);
    }
    outln!("{} locks removed", removed.len());
    Ok(EXIT_OK)
}
