//! One function per command: resolve arguments and environment, call the library, render.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

use anyhow::{Context, Result, bail};
use serde_json::json;
use sitevault::backup::{BackupObserver, Warning};
use sitevault::crypto::KdfParams;
use sitevault::tree::NodeKind;
use sitevault::{BackupOptions, Destination, InitOptions, SnapshotFilter, Vault, snapshot};

use super::args::*;
use super::output::{self, outln};
use super::{EXIT_ERROR, EXIT_INCOMPLETE, EXIT_OK};

pub fn dispatch(cli: Cli) -> Result<u8> {
    // A vault read as of a past time is read-only: refuse the commands that write before they
    // take a lock or read anything.
    let writes = match &cli.command {
        Command::Init(a) => Some(("init", &a.repo)),
        Command::Backup(a) => Some(("backup", &a.repo)),
        Command::Forget(a) => Some(("forget", &a.repo)),
        Command::Prune(a) => Some(("prune", &a.repo)),
        Command::Unlock(a) => Some(("unlock", &a.repo)),
        Command::Repair(a) => Some(("repair", a.repo())),
        _ => None,
    };
    if let Some((name, repo)) = writes
        && repo.vault_as_of.is_some()
    {
        bail!(
            "{name} writes to the vault, so it cannot read it --vault-as-of a past time; restore or `copy --vault-as-of` from it instead"
        );
    }
    match cli.command {
        Command::Init(a) => init(a),
        Command::Backup(a) => backup(a),
        Command::Snapshots(a) => snapshots(a),
        Command::Ls(a) => ls(a),
        Command::Restore(a) => restore(a),
        Command::Forget(a) => super::maintain::forget(a),
        Command::Prune(a) => super::maintain::prune(a),
        Command::Unlock(a) => super::maintain::unlock(a),
        Command::Check(a) => super::inspect::check(a),
        Command::Stats(a) => super::inspect::stats(a),
        Command::Diff(a) => super::history::diff(a),
        Command::Find(a) => super::history::find(a),
        Command::Copy(a) => super::copy::copy(a),
        Command::Afterbackup(a) => super::afterbackup::afterbackup(a),
        Command::Mount(a) => super::browse::mount(a),
        Command::Serve(a) => super::browse::serve(a),
        Command::Repair(a) => super::repair::repair(a),
    }
}

/// The password from --password-file / SITEVAULT_PASSWORD_FILE, else SITEVAULT_PASSWORD.
pub(super) fn password(repo: &RepoArgs) -> Result<Option<Vec<u8>>> {
    if let Some(f) = &repo.password_file {
        let text = std::fs::read(f)
            .with_context(|| format!("cannot read password file {}", f.display()))?;
        let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            bail!("password file {} is empty", f.display());
        }
        return Ok(Some(line.to_vec()));
    }
    Ok(std::env::var_os("SITEVAULT_PASSWORD")
        .map(|p| p.into_encoded_bytes())
        .filter(|p| !p.is_empty()))
}

/// Cloud storage settings: `AWS_*` and `AZURE_*` environment variables as `object_store`
/// names them (lower case), and `--option key=value`, which wins.
fn store_options(options: &[String]) -> Result<sitevault::store::StoreOptions> {
    let mut environment: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_") || k.starts_with("AZURE_"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    environment.sort();
    let mut explicit = Vec::new();
    for o in options {
        let Some((k, v)) = o.split_once('=') else {
            bail!("--option {o:?}: write KEY=VALUE, e.g. --option aws_region=eu-west-1");
        };
        explicit.push((k.trim().to_ascii_lowercase(), v.to_string()));
    }
    Ok(sitevault::store::StoreOptions {
        environment,
        explicit,
    })
}

/// The vault's store, behind the test stop hook when `SITEVAULT_TEST_STOP_AFTER_WRITES=N` is
/// set: after its Nth write the process names that write on stderr and waits for a line on stdin
/// (tests kill it there with SIGKILL, or let it go on). With `SITEVAULT_FAILPOINT` it
/// kills itself at an exact write instead (`failpoint.rs`). Not for production use.
fn open_store(repo: &RepoArgs, create: bool) -> Result<std::sync::Arc<dyn sitevault::Store>> {
    let mut store = sitevault::open_store(&repo.repo, create, &store_options(&repo.options)?)?;
    if let Some(at) = repo.vault_as_of {
        store = std::sync::Arc::new(sitevault::store::asof::AsOfStore::new(store, at)?);
    }
    if let Ok(spec) = std::env::var("SITEVAULT_FAILPOINT") {
        store = super::failpoint::FailpointStore::wrap(store, spec.parse()?);
    }
    let Some(n) = std::env::var("SITEVAULT_TEST_STOP_AFTER_WRITES")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return Ok(store);
    };
    let hook: sitevault::store::WriteHook = Box::new(move |i, op, name| {
        if i == n {
            eprintln!("sitevault-test-stop: write {i}: {op} {name}");
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        }
    });
    Ok(std::sync::Arc::new(sitevault::store::HookedStore::new(
        store, hook,
    )))
}

pub(super) fn open(repo: &RepoArgs) -> Result<Vault> {
    open_with(repo, password(repo))
}

/// Open with a password found elsewhere (`copy --from` has its own).
pub(super) fn open_with(repo: &RepoArgs, pw: Result<Option<Vec<u8>>>) -> Result<Vault> {
    let store = open_store(repo, false)?;
    // A plaintext vault needs no password, so a bad password file only matters when one is needed.
    let mut vault = match Vault::open(store, pw.as_ref().ok().and_then(|p| p.as_deref())) {
        Err(sitevault::Error::PasswordRequired { .. }) if pw.is_err() => {
            return Err(pw.expect_err("checked"));
        }
        r => r?,
    };
    let cloud = vault.store().local_root().is_none();
    if let Some(dir) = spool_dir(cloud) {
        vault.set_spool_dir(Some(dir));
    }
    if !repo.no_cache {
        let cache = repo
            .cache_dir
            .clone()
            .or_else(|| cloud.then(default_cache_dir));
        vault.set_cache_dir(cache.as_deref());
    }
    vault.set_index_budget(repo.index_memory.0);
    if let sitevault::config::ConfigAuth::Failed(why) = vault.config_auth() {
        eprintln!(
            "warning: the config of vault {} fails its integrity check: {why}; run `sitevault check --read-data`",
            vault.location()
        );
    }
    Ok(vault)
}

/// Where packs fill before they are stored, when not the vault folder's own `tmp/`:
/// `SITEVAULT_SPOOL_DIR`, else (`cloud`) a folder in the system's temporary folder. Files a
/// killed process left there for a week are removed (a live writer touches its files far more
/// often).
fn spool_dir(cloud: bool) -> Option<std::path::PathBuf> {
    let dir = match std::env::var_os("SITEVAULT_SPOOL_DIR") {
        Some(d) => std::path::PathBuf::from(d),
        None if cloud => std::env::temp_dir().join("sitevault-spool"),
        None => return None,
    };
    let week = std::time::Duration::from_secs(7 * 24 * 3600);
    if let Err(e) = sitevault::store::spool::remove_stale(&dir, week) {
        eprintln!("warning: could not clear old spool files: {e}");
    }
    Some(dir)
}

/// The user's cache folder for sitevault: `%LOCALAPPDATA%\sitevault\cache` on Windows,
/// `$XDG_CACHE_HOME/sitevault` or `~/.cache/sitevault` elsewhere, else the temporary folder.
fn default_cache_dir() -> std::path::PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
    };
    if cfg!(windows) {
        if let Some(d) = var("LOCALAPPDATA") {
            return d.join("sitevault").join("cache");
        }
    } else if let Some(d) = var("XDG_CACHE_HOME") {
        return d.join("sitevault");
    } else if let Some(d) = var("HOME") {
        return d.join(".cache").join("sitevault");
    }
    std::env::temp_dir().join("sitevault-cache")
}

/// Take the vault lock for `command`, telling the user on stderr when it has to wait.
pub(super) fn lock(
    vault: &Vault,
    args: &LockArgs,
    exclusive: bool,
    command: &str,
) -> Result<sitevault::vault::lock::VaultLock> {
    let opts = sitevault::vault::lock::LockOptions {
        exclusive,
        command: command.into(),
        host: hostname(),
        wait: args.lock_wait,
    };
    let waiting = |holder: &str| {
        eprintln!(
            "waiting up to {}s for the vault lock held by {holder}",
            args.lock_wait.as_secs()
        )
    };
    Ok(sitevault::vault::lock::VaultLock::acquire(
        vault, &opts, &waiting,
    )?)
}

/// A shared lock for a reading command, unless `--no-lock`.
pub(super) fn read_lock(
    vault: &Vault,
    args: &ReadLockArgs,
    command: &str,
) -> Result<Option<sitevault::vault::lock::VaultLock>> {
    if args.no_lock {
        return Ok(None);
    }
    lock(vault, &args.lock, false, command).map(Some)
}

pub(super) fn hostname() -> String {
    let from_file = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string());
    from_file
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

fn init(a: InitArgs) -> Result<u8> {
    let password = if a.insecure_no_encryption {
        None
    } else {
        Some(password(&a.repo)?.context(
            "init needs a password for the new vault: set SITEVAULT_PASSWORD or SITEVAULT_PASSWORD_FILE, or give --password-file (or --insecure-no-encryption)",
        )?)
    };
    // Each cloud request costs a round trip and money: larger packs there.
    let cloud = a.repo.repo.contains("://")
        && !matches!(
            sitevault::store::Location::parse(&a.repo.repo)?,
            sitevault::store::Location::Folder(_)
        );
    let default_size = if cloud { 64 << 20 } else { 32 << 20 };
    let pack_size = u32::try_from(a.pack_size.unwrap_or(default_size))
        .context("--pack-size must be at most 1GiB")?;
    let opts = InitOptions {
        password,
        kdf: KdfParams {
            memory_kib: a.kdf_memory_kib,
            iterations: a.kdf_iterations,
            parallelism: 1,
        },
        pack_size,
        compression_level: a.compression_level,
        host: hostname(),
        immutable: match a.immutable_days {
            Some(days) => Some(sitevault::config::Immutable {
                days,
                mode: a.immutable_mode.parse()?,
            }),
            None => None,
        },
        ..InitOptions::default()
    };
    opts.validate()?;
    let store = open_store(&a.repo, true)?;
    let vault = Vault::init(store, opts)?;
    let enc = if a.insecure_no_encryption {
        "unencrypted"
    } else {
        "encrypted"
    };
    outln!(
        "created {enc} vault {} at {}",
        vault.config().id.short(),
        vault.location()
    );
    if let Some(i) = vault.config().immutable {
        outln!(
            "S3 Object Lock: every object is retained for at least {} days ({} mode)",
            i.days,
            i.mode.s3().to_ascii_lowercase()
        );
    }
    Ok(EXIT_OK)
}

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

fn backup(a: BackupArgs) -> Result<u8> {
    let vault = open(&a.repo)?;
    let opts = BackupOptions {
        paths: a.paths.clone(),
        host: a.host.clone().unwrap_or_else(hostname),
        label: a.label.clone(),
        tags: a.tags.clone(),
        time: a.time,
        force_reread: a.force_reread,
        missing_sources: 0,
        change_tracking_days: None,
    };
    let lock = lock(&vault, &a.lock, false, "backup")?;
    let progress = Progress::new();
    let r = sitevault::backup(&vault, &opts, &progress, Some(&lock));
    progress.finish();
    let r = r?;
    // Still under the shared lock, so no prune turns a needed object into an old version.
    let retained = sitevault::immutable::keep_retained(&vault, false)?;
    let s = &r.snapshot.summary;
    if a.json {
        let mut v = backup_json(&vault, &r);
        if let Some(k) = &retained {
            v["retention"] = serde_json::to_value(k)?;
        }
        output::json(&v);
    } else {
        print_retention(retained.as_ref());
        let state = if r.snapshot.complete {
            "complete"
        } else {
            "INCOMPLETE"
        };
        outln!("snapshot {} saved ({state})", r.id.short());
        outln!(
            "  files {} ({} unchanged, not read)  dirs {}  symlinks {}",
            s.files,
            s.files_unchanged,
            s.dirs,
            s.symlinks
        );
        outln!(
            "  read {}, added {} to the vault ({} new chunks) in {:.2} s",
            output::bytes(s.bytes_read),
            output::bytes(s.bytes_added),
            s.data_blobs_added,
            s.duration_secs
        );
        outln!("  {}", requests_line(&vault.store().requests()));
        if s.files_unreadable > 0 {
            outln!(
                "  {} entries could not be read (named above)",
                s.files_unreadable
            );
        }
        if s.files_changed > 0 {
            outln!("  {} files changed while being read", s.files_changed);
        }
    }
    Ok(if r.snapshot.complete {
        EXIT_OK
    } else {
        EXIT_INCOMPLETE
    })
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

pub(super) fn filter(f: &FilterArgs) -> SnapshotFilter {
    SnapshotFilter {
        label: f.label.clone(),
        host: f.host.clone(),
    }
}

/// The readable snapshots matching `f`, oldest first; each unreadable one is named in a
/// warning that ends with `consequence` ("is left alone", "is not searched").
pub(super) fn matching_snapshots(
    vault: &Vault,
    f: &SnapshotFilter,
    consequence: &str,
) -> Result<Vec<(sitevault::Id, sitevault::Snapshot)>> {
    let scan = vault.scan_snapshots()?;
    for (id, e) in &scan.unreadable {
        eprintln!(
            "warning: snapshot {} cannot be read and {consequence}: {e}",
            id.short()
        );
    }
    Ok(scan
        .readable
        .into_iter()
        .filter(|(_, s)| f.matches(s))
        .collect())
}

fn snapshots(a: SnapshotsArgs) -> Result<u8> {
    let vault = open(&a.repo)?;
    let f = filter(&a.filter);
    let scan = vault.scan_snapshots()?;
    let mut snaps: Vec<_> = scan
        .readable
        .iter()
        .filter(|(_, s)| f.matches(s))
        .cloned()
        .collect();
    if let Some(at) = a.at {
        snaps = vec![snapshot::select_at(&snaps, at, &f)?.clone()];
    }
    // The readable ones are listed; each unreadable one is an error, and the exit code says so.
    let report = |code: u8| {
        for (id, e) in &scan.unreadable {
            eprintln!("error: snapshot {} cannot be read: {e}", id.short());
        }
        if scan.unreadable.is_empty() {
            code
        } else {
            EXIT_ERROR
        }
    };
    // Change-tracking windows are judged against all of a group's site backups, not only
    // the ones a filter or --at shows.
    let outside = snapshot::outside_change_tracking(&scan.readable);
    let window = |id: &sitevault::Id, s: &sitevault::Snapshot| match s.change_tracking_days {
        None => None,
        Some(_) if outside.contains(id) => Some("outside"),
        Some(_) => Some("inside"),
    };
    if a.json {
        let arr: Vec<_> = snaps
            .iter()
            .map(|(id, s)| {
                json!({
                    "change_tracking": window(id, s),
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
        return Ok(report(EXIT_OK));
    }
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
    for (id, s) in &snaps {
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
            window(id, s).map_or("-", |w| if w == "outside" { "OUTSIDE" } else { w }),
            s.paths.join(" ")
        );
    }
    outln!("{} snapshots", snaps.len());
    if snaps.iter().any(|(id, _)| outside.contains(id)) {
        outln!(
            "sql-ct OUTSIDE: the site database in that snapshot is older than SQL change-tracking retention allows; restoring it means the site reinitialises its data from the other sites"
        );
    }
    Ok(report(EXIT_OK))
}

/// Resolve a snapshot reference. Unreadable snapshots do not hide readable ones: `latest`
/// skips them (with a warning), and an id or prefix that names one reports its error.
pub(super) fn find(
    vault: &Vault,
    reference: &str,
    f: &FilterArgs,
) -> Result<(sitevault::Id, sitevault::Snapshot)> {
    let scan = vault.scan_snapshots()?;
    if reference != "latest" {
        let prefix = reference.to_ascii_lowercase();
        let bad: Vec<_> = scan
            .unreadable
            .iter()
            .filter(|(id, _)| id.to_hex().starts_with(&prefix))
            .collect();
        let good = scan
            .readable
            .iter()
            .filter(|(id, _)| id.to_hex().starts_with(&prefix))
            .count();
        if let [(_, e)] = bad.as_slice()
            && good == 0
            && prefix.len() >= 4
        {
            bail!("{e}");
        }
    }
    match snapshot::select(&scan.readable, reference, &filter(f)) {
        Ok(found) => {
            if reference == "latest" {
                for (id, e) in &scan.unreadable {
                    eprintln!(
                        "warning: snapshot {} cannot be read and was not considered for `latest`: {e}",
                        id.short()
                    );
                }
            }
            Ok(found.clone())
        }
        Err(sitevault::Error::SnapshotNotFound(_)) if !scan.unreadable.is_empty() => {
            let (id, e) = &scan.unreadable[0];
            bail!(
                "no readable snapshot matches {reference:?}; snapshot {} cannot be read: {e}",
                id.short()
            )
        }
        Err(e) => Err(e.into()),
    }
}

fn ls(a: LsArgs) -> Result<u8> {
    let vault = open(&a.repo)?;
    let _lock = read_lock(&vault, &a.lock, "ls")?;
    let (_, snap) = find(&vault, &a.snapshot, &a.filter)?;
    let index = vault.load_index()?;
    let entries = sitevault::vault::walk::entries(&vault, &index, &snap.tree)?;
    if a.json {
        let arr: Vec<_> = entries
            .iter()
            .map(|e| {
                let path = snap.path_style.join(&e.comps());
                let kind = match &e.node.kind {
                    NodeKind::File { .. } => "file",
                    NodeKind::Dir { .. } => "dir",
                    NodeKind::Symlink { .. } => "symlink",
                };
                let mut v = json!({
                    "path": String::from_utf8_lossy(&path),
                    "type": kind,
                    "size": e.node.size,
                    "mtime_ns": e.node.mtime_ns,
                });
                if std::str::from_utf8(&path).is_err() {
                    v["path_hex"] = json!(hex::encode(&path));
                }
                if let Some(u) = e.node.unix {
                    v["mode"] = json!(u.mode);
                }
                v
            })
            .collect();
        output::json(&serde_json::Value::Array(arr));
        return Ok(EXIT_OK);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // A closed pipe (`ls | head`) ends the listing quietly.
    let written = entries
        .iter()
        .try_for_each(|e| output::raw_line(&mut out, &snap.path_style.join(&e.comps())))
        .and_then(|_| out.flush());
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    Ok(EXIT_OK)
}

fn restore(a: RestoreArgs) -> Result<u8> {
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
