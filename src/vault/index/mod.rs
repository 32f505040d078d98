//! The index: every known blob's location, looked up by id. In memory (entries of 48 bytes,
//! see `formats/` and the `index` bench), or past the memory budget in an on-disk working file
//! (`disk`), built by `build`.

pub(crate) mod build;
pub(crate) mod disk;
mod location;

pub(crate) use location::check_blob_kind;
pub use location::{BlobLocation, IndexEntry};

use crate::error::Result;
use crate::format::id::Id;
use crate::format::index::IndexPack;
use crate::format::pack::{BlobKind, PackedBlob};

/// All known blobs: entries sorted by id for binary search, no per-entry heap allocation.
#[derive(Debug, Default, Clone)]
pub struct Index {
    /// The index files as loaded, when they did not fit the memory budget (formats/ §7.4);
    /// what is added later (adopted packs) stays in memory beside it.
    disk: Option<std::sync::Arc<disk::DiskIndex>>,
    packs: Vec<(Id, BlobKind)>,
    entries: Vec<IndexEntry>,
    /// `buckets[b]..buckets[b + 1]` are the entries whose id starts with the 16 bits `b`; it
    /// turns a lookup's ~20 cache misses over the whole array into one or two (256 KiB in all,
    /// independent of the number of blobs). Empty until [`Index::finish`].
    buckets: Vec<u32>,
}

const BUCKETS: usize = 1 << 16;

fn bucket(id: &Id) -> usize {
    u16::from_be_bytes([id.0[0], id.0[1]]) as usize
}

impl Index {
    pub fn new() -> Index {
        let mut i = Index::default();
        i.finish();
        i
    }

    /// Add a pack's blobs; call [`Index::finish`] before lookups.
    pub fn add_pack(&mut self, pack: Id, kind: BlobKind, blobs: &[PackedBlob]) {
        let pi = self.packs.len() as u32;
        self.packs.push((pack, kind));
        self.entries.extend(blobs.iter().map(|b| IndexEntry {
            id: b.id,
            pack: pi,
            offset: b.offset,
            stored_len: b.stored_len,
            raw_len: b.raw_len,
        }));
        self.buckets = Vec::new();
    }

    /// Room for `n` more blobs, so loading does not grow the array by doubling.
    /// (A hint from a listing: an impossible one is ignored, not fatal.)
    pub(crate) fn reserve(&mut self, n: usize) {
        let _ = self.entries.try_reserve_exact(n);
    }

    /// Packs added so far (the next pack's number).
    pub(crate) fn pack_count(&self) -> u32 {
        self.packs.len() as u32
    }

    /// Forget the blobs of packs numbered `from..to` (an index file found superseded after
    /// its packs were added); call [`Index::finish`] again after.
    pub(crate) fn drop_packs(&mut self, ranges: &[(u32, u32)]) {
        self.entries
            .retain(|e| !ranges.iter().any(|&(a, b)| (a..b).contains(&e.pack)));
        self.buckets = Vec::new();
    }

    /// Sort and drop duplicate blob entries (the same blob in two packs keeps the first seen).
    pub fn finish(&mut self) {
        if !self.buckets.is_empty() {
            return;
        }
        // In place (a stable sort would borrow half the array again): pack numbers follow
        // reader order and offsets record order, so (id, pack, offset) puts the first seen
        // location first (§7.2).
        self.entries
            .sort_unstable_by_key(|e| (e.id, e.pack, e.offset));
        self.entries.dedup_by(|a, b| a.id == b.id);
        // Growth left spare capacity; the 48-byte claim is about the array as kept.
        self.entries.shrink_to_fit();
        self.packs.shrink_to_fit();
        let mut buckets = vec![0u32; BUCKETS + 1];
        for e in &self.entries {
            buckets[bucket(&e.id) + 1] += 1;
        }
        for b in 1..=BUCKETS {
            buckets[b] += buckets[b - 1];
        }
        self.buckets = buckets;
    }

    /// This index with `packs` added (an on-disk part is shared, not copied).
    pub(crate) fn with_packs(&self, packs: &[IndexPack]) -> Index {
        let mut i = self.clone();
        for p in packs {
            i.add_pack(p.id, p.kind, &p.blobs);
        }
        i.finish();
        i
    }

    /// An index whose loaded part lives on disk.
    pub fn on_disk(disk: disk::DiskIndex) -> Index {
        let mut i = Index::new();
        i.disk = Some(std::sync::Arc::new(disk));
        i
    }

    /// Whether the loaded part lives on disk.
    pub fn is_on_disk(&self) -> bool {
        self.disk.is_some()
    }

    /// Heap bytes the index keeps (entries, packs, fan-out tables).
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<IndexEntry>()
            + self.packs.capacity() * std::mem::size_of::<(Id, BlobKind)>()
            + self.buckets.capacity() * 4
            + self.disk.as_ref().map_or(0, |d| d.heap_bytes())
    }

    /// Fails when a lookup could not read the on-disk part (it answered "not found").
    pub(crate) fn check_io(&self) -> Result<()> {
        self.disk.as_ref().map_or(Ok(()), |d| d.check())
    }

    /// Blobs indexed (a blob both on disk and added later counts twice).
    pub fn len(&self) -> usize {
        self.entries.len() + self.disk.as_ref().map_or(0, |d| d.len() as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.find(id).is_some() || self.disk.as_ref().is_some_and(|d| d.contains(id))
    }

    /// The place of `id` in `entries` (the in-memory part only).
    fn find(&self, id: &Id) -> Option<usize> {
        assert!(
            !self.buckets.is_empty(),
            "Index::finish must run before lookups"
        );
        let b = bucket(id);
        let start = self.buckets[b] as usize;
        let slice = &self.entries[start..self.buckets[b + 1] as usize];
        slice
            .binary_search_by(|e| e.id.cmp(id))
            .ok()
            .map(|i| start + i)
    }

    pub fn get(&self, id: &Id) -> Option<BlobLocation> {
        self.locate(id).map(|(_, l)| l)
    }

    /// [`Index::get`] with the entry's [`Index::position`], in one lookup.
    pub(crate) fn locate(&self, id: &Id) -> Option<(u64, BlobLocation)> {
        let Some(at) = self.find(id) else {
            return self.disk.as_ref().and_then(|d| d.locate(id));
        };
        let e = &self.entries[at];
        let (pack, kind) = self.packs[e.pack as usize];
        Some((
            self.disk_len() + at as u64,
            BlobLocation {
                pack,
                kind,
                offset: e.offset,
                stored_len: e.stored_len,
                raw_len: e.raw_len,
            },
        ))
    }

    /// Positions run `0..positions()`: one per entry, so a bitmap of this many bits can mark
    /// blobs (prune's used set: one bit a blob).
    pub fn positions(&self) -> u64 {
        self.disk_len() + self.entries.len() as u64
    }

    fn disk_len(&self) -> u64 {
        self.disk.as_ref().map_or(0, |d| d.len())
    }

    /// Where `id`'s entry is in `0..positions()` (the one [`Index::get`] answers from).
    pub fn position(&self, id: &Id) -> Option<u64> {
        if let Some(at) = self.find(id) {
            return Some(self.disk_len() + at as u64);
        }
        self.disk.as_ref().and_then(|d| d.position(id))
    }

    /// Every entry with its position and pack number (packs numbered in the order they were
    /// added, the on-disk part's first). On disk the entries are read in blocks.
    pub(crate) fn for_each_entry(&self, f: &mut dyn FnMut(u64, u32, &PackedBlob)) -> Result<()> {
        let (base, packs) = match &self.disk {
            Some(d) => {
                d.for_each_entry(f)?;
                (d.len(), d.pack_count())
            }
            None => (0, 0),
        };
        for (i, e) in self.entries.iter().enumerate() {
            let b = PackedBlob {
                id: e.id,
                offset: e.offset,
                stored_len: e.stored_len,
                raw_len: e.raw_len,
            };
            f(base + i as u64, packs + e.pack, &b);
        }
        Ok(())
    }

    /// Every pack the index names (on disk ones read in blocks).
    pub(crate) fn for_each_pack(&self, f: &mut dyn FnMut(&Id)) -> Result<()> {
        if let Some(d) = &self.disk {
            d.for_each_pack(f)?;
        }
        self.packs.iter().for_each(|(p, _)| f(p));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::index::tests::arb_pack;
    use proptest::prelude::*;

    proptest! {

        #[test]
        fn every_indexed_blob_is_found(packs in proptest::collection::vec(arb_pack(), 1..6)) {
            let mut idx = Index::new();
            for p in &packs { idx.add_pack(p.id, p.kind, &p.blobs); }
            idx.finish();
            for p in &packs {
                for b in &p.blobs {
                    let loc = idx.get(&b.id).unwrap();
                    // A blob listed twice resolves to one of its places.
                    prop_assert!(packs.iter().any(|q| q.id == loc.pack && q.blobs.iter().any(|x| x.id == b.id && x.offset == loc.offset)));
                }
            }
            // And an id that was never added is not found.
            let absent = Id(*blake3::hash(b"absent").as_bytes());
            prop_assert!(!idx.contains(&absent));
        }
    }
}
