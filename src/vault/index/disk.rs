//! The index on disk, for vaults whose index would not fit the memory budget: entries sorted by
//! id in a local working file (formats/ §7.4), found through a fan-out table in memory, one
//! positioned read per lookup. Built by partitioning entries by their leading id bits into
//! files small enough to sort in memory, so building it is bounded by the budget too.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::pack::{BlobKind, PackedBlob};
use crate::store::spool::{INDEX_PREFIX, WorkFile};
use crate::vault::index::BlobLocation;

/// Bytes per entry on disk: id (32), pack number, offset, stored_len, raw_len (u32 LE each).
pub(crate) const ENTRY_LEN: usize = 48;
/// Bytes per pack on disk: id (32), kind (1).
pub(crate) const PACK_LEN: usize = 33;
/// Lookups read one fan-out bucket; about this many entries each (1.5 KiB).
const ENTRIES_PER_BUCKET: u64 = 32;
/// The fan-out table may always take this much, however small the budget.
const MIN_TABLE: u64 = 256 << 10;
/// A working file and its open handle (for positioned reads).
struct TempFile {
    path: WorkFile,
    file: File,
}

impl TempFile {
    fn create(dir: &Path, suffix: &str) -> Result<TempFile> {
        let (path, file) = WorkFile::create(dir, INDEX_PREFIX, suffix, true)?;
        Ok(TempFile { path, file })
    }

    fn io(&self, e: std::io::Error) -> Error {
        self.path.error(e)
    }

    fn writer(&self) -> Result<BufWriter<File>> {
        let f = self.file.try_clone().map_err(|e| self.io(e))?;
        Ok(BufWriter::with_capacity(16 << 10, f))
    }

    fn read_at(&self, buf: &mut [u8], at: u64) -> std::io::Result<()> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, at)
        }
        #[cfg(windows)]
        {
            let mut done = 0;
            while done < buf.len() {
                let n = std::os::windows::fs::FileExt::seek_read(
                    &self.file,
                    &mut buf[done..],
                    at + done as u64,
                )?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                done += n;
            }
            Ok(())
        }
    }
}

fn put_entry(out: &mut [u8], id: &Id, pack: u32, b: &PackedBlob) {
    out[..32].copy_from_slice(&id.0);
    out[32..36].copy_from_slice(&pack.to_le_bytes());
    out[36..40].copy_from_slice(&b.offset.to_le_bytes());
    out[40..44].copy_from_slice(&b.stored_len.to_le_bytes());
    out[44..48].copy_from_slice(&b.raw_len.to_le_bytes());
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn top_bits(id: &[u8], bits: u32) -> usize {
    if bits == 0 {
        return 0;
    }
    let mut first = [0u8; 8];
    first.copy_from_slice(&id[..8]);
    (u64::from_be_bytes(first) >> (64 - bits)) as usize
}

/// Builds a [`DiskIndex`] from index files in reader order (§7.2), in bounded memory.
pub(crate) struct DiskIndexBuilder {
    dir: PathBuf,
    budget: u64,
    /// Entries go to `1 << part_bits` partitions by their leading id bits.
    part_bits: u32,
    parts: Vec<(TempFile, BufWriter<File>)>,
    packs: TempFile,
    packs_out: BufWriter<File>,
    pack_count: u32,
    entries: u64,
    /// Each index file read, with the pack numbers `[from, to)` its packs got.
    files: Vec<(Id, u32, u32)>,
    superseded: HashSet<Id>,
}

impl DiskIndexBuilder {
    /// `expected`: about how many entries will come (more is fine: partitions grow).
    pub fn new(dir: &Path, budget: u64, expected: u64) -> Result<DiskIndexBuilder> {
        // Each partition is sorted in memory: aim for a quarter of the budget per partition.
        let per_part = (budget / 4).max(1 << 20) / ENTRY_LEN as u64;
        let want = expected.div_ceil(per_part.max(1)).max(1);
        let part_bits = want.next_power_of_two().trailing_zeros().min(12);
        let mut parts = Vec::new();
        for i in 0..1usize << part_bits {
            let t = TempFile::create(dir, &format!("-part{i}"))?;
            let w = t.writer()?;
            parts.push((t, w));
        }
        let packs = TempFile::create(dir, "-packs")?;
        let packs_out = packs.writer()?;
        Ok(DiskIndexBuilder {
            dir: dir.to_path_buf(),
            budget,
            part_bits,
            parts,
            packs,
            packs_out,
            pack_count: 0,
            entries: 0,
            files: Vec::new(),
            superseded: HashSet::new(),
        })
    }

    /// Add one index file (files in ascending id order, as readers take them).
    #[cfg(test)]
    pub(crate) fn add_file(
        &mut self,
        id: Id,
        file: &crate::format::index::IndexFile,
    ) -> Result<()> {
        let from = self.pack_count;
        for p in &file.packs {
            self.add_pack(p.id, p.kind, &p.blobs)?;
        }
        self.end_file(id, from, &file.supersedes);
        Ok(())
    }

    /// Packs numbered `from..` (up to now) came from index file `id`, which supersedes
    /// `supersedes`: for a caller that adds a file's packs one by one (or only some of them).
    pub(crate) fn end_file(&mut self, id: Id, from: u32, supersedes: &[Id]) {
        self.files.push((id, from, self.pack_count));
        self.superseded.extend(supersedes.iter().copied());
    }

    /// Packs added so far (the next pack's number).
    pub fn pack_count(&self) -> u32 {
        self.pack_count
    }

    /// Add one pack's blobs under the next pack number.
    pub fn add_pack(&mut self, id: Id, kind: BlobKind, blobs: &[PackedBlob]) -> Result<()> {
        let n = self.pack_count;
        self.pack_count = n
            .checked_add(1)
            .ok_or_else(|| Error::InvalidInput("more than 4 billion packs".into()))?;
        let mut rec = [0u8; PACK_LEN];
        rec[..32].copy_from_slice(&id.0);
        rec[32] = kind as u8;
        self.packs_out
            .write_all(&rec)
            .map_err(|e| self.packs.io(e))?;
        let mut buf = [0u8; ENTRY_LEN];
        for b in blobs {
            put_entry(&mut buf, &b.id, n, b);
            let (t, w) = &mut self.parts[top_bits(&b.id.0, self.part_bits)];
            w.write_all(&buf).map_err(|e| t.io(e))?;
        }
        self.entries += blobs.len() as u64;
        Ok(())
    }

    /// Sort each partition into the final file; entries of superseded index files are left
    /// out, and of a blob listed twice the first seen is kept (§7.2).
    pub fn finish(self) -> Result<DiskIndex> {
        let DiskIndexBuilder {
            dir,
            budget,
            parts,
            packs,
            mut packs_out,
            pack_count,
            entries,
            files,
            superseded,
            ..
        } = self;
        packs_out.flush().map_err(|e| packs.io(e))?;
        drop(packs_out);
        // Pack-number ranges of superseded files, sorted, to drop their entries.
        let mut dropped: Vec<(u32, u32)> = files
            .iter()
            .filter(|(id, ..)| superseded.contains(id))
            .map(|&(_, a, b)| (a, b))
            .collect();
        dropped.sort_unstable();
        let is_dropped = |pack: u32| {
            let i = dropped.partition_point(|&(a, _)| a <= pack);
            i > 0 && pack < dropped[i - 1].1
        };
        // The fan-out table: about ENTRIES_PER_BUCKET per bucket, at most an eighth of the
        // budget but allowed 256 KiB whatever it is (a tiny budget must not make every lookup
        // read the whole file).
        let table_cap = (budget / 8).max(MIN_TABLE);
        let mut bits = 0;
        while bits < 28
            && (entries >> (bits + 1)) >= ENTRIES_PER_BUCKET
            && (4u64 << (bits + 1)) <= table_cap
        {
            bits += 1;
        }
        let mut buckets = vec![0u32; (1usize << bits) + 1];
        let out = TempFile::create(&dir, "")?;
        let mut w = out.writer()?;
        let mut kept: u64 = 0;
        for (t, mut pw) in parts {
            pw.flush().map_err(|e| t.io(e))?;
            drop(pw);
            let mut bytes = std::fs::read(t.path.path()).map_err(|e| t.io(e))?;
            drop(t);
            // Sorted in place as 48-byte records. Of equal ids the first seen comes first:
            // pack numbers follow reader order and offsets record order (the same order as the
            // in-memory index); ids rarely tie, so the numbers are compared only then.
            let (recs, _) = bytes.as_chunks_mut::<ENTRY_LEN>();
            recs.sort_unstable_by(|a, b| {
                a[..32].cmp(&b[..32]).then_with(|| {
                    (u32_at(a, 32), u32_at(a, 36)).cmp(&(u32_at(b, 32), u32_at(b, 36)))
                })
            });
            let mut last: Option<&[u8]> = None;
            for r in recs.iter() {
                if is_dropped(u32_at(r, 32)) || last.is_some_and(|l| l[..32] == r[..32]) {
                    continue;
                }
                last = Some(r);
                buckets[top_bits(r, bits) + 1] += 1;
                w.write_all(r).map_err(|e| out.io(e))?;
                kept += 1;
            }
        }
        w.flush().map_err(|e| out.io(e))?;
        drop(w);
        if kept > u32::MAX as u64 {
            return Err(Error::InvalidInput(
                "more than 4 billion blobs in one index".into(),
            ));
        }
        for b in 1..buckets.len() {
            buckets[b] += buckets[b - 1];
        }
        Ok(DiskIndex {
            entries: out,
            packs,
            len: kept,
            pack_count,
            bits,
            buckets,
            failed: Mutex::new(None),
        })
    }
}

/// A sorted index in a local working file; lookups read one bucket.
pub struct DiskIndex {
    entries: TempFile,
    packs: TempFile,
    len: u64,
    pack_count: u32,
    bits: u32,
    buckets: Vec<u32>,
    /// The first read error: lookups cannot fail, so a failed one answers "not found" (the
    /// blob is stored again, which is safe) and the backup reports this before it commits.
    failed: Mutex<Option<String>>,
}

impl std::fmt::Debug for DiskIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskIndex")
            .field("path", &self.entries.path)
            .field("len", &self.len)
            .field("packs", &self.pack_count)
            .finish()
    }
}

impl DiskIndex {
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes kept in memory (the fan-out table).
    pub fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * 4
    }

    fn fail(&self, what: String) {
        let mut f = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        f.get_or_insert(what);
    }

    /// The first lookup that could not read the working file, as an error.
    pub fn check(&self) -> Result<()> {
        match &*self.failed.lock().unwrap_or_else(|p| p.into_inner()) {
            None => Ok(()),
            Some(what) => Err(Error::Store {
                object: self.entries.path.path().display().to_string(),
                detail: format!("the index working file could not be read: {what}"),
            }),
        }
    }

    /// The entry's position in the sorted file (0..len), its place in a per-blob bitmap.
    pub fn position(&self, id: &Id) -> Option<u64> {
        self.find(id).map(|(pos, ..)| pos)
    }

    /// Every entry in id order with its position and pack number, read in blocks: a pass
    /// over the whole index in the memory of one block.
    pub(crate) fn for_each_entry(&self, f: &mut dyn FnMut(u64, u32, &PackedBlob)) -> Result<()> {
        const BLOCK: u64 = 4096;
        let mut buf = vec![0u8; BLOCK as usize * ENTRY_LEN];
        let mut pos = 0;
        while pos < self.len {
            let k = (self.len - pos).min(BLOCK);
            let chunk = &mut buf[..k as usize * ENTRY_LEN];
            self.entries
                .read_at(chunk, pos * ENTRY_LEN as u64)
                .map_err(|e| self.entries.io(e))?;
            for (i, r) in chunk.chunks_exact(ENTRY_LEN).enumerate() {
                let mut id = [0u8; 32];
                id.copy_from_slice(&r[..32]);
                let b = PackedBlob {
                    id: Id(id),
                    offset: u32_at(r, 36),
                    stored_len: u32_at(r, 40),
                    raw_len: u32_at(r, 44),
                };
                f(pos + i as u64, u32_at(r, 32), &b);
            }
            pos += k;
        }
        Ok(())
    }

    /// (position, pack number, offset, stored_len, raw_len) of `id`.
    fn find(&self, id: &Id) -> Option<(u64, u32, u32, u32, u32)> {
        let b = top_bits(&id.0, self.bits);
        let (lo, hi) = (self.buckets[b] as u64, self.buckets[b + 1] as u64);
        if lo == hi {
            return None;
        }
        let mut buf = vec![0u8; ((hi - lo) as usize) * ENTRY_LEN];
        if let Err(e) = self.entries.read_at(&mut buf, lo * ENTRY_LEN as u64) {
            self.fail(e.to_string());
            return None;
        }
        let n = (hi - lo) as usize;
        let (mut a, mut z) = (0, n);
        while a < z {
            let m = (a + z) / 2;
            let r = &buf[m * ENTRY_LEN..(m + 1) * ENTRY_LEN];
            match r[..32].cmp(&id.0[..]) {
                std::cmp::Ordering::Less => a = m + 1,
                std::cmp::Ordering::Greater => z = m,
                std::cmp::Ordering::Equal => {
                    return Some((
                        lo + m as u64,
                        u32_at(r, 32),
                        u32_at(r, 36),
                        u32_at(r, 40),
                        u32_at(r, 44),
                    ));
                }
            }
        }
        None
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.find(id).is_some()
    }

    fn pack(&self, n: u32) -> Option<(Id, BlobKind)> {
        let mut rec = [0u8; PACK_LEN];
        if let Err(e) = self.packs.read_at(&mut rec, n as u64 * PACK_LEN as u64) {
            self.fail(e.to_string());
            return None;
        }
        let mut id = [0u8; 32];
        id.copy_from_slice(&rec[..32]);
        Some((Id(id), BlobKind::from_u8(rec[32])?))
    }

    pub fn get(&self, id: &Id) -> Option<BlobLocation> {
        self.locate(id).map(|(_, l)| l)
    }

    /// [`DiskIndex::get`] with the entry's position, in one read of its bucket.
    pub(crate) fn locate(&self, id: &Id) -> Option<(u64, BlobLocation)> {
        let (pos, pack, offset, stored_len, raw_len) = self.find(id)?;
        let (pack, kind) = self.pack(pack)?;
        Some((
            pos,
            BlobLocation {
                pack,
                kind,
                offset,
                stored_len,
                raw_len,
            },
        ))
    }

    /// Packs numbered (every pack added, kept or not).
    pub fn pack_count(&self) -> u32 {
        self.pack_count
    }

    /// Every pack id, in pack-number order, read in blocks.
    pub(crate) fn for_each_pack(&self, f: &mut dyn FnMut(&Id)) -> Result<()> {
        const BLOCK: u32 = 4096;
        let mut buf = vec![0u8; BLOCK as usize * PACK_LEN];
        let mut n = 0;
        while n < self.pack_count {
            let k = (self.pack_count - n).min(BLOCK) as usize;
            let chunk = &mut buf[..k * PACK_LEN];
            self.packs
                .read_at(chunk, n as u64 * PACK_LEN as u64)
                .map_err(|e| self.packs.io(e))?;
            for rec in chunk.chunks_exact(PACK_LEN) {
                let mut id = [0u8; 32];
                id.copy_from_slice(&rec[..32]);
                f(&Id(id));
            }
            n += k as u32;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::index::{IndexFile, IndexPack};
    use crate::vault::index::Index;
    use proptest::prelude::*;

    fn arb_files() -> impl Strategy<Value = Vec<IndexFile>> {
        // Few distinct ids so the same blob lands in several packs and files.
        let blob = (0u8..40, any::<u32>(), any::<u32>(), any::<u32>()).prop_map(
            |(i, offset, stored_len, raw_len)| PackedBlob {
                id: Id(*blake3::hash(&[i]).as_bytes()),
                offset,
                stored_len,
                raw_len,
            },
        );
        let pack = (
            any::<[u8; 32]>(),
            any::<bool>(),
            proptest::collection::vec(blob, 0..8),
        )
            .prop_map(|(id, tree, blobs)| IndexPack {
                id: Id(id),
                kind: if tree { BlobKind::Tree } else { BlobKind::Data },
                blobs,
            });
        proptest::collection::vec(
            (proptest::collection::vec(pack, 0..4), any::<bool>()).prop_map(|(packs, _)| {
                IndexFile {
                    supersedes: vec![],
                    packs,
                }
            }),
            0..6,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn the_disk_index_answers_as_the_memory_index(files in arb_files(), sup in any::<proptest::sample::Index>(), budget in 0u64..4096) {
            let dir = tempfile::tempdir().unwrap();
            let ids: Vec<Id> = (0..files.len()).map(|i| Id([i as u8 + 1; 32])).collect();
            // The last file supersedes one of the others, as prune's does.
            let mut files = files;
            let superseded = (files.len() > 1).then(|| sup.index(files.len() - 1));
            if let Some(s) = superseded {
                let last = files.len() - 1;
                files[last].supersedes.push(ids[s]);
            }
            let mut mem = Index::new();
            let mut b = DiskIndexBuilder::new(dir.path(), budget, 3).unwrap();
            for (i, f) in files.iter().enumerate() {
                b.add_file(ids[i], f).unwrap();
                if Some(i) != superseded {
                    for p in &f.packs {
                        mem.add_pack(p.id, p.kind, &p.blobs);
                    }
                }
            }
            mem.finish();
            let disk = b.finish().unwrap();
            prop_assert_eq!(disk.len() as usize, mem.len());
            for i in 0..50u8 {
                let id = Id(*blake3::hash(&[i]).as_bytes());
                // Both keep the first location seen.
                prop_assert_eq!(disk.get(&id), mem.get(&id));
            }
            disk.check().unwrap();
            let mut packs = 0;
            disk.for_each_pack(&mut |_| packs += 1).unwrap();
            prop_assert_eq!(packs, files.iter().map(|f| f.packs.len()).sum::<usize>());
            drop(disk);
            prop_assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "working files removed");
        }
    }

    #[test]
    fn many_partitions_and_buckets_find_every_blob() {
        let dir = tempfile::tempdir().unwrap();
        // A 1 MiB budget with 100,000 entries: 32 partitions and a real fan-out table.
        let mut b = DiskIndexBuilder::new(dir.path(), 1 << 20, 100_000).unwrap();
        assert!(b.parts.len() > 1);
        let blobs: Vec<PackedBlob> = (0..100_000u32)
            .map(|i| PackedBlob {
                id: Id(*blake3::hash(&i.to_le_bytes()).as_bytes()),
                offset: i,
                stored_len: i ^ 7,
                raw_len: i + 1,
            })
            .collect();
        for (n, chunk) in blobs.chunks(1000).enumerate() {
            b.add_pack(Id([n as u8; 32]), BlobKind::Data, chunk)
                .unwrap();
        }
        let disk = b.finish().unwrap();
        assert!(disk.bits > 4, "fan-out bits {}", disk.bits);
        assert!(disk.heap_bytes() <= (1 << 20) / 8 + 8);
        for (i, bl) in blobs.iter().enumerate() {
            let loc = disk.get(&bl.id).unwrap();
            assert_eq!(
                (loc.pack, loc.offset, loc.stored_len, loc.raw_len),
                (
                    Id([(i / 1000) as u8; 32]),
                    bl.offset,
                    bl.stored_len,
                    bl.raw_len
                )
            );
        }
        assert!(!disk.contains(&Id([0xee; 32])));
    }

    #[test]
    fn a_tiny_budget_still_gets_a_fan_out_table() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = DiskIndexBuilder::new(dir.path(), 1024, 50_000).unwrap();
        let blobs: Vec<PackedBlob> = (0..50_000u32)
            .map(|i| PackedBlob {
                id: Id(*blake3::hash(&i.to_le_bytes()).as_bytes()),
                offset: i,
                stored_len: 1,
                raw_len: 1,
            })
            .collect();
        b.add_pack(Id([1; 32]), BlobKind::Data, &blobs).unwrap();
        let disk = b.finish().unwrap();
        // 50,000 entries at about 32 a bucket: 1,024 buckets or more, not one.
        assert!(disk.bits >= 10, "fan-out bits {}", disk.bits);
        assert!(disk.contains(&blobs[49_999].id));
    }
}
