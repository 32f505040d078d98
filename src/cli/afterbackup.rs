//! `afterbackup`: the one call in AfterBackup.bat. Verify the site backup, archive it and
//! everything the backup task leaves out as one recovery point, apply retention, and log each
//! step where an admin will look. Exit 0 good, 1 refused or failed, 3 archived but incomplete.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use sitevault::BackupOptions;
use sitevault::job::{JobConfig, SourceKind};
use sitevault::prune::PruneOptions;
use sitevault::retention;
use sitevault::size::parse_budget;

use super::args::*;
use super::context::*;
use super::report::*;

use super::exit::{EXIT_ERROR, EXIT_INCOMPLETE, EXIT_OK};
use super::output::{self, outln};

/// Appends timestamped lines to the configured log file (and nothing when none is set).
struct RunLog {
    file: Option<(PathBuf, File)>,
}

impl RunLog {
    fn open(path: Option<&Path>) -> Result<RunLog> {
        let file = match path {
            Some(p) => Some((
                p.to_path_buf(),
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| {
                        format!("cannot open the log file {} ([log] file)", p.display())
                    })?,
            )),
            None => None,
        };
        Ok(RunLog { file })
    }

    fn line(&mut self, level: &str, msg: &str) {
        let Some((path, f)) = &mut self.file else {
            return;
        };
        let now = jiff::Zoned::now().strftime("%Y-%m-%d %H:%M:%S %:z");
        // A log that cannot be written must not stop the archive; say so once on stderr.
        if let Err(e) = writeln!(f, "{now}  {level:<5}  {msg}") {
            eprintln!("warning: cannot write the log file {}: {e}", path.display());
            self.file = None;
        }
    }

    fn info(&mut self, msg: &str) {
        self.line("INFO", msg)
    }
    fn warn(&mut self, msg: &str) {
        self.line("WARN", msg)
    }
    fn error(&mut self, msg: &str) {
        self.line("ERROR", msg)
    }
}

/// One thing to archive.
struct Source {
    kind: SourceKind,
    path: PathBuf,
    files: u64,
    bytes: u64,
}

pub fn afterbackup(a: AfterbackupArgs) -> Result<u8> {
    let started = Instant::now();
    let cfg = JobConfig::load(&a.config)?;
    let mut log = RunLog::open(cfg.log.as_ref().map(|l| l.file.as_path()))?;
    log.info(&format!(
        "start: sitevault {} afterbackup{}, config {}, site {}, label {}",
        env!("CARGO_PKG_VERSION"),
        if a.dry_run { " (dry run)" } else { "" },
        a.config.display(),
        cfg.site.code,
        cfg.label()
    ));
    let mut report = json!({
        "dry_run": a.dry_run,
        "config": a.config.display().to_string(),
        "site": cfg.site.code,
        "label": cfg.label(),
        "log_file": cfg.log.as_ref().map(|l| l.file.display().to_string()),
    });
    let result = run(&a, &cfg, &mut log, &mut report);
    let secs = started.elapsed().as_secs_f64();
    report["duration_secs"] = json!(secs);
    let code = match &result {
        Ok(code) => *code,
        Err(e) => {
            let msg = output::one_line(e);
            log.error(&format!("failed: {msg}"));
            report["error"] = json!(msg);
            EXIT_ERROR
        }
    };
    let outcome = match code {
        EXIT_OK => "ok",
        EXIT_INCOMPLETE => "incomplete",
        _ if report.get("refused").is_some() => "refused",
        _ => "failed",
    };
    report["outcome"] = json!(outcome);
    report["exit_code"] = json!(code);
    log.line(
        match code {
            EXIT_OK => "INFO",
            EXIT_INCOMPLETE => "WARN",
            _ => "ERROR",
        },
        &format!("end: {outcome} (exit code {code}) after {secs:.1} s"),
    );
    if a.json {
        output::json(&report);
    }
    match result {
        // The CLI prints the error line for anything but a refusal, already printed.
        Err(e) if report.get("refused").is_none() => Err(e),
        _ => Ok(code),
    }
}

fn run(a: &AfterbackupArgs, cfg: &JobConfig, log: &mut RunLog, report: &mut Value) -> Result<u8> {
    // 1. The site backup must be good, or nothing happens at all.
    let site = match sitevault::sccm::verify_site_backup(
        &cfg.site.backup_folder,
        cfg.site.backup_log.as_deref(),
    ) {
        Ok(s) => s,
        Err(e) => {
            log.error(&format!("site backup refused: {e}"));
            report["refused"] = json!(e.to_string());
            eprintln!("error: {e}");
            return Ok(EXIT_ERROR);
        }
    };
    log.info(&format!(
        "site backup verified: {} line {}: {}; {} database file(s) in {}",
        site.log.display(),
        site.success_line_no,
        site.success_line,
        site.mdf_files.len(),
        site.site_db_server.display()
    ));
    report["site_backup"] = serde_json::to_value(&site)?;

    // 2. Sources: what exists is archived; what is missing makes the run incomplete.
    let mut warnings: Vec<String> = Vec::new();
    let mut sources: Vec<Source> = Vec::new();
    let mut add = |kind: SourceKind, path: PathBuf, warnings: &mut Vec<String>| {
        if std::fs::symlink_metadata(&path).is_err() {
            warnings.push(format!(
                "{} source {} does not exist or cannot be examined; it is not in this recovery point",
                kind.tag(),
                path.display()
            ));
            return;
        }
        if sources.iter().any(|s| s.path == path) {
            return;
        }
        let (files, bytes) = sitevault::job::measure(&path);
        sources.push(Source {
            kind,
            path,
            files,
            bytes,
        });
    };
    add(
        SourceKind::SiteBackup,
        cfg.site.backup_folder.clone(),
        &mut warnings,
    );
    for p in cfg.sources.content_library.to_vec() {
        add(SourceKind::ContentLibrary, p, &mut warnings);
    }
    for p in cfg.sources.package_sources.to_vec() {
        add(SourceKind::PackageSources, p, &mut warnings);
    }
    for profiles in cfg.sources.scup_profiles.to_vec() {
        match sitevault::sccm::find_scup_databases(&profiles) {
            Ok(found) => {
                if found.found.is_empty() {
                    log.info(&format!(
                        "no SCUP database found below {}",
                        profiles.display()
                    ));
                }
                for p in found.found {
                    add(SourceKind::Scup, p, &mut warnings);
                }
                for (p, e) in found.unreadable {
                    warnings.push(format!(
                        "cannot search {} for SCUP databases: {e}",
                        p.display()
                    ));
                }
            }
            Err(e) => warnings.push(format!("cannot search for SCUP databases: {e}")),
        }
    }
    for p in cfg.sources.extra.to_vec() {
        add(SourceKind::Extra, p, &mut warnings);
    }
    for s in &sources {
        log.info(&format!(
            "source {}: {} ({} files, {})",
            s.kind.tag(),
            s.path.display(),
            s.files,
            output::bytes(s.bytes)
        ));
    }
    for w in &warnings {
        log.warn(w);
        eprintln!("warning: {w}");
    }
    report["sources"] = json!(
        sources
            .iter()
            .map(|s| json!({"kind": s.kind, "path": s.path.display().to_string(), "files": s.files, "bytes": s.bytes}))
            .collect::<Vec<_>>()
    );

    // 3. One snapshot: the recovery point.
    let repo = repo_args(cfg, &cfg.vault.repository, &cfg.vault.options);
    let vault = open(&repo)?;
    let mut tags: Vec<String> = Vec::new();
    for s in &sources {
        let t = s.kind.tag().to_string();
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    let host = a.host.clone().unwrap_or_else(hostname);
    let label = cfg.label();
    if a.dry_run {
        let files: u64 = sources.iter().map(|s| s.files).sum();
        let bytes: u64 = sources.iter().map(|s| s.bytes).sum();
        log.info(&format!(
            "dry run: would archive {} sources ({files} files, {}) as label {label}, tags {}",
            sources.len(),
            output::bytes(bytes),
            tags.join(",")
        ));
        if !a.json {
            outln!(
                "dry run: site backup verified; would archive {} sources ({files} files, {}) into {}; nothing was written",
                sources.len(),
                output::bytes(bytes),
                vault.location()
            );
        }
        report["warnings"] = json!(warnings);
        // The dry run predicts the real run's exit code: a missing source would make it 3.
        return Ok(if warnings.is_empty() {
            EXIT_OK
        } else {
            EXIT_INCOMPLETE
        });
    }
    let opts = BackupOptions {
        paths: sources.iter().map(|s| s.path.clone()).collect(),
        host: host.clone(),
        label: label.clone(),
        tags,
        time: a.time,
        force_reread: false,
        missing_sources: warnings.len() as u64,
        change_tracking_days: Some(cfg.site.change_tracking_days),
    };
    let shared = lock(&vault, &a.lock, false, "afterbackup")?;
    let progress = Progress::new();
    let r = sitevault::backup(&vault, &opts, &progress, Some(&shared));
    progress.finish();
    let r = r?;
    if let Some(k) = sitevault::immutable::keep_retained(&vault, false)? {
        log.info(&format!(
            "retention: {} objects held until at least {} ({} extended)",
            k.objects,
            k.immutable_until
                .map_or_else(|| "-".to_string(), |t| t.to_string()),
            k.extended
        ));
    }
    shared.release()?;
    for w in &r.warnings {
        warnings.push(w.to_string());
        log.warn(&w.to_string());
    }
    let complete = r.snapshot.complete;
    let s = &r.snapshot.summary;
    log.info(&format!(
        "snapshot {} saved ({}): {} files, read {}, added {} to the vault",
        r.id.to_hex(),
        if complete { "complete" } else { "INCOMPLETE" },
        s.files,
        output::bytes(s.bytes_read),
        output::bytes(s.bytes_added)
    ));
    report["snapshot"] = backup_json(&vault, &r);
    report["warnings"] = json!(warnings);

    // 4. Retention over this label's snapshots only.
    if let Some(ret) = &cfg.retention {
        report["retention"] = apply_retention(&vault, a, ret, &label, log, "")?;
    }

    // 5. Off-site copies: every recovery point of this label each target lacks, then the
    // same retention there. A failed target is logged and makes the run incomplete (exit 3):
    // the local recovery point stands.
    let mut copies_failed = 0;
    let mut copies = Vec::new();
    for target in &cfg.vault.copy_to {
        match copy_to(&vault, a, cfg, target, &label, log) {
            Ok(v) => copies.push(v),
            Err(e) => {
                copies_failed += 1;
                let msg = output::one_line(&e);
                log.error(&format!("copy to {target} failed: {msg}"));
                eprintln!("warning: copy to {target} failed: {msg}");
                copies.push(json!({"target": target, "ok": false, "error": msg}));
            }
        }
    }
    if !cfg.vault.copy_to.is_empty() {
        report["copies"] = json!(copies);
    }
    if !a.json {
        outln!(
            "recovery point {} saved ({}): {} sources, {} files, {} read, {} added",
            r.id.short(),
            if complete { "complete" } else { "INCOMPLETE" },
            sources.len(),
            s.files,
            output::bytes(s.bytes_read),
            output::bytes(s.bytes_added)
        );
    }
    if copies_failed > 0 && complete {
        eprintln!(
            "warning: the recovery point was saved, but {copies_failed} off-site cop(ies) failed (see the log)"
        );
        return Ok(EXIT_INCOMPLETE);
    }
    if !complete {
        eprintln!(
            "warning: the recovery point is incomplete: {} warning(s), first: {}",
            warnings.len(),
            warnings.first().map_or("", |w| w.as_str())
        );
        return Ok(EXIT_INCOMPLETE);
    }
    Ok(EXIT_OK)
}

/// Apply `[retention]` to `label`'s snapshots in `vault` under an exclusive lock; `where_`
/// names the vault in log lines (empty for the main one).
fn apply_retention(
    vault: &sitevault::Vault,
    a: &AfterbackupArgs,
    ret: &sitevault::job::RetentionSection,
    label: &str,
    log: &mut RunLog,
    where_: &str,
) -> Result<Value> {
    let excl = lock(vault, &a.lock, true, "afterbackup retention")?;
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
    remove_snapshots(vault, &excl, &ids, "afterbackup retention")?;
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
    let pruned = if ret.prune {
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
        Some(p)
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

/// Copy this label's recovery points that `target` lacks into it, then apply retention there.
fn copy_to(
    vault: &sitevault::Vault,
    a: &AfterbackupArgs,
    cfg: &JobConfig,
    target: &str,
    label: &str,
    log: &mut RunLog,
) -> Result<Value> {
    let none = Default::default();
    let options = cfg.vault.copy_options.get(target).unwrap_or(&none);
    let repo = repo_args(cfg, target, options);
    let dst = open(&repo)?;
    let wanted: Vec<_> = vault
        .list_snapshots()?
        .into_iter()
        .filter(|(_, s)| s.label == label)
        .collect();
    let shared = lock(&dst, &a.lock, false, "afterbackup copy")?;
    let r = sitevault::copy::copy(vault, &dst, &wanted, &|| shared.check())?;
    shared.release()?;
    log.info(&format!(
        "copy to {target}: {} recovery point(s) copied, {} already there, {} new packs ({}); {}",
        r.copied.len(),
        r.already_there.len(),
        r.packs_added,
        output::bytes(r.bytes_added),
        super::report::requests_line(&dst.store().requests())
    ));
    let retention = match &cfg.retention {
        Some(ret) => Some(apply_retention(
            &dst,
            a,
            ret,
            label,
            log,
            &format!(" on {target}"),
        )?),
        None => None,
    };
    Ok(json!({
        "target": target,
        "ok": true,
        "copy": r,
        "retention": retention,
        "requests": dst.store().requests(),
    }))
}

/// How to open `repo` for this job: the config's password file (else SITEVAULT_PASSWORD_FILE,
/// else SITEVAULT_PASSWORD) and the given storage options.
fn repo_args(
    cfg: &JobConfig,
    repo: &str,
    options: &std::collections::BTreeMap<String, String>,
) -> RepoArgs {
    RepoArgs {
        repo: repo.to_string(),
        password_file: cfg
            .vault
            .password_file
            .clone()
            .or_else(|| std::env::var_os("SITEVAULT_PASSWORD_FILE").map(PathBuf::from)),
        options: options.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        vault_as_of: None,
        // Validated when the config was read.
        index_memory: match cfg.vault.index_memory.as_deref().map(parse_budget) {
            Some(Ok(budget)) => super::args::IndexMemory(budget),
            _ => super::args::DEFAULT_INDEX_MEMORY,
        },
        cache_dir: std::env::var_os("SITEVAULT_CACHE_DIR").map(PathBuf::from),
        no_cache: false,
    }
}
