//! The vault config object (`config`): plaintext JSON that marks a folder as a vault and
//! carries its format version and the parameters every writer must share.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::chunker::ChunkerParams;
use crate::format::id::Id;

/// The on-disk format version this build reads and writes.
pub(crate) const FORMAT_VERSION: u32 = 1;
pub(crate) const DEFAULT_PACK_SIZE: u32 = 32 * 1024 * 1024;
pub(crate) const DEFAULT_COMPRESSION_LEVEL: i32 = 3;

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
    /// S3 Object Lock: every object written gets a retention of at least `days` (§3.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<Immutable>,
    /// Keyed BLAKE3 of the config's own bytes (§3.1): makes any change to `config` evident.
    /// Absent in vaults written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_mac: Option<String>,
}

/// How an immutable vault's objects are retained (S3 Object Lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Immutable {
    /// Every object a kept snapshot needs stays retained until at least now + `days`.
    pub days: u32,
    pub mode: LockMode,
}

/// S3 Object Lock retention modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    /// Users with `s3:BypassGovernanceRetention` can still delete or shorten.
    #[default]
    Governance,
    /// Nobody, the account root included, can delete a version before its date.
    Compliance,
}

impl std::str::FromStr for LockMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<LockMode> {
        match s.to_ascii_lowercase().as_str() {
            "governance" => Ok(LockMode::Governance),
            "compliance" => Ok(LockMode::Compliance),
            _ => Err(Error::InvalidInput(format!(
                "immutable mode {s:?}: give governance or compliance"
            ))),
        }
    }
}

/// The longest retention `init --immutable-days` accepts (S3 allows up to 100 years; a typo
/// in COMPLIANCE mode would pin storage costs for that long).
pub(crate) const MAX_IMMUTABLE_DAYS: u32 = 3_650;

/// What verifying `config` against its `config_mac` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigAuth {
    Verified,
    /// Written before configs carried a MAC: damage to it cannot be detected.
    Missing,
    /// The bytes do not match the MAC: damaged or altered. Reading is unaffected (no config
    /// field changes how stored objects are read), but the parameters may not be the real ones.
    Failed(String),
}

/// 64 ASCII zeros stand in for the MAC while it is computed.
const MAC_PLACEHOLDER: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The key of `config_mac`, derived from the chunk-id key: secret in an encrypted vault (so the
/// MAC is a MAC), stored in `config` in a plaintext one (so it is a checksum).
pub fn config_mac_key(chunk_id_key: &[u8; 32]) -> [u8; 32] {
    *blake3::keyed_hash(chunk_id_key, b"sitevault config mac key").as_bytes()
}

/// The fields a config written before `config_mac` existed can hold.
const PRE_MAC_FIELDS: [&str; 8] = [
    "sitevault_format",
    "id",
    "created",
    "encryption",
    "chunk_id_key",
    "chunker",
    "compression_level",
    "pack_size",
];

/// The first top-level field of `bytes` (a config's JSON object) that is not in
/// [`PRE_MAC_FIELDS`].
fn unknown_pre_mac_field(bytes: &[u8]) -> Option<String> {
    let v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes).ok()?;
    v.keys()
        .find(|k| !PRE_MAC_FIELDS.contains(&k.as_str()))
        .cloned()
}

/// Where the 64 hex digits of the one quoted occurrence of `mac` start in `bytes`, or `None`
/// when it does not occur exactly once.
fn mac_position(bytes: &[u8], mac: &str) -> Option<usize> {
    let quoted = format!("\"{mac}\"");
    let q = quoted.as_bytes();
    let mut at = bytes.windows(q.len()).enumerate().filter(|(_, w)| *w == q);
    let (i, _) = at.next()?;
    at.next().is_none().then_some(i + 1)
}

impl VaultConfig {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("config serialises");
        v.push(b'\n');
        v
    }

    /// The stored form written by `init`: `encode` with `config_mac` set over these very bytes
    /// (with the MAC's own digits read as 64 zeros).
    pub fn encode_authenticated(&self, chunk_id_key: &[u8; 32]) -> Result<Vec<u8>> {
        let mut c = self.clone();
        c.config_mac = Some(MAC_PLACEHOLDER.into());
        let mut out = c.encode();
        // Readers must find the MAC again: no other field may hold the same 64 digits.
        let i = mac_position(&out, MAC_PLACEHOLDER)
            .ok_or_else(|| Error::InvalidInput("a config field holds 64 zeros".into()))?;
        let mac = blake3::keyed_hash(&config_mac_key(chunk_id_key), &out);
        out[i..i + 64].copy_from_slice(hex::encode(mac.as_bytes()).as_bytes());
        Ok(out)
    }

    /// Check `bytes` (the stored config this value was decoded from) against its MAC.
    pub fn verify(&self, bytes: &[u8], chunk_id_key: &[u8; 32]) -> ConfigAuth {
        let fail = |why: &str| ConfigAuth::Failed(why.to_string());
        let Some(mac) = &self.config_mac else {
            // Every writer since config_mac existed writes it, and no field came after it: an
            // unknown field here is most likely the `config_mac` name itself, damaged.
            return match unknown_pre_mac_field(bytes) {
                Some(f) => ConfigAuth::Failed(format!(
                    "it has no config_mac but an unknown field {f:?} (a damaged config_mac?)"
                )),
                None => ConfigAuth::Missing,
            };
        };
        // Lower-case only, as written: a digit whose case changed must not still verify.
        let lower_hex =
            mac.len() == 64 && mac.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let Some(want) = lower_hex
            .then(|| hex::decode(mac).ok())
            .flatten()
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
        else {
            return fail("its config_mac is not 64 lower-case hex digits");
        };
        let Some(i) = mac_position(bytes, mac) else {
            return fail("its config_mac does not appear exactly once as written");
        };
        let mut draft = bytes.to_vec();
        draft[i..i + 64].copy_from_slice(MAC_PLACEHOLDER.as_bytes());
        let got = blake3::keyed_hash(&config_mac_key(chunk_id_key), &draft);
        // blake3::Hash compares in constant time.
        if got == blake3::Hash::from(want) {
            ConfigAuth::Verified
        } else {
            fail(
                "its bytes do not match its config_mac (damaged, or altered by someone without the key)",
            )
        }
    }

    /// Parse, checking the version before the rest so a newer vault gets an upgrade message
    /// rather than a parse error.
    pub fn decode(bytes: &[u8], location: &str) -> Result<VaultConfig> {
        let v: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt("vault config", e.to_string()))?;
        let found = v
            .get("sitevault_format")
            .and_then(|f| f.as_u64())
            .ok_or_else(|| {
                Error::corrupt(
                    "vault config",
                    "sitevault_format is missing or not a non-negative integer (damaged, or not a sitevault config)",
                )
            })?;
        if found == 0 {
            return Err(Error::corrupt(
                "vault config",
                "sitevault_format 0 is not a valid version",
            ));
        }
        if found > FORMAT_VERSION as u64 {
            return Err(Error::UnsupportedVersion {
                location: format!("{location} (config)"),
                found: found.min(u32::MAX as u64) as u32,
                supported: FORMAT_VERSION,
            });
        }
        let c: VaultConfig =
            serde_json::from_value(v).map_err(|e| Error::corrupt("vault config", e.to_string()))?;
        // A reader's config that fails these checks is damaged (or not ours): say so, naming it.
        c.chunker
            .validate()
            .map_err(|e| Error::corrupt("vault config", e.to_string()))?;
        validate_limits(c.compression_level, c.pack_size)
            .map_err(|e| Error::corrupt("vault config", e.to_string()))?;
        Ok(c)
    }
}

/// The ranges `init` accepts and readers require.
pub(crate) fn validate_limits(compression_level: i32, pack_size: u32) -> Result<()> {
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
