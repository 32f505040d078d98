//! `repair packs --from`: heal lost or damaged blobs with the same content from another vault,
//! then replace the damaged packs.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::mpsc::sync_channel;

use rayon::prelude::*;
use serde::Serialize;

use super::sources::Sources;
use super::{Holdings, holdings, replace_index, uploader_result};
use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::index::IndexPack;
use crate::format::pack::BlobKind;
use crate::format::snapshot::Snapshot;
use crate::format::tree::NodeKind;
use crate::store::in_download_pool;
use crate::vault::index::Index;
use crate::vault::packer::{PACKS_IN_FLIGHT, Packer, Uploaded, upload_packs};
use crate::vault::{Vault, pack_name};

#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairPacksReport {
    pub dry_run: bool,
    pub packs_read: usize,
    /// Packs missing, unreadable, not matching their name, or holding a damaged blob.
    pub damaged_packs: Vec<Id>,
    /// Blobs the snapshots use that were lost or damaged here.
    pub blobs_lost: usize,
    /// Of those, rebuilt with content from the other vault (verified against their ids).
    pub blobs_healed: usize,
    /// Good blobs of damaged packs moved into new packs.
    pub blobs_salvaged: usize,
    /// Lost blobs the other vault could not supply.
    pub blobs_unhealed: Vec<Id>,
    pub packs_written: u64,
    pub bytes_written: u64,
    pub packs_deleted: usize,
    /// Packs in no index whose header cannot be read: left alone (nothing refers to them).
    pub packs_unreadable: Vec<Id>,
}

/// Read every stored pack whole, as `check --read-data` does: which packs are damaged (missing,
/// not matching their name, or holding a blob that fails), and which used blobs are lost.
/// Every pack, not only those of known used blobs: a lost tree may name chunks in any of them.
fn survey(
    vault: &Vault,
    index: &Index,
    h: &Holdings,
    used: &HashSet<Id>,
    report: &mut RepairPacksReport,
) -> (BTreeSet<Id>, HashSet<Id>) {
    let mut damaged: BTreeSet<Id> = h.missing.iter().copied().collect();
    report.packs_read = h.packs.len();
    let failed: Vec<(Id, bool, Vec<Id>)> = in_download_pool(vault.store().downloads(), || {
        h.packs.par_iter().map(|p| read_pack(vault, p)).collect()
    });
    let mut bad_here: HashSet<(Id, Id)> = HashSet::new();
    for (pack, whole, bad) in failed {
        if !whole || !bad.is_empty() {
            damaged.insert(pack);
        }
        bad_here.extend(bad.into_iter().map(|b| (pack, b)));
    }
    let lost = used
        .iter()
        .filter(|b| match index.get(b) {
            Some(l) => !h.stored.contains_key(&l.pack) || bad_here.contains(&(l.pack, **b)),
            None => true,
        })
        .copied()
        .collect();
    (damaged, lost)
}

/// Read pack `p` whole: its id, whether it matches its name, and the blobs in it that fail
/// (all of them when it cannot be read).
fn read_pack(vault: &Vault, p: &IndexPack) -> (Id, bool, Vec<Id>) {
    let name = pack_name(&p.id);
    let Ok(Some(bytes)) = vault.store().get(&name) else {
        return (p.id, false, p.blobs.iter().map(|b| b.id).collect());
    };
    let whole = Id::of_object(&bytes) == p.id;
    let bad = p
        .blobs
        .iter()
        .filter(|b| {
            let r = b.offset as usize..b.offset as usize + b.stored_len as usize;
            bytes.get(r).is_none_or(|sealed| {
                vault
                    .open_blob(sealed, &b.id, p.kind, b.raw_len, &name)
                    .is_err()
            })
        })
        .map(|b| b.id)
        .collect();
    (p.id, whole, bad)
}

/// A blob rebuilt from the other vault: our id, its kind and its content.
type Healed = (Id, BlobKind, Vec<u8>);

/// Heal this vault's lost and damaged blobs from `other`, then replace its damaged packs. The
/// caller holds an exclusive lock on this vault (and a shared one on `other`).
pub fn repair_packs(
    vault: &Vault,
    other: &Vault,
    dry_run: bool,
    fence: &dyn Fn() -> Result<()>,
) -> Result<RepairPacksReport> {
    let mut report = RepairPacksReport {
        dry_run,
        ..Default::default()
    };
    let h = holdings(vault)?;
    let index = Index::new().with_packs(&h.packs);
    let snaps = readable_snapshots(vault)?;
    let (used, failed) = used_blobs(vault, &index, &snaps);
    report.packs_unreadable = h.unreadable.iter().map(|(id, _)| *id).collect();
    let (damaged, mut lost) = survey(vault, &index, &h, &used, &mut report);
    lost.extend(failed);
    report.damaged_packs = damaged.iter().copied().collect();
    report.blobs_lost = lost.len();
    if damaged.is_empty() && lost.is_empty() {
        return Ok(report);
    }

    let healed = heal(vault, &index, other, &snaps, &lost, &damaged, &mut report)?;
    // Healing a tree can turn up more that is lost below it: count every blob rebuilt.
    let healed_ids: HashSet<Id> = healed.iter().map(|(id, _, _)| *id).collect();
    report.blobs_healed = healed_ids.len();
    report.blobs_lost = lost.union(&healed_ids).count();

    // Good blobs of damaged packs move to new packs, so the damaged packs can go.
    let keep: Vec<IndexPack> = h
        .packs
        .iter()
        .filter(|p| !damaged.contains(&p.id))
        .cloned()
        .collect();
    let good = Index::new().with_packs(&keep);
    let salvage = salvage_list(&h, &damaged, &good, &lost, &healed_ids);
    if dry_run {
        report.blobs_salvaged = salvage.len();
        return Ok(report);
    }
    store_packs(vault, &index, &good, &salvage, &healed, &mut report)?;
    switch_index(vault, &h, keep, fence)?;
    delete_damaged(vault, &h, &damaged, &mut report)?;
    Ok(report)
}

/// Every snapshot record, or an error naming the first that cannot be read.
fn readable_snapshots(vault: &Vault) -> Result<Vec<(Id, Snapshot)>> {
    let snaps = vault.scan_snapshots()?;
    if let Some((id, e)) = snaps.unreadable.first() {
        return Err(Error::InvalidInput(format!(
            "snapshot {} cannot be read ({e}); repair packs needs every snapshot record to know what is used: `sitevault forget` it first",
            id.short()
        )));
    }
    Ok(snaps.readable)
}

/// The blobs `snaps` use (trees and chunks), with the trees that cannot be read among them;
/// those trees are also returned on their own.
fn used_blobs(vault: &Vault, index: &Index, snaps: &[(Id, Snapshot)]) -> (HashSet<Id>, Vec<Id>) {
    // Each distinct tree is visited and dropped: only the ids of what is used stay.
    let used = std::sync::Mutex::new(HashSet::new());
    let failed = crate::vault::walk::visit_trees(
        vault,
        index,
        snaps.iter().map(|(_, s)| s.tree),
        &|id, t| {
            let mut u = used.lock().unwrap_or_else(|p| p.into_inner());
            u.insert(id);
            for n in &t.nodes {
                if let NodeKind::File { chunks } = &n.kind {
                    u.extend(chunks.iter().copied());
                }
            }
        },
    );
    let mut used: HashSet<Id> = used.into_inner().unwrap_or_else(|p| p.into_inner());
    used.extend(failed.keys().copied());
    (used, failed.into_keys().collect())
}

/// Rebuild each `lost` blob (in id order) from `other`; those it cannot supply go in `report`.
fn heal(
    vault: &Vault,
    index: &Index,
    other: &Vault,
    snaps: &[(Id, Snapshot)],
    lost: &HashSet<Id>,
    damaged: &BTreeSet<Id>,
    report: &mut RepairPacksReport,
) -> Result<Vec<Healed>> {
    let other_index = other.load_index()?;
    let sources = Sources::learn(vault, index, other, &other_index, snaps)?;
    let back: HashMap<Id, Id> = sources.ids.iter().map(|(o, (t, _))| (*t, *o)).collect();
    let have =
        |id: &Id| !lost.contains(id) && index.get(id).is_some_and(|l| !damaged.contains(&l.pack));
    let mut healed: Vec<Healed> = Vec::new();
    let mut todo: Vec<Id> = lost.iter().copied().collect();
    todo.sort();
    for id in &todo {
        if healed.iter().any(|(h, _, _)| h == id) {
            continue;
        }
        match sources.heal(vault, &back, &have, id) {
            Some(blobs) => healed.extend(blobs),
            None => report.blobs_unhealed.push(*id),
        }
    }
    Ok(healed)
}

/// The blobs of damaged packs to move into new packs: neither lost, nor held by a good pack,
/// nor healed.
fn salvage_list(
    h: &Holdings,
    damaged: &BTreeSet<Id>,
    good: &Index,
    lost: &HashSet<Id>,
    healed_ids: &HashSet<Id>,
) -> Vec<(Id, BlobKind)> {
    h.packs
        .iter()
        .filter(|p| damaged.contains(&p.id))
        .flat_map(|p| p.blobs.iter().map(move |b| (b.id, p.kind)))
        .filter(|(b, _)| !lost.contains(b) && !good.contains(b) && !healed_ids.contains(b))
        .collect()
}

/// Store the salvaged and the healed blobs in new packs (each with its index file), counting
/// them in `report`.
fn store_packs(
    vault: &Vault,
    index: &Index,
    good: &Index,
    salvage: &[(Id, BlobKind)],
    healed: &[Healed],
    report: &mut RepairPacksReport,
) -> Result<()> {
    let (tx, rx) = sync_channel(PACKS_IN_FLIGHT);
    let packer = Packer::new(vault, good, tx);
    let stored: Result<Uploaded> = std::thread::scope(|scope| {
        let uploader = scope.spawn(|| upload_packs(vault, rx));
        let added = add_blobs(vault, index, &packer, salvage, healed);
        packer.close();
        let uploaded = uploader_result(uploader);
        report.blobs_salvaged = *added.as_ref().unwrap_or(&0);
        added.and(uploaded)
    });
    let stored = stored?;
    report.packs_written = stored.packs;
    report.bytes_written = stored.bytes;
    Ok(())
}

/// Add the salvaged blobs that still read back, then the healed ones, to `packer`: how many
/// were salvaged.
fn add_blobs(
    vault: &Vault,
    index: &Index,
    packer: &Packer,
    salvage: &[(Id, BlobKind)],
    healed: &[Healed],
) -> Result<usize> {
    let mut salvaged = 0;
    for (b, kind) in salvage {
        // Verified again as it is read: a blob that fails now is lost, not copied.
        if let Ok(data) = vault.read_blob(index, b, *kind) {
            packer.add_blob(*kind, &data)?;
            salvaged += 1;
        }
    }
    for (_, kind, data) in healed {
        packer.add_blob(*kind, data)?;
    }
    packer.finish()?;
    Ok(salvaged)
}

/// The new packs are indexed by their own index files (stored after them). The switch: one
/// index for every kept pack and every new one, superseding the old files.
fn switch_index(
    vault: &Vault,
    h: &Holdings,
    keep: Vec<IndexPack>,
    fence: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let new_files = vault.scan_index()?;
    let new_only: Vec<IndexPack> = new_files
        .readable
        .iter()
        .filter(|(id, _)| !h.scan.all.contains(id))
        .flat_map(|(_, f)| f.packs.iter().cloned())
        .collect();
    let mut after = keep;
    after.extend(new_only);
    replace_index(vault, after, &h.scan.all, fence)?;
    Ok(())
}

/// Once no index names them, the damaged packs storage still holds go.
fn delete_damaged(
    vault: &Vault,
    h: &Holdings,
    damaged: &BTreeSet<Id>,
    report: &mut RepairPacksReport,
) -> Result<()> {
    for p in damaged {
        if h.stored.contains_key(p) {
            vault.store().delete(&pack_name(p))?;
            report.packs_deleted += 1;
        }
    }
    Ok(())
}
