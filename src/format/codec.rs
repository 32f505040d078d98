//! Little-endian byte writing and bounds-checked reading shared by the binary encodings.

use crate::error::{Error, Result};
use crate::format::id::Id;

pub(crate) fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}
pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}
/// A u32 length prefix followed by the bytes.
pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len() as u32);
    out.extend_from_slice(b);
}

/// Reads fields in order; every shortfall is reported as corruption of `what`.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                Error::corrupt(
                    self.what,
                    format!("truncated at byte {} (wanted {n} more)", self.pos),
                )
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub(crate) fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub(crate) fn id(&mut self) -> Result<Id> {
        Ok(Id(self.array()?))
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// A count that must fit in the remaining bytes at `min_each` bytes per item;
    /// stops a corrupt count from provoking a huge allocation.
    pub(crate) fn count(&mut self, min_each: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_each.max(1)) > self.remaining() {
            return Err(self.error(format!(
                "count {n} exceeds the remaining {} bytes",
                self.remaining()
            )));
        }
        Ok(n)
    }
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    pub(crate) fn error(&self, detail: impl Into<String>) -> Error {
        Error::corrupt(self.what, detail)
    }
}

/// An 8-byte magic number derived from a name, so magics are documented by their derivation.
pub(crate) fn derive_magic(name: &str) -> [u8; 8] {
    let h = blake3::hash(name.as_bytes());
    let mut m = [0u8; 8];
    m.copy_from_slice(&h.as_bytes()[..8]);
    m
}
