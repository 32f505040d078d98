//! The spool folder (formats/ §2): local working files that are never objects — packs while
//! they fill, and the on-disk index (§7.4). Each is named by a prefix and random digits, and
//! removed when the process is done with it; a killed process's are removed by [`remove_stale`].

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// Packs filling: `pack-<16 hex digits>`.
pub(crate) const PACK_PREFIX: &str = "pack-";
/// The on-disk index's files: `index-<16 hex digits>[-part<n>|-packs]`.
pub(crate) const INDEX_PREFIX: &str = "index-";

/// A working file's path; dropping it removes the file (Rust opens files shareable for
/// deletion on Windows too, so an open handle does not stop it).
#[derive(Debug)]
pub struct WorkFile(PathBuf);

impl WorkFile {
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A new file `<prefix><16 random hex digits><suffix>` in `dir` (made when missing),
    /// opened for writing, and for reading when `read`.
    pub fn create(dir: &Path, prefix: &str, suffix: &str, read: bool) -> Result<(WorkFile, File)> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let digits: [u8; 8] = crate::format::crypto::random_array()?;
        let path = dir.join(format!("{prefix}{}{suffix}", hex::encode(digits)));
        let file = std::fs::OpenOptions::new()
            .read(read)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok((WorkFile(path), file))
    }

    /// An I/O error on this file; a full disk says what to do about it.
    pub fn error(&self, e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
            return Error::Store {
                object: self.0.display().to_string(),
                detail: format!(
                    "{e}; the disk holding the spool folder is full: free space on it and run the command again (nothing half-written was kept)"
                ),
            };
        }
        Error::io(&self.0, e)
    }
}

impl Drop for WorkFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Remove working files in `dir` not written for `idle` or longer (a killed process's; a live
/// one removes its own). A missing folder holds none. Returns how many went.
pub fn remove_stale(dir: &Path, idle: Duration) -> Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with(PACK_PREFIX) && !name.starts_with(INDEX_PREFIX) {
            continue;
        }
        let age = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .unwrap_or_default();
        if age < idle {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(entry.path(), e)),
        }
    }
    Ok(removed)
}
