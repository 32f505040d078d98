//! `restore`: bring files back from a snapshot.

use anyhow::{Result, bail};
use serde_json::json;
use sitevault::restore::{RestoreOptions, RestorePlan};
use sitevault::{Destination, Id, Snapshot, Vault, snapshot};

use super::args::*;
use super::context::*;
use super::exit::{EXIT_ERROR, EXIT_OK};
use super::output::{self, outln};
use super::report::*;

pub fn run(a: RestoreArgs) -> Result<u8> {
    let vault = open(&a.repo)?;
    let _lock = read_lock(&vault, &a.lock, "restore")?;
    let (id, snap) = choose(&vault, &a)?;
    warn_outside_change_tracking(&vault, &id, &snap)?;
    let index = vault.load_index()?;
    let opts = options(&a, &snap)?;
    let plan = sitevault::restore(&vault, &index, &snap, &opts)?;
    if a.json {
        print_json(&vault, &a, &id, &snap, &plan);
    } else if a.dry_run {
        print_dry_run(&a, &id, &snap, &plan)?;
    } else {
        print_restored(&vault, &a, &id, &snap, &plan);
    }
    Ok(report_errors(&plan.summary.errors))
}

/// The snapshot to restore: the one `--at` picks, else the one named.
fn choose(vault: &Vault, a: &RestoreArgs) -> Result<(Id, Snapshot)> {
    Ok(match (&a.snapshot, a.at) {
        (_, Some(at)) => {
            let scan = vault.scan_snapshots()?;
            snapshot::select_at(&scan.readable, at, &filter(&a.filter))?.clone()
        }
        (Some(r), None) => find(vault, r, &a.filter)?,
        (None, None) => bail!("give a snapshot id, `latest`, or --at TIME"),
    })
}

/// Warn when `snap` is a site backup beyond SQL change-tracking retention.
fn warn_outside_change_tracking(vault: &Vault, id: &Id, snap: &Snapshot) -> Result<()> {
    if let Some(days) = snap.change_tracking_days {
        let all = vault.scan_snapshots()?.readable;
        if snapshot::outside_change_tracking(&all).contains(id) {
            eprintln!(
                "warning: snapshot {} is a site backup taken more than {days} days before the newest one of {}: beyond SQL change-tracking retention. If you restore its site database, Configuration Manager must reinitialise the site's data from the other sites (replication reinit), which takes time and network; prefer a newer recovery point unless that is what you want",
                id.short(),
                snap.host
            );
        }
    }
    Ok(())
}

/// The restore options the arguments give; keep-both copies are stamped with the snapshot's
/// local time.
fn options(a: &RestoreArgs, snap: &Snapshot) -> Result<RestoreOptions> {
    let dest = match &a.target {
        Some(t) => Destination::Target(t.clone()),
        None => Destination::Original,
    };
    let tz = jiff::tz::TimeZone::system();
    Ok(RestoreOptions {
        dest,
        filter: sitevault::pattern::PathFilter::new(&a.includes, &a.excludes)?,
        if_exists: a.if_exists,
        dry_run: a.dry_run,
        verify: a.verify,
        stamp: snap.time.to_zoned(tz).strftime("%Y-%m-%d %H%M").to_string(),
        progress: None,
    })
}

/// Where the files go, for the summary line.
fn where_to(a: &RestoreArgs) -> String {
    match &a.target {
        Some(t) => t.display().to_string(),
        None => "original paths".into(),
    }
}

/// The snapshot's local time, for the summary line.
fn when(snap: &Snapshot) -> String {
    let tz = jiff::tz::TimeZone::system();
    snap.time
        .to_zoned(tz)
        .strftime("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

/// `restore --json`: the summary, and with `--dry-run` every planned action.
fn print_json(vault: &Vault, a: &RestoreArgs, id: &Id, snap: &Snapshot, plan: &RestorePlan) {
    let r = &plan.summary;
    output::json(&json!({
        "snapshot": id.to_hex(),
        "time": snap.time.to_string(),
        "host": snap.host,
        "dry_run": a.dry_run,
        "files": r.files, "dirs": r.dirs, "symlinks": r.symlinks,
        "files_unchanged": r.files_unchanged, "files_skipped": r.files_skipped,
        "files_kept_both": r.files_kept_both,
        "files_verified": if a.verify { Some(r.files_verified) } else { None },
        "bytes_written": r.bytes_written, "errors": r.errors,
        "actions": if a.dry_run { Some(&plan.actions) } else { None },
        "requests": vault.store().requests(),
    }));
}

/// `restore --dry-run`: each planned action, then what would be written.
fn print_dry_run(a: &RestoreArgs, id: &Id, snap: &Snapshot, plan: &RestorePlan) -> Result<()> {
    let r = &plan.summary;
    for p in &plan.actions {
        let action = serde_json::to_value(p.action)?;
        match &p.written_to {
            Some(alt) => outln!("{:<9}  {} -> {alt}", action.as_str().unwrap_or("?"), p.path),
            None => outln!("{:<9}  {}", action.as_str().unwrap_or("?"), p.path),
        }
    }
    outln!(
        "dry run of snapshot {} ({}, host {}) to {}: {} to write, {} unchanged, {} skipped, {} kept both; nothing was written",
        id.short(),
        when(snap),
        snap.host,
        where_to(a),
        plan.actions
            .iter()
            .filter(|p| matches!(
                p.action,
                sitevault::restore::Action::Write | sitevault::restore::Action::Overwrite
            ))
            .count(),
        r.files_unchanged,
        r.files_skipped,
        r.files_kept_both
    );
    Ok(())
}

/// What was restored, verified, and the requests it took.
fn print_restored(vault: &Vault, a: &RestoreArgs, id: &Id, snap: &Snapshot, plan: &RestorePlan) {
    let r = &plan.summary;
    outln!(
        "restored snapshot {} ({}, host {}) to {}: {} files written, {} unchanged, {} skipped, {} kept both; {} dirs, {} symlinks, {}",
        id.short(),
        when(snap),
        snap.host,
        where_to(a),
        r.files,
        r.files_unchanged,
        r.files_skipped,
        r.files_kept_both,
        r.dirs,
        r.symlinks,
        output::bytes(r.bytes_written)
    );
    if a.verify {
        outln!("verified {} files against the snapshot", r.files_verified);
    }
    outln!("  {}", requests_line(&vault.store().requests()));
}

/// Print the entries that could not be restored, if any; returns the exit code.
fn report_errors(errors: &[String]) -> u8 {
    if errors.is_empty() {
        return EXIT_OK;
    }
    // One line for scripts; `--json` lists every failure.
    const SHOWN: usize = 3;
    let mut line = errors
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if errors.len() > SHOWN {
        line.push_str(&format!("; and {} more (see --json)", errors.len() - SHOWN));
    }
    eprintln!(
        "error: {} entries could not be restored: {line}",
        errors.len()
    );
    EXIT_ERROR
}
