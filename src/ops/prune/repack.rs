//! Step 4 of prune: new packs with the used blobs of the packs being repacked, each blob
//! checked before it is copied.

use super::survey::{Built, Fate, PackState};
use crate::error::{Error, Result};
use crate::format::index::IndexPack;
use crate::format::pack::{BlobKind, PackedBlob};
use crate::vault::pack_writer::PackWriter;
use crate::vault::used::UsedSet;
use crate::vault::{Vault, pack_name};

/// The used blobs of the packs being repacked, as (state, blob), sorted by state and offset
/// (none unless `any_repacked`).
pub(super) fn moving_blobs(
    built: &Built,
    used: &UsedSet,
    states: &[PackState],
    any_repacked: bool,
) -> Result<Vec<(u32, PackedBlob)>> {
    let mut moving: Vec<(u32, PackedBlob)> = Vec::new();
    if any_repacked {
        built.index.for_each_entry(&mut |pos, n, b| {
            if let Some(&s) = built.slot_of.get(n as usize)
                && states
                    .get(s as usize)
                    .is_some_and(|s| s.fate == Fate::Repack)
                && used.contains(pos)
            {
                moving.push((s, *b));
            }
        })?;
    }
    moving.sort_unstable_by_key(|(s, b)| (*s, b.offset));
    Ok(moving)
}

/// Copy the `moving` blobs (state, blob; sorted by state) into new packs; returns them with
/// their sizes.
pub(super) fn repack_packs(
    vault: &Vault,
    states: &[PackState],
    moving: &[(u32, PackedBlob)],
) -> Result<Vec<(IndexPack, u64)>> {
    let target = vault.config().pack_size as usize;
    let mut out = Vec::new();
    for kind in [BlobKind::Data, BlobKind::Tree] {
        let mut writer = vault.pack_writer(kind)?;
        for group in moving.chunk_by(|a, b| a.0 == b.0) {
            let pack = &states[group[0].0 as usize];
            if pack.kind != kind {
                continue;
            }
            let name = pack_name(&pack.id);
            let bytes = vault
                .store()
                .get(&name)?
                .ok_or_else(|| Error::corrupt(&name, "pack vanished during prune"))?;
            for (_, b) in group {
                let range = b.offset as usize..b.offset as usize + b.stored_len as usize;
                let sealed = bytes.get(range).ok_or_else(|| {
                    Error::corrupt(&name, "a blob the index names lies beyond the pack's end")
                })?;
                vault.open_blob(sealed, &b.id, kind, b.raw_len, &name)?;
                writer.add(b.id, sealed, b.raw_len as usize);
                if writer.len() >= target {
                    let full = std::mem::replace(&mut writer, vault.pack_writer(kind)?);
                    out.push(store_pack(vault, full)?);
                }
            }
        }
        if !writer.is_empty() {
            out.push(store_pack(vault, writer)?);
        }
    }
    Ok(out)
}

/// Seal and store the pack in `writer`; returns its index entry and size.
fn store_pack(vault: &Vault, writer: PackWriter) -> Result<(IndexPack, u64)> {
    let kind = writer.kind();
    let (bytes, id, blobs) = writer.finish(vault.sealer())?;
    let size = bytes.len();
    vault.save_pack(&id, bytes)?;
    Ok((IndexPack { id, kind, blobs }, size))
}
