//! `afterbackup`: the one call in AfterBackup.bat. Verify the site backup, archive it and
//! everything the backup task leaves out as one recovery point, apply retention, and log each
//! step where an admin will look. Exit 0 good, 1 refused or failed, 3 archived but incomplete.

mod copies;
mod log;
mod retention;
mod sources;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use serde_json::{Value, json};
use sitevault::BackupOptions;
use sitevault::job::JobConfig;
use sitevault::size::parse_budget;

use super::args::*;
use super::context::*;
use super::report::*;

use super::exit::{EXIT_ERROR, EXIT_INCOMPLETE, EXIT_OK};
use super::output::{self, outln};

use log::RunLog;
use sources::Sources;

pub fn afterbackup(a: AfterbackupArgs) -> Result<u8> {
    let started = Instant::now();
    let cfg = JobConfig::load(&a.config)?;
    let mut log = RunLog::open(cfg.log.as_ref().map(|l| l.file.as_path()))?;
    let mut report = start(&a, &cfg, &mut log);
    let result = Run {
        a: &a,
        cfg: &cfg,
        log: &mut log,
        report: &mut report,
    }
    .run();
    let code = end(
        &a,
        &result,
        started.elapsed().as_secs_f64(),
        &mut log,
        &mut report,
    );
    match result {
        // The CLI prints the error line for anything but a refusal, already printed.
        Err(e) if report.get("refused").is_none() => Err(e),
        _ => Ok(code),
    }
}

/// Log the start line and begin the JSON report with what the run was asked to do.
fn start(a: &AfterbackupArgs, cfg: &JobConfig, log: &mut RunLog) -> Value {
    log.info(&format!(
        "start: sitevault {} afterbackup{}, config {}, site {}, label {}",
        env!("CARGO_PKG_VERSION"),
        if a.dry_run { " (dry run)" } else { "" },
        a.config.display(),
        cfg.site.code,
        cfg.label()
    ));
    json!({
        "dry_run": a.dry_run,
        "config": a.config.display().to_string(),
        "site": cfg.site.code,
        "label": cfg.label(),
        "log_file": cfg.log.as_ref().map(|l| l.file.display().to_string()),
    })
}

/// Finish the report and the log with the outcome, print the JSON report if asked, and
/// return the exit code.
fn end(
    a: &AfterbackupArgs,
    result: &Result<u8>,
    secs: f64,
    log: &mut RunLog,
    report: &mut Value,
) -> u8 {
    report["duration_secs"] = json!(secs);
    let code = match result {
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
        output::json(report);
    }
    code
}

/// One afterbackup run: what it was asked, where it logs and what it reports.
struct Run<'a> {
    a: &'a AfterbackupArgs,
    cfg: &'a JobConfig,
    log: &'a mut RunLog,
    report: &'a mut Value,
}

impl Run<'_> {
    /// The steps of the job, in order; returns the exit code.
    fn run(&mut self) -> Result<u8> {
        // 1. The site backup must be good, or nothing happens at all.
        if !self.verify_site_backup()? {
            return Ok(EXIT_ERROR);
        }

        // 2. Sources: what exists is archived; what is missing makes the run incomplete.
        let mut sources = Sources::gather(self.cfg, self.log);
        self.report["sources"] = sources.announce(self.log);

        // 3. One snapshot: the recovery point.
        let repo = repo_args(
            self.cfg,
            &self.cfg.vault.repository,
            &self.cfg.vault.options,
        );
        let vault = open(&repo)?;
        let tags = sources.tags();
        let host = self.a.host.clone().unwrap_or_else(hostname);
        let label = self.cfg.label();
        if self.a.dry_run {
            return Ok(self.dry_run(&vault, &sources, &tags, &label));
        }
        let r = self.archive(&vault, &mut sources, tags, host, &label)?;

        // 4. Retention over this label's snapshots only.
        if let Some(ret) = &self.cfg.retention {
            self.report["retention"] =
                retention::apply_retention(&vault, self.a, ret, &label, self.log, "")?;
        }

        // 5. Off-site copies: every recovery point of this label each target lacks, then the
        // same retention there. A failed target is logged and makes the run incomplete (exit 3):
        // the local recovery point stands.
        let (copies, copies_failed) =
            copies::copy_to_all(&vault, self.a, self.cfg, &label, self.log);
        if !self.cfg.vault.copy_to.is_empty() {
            self.report["copies"] = json!(copies);
        }
        Ok(self.finish(&r, &sources, copies_failed))
    }

    /// Step 1: verify the site backup and log it; false (logged, reported and printed) when
    /// it is refused.
    fn verify_site_backup(&mut self) -> Result<bool> {
        let site = match sitevault::sccm::verify_site_backup(
            &self.cfg.site.backup_folder,
            self.cfg.site.backup_log.as_deref(),
        ) {
            Ok(s) => s,
            Err(e) => {
                self.log.error(&format!("site backup refused: {e}"));
                self.report["refused"] = json!(e.to_string());
                eprintln!("error: {e}");
                return Ok(false);
            }
        };
        self.log.info(&format!(
            "site backup verified: {} line {}: {}; {} database file(s) in {}",
            site.log.display(),
            site.success_line_no,
            site.success_line,
            site.mdf_files.len(),
            site.site_db_server.display()
        ));
        self.report["site_backup"] = serde_json::to_value(&site)?;
        Ok(true)
    }

    /// A dry run stops after step 2: say what would be archived; returns the exit code the
    /// real run would have.
    fn dry_run(
        &mut self,
        vault: &sitevault::Vault,
        sources: &Sources,
        tags: &[String],
        label: &str,
    ) -> u8 {
        let files: u64 = sources.found.iter().map(|s| s.files).sum();
        let bytes: u64 = sources.found.iter().map(|s| s.bytes).sum();
        self.log.info(&format!(
            "dry run: would archive {} sources ({files} files, {}) as label {label}, tags {}",
            sources.found.len(),
            output::bytes(bytes),
            tags.join(",")
        ));
        if !self.a.json {
            outln!(
                "dry run: site backup verified; would archive {} sources ({files} files, {}) into {}; nothing was written",
                sources.found.len(),
                output::bytes(bytes),
                vault.location()
            );
        }
        self.report["warnings"] = json!(sources.warnings);
        // The dry run predicts the real run's exit code: a missing source would make it 3.
        if sources.warnings.is_empty() {
            EXIT_OK
        } else {
            EXIT_INCOMPLETE
        }
    }

    /// Step 3: back the sources up as one snapshot under a shared lock, keep its objects
    /// retained, and log and report it; the backup's warnings join the sources' ones.
    fn archive(
        &mut self,
        vault: &sitevault::Vault,
        sources: &mut Sources,
        tags: Vec<String>,
        host: String,
        label: &str,
    ) -> Result<sitevault::BackupResult> {
        let warnings = &mut sources.warnings;
        let opts = BackupOptions {
            paths: sources.found.iter().map(|s| s.path.clone()).collect(),
            host,
            label: label.to_string(),
            tags,
            time: self.a.time,
            force_reread: false,
            missing_sources: warnings.len() as u64,
            change_tracking_days: Some(self.cfg.site.change_tracking_days),
        };
        let shared = lock(vault, &self.a.lock, false, "afterbackup")?;
        let progress = Progress::new();
        let r = sitevault::backup(vault, &opts, &progress, Some(&shared));
        progress.finish();
        let r = r?;
        if let Some(k) = sitevault::immutable::keep_retained(vault, false)? {
            self.log.info(&format!(
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
            self.log.warn(&w.to_string());
        }
        let s = &r.snapshot.summary;
        self.log.info(&format!(
            "snapshot {} saved ({}): {} files, read {}, added {} to the vault",
            r.id.to_hex(),
            if r.snapshot.complete {
                "complete"
            } else {
                "INCOMPLETE"
            },
            s.files,
            output::bytes(s.bytes_read),
            output::bytes(s.bytes_added)
        ));
        self.report["snapshot"] = backup_json(vault, &r);
        self.report["warnings"] = json!(warnings);
        Ok(r)
    }

    /// Print the recovery point's line and any warning; returns the exit code: 3 when a copy
    /// failed or the recovery point is incomplete.
    fn finish(&self, r: &sitevault::BackupResult, sources: &Sources, copies_failed: u32) -> u8 {
        let complete = r.snapshot.complete;
        let s = &r.snapshot.summary;
        if !self.a.json {
            outln!(
                "recovery point {} saved ({}): {} sources, {} files, {} read, {} added",
                r.id.short(),
                if complete { "complete" } else { "INCOMPLETE" },
                sources.found.len(),
                s.files,
                output::bytes(s.bytes_read),
                output::bytes(s.bytes_added)
            );
        }
        let warnings = &sources.warnings;
        if copies_failed > 0 && complete {
            eprintln!(
                "warning: the recovery point was saved, but {copies_failed} off-site cop(ies) failed (see the log)"
            );
            return EXIT_INCOMPLETE;
        }
        if !complete {
            eprintln!(
                "warning: the recovery point is incomplete: {} warning(s), first: {}",
                warnings.len(),
                warnings.first().map_or("", |w| w.as_str())
            );
            return EXIT_INCOMPLETE;
        }
        EXIT_OK
    }
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
