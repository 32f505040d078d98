//! Summaries more than one command prints: backup progress and results, request counts,
//! retention, prune and old-version sweeps.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use sitevault::Vault;
use sitevault::backup::{BackupObserver, Warning};
use sitevault::prune::PruneReport;

use super::output::{self, outln};

/// Warnings as they happen, and a progress bar (bytes, files, rate, ETA) when stderr is a
/// terminal; nothing but warnings otherwise, so logs and batch files stay clean.
pub(super) struct Progress {
    bar: Option<ProgressBar>,
    files: AtomicU64,
}

impl Progress {
    pub(super) fn new() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} {bytes} {binary_bytes_per_sec} {msg}",
                )
                .expect("valid template"),
            );
            b.enable_steady_tick(std::time::Duration::from_millis(200));
            b
        });
        Progress {
            bar,
            files: AtomicU64::new(0),
        }
    }

    pub(super) fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl BackupObserver for Progress {
    fn warning(&self, w: &Warning) {
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("warning: {w}")),
            None => eprintln!("warning: {w}"),
        }
    }
    fn totals(&self, _files: u64, bytes: u64) {
        if let Some(b) = &self.bar {
            b.set_length(bytes);
            b.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
        }
    }
    fn bytes_done(&self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }
    fn file_done(&self, _path: &std::path::Path, _bytes: u64) {
        let n = self.files.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(b) = &self.bar {
            b.set_message(format!("{n} files"));
        }
    }
}

/// One line on what an immutable vault's retention now is.
pub(super) fn print_retention(r: Option<&sitevault::immutable::RetentionReport>) {
    if let Some(r) = r {
        outln!(
            "retention: {} objects the snapshots need are held until at least {} ({} extended now)",
            r.objects,
            r.immutable_until
                .map_or_else(|| "-".to_string(), |t| t.to_string()),
            r.extended
        );
    }
}

/// The `--json` record of a saved backup (`backup`, and `snapshot` in `afterbackup`).
pub(super) fn backup_json(vault: &Vault, r: &sitevault::BackupResult) -> serde_json::Value {
    json!({
        "id": r.id.to_hex(),
        "short_id": r.id.short(),
        "time": r.snapshot.time.to_string(),
        "host": r.snapshot.host,
        "label": r.snapshot.label,
        "tags": r.snapshot.tags,
        "paths": r.snapshot.paths,
        "complete": r.snapshot.complete,
        "summary": r.snapshot.summary,
        "warnings": r.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        "requests": vault.store().requests(),
        "index": r.index,
    })
}

/// One line on what a command cost in storage requests.
pub(super) fn requests_line(r: &sitevault::store::RequestCounts) -> String {
    format!(
        "{} requests ({} gets, {} range gets, {} puts{}, {} lists, {} deletes); uploaded {}, downloaded {}",
        r.total(),
        r.gets,
        r.range_gets,
        r.puts,
        match r.multipart_uploads {
            0 => String::new(),
            n => format!(" ({n} objects uploaded in parts)"),
        },
        r.lists,
        r.deletes,
        output::bytes(r.bytes_uploaded),
        output::bytes(r.bytes_downloaded)
    )
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
    if !r.packs_damaged_deleted.is_empty() {
        outln!(
            "{would}delete {} damaged packs that no index lists (torn uploads; nothing refers to them)",
            r.packs_damaged_deleted.len()
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

/// One line on the old object versions of an immutable vault.
pub(super) fn print_sweep(w: Option<&sitevault::immutable::SweepReport>) {
    if let Some(w) = w {
        outln!(
            "old versions: {} removed ({}, retention ended); {} still held by Object Lock ({}{})",
            w.versions_removed,
            output::bytes(w.bytes_removed),
            w.versions_held,
            output::bytes(w.bytes_held),
            w.held_until
                .map_or_else(String::new, |t| format!(", until {t} at the latest"))
        );
    }
}
