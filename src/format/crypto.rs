//! Blob sealing (zstd compression, then XChaCha20-Poly1305 or a BLAKE3 checksum) and the
//! master key, wrapped in password-protected key files with Argon2id.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub(crate) const NONCE_LEN: usize = 24;
pub(crate) const TAG_LEN: usize = 16;
pub(crate) const CHECKSUM_LEN: usize = 16;

const COMP_NONE: u8 = 0;
const COMP_ZSTD: u8 = 1;

/// Secret material of a vault: the blob encryption key and the chunk-id key.
#[derive(Clone)]
pub struct MasterKey {
    pub encryption: [u8; 32],
    pub chunk_id: [u8; 32],
}

impl MasterKey {
    pub fn generate() -> Result<MasterKey> {
        Ok(MasterKey {
            encryption: random_array()?,
            chunk_id: random_array()?,
        })
    }
    fn to_bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[..32].copy_from_slice(&self.encryption);
        b[32..].copy_from_slice(&self.chunk_id);
        b
    }
    fn from_bytes(b: &[u8]) -> Option<MasterKey> {
        if b.len() != 64 {
            return None;
        }
        Some(MasterKey {
            encryption: b[..32].try_into().ok()?,
            chunk_id: b[32..].try_into().ok()?,
        })
    }
}

pub fn random_array<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)
        .map_err(|e| Error::InvalidInput(format!("the OS random generator failed: {e}")))?;
    Ok(b)
}

/// How every stored byte string is protected.
#[derive(Clone)]
pub enum Sealer {
    /// XChaCha20-Poly1305 with a random 24-byte nonce per sealed string.
    Encrypted(Box<XChaCha20Poly1305>),
    /// No secrecy; a truncated BLAKE3 checksum still detects damage.
    Plain,
}

impl Sealer {
    pub fn encrypted(key: &[u8; 32]) -> Sealer {
        Sealer::Encrypted(Box::new(XChaCha20Poly1305::new(&(*key).into())))
    }

    /// Bytes that sealing adds on top of the compression byte and body.
    pub fn overhead(&self) -> usize {
        1 + match self {
            Sealer::Encrypted(_) => NONCE_LEN + TAG_LEN,
            Sealer::Plain => CHECKSUM_LEN,
        }
    }

    /// Compress (when `level` is given and it shrinks the data) and seal `data`.
    pub fn seal(&self, data: &[u8], level: Option<i32>) -> Result<Vec<u8>> {
        let nonce = match self {
            Sealer::Encrypted(_) => random_array::<NONCE_LEN>()?,
            Sealer::Plain => [0u8; NONCE_LEN],
        };
        Ok(self.seal_with_nonce(data, level, &nonce))
    }

    /// Deterministic sealing for test vectors; production code calls [`Sealer::seal`].
    pub fn seal_with_nonce(
        &self,
        data: &[u8],
        level: Option<i32>,
        nonce: &[u8; NONCE_LEN],
    ) -> Vec<u8> {
        let compressed = level
            .filter(|_| worth_compressing(data))
            .and_then(|l| compress(data, l))
            .filter(|c| c.len() < data.len());
        let (flag, body) = match &compressed {
            Some(c) => (COMP_ZSTD, c.as_slice()),
            None => (COMP_NONE, data),
        };
        match self {
            Sealer::Encrypted(cipher) => {
                let mut out = Vec::with_capacity(NONCE_LEN + 1 + body.len() + TAG_LEN);
                out.extend_from_slice(nonce);
                out.push(flag);
                out.extend_from_slice(body);
                let tag = cipher
                    .encrypt_inout_detached(
                        &XNonce::from(*nonce),
                        &[],
                        (&mut out[NONCE_LEN..]).into(),
                    )
                    .expect("XChaCha20-Poly1305 accepts any message below 256 GiB");
                out.extend_from_slice(&tag);
                out
            }
            Sealer::Plain => {
                let mut out = Vec::with_capacity(1 + body.len() + CHECKSUM_LEN);
                out.push(flag);
                out.extend_from_slice(body);
                let sum = blake3::hash(&out);
                out.extend_from_slice(&sum.as_bytes()[..CHECKSUM_LEN]);
                out
            }
        }
    }

    /// Authenticate and decompress. `max_len` bounds the decompressed plaintext (a blob's raw
    /// length); without it, decompression stops at [`unknown_len_limit`] of the input.
    pub fn open(&self, sealed: &[u8], max_len: Option<usize>, what: &str) -> Result<Vec<u8>> {
        let inner: Vec<u8> = match self {
            Sealer::Encrypted(cipher) => {
                if sealed.len() < NONCE_LEN + 1 + TAG_LEN {
                    return Err(Error::corrupt(what, "shorter than nonce and tag"));
                }
                let nonce = XNonce::try_from(&sealed[..NONCE_LEN]).expect("length checked");
                let tag_at = sealed.len() - TAG_LEN;
                let mut buf = sealed[NONCE_LEN..tag_at].to_vec();
                let tag =
                    chacha20poly1305::Tag::try_from(&sealed[tag_at..]).expect("length checked");
                cipher
                    .decrypt_inout_detached(&nonce, &[], (&mut buf[..]).into(), &tag)
                    .map_err(|_| {
                        Error::corrupt(
                            what,
                            "authentication failed (damaged, or sealed with another key)",
                        )
                    })?;
                buf
            }
            Sealer::Plain => {
                if sealed.len() < 1 + CHECKSUM_LEN {
                    return Err(Error::corrupt(what, "shorter than its checksum"));
                }
                let at = sealed.len() - CHECKSUM_LEN;
                if blake3::hash(&sealed[..at]).as_bytes()[..CHECKSUM_LEN] != sealed[at..] {
                    return Err(Error::corrupt(what, "checksum mismatch"));
                }
                sealed[..at].to_vec()
            }
        };
        let body = &inner[1..];
        match inner[0] {
            COMP_NONE => Ok(body.to_vec()),
            COMP_ZSTD => {
                let limit = max_len.unwrap_or_else(|| unknown_len_limit(body.len()));
                decompress(body, limit).map_err(|e| Error::corrupt(what, format!("zstd: {e}")))
            }
            other => Err(Error::corrupt(
                what,
                format!("unknown compression byte {other}"),
            )),
        }
    }
}

/// Blobs at least this large are probed before a full compression attempt.
const PROBE_MIN: usize = 64 * 1024;
const PROBE_LEN: usize = 16 * 1024;

/// Whether zstd is worth running on `data`. Already-compressed content (the content library,
/// most of a site's bytes) does not shrink, and a full attempt costs more than the encryption:
/// a fast pass over a sample from the middle decides for large blobs.
fn worth_compressing(data: &[u8]) -> bool {
    if data.len() < PROBE_MIN {
        return true;
    }
    let start = data.len() / 2 - PROBE_LEN / 2;
    let sample = &data[start..start + PROBE_LEN];
    compress(sample, 1).is_none_or(|c| c.len() < PROBE_LEN - PROBE_LEN / 32)
}

// One zstd context per thread and level: creating a context per blob cost about 3% of a
// backup's CPU (perf, e2e bench night 1). The output is the same bytes either way.
thread_local! {
    static COMPRESSORS: std::cell::RefCell<Vec<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

fn compress(data: &[u8], level: i32) -> Option<Vec<u8>> {
    COMPRESSORS.with(|cs| {
        let mut cs = cs.borrow_mut();
        let i = match cs.iter().position(|(l, _)| *l == level) {
            Some(i) => i,
            None => {
                cs.push((level, zstd::bulk::Compressor::new(level).ok()?));
                cs.len() - 1
            }
        };
        cs[i].1.compress(data).ok()
    })
}

/// How far a sealed string opened without a known plaintext length (index files, snapshots,
/// locks, pack headers) may decompress: at most this many bytes per compressed byte, but never
/// less than [`UNKNOWN_LEN_FLOOR`]. Without it a few kilobytes of zstd (a "bomb") could expand to
/// any size. Objects writers produce compress far less: index files and pack headers are mostly
/// random ids, and locks and pack headers are not compressed at all.
pub(crate) const UNKNOWN_LEN_RATIO: usize = 256;
pub(crate) const UNKNOWN_LEN_FLOOR: usize = 16 * 1024 * 1024;

/// The decompression bound [`Sealer::open`] applies when it is given no `max_len`.
pub fn unknown_len_limit(compressed_len: usize) -> usize {
    compressed_len
        .saturating_mul(UNKNOWN_LEN_RATIO)
        .max(UNKNOWN_LEN_FLOOR)
}

/// Decompress at most `max_len` bytes. A frame that records its size (writers' frames do) is
/// decompressed in one call into a buffer of exactly that size; one that does not is streamed,
/// so that a large `max_len` (a blob's `raw_len`, from an index) is not allocated up front.
fn decompress(body: &[u8], max_len: usize) -> std::io::Result<Vec<u8>> {
    if zstd::bulk::Decompressor::upper_bound(body).is_none() {
        use std::io::Read;
        let mut out = Vec::new();
        zstd::stream::read::Decoder::new(body)?
            .take(max_len as u64 + 1)
            .read_to_end(&mut out)?;
        if out.len() > max_len {
            return Err(std::io::Error::other(format!(
                "decompresses to more than {max_len} bytes"
            )));
        }
        return Ok(out);
    }
    DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(zstd::bulk::Decompressor::new()?);
        }
        match d.as_mut() {
            Some(d) => d.decompress(body, max_len),
            None => zstd::bulk::decompress(body, max_len),
        }
    })
}

/// Argon2id cost parameters stored in each key file.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// The largest Argon2id costs a key file may ask for (the defaults are 64 MiB, 3 passes, 1
/// lane): a damaged or hostile key file must not make unlocking allocate or compute without
/// bound before the password is even tried.
pub const MAX_KDF_MEMORY_KIB: u32 = 4 * 1024 * 1024;
pub const MAX_KDF_ITERATIONS: u32 = 1000;
pub const MAX_KDF_PARALLELISM: u32 = 255;

impl KdfParams {
    /// Refuse costs above the `MAX_KDF_*` caps.
    pub(crate) fn check_limits(&self) -> std::result::Result<(), String> {
        let over = |what: &str, v: u32, max: u32| {
            (v > max).then(|| format!("Argon2id {what} {v} is above the maximum {max}"))
        };
        match over("memory_kib", self.memory_kib, MAX_KDF_MEMORY_KIB)
            .or_else(|| over("iterations", self.iterations, MAX_KDF_ITERATIONS))
            .or_else(|| over("parallelism", self.parallelism, MAX_KDF_PARALLELISM))
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

/// A key file (`keys/<id>`): the master key wrapped with a password-derived key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyFile {
    pub version: u32,
    pub created: String,
    pub host: String,
    pub kdf: String,
    pub kdf_params: KdfParams,
    /// Hex of the 32-byte Argon2id salt.
    pub salt: String,
    /// Hex of nonce (24) || XChaCha20-Poly1305(master key, 64 bytes) || tag (16).
    pub master: String,
}

fn derive_wrap_key(password: &[u8], salt: &[u8], p: KdfParams) -> Result<[u8; 32]> {
    let params = argon2::Params::new(p.memory_kib, p.iterations, p.parallelism, Some(32))
        .map_err(|e| Error::InvalidInput(format!("invalid Argon2id parameters: {e}")))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    a.hash_password_into(password, salt, &mut out)
        .map_err(|e| Error::InvalidInput(format!("Argon2id failed: {e}")))?;
    Ok(out)
}

impl KeyFile {
    pub fn create(
        master: &MasterKey,
        password: &[u8],
        params: KdfParams,
        created: String,
        host: String,
    ) -> Result<KeyFile> {
        let salt: [u8; 32] = random_array()?;
        let nonce: [u8; NONCE_LEN] = random_array()?;
        Self::create_with(master, password, params, created, host, salt, nonce)
    }

    /// Deterministic variant for test vectors.
    pub fn create_with(
        master: &MasterKey,
        password: &[u8],
        params: KdfParams,
        created: String,
        host: String,
        salt: [u8; 32],
        nonce: [u8; NONCE_LEN],
    ) -> Result<KeyFile> {
        params.check_limits().map_err(Error::InvalidInput)?;
        let wrap = derive_wrap_key(password, &salt, params)?;
        let sealed = Sealer::encrypted(&wrap).seal_with_nonce(&master.to_bytes(), None, &nonce);
        Ok(KeyFile {
            version: 1,
            created,
            host,
            kdf: "argon2id".into(),
            kdf_params: params,
            salt: hex::encode(salt),
            master: hex::encode(sealed),
        })
    }

    /// Parse a key file's JSON and refuse Argon2id costs above the `MAX_KDF_*` caps. (`open`
    /// checks the caps too, so a key file parsed some other way is just as safe to open.)
    pub fn decode(bytes: &[u8]) -> Result<KeyFile> {
        let kf: KeyFile =
            serde_json::from_slice(bytes).map_err(|e| Error::corrupt("key file", e.to_string()))?;
        kf.kdf_params
            .check_limits()
            .map_err(|e| Error::corrupt("key file", e))?;
        Ok(kf)
    }

    /// `Ok(None)` when the password does not open this key file.
    pub fn open(&self, password: &[u8]) -> Result<Option<MasterKey>> {
        if self.kdf != "argon2id" {
            return Err(Error::corrupt(
                "key file",
                format!("unknown kdf {:?}", self.kdf),
            ));
        }
        self.kdf_params
            .check_limits()
            .map_err(|e| Error::corrupt("key file", e))?;
        let salt =
            hex::decode(&self.salt).map_err(|_| Error::corrupt("key file", "salt is not hex"))?;
        let sealed = hex::decode(&self.master)
            .map_err(|_| Error::corrupt("key file", "master is not hex"))?;
        let wrap = derive_wrap_key(password, &salt, self.kdf_params)?;
        match Sealer::encrypted(&wrap).open(&sealed, Some(64), "key file") {
            Ok(b) => MasterKey::from_bytes(&b)
                .map(Some)
                .ok_or_else(|| Error::corrupt("key file", "master key is not 64 bytes")),
            Err(_) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn seal_open_round_trip(data in proptest::collection::vec(any::<u8>(), 0..2000), zeros in 0usize..3000, enc in any::<bool>(), flip in any::<prop::sample::Index>()) {
            let mut data = data;
            data.extend(std::iter::repeat_n(0u8, zeros));
            let s = if enc { Sealer::encrypted(&[9; 32]) } else { Sealer::Plain };
            let sealed = s.seal(&data, Some(3)).unwrap();
            prop_assert!(sealed.len() <= data.len() + s.overhead());
            prop_assert_eq!(&s.open(&sealed, Some(data.len()), "t").unwrap(), &data);
            let mut bad = sealed.clone();
            let i = flip.index(bad.len());
            bad[i] ^= 0x40;
            prop_assert!(s.open(&bad, Some(data.len()), "t").is_err());
        }
    }

    #[test]
    fn key_file_opens_only_with_its_password() {
        let m = MasterKey::generate().unwrap();
        let p = KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        let kf = KeyFile::create(&m, b"right", p, "t".into(), "h".into()).unwrap();
        let got = kf.open(b"right").unwrap().unwrap();
        assert_eq!((got.encryption, got.chunk_id), (m.encryption, m.chunk_id));
        assert!(kf.open(b"wrong").unwrap().is_none());
    }

    #[test]
    fn large_blobs_are_probed_before_compressing() {
        let mut random = vec![0u8; 1 << 20];
        blake3::Hasher::new().finalize_xof().fill(&mut random);
        assert!(!worth_compressing(&random));
        let text: Vec<u8> = b"SMS_SITE_BACKUP completed "
            .iter()
            .copied()
            .cycle()
            .take(1 << 20)
            .collect();
        assert!(worth_compressing(&text));
        assert_eq!(
            Sealer::Plain.seal(&text, Some(3)).unwrap()[0],
            1,
            "compressible text is compressed"
        );
        assert_eq!(
            Sealer::Plain.seal(&random, Some(3)).unwrap()[0],
            0,
            "random data is stored raw"
        );
    }

    #[test]
    fn incompressible_data_is_stored_raw() {
        let mut data = vec![0u8; 4096];
        blake3::Hasher::new().finalize_xof().fill(&mut data);
        let sealed = Sealer::Plain.seal(&data, Some(3)).unwrap();
        assert_eq!(sealed[0], 0, "compression byte");
        assert_eq!(sealed.len(), 1 + data.len() + CHECKSUM_LEN);
    }
}
