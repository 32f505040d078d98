//! Request counting: a wrapper that counts every request a store makes.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::{ObjectInfo, RequestCounts, Store};
use crate::error::Result;

/// Counts every request a [`Store`] makes; [`open_store`] returns stores wrapped in one.
pub struct CountingStore {
    inner: Arc<dyn Store>,
    n: [std::sync::atomic::AtomicU64; 7],
}

impl CountingStore {
    pub fn new(inner: Arc<dyn Store>) -> CountingStore {
        CountingStore {
            inner,
            n: Default::default(),
        }
    }

    fn add(&self, i: usize, v: u64) {
        self.n[i].fetch_add(v, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Store for CountingStore {
    fn object_lock(&self) -> Option<&crate::store::s3lock::S3Lock> {
        self.inner.object_lock()
    }
    fn location(&self) -> &str {
        self.inner.location()
    }
    fn get(&self, name: &str) -> Result<Option<Bytes>> {
        self.add(0, 1);
        let r = self.inner.get(name)?;
        self.add(6, r.as_ref().map_or(0, |b| b.len() as u64));
        Ok(r)
    }
    fn get_range(&self, name: &str, range: Range<u64>) -> Result<Bytes> {
        self.add(1, 1);
        let r = self.inner.get_range(name, range)?;
        self.add(6, r.len() as u64);
        Ok(r)
    }
    fn put(&self, name: &str, data: Bytes) -> Result<bool> {
        self.add(2, 1);
        self.add(5, data.len() as u64);
        self.inner.put(name, data)
    }
    fn put_file(&self, name: &str, file: &Path) -> Result<bool> {
        self.add(2, 1);
        self.add(5, std::fs::metadata(file).map_or(0, |m| m.len()));
        self.inner.put_file(name, file)
    }
    fn local_root(&self) -> Option<&Path> {
        self.inner.local_root()
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.add(3, 1);
        self.inner.list(prefix)
    }
    fn list_each(&self, prefix: &str, f: &mut dyn FnMut(ObjectInfo) -> Result<()>) -> Result<()> {
        self.add(3, 1);
        self.inner.list_each(prefix, f)
    }
    fn delete(&self, name: &str) -> Result<()> {
        self.add(4, 1);
        self.inner.delete(name)
    }
    fn connections(&self) -> usize {
        self.inner.connections()
    }
    fn downloads(&self) -> usize {
        self.inner.downloads()
    }
    fn requests(&self) -> RequestCounts {
        let g = |i: usize| self.n[i].load(std::sync::atomic::Ordering::Relaxed);
        // The backend adds what only it sees: the extra requests of multipart uploads.
        RequestCounts {
            gets: g(0),
            range_gets: g(1),
            puts: g(2),
            lists: g(3),
            deletes: g(4),
            bytes_uploaded: g(5),
            bytes_downloaded: g(6),
            multipart_uploads: 0,
        }
        .plus(self.inner.requests())
    }
}
