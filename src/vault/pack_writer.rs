//! The pack writer: sealed blobs gathered into one pack (formats/ §6), in memory or in a
//! spool file, so an open pack costs no memory.

use crate::error::{Error, Result};
use crate::format::crypto::{NONCE_LEN, Sealer, random_array};
use crate::format::id::Id;
use crate::format::pack::{BlobKind, PACK_PREAMBLE_LEN, PackedBlob, preamble, sealed_tail};
use crate::store::spool::{PACK_PREFIX, WorkFile};

/// Accumulates sealed blobs of one kind until the pack is full: in memory, or spooled to a
/// file so an open pack costs no memory (a backup keeps three packs open and stores others
/// while they fill).
pub struct PackWriter {
    kind: BlobKind,
    sink: Sink,
    blobs: Vec<PackedBlob>,
}

enum Sink {
    Mem(Vec<u8>),
    Spool(Box<Spool>),
}

/// A pack being written to a file, hashed as it goes so finishing it never reads it back.
struct Spool {
    file: std::io::BufWriter<std::fs::File>,
    /// Removes the file unless the finished pack takes it over.
    path: WorkFile,
    len: usize,
    hasher: blake3::Hasher,
    /// The first write error: `add` cannot fail, so `finish` reports it.
    failed: Option<std::io::Error>,
}

/// The bytes of a finished pack.
pub enum PackBody {
    Mem(Vec<u8>),
    /// In a spool file, which is removed when this is dropped.
    Spooled {
        file: WorkFile,
        len: u64,
    },
}

impl PackBody {
    pub fn len(&self) -> u64 {
        match self {
            PackBody::Mem(b) => b.len() as u64,
            PackBody::Spooled { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes in memory (reads a spooled pack back).
    pub fn into_bytes(self) -> Result<Vec<u8>> {
        match self {
            PackBody::Mem(b) => Ok(b),
            PackBody::Spooled { file, .. } => {
                std::fs::read(file.path()).map_err(|e| Error::io(file.path(), e))
            }
        }
    }
}

impl PackWriter {
    pub fn new(kind: BlobKind) -> PackWriter {
        Self::with_capacity(kind, 0)
    }

    /// A writer whose buffer never reallocates below `capacity` bytes: growing a 32 MiB pack by
    /// doubling copied it repeatedly and briefly held twice its size.
    pub fn with_capacity(kind: BlobKind, capacity: usize) -> PackWriter {
        let mut buf = Vec::with_capacity(capacity.max(PACK_PREAMBLE_LEN));
        buf.extend_from_slice(&preamble(kind));
        PackWriter {
            kind,
            sink: Sink::Mem(buf),
            blobs: Vec::new(),
        }
    }

    /// A writer that spools to a new file in `dir` (created when missing).
    pub fn spooled(kind: BlobKind, dir: &std::path::Path) -> Result<PackWriter> {
        use std::io::Write;
        let (path, file) = WorkFile::create(dir, PACK_PREFIX, "", false)?;
        // Big enough that tree blobs and small chunks go out in few writes; a sealed chunk
        // larger than this is written straight through.
        let mut file = std::io::BufWriter::with_capacity(256 << 10, file);
        let pre = preamble(kind);
        file.write_all(&pre).map_err(|e| path.error(e))?;
        let mut hasher = blake3::Hasher::new();
        hasher.update(&pre);
        Ok(PackWriter {
            kind,
            sink: Sink::Spool(Box::new(Spool {
                file,
                path,
                len: pre.len(),
                hasher,
                failed: None,
            })),
            blobs: Vec::new(),
        })
    }

    pub fn kind(&self) -> BlobKind {
        self.kind
    }

    pub fn len(&self) -> usize {
        match &self.sink {
            Sink::Mem(b) => b.len(),
            Sink::Spool(s) => s.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    pub fn add(&mut self, id: Id, sealed: &[u8], raw_len: usize) {
        self.blobs.push(PackedBlob {
            id,
            offset: self.len() as u32,
            stored_len: sealed.len() as u32,
            raw_len: raw_len as u32,
        });
        match &mut self.sink {
            Sink::Mem(b) => b.extend_from_slice(sealed),
            Sink::Spool(s) => s.write(sealed),
        }
    }

    /// Append the sealed header and its length; returns the pack bytes, its id and its blobs.
    pub fn finish(self, sealer: &Sealer) -> Result<(PackBody, Id, Vec<PackedBlob>)> {
        let nonce = random_array()?;
        self.finish_with_nonce(sealer, &nonce)
    }

    /// Deterministic variant of [`PackWriter::finish`] for test vectors.
    pub fn finish_with_nonce(
        self,
        sealer: &Sealer,
        nonce: &[u8; NONCE_LEN],
    ) -> Result<(PackBody, Id, Vec<PackedBlob>)> {
        let tail = sealed_tail(sealer, &self.blobs, nonce);
        match self.sink {
            Sink::Mem(mut buf) => {
                buf.extend_from_slice(&tail);
                let id = Id::of_object(&buf);
                Ok((PackBody::Mem(buf), id, self.blobs))
            }
            Sink::Spool(mut s) => {
                use std::io::Write;
                s.write(&tail);
                if let Some(e) = s.failed.take() {
                    return Err(s.path.error(e));
                }
                s.file.flush().map_err(|e| s.path.error(e))?;
                let id = Id(*s.hasher.finalize().as_bytes());
                let body = PackBody::Spooled {
                    file: s.path,
                    len: s.len as u64,
                };
                Ok((body, id, self.blobs))
            }
        }
    }
}

impl Spool {
    fn write(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.len += bytes.len();
        self.hasher.update(bytes);
        if self.failed.is_none()
            && let Err(e) = self.file.write_all(bytes)
        {
            self.failed = Some(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::pack::{parse_header, parse_preamble};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn pack_header_round_trips(blobs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8), enc in any::<bool>()) {
            let sealer = if enc { Sealer::encrypted(&[5; 32]) } else { Sealer::Plain };
            let mut w = PackWriter::new(BlobKind::Tree);
            for b in &blobs {
                let sealed = sealer.seal(b, Some(3)).unwrap();
                w.add(Id::of_object(b), &sealed, b.len());
            }
            let (bytes, id, written) = w.finish(&sealer).unwrap();
            let bytes = bytes.into_bytes().unwrap();
            prop_assert_eq!(id, Id::of_object(&bytes));
            prop_assert_eq!(parse_preamble(&bytes).unwrap(), BlobKind::Tree);
            let parsed = parse_header(&sealer, &bytes, bytes.len() as u64).unwrap();
            prop_assert_eq!(&parsed, &written);
            for (p, b) in parsed.iter().zip(&blobs) {
                let s = &bytes[p.offset as usize..(p.offset + p.stored_len) as usize];
                prop_assert_eq!(&sealer.open(s, Some(p.raw_len as usize), "blob").unwrap(), b);
            }
        }
    }

    #[test]
    fn a_spooled_pack_equals_the_same_pack_in_memory_and_its_file_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::encrypted(&[9; 32]);
        let blobs: Vec<Vec<u8>> = (0..40u32)
            .map(|i| (0..(i * 9001) % 300_000).map(|j| (j ^ i) as u8).collect())
            .collect();
        let mut mem = PackWriter::new(BlobKind::Data);
        let mut spool = PackWriter::spooled(BlobKind::Data, dir.path()).unwrap();
        for (i, b) in blobs.iter().enumerate() {
            mem.add(Id([i as u8; 32]), b, b.len() + 1);
            spool.add(Id([i as u8; 32]), b, b.len() + 1);
            assert_eq!(mem.len(), spool.len());
        }
        let (mb, mid, mblobs) = mem.finish_with_nonce(&sealer, &[3; 24]).unwrap();
        let (sb, sid, sblobs) = spool.finish_with_nonce(&sealer, &[3; 24]).unwrap();
        assert!(matches!(sb, PackBody::Spooled { .. }));
        assert_eq!((mid, &mblobs, mb.len()), (sid, &sblobs, sb.len()));
        let path = match &sb {
            PackBody::Spooled { file, .. } => file.path().to_path_buf(),
            PackBody::Mem(_) => unreachable!(),
        };
        assert!(
            path.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(PACK_PREFIX)
        );
        assert_eq!(sb.into_bytes().unwrap(), mb.into_bytes().unwrap());
        assert!(!path.exists(), "the spool file outlived its pack");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn header_from_another_key_is_rejected() {
        let mut w = PackWriter::new(BlobKind::Data);
        w.add(Id::default(), b"xyz", 3);
        let bytes = w
            .finish(&Sealer::encrypted(&[1; 32]))
            .unwrap()
            .0
            .into_bytes()
            .unwrap();
        assert!(parse_header(&Sealer::encrypted(&[2; 32]), &bytes, bytes.len() as u64).is_err());
    }
}
