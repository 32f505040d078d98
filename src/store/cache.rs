//! A per-host cache of index files (formats/ §7.5), so a backup downloads only the index files
//! it has not seen. Index files are content-addressed and never change, so a cached copy is as
//! good as the stored one once its bytes hash to its name; one that does not is removed and
//! fetched again. It is a cache: failing to write it costs a download next time, nothing else.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::format::id::Id;

#[derive(Debug, Clone)]
pub struct IndexCache {
    /// `<cache root>/<vault id>/index`
    dir: PathBuf,
}

impl IndexCache {
    /// The cache of vault `vault` under `root`.
    pub fn new(root: &Path, vault: &Id) -> IndexCache {
        IndexCache {
            dir: root.join(vault.to_hex()).join("index"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &Id) -> PathBuf {
        self.dir.join(id.to_hex())
    }

    /// The stored bytes of index file `id`, when cached intact.
    pub fn get(&self, id: &Id) -> Option<Vec<u8>> {
        let path = self.path(id);
        let bytes = std::fs::read(&path).ok()?;
        if Id::of_object(&bytes) == *id {
            return Some(bytes);
        }
        // Damaged (a torn write, a bad disk): fetch it again.
        let _ = std::fs::remove_file(&path);
        None
    }

    /// Keep `bytes` (already checked to hash to `id`). Written under a temporary name and
    /// renamed, so a reader never sees part of a file; errors are ignored (see the module).
    pub fn put(&self, id: &Id, bytes: &[u8]) {
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        let Ok(digits) = crate::format::crypto::random_array::<8>() else {
            return;
        };
        let tmp = self
            .dir
            .join(format!("{}.{}.tmp", id.to_hex(), hex::encode(digits)));
        if std::fs::write(&tmp, bytes).is_err() || std::fs::rename(&tmp, self.path(id)).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    /// Remove cached files the vault no longer lists (prune replaced them), and temporary
    /// files a killed process left. Returns how many went.
    pub fn retain(&self, listed: &HashSet<Id>) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for e in entries.flatten() {
            let name = e.file_name();
            let keep = name
                .to_str()
                .and_then(|n| Id::from_hex(n).ok())
                .is_some_and(|id| listed.contains(&id));
            if !keep && std::fs::remove_file(e.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_file_comes_back_a_damaged_one_is_dropped_and_unlisted_ones_go() {
        let root = tempfile::tempdir().unwrap();
        let c = IndexCache::new(root.path(), &Id([7; 32]));
        let (a, b) = (b"first index file".to_vec(), b"second".to_vec());
        let (ia, ib) = (Id::of_object(&a), Id::of_object(&b));
        assert_eq!(c.get(&ia), None);
        c.put(&ia, &a);
        c.put(&ib, &b);
        assert_eq!(c.get(&ia), Some(a.clone()));
        // A flipped byte: not returned, and removed.
        std::fs::write(c.path(&ib), b"secomd").unwrap();
        assert_eq!(c.get(&ib), None);
        assert!(!c.path(&ib).exists());
        c.put(&ib, &b);
        std::fs::write(c.dir().join("junk.tmp"), b"x").unwrap();
        assert_eq!(c.retain(&HashSet::from([ia])), 2);
        assert_eq!(c.get(&ia), Some(a));
        assert_eq!(c.get(&ib), None);
    }
}
