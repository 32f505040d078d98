//! Encrypted objects by prefix and id: sealing, naming, reading with a hash check, listing.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::id::Id;

use super::Vault;

pub(super) fn object_name(prefix: &str, id: &Id) -> String {
    format!("{prefix}/{}", id.to_hex())
}

/// The id at the end of an object name like `index/<hex>` or `data/ab/<hex>`; `None` for
/// anything else (stray files are not objects and are ignored).
pub(super) fn id_from_name(name: &str) -> Option<Id> {
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

impl Vault {
    /// Seal and store a standalone object under `prefix/<id>`, id = BLAKE3 of the stored bytes.
    pub(crate) fn save_object(&self, prefix: &str, plaintext: &[u8]) -> Result<Id> {
        let sealed = self
            .sealer
            .seal(plaintext, Some(self.config.compression_level))?;
        let id = Id::of_object(&sealed);
        self.store
            .put(&object_name(prefix, &id), Bytes::from(sealed))?;
        Ok(id)
    }

    /// Load a standalone object, checking that its bytes still hash to its name.
    pub(crate) fn load_object(&self, prefix: &str, id: &Id) -> Result<Vec<u8>> {
        let name = object_name(prefix, id);
        let bytes = self
            .fetch_verified(&name, id)?
            .ok_or_else(|| Error::corrupt(&name, "object is missing"))?;
        self.sealer.open(&bytes, None, &name)
    }

    /// The stored bytes of object `name`, checked against its id; `None` when missing.
    pub(super) fn fetch_verified(&self, name: &str, id: &Id) -> Result<Option<Bytes>> {
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

    /// Like [`Vault::load_object`], but `Ok(None)` when the object does not exist.
    pub(crate) fn load_object_if_present(&self, prefix: &str, id: &Id) -> Result<Option<Vec<u8>>> {
        let name = object_name(prefix, id);
        match self.fetch_verified(&name, id)? {
            None => Ok(None),
            Some(bytes) => self.sealer.open(&bytes, None, &name).map(Some),
        }
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
    pub(crate) fn list_ids_union(&self, prefix: &str, times: usize) -> Result<Vec<(Id, u64)>> {
        let mut all = Vec::new();
        for _ in 0..times.max(1) {
            all.extend(self.list_ids(prefix)?);
        }
        all.sort_unstable();
        all.dedup_by_key(|(id, _)| *id);
        Ok(all)
    }
}
