//! Pack objects: many sealed blobs of one kind, followed by a sealed header that lists them.
//! Layout in `formats/`; the header sits at the end so a pack can be streamed out as it fills.

use crate::codec::{Reader, derive_magic, put_u8, put_u16, put_u32};
use crate::crypto::Sealer;
use crate::error::{Error, Result};
use crate::id::Id;

pub const PACK_VERSION: u16 = 1;
/// Bytes before the first blob: magic (8), version (2), kind (1), reserved (1).
pub const PACK_PREAMBLE_LEN: usize = 12;
/// Bytes per header entry: id (32), stored length (4), raw length (4).
pub const HEADER_ENTRY_LEN: usize = 40;

pub fn pack_magic() -> [u8; 8] {
    derive_magic("sitevault pack")
}

/// What a blob holds. Packs never mix kinds, so trees can be fetched without file data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlobKind {
    Data = 0,
    Tree = 1,
}

impl BlobKind {
    pub(crate) fn from_u8(v: u8) -> Option<BlobKind> {
        match v {
            0 => Some(BlobKind::Data),
            1 => Some(BlobKind::Tree),
            _ => None,
        }
    }
}

/// One blob's place inside a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedBlob {
    pub id: Id,
    pub offset: u32,
    pub stored_len: u32,
    pub raw_len: u32,
}

/// Accumulates sealed blobs of one kind in memory until the pack is full.
pub struct PackWriter {
    kind: BlobKind,
    buf: Vec<u8>,
    blobs: Vec<PackedBlob>,
}

impl PackWriter {
    pub fn new(kind: BlobKind) -> PackWriter {
        Self::with_capacity(kind, 0)
    }

    /// A writer whose buffer never reallocates below `capacity` bytes: growing a 32 MiB pack by
    /// doubling copied it repeatedly and briefly held twice its size.
    pub fn with_capacity(kind: BlobKind, capacity: usize) -> PackWriter {
        let mut buf = Vec::with_capacity(capacity.max(PACK_PREAMBLE_LEN));
        buf.extend_from_slice(&pack_magic());
        put_u16(&mut buf, PACK_VERSION);
        put_u8(&mut buf, kind as u8);
        put_u8(&mut buf, 0);
        PackWriter {
            kind,
            buf,
            blobs: Vec::new(),
        }
    }

    pub fn kind(&self) -> BlobKind {
        self.kind
    }

    pub fn len(&self) -> usize {
        self.buf.len()
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
            offset: self.buf.len() as u32,
            stored_len: sealed.len() as u32,
            raw_len: raw_len as u32,
        });
        self.buf.extend_from_slice(sealed);
    }

    /// Append the sealed header and its length; returns the pack bytes, its id and its blobs.
    pub fn finish(self, sealer: &Sealer) -> Result<(Vec<u8>, Id, Vec<PackedBlob>)> {
        let nonce = crate::crypto::random_array()?;
        Ok(self.finish_with_nonce(sealer, &nonce))
    }

    /// Deterministic variant of [`PackWriter::finish`] for test vectors.
    pub fn finish_with_nonce(
        mut self,
        sealer: &Sealer,
        nonce: &[u8; crate::crypto::NONCE_LEN],
    ) -> (Vec<u8>, Id, Vec<PackedBlob>) {
        let header = sealer.seal_with_nonce(&encode_header(&self.blobs), None, nonce);
        self.buf.extend_from_slice(&header);
        put_u32(&mut self.buf, header.len() as u32);
        let id = Id::of_object(&self.buf);
        (self.buf, id, self.blobs)
    }
}

pub(crate) fn encode_header(blobs: &[PackedBlob]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + blobs.len() * HEADER_ENTRY_LEN);
    put_u32(&mut out, blobs.len() as u32);
    for b in blobs {
        out.extend_from_slice(&b.id.0);
        put_u32(&mut out, b.stored_len);
        put_u32(&mut out, b.raw_len);
    }
    out
}

/// Parse a pack's preamble kind from its first bytes.
pub fn parse_preamble(bytes: &[u8]) -> Result<BlobKind> {
    let mut r = Reader::new(bytes, "pack preamble");
    if r.take(8)? != pack_magic() {
        return Err(Error::corrupt("pack", "bad magic"));
    }
    let v = r.u16()?;
    if v != PACK_VERSION {
        return Err(Error::corrupt(
            "pack",
            format!("unsupported pack version {v}"),
        ));
    }
    BlobKind::from_u8(r.u8()?).ok_or_else(|| Error::corrupt("pack", "unknown blob kind"))
}

/// Decode a header given the bytes that end the pack (`tail` ends where the pack ends) and
/// the pack's total length. Offsets are implied by the order of the entries.
pub fn parse_header(sealer: &Sealer, tail: &[u8], pack_len: u64) -> Result<Vec<PackedBlob>> {
    let hlen = header_len_from_tail(tail)? as usize;
    if tail.len() < hlen + 4 {
        return Err(Error::corrupt(
            "pack header",
            "tail shorter than the header length it names",
        ));
    }
    let sealed = &tail[tail.len() - 4 - hlen..tail.len() - 4];
    let plain = sealer.open(sealed, None, "pack header")?;
    let mut r = Reader::new(&plain, "pack header");
    let n = r.count(HEADER_ENTRY_LEN)?;
    let mut offset = PACK_PREAMBLE_LEN as u64;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let id = r.id()?;
        let stored_len = r.u32()?;
        let raw_len = r.u32()?;
        out.push(PackedBlob {
            id,
            // Packs are smaller than 4 GiB (formats/ §6.2): a larger offset would wrap.
            offset: u32::try_from(offset)
                .map_err(|_| Error::corrupt("pack", "blob offsets pass 4 GiB"))?,
            stored_len,
            raw_len,
        });
        offset += stored_len as u64;
    }
    if !r.is_empty() {
        return Err(Error::corrupt(
            "pack header",
            "trailing bytes after the entries",
        ));
    }
    if offset + hlen as u64 + 4 != pack_len {
        return Err(Error::corrupt(
            "pack",
            "blob lengths and header do not add up to the pack size",
        ));
    }
    Ok(out)
}

/// The sealed header's length, from the last four bytes of the pack.
pub fn header_len_from_tail(tail: &[u8]) -> Result<u32> {
    if tail.len() < 4 {
        return Err(Error::corrupt(
            "pack",
            "shorter than its header length field",
        ));
    }
    Ok(u32::from_le_bytes(
        tail[tail.len() - 4..].try_into().expect("4 bytes"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn header_from_another_key_is_rejected() {
        let mut w = PackWriter::new(BlobKind::Data);
        w.add(Id::default(), b"xyz", 3);
        let (bytes, _, _) = w.finish(&Sealer::encrypted(&[1; 32])).unwrap();
        assert!(parse_header(&Sealer::encrypted(&[2; 32]), &bytes, bytes.len() as u64).is_err());
    }
}
