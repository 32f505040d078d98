//! Index files (which blob lives where) and the in-memory index built from them.
//! An in-memory entry is exactly 48 bytes: see `formats/` and the `index` bench.

use crate::codec::{Reader, derive_magic, put_u8, put_u16, put_u32};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::pack::{BlobKind, PackedBlob};

pub const INDEX_VERSION: u16 = 1;

pub fn index_magic() -> [u8; 8] {
    derive_magic("sitevault index")
}

/// One pack as an index file lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPack {
    pub id: Id,
    pub kind: BlobKind,
    pub blobs: Vec<PackedBlob>,
}

/// The decoded content of one index file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexFile {
    /// Index files this one replaces (written by compaction; readers ignore the listed ones).
    pub supersedes: Vec<Id>,
    pub packs: Vec<IndexPack>,
}

impl IndexFile {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&index_magic());
        put_u16(&mut out, INDEX_VERSION);
        put_u16(&mut out, 0);
        put_u32(&mut out, self.supersedes.len() as u32);
        for s in &self.supersedes {
            out.extend_from_slice(&s.0);
        }
        put_u32(&mut out, self.packs.len() as u32);
        for p in &self.packs {
            out.extend_from_slice(&p.id.0);
            put_u8(&mut out, p.kind as u8);
            put_u32(&mut out, p.blobs.len() as u32);
            for b in &p.blobs {
                out.extend_from_slice(&b.id.0);
                put_u32(&mut out, b.offset);
                put_u32(&mut out, b.stored_len);
                put_u32(&mut out, b.raw_len);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<IndexFile> {
        let mut r = Reader::new(bytes, "index file");
        if r.take(8)? != index_magic() {
            return Err(r.error("bad magic"));
        }
        let version = r.u16()?;
        if version != INDEX_VERSION {
            return Err(r.error(format!(
                "index version {version} is not supported; upgrade sitevault"
            )));
        }
        r.u16()?;
        let n = r.count(32)?;
        let supersedes = (0..n).map(|_| r.id()).collect::<Result<Vec<_>>>()?;
        let np = r.count(37)?;
        let mut packs = Vec::with_capacity(np);
        for _ in 0..np {
            let id = r.id()?;
            let kind = BlobKind::from_u8(r.u8()?).ok_or_else(|| r.error("unknown blob kind"))?;
            let nb = r.count(44)?;
            let mut blobs = Vec::with_capacity(nb);
            for _ in 0..nb {
                blobs.push(PackedBlob {
                    id: r.id()?,
                    offset: r.u32()?,
                    stored_len: r.u32()?,
                    raw_len: r.u32()?,
                });
            }
            packs.push(IndexPack { id, kind, blobs });
        }
        if !r.is_empty() {
            return Err(r.error("trailing bytes"));
        }
        Ok(IndexFile { supersedes, packs })
    }
}

/// One blob's location, 48 bytes in memory. `pack` indexes [`Index::packs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct IndexEntry {
    pub id: Id,
    pub pack: u32,
    pub offset: u32,
    pub stored_len: u32,
    pub raw_len: u32,
}

const _: () = assert!(std::mem::size_of::<IndexEntry>() == 48);

/// Where a blob can be read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: Id,
    pub kind: BlobKind,
    pub offset: u32,
    pub stored_len: u32,
    pub raw_len: u32,
}

/// All known blobs: entries sorted by id for binary search, no per-entry heap allocation.
#[derive(Debug, Default, Clone)]
pub struct Index {
    /// The index files as loaded, when they did not fit the memory budget (formats/ §7.4);
    /// what is added later (adopted packs) stays in memory beside it.
    disk: Option<std::sync::Arc<crate::disk_index::DiskIndex>>,
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
    pub fn with_packs(&self, packs: &[IndexPack]) -> Index {
        let mut i = self.clone();
        for p in packs {
            i.add_pack(p.id, p.kind, &p.blobs);
        }
        i.finish();
        i
    }

    /// An index whose loaded part lives on disk.
    pub fn on_disk(disk: crate::disk_index::DiskIndex) -> Index {
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
    pub fn check_io(&self) -> Result<()> {
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
    pub fn locate(&self, id: &Id) -> Option<(u64, BlobLocation)> {
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
    pub fn for_each_entry(&self, f: &mut dyn FnMut(u64, u32, &PackedBlob)) -> Result<()> {
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
    pub fn for_each_pack(&self, f: &mut dyn FnMut(&Id)) -> Result<()> {
        if let Some(d) = &self.disk {
            d.for_each_pack(f)?;
        }
        self.packs.iter().for_each(|(p, _)| f(p));
        Ok(())
    }
}

/// Reject index content that would make later reads go wrong.
pub(crate) fn check_blob_kind(kind: BlobKind, want: BlobKind, id: &Id) -> Result<()> {
    if kind == want {
        Ok(())
    } else {
        Err(Error::corrupt(
            format!("blob {id}"),
            format!("indexed as {kind:?}, expected {want:?}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_pack() -> impl Strategy<Value = IndexPack> {
        (
            any::<[u8; 32]>(),
            any::<bool>(),
            proptest::collection::vec(
                (any::<[u8; 32]>(), any::<u32>(), any::<u32>(), any::<u32>()),
                0..10,
            ),
        )
            .prop_map(|(id, tree, blobs)| IndexPack {
                id: Id(id),
                kind: if tree { BlobKind::Tree } else { BlobKind::Data },
                blobs: blobs
                    .into_iter()
                    .map(|(b, offset, stored_len, raw_len)| PackedBlob {
                        id: Id(b),
                        offset,
                        stored_len,
                        raw_len,
                    })
                    .collect(),
            })
    }

    proptest! {
        #[test]
        fn index_file_round_trips(packs in proptest::collection::vec(arb_pack(), 0..6), sup in proptest::collection::vec(any::<[u8; 32]>(), 0..3)) {
            let f = IndexFile { supersedes: sup.into_iter().map(Id).collect(), packs };
            prop_assert_eq!(IndexFile::decode(&f.encode()).unwrap(), f);
        }

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
