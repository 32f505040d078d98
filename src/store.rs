//! The storage seam: a small synchronous trait the engine talks to, and its implementation over
//! `object_store`. Async stays inside this module.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::error::{Error, Result};

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Name relative to the vault root, with `/` separators.
    pub name: String,
    pub size: u64,
    /// When the storage says it was written (its own clock, not the writer's): lock staleness
    /// is judged by comparing two of these, so client clocks never matter.
    pub modified: jiff::Timestamp,
}

/// What the engine needs from a place that holds objects. Every `put` is atomic and create-only:
/// readers never see a partial object.
pub trait Store: Send + Sync {
    /// Human-readable location for messages.
    fn location(&self) -> &str;
    /// `Ok(None)` when the object does not exist.
    fn get(&self, name: &str) -> Result<Option<Bytes>>;
    fn get_range(&self, name: &str, range: Range<u64>) -> Result<Bytes>;
    /// Create `name`; an existing object with that name is left as it is and `Ok(false)` returned.
    fn put(&self, name: &str, data: Bytes) -> Result<bool>;
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;
    fn delete(&self, name: &str) -> Result<()>;
}

/// A [`Store`] over any `object_store` backend.
pub struct ObjectStoreBackend {
    inner: Arc<dyn ObjectStore>,
    location: String,
}

impl ObjectStoreBackend {
    /// A vault in a local folder; `create` makes the folder when missing (for `init`).
    pub fn local(dir: &Path, create: bool) -> Result<ObjectStoreBackend> {
        let location = dir.display().to_string();
        if create {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        } else if !dir.is_dir() {
            return Err(Error::NotAVault { location });
        }
        // fsync files and their folders before a put returns: a pack must be durable before
        // the index naming it is written (formats/, ordering rules).
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| Error::Store {
                object: location.clone(),
                detail: e.to_string(),
            })?
            .with_fsync(true);
        Ok(ObjectStoreBackend {
            inner: Arc::new(fs),
            location,
        })
    }

    fn err(&self, name: &str, e: object_store::Error) -> Error {
        Error::Store {
            object: format!("{}/{name}", self.location),
            detail: e.to_string(),
        }
    }
}

// Local-filesystem futures do their blocking I/O inline when no tokio runtime is entered, so a
// plain executor suffices and each rayon worker does its own I/O. Cloud backends will bring a
// runtime of their own here.
fn run<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

impl Store for ObjectStoreBackend {
    fn location(&self) -> &str {
        &self.location
    }

    fn get(&self, name: &str) -> Result<Option<Bytes>> {
        let path = ObjPath::from(name);
        run(async {
            match self.inner.get(&path).await {
                Ok(r) => r.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .map_err(|e| self.err(name, e))
    }

    fn get_range(&self, name: &str, range: Range<u64>) -> Result<Bytes> {
        let path = ObjPath::from(name);
        let want = range.end - range.start;
        // A range past the end is a truncated object: report corruption, not a storage fault
        // (object_store either errors or silently returns fewer bytes).
        let truncated = |size: u64| {
            Error::corrupt(
                format!("{}/{name}", self.location),
                format!(
                    "object is truncated: bytes {}..{} lie beyond its end at {size}",
                    range.start, range.end
                ),
            )
        };
        match run(self.inner.get_range(&path, range.clone())) {
            Ok(b) if b.len() as u64 == want => Ok(b),
            Ok(b) => Err(truncated(range.start + b.len() as u64)),
            Err(e) => match run(self.inner.head(&path)) {
                Ok(meta) if meta.size < range.end => Err(truncated(meta.size)),
                _ => Err(self.err(name, e)),
            },
        }
    }

    fn put(&self, name: &str, data: Bytes) -> Result<bool> {
        let path = ObjPath::from(name);
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match run(self
            .inner
            .put_opts(&path, PutPayload::from_bytes(data), opts))
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(self.err(name, e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let path = ObjPath::from(prefix);
        let metas: Vec<_> =
            run(self.inner.list(Some(&path)).try_collect()).map_err(|e| self.err(prefix, e))?;
        let mut out: Vec<ObjectInfo> = metas
            .into_iter()
            .map(|m| ObjectInfo {
                name: m.location.to_string(),
                size: m.size,
                modified: jiff::Timestamp::from_millisecond(m.last_modified.timestamp_millis())
                    .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn delete(&self, name: &str) -> Result<()> {
        let path = ObjPath::from(name);
        match run(self.inner.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(name, e)),
        }
    }
}

/// Open the store a repository string names. Only folders for now; URLs come with the cloud issue.
pub fn open_store(repo: &str, create: bool) -> Result<Arc<dyn Store>> {
    if let Some((scheme, _)) = repo.split_once("://")
        && scheme.len() > 1
    {
        return Err(Error::InvalidInput(format!(
            "repository {repo:?}: {scheme}:// vaults are not supported yet; give a folder path"
        )));
    }
    Ok(Arc::new(ObjectStoreBackend::local(
        Path::new(repo),
        create,
    )?))
}

/// Called after each completed write (put or delete) with its 1-based number, the operation
/// (`put` or `delete`) and the object name.
pub type WriteHook = Box<dyn Fn(u64, &str, &str) + Send + Sync>;

/// A store that reports every completed write to a hook. The crash tests use it to stop a real
/// process right after its Nth write and kill it there, at a point they can name.
pub struct HookedStore {
    inner: Arc<dyn Store>,
    hook: WriteHook,
    writes: std::sync::atomic::AtomicU64,
}

impl HookedStore {
    pub fn new(inner: Arc<dyn Store>, hook: WriteHook) -> HookedStore {
        HookedStore {
            inner,
            hook,
            writes: Default::default(),
        }
    }

    fn wrote(&self, op: &str, name: &str) {
        let n = self
            .writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        (self.hook)(n, op, name);
    }
}

impl Store for HookedStore {
    fn location(&self) -> &str {
        self.inner.location()
    }
    fn get(&self, name: &str) -> Result<Option<Bytes>> {
        self.inner.get(name)
    }
    fn get_range(&self, name: &str, range: Range<u64>) -> Result<Bytes> {
        self.inner.get_range(name, range)
    }
    fn put(&self, name: &str, data: Bytes) -> Result<bool> {
        let r = self.inner.put(name, data)?;
        self.wrote("put", name);
        Ok(r)
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.inner.list(prefix)
    }
    fn delete(&self, name: &str) -> Result<()> {
        self.inner.delete(name)?;
        self.wrote("delete", name);
        Ok(())
    }
}
