//! The storage seam: a small synchronous trait the engine talks to, and its implementation over
//! `object_store`. Async stays inside this module.

pub mod asof;
pub(crate) mod cache;
pub mod s3lock;
pub mod spool;

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
pub fn in_download_pool<R: Send>(n: usize, f: impl FnOnce() -> R + Send) -> R {
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

/// A [`Store`] over any `object_store` backend.
pub struct ObjectStoreBackend {
    inner: Arc<dyn ObjectStore>,
    location: String,
    /// The runtime HTTP backends need; local folders do their I/O inline without one.
    runtime: Option<Arc<tokio::runtime::Runtime>>,
    connections: usize,
    downloads: usize,
    /// Cloud only: objects larger than this are uploaded in parts.
    multipart: Option<Multipart>,
    /// Requests beyond the one `put` a multipart upload makes, and how many such uploads.
    extra_puts: std::sync::atomic::AtomicU64,
    multipart_uploads: std::sync::atomic::AtomicU64,
    /// S3 only: Object Lock requests; with a policy set, every put but locks carries it.
    s3lock: Option<crate::store::s3lock::S3Lock>,
    /// A local folder's path, where `put_file` links spooled packs into place.
    root: Option<std::path::PathBuf>,
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
pub const DEFAULT_MULTIPART: Multipart = Multipart {
    threshold: 96 << 20,
    part_size: 16 << 20,
};

/// S3 refuses parts under 5 MiB (but the last); S3 allows 10,000 parts and Azure 50,000 blocks.
const MIN_PART_SIZE: u64 = 5 << 20;
const MAX_PARTS: u64 = 10_000;

/// Uploads at once to a cloud store unless `--option connections=N` says otherwise: enough to
/// hide a round trip's latency, few enough to hold only that many (64 MiB) packs in memory.
pub const DEFAULT_CONNECTIONS: usize = 3;

/// Range reads at once from a cloud store unless `--option download_connections=N` says
/// otherwise: restore reads at most 16 MiB per request, so this bounds memory to about 128 MiB.
pub const DEFAULT_DOWNLOADS: usize = 8;

/// Settings for cloud backends: `object_store` configuration keys and values (`aws_region`,
/// `azure_storage_account_key`, ...). Keys from the environment that the backend does not
/// know are ignored (other tools' variables); explicit ones must be known.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// `AWS_*` / `AZURE_*` environment variables, lower-cased.
    pub environment: Vec<(String, String)>,
    /// `--option key=value` or a config file's `[vault.options]`; these win.
    pub explicit: Vec<(String, String)>,
}

/// What a repository string names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Folder(std::path::PathBuf),
    S3 { bucket: String, prefix: String },
    Azure { container: String, prefix: String },
}

impl Location {
    pub fn parse(repo: &str) -> Result<Location> {
        let Some((scheme, rest)) = repo.split_once("://") else {
            return Ok(Location::Folder(repo.into()));
        };
        // `C:\x` has no `://`; a one-letter scheme would be a drive, so it stays a folder.
        if scheme.len() == 1 {
            return Ok(Location::Folder(repo.into()));
        }
        let (first, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_matches('/').to_string();
        if first.is_empty() {
            return Err(Error::InvalidInput(format!(
                "repository {repo:?} names no bucket or container: write {scheme}://<name>/<prefix>"
            )));
        }
        match scheme.to_ascii_lowercase().as_str() {
            "s3" => Ok(Location::S3 {
                bucket: first.into(),
                prefix,
            }),
            "az" | "azure" => Ok(Location::Azure {
                container: first.into(),
                prefix,
            }),
            _ => Err(Error::InvalidInput(format!(
                "repository {repo:?}: unknown scheme {scheme}://; give a folder, s3://bucket/prefix or az://container/prefix"
            ))),
        }
    }
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

    /// A vault in an S3 bucket or Azure container, under `prefix`.
    pub fn cloud(repo: &str, loc: &Location, options: &StoreOptions) -> Result<ObjectStoreBackend> {
        let bad = |e: object_store::Error| Error::InvalidInput(format!("repository {repo}: {e}"));
        let key_err = |k: &str| {
            Error::InvalidInput(format!(
                "repository {repo}: unknown option {k:?}; see the README's list of storage options"
            ))
        };
        // `connections`, `download_connections` and `multipart_*` are sitevault's own; the rest go to
        // object_store.
        let mut connections = DEFAULT_CONNECTIONS;
        let mut downloads = DEFAULT_DOWNLOADS;
        let mut multipart = DEFAULT_MULTIPART;
        let mut explicit = Vec::new();
        let size = |k: &str, v: &str| {
            crate::size::parse_size(v)
                .map_err(|e| Error::InvalidInput(format!("repository {repo}: {k}: {e}")))
        };
        let count = |k: &str, v: &str| parse_count(repo, k, v);
        for (k, v) in &options.explicit {
            match k.as_str() {
                "connections" => connections = count(k, v)?,
                "download_connections" => downloads = count(k, v)?,
                "multipart_threshold" => multipart.threshold = size(k, v)?,
                "multipart_part_size" => {
                    multipart.part_size = size(k, v)?;
                    if !(MIN_PART_SIZE..=(4 << 30)).contains(&multipart.part_size) {
                        return Err(Error::InvalidInput(format!(
                            "repository {repo}: multipart_part_size={v:?}: give a size from 5MiB to 4GiB (S3's limits)"
                        )));
                    }
                }
                _ => explicit.push((k.clone(), v.clone())),
            }
        }
        let mut pending_lock = None;
        let store: Arc<dyn ObjectStore> = match loc {
            Location::S3 { bucket, .. } => {
                use object_store::aws::AmazonS3ConfigKey as Key;
                let mut b = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_client_options(client_options());
                let mut given: Vec<(Key, &str)> = Vec::new();
                for (k, v) in &options.environment {
                    if let Ok(key) = k.parse::<Key>() {
                        given.push((key, v));
                    }
                }
                for (k, v) in &explicit {
                    given.push((k.to_ascii_lowercase().parse().map_err(|_| key_err(k))?, v));
                }
                // Over HTTPS, TLS protects the bytes in transit and every blob is authenticated
                // end to end (formats/ §5), so signing a SHA-256 of each body only costs a pass
                // over every byte; over plain HTTP the signature is the only transit check.
                // Like rclone: unsigned over HTTPS, signed over HTTP, unless the user says.
                if !given.iter().any(|(k, _)| *k == Key::UnsignedPayload) {
                    let http = given.iter().any(|(k, v)| {
                        *k == Key::Endpoint && v.to_ascii_lowercase().starts_with("http://")
                    });
                    b = b.with_config(Key::UnsignedPayload, (!http).to_string());
                }
                let mut lock_client = client_options();
                for (key, v) in given {
                    if let Key::Client(ck) = key {
                        lock_client = lock_client.with_config(ck, v);
                    }
                    b = b.with_config(key, v);
                }
                // Create-only puts (If-None-Match) keep locks and objects race-free (formats/).
                let s3 = b.clone().with_retry(retry()).build().map_err(bad)?;
                let region = b
                    .get_config_value(&Key::Region)
                    .unwrap_or_else(|| "us-east-1".into());
                let signed = b.get_config_value(&Key::UnsignedPayload).as_deref() != Some("true");
                pending_lock = Some((s3.clone(), region, signed, lock_client));
                Arc::new(s3)
            }
            Location::Azure { container, .. } => {
                let mut b = object_store::azure::MicrosoftAzureBuilder::new()
                    .with_container_name(container)
                    .with_client_options(client_options());
                for (k, v) in &options.environment {
                    if let Ok(key) = k.parse::<object_store::azure::AzureConfigKey>() {
                        b = b.with_config(key, v);
                    }
                }
                for (k, v) in &explicit {
                    let key: object_store::azure::AzureConfigKey =
                        k.to_ascii_lowercase().parse().map_err(|_| key_err(k))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.with_retry(retry()).build().map_err(bad)?)
            }
            Location::Folder(_) => {
                return Err(Error::InvalidInput(format!(
                    "{repo} is a folder, not a URL"
                )));
            }
        };
        let prefix = match loc {
            Location::S3 { prefix, .. } | Location::Azure { prefix, .. } => prefix.clone(),
            Location::Folder(_) => String::new(),
        };
        let inner: Arc<dyn ObjectStore> = if prefix.is_empty() {
            store
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(
                store,
                prefix.as_str(),
            ))
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::io("tokio runtime", e))?;
        let runtime = Arc::new(runtime);
        let location = repo.trim_end_matches('/').to_string();
        let s3lock = match pending_lock {
            Some((s3, region, signed, client)) => Some(crate::store::s3lock::S3Lock::new(
                s3,
                region,
                &prefix,
                signed,
                &client,
                runtime.clone(),
                &location,
            )?),
            None => None,
        };
        Ok(ObjectStoreBackend {
            inner,
            location,
            runtime: Some(runtime),
            connections,
            downloads,
            multipart: Some(multipart),
            extra_puts: Default::default(),
            multipart_uploads: Default::default(),
            s3lock,
            root: None,
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

/// Defaults that options may override: a create-only upload is not retried after a timeout
/// (it is not idempotent), so a whole pack must fit in one request's time even on a slow uplink.
fn client_options() -> object_store::ClientOptions {
    object_store::ClientOptions::new()
        .with_timeout(std::time::Duration::from_secs(600))
        .with_connect_timeout(std::time::Duration::from_secs(30))
}

/// Transient errors and timeouts are retried with exponential backoff.
fn retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        max_retries: 8,
        retry_timeout: std::time::Duration::from_secs(300),
        backoff: object_store::BackoffConfig::default(),
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
