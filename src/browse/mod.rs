//! A read-only view of a vault's recovery points as one folder tree, shared by `mount` (FUSE)
//! and `serve` (WebDAV):
//!
//! ```text
//! ids/<short id>/...                      laid out as `restore --target` lays it out
//! dates/<YYYY-MM-DD>/<HHMM>_<short id>/   the same, by the recovery point's local time
//! latest                                  the newest recovery point
//! ```
//!
//! Trees and chunks are read on demand through bounded caches, so browsing costs what is looked
//! at, not what the vault holds. A read fetches only the chunks that cover it; sequential
//! reads also fetch the next few chunks ahead, in parallel.

mod cache;
pub mod console;
mod entry;
mod files;
pub mod http;
mod layout;
mod lookup;
#[cfg(target_os = "linux")]
pub mod mount;
pub mod webdav;

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::snapshot::SnapshotFilter;
use crate::vault::Vault;
use crate::vault::index::Index;

use cache::{CachedTree, ChunkWeight, TreeWeight, sized_cache};
pub use entry::{Attr, Entry, Kind, SnapInfo};
pub use files::OpenFile;
use layout::{Layout, build_layout, listed_snapshots};

/// Called with a one-line description of each failed read (a damaged chunk, a lost network):
/// the reader gets an I/O error, the admin gets the reason.
pub type ErrorSink = Box<dyn Fn(&str) + Send + Sync>;

/// How a browse session is set up.
#[derive(Debug, Clone)]
pub struct BrowseOptions {
    /// Which recovery points to show (`--label`, `--host`).
    pub filter: SnapshotFilter,
    /// Bytes of decoded trees and chunks kept in memory (`--cache-size`).
    pub cache_bytes: u64,
    /// The zone `dates/` and its `HHMM` names are in.
    pub time_zone: jiff::tz::TimeZone,
    /// How often the snapshot list is looked at again, so recovery points written meanwhile
    /// appear; `Duration::MAX` never.
    pub refresh: Duration,
}

/// The default `--cache-size`.
pub(crate) const DEFAULT_CACHE_BYTES: u64 = 128 << 20;

/// Bytes read ahead of a sequential reader: enough chunks to keep every core (or download
/// connection) busy while the reader copies out the current one.
const READ_AHEAD: u64 = 16 << 20;

/// The largest read request a FUSE kernel sends (256 pages).
const MAX_KERNEL_READ: u64 = 1 << 20;

impl Default for BrowseOptions {
    fn default() -> Self {
        BrowseOptions {
            filter: SnapshotFilter::default(),
            cache_bytes: DEFAULT_CACHE_BYTES,
            time_zone: jiff::tz::TimeZone::UTC,
            refresh: Duration::from_secs(30),
        }
    }
}

struct State {
    layout: Layout,
    index: Arc<Index>,
}

pub struct Browser {
    vault: Arc<Vault>,
    opts: BrowseOptions,
    state: RwLock<Arc<State>>,
    refreshed: Mutex<Instant>,
    trees: quick_cache::sync::Cache<Id, Arc<CachedTree>, TreeWeight>,
    chunks: Arc<quick_cache::sync::Cache<Id, Bytes, ChunkWeight>>,
    /// Reads ahead and fetches a read's chunks in parallel; sized for the store's connections.
    pool: rayon::ThreadPool,
}

impl Browser {
    /// Read the snapshot list and the index, and lay them out.
    pub fn new(vault: Arc<Vault>, opts: BrowseOptions) -> Result<Browser> {
        let index = Arc::new(vault.load_index()?);
        let layout = build_layout(&vault, &opts, listed_snapshots(&vault)?, None)?;
        let cache = opts.cache_bytes.max(16 << 20);
        // A quarter for trees (listings), the rest for file contents.
        let trees = sized_cache(cache / 4, 4 << 20, TreeWeight)?;
        let chunks = Arc::new(sized_cache(
            cache - cache / 4,
            u64::from(
                vault
                    .config()
                    .chunker
                    .cdc_max
                    .max(vault.config().chunker.fixed_size),
            ),
            ChunkWeight,
        )?);
        let threads = vault
            .store()
            .downloads()
            .max(std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(2);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("sitevault-read-{i}"))
            .build()
            .map_err(|e| Error::InvalidInput(format!("cannot start reader threads: {e}")))?;
        Ok(Browser {
            vault,
            opts,
            state: RwLock::new(Arc::new(State { layout, index })),
            refreshed: Mutex::new(Instant::now()),
            trees,
            chunks,
            pool,
        })
    }

    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    fn current(&self) -> Arc<State> {
        Arc::clone(&self.state.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The current state, after looking for new recovery points if it is time to.
    fn fresh(&self) -> Arc<State> {
        {
            let mut last = self.refreshed.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() < self.opts.refresh {
                return self.current();
            }
            *last = Instant::now();
        }
        // A failed look (the network, say) keeps what is shown; the next one tries again.
        let _ = self.refresh();
        self.current()
    }

    /// Look at the snapshot list now; returns whether it changed.
    pub fn refresh(&self) -> Result<bool> {
        let old = self.current();
        let listed = listed_snapshots(&self.vault)?;
        if listed.len() == old.layout.listed.len()
            && listed.iter().all(|id| old.layout.listed.contains(id))
        {
            return Ok(false);
        }
        // New snapshots come with new index files: read both.
        let index = Arc::new(self.vault.load_index()?);
        let layout = build_layout(&self.vault, &self.opts, listed, Some(&old.layout))?;
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(State { layout, index });
        Ok(true)
    }

    /// Recovery points shown, oldest first.
    pub fn snapshots(&self) -> Vec<Arc<SnapInfo>> {
        self.current().layout.snaps.clone()
    }

    /// Snapshots that could not be read (named, with why); the others are shown.
    pub fn unreadable(&self) -> Vec<(Id, String)> {
        self.current().layout.unreadable.clone()
    }

    /// Where `latest` points: `ids/<name>`.
    pub fn latest_target(&self) -> Option<Vec<u8>> {
        let st = self.fresh();
        st.layout
            .snaps
            .last()
            .map(|s| format!("ids/{}", s.name).into_bytes())
    }

    /// What `latest` stands for: the newest recovery point's folder.
    pub fn latest(&self) -> Option<Entry> {
        self.fresh().layout.snaps.last().cloned().map(Entry::Snap)
    }
}
