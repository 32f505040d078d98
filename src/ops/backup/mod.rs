//! Backup: walk the given paths, chunk and store new blobs in packs, write trees bottom-up,
//! then the index and finally the snapshot.
//!
//! `vtree` merges the given paths into one tree, `archive` turns filesystem entries into tree
//! nodes, `chunking` cuts and stores file contents, and `node` reads platform metadata.

mod archive;
mod chunking;
mod node;
mod vtree;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use jiff::Timestamp;

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::pack::BlobKind;
use crate::format::snapshot::{SNAPSHOT_VERSION, Snapshot, Summary};
use crate::format::tree::Tree;
use crate::paths::{self, PathStyle};
use crate::vault::Vault;
use crate::vault::index::Index;
use crate::vault::lock::VaultLock;
use crate::vault::pack_writer::PackWriter;
use crate::vault::packer::{PACKS_IN_FLIGHT, Packer, Uploaded, upload_packs};

use chunking::BigJob;
use vtree::VDir;

#[derive(Debug, Clone, Default)]
pub struct BackupOptions {
    pub paths: Vec<PathBuf>,
    pub host: String,
    pub label: String,
    pub tags: Vec<String>,
    /// Snapshot time; now when `None`.
    pub time: Option<Timestamp>,
    /// Read every file, even those unchanged since the parent snapshot.
    pub force_reread: bool,
    /// Sources the caller already knows are missing (afterbackup's absent drives): the
    /// snapshot is marked incomplete, so retention never counts it as good history.
    pub missing_sources: u64,
    /// Recorded in the snapshot for a site backup (see [`Snapshot::change_tracking_days`]).
    pub change_tracking_days: Option<u32>,
}

/// Something the user should hear about; the backup goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// Could not be read: left out of the snapshot, which is marked incomplete.
    Unreadable { path: PathBuf, error: String },
    /// Size or mtime changed while it was read: archived as read.
    Changed { path: PathBuf },
    /// Not a file, directory or symlink (socket, FIFO, device): not archived.
    Skipped { path: PathBuf, kind: String },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::Unreadable { path, error } => write!(
                f,
                "cannot read {}: {error}; it is not in the snapshot",
                path.display()
            ),
            Warning::Changed { path } => write!(
                f,
                "{} changed while it was being read; the archived copy may be inconsistent",
                path.display()
            ),
            Warning::Skipped { path, kind } => write!(
                f,
                "skipped {} ({kind}): only files, directories and symlinks are archived",
                path.display()
            ),
        }
    }
}

/// Live feedback from a running backup. All methods have empty defaults.
pub trait BackupObserver: Sync {
    fn warning(&self, _w: &Warning) {}
    /// What the backup will go through, from a scan that runs beside it; it may come late, or
    /// not at all if the backup finishes first.
    fn totals(&self, _files: u64, _bytes: u64) {}
    /// File bytes dealt with (read, or skipped as unchanged) since the last call.
    fn bytes_done(&self, _bytes: u64) {}
    fn file_done(&self, _path: &Path, _bytes: u64) {}
}

#[derive(Debug, Clone)]
pub struct BackupResult {
    pub id: Id,
    pub snapshot: Snapshot,
    pub warnings: Vec<Warning>,
    /// The index this run looked blobs up in.
    pub index: IndexUse,
}

/// How the index was held during a backup (not stored: it describes this run).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct IndexUse {
    /// Blobs it listed.
    pub blobs: u64,
    /// Kept in a working file on disk because it exceeded the memory budget.
    pub on_disk: bool,
    /// Heap bytes it took.
    pub memory_bytes: u64,
}

#[derive(Default)]
struct Counters {
    files: AtomicU64,
    dirs: AtomicU64,
    symlinks: AtomicU64,
    bytes_read: AtomicU64,
    unchanged: AtomicU64,
}

struct Session<'a> {
    vault: &'a Vault,
    index: &'a Index,
    /// Reuse chunk lists of files unchanged since the parent snapshot.
    reuse: bool,
    observer: &'a dyn BackupObserver,
    packer: Packer<'a>,
    /// Hands big files to the big-file worker; `None` once the walk is over.
    big: Mutex<Option<SyncSender<BigJob>>>,
    warnings: Mutex<Vec<Warning>>,
    n: Counters,
}

/// Back up `opts.paths` into one snapshot.
pub fn backup(
    vault: &Vault,
    opts: &BackupOptions,
    observer: &dyn BackupObserver,
    lock: Option<&VaultLock>,
) -> Result<BackupResult> {
    let started = Instant::now();
    let time = opts.time.unwrap_or_else(Timestamp::now);
    let roots = existing_roots(opts)?;
    let mut index = vault.load_index()?;
    vault.adopt_unindexed_packs(&mut index)?;

    let (up_tx, up_rx) = sync_channel(PACKS_IN_FLIGHT);
    let (big_tx, big_rx) = sync_channel::<BigJob>(0);
    // One read of the snapshots serves the parent (unchanged files) and the predecessor.
    let earlier = vault
        .scan_snapshots()
        .map(|s| s.readable)
        .unwrap_or_default();
    let parent = if opts.force_reread {
        None
    } else {
        parent_tree(vault, &index, opts, &roots, &earlier)
    };
    let s = Session {
        vault,
        index: &index,
        reuse: parent.is_some(),
        observer,
        packer: Packer::new(vault, &index, up_tx),
        big: Mutex::new(Some(big_tx)),
        warnings: Mutex::new(Vec::new()),
        n: Counters::default(),
    };
    let data_pool = data_pool()?;
    let vroot = VDir::of_roots(PathStyle::native(), &roots)?;
    let (walked, uploaded) = s.run(&roots, &vroot, parent.as_ref(), up_rx, big_rx, &data_pool);
    // Ordering: every pack and the index files naming them are stored; only now the snapshot.
    let uploaded = uploaded?;
    let tree = walked?;
    // A lookup that could not read the on-disk index answered "not found": say so rather
    // than commit on an index that was not fully read.
    index.check_io()?;
    let index_use = IndexUse::of(&index);

    let warnings = s.warnings.into_inner().expect("warnings lock");
    let summary = summarize(&s.n, &s.packer, &warnings, &uploaded, started);
    let snapshot = new_snapshot(opts, time, &roots, tree, summary, &earlier);
    // The commit point: only while our lock certainly still holds, or a prune that judged us
    // gone could have deleted packs this snapshot needs (formats/ §12.6).
    if let Some(l) = lock {
        l.check()?;
    }
    let id = vault.save_snapshot(&snapshot)?;
    Ok(BackupResult {
        id,
        snapshot,
        warnings,
        index: index_use,
    })
}

/// `opts.paths` made absolute: every path must exist before anything is written.
fn existing_roots(opts: &BackupOptions) -> Result<Vec<PathBuf>> {
    if opts.paths.is_empty() {
        return Err(Error::InvalidInput("no backup paths given".into()));
    }
    let mut roots = Vec::new();
    for p in &opts.paths {
        let abs = paths::absolute(p)?;
        std::fs::symlink_metadata(&abs).map_err(|e| Error::MissingPath {
            path: p.clone(),
            cause: e,
        })?;
        roots.push(abs);
    }
    Ok(roots)
}

/// The pool big files are chunked and sealed on.
fn data_pool() -> Result<rayon::ThreadPool> {
    // Big files get their own pool: its threads never wait on the walkers, so a walker that
    // blocks waiting for a big file cannot deadlock the work it waits for.
    rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("sitevault-data-{i}"))
        .build()
        .map_err(|e| Error::InvalidInput(format!("cannot start worker threads: {e}")))
}

impl IndexUse {
    /// How `index` is held now.
    fn of(index: &Index) -> IndexUse {
        IndexUse {
            blobs: index.len() as u64,
            on_disk: index.is_on_disk(),
            memory_bytes: index.heap_bytes() as u64,
        }
    }
}

impl Session<'_> {
    /// Archive the given paths while helper threads count them for progress, upload packs and
    /// chunk big files; returns the root tree's id and what the uploader stored.
    fn run(
        &self,
        roots: &[PathBuf],
        vroot: &VDir,
        parent: Option<&Tree>,
        up_rx: Receiver<PackWriter>,
        big_rx: Receiver<BigJob>,
        data_pool: &rayon::ThreadPool,
    ) -> (Result<Id>, Result<Uploaded>) {
        let walk_over = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                if let Some((files, bytes)) = scan(roots, &walk_over) {
                    self.observer.totals(files, bytes);
                }
            });
            let uploader = scope.spawn(|| upload_packs(self.vault, up_rx));
            let big_worker = scope.spawn(|| {
                for job in big_rx {
                    let r = data_pool
                        .install(|| self.chunk_stream_into_packs(job.file, job.policy, true));
                    let _ = job.reply.send(r);
                }
            });
            // On every path, a panic included, the workers must be told to end, or the scope
            // would wait for them forever and an unattended run would hang.
            let shutdown = Shutdown {
                session: self,
                walk_over: &walk_over,
            };
            let walked = self.archive_all(vroot, parent);
            drop(shutdown);
            let uploaded = uploader
                .join()
                .unwrap_or_else(|_| Err(Error::InvalidInput("the pack uploader panicked".into())));
            let _ = big_worker.join();
            (walked, uploaded)
        })
    }

    /// Archive the given paths, then store the root tree and the last packs; returns the root
    /// tree's id.
    fn archive_all(&self, vroot: &VDir, parent: Option<&Tree>) -> Result<Id> {
        self.archive_virtual(vroot, Path::new(""), parent)
            .and_then(|root| {
                self.big.lock().expect("big lock").take();
                let tree = self.packer.add_blob(BlobKind::Tree, &root.encode())?;
                self.packer.finish()?;
                Ok(tree)
            })
    }
}

/// The snapshot's summary: what this run counted, stored and warned about.
fn summarize(
    n: &Counters,
    packer: &Packer,
    warnings: &[Warning],
    uploaded: &Uploaded,
    started: Instant,
) -> Summary {
    let unreadable = warnings
        .iter()
        .filter(|w| matches!(w, Warning::Unreadable { .. }))
        .count() as u64;
    let changed = warnings
        .iter()
        .filter(|w| matches!(w, Warning::Changed { .. }))
        .count() as u64;
    Summary {
        files: n.files.load(Ordering::Relaxed),
        dirs: n.dirs.load(Ordering::Relaxed),
        symlinks: n.symlinks.load(Ordering::Relaxed),
        bytes_read: n.bytes_read.load(Ordering::Relaxed),
        bytes_added: uploaded.bytes,
        data_blobs_added: packer.data_blobs.load(Ordering::Relaxed),
        tree_blobs_added: packer.tree_blobs.load(Ordering::Relaxed),
        files_unchanged: n.unchanged.load(Ordering::Relaxed),
        files_unreadable: unreadable,
        files_changed: changed,
        duration_secs: started.elapsed().as_secs_f64(),
    }
}

/// The snapshot of this run, its predecessor being the newest one of the same host and label
/// that is not later than it.
fn new_snapshot(
    opts: &BackupOptions,
    time: Timestamp,
    roots: &[PathBuf],
    tree: Id,
    summary: Summary,
    earlier: &[(Id, Snapshot)],
) -> Snapshot {
    Snapshot {
        format_version: SNAPSHOT_VERSION,
        program_version: env!("CARGO_PKG_VERSION").to_string(),
        time,
        host: opts.host.clone(),
        label: opts.label.clone(),
        tags: opts.tags.clone(),
        paths: roots
            .iter()
            .map(|r| r.to_string_lossy().into_owned())
            .collect(),
        path_style: PathStyle::native(),
        complete: summary.files_unreadable == 0 && opts.missing_sources == 0,
        tree,
        summary,
        change_tracking_days: opts.change_tracking_days,
        previous: earlier
            .iter()
            .filter(|(_, s)| s.host == opts.host && s.label == opts.label && s.time <= time)
            .max_by_key(|(id, s)| (s.time, *id))
            .map(|(id, _)| *id),
    }
}

/// Ends the helper threads of a backup when dropped, also while unwinding from a panic.
struct Shutdown<'a, 'b> {
    session: &'a Session<'b>,
    walk_over: &'a AtomicBool,
}

impl Drop for Shutdown<'_, '_> {
    fn drop(&mut self) {
        self.walk_over.store(true, Ordering::Relaxed);
        // A poisoned lock still holds the sender to drop.
        self.session
            .big
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.session.packer.close();
    }
}

/// Count the files and bytes below `roots` (for progress); `None` if stopped by `over`.
fn scan(roots: &[PathBuf], over: &AtomicBool) -> Option<(u64, u64)> {
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut stack: Vec<PathBuf> = roots.to_vec();
    while let Some(p) = stack.pop() {
        if over.load(Ordering::Relaxed) {
            return None;
        }
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_file() {
            files += 1;
            bytes += m.len();
        } else if m.is_dir()
            && let Ok(rd) = std::fs::read_dir(&p)
        {
            stack.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()));
        }
    }
    Some((files, bytes))
}

/// The root tree of the newest snapshot of the same host, label and paths: its unchanged files
/// are not read again. Any failure just means no parent.
fn parent_tree(
    vault: &Vault,
    index: &Index,
    opts: &BackupOptions,
    roots: &[PathBuf],
    snaps: &[(Id, Snapshot)],
) -> Option<Tree> {
    let paths: Vec<String> = roots
        .iter()
        .map(|r| r.to_string_lossy().into_owned())
        .collect();
    let (_, snap) = snaps.iter().rev().find(|(_, s)| {
        s.host == opts.host
            && s.label == opts.label
            && s.paths == paths
            && s.path_style == PathStyle::native()
    })?;
    vault.load_tree(index, &snap.tree).ok()
}
