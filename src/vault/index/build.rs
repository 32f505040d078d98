//! Building an [`Index`] from index files in reader order (formats/ §7.2): in memory, or in a
//! working file when it would pass the memory budget (§7.4). Shared by the index load and by
//! prune, which adds only some of a file's packs and needs to know each one's number.

use std::collections::HashSet;
use std::path::Path;

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::index::IndexFile;
use crate::format::pack::{BlobKind, PackedBlob};
use crate::vault::index::Index;
use crate::vault::index::disk::DiskIndexBuilder;

/// Bytes an entry takes in memory (formats/ §7.3), for the budget decision.
const ENTRY_BYTES: u64 = 48;

enum Inner {
    Memory {
        index: Index,
        /// Each file with the pack numbers `[from, to)` its packs got.
        files: Vec<(Id, u32, u32)>,
        superseded: HashSet<Id>,
    },
    Disk(DiskIndexBuilder),
}

/// Packs go in under consecutive numbers (0, 1, ...), the numbers [`Index::for_each_entry`]
/// reports; a file's packs are dropped at the end if another file supersedes it.
pub(crate) struct IndexBuilder(Inner);

impl IndexBuilder {
    /// `expected`: about how many blobs will come. On disk (in `spool`) when they would take
    /// more than `budget` in memory; in memory without a budget or a spool folder.
    pub fn new(spool: Option<&Path>, budget: Option<u64>, expected: u64) -> Result<IndexBuilder> {
        Ok(IndexBuilder(match (budget, spool) {
            (Some(budget), Some(dir)) if expected.saturating_mul(ENTRY_BYTES) > budget => {
                Inner::Disk(DiskIndexBuilder::new(dir, budget, expected)?)
            }
            _ => {
                let mut index = Index::new();
                index.reserve(expected as usize);
                Inner::Memory {
                    index,
                    files: Vec::new(),
                    superseded: HashSet::new(),
                }
            }
        }))
    }

    /// Packs added so far (the next pack's number).
    pub fn pack_count(&self) -> u32 {
        match &self.0 {
            Inner::Memory { index, .. } => index.pack_count(),
            Inner::Disk(d) => d.pack_count(),
        }
    }

    /// Add one pack's blobs; returns its number.
    pub fn add_pack(&mut self, id: Id, kind: BlobKind, blobs: &[PackedBlob]) -> Result<u32> {
        let n = self.pack_count();
        match &mut self.0 {
            Inner::Memory { index, .. } => {
                if n == u32::MAX {
                    return Err(Error::InvalidInput("more than 4 billion packs".into()));
                }
                index.add_pack(id, kind, blobs)
            }
            Inner::Disk(d) => d.add_pack(id, kind, blobs)?,
        }
        Ok(n)
    }

    /// Packs numbered `from..` (up to now) came from index file `id`, which supersedes
    /// `supersedes`.
    pub(crate) fn end_file(&mut self, id: Id, from: u32, supersedes: &[Id]) {
        match &mut self.0 {
            Inner::Memory {
                index,
                files,
                superseded,
            } => {
                files.push((id, from, index.pack_count()));
                superseded.extend(supersedes.iter().copied());
            }
            Inner::Disk(d) => d.end_file(id, from, supersedes),
        }
    }

    /// Add every pack of index file `id`.
    pub(crate) fn add_file(&mut self, id: Id, file: &IndexFile) -> Result<()> {
        let from = self.pack_count();
        for p in &file.packs {
            self.add_pack(p.id, p.kind, &p.blobs)?;
        }
        self.end_file(id, from, &file.supersedes);
        Ok(())
    }

    /// The index: entries of superseded files left out, a blob listed twice found where it
    /// was first seen (§7.2).
    pub fn finish(self) -> Result<Index> {
        match self.0 {
            Inner::Disk(d) => Ok(Index::on_disk(d.finish()?)),
            Inner::Memory {
                mut index,
                files,
                superseded,
            } => {
                let dropped: Vec<(u32, u32)> = files
                    .iter()
                    .filter(|(id, ..)| superseded.contains(id))
                    .map(|&(_, a, b)| (a, b))
                    .collect();
                if !dropped.is_empty() {
                    index.drop_packs(&dropped);
                }
                index.finish();
                Ok(index)
            }
        }
    }
}
