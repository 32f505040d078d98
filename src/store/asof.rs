//! `--vault-as-of TIME`: a vault read as it stood at a moment, from the object versions of a
//! versioned S3 bucket. Later delete markers and later versions are ignored, so what an attacker
//! deleted or overwrote after TIME reads as it was. Read-only, except for locks: readers still
//! take their shared lock in the live vault, so no prune removes old versions under them.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use jiff::Timestamp;

use crate::error::{Error, Result};
use crate::store::{ObjectInfo, Store};

const LOCKS: &str = "locks/";

/// One object as it stood: the version that was current at the time.
#[derive(Debug, Clone)]
struct Current {
    version_id: String,
    size: u64,
    modified: Timestamp,
}

pub struct AsOfStore {
    live: Arc<dyn Store>,
    at: Timestamp,
    location: String,
    objects: BTreeMap<String, Current>,
}

impl AsOfStore {
    /// Read `live` (an `s3://` vault) as it stood at `at`. Lists every version once.
    pub fn new(live: Arc<dyn Store>, at: Timestamp) -> Result<AsOfStore> {
        let location = format!("{} as of {at}", live.location());
        let Some(lock) = live.object_lock() else {
            return Err(Error::InvalidInput(format!(
                "{}: --vault-as-of reads old object versions, which only a versioned S3 bucket keeps",
                live.location()
            )));
        };
        // For each name, the newest entry written at or before `at`; a delete marker there
        // means the object did not exist then.
        let mut newest: BTreeMap<String, (Timestamp, Option<Current>)> = BTreeMap::new();
        for v in lock.versions("")? {
            if v.modified > at || v.name.starts_with(LOCKS) {
                continue;
            }
            let entry = (!v.delete_marker).then(|| Current {
                version_id: v.version_id.clone(),
                size: v.size,
                modified: v.modified,
            });
            match newest.get(&v.name) {
                // Equal times (one-second resolution): a version beats a delete marker, so
                // an object deleted in the same second as written still reads.
                Some((t, e)) if *t > v.modified || (*t == v.modified && e.is_some()) => {}
                _ => {
                    newest.insert(v.name.clone(), (v.modified, entry));
                }
            }
        }
        let objects = newest
            .into_iter()
            .filter_map(|(name, (_, c))| c.map(|c| (name, c)))
            .collect();
        Ok(AsOfStore {
            live,
            at,
            location,
            objects,
        })
    }

    fn read_only(&self, name: &str) -> Error {
        Error::InvalidInput(format!(
            "{}/{name}: the vault is read as of {} (--vault-as-of), so nothing can be written or deleted; copy it to a new vault with `sitevault copy --vault-as-of` to work on it",
            self.live.location(),
            self.at
        ))
    }

    fn lock(&self) -> Result<&crate::store::s3lock::S3Lock> {
        self.live
            .object_lock()
            .ok_or_else(|| self.read_only("(versions)"))
    }
}

impl Store for AsOfStore {
    fn location(&self) -> &str {
        &self.location
    }

    fn get(&self, name: &str) -> Result<Option<Bytes>> {
        if name.starts_with(LOCKS) {
            return self.live.get(name);
        }
        match self.objects.get(name) {
            None => Ok(None),
            Some(c) => self
                .lock()?
                .get_version(name, &c.version_id, None)
                .map(Some),
        }
    }

    fn get_range(&self, name: &str, range: Range<u64>) -> Result<Bytes> {
        if name.starts_with(LOCKS) {
            return self.live.get_range(name, range);
        }
        let c = self.objects.get(name).ok_or_else(|| Error::Store {
            object: format!("{}/{name}", self.location),
            detail: "not found".into(),
        })?;
        self.lock()?.get_version(name, &c.version_id, Some(range))
    }

    fn put(&self, name: &str, data: Bytes) -> Result<bool> {
        if name.starts_with(LOCKS) {
            return self.live.put(name, data);
        }
        Err(self.read_only(name))
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        if prefix == "locks" || prefix.starts_with(LOCKS) {
            return self.live.list(prefix);
        }
        // Object names below a folder prefix (`data` lists `data/..`), as the live store does.
        let folder = if prefix.is_empty() || prefix.ends_with('/') {
            prefix.to_string()
        } else {
            format!("{prefix}/")
        };
        Ok(self
            .objects
            .range(folder.clone()..)
            .take_while(|(n, _)| n.starts_with(&folder))
            .map(|(n, c)| ObjectInfo {
                name: n.clone(),
                size: c.size,
                modified: c.modified,
            })
            .collect())
    }

    fn delete(&self, name: &str) -> Result<()> {
        if name.starts_with(LOCKS) {
            return self.live.delete(name);
        }
        Err(self.read_only(name))
    }

    fn connections(&self) -> usize {
        self.live.connections()
    }

    fn downloads(&self) -> usize {
        self.live.downloads()
    }
}
