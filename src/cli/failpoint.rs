//! `SITEVAULT_FAILPOINT`: kill this process with SIGKILL at an exact write, so the kill-matrix
//! tests can prove that a crash at any point leaves a valid vault. Not for production use.
//!
//! Syntax: `before:N` or `after:N`, optionally `:<op> <prefix>` — e.g. `before:3`, `after:1:put
//! snapshots/`, `before:2:delete data/`. Writes are the process's puts and deletes on every vault
//! it opened, counted from 1; with a filter only the matching ones (`put data/…`) count. The
//! process names the point on stderr (`sitevault-failpoint: before write 3: put data/..`) and
//! kills itself, so nothing after it runs: no destructors, no lock release, no flush.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use sitevault::store::{ObjectInfo, RequestCounts, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failpoint {
    before: bool,
    n: u64,
    filter: String,
}

impl std::str::FromStr for Failpoint {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Failpoint> {
        let mut parts = s.splitn(3, ':');
        let before = match parts.next().unwrap_or_default() {
            "before" => true,
            "after" => false,
            other => bail!("SITEVAULT_FAILPOINT {s:?}: {other:?} is not before or after"),
        };
        let n: u64 = parts.next().unwrap_or_default().parse().with_context(|| {
            format!("SITEVAULT_FAILPOINT {s:?}: give a write number, e.g. before:3")
        })?;
        if n == 0 {
            bail!("SITEVAULT_FAILPOINT {s:?}: writes are counted from 1");
        }
        Ok(Failpoint {
            before,
            n,
            filter: parts.next().unwrap_or_default().to_string(),
        })
    }
}

/// Counted across every store the process opens (`copy` opens two).
static WRITES: AtomicU64 = AtomicU64::new(0);

pub struct FailpointStore {
    inner: Arc<dyn Store>,
    point: Failpoint,
}

impl FailpointStore {
    pub fn wrap(inner: Arc<dyn Store>, point: Failpoint) -> Arc<dyn Store> {
        Arc::new(FailpointStore { inner, point })
    }

    /// The write's number if it counts, else `None`.
    fn count(&self, op: &str, name: &str) -> Option<u64> {
        let what = format!("{op} {name}");
        what.starts_with(&self.point.filter)
            .then(|| WRITES.fetch_add(1, Ordering::SeqCst) + 1)
    }

    fn write(
        &self,
        op: &str,
        name: &str,
        f: impl FnOnce() -> sitevault::Result<bool>,
    ) -> sitevault::Result<bool> {
        let i = self.count(op, name);
        let hit = i == Some(self.point.n);
        if hit && self.point.before {
            die("before", self.point.n, op, name);
        }
        let r = f()?;
        if hit {
            die("after", self.point.n, op, name);
        }
        Ok(r)
    }
}

fn die(when: &str, n: u64, op: &str, name: &str) -> ! {
    eprintln!("sitevault-failpoint: {when} write {n}: {op} {name}");
    #[cfg(target_os = "linux")]
    // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort()
}

impl Store for FailpointStore {
    fn location(&self) -> &str {
        self.inner.location()
    }
    fn get(&self, name: &str) -> sitevault::Result<Option<Bytes>> {
        self.inner.get(name)
    }
    fn get_range(&self, name: &str, range: Range<u64>) -> sitevault::Result<Bytes> {
        self.inner.get_range(name, range)
    }
    fn put(&self, name: &str, data: Bytes) -> sitevault::Result<bool> {
        self.write("put", name, || self.inner.put(name, data))
    }
    fn put_file(&self, name: &str, file: &std::path::Path) -> sitevault::Result<bool> {
        self.write("put", name, || self.inner.put_file(name, file))
    }
    fn local_root(&self) -> Option<&std::path::Path> {
        self.inner.local_root()
    }
    fn list(&self, prefix: &str) -> sitevault::Result<Vec<ObjectInfo>> {
        self.inner.list(prefix)
    }
    fn list_each(
        &self,
        prefix: &str,
        f: &mut dyn FnMut(ObjectInfo) -> sitevault::Result<()>,
    ) -> sitevault::Result<()> {
        self.inner.list_each(prefix, f)
    }
    fn delete(&self, name: &str) -> sitevault::Result<()> {
        self.write("delete", name, || self.inner.delete(name).map(|()| true))
            .map(|_| ())
    }
    fn requests(&self) -> RequestCounts {
        self.inner.requests()
    }
    fn connections(&self) -> usize {
        self.inner.connections()
    }
    fn downloads(&self) -> usize {
        self.inner.downloads()
    }
    fn object_lock(&self) -> Option<&sitevault::store::s3lock::S3Lock> {
        self.inner.object_lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failpoints_parse_and_bad_ones_are_refused() {
        assert_eq!(
            "before:3".parse::<Failpoint>().unwrap(),
            Failpoint {
                before: true,
                n: 3,
                filter: String::new()
            }
        );
        assert_eq!(
            "after:1:put snapshots/".parse::<Failpoint>().unwrap(),
            Failpoint {
                before: false,
                n: 1,
                filter: "put snapshots/".into()
            }
        );
        for bad in ["during:1", "before:0", "before:x", "after"] {
            let e = bad.parse::<Failpoint>().unwrap_err().to_string();
            assert!(e.contains("SITEVAULT_FAILPOINT"), "{bad}: {e}");
        }
    }
}
