//! Creating and opening a vault: key files, config, the password, S3 Object Lock at init.

use std::sync::Arc;

use bytes::Bytes;
use jiff::Timestamp;

use crate::error::{Error, Result};
use crate::format::chunker::{Chunker, ChunkerParams};
use crate::format::config::{
    ConfigAuth, DEFAULT_COMPRESSION_LEVEL, DEFAULT_PACK_SIZE, Encryption, FORMAT_VERSION,
    VaultConfig,
};
use crate::format::crypto::{KdfParams, KeyFile, MasterKey, Sealer, random_array};
use crate::format::id::Id;
use crate::store::Store;

use super::objects::object_name;
use super::{CONFIG, DATA, INDEX, KEYS, SNAPSHOTS, SPOOL, Vault};

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

/// Whether a key file's bytes hash to the id in its name (§2).
pub(super) fn key_file_intact(name: &str, bytes: &[u8]) -> bool {
    let id = name.rsplit('/').next().unwrap_or_default();
    Id::of_object(bytes).to_hex() == id
}

/// The key tree ids are hashed with, derived from the chunk-id key (formats/ §1).
pub fn tree_id_key(chunk_id_key: &[u8; 32]) -> [u8; 32] {
    *blake3::keyed_hash(chunk_id_key, b"sitevault tree id key").as_bytes()
}

/// The gear seed is derived from the chunk-id key so chunk sizes differ between vaults.
pub(super) fn gear_seed(chunk_id_key: &[u8; 32]) -> u64 {
    let h = blake3::keyed_hash(chunk_id_key, b"sitevault gear seed");
    u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// `init --immutable-days`: only an S3 bucket created with Object Lock can hold such a vault.
pub(super) fn enable_object_lock(
    store: &dyn Store,
    policy: crate::format::config::Immutable,
) -> Result<()> {
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
    pub(super) fn apply_retention(store: &dyn Store, config: &VaultConfig) {
        if let (Some(policy), Some(lock)) = (config.immutable, store.object_lock()) {
            lock.set_policy(policy);
        }
    }

    pub(super) fn from_parts(
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

    pub(super) fn unlock(store: &dyn Store, password: &[u8]) -> Result<MasterKey> {
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

    /// Key files that are damaged: bytes that do not hash to their name, or not a key file.
    /// (`check` reports them; one that opens still unlocks the vault.)
    pub(crate) fn damaged_key_files(&self) -> Result<Vec<(String, String)>> {
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
}
