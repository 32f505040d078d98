//! The per-host record of pack headers `check` has verified (formats/ §7.6): a later `check` on
//! the same host reads only the headers of packs it has not verified, or whose index listing
//! changed since, so its requests follow what changed instead of the number of packs. Like the
//! index cache it is local and optional: a record that is missing or does not open is ignored
//! (every header is read) and written again.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::format::codec::{Reader, derive_magic, put_u16, put_u32};
use crate::format::index::IndexPack;
use crate::vault::Vault;

pub(crate) const RECORD_VERSION: u16 = 1;
/// File name in `<cache root>/<vault id>/`.
pub(crate) const RECORD_FILE: &str = "checked-headers";
/// Bytes kept per verified pack.
pub(crate) const DIGEST_LEN: usize = 16;

pub(crate) type Digest = [u8; DIGEST_LEN];

pub fn record_magic() -> [u8; 8] {
    derive_magic("sitevault checked headers")
}

/// What a verification covers: the pack's name and size and the index listing it was compared
/// with (kind and every entry), so a changed listing is compared again.
pub fn digest(pack: &IndexPack, size: u64) -> Digest {
    let mut h = blake3::Hasher::new();
    h.update(b"sitevault checked header v1");
    h.update(&pack.id.0);
    h.update(&size.to_le_bytes());
    h.update(&[pack.kind as u8]);
    h.update(&(pack.blobs.len() as u64).to_le_bytes());
    for b in &pack.blobs {
        h.update(&b.id.0);
        h.update(&b.offset.to_le_bytes());
        h.update(&b.stored_len.to_le_bytes());
        h.update(&b.raw_len.to_le_bytes());
    }
    let mut d = [0u8; DIGEST_LEN];
    d.copy_from_slice(&h.finalize().as_bytes()[..DIGEST_LEN]);
    d
}

/// The digests of packs verified by the last `check` on this host, sorted.
#[derive(Debug, Default)]
pub(crate) struct HeaderRecord {
    digests: Vec<Digest>,
}

impl HeaderRecord {
    /// The record of `vault` in its cache folder; empty when there is none or it does not open
    /// (it is sealed with the vault's key, so a changed file fails).
    pub fn load(vault: &Vault, path: &Path) -> HeaderRecord {
        let Ok(sealed) = std::fs::read(path) else {
            return HeaderRecord::default();
        };
        match vault
            .sealer()
            .open(&sealed, None, RECORD_FILE)
            .and_then(|plain| decode(&plain))
        {
            Ok(digests) => HeaderRecord { digests },
            Err(_) => HeaderRecord::default(),
        }
    }

    pub fn contains(&self, d: &Digest) -> bool {
        self.digests.binary_search(d).is_ok()
    }
}

/// Where the record of `vault` lives, when it has a cache folder: one per location, since a
/// copy of the vault elsewhere (same id, same key) has headers of its own to verify.
pub(crate) fn record_path(vault: &Vault) -> Option<PathBuf> {
    let at = blake3::hash(vault.location().as_bytes());
    let name = format!("{RECORD_FILE}-{}", &at.to_hex()[..16]);
    vault.cache_vault_dir().map(|d| d.join(name))
}

/// Store `digests` as the record: sealed, under a temporary name, then renamed into place.
pub fn save(vault: &Vault, path: &Path, mut digests: Vec<Digest>) -> Result<()> {
    digests.sort_unstable();
    digests.dedup();
    let sealed = vault.seal_blob(&encode(&digests))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |e: std::io::Error| crate::error::Error::Store {
        object: path.display().to_string(),
        detail: format!("the check record could not be written: {e}"),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let digits: [u8; 8] = crate::format::crypto::random_array()?;
    let tmp = dir.join(format!("{RECORD_FILE}.{}.tmp", hex::encode(digits)));
    let written = std::fs::write(&tmp, &sealed).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

/// The record's plaintext (before sealing) for `digests`, sorted.
pub fn encode(digests: &[Digest]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + digests.len() * DIGEST_LEN);
    out.extend_from_slice(&record_magic());
    put_u16(&mut out, RECORD_VERSION);
    put_u16(&mut out, 0);
    put_u32(&mut out, digests.len() as u32);
    for d in digests {
        out.extend_from_slice(d);
    }
    out
}

/// The digests of a record's plaintext.
pub fn decode(bytes: &[u8]) -> Result<Vec<Digest>> {
    let mut r = Reader::new(bytes, RECORD_FILE);
    if r.take(8)? != record_magic() {
        return Err(r.error("bad magic"));
    }
    if r.u16()? != RECORD_VERSION {
        return Err(r.error("unsupported version"));
    }
    r.u16()?;
    let n = r.count(DIGEST_LEN)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut d = [0u8; DIGEST_LEN];
        d.copy_from_slice(r.take(DIGEST_LEN)?);
        out.push(d);
    }
    if !r.is_empty() {
        return Err(r.error("trailing bytes"));
    }
    // Sorted as written; a record out of order is not ours.
    if !out.is_sorted() {
        return Err(r.error("digests out of order"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_rejects_damage() {
        let ds: Vec<Digest> = (0..5u8).map(|i| [i; DIGEST_LEN]).collect();
        let bytes = encode(&ds);
        assert_eq!(decode(&bytes).unwrap(), ds);
        let mut bad = bytes.clone();
        bad[0] ^= 1;
        assert!(decode(&bad).is_err());
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        let mut reversed = ds.clone();
        reversed.reverse();
        assert!(decode(&encode(&reversed)).is_err());
    }
}
