//! What every command shares: opening a vault (store, password, options, spool and cache
//! folders), locks, the host name, and choosing snapshots by filter or id.

use anyhow::{Context, Result, bail};
use sitevault::Id;
use sitevault::{SnapshotFilter, Vault, snapshot};

use super::args::*;

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
pub(super) fn open_store(
    repo: &RepoArgs,
    create: bool,
) -> Result<std::sync::Arc<dyn sitevault::Store>> {
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

/// Open the second vault of `copy --from` or `repair packs --from`: with its own password when
/// one is given, else the first vault's.
pub(super) fn open_other(
    repo: &RepoArgs,
    from: &str,
    password_file: &Option<std::path::PathBuf>,
    options: &[String],
) -> Result<sitevault::Vault> {
    let other = RepoArgs {
        repo: from.to_string(),
        password_file: password_file.clone(),
        options: options.to_vec(),
        // `copy --vault-as-of T` reads the source as it stood then (the recovery path).
        vault_as_of: repo.vault_as_of,
        index_memory: repo.index_memory,
        cache_dir: repo.cache_dir.clone(),
        no_cache: repo.no_cache,
    };
    let pw = match (password_file, std::env::var_os("SITEVAULT_FROM_PASSWORD")) {
        (Some(_), _) => password(&other),
        (None, Some(p)) if !p.is_empty() => Ok(Some(p.into_encoded_bytes())),
        _ => password(repo),
    };
    open_with(&other, pw)
}

/// Delete snapshot objects under an exclusive lock, checked once before the first deletion.
/// Forget `ids` under `lock`, recording what was removed first (formats/ §9.3).
pub(super) fn remove_snapshots(
    vault: &sitevault::Vault,
    lock: &sitevault::vault::lock::VaultLock,
    ids: &[Id],
    command: &str,
) -> Result<()> {
    sitevault::forget::forget_snapshots(vault, ids, &hostname(), command, &|| lock.check())?;
    Ok(())
}
