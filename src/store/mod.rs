//! The storage seam: a small synchronous trait the engine talks to, and its implementation over
//! `object_store`. Async stays inside this module.

pub mod asof;
pub(crate) mod cache;
pub mod s3lock;
pub mod spool;

mod backend;
mod cloud;
mod counting;
mod hooked;
mod location;

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};

pub use backend::{Multipart, ObjectStoreBackend};
pub use counting::CountingStore;
pub use hooked::{HookedStore, WriteHook};
pub use location::{Location, StoreOptions};

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
    /// `get_range`, refusing a reply of any other length than asked for: callers slice it, so a
    /// store (or a proxy in front of one) that returns fewer bytes must be an error, not a panic.
    fn get_range_exact(&self, name: &str, range: Range<u64>) -> Result<Bytes> {
        let want = range.end.saturating_sub(range.start);
        let b = self.get_range(name, range.clone())?;
        if b.len() as u64 != want {
            return Err(Error::Store {
                object: format!("{}/{name}", self.location()),
                detail: format!(
                    "asked for bytes {}..{} ({want}), got {}: a short read; try again",
                    range.start,
                    range.end,
                    b.len()
                ),
            });
        }
        Ok(b)
    }
    /// Create `name`; an existing object with that name is left as it is and `Ok(false)` returned.
    fn put(&self, name: &str, data: Bytes) -> Result<bool>;
    /// `put` with the bytes of a local file (a spooled pack). A vault folder on the same file
    /// system publishes the file by hard link, so the pack is never held in memory; others read
    /// it in.
    fn put_file(&self, name: &str, file: &Path) -> Result<bool> {
        let data = std::fs::read(file).map_err(|e| Error::io(file, e))?;
        self.put(name, Bytes::from(data))
    }
    /// The folder holding the vault, when it is a local folder.
    fn local_root(&self) -> Option<&Path> {
        None
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;
    /// `list` one object at a time, in no particular order, without holding the whole listing
    /// (`data/` of a 100 TB vault names 1.5 M packs).
    fn list_each(&self, prefix: &str, f: &mut dyn FnMut(ObjectInfo) -> Result<()>) -> Result<()> {
        self.list(prefix)?.into_iter().try_for_each(f)
    }
    fn delete(&self, name: &str) -> Result<()>;
    /// Requests made so far through this handle (zeros where nothing counts them).
    fn requests(&self) -> RequestCounts {
        RequestCounts::default()
    }
    /// How many uploads may run at once.
    fn connections(&self) -> usize {
        1
    }
    /// S3 Object Lock requests, when this store is an S3 bucket (wrappers pass it through).
    fn object_lock(&self) -> Option<&crate::store::s3lock::S3Lock> {
        None
    }
    /// How many downloads may run at once; 0 means one per core.
    fn downloads(&self) -> usize {
        0
    }
}

/// Run `f`, whose rayon work downloads from a store, on `n` threads when that is more than the
/// current pool has: on a cloud store a thread mostly waits on the network, so one per core
/// would leave the link idle. Callers pass [`Store::downloads`].
pub(crate) fn in_download_pool<R: Send>(n: usize, f: impl FnOnce() -> R + Send) -> R {
    if n <= rayon::current_num_threads() {
        return f();
    }
    match rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("sitevault-get-{i}"))
        .build()
    {
        Ok(pool) => pool.install(f),
        // No threads to spare: the current pool still does the work, only slower.
        Err(_) => f(),
    }
}

/// Requests by kind and bytes moved: on S3 and Azure each one is billed and takes a round trip.
/// Retries inside the storage client are not counted separately.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestCounts {
    pub gets: u64,
    pub range_gets: u64,
    pub puts: u64,
    pub lists: u64,
    pub deletes: u64,
    pub bytes_uploaded: u64,
    pub bytes_downloaded: u64,
    /// Objects uploaded in parts; each part, and the calls that start and complete the upload,
    /// are counted in `puts`.
    pub multipart_uploads: u64,
}

impl RequestCounts {
    pub fn total(&self) -> u64 {
        self.gets + self.range_gets + self.puts + self.lists + self.deletes
    }

    /// What happened between `before` and now.
    pub fn since(&self, before: &RequestCounts) -> RequestCounts {
        RequestCounts {
            gets: self.gets - before.gets,
            range_gets: self.range_gets - before.range_gets,
            puts: self.puts - before.puts,
            lists: self.lists - before.lists,
            deletes: self.deletes - before.deletes,
            bytes_uploaded: self.bytes_uploaded - before.bytes_uploaded,
            bytes_downloaded: self.bytes_downloaded - before.bytes_downloaded,
            multipart_uploads: self.multipart_uploads - before.multipart_uploads,
        }
    }

    fn plus(self, o: RequestCounts) -> RequestCounts {
        RequestCounts {
            gets: self.gets + o.gets,
            range_gets: self.range_gets + o.range_gets,
            puts: self.puts + o.puts,
            lists: self.lists + o.lists,
            deletes: self.deletes + o.deletes,
            bytes_uploaded: self.bytes_uploaded + o.bytes_uploaded,
            bytes_downloaded: self.bytes_downloaded + o.bytes_downloaded,
            multipart_uploads: self.multipart_uploads + o.multipart_uploads,
        }
    }
}

/// A connection count option: 1 to 64.
fn parse_count(repo: &str, k: &str, v: &str) -> Result<usize> {
    v.parse()
        .ok()
        .filter(|n| (1..=64).contains(n))
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "repository {repo}: {k}={v:?}: give a number from 1 to 64"
            ))
        })
}

/// Open the store a repository string names: a folder, `s3://bucket/prefix` or
/// `az://container/prefix` (also `azure://`). `options` configure cloud backends.
pub fn open_store(repo: &str, create: bool, options: &StoreOptions) -> Result<Arc<dyn Store>> {
    match Location::parse(repo)? {
        Location::Folder(dir) => {
            let mut local = ObjectStoreBackend::local(&dir, create)?;
            // Only the transfer limits mean anything for a folder; a cloud key given for one
            // is a mistake worth naming (environment variables are other tools' business).
            for (k, v) in &options.explicit {
                match k.as_str() {
                    "connections" => local.connections = parse_count(repo, k, v)?,
                    "download_connections" => local.downloads = parse_count(repo, k, v)?,
                    _ => {
                        return Err(Error::InvalidInput(format!(
                            "repository {repo} is a folder: option {k:?} applies only to s3:// and az:// vaults"
                        )));
                    }
                }
            }
            Ok(Arc::new(CountingStore::new(Arc::new(local))))
        }
        loc => Ok(Arc::new(CountingStore::new(Arc::new(
            ObjectStoreBackend::cloud(repo, &loc, options)?,
        )))),
    }
}
