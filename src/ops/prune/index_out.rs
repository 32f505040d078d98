//! Writing index files: a run of files, of which the last supersedes the ones they replace in
//! one atomic write (formats/ §7.2).

use super::BLOBS_PER_INDEX_FILE;
use crate::error::Result;
use crate::format::id::Id;
use crate::format::index::{IndexFile, IndexPack};
use crate::vault::Vault;

/// Index files being written, each stored once it holds `max` blobs.
pub(super) struct IndexOut<'a> {
    vault: &'a Vault,
    max: usize,
    cur: IndexFile,
    blobs: usize,
    written: usize,
}

impl<'a> IndexOut<'a> {
    /// No files yet; each will hold at most `max` blobs.
    pub(super) fn new(vault: &'a Vault, max: usize) -> IndexOut<'a> {
        IndexOut {
            vault,
            max,
            cur: IndexFile::default(),
            blobs: 0,
            written: 0,
        }
    }

    /// Add pack `p`, storing the file so far first when `p` would not fit in it.
    pub(super) fn push(&mut self, p: IndexPack) -> Result<()> {
        if self.blobs > 0 && self.blobs + p.blobs.len() > self.max {
            // Files before the last only repeat what old files say (harmless duplicates).
            self.vault.save_index(&std::mem::take(&mut self.cur))?;
            self.written += 1;
            self.blobs = 0;
        }
        self.blobs += p.blobs.len();
        self.cur.packs.push(p);
        Ok(())
    }

    /// Store the last file, superseding `old` in one atomic write after `fence` (none is needed
    /// when nothing is superseded or left to name). Returns how many files were written.
    pub(super) fn finish(mut self, old: &[Id], fence: &dyn Fn() -> Result<()>) -> Result<usize> {
        // Already superseded files are listed again even when nothing else is: deleting them
        // in any order must not bring one back into force (§7.2 counts supersedes lists of
        // superseded files too).
        if !old.is_empty() || !self.cur.packs.is_empty() {
            fence()?;
            self.cur.supersedes = old.to_vec();
            self.vault.save_index(&self.cur)?;
            self.written += 1;
        }
        Ok(self.written)
    }
}

/// Store index files for `packs`; the last one supersedes `old`. Returns how many were written.
pub(crate) fn write_index(vault: &Vault, packs: Vec<IndexPack>, old: &[Id]) -> Result<usize> {
    let mut files: Vec<IndexFile> = Vec::new();
    let mut cur = IndexFile::default();
    let mut blobs = 0;
    for p in packs {
        if blobs > 0 && blobs + p.blobs.len() > BLOBS_PER_INDEX_FILE {
            files.push(std::mem::take(&mut cur));
            blobs = 0;
        }
        blobs += p.blobs.len();
        cur.packs.push(p);
    }
    files.push(cur);
    // Files before the last only repeat what old files say (harmless duplicates); the last
    // one makes the switch in one atomic write.
    if let Some(last) = files.last_mut() {
        last.supersedes = old.to_vec();
    }
    let n = files.len();
    for f in &files {
        vault.save_index(f)?;
    }
    Ok(n)
}
