//! `diff` and `find`: how a vault's snapshots differ, and a path's history across them.

use std::io::Write;

use anyhow::Result;
use serde_json::json;
use sitevault::history::{self, EntryKind};
use sitevault::pattern::PathFilter;

use super::args::*;
use super::context::find as find_snapshot;
use super::context::*;
use super::exit::EXIT_OK;
use super::output::{self, outln};

fn lossy(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

fn local_time(t: jiff::Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

fn mtime(ns: i64) -> Option<jiff::Timestamp> {
    jiff::Timestamp::from_nanosecond(ns as i128).ok()
}

pub fn diff(a: DiffArgs) -> Result<u8> {
    let vault = open(&a.repo)?;
    let _lock = read_lock(&vault, &a.lock, "diff")?;
    let (id1, s1) = find_snapshot(&vault, &a.snapshot1, &a.filter)?;
    let (id2, s2) = find_snapshot(&vault, &a.snapshot2, &a.filter)?;
    let index = vault.load_index()?;
    let d = history::diff(&vault, &index, &s1, &s2)?;
    if a.json {
        let changes: Vec<_> = d
            .entries
            .iter()
            .map(|e| {
                json!({
                    "change": e.change,
                    "path": lossy(&e.path),
                    "type": e.kind,
                    "size_before": e.size_before,
                    "size_after": e.size_after,
                })
            })
            .collect();
        output::json(&json!({
            "snapshot1": id1.to_hex(),
            "snapshot2": id2.to_hex(),
            "changes": changes,
            "summary": d.summary,
        }));
        return Ok(EXIT_OK);
    }
    let sep: &[u8] = match s2.path_style {
        sitevault::paths::PathStyle::Unix => b"/",
        sitevault::paths::PathStyle::Windows => b"\\",
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = d.entries.iter().try_for_each(|e| {
        let mut line = vec![e.change.mark() as u8, b' '];
        line.extend_from_slice(&e.path);
        // A trailing separator marks directories, as restic and rsync users expect.
        if e.kind == EntryKind::Dir && !e.path.ends_with(sep) {
            line.extend_from_slice(sep);
        }
        output::raw_line(&mut out, &line)
    });
    match written.and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(EXIT_OK),
        r => r?,
    }
    drop(out);
    let s = &d.summary;
    outln!(
        "{} ({}) -> {} ({}): {} added, {} removed, {} modified, {} with only new metadata; +{}, -{}",
        id1.short(),
        local_time(s1.time),
        id2.short(),
        local_time(s2.time),
        s.added,
        s.removed,
        s.modified,
        s.metadata_only,
        output::bytes(s.bytes_added),
        output::bytes(s.bytes_removed)
    );
    Ok(EXIT_OK)
}

pub fn find(a: FindArgs) -> Result<u8> {
    let pattern = PathFilter::new(std::slice::from_ref(&a.pattern), &[])?;
    let vault = open(&a.repo)?;
    let _lock = read_lock(&vault, &a.lock, "find")?;
    let snaps = matching_snapshots(&vault, &filter(&a.filter), "is not searched")?;
    let index = vault.load_index()?;
    let hits = history::find(&vault, &index, &snaps, &pattern)?;
    if a.json {
        let arr: Vec<_> = hits
            .iter()
            .map(|h| {
                json!({
                    "snapshot": h.snapshot.to_hex(),
                    "time": h.time.to_string(),
                    "host": h.host,
                    "label": h.label,
                    "path": lossy(&h.path),
                    "type": h.kind,
                    "size": h.size,
                    "mtime": mtime(h.mtime_ns).map(|t| t.to_string()),
                })
            })
            .collect();
        output::json(&serde_json::Value::Array(arr));
        return Ok(EXIT_OK);
    }
    if hits.is_empty() {
        outln!(
            "no path matching {:?} in {} snapshots",
            a.pattern,
            snaps.len()
        );
        return Ok(EXIT_OK);
    }
    outln!(
        "{:<8}  {:<26}  {:<16}  {:>10}  {:<26}  PATH",
        "SNAPSHOT",
        "TIME",
        "HOST",
        "SIZE",
        "MTIME"
    );
    for h in &hits {
        let size = match h.kind {
            EntryKind::File => output::bytes(h.size),
            EntryKind::Dir => "dir".into(),
            EntryKind::Symlink => "symlink".into(),
        };
        outln!(
            "{:<8}  {:<26}  {:<16}  {:>10}  {:<26}  {}",
            h.snapshot.short(),
            local_time(h.time),
            h.host,
            size,
            mtime(h.mtime_ns).map(local_time).unwrap_or_default(),
            lossy(&h.path)
        );
    }
    let in_snaps = hits
        .iter()
        .map(|h| h.snapshot)
        .collect::<std::collections::HashSet<_>>()
        .len();
    outln!(
        "{} {} in {} of {} snapshots",
        hits.len(),
        if hits.len() == 1 { "match" } else { "matches" },
        in_snaps,
        snaps.len()
    );
    Ok(EXIT_OK)
}
