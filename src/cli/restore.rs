//! `restore`: bring files back from a snapshot.

use anyhow::{Result, bail};
use serde_json::json;
use sitevault::{Destination, snapshot};

use super::args::*;
use super::context::*;
use super::exit::{EXIT_ERROR, EXIT_OK};
use super::output::{self, outln};
use super::report::*;

pub fn run(a: RestoreArgs) -> Result<u8> {
    let vault = open(&a.repo)?;
    let _lock = read_lock(&vault, &a.lock, "restore")?;
    let (id, snap) = match (&a.snapshot, a.at) {
        (_, Some(at)) => {
            let scan = vault.scan_snapshots()?;
            snapshot::select_at(&scan.readable, at, &filter(&a.filter))?.clone()
        }
        (Some(r), None) => find(&vault, r, &a.filter)?,
        (None, None) => bail!("give a snapshot id, `latest`, or --at TIME"),
    };
    if let Some(days) = snap.change_tracking_days {
        let all = vault.scan_snapshots()?.readable;
        if snapshot::outside_change_tracking(&all).contains(&id) {
            eprintln!(
                "warning: snapshot {} is a site backup taken more than {days} days before the newest one of {}: beyond SQL change-tracking retention. If you restore its site database, Configuration Manager must reinitialise the site's data from the other sites (replication reinit), which takes time and network; prefer a newer recovery point unless that is what you want",
                id.short(),
                snap.host
            );
        }
    }
    let index = vault.load_index()?;
    let dest = match &a.target {
        Some(t) => Destination::Target(t.clone()),
        None => Destination::Original,
    };
    let tz = jiff::tz::TimeZone::system();
    let opts = sitevault::restore::RestoreOptions {
        dest,
        filter: sitevault::pattern::PathFilter::new(&a.includes, &a.excludes)?,
        if_exists: a.if_exists,
        dry_run: a.dry_run,
        verify: a.verify,
        stamp: snap
            .time
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H%M")
            .to_string(),
        progress: None,
    };
    let plan = sitevault::restore(&vault, &index, &snap, &opts)?;
    let r = &plan.summary;
    let where_ = match &a.target {
        Some(t) => t.display().to_string(),
        None => "original paths".into(),
    };
    let when = snap.time.to_zoned(tz).strftime("%Y-%m-%d %H:%M:%S %:z");
    if a.json {
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
    } else if a.dry_run {
        for p in &plan.actions {
            let action = serde_json::to_value(p.action)?;
            match &p.written_to {
                Some(alt) => outln!("{:<9}  {} -> {alt}", action.as_str().unwrap_or("?"), p.path),
                None => outln!("{:<9}  {}", action.as_str().unwrap_or("?"), p.path),
            }
        }
        outln!(
            "dry run of snapshot {} ({when}, host {}) to {where_}: {} to write, {} unchanged, {} skipped, {} kept both; nothing was written",
            id.short(),
            snap.host,
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
    } else {
        outln!(
            "restored snapshot {} ({when}, host {}) to {where_}: {} files written, {} unchanged, {} skipped, {} kept both; {} dirs, {} symlinks, {}",
            id.short(),
            snap.host,
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
    if !r.errors.is_empty() {
        // One line for scripts; `--json` lists every failure.
        const SHOWN: usize = 3;
        let mut line = r
            .errors
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        if r.errors.len() > SHOWN {
            line.push_str(&format!(
                "; and {} more (see --json)",
                r.errors.len() - SHOWN
            ));
        }
        eprintln!(
            "error: {} entries could not be restored: {line}",
            r.errors.len()
        );
        return Ok(EXIT_ERROR);
    }
    Ok(EXIT_OK)
}
