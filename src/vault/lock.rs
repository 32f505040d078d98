//! Vault locks (formats/ §12.6). Backups and readers hold a shared lock; `forget` and `prune`
//! hold an exclusive one, so prune never deletes data that a running backup will reference.
//!
//! A lock is an ordinary create-only object under `locks/`. Taking one is "write mine, then list
//! the others": of two conflicting takers at least one sees the other and backs off. A holder
//! rewrites its lock every [`REFRESH_EVERY`]; others may call it stale once the storage's own
//! timestamps show it [`STALE_AFTER`] older than theirs (or, on the same host, once its process
//! is gone). A holder stops trusting its lock [`SAFETY_MARGIN`] before that could happen, and
//! checks it still exists right before it commits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::crypto::{Sealer, random_array};
use crate::format::id::Id;
use crate::store::{ObjectInfo, Store};
use crate::vault::Vault;

pub(crate) const LOCKS: &str = "locks";
pub(crate) const LOCK_VERSION: u32 = 1;
/// A lock the storage has not seen refreshed for this long belongs to a dead or stuck process.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
pub(crate) const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);
/// A holder treats its lock as lost this long before others may call it stale: room for clock
/// rate differences and for the commit write itself.
pub(crate) const SAFETY_MARGIN: Duration = Duration::from_secs(10 * 60);

/// The content of a lock object (JSON, sealed like a snapshot).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockInfo {
    pub version: u32,
    /// The holder's clock when written; informational (staleness uses the storage's clock).
    pub time: Timestamp,
    pub host: String,
    pub pid: u32,
    pub exclusive: bool,
    /// The command holding it, e.g. `backup`, `prune`.
    pub command: String,
    /// Random hex, so that every lock object has its own name even in a plaintext vault.
    pub nonce: String,
}

impl LockInfo {
    /// The JSON stored (sealed, without compression) in a lock object.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("lock serialises")
    }

    /// Parse a lock object's JSON (its opened sealed string); `what` names it in errors.
    pub fn decode(bytes: &[u8], what: &str) -> Result<LockInfo> {
        serde_json::from_slice(bytes).map_err(|e| Error::corrupt(what, e.to_string()))
    }

    fn describe(&self) -> String {
        format!(
            "{} ({} lock, process {} on {}, since {})",
            self.command,
            if self.exclusive {
                "exclusive"
            } else {
                "shared"
            },
            self.pid,
            self.host,
            self.time.strftime("%Y-%m-%d %H:%M:%S UTC")
        )
    }
}

/// What to lock and how long to wait for a conflicting holder.
#[derive(Debug, Clone)]
pub struct LockOptions {
    pub exclusive: bool,
    pub command: String,
    /// This machine's name: a lock of the same host whose process is gone is stale at once.
    pub host: String,
    pub wait: Duration,
}

/// A held lock. Dropping it stops the refresher and removes the lock object.
pub struct VaultLock {
    shared: Arc<Shared>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    refresher: Option<JoinHandle<()>>,
    released: bool,
}

struct Shared {
    store: Arc<dyn Store>,
    sealer: Sealer,
    info: LockInfo,
    state: Mutex<Held>,
    lost: AtomicBool,
}

struct Held {
    name: String,
    /// When the write of the current lock object began, on both clocks (a suspended machine
    /// stops `Instant` on some systems but not `SystemTime`).
    since: Instant,
    since_wall: SystemTime,
}

fn lock_name(id: &Id) -> String {
    format!("{LOCKS}/{}", id.to_hex())
}

/// Seal and store one lock object; returns its name.
fn write_lock(store: &dyn Store, sealer: &Sealer, info: &LockInfo) -> Result<String> {
    let sealed = sealer.seal(&info.encode(), None)?;
    let name = lock_name(&Id::of_object(&sealed));
    store.put(&name, Bytes::from(sealed))?;
    Ok(name)
}

/// Read one lock object; `Ok(None)` when it is gone (released meanwhile).
fn read_lock(store: &dyn Store, sealer: &Sealer, name: &str) -> Result<Option<LockInfo>> {
    let Some(bytes) = store.get(name)? else {
        return Ok(None);
    };
    let json = sealer.open(&bytes, None, name)?;
    LockInfo::decode(&json, name).map(Some)
}

/// Whether `pid` still runs on this machine. Only Linux can tell cheaply; elsewhere a lock of a
/// dead process waits out [`STALE_AFTER`] (or `sitevault unlock`).
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    #[cfg(target_os = "linux")]
    {
        std::path::Path::new("/proc").join(pid.to_string()).exists()
    }
    #[cfg(not(target_os = "linux"))]
    {
        true
    }
}

/// One lock found in the vault.
#[derive(Debug, Clone)]
pub struct FoundLock {
    pub name: String,
    pub modified: Timestamp,
    /// `None` when it cannot be read (damaged, or sealed with another key).
    pub info: Option<LockInfo>,
    /// Read, but its bytes fail authentication or parsing: a torn or damaged upload (puts are
    /// atomic, so it is not one being written). `unlock` removes these; commands wait for
    /// them to go stale, since they cannot tell whose they are.
    pub damaged: bool,
    pub stale: bool,
}

/// Every lock in the vault, judged stale or not against `now` (a storage timestamp) and `host`.
pub fn list_locks(vault: &Vault, now: Timestamp, host: &str) -> Result<Vec<FoundLock>> {
    let store = vault.store();
    let mut out = Vec::new();
    for o in store.list(LOCKS)? {
        if !is_object_name(&o) {
            continue;
        }
        let (info, damaged) = match read_lock(store, vault.sealer(), &o.name) {
            Ok(None) => continue,
            Ok(Some(i)) => (Some(i), false),
            Err(e) => (None, e.kind() == crate::error::ErrorKind::Corrupt),
        };
        let old = now.duration_since(o.modified).unsigned_abs() > STALE_AFTER && now > o.modified;
        let dead = info
            .as_ref()
            .is_some_and(|i| i.host.eq_ignore_ascii_case(host) && !process_alive(i.pid));
        out.push(FoundLock {
            name: o.name,
            modified: o.modified,
            info,
            damaged,
            stale: old || dead,
        });
    }
    Ok(out)
}

fn is_object_name(o: &ObjectInfo) -> bool {
    let last = o.name.rsplit('/').next().unwrap_or(&o.name);
    last.len() == 64 && Id::from_hex(last).is_ok()
}

impl VaultLock {
    /// Take a lock, waiting up to `opts.wait` for conflicting holders; `waiting` is told (once)
    /// who is in the way.
    pub fn acquire(vault: &Vault, opts: &LockOptions, waiting: &dyn Fn(&str)) -> Result<VaultLock> {
        let started = Instant::now();
        let mut told = false;
        let mut pause = Duration::from_millis(100);
        let info = LockInfo {
            version: LOCK_VERSION,
            time: Timestamp::now(),
            host: opts.host.clone(),
            pid: std::process::id(),
            exclusive: opts.exclusive,
            command: opts.command.clone(),
            nonce: hex::encode(random_array::<16>()?),
        };
        loop {
            let since = Instant::now();
            let since_wall = SystemTime::now();
            let name = write_lock(vault.store(), vault.sealer(), &info)?;
            match Self::conflict(vault, &name, opts) {
                Ok(None) => {
                    return Ok(Self::start(
                        vault,
                        info,
                        Held {
                            name,
                            since,
                            since_wall,
                        },
                    ));
                }
                Ok(Some(holder)) => {
                    vault.store().delete(&name)?;
                    if started.elapsed() >= opts.wait {
                        return Err(Error::Locked {
                            location: vault.location().to_string(),
                            holder,
                        });
                    }
                    if !told {
                        waiting(&holder);
                        told = true;
                    }
                    // Jitter, so two takers that saw each other do not retry in step forever.
                    let jitter = random_array::<1>()?[0] as u64 * pause.as_millis() as u64 / 255;
                    let nap = (pause / 2 + Duration::from_millis(jitter))
                        .min(opts.wait.saturating_sub(started.elapsed()));
                    std::thread::sleep(nap);
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    let _ = vault.store().delete(&name);
                    return Err(e);
                }
            }
        }
    }

    /// Who holds a lock that conflicts with ours (`own` is already stored); removes stale ones.
    fn conflict(vault: &Vault, own: &str, opts: &LockOptions) -> Result<Option<String>> {
        let listed = vault.store().list(LOCKS)?;
        // Our own object's storage time is "now" on the storage's clock.
        let now = listed
            .iter()
            .find(|o| o.name == own)
            .map(|o| o.modified)
            .or_else(|| listed.iter().map(|o| o.modified).max())
            .unwrap_or_else(Timestamp::now);
        for l in list_locks(vault, now, &opts.host)? {
            if l.name == own {
                continue;
            }
            if l.stale {
                // Safe: a holder re-checks its lock before it commits anything.
                let _ = vault.store().delete(&l.name);
                continue;
            }
            let theirs_exclusive = l.info.as_ref().is_none_or(|i| i.exclusive);
            if opts.exclusive || theirs_exclusive {
                return Ok(Some(match &l.info {
                    Some(i) => i.describe(),
                    None if l.damaged => format!(
                        "{} (a damaged lock, which `sitevault unlock` removes)",
                        l.name
                    ),
                    None => format!("{} (a lock that cannot be read)", l.name),
                }));
            }
        }
        Ok(None)
    }

    fn start(vault: &Vault, info: LockInfo, held: Held) -> VaultLock {
        let shared = Arc::new(Shared {
            store: vault.store_handle(),
            sealer: vault.sealer().clone(),
            info,
            state: Mutex::new(held),
            lost: AtomicBool::new(false),
        });
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let (s2, stop2) = (Arc::clone(&shared), Arc::clone(&stop));
        let refresher = std::thread::Builder::new()
            .name("sitevault-lock".into())
            .spawn(move || refresh_loop(&s2, &stop2))
            .ok();
        VaultLock {
            shared,
            stop,
            refresher,
            released: false,
        }
    }

    /// Fails unless the lock is certainly still ours: call it right before committing.
    pub fn check(&self) -> Result<()> {
        let s = &self.shared;
        let lost = |detail: String| Error::LockLost {
            location: s.store.location().to_string(),
            detail,
        };
        if s.lost.load(Ordering::SeqCst) {
            return Err(lost(
                "its lock object was removed by another process".into(),
            ));
        }
        let (name, age) = {
            let h = s.state.lock().unwrap_or_else(|p| p.into_inner());
            let wall = h.since_wall.elapsed().unwrap_or_default();
            (h.name.clone(), h.since.elapsed().max(wall))
        };
        if age > STALE_AFTER - SAFETY_MARGIN {
            return Err(lost(format!(
                "it could not be refreshed for {} minutes",
                age.as_secs() / 60
            )));
        }
        if s.store.get(&name)?.is_none() {
            s.lost.store(true, Ordering::SeqCst);
            return Err(lost(format!("{name} was removed by another process")));
        }
        Ok(())
    }

    /// Remove the lock now, reporting a failure to do so.
    pub fn release(mut self) -> Result<()> {
        self.stop_refresher();
        self.released = true;
        let name = self.current_name();
        self.shared.store.delete(&name)
    }

    fn current_name(&self) -> String {
        let h = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        h.name.clone()
    }

    fn stop_refresher(&mut self) {
        let (m, cv) = &*self.stop;
        *m.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
    }
}

impl Drop for VaultLock {
    fn drop(&mut self) {
        if !self.released {
            self.stop_refresher();
            let name = self.current_name();
            let _ = self.shared.store.delete(&name);
        }
    }
}

fn refresh_loop(s: &Shared, stop: &(Mutex<bool>, Condvar)) {
    let (m, cv) = stop;
    loop {
        {
            let guard = m.lock().unwrap_or_else(|p| p.into_inner());
            let (guard, _) = cv
                .wait_timeout_while(guard, REFRESH_EVERY, |stopped| !*stopped)
                .unwrap_or_else(|p| p.into_inner());
            if *guard {
                return;
            }
        }
        let old = s
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .name
            .clone();
        // Continuity: if our object vanished, someone judged us stale; a new object would
        // hide that, so the lock stays lost.
        match s.store.get(&old) {
            Ok(None) => {
                s.lost.store(true, Ordering::SeqCst);
                return;
            }
            Ok(Some(_)) => {}
            Err(_) => continue,
        }
        let mut info = s.info.clone();
        info.time = Timestamp::now();
        let since = Instant::now();
        let since_wall = SystemTime::now();
        if let Ok(name) = write_lock(&*s.store, &s.sealer, &info) {
            *s.state.lock().unwrap_or_else(|p| p.into_inner()) = Held {
                name,
                since,
                since_wall,
            };
            let _ = s.store.delete(&old);
        }
    }
}

/// Remove locks: the stale and damaged ones, or all of them. Returns the names removed.
pub fn remove_locks(vault: &Vault, host: &str, all: bool) -> Result<Vec<FoundLock>> {
    let listed = vault.store().list(LOCKS)?;
    // Judge age against the storage's clock: write a probe object, read its time, remove it.
    let now = storage_now(vault)?.unwrap_or_else(|| {
        listed
            .iter()
            .map(|o| o.modified)
            .max()
            .unwrap_or_else(Timestamp::now)
    });
    let mut removed = Vec::new();
    for l in list_locks(vault, now, host)? {
        if all || l.stale || l.damaged {
            vault.store().delete(&l.name)?;
            removed.push(l);
        }
    }
    Ok(removed)
}

/// The storage's current time, read from a probe object's timestamp.
fn storage_now(vault: &Vault) -> Result<Option<Timestamp>> {
    let probe = format!("{LOCKS}/probe-{}", hex::encode(random_array::<8>()?));
    vault.store().put(&probe, Bytes::from_static(b"probe"))?;
    let t = vault
        .store()
        .list(LOCKS)?
        .into_iter()
        .find(|o| o.name == probe)
        .map(|o| o.modified);
    vault.store().delete(&probe)?;
    Ok(t)
}
