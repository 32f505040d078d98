//! `snapshots`: list the recovery points.

use std::collections::HashSet;

use anyhow::Result;
use serde_json::json;
use sitevault::vault::SnapshotScan;
use sitevault::{Id, Snapshot, SnapshotFilter, snapshot};

use super::args::*;
use super::context::*;
use super::exit::{EXIT_ERROR, EXIT_OK};
use super::output::{self, outln};

pub fn run(a: SnapshotsArgs) -> Result<u8> {
    let vault = open(&a.repo)?;
    let f = filter(&a.filter);
    let scan = vault.scan_snapshots()?;
    let snaps = shown(&scan, &a, &f)?;
    // Change-tracking windows are judged against all of a group's site backups, not only
    // the ones a filter or --at shows.
    let outside = snapshot::outside_change_tracking(&scan.readable);
    if a.json {
        print_json(&snaps, &outside);
    } else {
        print_table(&snaps, &outside);
    }
    Ok(report_unreadable(&scan))
}

/// The readable snapshots the filter matches, or only the one `--at` picks.
fn shown(
    scan: &SnapshotScan,
    a: &SnapshotsArgs,
    f: &SnapshotFilter,
) -> Result<Vec<(Id, Snapshot)>> {
    let mut snaps: Vec<_> = scan
        .readable
        .iter()
        .filter(|(_, s)| f.matches(s))
        .cloned()
        .collect();
    if let Some(at) = a.at {
        snaps = vec![snapshot::select_at(&snaps, at, f)?.clone()];
    }
    Ok(snaps)
}

/// The readable ones are listed; each unreadable one is an error, and the exit code says so.
fn report_unreadable(scan: &SnapshotScan) -> u8 {
    for (id, e) in &scan.unreadable {
        eprintln!("error: snapshot {} cannot be read: {e}", id.short());
    }
    if scan.unreadable.is_empty() {
        EXIT_OK
    } else {
        EXIT_ERROR
    }
}

/// Where a site backup stands against SQL change-tracking retention: `inside`, `outside`, or
/// `None` for other snapshots.
fn window(id: &Id, s: &Snapshot, outside: &HashSet<Id>) -> Option<&'static str> {
    match s.change_tracking_days {
        None => None,
        Some(_) if outside.contains(id) => Some("outside"),
        Some(_) => Some("inside"),
    }
}

/// `snapshots --json`: one object per snapshot.
fn print_json(snaps: &[(Id, Snapshot)], outside: &HashSet<Id>) {
    let arr: Vec<_> = snaps
        .iter()
        .map(|(id, s)| {
            json!({
                "change_tracking": window(id, s, outside),
                "change_tracking_days": s.change_tracking_days,
                "id": id.to_hex(),
                "short_id": id.short(),
                "time": s.time.to_string(),
                "host": s.host,
                "label": s.label,
                "tags": s.tags,
                "paths": s.paths,
                "complete": s.complete,
                "tree": s.tree.to_hex(),
                "previous": s.previous.map(|p| p.to_hex()),
                "program_version": s.program_version,
                "summary": s.summary,
            })
        })
        .collect();
    output::json(&serde_json::Value::Array(arr));
}

/// `snapshots` as a table, with a note when a site database is beyond change tracking.
fn print_table(snaps: &[(Id, Snapshot)], outside: &HashSet<Id>) {
    outln!(
        "{:<8}  {:<20}  {:<16}  {:<16}  {:<10}  {:<8}  {:<8}  paths",
        "id",
        "time (UTC)",
        "host",
        "label",
        "tags",
        "state",
        "sql-ct"
    );
    for (id, s) in snaps {
        let time = s.time.strftime("%Y-%m-%d %H:%M:%S").to_string();
        let state = if s.complete { "complete" } else { "partial" };
        outln!(
            "{:<8}  {:<20}  {:<16}  {:<16}  {:<10}  {:<8}  {:<8}  {}",
            id.short(),
            time,
            s.host,
            s.label,
            s.tags.join(","),
            state,
            window(id, s, outside).map_or("-", |w| if w == "outside" { "OUTSIDE" } else { w }),
            s.paths.join(" ")
        );
    }
    outln!("{} snapshots", snaps.len());
    if snaps.iter().any(|(id, _)| outside.contains(id)) {
        outln!(
            "sql-ct OUTSIDE: the site database in that snapshot is older than SQL change-tracking retention allows; restoring it means the site reinitialises its data from the other sites"
        );
    }
}
