//! The types both index forms share: an entry as kept in memory and a blob's location.

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::pack::BlobKind;

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
