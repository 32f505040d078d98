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

pub mod console;
pub mod http;
#[cfg(target_os = "linux")]
pub mod mount;
pub mod webdav;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::pack::BlobKind;
use crate::format::snapshot::{Snapshot, SnapshotFilter};
use crate::format::tree::{Node, NodeKind, Tree, UnixMeta};
use crate::paths::{self, PathStyle};
use crate::vault::index::Index;
use crate::vault::{SNAPSHOTS, Vault};

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
pub const DEFAULT_CACHE_BYTES: u64 = 128 << 20;

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

/// One recovery point as the view shows it.
#[derive(Debug)]
pub struct SnapInfo {
    pub id: Id,
    /// Its folder name under `ids/`: the short id, longer where two would clash.
    pub name: String,
    /// `YYYY-MM-DD` and `HHMM_<name>`: where it appears under `dates/`.
    pub day: String,
    pub day_name: String,
    pub snapshot: Snapshot,
}

/// One place in the view. Cheap to clone; a value stays valid after the view refreshes.
#[derive(Debug, Clone)]
pub enum Entry {
    Root,
    Ids,
    Dates,
    Day(String),
    /// `latest`: a symlink to `ids/<name>` in the mount, the same folder in WebDAV.
    Latest,
    /// A recovery point's top folder.
    Snap(Arc<SnapInfo>),
    /// A folder the layout adds (`UNC`, `UNC/server` of a Windows share).
    Folder {
        snap: Arc<SnapInfo>,
        children: Arc<Vec<(Vec<u8>, Entry)>>,
    },
    /// An archived file, folder or symlink.
    Node {
        snap: Arc<SnapInfo>,
        node: Arc<Node>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
}

/// What `stat` shows of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub kind: Kind,
    /// File length; a symlink's is its target's length.
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    /// As recorded; `None` for Windows entries and for the folders the layout adds.
    pub unix: Option<UnixMeta>,
    pub win_attrs: Option<u32>,
}

impl Entry {
    pub fn snapshot(&self) -> Option<&Arc<SnapInfo>> {
        match self {
            Entry::Snap(s) | Entry::Folder { snap: s, .. } | Entry::Node { snap: s, .. } => Some(s),
            _ => None,
        }
    }
}

/// The snapshot list as folders, rebuilt when it changes.
struct Layout {
    /// Oldest first.
    snaps: Vec<Arc<SnapInfo>>,
    by_name: HashMap<String, usize>,
    /// Day → `HHMM_<name>` → snapshot, in name order.
    days: BTreeMap<String, BTreeMap<String, usize>>,
    /// Every snapshot object listed (also filtered out ones): a new one triggers a rebuild.
    listed: HashSet<Id>,
    unreadable: Vec<(Id, String)>,
}

struct State {
    layout: Layout,
    index: Arc<Index>,
}

/// A decoded tree and roughly what it holds in memory (the cache's weight).
struct CachedTree {
    tree: Tree,
    weight: u64,
}

#[derive(Clone)]
struct TreeWeight;
impl quick_cache::Weighter<Id, Arc<CachedTree>> for TreeWeight {
    fn weight(&self, _: &Id, t: &Arc<CachedTree>) -> u64 {
        t.weight
    }
}

#[derive(Clone)]
struct ChunkWeight;
impl quick_cache::Weighter<Id, Bytes> for ChunkWeight {
    fn weight(&self, _: &Id, b: &Bytes) -> u64 {
        b.len() as u64 + 64
    }
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

/// An open file: where each chunk starts, and where its reader is, to see sequential reads.
pub struct OpenFile {
    size: u64,
    /// Chunk ids and their offsets in the file.
    chunks: Vec<(Id, u64)>,
    /// A symlink's target, served as its content (WebDAV has no symlinks).
    inline: Option<Bytes>,
    /// Where the last read started and ended.
    last: std::sync::Mutex<(u64, u64)>,
    /// Chunks below this have been read or scheduled ahead.
    ahead: AtomicUsize,
    /// Reads ahead never go past this offset (a ranged GET's end).
    limit: AtomicU64,
    etag: String,
}

impl OpenFile {
    pub fn size(&self) -> u64 {
        self.size
    }
    /// A strong validator for HTTP: changes exactly when the content does.
    pub fn etag(&self) -> &str {
        &self.etag
    }
    /// Read ahead no further than `end` (a ranged request's end).
    pub fn limit_read_ahead(&self, end: u64) {
        self.limit.store(end, Ordering::Relaxed);
    }
    /// How many chunks the file is made of.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
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

    pub fn attr(&self, e: &Entry) -> Attr {
        let dir = |mtime_ns: i64| Attr {
            kind: Kind::Dir,
            size: 0,
            mtime_ns,
            ctime_ns: mtime_ns,
            unix: None,
            win_attrs: None,
        };
        let ns = |s: &SnapInfo| s.snapshot.time.as_nanosecond() as i64;
        match e {
            Entry::Root | Entry::Ids | Entry::Dates => {
                dir(self.current().layout.snaps.last().map_or(0, |s| ns(s)))
            }
            Entry::Day(d) => {
                let st = self.current();
                let newest = st
                    .layout
                    .days
                    .get(d)
                    .and_then(|m| m.values().map(|&i| ns(&st.layout.snaps[i])).max());
                dir(newest.unwrap_or(0))
            }
            Entry::Latest => {
                let st = self.current();
                let newest = st.layout.snaps.last();
                Attr {
                    kind: Kind::Symlink,
                    size: newest.map_or(0, |s| s.name.len() as u64 + 4),
                    ..dir(newest.map_or(0, |s| ns(s)))
                }
            }
            Entry::Snap(s) | Entry::Folder { snap: s, .. } => dir(ns(s)),
            Entry::Node { node, .. } => Attr {
                kind: match node.kind {
                    NodeKind::File { .. } => Kind::File,
                    NodeKind::Dir { .. } => Kind::Dir,
                    NodeKind::Symlink { .. } => Kind::Symlink,
                },
                size: match &node.kind {
                    NodeKind::Symlink { target } => target.len() as u64,
                    NodeKind::File { .. } => node.size,
                    NodeKind::Dir { .. } => 0,
                },
                mtime_ns: node.mtime_ns,
                ctime_ns: if node.ctime_ns != 0 {
                    node.ctime_ns
                } else {
                    node.mtime_ns
                },
                unix: node.unix,
                win_attrs: node.win_attrs,
            },
        }
    }

    /// The entries of a folder, in name order. `Err` for what is not a folder.
    pub fn list(&self, dir: &Entry) -> Result<Vec<(Vec<u8>, Entry)>> {
        Ok(match dir {
            Entry::Root => {
                let st = self.fresh();
                let mut v = vec![
                    (b"dates".to_vec(), Entry::Dates),
                    (b"ids".to_vec(), Entry::Ids),
                ];
                if !st.layout.snaps.is_empty() {
                    v.push((b"latest".to_vec(), Entry::Latest));
                }
                v
            }
            Entry::Ids => {
                let st = self.fresh();
                let mut v: Vec<_> = st
                    .layout
                    .snaps
                    .iter()
                    .map(|s| (s.name.clone().into_bytes(), Entry::Snap(Arc::clone(s))))
                    .collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v
            }
            Entry::Dates => self
                .fresh()
                .layout
                .days
                .keys()
                .map(|d| (d.clone().into_bytes(), Entry::Day(d.clone())))
                .collect(),
            Entry::Day(d) => {
                let st = self.fresh();
                st.layout.days.get(d).map_or_else(Vec::new, |m| {
                    m.iter()
                        .map(|(n, &i)| {
                            (
                                n.clone().into_bytes(),
                                Entry::Snap(Arc::clone(&st.layout.snaps[i])),
                            )
                        })
                        .collect()
                })
            }
            Entry::Latest => match self.latest() {
                Some(e) => return self.list(&e),
                None => return Err(not_a_folder("latest")),
            },
            Entry::Snap(s) => self.snap_root(s)?,
            Entry::Folder { children, .. } => children.as_ref().clone(),
            Entry::Node { snap, node } => match &node.kind {
                NodeKind::Dir { subtree } => self.entries_of(snap, subtree)?,
                _ => return Err(not_a_folder(&String::from_utf8_lossy(&node.name))),
            },
        })
    }

    /// One entry of a folder by name; `Ok(None)` when there is none. In Windows recovery
    /// points a name also matches without regard to case, as on Windows.
    pub fn lookup(&self, dir: &Entry, name: &[u8]) -> Result<Option<Entry>> {
        match dir {
            Entry::Node { snap, node } => {
                let NodeKind::Dir { subtree } = &node.kind else {
                    return Ok(None);
                };
                let t = self.tree(subtree)?;
                let nodes = &t.tree.nodes;
                let hit = match nodes.binary_search_by(|n| n.name.as_slice().cmp(name)) {
                    Ok(i) => Some(&nodes[i]),
                    Err(_) if snap.snapshot.path_style == PathStyle::Windows => nodes
                        .iter()
                        .find(|n| PathStyle::Windows.same_name(&n.name, name)),
                    Err(_) => None,
                };
                Ok(hit.map(|n| Entry::Node {
                    snap: Arc::clone(snap),
                    node: Arc::new(n.clone()),
                }))
            }
            Entry::Ids => {
                let st = self.fresh();
                let name = String::from_utf8_lossy(name);
                Ok(st
                    .layout
                    .by_name
                    .get(name.as_ref())
                    .map(|&i| Entry::Snap(Arc::clone(&st.layout.snaps[i]))))
            }
            Entry::Day(d) => {
                let st = self.fresh();
                let name = String::from_utf8_lossy(name);
                Ok(st
                    .layout
                    .days
                    .get(d)
                    .and_then(|m| m.get(name.as_ref()))
                    .map(|&i| Entry::Snap(Arc::clone(&st.layout.snaps[i]))))
            }
            _ => {
                let style = dir.snapshot().map(|s| s.snapshot.path_style);
                Ok(self.list(dir)?.into_iter().find_map(|(n, e)| {
                    let same = n == name
                        || style == Some(PathStyle::Windows)
                            && PathStyle::Windows.same_name(&n, name);
                    same.then_some(e)
                }))
            }
        }
    }

    /// The entry at a path of names below the root; `latest` is followed when it is crossed
    /// or named (WebDAV shows it as the folder itself).
    pub fn resolve(&self, names: &[&[u8]]) -> Result<Option<Entry>> {
        let mut e = Entry::Root;
        for n in names {
            if matches!(e, Entry::Latest) {
                e = match self.latest() {
                    Some(l) => l,
                    None => return Ok(None),
                };
            }
            match self.lookup(&e, n)? {
                Some(next) => e = next,
                None => return Ok(None),
            }
        }
        if matches!(e, Entry::Latest) {
            return Ok(self.latest());
        }
        Ok(Some(e))
    }

    /// The root tree's entries (the first components of the backed-up paths: `srv`, `E:`),
    /// as original paths are built from them.
    pub fn root_entries(&self, snap: &Arc<SnapInfo>) -> Result<Vec<(Vec<u8>, Entry)>> {
        self.entries_of(snap, &snap.snapshot.tree)
    }

    /// The nodes of tree `id` of `snap`, by name.
    fn entries_of(&self, snap: &Arc<SnapInfo>, id: &Id) -> Result<Vec<(Vec<u8>, Entry)>> {
        Ok(self
            .tree(id)?
            .tree
            .nodes
            .iter()
            .map(|n| {
                (
                    n.name.clone(),
                    Entry::Node {
                        snap: Arc::clone(snap),
                        node: Arc::new(n.clone()),
                    },
                )
            })
            .collect())
    }

    /// The entry at root-tree components `comps` (see [`crate::paths::parse_original`]);
    /// `Ok(None)` when the recovery point has nothing there. Needs at least one component.
    pub fn at_path(&self, snap: &Arc<SnapInfo>, comps: &[Vec<u8>]) -> Result<Option<Entry>> {
        let Some((first, rest)) = comps.split_first() else {
            return Ok(None);
        };
        let style = snap.snapshot.path_style;
        let mut e = match self
            .root_entries(snap)?
            .into_iter()
            .find(|(n, _)| style.same_name(n, first))
        {
            Some((_, e)) => e,
            None => return Ok(None),
        };
        for name in rest {
            match self.lookup(&e, name)? {
                Some(next) => e = next,
                None => return Ok(None),
            }
        }
        Ok(Some(e))
    }

    /// The index the view reads through (reloaded with the snapshot list).
    pub fn index(&self) -> Arc<Index> {
        Arc::clone(&self.fresh().index)
    }

    /// A recovery point's top folder: its root tree, Windows volumes as `restore --target`
    /// names them (`E:` → `E`, `\\server\share` → `UNC/server/share`).
    fn snap_root(&self, snap: &Arc<SnapInfo>) -> Result<Vec<(Vec<u8>, Entry)>> {
        let root = self.root_entries(snap)?;
        if snap.snapshot.path_style == PathStyle::Unix {
            return Ok(root);
        }
        // Volumes become paths of folders; shares of one server meet under `UNC/server`.
        #[derive(Default)]
        struct Dir {
            sub: BTreeMap<Vec<u8>, Dir>,
            leaf: Option<Entry>,
        }
        let mut top = Dir::default();
        for (name, e) in root {
            let folders = paths::volume_folders(&name)?;
            let mut d = &mut top;
            for f in &folders {
                d = d.sub.entry(f.clone()).or_default();
            }
            d.leaf = Some(e);
        }
        fn flatten(snap: &Arc<SnapInfo>, d: Dir) -> Vec<(Vec<u8>, Entry)> {
            d.sub
                .into_iter()
                .map(|(name, sub)| {
                    let e = match sub.leaf {
                        Some(leaf) => leaf,
                        None => Entry::Folder {
                            snap: Arc::clone(snap),
                            children: Arc::new(flatten(snap, sub)),
                        },
                    };
                    (name, e)
                })
                .collect()
        }
        Ok(flatten(snap, top))
    }

    fn tree(&self, id: &Id) -> Result<Arc<CachedTree>> {
        self.trees.get_or_insert_with(id, || {
            let tree = self.vault.load_tree(&self.current().index, id)?;
            let weight = tree
                .nodes
                .iter()
                .map(|n| {
                    let chunks = match &n.kind {
                        NodeKind::File { chunks } => chunks.len() * 32,
                        NodeKind::Symlink { target } => target.len(),
                        NodeKind::Dir { .. } => 0,
                    };
                    (std::mem::size_of::<Node>() + n.name.len() + chunks) as u64
                })
                .sum::<u64>()
                + 64;
            Ok(Arc::new(CachedTree { tree, weight }))
        })
    }

    /// Open a file (or a symlink, whose content is its target) for reading.
    pub fn open(&self, e: &Entry) -> Result<OpenFile> {
        let Entry::Node { node, .. } = e else {
            return Err(Error::InvalidInput("not a file".into()));
        };
        let what = || format!("file {}", String::from_utf8_lossy(&node.name));
        let (chunks, size, inline) = match &node.kind {
            NodeKind::File { chunks } => {
                let st = self.current();
                let mut at = 0u64;
                let mut v = Vec::with_capacity(chunks.len());
                for id in chunks {
                    let loc = st.index.get(id).ok_or_else(|| {
                        Error::corrupt(what(), format!("chunk {id} is not in any index"))
                    })?;
                    v.push((*id, at));
                    at += loc.raw_len as u64;
                }
                if at != node.size {
                    return Err(Error::corrupt(
                        what(),
                        format!("chunks hold {at} bytes but the tree records {}", node.size),
                    ));
                }
                (v, at, None)
            }
            NodeKind::Symlink { target } => (
                Vec::new(),
                target.len() as u64,
                Some(Bytes::from(target.clone())),
            ),
            NodeKind::Dir { .. } => {
                return Err(Error::InvalidInput(format!("{} is a folder", what())));
            }
        };
        let mut h = blake3::Hasher::new();
        for (id, _) in &chunks {
            h.update(&id.0);
        }
        if let Some(t) = &inline {
            h.update(t);
        }
        h.update(&size.to_le_bytes());
        Ok(OpenFile {
            size,
            chunks,
            inline,
            last: std::sync::Mutex::new((u64::MAX, u64::MAX)),
            ahead: AtomicUsize::new(0),
            limit: AtomicU64::new(u64::MAX),
            etag: hex::encode(&h.finalize().as_bytes()[..16]),
        })
    }

    /// Up to `len` bytes at `offset` (fewer at the end of the file).
    pub fn read(&self, f: &OpenFile, offset: u64, len: usize) -> Result<Vec<u8>> {
        if offset >= f.size || len == 0 {
            return Ok(Vec::new());
        }
        let end = f.size.min(offset.saturating_add(len as u64));
        if let Some(t) = &f.inline {
            return Ok(t[offset as usize..end as usize].to_vec());
        }
        let chunk_end = |i: usize| f.chunks.get(i + 1).map_or(f.size, |c| c.1);
        let first = f
            .chunks
            .partition_point(|c| c.1 <= offset)
            .saturating_sub(1);
        let last = f.chunks.partition_point(|c| c.1 < end); // exclusive
        // Sequential: at or after the last read's start and at most one kernel read past its
        // end (the kernel sends a reader's requests a few at a time, not always in order).
        let sequential = {
            let mut last = f.last.lock().unwrap_or_else(|p| p.into_inner());
            let near = offset >= last.0 && offset <= last.1.saturating_add(MAX_KERNEL_READ);
            *last = (offset, end);
            near
        };
        if sequential {
            self.read_ahead(f, last, end);
        }
        let load = |i: usize| self.chunk(&f.chunks[i].0);
        let parts: Vec<Bytes> = if last - first > 1 {
            self.pool.install(|| {
                (first..last)
                    .into_par_iter()
                    .map(load)
                    .collect::<Result<_>>()
            })?
        } else {
            (first..last).map(load).collect::<Result<_>>()?
        };
        let mut out = Vec::with_capacity((end - offset) as usize);
        for (i, p) in (first..last).zip(parts) {
            let (cs, ce) = (f.chunks[i].1, chunk_end(i));
            if p.len() as u64 != ce - cs {
                return Err(Error::corrupt(
                    format!("chunk {}", f.chunks[i].0),
                    "its length differs from the index",
                ));
            }
            let from = offset.max(cs) - cs;
            let to = end.min(ce) - cs;
            out.extend_from_slice(&p[from as usize..to as usize]);
        }
        Ok(out)
    }

    /// Schedule the chunks from `from` on, up to [`READ_AHEAD`] bytes past `end`.
    fn read_ahead(&self, f: &OpenFile, from: usize, end: u64) {
        let stop = end
            .saturating_add(READ_AHEAD)
            .min(f.limit.load(Ordering::Relaxed));
        let upto = f.chunks.partition_point(|c| c.1 < stop);
        let start = f.ahead.fetch_max(upto, Ordering::Relaxed).max(from);
        for i in start..upto {
            let id = f.chunks[i].0;
            if self.chunks.contains_key(&id) {
                continue;
            }
            // Holds the browser only through what the closure needs; a failed read ahead is
            // simply read again (and reported) when the reader gets there.
            let chunks = Arc::clone(&self.chunks);
            let vault = Arc::clone(&self.vault);
            let index = Arc::clone(&self.current().index);
            self.pool.spawn(move || {
                let _ = chunks.get_or_insert_with(&id, || read_chunk(&vault, &index, &id));
            });
        }
    }

    fn chunk(&self, id: &Id) -> Result<Bytes> {
        self.chunks
            .get_or_insert_with(id, || read_chunk(&self.vault, &self.current().index, id))
    }
}

/// A cache of `capacity` whose shards each hold at least eight of the largest items (`largest`
/// bytes): quick_cache never admits an item heavier than its shard, and with its default shard
/// count a 4 MiB chunk would never be cached at all.
fn sized_cache<V: Clone, W: quick_cache::Weighter<Id, V> + Clone>(
    capacity: u64,
    largest: u64,
    weighter: W,
) -> Result<quick_cache::sync::Cache<Id, V, W>> {
    let shards = (capacity / (largest * 8)).clamp(1, 16).next_power_of_two() as usize;
    let shards = if shards as u64 * largest * 8 > capacity {
        (shards / 2).max(1)
    } else {
        shards
    };
    let opts = quick_cache::OptionsBuilder::new()
        .estimated_items_capacity(shards * 64)
        .weight_capacity(capacity)
        .shards(shards)
        // New items go to the cold half: with quick_cache's default (3% cold) a chunk read ahead,
        // or a big folder's tree, would be evicted before its reader came back for it.
        .hot_allocation(0.5)
        .build()
        .map_err(|e| Error::InvalidInput(format!("cache settings: {e:?}")))?;
    Ok(quick_cache::sync::Cache::with_options(
        opts,
        weighter,
        Default::default(),
        Default::default(),
    ))
}

fn read_chunk(vault: &Vault, index: &Index, id: &Id) -> Result<Bytes> {
    vault.read_blob(index, id, BlobKind::Data).map(Bytes::from)
}

fn not_a_folder(what: &str) -> Error {
    Error::InvalidInput(format!("{what} is not a folder"))
}

fn listed_snapshots(vault: &Vault) -> Result<Vec<Id>> {
    Ok(vault
        .list_ids(SNAPSHOTS)?
        .into_iter()
        .map(|(id, _)| id)
        .collect())
}

/// Lay the `listed` snapshots out; those already read (in `old`) are not read again.
fn build_layout(
    vault: &Vault,
    opts: &BrowseOptions,
    listed: Vec<Id>,
    old: Option<&Layout>,
) -> Result<Layout> {
    let known: HashMap<Id, &Snapshot> = old
        .map(|o| o.snaps.iter().map(|s| (s.id, &s.snapshot)).collect())
        .unwrap_or_default();
    let loaded: Vec<(Id, Result<Option<Snapshot>>)> = listed
        .par_iter()
        .map(|id| {
            if let Some(s) = known.get(id) {
                return (*id, Ok(Some((*s).clone())));
            }
            (*id, vault.load_snapshot_if_present(id))
        })
        .collect();
    let mut snaps: Vec<(Id, Snapshot)> = Vec::new();
    let mut unreadable = Vec::new();
    for (id, r) in loaded {
        match r {
            Ok(Some(s)) if opts.filter.matches(&s) => snaps.push((id, s)),
            Ok(_) => {}
            Err(e) => unreadable.push((id, e.to_string())),
        }
    }
    snaps.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
    // Short ids that two snapshots share are written out in full for both.
    let mut shorts: HashMap<String, usize> = HashMap::new();
    for (id, _) in &snaps {
        *shorts.entry(id.short()).or_default() += 1;
    }
    let mut layout = Layout {
        snaps: Vec::new(),
        by_name: HashMap::new(),
        days: BTreeMap::new(),
        listed: listed.into_iter().collect(),
        unreadable,
    };
    for (i, (id, snapshot)) in snaps.into_iter().enumerate() {
        let name = if shorts[&id.short()] > 1 {
            id.to_hex()
        } else {
            id.short()
        };
        let local = snapshot.time.to_zoned(opts.time_zone.clone());
        let day = local.strftime("%Y-%m-%d").to_string();
        let day_name = format!("{}_{name}", local.strftime("%H%M"));
        layout.by_name.insert(name.clone(), i);
        layout
            .days
            .entry(day.clone())
            .or_default()
            .insert(day_name.clone(), i);
        layout.snaps.push(Arc::new(SnapInfo {
            id,
            name,
            day,
            day_name,
            snapshot,
        }));
    }
    Ok(layout)
}
