//! Repair: make a damaged vault whole again, or as whole as what survives allows.
//!
//! * `repair index` rebuilds every index file from the pack headers (§6.3), keeping an old
//!   index entry only for a pack whose header cannot be read.
//! * `repair snapshots` writes, for each snapshot that cannot be restored whole, a new snapshot
//!   without the files and folders that are lost, and names them; the originals stay unless
//!   asked to forget them.
//! * `repair packs --from` heals lost or damaged blobs with the same content from another
//!   vault holding the same snapshots (one fed by `copy`, whose keys may differ), then replaces
//!   the damaged packs.
//!
//! All three keep the write order of formats/ §12: new packs, then index files naming them,
//! then snapshots, and deletions last, so a crash at any point leaves a valid vault.

mod index;
mod packs;
mod snapshots;
mod sources;

use std::collections::{HashMap, HashSet};
use std::thread::ScopedJoinHandle;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::index::IndexPack;
use crate::store::in_download_pool;
use crate::vault::packer::Uploaded;
use crate::vault::{DATA, INDEX, IndexScan, Vault};

pub use index::{RepairIndexReport, repair_index};
pub use packs::{RepairPacksReport, repair_packs};
pub use snapshots::{
    RepairSnapshotsOptions, RepairSnapshotsReport, RepairedSnapshot, Unrepairable, repair_snapshots,
};

/// The tag a repaired snapshot carries, so `snapshots` shows what it is.
pub(crate) const REPAIRED_TAG: &str = "repaired";

/// Every pack the vault stores and what it holds, without trusting any single source: index
/// files for the packs they name, pack headers for the rest.
struct Holdings {
    scan: IndexScan,
    stored: HashMap<Id, u64>,
    packs: Vec<IndexPack>,
    /// Index entries whose pack is gone.
    missing: Vec<Id>,
    /// Stored packs that no index names and whose header cannot be read.
    unreadable: Vec<(Id, String)>,
}

/// Survey what the vault stores: index entries checked against the listing, and the headers of
/// packs no index names.
fn holdings(vault: &Vault) -> Result<Holdings> {
    let scan = vault.scan_index()?;
    let stored: HashMap<Id, u64> = vault.list_ids(DATA)?.into_iter().collect();
    let mut packs = Vec::new();
    let mut missing = Vec::new();
    for p in scan.packs() {
        if stored.contains_key(&p.id) {
            packs.push(p);
        } else {
            missing.push(p.id);
        }
    }
    let listed: HashSet<Id> = packs.iter().map(|p| p.id).collect();
    let mut orphans: Vec<(Id, u64)> = stored
        .iter()
        .filter(|(id, _)| !listed.contains(id))
        .map(|(i, s)| (*i, *s))
        .collect();
    orphans.sort();
    let headers = read_headers(vault, &orphans);
    let mut unreadable = Vec::new();
    for (id, h) in headers {
        match h {
            Ok(p) => packs.push(p),
            Err(e) => unreadable.push((id, e.to_string())),
        }
    }
    packs.sort_by_key(|p| p.id);
    Ok(Holdings {
        scan,
        stored,
        packs,
        missing,
        unreadable,
    })
}

/// Read the header of each of `packs` (id and stored size), several at once.
fn read_headers(vault: &Vault, packs: &[(Id, u64)]) -> Vec<(Id, Result<IndexPack>)> {
    in_download_pool(vault.store().downloads(), || {
        packs
            .par_iter()
            .map(|(id, size)| (*id, vault.read_pack_header(id, *size)))
            .collect()
    })
}

/// Store index files for `packs`, the last superseding `old`, then delete `old`.
fn replace_index(
    vault: &Vault,
    packs: Vec<IndexPack>,
    old: &[Id],
    fence: &dyn Fn() -> Result<()>,
) -> Result<usize> {
    fence()?;
    let written = crate::ops::prune::write_index(vault, packs, old)?;
    fence()?;
    for id in old {
        vault.store().delete(&format!("{INDEX}/{}", id.to_hex()))?;
    }
    Ok(written)
}

/// Wait for the pack uploader to end: its result, or an error if it panicked.
fn uploader_result(uploader: ScopedJoinHandle<'_, Result<Uploaded>>) -> Result<Uploaded> {
    uploader
        .join()
        .unwrap_or_else(|_| Err(Error::InvalidInput("the pack uploader panicked".into())))
}
