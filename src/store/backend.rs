//! The [`Store`] over `object_store`: local folders (hard-linking spooled packs into place) and
//! cloud buckets, with multipart uploads, on the backend's own runtime.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::{ObjectInfo, RequestCounts, Store};
use crate::error::{Error, Result};

/// A [`Store`] over any `object_store` backend.
pub struct ObjectStoreBackend {
    pub(super) inner: Arc<dyn ObjectStore>,
    pub(super) location: String,
    /// The runtime HTTP backends need; local folders do their I/O inline without one.
    pub(super) runtime: Option<Arc<tokio::runtime::Runtime>>,
    pub(super) connections: usize,
    pub(super) downloads: usize,
    /// Cloud only: objects larger than this are uploaded in parts.
    pub(super) multipart: Option<Multipart>,
    /// Requests beyond the one `put` a multipart upload makes, and how many such uploads.
    pub(super) extra_puts: std::sync::atomic::AtomicU64,
    pub(super) multipart_uploads: std::sync::atomic::AtomicU64,
    /// S3 only: Object Lock requests; with a policy set, every put but locks carries it.
    pub(super) s3lock: Option<crate::store::s3lock::S3Lock>,
    /// A local folder's path, where `put_file` links spooled packs into place.
    pub(super) root: Option<std::path::PathBuf>,
}

/// When and how objects are uploaded in parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Multipart {
    /// Objects larger than this many bytes go in parts (`--option multipart_threshold=SIZE`).
    pub threshold: u64,
    /// Bytes per part but the last (`--option multipart_part_size=SIZE`).
    pub part_size: u64,
}

/// Packs of the default cloud size (64 MiB, plus at most one chunk) go in one PUT, the cheapest
/// way; larger packs (`init --pack-size`) go in parts, each retried on its own after a failure.
pub(crate) const DEFAULT_MULTIPART: Multipart = Multipart {
    threshold: 96 << 20,
    part_size: 16 << 20,
};

/// S3 refuses parts under 5 MiB (but the last); S3 allows 10,000 parts and Azure 50,000 blocks.
pub(super) const MIN_PART_SIZE: u64 = 5 << 20;
const MAX_PARTS: u64 = 10_000;

/// Uploads at once to a cloud store unless `--option connections=N` says otherwise: enough to
/// hide a round trip's latency, few enough to hold only that many (64 MiB) packs in memory.
pub(crate) const DEFAULT_CONNECTIONS: usize = 3;

/// Range reads at once from a cloud store unless `--option download_connections=N` says
/// otherwise: restore reads at most 16 MiB per request, so this bounds memory to about 128 MiB.
pub(crate) const DEFAULT_DOWNLOADS: usize = 8;

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
            runtime: None,
            connections: 2,
            downloads: 0,
            multipart: None,
            extra_puts: Default::default(),
            multipart_uploads: Default::default(),
            s3lock: None,
            root: Some(dir.to_path_buf()),
        })
    }

    /// A local folder: publish `file` as `name` by hard link, after making its bytes durable
    /// (a pack must be durable before the index naming it). `None`: this cannot link it here
    /// (another file system, or no hard links), so the caller uploads it the usual way.
    fn link_into_place(&self, root: &Path, name: &str, file: &Path) -> Option<Result<bool>> {
        let dest = name.split('/').fold(root.to_path_buf(), |p, c| p.join(c));
        let parent = dest.parent()?;
        // Opened for writing: Windows flushes a file only through a handle that may write.
        let durable = std::fs::OpenOptions::new()
            .write(true)
            .open(file)
            .and_then(|f| f.sync_all());
        if let Err(e) = durable {
            return Some(Err(
                self.store_error(name, format!("{}: {e}", file.display()))
            ));
        }
        if let Err(e) = std::fs::create_dir_all(parent) {
            return Some(Err(
                self.store_error(name, format!("{}: {e}", parent.display()))
            ));
        }
        match std::fs::hard_link(file, &dest) {
            Ok(()) => {
                // The new name must survive a crash too.
                #[cfg(unix)]
                if let Err(e) = std::fs::File::open(parent).and_then(|d| d.sync_all()) {
                    return Some(Err(Error::io(parent, e)));
                }
                Some(Ok(true))
            }
            // Create-only: an existing object of this name already holds these bytes.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Some(Ok(false)),
            Err(_) => None,
        }
    }

    fn run<F: std::future::Future>(&self, f: F) -> F::Output {
        match &self.runtime {
            Some(rt) => rt.block_on(f),
            // Local-filesystem futures do their blocking I/O inline when no runtime is
            // entered, so a plain executor suffices and each rayon worker does its own I/O.
            None => futures::executor::block_on(f),
        }
    }

    /// The part size for an object of `len` bytes, when it goes in parts. `config` never does:
    /// multipart uploads cannot be create-only, and only content-addressed names, whose
    /// existing object holds the same bytes, may be written unconditionally (formats/ §12.1).
    fn part_size(&self, name: &str, len: u64) -> Option<u64> {
        let m = self.multipart?;
        if len <= m.threshold || !name.contains('/') {
            return None;
        }
        // Grow parts rather than exceed the services' part count.
        Some(m.part_size.max(len.div_ceil(MAX_PARTS)))
    }

    /// Upload `len` bytes in parts of `part` bytes, `connections` at a time, taking each part
    /// from `next` (given its length) only when there is room for it, so at most `connections`
    /// parts are in memory; a failed upload is aborted so the service drops its parts. Returns
    /// the number of parts.
    async fn put_multipart(
        &self,
        path: &ObjPath,
        len: u64,
        part: u64,
        next: &mut dyn FnMut(usize) -> std::io::Result<Bytes>,
    ) -> object_store::Result<u64> {
        let upload = self.inner.put_multipart(path).await?;
        let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, part as usize);
        let mut parts = 0;
        let mut left = len;
        while left > 0 {
            let n = left.min(part) as usize;
            let bytes = match w.wait_for_capacity(self.connections).await {
                Ok(()) => next(n).map_err(|e| object_store::Error::Generic {
                    store: "spool",
                    source: Box::new(e),
                }),
                Err(e) => Err(e),
            };
            match bytes {
                Ok(b) => w.put(b),
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(e);
                }
            }
            parts += 1;
            left -= n as u64;
        }
        w.finish().await?;
        Ok(parts)
    }

    /// Count a multipart upload of `parts` parts (plus its start and completion).
    fn count_multipart(&self, parts: u64) {
        self.extra_puts
            .fetch_add(parts + 1, std::sync::atomic::Ordering::Relaxed);
        self.multipart_uploads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn err(&self, name: &str, e: object_store::Error) -> Error {
        self.store_error(name, e.to_string())
    }

    fn store_error(&self, name: &str, mut detail: String) -> Error {
        // The local backend only says so deep inside its message: say what to do about it.
        if detail.contains("os error 28") {
            detail.push_str(
                "; the disk holding the vault is full: free space on it and run the command again (nothing half-written was kept)",
            );
        }
        Error::Store {
            object: format!("{}/{name}", self.location),
            detail,
        }
    }
}

impl Store for ObjectStoreBackend {
    fn location(&self) -> &str {
        &self.location
    }

    fn requests(&self) -> RequestCounts {
        let g = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
        RequestCounts {
            puts: g(&self.extra_puts),
            multipart_uploads: g(&self.multipart_uploads),
            ..Default::default()
        }
    }

    fn connections(&self) -> usize {
        self.connections
    }

    fn downloads(&self) -> usize {
        self.downloads
    }

    fn object_lock(&self) -> Option<&crate::store::s3lock::S3Lock> {
        self.s3lock.as_ref()
    }

    fn get(&self, name: &str) -> Result<Option<Bytes>> {
        let path = ObjPath::from(name);
        self.run(async {
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
        match self.run(self.inner.get_range(&path, range.clone())) {
            Ok(b) if b.len() as u64 == want => Ok(b),
            Ok(b) => Err(truncated(range.start + b.len() as u64)),
            Err(e) => match self.run(self.inner.head(&path)) {
                Ok(meta) if meta.size < range.end => Err(truncated(meta.size)),
                _ => Err(self.err(name, e)),
            },
        }
    }

    fn put(&self, name: &str, data: Bytes) -> Result<bool> {
        let path = ObjPath::from(name);
        // An immutable vault: everything but locks (which must go away) is retained. One PUT
        // (up to 5 GiB, beyond any pack size) carries the retention; multipart would need the
        // headers on its initiation, which object_store cannot send.
        if let Some(lock) = &self.s3lock
            && let Some(policy) = lock.policy()
            && !name.starts_with("locks/")
        {
            let until = crate::store::s3lock::retain_until(&policy, jiff::Timestamp::now());
            return lock.put_locked(name, data, policy.mode, until);
        }
        if let Some(part) = self.part_size(name, data.len() as u64) {
            // Unconditional: an existing object of this name already holds these bytes.
            let len = data.len() as u64;
            let mut rest = data;
            let parts = self
                .run(self.put_multipart(&path, len, part, &mut |n| Ok(rest.split_to(n))))
                .map_err(|e| self.err(name, e))?;
            self.count_multipart(parts);
            return Ok(true);
        }
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self.run(
            self.inner
                .put_opts(&path, PutPayload::from_bytes(data), opts),
        ) {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(self.err(name, e)),
        }
    }

    fn put_file(&self, name: &str, file: &Path) -> Result<bool> {
        if let Some(root) = &self.root
            && let Some(r) = self.link_into_place(root, name, file)
        {
            return r;
        }
        // Going up in parts (and not on an immutable vault, whose retention needs one PUT):
        // read each part from the file when its turn comes, so the object is never all in
        // memory.
        let len = std::fs::metadata(file)
            .map_err(|e| Error::io(file, e))?
            .len();
        let locked = self.s3lock.as_ref().is_some_and(|l| l.policy().is_some());
        if let (false, Some(part)) = (locked, self.part_size(name, len)) {
            use std::io::Read;
            let mut f = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
            let mut next = |n: usize| {
                let mut buf = vec![0u8; n];
                f.read_exact(&mut buf).map(|()| Bytes::from(buf))
            };
            let parts = self
                .run(self.put_multipart(&ObjPath::from(name), len, part, &mut next))
                .map_err(|e| self.err(name, e))?;
            self.count_multipart(parts);
            return Ok(true);
        }
        let data = std::fs::read(file).map_err(|e| Error::io(file, e))?;
        self.put(name, Bytes::from(data))
    }

    fn local_root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let mut out = Vec::new();
        self.list_each(prefix, &mut |o| {
            out.push(o);
            Ok(())
        })?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn list_each(&self, prefix: &str, f: &mut dyn FnMut(ObjectInfo) -> Result<()>) -> Result<()> {
        let path = ObjPath::from(prefix);
        self.run(async {
            let mut stream = self.inner.list(Some(&path));
            while let Some(m) = stream.try_next().await.map_err(|e| self.err(prefix, e))? {
                f(ObjectInfo {
                    name: m.location.to_string(),
                    size: m.size,
                    modified: jiff::Timestamp::from_millisecond(m.last_modified.timestamp_millis())
                        .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
                })?;
            }
            Ok(())
        })
    }

    fn delete(&self, name: &str) -> Result<()> {
        let path = ObjPath::from(name);
        match self.run(self.inner.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(name, e)),
        }
    }
}
