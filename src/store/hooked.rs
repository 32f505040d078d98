//! The write hook wrapper the kill matrix uses: a store that reports every completed write.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::{ObjectInfo, RequestCounts, Store};
use crate::error::Result;

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
    fn object_lock(&self) -> Option<&crate::store::s3lock::S3Lock> {
        self.inner.object_lock()
    }
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
    fn put_file(&self, name: &str, file: &Path) -> Result<bool> {
        let r = self.inner.put_file(name, file)?;
        self.wrote("put", name);
        Ok(r)
    }
    fn local_root(&self) -> Option<&Path> {
        self.inner.local_root()
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        self.inner.list(prefix)
    }
    fn list_each(&self, prefix: &str, f: &mut dyn FnMut(ObjectInfo) -> Result<()>) -> Result<()> {
        self.inner.list_each(prefix, f)
    }
    fn delete(&self, name: &str) -> Result<()> {
        self.inner.delete(name)?;
        self.wrote("delete", name);
        Ok(())
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
}
