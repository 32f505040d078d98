//! Index files and pack headers: writing, reading (through the per-host cache), loading them into one index, and adopting packs no index lists.

use std::collections::HashSet;

use bytes::Bytes;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::index::{IndexFile, IndexPack};
use crate::format::pack::{self};
use crate::vault::index::Index;

use super::objects::{id_from_name, object_name};
use super::{DATA, INDEX, Vault, pack_name};

/// The outcome of reading every index file.
#[derive(Debug, Default)]
pub struct IndexScan {
    /// Every index file listed, ascending.
    pub all: Vec<Id>,
    pub readable: Vec<(Id, IndexFile)>,
    pub unreadable: Vec<(Id, Error)>,
    /// Ids named in the `supersedes` lists of readable files: readers ignore those files.
    pub superseded: HashSet<Id>,
}

impl IndexScan {
    /// The packs the readable, non-superseded files list; a pack listed twice is taken from
    /// the first file (ascending id), as readers do.
    pub fn packs(&self) -> Vec<IndexPack> {
        self.clone_readable().into_packs()
    }

    /// [`IndexScan::packs`], taking them out of the scan instead of copying them (the index
    /// is large: one copy of it is enough).
    pub(crate) fn into_packs(self) -> Vec<IndexPack> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (id, f) in self.readable {
            if self.superseded.contains(&id) {
                continue;
            }
            out.extend(f.packs.into_iter().filter(|p| seen.insert(p.id)));
        }
        out
    }

    /// The readable files readers use (superseded ones left out), copied.
    fn clone_readable(&self) -> IndexScan {
        IndexScan {
            readable: self
                .readable
                .iter()
                .filter(|(id, _)| !self.superseded.contains(id))
                .cloned()
                .collect(),
            ..IndexScan::default()
        }
    }
}

impl Vault {
    /// An index file for [`Vault::load_index`]: from the per-host cache when it holds it
    /// intact, else from the store (and then cached).
    pub(super) fn load_index_file(&self, id: &Id) -> Result<IndexFile> {
        let name = object_name(INDEX, id);
        let cached = self.index_cache.as_ref().and_then(|c| c.get(id));
        let bytes = match cached {
            Some(b) => Bytes::from(b),
            None => {
                let b = self
                    .fetch_verified(&name, id)?
                    .ok_or_else(|| Error::corrupt(&name, "object is missing"))?;
                if let Some(c) = &self.index_cache {
                    c.put(id, &b);
                }
                b
            }
        };
        IndexFile::decode(&self.sealer.open(&bytes, None, &name)?)
    }

    pub fn save_index(&self, file: &IndexFile) -> Result<Id> {
        self.save_object(INDEX, &file.encode())
    }

    /// Read every index file into one index: in memory, or on disk when the vault has an
    /// index budget the index would exceed. Files are fetched a batch at a time (in parallel)
    /// and added in reader order (§7.2), so only one batch is held decoded.
    pub fn load_index(&self) -> Result<Index> {
        const BATCH: usize = 32;
        let mut ids = self.list_ids(INDEX)?;
        ids.sort();
        if let Some(c) = &self.index_cache {
            c.retain(&ids.iter().map(|(id, _)| *id).collect());
        }
        // Index files store about 33 bytes per blob (formats/ §7.3); under-estimating only
        // makes the disk partitions larger.
        // (Sizes come from a listing: saturate rather than trust them.)
        let expected = ids
            .iter()
            .fold(0u64, |sum, (_, size)| sum.saturating_add(*size))
            / 30;
        let mut builder = self.index_builder(expected)?;
        for batch in ids.chunks(BATCH) {
            let files: Vec<(Id, IndexFile)> = batch
                .par_iter()
                .map(|(id, _)| Ok((*id, self.load_index_file(id)?)))
                .collect::<Result<_>>()?;
            for (id, f) in files {
                builder.add_file(id, &f)?;
            }
        }
        builder.finish()
    }

    /// A builder for an index of about `expected` blobs: on disk in the spool folder when it
    /// would pass the vault's index budget.
    pub(crate) fn index_builder(
        &self,
        expected: u64,
    ) -> Result<crate::vault::index::build::IndexBuilder> {
        crate::vault::index::build::IndexBuilder::new(
            self.spool_dir.as_deref(),
            self.index_budget,
            expected,
        )
    }

    /// Read every index file, the unreadable ones apart, without stopping at the first damage
    /// (prune and check must see the whole picture). Files are in ascending id order.
    pub fn scan_index(&self) -> Result<IndexScan> {
        let mut ids = self.list_ids(INDEX)?;
        ids.sort();
        let loaded: Vec<(Id, Result<IndexFile>)> = ids
            .par_iter()
            .map(|(id, _)| (*id, self.read_index_file(id)))
            .collect();
        let mut scan = IndexScan::default();
        for (id, r) in loaded {
            scan.all.push(id);
            match r {
                Ok(f) => scan.readable.push((id, f)),
                Err(e) => scan.unreadable.push((id, e)),
            }
        }
        scan.superseded = scan
            .readable
            .iter()
            .flat_map(|(_, f)| f.supersedes.iter().copied())
            .collect();
        Ok(scan)
    }

    /// One index file from the vault itself (not the cache), checked and decoded; one that
    /// vanished since it was listed is reported as damaged.
    pub(crate) fn read_index_file(&self, id: &Id) -> Result<IndexFile> {
        let name = || format!("{INDEX}/{}", id.to_hex());
        match self.load_object_if_present(INDEX, id)? {
            Some(b) => IndexFile::decode(&b).map_err(|e| Error::corrupt(name(), e.to_string())),
            None => Err(Error::corrupt(name(), "vanished")),
        }
    }

    /// Read a pack's own header (from its tail): used to index packs a killed backup left behind.
    pub(crate) fn read_pack_header(&self, id: &Id, size: u64) -> Result<IndexPack> {
        let name = pack_name(id);
        let tail_len = size.min(64 * 1024);
        let mut tail = self.store.get_range_exact(&name, size - tail_len..size)?;
        let hlen = pack::header_len_from_tail(&tail)? as u64;
        if hlen + 4 > tail_len {
            if hlen + 4 + pack::PACK_PREAMBLE_LEN as u64 > size {
                return Err(Error::corrupt(&name, "header length exceeds the pack"));
            }
            tail = self.store.get_range_exact(&name, size - hlen - 4..size)?;
        }
        let pre = self
            .store
            .get_range_exact(&name, 0..pack::PACK_PREAMBLE_LEN as u64)?;
        let kind = pack::parse_preamble(&pre)?;
        let blobs = pack::parse_header(&self.sealer, &tail, size)?;
        Ok(IndexPack {
            id: *id,
            kind,
            blobs,
        })
    }

    /// Read the headers of `packs` (id, stored size) in parallel, a batch at a time, and hand
    /// each result to `f` in order: only one batch of headers is held at once.
    pub(crate) fn each_pack_header(
        &self,
        packs: &[(Id, u64)],
        f: &mut dyn FnMut(Id, Result<IndexPack>) -> Result<()>,
    ) -> Result<()> {
        const BATCH: usize = 256;
        for batch in packs.chunks(BATCH) {
            let headers: Vec<(Id, Result<IndexPack>)> = batch
                .par_iter()
                .map(|(id, size)| (*id, self.read_pack_header(id, *size)))
                .collect();
            for (id, h) in headers {
                f(id, h)?;
            }
        }
        Ok(())
    }

    /// Index packs that exist in storage but in no index file (left by an interrupted backup),
    /// so their blobs are reused instead of uploaded again. Returns how many were adopted.
    pub(crate) fn adopt_unindexed_packs(&self, index: &mut Index) -> Result<usize> {
        // The known packs by the first 8 bytes of their id, sorted (8 bytes a pack, 12 MB for
        // the 1.5 M packs of 100 TB), against a listing streamed one name at a time. Two ids
        // sharing 8 bytes would only make an orphan look known: it is then not reused.
        let head = |id: &Id| u64::from_le_bytes(id.0[..8].try_into().unwrap_or_default());
        let mut known: Vec<u64> = Vec::new();
        index.for_each_pack(&mut |id| known.push(head(id)))?;
        known.sort_unstable();
        let mut orphans = Vec::new();
        self.store.list_each(DATA, &mut |o| {
            if let Some(id) = id_from_name(&o.name)
                && known.binary_search(&head(&id)).is_err()
            {
                orphans.push((id, o.size));
            }
            Ok(())
        })?;
        if orphans.is_empty() {
            return Ok(0);
        }
        // A pack whose header cannot be read (damaged, or still being written by another
        // process) is skipped: it is not reused, and nothing refers to it yet.
        let mut packs: Vec<IndexPack> = Vec::new();
        self.each_pack_header(&orphans, &mut |_, h| {
            packs.extend(h.ok());
            Ok(())
        })?;
        for p in &packs {
            index.add_pack(p.id, p.kind, &p.blobs);
        }
        index.finish();
        let n = packs.len();
        if n > 0 {
            self.save_index(&IndexFile {
                supersedes: vec![],
                packs,
            })?;
        }
        Ok(n)
    }
}
