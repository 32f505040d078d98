//! Pack objects: many sealed blobs of one kind, followed by a sealed header that lists them.
//! Layout in `formats/`; the header sits at the end so a pack can be streamed out as it fills.

use crate::error::{Error, Result};
use crate::format::codec::{Reader, derive_magic, put_u8, put_u16, put_u32};
use crate::format::crypto::{NONCE_LEN, Sealer};
use crate::format::id::Id;

pub(crate) const PACK_VERSION: u16 = 1;
/// Bytes before the first blob: magic (8), version (2), kind (1), reserved (1).
pub(crate) const PACK_PREAMBLE_LEN: usize = 12;
/// Bytes per header entry: id (32), stored length (4), raw length (4).
pub(crate) const HEADER_ENTRY_LEN: usize = 40;

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

/// A pack's first bytes: magic, version and the kind of its blobs.
pub(crate) fn preamble(kind: BlobKind) -> Vec<u8> {
    let mut buf = Vec::with_capacity(PACK_PREAMBLE_LEN);
    buf.extend_from_slice(&pack_magic());
    put_u16(&mut buf, PACK_VERSION);
    put_u8(&mut buf, kind as u8);
    put_u8(&mut buf, 0);
    buf
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

/// A pack's last bytes: the sealed header of `blobs` and its length.
pub(crate) fn sealed_tail(
    sealer: &Sealer,
    blobs: &[PackedBlob],
    nonce: &[u8; NONCE_LEN],
) -> Vec<u8> {
    let mut tail = sealer.seal_with_nonce(&encode_header(blobs), None, nonce);
    let hlen = tail.len() as u32;
    put_u32(&mut tail, hlen);
    tail
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
pub(crate) fn header_len_from_tail(tail: &[u8]) -> Result<u32> {
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
