//! Step 1 of prune: everything the vault holds, read into an index of the packs that still
//! exist, and the little prune keeps per pack (its sizes and fate) and per index file.

use std::collections::HashSet;

use rayon::prelude::*;

use super::{INDEX_BATCH, LISTINGS, PruneReport};
use crate::error::{ErrorKind, Result};
use crate::format::id::Id;
use crate::format::index::{IndexFile, IndexPack};
use crate::format::pack::{BlobKind, PackedBlob};
use crate::vault::index::Index;
use crate::vault::index::build::IndexBuilder;
use crate::vault::{DATA, INDEX, Vault};

/// One pack as an index file (or its own header) lists it.
pub(super) struct Listing {
    pub(super) pack: Id,
    pub(super) kind: BlobKind,
    pub(super) bytes: u64,
}

/// One index file as listed.
pub(super) struct FileInfo {
    pub(super) id: Id,
    pub(super) readable: bool,
    pub(super) blobs: usize,
    pub(super) supersedes: Vec<Id>,
    pub(super) listings: std::ops::Range<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    Keep,
    Delete,
    Repack,
}

/// One stored pack that an index file in force (or its own header) lists.
pub(super) struct PackState {
    pub(super) id: Id,
    pub(super) kind: BlobKind,
    pub(super) size: u64,
    /// Stored bytes of its blobs, from its first listing.
    pub(super) blob_bytes: u64,
    pub(super) used_blobs: u32,
    pub(super) used_bytes: u64,
    pub(super) fate: Fate,
    /// Listed by an index file that stays: new index files need not name it.
    pub(super) in_kept_file: bool,
    /// Already named by a new index file.
    pub(super) emitted: bool,
}

impl PackState {
    /// Stored bytes of its blobs that no snapshot uses.
    pub(super) fn unused_bytes(&self) -> u64 {
        self.blob_bytes.saturating_sub(self.used_bytes)
    }
}

/// The position of pack `id` in `states` (sorted by id).
pub(super) fn find(states: &[PackState], id: &Id) -> Option<usize> {
    states.binary_search_by(|s| s.id.cmp(id)).ok()
}

/// Stored bytes of the blobs `blobs`.
fn stored_bytes(blobs: &[PackedBlob]) -> u64 {
    blobs.iter().map(|b| b.stored_len as u64).sum()
}

/// What step 1 found: every index file and pack listing, and the state of every stored pack
/// an index file in force or its own header lists.
pub(super) struct Survey {
    /// Stored packs and their sizes, sorted by id.
    stored: Vec<(Id, u64)>,
    pub(super) files: Vec<FileInfo>,
    pub(super) listings: Vec<Listing>,
    /// Index files some other index file supersedes.
    pub(super) superseded: HashSet<Id>,
    pub(super) unreadable_files: usize,
    /// Sorted by id.
    pub(super) states: Vec<PackState>,
    /// Unindexed packs that read: kept whole, to be named by a new index file.
    pub(super) unindexed: Vec<IndexPack>,
}

/// The index step 1 builds, and what its pack numbers mean.
pub(super) struct Built {
    pub(super) index: Index,
    /// Pack number → state (entries of superseded files were dropped, so never looked up).
    pub(super) slot_of: Vec<u32>,
}

impl Survey {
    /// Step 1: every index file, a batch at a time, into an index of the packs that still
    /// exist; then the headers of packs no index file in force names.
    pub(super) fn read(vault: &Vault, report: &mut PruneReport) -> Result<(Survey, Built)> {
        let mut stored = vault.list_ids(DATA)?;
        stored.sort_unstable();
        report.packs_before = stored.len();
        report.bytes_before = stored.iter().map(|(_, s)| s).sum();
        let index_ids = vault.list_ids_union(INDEX, LISTINGS)?;
        // Index files store about 33 bytes per blob (formats/ §7.3).
        let expected = index_ids.iter().map(|(_, s)| *s).sum::<u64>() / 30;
        let mut builder = vault.index_builder(expected)?;
        let mut survey = Survey {
            stored,
            files: Vec::new(),
            listings: Vec::new(),
            superseded: HashSet::new(),
            unreadable_files: 0,
            states: Vec::new(),
            unindexed: Vec::new(),
        };
        // The listing behind each pack number of the index.
        let mut numbered: Vec<u32> = Vec::new();
        survey.read_index_files(vault, &index_ids, &mut builder, &mut numbered)?;
        survey.superseded = survey
            .files
            .iter()
            .flat_map(|f| f.supersedes.iter().copied())
            .collect();
        report.packs_missing = survey.first_listings();
        survey.read_orphans(vault, &mut builder, &mut numbered, report)?;
        let index = builder.finish()?;
        report.index_on_disk = index.is_on_disk();
        let slot_of = survey.slots(&numbered);
        Ok((survey, Built { index, slot_of }))
    }

    /// Whether index file `f` is in force: readable and superseded by no other.
    pub(super) fn in_force(&self, f: &FileInfo) -> bool {
        f.readable && !self.superseded.contains(&f.id)
    }

    /// Whether pack `id` is stored.
    fn is_stored(&self, id: &Id) -> bool {
        self.stored.binary_search_by(|(s, _)| s.cmp(id)).is_ok()
    }

    /// A fresh state (kept, nothing used yet) for stored pack `id`.
    fn state(&self, id: Id, kind: BlobKind, blob_bytes: u64) -> PackState {
        let size = self
            .stored
            .binary_search_by(|(s, _)| s.cmp(&id))
            .map_or(0, |i| self.stored[i].1);
        PackState {
            id,
            kind,
            size,
            blob_bytes,
            used_blobs: 0,
            used_bytes: 0,
            fate: Fate::Keep,
            in_kept_file: false,
            emitted: false,
        }
    }

    /// Read the index files `index_ids` a batch at a time (in parallel), noting each file and
    /// its listings, and adding the packs that still exist to `builder`.
    fn read_index_files(
        &mut self,
        vault: &Vault,
        index_ids: &[(Id, u64)],
        builder: &mut IndexBuilder,
        numbered: &mut Vec<u32>,
    ) -> Result<()> {
        for batch in index_ids.chunks(INDEX_BATCH) {
            let loaded: Vec<(Id, Result<IndexFile>)> = batch
                .par_iter()
                .map(|(id, _)| (*id, vault.read_index_file(id)))
                .collect();
            for (id, r) in loaded {
                let start = self.listings.len();
                let Ok(f) = r else {
                    self.unreadable_files += 1;
                    self.files.push(FileInfo {
                        id,
                        readable: false,
                        blobs: 0,
                        supersedes: vec![],
                        listings: start..start,
                    });
                    continue;
                };
                let from = builder.pack_count();
                for p in &f.packs {
                    self.listings.push(Listing {
                        pack: p.id,
                        kind: p.kind,
                        bytes: stored_bytes(&p.blobs),
                    });
                    // A blob must resolve to a copy that still exists.
                    if self.is_stored(&p.id) {
                        builder.add_pack(p.id, p.kind, &p.blobs)?;
                        numbered.push((self.listings.len() - 1) as u32);
                    }
                }
                builder.end_file(id, from, &f.supersedes);
                self.files.push(FileInfo {
                    id,
                    readable: true,
                    blobs: f.packs.iter().map(|p| p.blobs.len()).sum(),
                    supersedes: f.supersedes,
                    listings: start..self.listings.len(),
                });
            }
        }
        Ok(())
    }

    /// The states of each stored pack an index file in force names, from its first listing
    /// (files ascend). Returns how many packs such files name that are not stored.
    fn first_listings(&mut self) -> usize {
        let mut first: Vec<(Id, u32)> = Vec::new();
        let mut missing: Vec<Id> = Vec::new();
        for f in self.files.iter().filter(|f| self.in_force(f)) {
            for li in f.listings.clone() {
                let l = &self.listings[li];
                if self.is_stored(&l.pack) {
                    first.push((l.pack, li as u32));
                } else {
                    missing.push(l.pack);
                }
            }
        }
        first.sort_unstable();
        first.dedup_by_key(|(id, _)| *id);
        missing.sort_unstable();
        missing.dedup();
        self.states = first
            .iter()
            .map(|&(id, li)| {
                let l = &self.listings[li as usize];
                self.state(id, l.kind, l.bytes)
            })
            .collect();
        missing.len()
    }

    /// Read the headers of stored packs no index file in force names (interrupted backups, or
    /// an index file that is damaged): those that read are kept and added to `builder`.
    fn read_orphans(
        &mut self,
        vault: &Vault,
        builder: &mut IndexBuilder,
        numbered: &mut Vec<u32>,
        report: &mut PruneReport,
    ) -> Result<()> {
        let orphans: Vec<(Id, u64)> = self
            .stored
            .iter()
            .filter(|(id, _)| find(&self.states, id).is_none())
            .copied()
            .collect();
        let unreadable_files = self.unreadable_files;
        let (listings, unindexed) = (&mut self.listings, &mut self.unindexed);
        vault.each_pack_header(&orphans, &mut |id, h| {
            match h {
                Ok(p) => {
                    builder.add_pack(p.id, p.kind, &p.blobs)?;
                    listings.push(Listing {
                        pack: p.id,
                        kind: p.kind,
                        bytes: stored_bytes(&p.blobs),
                    });
                    numbered.push((listings.len() - 1) as u32);
                    unindexed.push(p);
                }
                // Damaged rather than unreachable, and no unreadable index file might name it.
                Err(e) if e.kind() == ErrorKind::Corrupt && unreadable_files == 0 => {
                    report.packs_damaged_deleted.push(id)
                }
                Err(_) => report.packs_unreadable.push(id),
            }
            Ok(())
        })?;
        report.packs_unindexed = self.unindexed.len();
        let fresh: Vec<PackState> = self
            .unindexed
            .iter()
            .map(|p| self.state(p.id, p.kind, stored_bytes(&p.blobs)))
            .collect();
        self.states.extend(fresh);
        self.states.sort_unstable_by_key(|s| s.id);
        Ok(())
    }

    /// Pack number → position in `states`, from the listing behind each pack number.
    fn slots(&self, numbered: &[u32]) -> Vec<u32> {
        numbered
            .iter()
            .map(|&li| {
                find(&self.states, &self.listings[li as usize].pack).map_or(u32::MAX, |s| s as u32)
            })
            .collect()
    }
}
