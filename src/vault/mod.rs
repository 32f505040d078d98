//! An open vault: config, keys, and typed reads and writes of its objects over a [`Store`].

pub mod index;
mod index_files;
pub mod lock;
mod objects;
mod open;
pub(crate) mod pack_writer;
pub(crate) mod packer;
mod snapshots;
pub(crate) mod used;
pub mod walk;

pub use index_files::IndexScan;
pub use open::{InitOptions, tree_id_key};
pub use pack_writer::{PackBody, PackWriter};
pub use snapshots::SnapshotScan;

use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::chunker::Chunker;
use crate::format::config::{ConfigAuth, VaultConfig};
use crate::format::crypto::Sealer;
use crate::format::id::Id;
use crate::format::pack::BlobKind;
use crate::format::tree::Tree;
use crate::store::Store;
use crate::vault::index::{Index, check_blob_kind};

pub(crate) const CONFIG: &str = "config";
pub const KEYS: &str = "keys";
pub(crate) const DATA: &str = "data";
pub(crate) const INDEX: &str = "index";
pub const SNAPSHOTS: &str = "snapshots";
/// A vault folder's own pack spool (formats/ §2): on the vault's file system, so a finished
/// pack is published by hard link instead of being copied.
pub(crate) const SPOOL: &str = "tmp";

pub struct Vault {
    store: Arc<dyn Store>,
    config: VaultConfig,
    sealer: Sealer,
    chunk_id_key: [u8; 32],
    /// Key for tree blob ids, derived from the chunk-id key: data and tree blobs live in
    /// separate id spaces, so a file whose bytes equal a tree encoding cannot collide with it.
    tree_id_key: [u8; 32],
    chunker: Chunker,
    config_auth: ConfigAuth,
    /// Where packs fill while a backup or prune writes them; `None` keeps them in memory.
    spool_dir: Option<std::path::PathBuf>,
    /// Bytes the loaded index may take in memory before it goes to a working file in the
    /// spool folder (formats/ §7.4); `None`: no limit.
    index_budget: Option<u64>,
    /// A per-host cache of index files (formats/ §7.5); `None`: every load downloads them.
    index_cache: Option<crate::store::cache::IndexCache>,
}

pub fn pack_name(id: &Id) -> String {
    let h = id.to_hex();
    format!("{DATA}/{}/{h}", &h[..2])
}

impl Vault {
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }
    /// Whether `config` matched its MAC when the vault was opened.
    pub fn config_auth(&self) -> &ConfigAuth {
        &self.config_auth
    }

    /// A handle on the store for threads that outlive a borrow of the vault (the lock refresher).
    pub(crate) fn store_handle(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }
    pub fn config(&self) -> &VaultConfig {
        &self.config
    }
    pub fn chunker(&self) -> &Chunker {
        &self.chunker
    }
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }
    pub fn location(&self) -> &str {
        self.store.location()
    }

    /// The id of a blob of `kind`: BLAKE3 keyed with the chunk-id key (data) or the tree-id
    /// key (trees) over the plaintext.
    pub fn blob_id(&self, kind: BlobKind, data: &[u8]) -> Id {
        match kind {
            BlobKind::Data => Id::of_blob(&self.chunk_id_key, data),
            BlobKind::Tree => Id::of_blob(&self.tree_id_key, data),
        }
    }

    /// Compress (at the vault's level) and seal one blob.
    pub(crate) fn seal_blob(&self, data: &[u8]) -> Result<Vec<u8>> {
        self.sealer.seal(data, Some(self.config.compression_level))
    }

    /// Where packs fill on disk (a vault folder's `tmp/`; for a cloud vault whatever the
    /// caller chose, else none: in memory).
    pub fn spool_dir(&self) -> Option<&std::path::Path> {
        self.spool_dir.as_deref()
    }

    /// Spool packs under `dir` (`None`: in memory). A vault folder spools in its own `tmp/`
    /// unless told otherwise.
    pub fn set_spool_dir(&mut self, dir: Option<std::path::PathBuf>) {
        self.spool_dir = dir;
    }

    /// Keep a loaded index larger than `bytes` on disk, in the spool folder (`None`: always in
    /// memory). Without a spool folder it stays in memory.
    pub fn set_index_budget(&mut self, bytes: Option<u64>) {
        self.index_budget = bytes;
    }

    /// Cache index files under `root` (in a folder of this vault's id), so loading the index
    /// downloads only the ones not seen before; `None`: no cache.
    pub fn set_cache_dir(&mut self, root: Option<&std::path::Path>) {
        self.index_cache = root.map(|r| crate::store::cache::IndexCache::new(r, &self.config.id));
    }

    /// This vault's folder in the per-host cache (`<cache root>/<vault id>`), when it has one.
    pub(crate) fn cache_vault_dir(&self) -> Option<&std::path::Path> {
        self.index_cache.as_ref().and_then(|c| c.dir().parent())
    }

    /// Remove the spool files of the vault folder's own `tmp/` (only under an exclusive lock:
    /// a running backup's packs fill there). Returns how many went.
    pub(crate) fn clear_own_spool(&self) -> Result<usize> {
        let Some(dir) = self.store.local_root().map(|r| r.join(SPOOL)) else {
            return Ok(0);
        };
        crate::store::spool::remove_stale(&dir, std::time::Duration::ZERO)
    }

    /// A new, empty pack: spooled when the vault has a spool folder, so filling it costs no
    /// memory.
    pub(crate) fn pack_writer(&self, kind: BlobKind) -> Result<PackWriter> {
        match &self.spool_dir {
            Some(dir) => PackWriter::spooled(kind, dir),
            // Room for a full pack, the largest blob that can overflow it and its header:
            // growing by doubling copied it repeatedly and briefly held twice its size.
            None => Ok(PackWriter::with_capacity(
                kind,
                self.config.pack_size as usize + self.chunker.max_chunk() + (1 << 20),
            )),
        }
    }

    pub(crate) fn save_pack(&self, id: &Id, body: PackBody) -> Result<()> {
        let name = pack_name(id);
        match body {
            PackBody::Mem(bytes) => self.store.put(&name, Bytes::from(bytes))?,
            PackBody::Spooled { file, .. } => self.store.put_file(&name, file.path())?,
        };
        Ok(())
    }

    /// Fetch, authenticate, decompress and re-hash one blob.
    pub fn read_blob(&self, index: &Index, id: &Id, kind: BlobKind) -> Result<Vec<u8>> {
        let loc = index
            .get(id)
            .ok_or_else(|| Error::corrupt(format!("blob {id}"), "not in any index"))?;
        check_blob_kind(loc.kind, kind, id)?;
        let name = pack_name(&loc.pack);
        let start = loc.offset as u64;
        let sealed = self
            .store
            .get_range_exact(&name, start..start + loc.stored_len as u64)?;
        self.open_blob(&sealed, id, kind, loc.raw_len, &name)
    }

    /// Open a sealed blob already fetched, and check it is the blob `id` names.
    pub(crate) fn open_blob(
        &self,
        sealed: &[u8],
        id: &Id,
        kind: BlobKind,
        raw_len: u32,
        pack: &str,
    ) -> Result<Vec<u8>> {
        let what = format!("blob {} in {pack}", id.short());
        let data = self.sealer.open(sealed, Some(raw_len as usize), &what)?;
        if data.len() != raw_len as usize || self.blob_id(kind, &data) != *id {
            return Err(Error::corrupt(what, "content does not match its id"));
        }
        Ok(data)
    }

    pub(crate) fn load_tree(&self, index: &Index, id: &Id) -> Result<Tree> {
        Tree::decode(&self.read_blob(index, id, BlobKind::Tree)?)
    }
}
