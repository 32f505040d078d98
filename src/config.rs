//! The vault config object (`config`): plaintext JSON that marks a folder as a vault and
//! carries its format version and the parameters every writer must share.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::chunker::ChunkerParams;
use crate::error::{Error, Result};
use crate::id::Id;

/// The on-disk format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
pub const DEFAULT_PACK_SIZE: u32 = 32 * 1024 * 1024;
pub const DEFAULT_COMPRESSION_LEVEL: i32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encryption {
    /// XChaCha20-Poly1305, master key wrapped by Argon2id key files.
    Xchacha20poly1305,
    /// Plaintext; blobs carry a BLAKE3 checksum instead of a tag.
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VaultConfig {
    /// Format version; readers refuse versions above [`FORMAT_VERSION`].
    pub sitevault_format: u32,
    /// Random vault id.
    pub id: Id,
    pub created: Timestamp,
    pub encryption: Encryption,
    /// Hex chunk-id key, present only in unencrypted vaults (encrypted ones keep it in key files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_id_key: Option<String>,
    pub chunker: ChunkerParams,
    pub compression_level: i32,
    pub pack_size: u32,
}

impl VaultConfig {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("config serialises");
        v.push(b'\n');
        v
    }

    /// Parse, checking the version before the rest so a newer vault gets an upgrade message
    /// rather than a parse error.
    pub fn decode(bytes: &[u8], location: &str) -> Result<VaultConfig> {
        let v: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt("vault config", e.to_string()))?;
        let found = v
            .get("sitevault_format")
            .and_then(|f| f.as_u64())
            .ok_or_else(|| Error::NotAVault {
                location: location.to_string(),
            })?;
        if found == 0 {
            return Err(Error::corrupt(
                "vault config",
                "sitevault_format 0 is not a valid version",
            ));
        }
        if found > FORMAT_VERSION as u64 {
            return Err(Error::UnsupportedVersion {
                location: location.to_string(),
                found: found.min(u32::MAX as u64) as u32,
                supported: FORMAT_VERSION,
            });
        }
        let c: VaultConfig =
            serde_json::from_value(v).map_err(|e| Error::corrupt("vault config", e.to_string()))?;
        c.chunker.validate()?;
        validate_limits(c.compression_level, c.pack_size)
            .map_err(|e| Error::corrupt("vault config", e.to_string()))?;
        Ok(c)
    }
}

/// The ranges `init` accepts and readers require.
pub fn validate_limits(compression_level: i32, pack_size: u32) -> Result<()> {
    if !(1..=22).contains(&compression_level) {
        return Err(Error::InvalidInput(format!(
            "compression level {compression_level} is outside 1..=22"
        )));
    }
    if !(64 * 1024..=1 << 30).contains(&pack_size) {
        return Err(Error::InvalidInput(format!(
            "pack size {pack_size} is outside 64 KiB..1 GiB"
        )));
    }
    Ok(())
}
