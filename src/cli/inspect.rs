//! `check` and `stats`: read-only views of a vault's health and size.

use anyhow::Result;
use sitevault::check::{CheckOptions, CheckReport, DamagedSnapshot, ReadData, Subset};

use super::args::*;
use super::context::*;
use super::exit::{EXIT_ERROR, EXIT_OK};
use super::output::{self, outln};

/// Damaged paths shown per snapshot in text output; `--json` lists all.
const PATHS_SHOWN: usize = 20;

pub fn check(a: CheckArgs) -> Result<u8> {
    let read_data = read_data(&a)?;
    let vault = open(&a.repo)?;
    let _lock = read_lock(&vault, &a.lock, "check")?;
    let opts = CheckOptions {
        read_data,
        all_headers: a.all_headers,
    };
    let r = sitevault::check::check(&vault, &opts)?;
    if a.json {
        let mut v = serde_json::to_value(&r)?;
        v["clean"] = serde_json::Value::Bool(r.is_clean());
        output::json(&v);
    } else {
        print_check(&r, read_data);
    }
    if r.is_clean() {
        return Ok(EXIT_OK);
    }
    eprintln!(
        "error: vault {} is damaged: {} problem(s), {} damaged pack(s), {} snapshot(s) affected; first: {}",
        vault.location(),
        r.errors.len(),
        r.damaged_packs.len(),
        r.damaged_snapshots.len(),
        r.errors[0]
    );
    Ok(EXIT_ERROR)
}

/// How much stored data `--read-data` or `--read-data-subset` asks check to read.
fn read_data(a: &CheckArgs) -> Result<ReadData> {
    Ok(match (&a.read_data_subset, a.read_data) {
        (Some(s), _) => ReadData::Subset(s.parse::<Subset>()?),
        (None, true) => ReadData::All,
        (None, false) => ReadData::None,
    })
}

/// `check` as text: what was read, each problem, the damaged packs and snapshots.
fn print_check(r: &CheckReport, read_data: ReadData) {
    outln!(
        "checked {} snapshots, {} index files, {} packs, {} trees, {} chunks",
        r.snapshots,
        r.index_files,
        r.packs,
        r.trees,
        r.data_blobs
    );
    if r.headers_skipped > 0 {
        outln!(
            "read {} pack headers; {} more were verified before on this host with the same index entries (--all-headers reads them too)",
            r.headers_read,
            r.headers_skipped
        );
    }
    if read_data != ReadData::None {
        outln!(
            "read {} packs, {} blobs, {}",
            r.packs_read,
            r.blobs_read,
            output::bytes(r.bytes_read)
        );
    }
    for w in &r.warnings {
        outln!("warning: {w}");
    }
    for e in &r.errors {
        outln!("error: {e}");
    }
    if !r.damaged_packs.is_empty() {
        outln!("damaged packs:");
        for p in &r.damaged_packs {
            outln!("  {}", p.to_hex());
        }
    }
    let tz = jiff::tz::TimeZone::system();
    for d in &r.damaged_snapshots {
        print_damaged_snapshot(d, &tz);
    }
    if r.is_clean() {
        outln!("no damage found");
    }
}

/// One damaged snapshot: when and whose it is, and the first paths that cannot be restored.
fn print_damaged_snapshot(d: &DamagedSnapshot, tz: &jiff::tz::TimeZone) {
    let Some(time) = d.time else {
        outln!("snapshot {} cannot be read at all", d.id.short());
        return;
    };
    outln!(
        "snapshot {} ({}, host {}{}): {} files and {} folders cannot be restored:",
        d.id.short(),
        time.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M:%S %:z"),
        d.host,
        if d.label.is_empty() {
            String::new()
        } else {
            format!(", label {}", d.label)
        },
        d.files.len(),
        d.dirs.len()
    );
    let paths: Vec<String> = d
        .dirs
        .iter()
        .map(|p| format!("{p} (folder listing unreadable: everything below it)"))
        .chain(d.files.iter().cloned())
        .collect();
    for p in paths.iter().take(PATHS_SHOWN) {
        outln!("  {p}");
    }
    if paths.len() > PATHS_SHOWN {
        outln!("  … and {} more (see --json)", paths.len() - PATHS_SHOWN);
    }
}

pub fn stats(a: StatsArgs) -> Result<u8> {
    let vault = open(&a.repo)?;
    let _lock = read_lock(&vault, &a.lock, "stats")?;
    let s = sitevault::stats::stats(&vault)?;
    let retained = sitevault::immutable::keep_retained(&vault, true)?;
    if a.json {
        let mut v = serde_json::to_value(&s)?;
        if let Some(k) = &retained {
            v["immutable_until"] = serde_json::to_value(k.immutable_until)?;
        }
        v["requests"] = serde_json::to_value(vault.store().requests())?;
        output::json(&v);
        return Ok(EXIT_OK);
    }
    super::report::print_retention(retained.as_ref());
    outln!(
        "{} snapshots hold {} in files; the vault stores {} for them ({:.2}x: {:.2}x dedup, {:.2}x compression)",
        s.snapshots,
        output::bytes(s.logical_bytes),
        output::bytes(s.stored_bytes),
        s.ratio,
        s.dedup_ratio,
        s.compression_ratio
    );
    outln!(
        "{} distinct chunks ({}), {} trees, {} packs, {} index files; {} in storage, {} unused until prune",
        s.chunks,
        output::bytes(s.unique_bytes),
        s.tree_blobs,
        s.packs,
        s.index_files,
        output::bytes(s.vault_bytes),
        output::bytes(s.unused_bytes)
    );
    if !s.per_snapshot.is_empty() {
        outln!(
            "{:<10}  {:<26}  {:<16}  {:>9}  {:>12}  {:>12}",
            "ID",
            "TIME",
            "HOST",
            "FILES",
            "SIZE",
            "ADDED"
        );
    }
    let tz = jiff::tz::TimeZone::system();
    for p in &s.per_snapshot {
        outln!(
            "{:<10}  {:<26}  {:<16}  {:>9}  {:>12}  {:>12}",
            p.id.short(),
            p.time
                .to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S %:z")
                .to_string(),
            p.host,
            p.files,
            output::bytes(p.logical_bytes),
            output::bytes(p.added_bytes)
        );
    }
    outln!(
        "{}",
        super::report::requests_line(&vault.store().requests())
    );
    Ok(EXIT_OK)
}
