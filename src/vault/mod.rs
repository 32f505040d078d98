//! An open vault: config, keys, and typed reads and writes of its objects over a [`Store`].

pub mod index;
pub mod lock;
pub(crate) mod pack_writer;
pub(crate) mod packer;
pub(crate) mod used;
pub mod walk;

pub use pack_writer::{PackBody, PackWriter};

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use jiff::Timestamp;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::format::chunker::{Chunker, ChunkerParams};
use crate::format::config::{
    ConfigAuth, DEFAULT_COMPRESSION_LEVEL, DEFAULT_PACK_SIZE, Encryption, FORMAT_VERSION,
    VaultConfig,
};
use crate::format::crypto::{KdfParams, KeyFile, MasterKey, Sealer, random_array};
use crate::format::id::Id;
use crate::format::index::{IndexFile, IndexPack};
use crate::format::pack::{self, BlobKind};
use crate::format::snapshot::Snapshot;
use crate::format::tree::Tree;
use crate::store::Store;
use crate::vault::index::{Index, check_blob_kind};

pub const CONFIG: &str = "config";
pub const KEYS: &str = "keys";
pub const DATA: &str = "data";
pub const INDEX: &str = "index";
pub const SNAPSHOTS: &str = "snapshots";
/// A vault folder's own pack spool (formats/ §2): on the vault's file system, so a finished
/// pack is published by hard link instead of being copied.
pub const SPOOL: &str = "tmp";

/// Choices made once, at `init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// `None` makes a plaintext vault.
    pub password: Option<Vec<u8>>,
    pub kdf: KdfParams,
    pub pack_size: u32,
    pub compression_level: i32,
    pub chunker: ChunkerParams,
    pub host: String,
    /// S3 Object Lock retention for every object (`init --immutable-days`).
    pub immutable: Option<crate::format::config::Immutable>,
}

impl InitOptions {
    /// Check every choice before anything is created.
    pub fn validate(&self) -> Result<()> {
        self.chunker.validate()?;
        crate::format::config::validate_limits(self.compression_level, self.pack_size)
    }
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            password: None,
            kdf: KdfParams::default(),
            pack_size: DEFAULT_PACK_SIZE,
            compression_level: DEFAULT_COMPRESSION_LEVEL,
            chunker: ChunkerParams::default(),
            host: String::new(),
            immutable: None,
        }
    }
}

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

fn object_name(prefix: &str, id: &Id) -> String {
    format!("{prefix}/{}", id.to_hex())
}

/// Whether a key file's bytes hash to the id in its name (§2).
fn key_file_intact(name: &str, bytes: &[u8]) -> bool {
    let id = name.rsplit('/').next().unwrap_or_default();
    Id::of_object(bytes).to_hex() == id
}

/// The gear seed is derived from the chunk-id key so chunk sizes differ between vaults.
pub fn tree_id_key(chunk_id_key: &[u8; 32]) -> [u8; 32] {
    *blake3::keyed_hash(chunk_id_key, b"sitevault tree id key").as_bytes()
}

fn gear_seed(chunk_id_key: &[u8; 32]) -> u64 {
    let h = blake3::keyed_hash(chunk_id_key, b"sitevault gear seed");
    u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"))
}

impl Vault {
    /// Create a vault. Key files are written before `config`, so a vault without `config`
    /// is never mistaken for a usable one.
    pub fn init(store: Arc<dyn Store>, opts: InitOptions) -> Result<Vault> {
        let location = store.location().to_string();
        if store.get(CONFIG)?.is_some() {
            return Err(Error::AlreadyExists { location });
        }
        // Key files or vault objects without a config are left by an interrupted init or a
        // vault that lost its config; a new key file beside them could unlock the wrong master
        // key, and new objects would mix with old ones, so refuse rather than guess.
        for prefix in [KEYS, DATA, INDEX, SNAPSHOTS] {
            if !store.list(prefix)?.is_empty() {
                return Err(Error::InvalidInput(format!(
                    "{location} has a {prefix} folder with objects but no config (an interrupted init, or a damaged vault); use an empty folder"
                )));
            }
        }
        opts.validate()?;
        if let Some(policy) = opts.immutable {
            enable_object_lock(&*store, policy)?;
        }
        let master = MasterKey::generate()?;
        let now = Timestamp::now();
        let mut own_key = None;
        let encryption = match &opts.password {
            Some(pw) => {
                let kf =
                    KeyFile::create(&master, pw, opts.kdf, now.to_string(), opts.host.clone())?;
                let bytes = serde_json::to_vec_pretty(&kf).expect("key file serialises");
                let name = object_name(KEYS, &Id::of_object(&bytes));
                store.put(&name, Bytes::from(bytes))?;
                own_key = Some(name);
                Encryption::Xchacha20poly1305
            }
            None => Encryption::None,
        };
        let config = VaultConfig {
            sitevault_format: FORMAT_VERSION,
            id: Id(random_array()?),
            created: now,
            encryption,
            chunk_id_key: (encryption == Encryption::None).then(|| hex::encode(master.chunk_id)),
            chunker: opts.chunker,
            compression_level: opts.compression_level,
            pack_size: opts.pack_size,
            immutable: opts.immutable,
            config_mac: None,
        };
        let stored = config.encode_authenticated(&master.chunk_id)?;
        let config = VaultConfig::decode(&stored, &location)?;
        if !store.put(CONFIG, Bytes::from(stored))? {
            // Another init won the race: our key file wraps a master key nobody uses.
            if let Some(name) = own_key {
                store.delete(&name)?;
            }
            return Err(Error::AlreadyExists { location });
        }
        Self::from_parts(store, config, master, ConfigAuth::Verified)
    }

    /// Hold every object written from now on to the config's retention, when the store can.
    fn apply_retention(store: &dyn Store, config: &VaultConfig) {
        if let (Some(policy), Some(lock)) = (config.immutable, store.object_lock()) {
            lock.set_policy(policy);
        }
    }

    fn from_parts(
        store: Arc<dyn Store>,
        config: VaultConfig,
        master: MasterKey,
        config_auth: ConfigAuth,
    ) -> Result<Vault> {
        let sealer = match config.encryption {
            Encryption::Xchacha20poly1305 => Sealer::encrypted(&master.encryption),
            Encryption::None => Sealer::Plain,
        };
        let chunker = Chunker::new(config.chunker.clone(), gear_seed(&master.chunk_id))?;
        Self::apply_retention(&*store, &config);
        Ok(Vault {
            spool_dir: store.local_root().map(|r| r.join(SPOOL)),
            index_budget: None,
            index_cache: None,
            store,
            config,
            sealer,
            chunk_id_key: master.chunk_id,
            tree_id_key: tree_id_key(&master.chunk_id),
            chunker,
            config_auth,
        })
    }

    /// Open an existing vault; `password` is needed when it is encrypted.
    pub fn open(store: Arc<dyn Store>, password: Option<&[u8]>) -> Result<Vault> {
        let location = store.location().to_string();
        let bytes = store.get(CONFIG)?.ok_or_else(|| Error::NotAVault {
            location: location.clone(),
        })?;
        let config = VaultConfig::decode(&bytes, &location)?;
        let master = match config.encryption {
            Encryption::None => {
                // The config is plaintext: key files beside an "unencrypted" config mean it
                // was altered to downgrade the vault.
                if !store.list(KEYS)?.is_empty() {
                    return Err(Error::corrupt(
                        "vault config",
                        "it says the vault is unencrypted but key files exist; the config may have been tampered with",
                    ));
                }
                let key = config
                    .chunk_id_key
                    .as_deref()
                    .and_then(|h| hex::decode(h).ok())
                    .and_then(|v| <[u8; 32]>::try_from(v).ok())
                    .ok_or_else(|| {
                        Error::corrupt(
                            "vault config",
                            "plaintext vault without a 32-byte chunk_id_key",
                        )
                    })?;
                MasterKey {
                    encryption: [0; 32],
                    chunk_id: key,
                }
            }
            Encryption::Xchacha20poly1305 => {
                let pw = password.ok_or_else(|| Error::PasswordRequired {
                    location: location.clone(),
                })?;
                Self::unlock(&*store, pw)?
            }
        };
        let auth = config.verify(&bytes, &master.chunk_id);
        Self::from_parts(store, config, master, auth)
    }

    fn unlock(store: &dyn Store, password: &[u8]) -> Result<MasterKey> {
        let keys = store.list(KEYS)?;
        if keys.is_empty() {
            return Err(Error::corrupt(
                format!("vault {}", store.location()),
                format!(
                    "it is encrypted but {KEYS}/ lists no key file; if the storage lists it late, run the command again, otherwise restore {KEYS}/ from a copy of the vault"
                ),
            ));
        }
        let mut skipped = Vec::new();
        for k in &keys {
            let Some(bytes) = store.get(&k.name)? else {
                continue;
            };
            // A key file whose bytes no longer hash to its name is still tried (its master key
            // is authenticated on its own), but named if nothing opens.
            if !key_file_intact(&k.name, &bytes) {
                skipped.push(format!(
                    "{} is damaged (its bytes do not hash to its name)",
                    k.name
                ));
            }
            // One damaged or newer key file must not lock out the others.
            let Ok(kf) = serde_json::from_slice::<KeyFile>(&bytes) else {
                skipped.push(format!("{} is not a valid key file", k.name));
                continue;
            };
            if kf.version > 1 {
                skipped.push(format!(
                    "{} has newer version {}; upgrade sitevault",
                    k.name, kf.version
                ));
                continue;
            }
            match kf.open(password) {
                Ok(Some(m)) => return Ok(m),
                Ok(None) => {}
                Err(e) => skipped.push(format!("{}: {e}", k.name)),
            }
        }
        if !skipped.is_empty() {
            return Err(Error::corrupt(
                format!("keys of vault {}", store.location()),
                format!(
                    "the password opened no key file, and some are damaged or could not be tried: {}",
                    skipped.join("; ")
                ),
            ));
        }
        Err(Error::WrongPassword {
            location: store.location().to_string(),
        })
    }

    pub fn store(&self) -> &dyn Store {
        &*self.store
    }
    /// Whether `config` matched its MAC when the vault was opened.
    pub fn config_auth(&self) -> &ConfigAuth {
        &self.config_auth
    }

    /// Key files that are damaged: bytes that do not hash to their name, or not a key file.
    /// (`check` reports them; one that opens still unlocks the vault.)
    pub fn damaged_key_files(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for k in self.store.list(KEYS)? {
            let Some(bytes) = self.store.get(&k.name)? else {
                continue;
            };
            if !key_file_intact(&k.name, &bytes) {
                out.push((
                    k.name.clone(),
                    "its bytes do not hash to its name: it is damaged; if it is the only key file for a password, that password may stop working".into(),
                ));
            } else if let Err(e) = KeyFile::decode(&bytes) {
                out.push((k.name.clone(), format!("it is not a valid key file: {e}")));
            }
        }
        Ok(out)
    }
    /// A handle on the store for threads that outlive a borrow of the vault (the lock refresher).
    pub fn store_handle(&self) -> Arc<dyn Store> {
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
    pub fn seal_blob(&self, data: &[u8]) -> Result<Vec<u8>> {
        self.sealer.seal(data, Some(self.config.compression_level))
    }

    /// Seal and store a standalone object under `prefix/<id>`, id = BLAKE3 of the stored bytes.
    pub fn save_object(&self, prefix: &str, plaintext: &[u8]) -> Result<Id> {
        let sealed = self
            .sealer
            .seal(plaintext, Some(self.config.compression_level))?;
        let id = Id::of_object(&sealed);
        self.store
            .put(&object_name(prefix, &id), Bytes::from(sealed))?;
        Ok(id)
    }

    /// Load a standalone object, checking that its bytes still hash to its name.
    pub fn load_object(&self, prefix: &str, id: &Id) -> Result<Vec<u8>> {
        let name = object_name(prefix, id);
        let bytes = self
            .fetch_verified(&name, id)?
            .ok_or_else(|| Error::corrupt(&name, "object is missing"))?;
        self.sealer.open(&bytes, None, &name)
    }

    /// The stored bytes of object `name`, checked against its id; `None` when missing.
    fn fetch_verified(&self, name: &str, id: &Id) -> Result<Option<Bytes>> {
        let Some(bytes) = self.store.get(name)? else {
            return Ok(None);
        };
        if Id::of_object(&bytes) != *id {
            return Err(Error::corrupt(
                name,
                "content does not match its name (hash mismatch)",
            ));
        }
        Ok(Some(bytes))
    }

    /// An index file for [`Vault::load_index`]: from the per-host cache when it holds it
    /// intact, else from the store (and then cached).
    fn load_index_file(&self, id: &Id) -> Result<IndexFile> {
        let name = object_name(INDEX, id);
        let cached = self.index_cache.as_ref().and_then(|c| c.get(id));
        let bytes = match cached {
            Some(b) => Bytes::from(b),
            None => {
                let b = self
                    .fetch_verified(&name, id)?
                    .ok_or_else(|| Error::corrupt(&name, "object is missing"))?;
                if let Some(c) = &self.index_cache {
                    c.put(id, &b);
                }
                b
            }
        };
        IndexFile::decode(&self.sealer.open(&bytes, None, &name)?)
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
    pub fn cache_vault_dir(&self) -> Option<&std::path::Path> {
        self.index_cache.as_ref().and_then(|c| c.dir().parent())
    }

    /// Remove the spool files of the vault folder's own `tmp/` (only under an exclusive lock:
    /// a running backup's packs fill there). Returns how many went.
    pub fn clear_own_spool(&self) -> Result<usize> {
        let Some(dir) = self.store.local_root().map(|r| r.join(SPOOL)) else {
            return Ok(0);
        };
        crate::store::spool::remove_stale(&dir, std::time::Duration::ZERO)
    }

    /// A new, empty pack: spooled when the vault has a spool folder, so filling it costs no
    /// memory.
    pub fn pack_writer(&self, kind: BlobKind) -> Result<PackWriter> {
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

    pub fn save_pack(&self, id: &Id, body: PackBody) -> Result<()> {
        let name = pack_name(id);
        match body {
            PackBody::Mem(bytes) => self.store.put(&name, Bytes::from(bytes))?,
            PackBody::Spooled { file, .. } => self.store.put_file(&name, file.path())?,
        };
        Ok(())
    }

    pub fn save_index(&self, file: &IndexFile) -> Result<Id> {
        self.save_object(INDEX, &file.encode())
    }

    /// Read every index file into one index: in memory, or on disk when the vault has an
    /// index budget the index would exceed. Files are fetched a batch at a time (in parallel)
    /// and added in reader order (§7.2), so only one batch is held decoded.
    pub fn load_index(&self) -> Result<Index> {
        const BATCH: usize = 32;
        let mut ids = self.list_ids(INDEX)?;
        ids.sort();
        if let Some(c) = &self.index_cache {
            c.retain(&ids.iter().map(|(id, _)| *id).collect());
        }
        // Index files store about 33 bytes per blob (formats/ §7.3); under-estimating only
        // makes the disk partitions larger.
        // (Sizes come from a listing: saturate rather than trust them.)
        let expected = ids
            .iter()
            .fold(0u64, |sum, (_, size)| sum.saturating_add(*size))
            / 30;
        let mut builder = self.index_builder(expected)?;
        for batch in ids.chunks(BATCH) {
            let files: Vec<(Id, IndexFile)> = batch
                .par_iter()
                .map(|(id, _)| Ok((*id, self.load_index_file(id)?)))
                .collect::<Result<_>>()?;
            for (id, f) in files {
                builder.add_file(id, &f)?;
            }
        }
        builder.finish()
    }

    /// A builder for an index of about `expected` blobs: on disk in the spool folder when it
    /// would pass the vault's index budget.
    pub fn index_builder(&self, expected: u64) -> Result<crate::vault::index::build::IndexBuilder> {
        crate::vault::index::build::IndexBuilder::new(
            self.spool_dir.as_deref(),
            self.index_budget,
            expected,
        )
    }

    /// Read every index file, the unreadable ones apart, without stopping at the first damage
    /// (prune and check must see the whole picture). Files are in ascending id order.
    pub fn scan_index(&self) -> Result<IndexScan> {
        let mut ids = self.list_ids(INDEX)?;
        ids.sort();
        let loaded: Vec<(Id, Result<IndexFile>)> = ids
            .par_iter()
            .map(|(id, _)| (*id, self.read_index_file(id)))
            .collect();
        let mut scan = IndexScan::default();
        for (id, r) in loaded {
            scan.all.push(id);
            match r {
                Ok(f) => scan.readable.push((id, f)),
                Err(e) => scan.unreadable.push((id, e)),
            }
        }
        scan.superseded = scan
            .readable
            .iter()
            .flat_map(|(_, f)| f.supersedes.iter().copied())
            .collect();
        Ok(scan)
    }

    /// One index file from the vault itself (not the cache), checked and decoded; one that
    /// vanished since it was listed is reported as damaged.
    pub fn read_index_file(&self, id: &Id) -> Result<IndexFile> {
        let name = || format!("{INDEX}/{}", id.to_hex());
        match self.load_object_if_present(INDEX, id)? {
            Some(b) => IndexFile::decode(&b).map_err(|e| Error::corrupt(name(), e.to_string())),
            None => Err(Error::corrupt(name(), "vanished")),
        }
    }

    /// Like [`Vault::load_object`], but `Ok(None)` when the object does not exist.
    pub fn load_object_if_present(&self, prefix: &str, id: &Id) -> Result<Option<Vec<u8>>> {
        let name = object_name(prefix, id);
        match self.fetch_verified(&name, id)? {
            None => Ok(None),
            Some(bytes) => self.sealer.open(&bytes, None, &name).map(Some),
        }
    }

    /// Read a pack's own header (from its tail): used to index packs a killed backup left behind.
    pub fn read_pack_header(&self, id: &Id, size: u64) -> Result<IndexPack> {
        let name = pack_name(id);
        let tail_len = size.min(64 * 1024);
        let mut tail = self.store.get_range_exact(&name, size - tail_len..size)?;
        let hlen = pack::header_len_from_tail(&tail)? as u64;
        if hlen + 4 > tail_len {
            if hlen + 4 + pack::PACK_PREAMBLE_LEN as u64 > size {
                return Err(Error::corrupt(&name, "header length exceeds the pack"));
            }
            tail = self.store.get_range_exact(&name, size - hlen - 4..size)?;
        }
        let pre = self
            .store
            .get_range_exact(&name, 0..pack::PACK_PREAMBLE_LEN as u64)?;
        let kind = pack::parse_preamble(&pre)?;
        let blobs = pack::parse_header(&self.sealer, &tail, size)?;
        Ok(IndexPack {
            id: *id,
            kind,
            blobs,
        })
    }

    /// Read the headers of `packs` (id, stored size) in parallel, a batch at a time, and hand
    /// each result to `f` in order: only one batch of headers is held at once.
    pub fn each_pack_header(
        &self,
        packs: &[(Id, u64)],
        f: &mut dyn FnMut(Id, Result<IndexPack>) -> Result<()>,
    ) -> Result<()> {
        const BATCH: usize = 256;
        for batch in packs.chunks(BATCH) {
            let headers: Vec<(Id, Result<IndexPack>)> = batch
                .par_iter()
                .map(|(id, size)| (*id, self.read_pack_header(id, *size)))
                .collect();
            for (id, h) in headers {
                f(id, h)?;
            }
        }
        Ok(())
    }

    /// Index packs that exist in storage but in no index file (left by an interrupted backup),
    /// so their blobs are reused instead of uploaded again. Returns how many were adopted.
    pub fn adopt_unindexed_packs(&self, index: &mut Index) -> Result<usize> {
        // The known packs by the first 8 bytes of their id, sorted (8 bytes a pack, 12 MB for
        // the 1.5 M packs of 100 TB), against a listing streamed one name at a time. Two ids
        // sharing 8 bytes would only make an orphan look known: it is then not reused.
        let head = |id: &Id| u64::from_le_bytes(id.0[..8].try_into().unwrap_or_default());
        let mut known: Vec<u64> = Vec::new();
        index.for_each_pack(&mut |id| known.push(head(id)))?;
        known.sort_unstable();
        let mut orphans = Vec::new();
        self.store.list_each(DATA, &mut |o| {
            if let Some(id) = id_from_name(&o.name)
                && known.binary_search(&head(&id)).is_err()
            {
                orphans.push((id, o.size));
            }
            Ok(())
        })?;
        if orphans.is_empty() {
            return Ok(0);
        }
        // A pack whose header cannot be read (damaged, or still being written by another
        // process) is skipped: it is not reused, and nothing refers to it yet.
        let mut packs: Vec<IndexPack> = Vec::new();
        self.each_pack_header(&orphans, &mut |_, h| {
            packs.extend(h.ok());
            Ok(())
        })?;
        for p in &packs {
            index.add_pack(p.id, p.kind, &p.blobs);
        }
        index.finish();
        let n = packs.len();
        if n > 0 {
            self.save_index(&IndexFile {
                supersedes: vec![],
                packs,
            })?;
        }
        Ok(n)
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
    pub fn open_blob(
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

    pub fn load_tree(&self, index: &Index, id: &Id) -> Result<Tree> {
        Tree::decode(&self.read_blob(index, id, BlobKind::Tree)?)
    }

    pub fn save_snapshot(&self, s: &Snapshot) -> Result<Id> {
        let json = serde_json::to_vec(s).expect("snapshot serialises");
        self.save_object(SNAPSHOTS, &json)
    }

    pub fn load_snapshot(&self, id: &Id) -> Result<Snapshot> {
        let bytes = self.load_object(SNAPSHOTS, id)?;
        self.parse_snapshot(id, &bytes)
    }

    /// Like [`Vault::load_snapshot`], but `Ok(None)` when it was forgotten meanwhile.
    pub fn load_snapshot_if_present(&self, id: &Id) -> Result<Option<Snapshot>> {
        self.load_object_if_present(SNAPSHOTS, id)?
            .map(|b| self.parse_snapshot(id, &b))
            .transpose()
    }

    fn parse_snapshot(&self, id: &Id, bytes: &[u8]) -> Result<Snapshot> {
        Snapshot::decode(bytes, id, self.location())
    }

    /// Ids and sizes of the objects under `prefix`.
    pub fn list_ids(&self, prefix: &str) -> Result<Vec<(Id, u64)>> {
        Ok(self
            .store
            .list(prefix)?
            .into_iter()
            .filter_map(|o| Some((id_from_name(&o.name)?, o.size)))
            .collect())
    }

    /// The union of `times` listings of `prefix`, sorted: what deletes must not trust one
    /// listing for (a store that lists an object late, formats/ §12.6).
    pub fn list_ids_union(&self, prefix: &str, times: usize) -> Result<Vec<(Id, u64)>> {
        let mut all = Vec::new();
        for _ in 0..times.max(1) {
            all.extend(self.list_ids(prefix)?);
        }
        all.sort_unstable();
        all.dedup_by_key(|(id, _)| *id);
        Ok(all)
    }

    /// All snapshots, oldest first; fails if any cannot be read.
    pub fn list_snapshots(&self) -> Result<Vec<(Id, Snapshot)>> {
        let all = self.scan_snapshots()?;
        match all.unreadable.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(all.readable),
        }
    }

    /// Every snapshot, the readable ones (oldest first) apart from the unreadable ones, so one
    /// damaged or newer snapshot does not hide the others.
    pub fn scan_snapshots(&self) -> Result<SnapshotScan> {
        self.scan_snapshots_listed(1)
    }

    /// [`Vault::scan_snapshots`] over the union of `listings` listings of `snapshots/`.
    pub fn scan_snapshots_listed(&self, listings: usize) -> Result<SnapshotScan> {
        // A snapshot that vanishes between listing and reading was forgotten meanwhile.
        let loaded: Vec<(Id, Result<Option<Snapshot>>)> = self
            .list_ids_union(SNAPSHOTS, listings)?
            .par_iter()
            .map(|(id, _)| (*id, self.load_snapshot_if_present(id)))
            .collect();
        let mut scan = SnapshotScan::default();
        for (id, r) in loaded {
            match r {
                Ok(Some(s)) => scan.readable.push((id, s)),
                Ok(None) => {}
                Err(e) => scan.unreadable.push((id, e)),
            }
        }
        scan.readable
            .sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        scan.unreadable.sort_by_key(|(id, _)| *id);
        Ok(scan)
    }
}

/// The outcome of reading every index file.
#[derive(Debug, Default)]
pub struct IndexScan {
    /// Every index file listed, ascending.
    pub all: Vec<Id>,
    pub readable: Vec<(Id, IndexFile)>,
    pub unreadable: Vec<(Id, Error)>,
    /// Ids named in the `supersedes` lists of readable files: readers ignore those files.
    pub superseded: HashSet<Id>,
}

impl IndexScan {
    /// The packs the readable, non-superseded files list; a pack listed twice is taken from
    /// the first file (ascending id), as readers do.
    pub fn packs(&self) -> Vec<IndexPack> {
        self.clone_readable().into_packs()
    }

    /// [`IndexScan::packs`], taking them out of the scan instead of copying them (the index
    /// is large: one copy of it is enough).
    pub fn into_packs(self) -> Vec<IndexPack> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (id, f) in self.readable {
            if self.superseded.contains(&id) {
                continue;
            }
            out.extend(f.packs.into_iter().filter(|p| seen.insert(p.id)));
        }
        out
    }

    /// The readable files readers use (superseded ones left out), copied.
    fn clone_readable(&self) -> IndexScan {
        IndexScan {
            readable: self
                .readable
                .iter()
                .filter(|(id, _)| !self.superseded.contains(id))
                .cloned()
                .collect(),
            ..IndexScan::default()
        }
    }
}

/// The outcome of reading every snapshot.
#[derive(Debug, Default)]
pub struct SnapshotScan {
    pub readable: Vec<(Id, Snapshot)>,
    pub unreadable: Vec<(Id, Error)>,
}

/// `init --immutable-days`: only an S3 bucket created with Object Lock can hold such a vault.
fn enable_object_lock(store: &dyn Store, policy: crate::format::config::Immutable) -> Result<()> {
    let location = store.location();
    if !(1..=crate::format::config::MAX_IMMUTABLE_DAYS).contains(&policy.days) {
        return Err(Error::InvalidInput(format!(
            "--immutable-days {}: give 1 to {} days",
            policy.days,
            crate::format::config::MAX_IMMUTABLE_DAYS
        )));
    }
    let Some(lock) = store.object_lock() else {
        return Err(Error::InvalidInput(format!(
            "{location}: --immutable-days needs an s3:// vault in a bucket with S3 Object Lock; folders and Azure containers cannot enforce it (see the README for Azure immutability)"
        )));
    };
    if lock.state()? != crate::store::s3lock::LockState::Enabled {
        return Err(Error::InvalidInput(format!(
            "{location}: the bucket does not have S3 Object Lock enabled, so --immutable-days cannot be enforced; create the bucket with Object Lock (which turns on versioning), or leave out --immutable-days"
        )));
    }
    lock.set_policy(policy);
    Ok(())
}

/// The id at the end of an object name like `index/<hex>` or `data/ab/<hex>`; `None` for
/// anything else (stray files are not objects and are ignored).
fn id_from_name(name: &str) -> Option<Id> {
    let last = name.rsplit('/').next().unwrap_or(name);
    let lower_hex = last.len() == 64
        && last
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if lower_hex {
        Id::from_hex(last).ok()
    } else {
        None
    }
}
