//! Index files (formats/ §7): which blob lives where, as stored bytes. No I/O.

use crate::error::Result;
use crate::format::codec::{Reader, derive_magic, put_u8, put_u16, put_u32};
use crate::format::id::Id;
use crate::format::pack::{BlobKind, PackedBlob};

pub(crate) const INDEX_VERSION: u16 = 1;

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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Any pack as an index file could list it.
    pub(crate) fn arb_pack() -> impl Strategy<Value = IndexPack> {
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
    }
}
