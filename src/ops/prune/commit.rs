//! The end of prune (formats/ §12.6): listings checked again, then the index files that
//! replace the old ones (steps 5 and 6), and only then deletions (step 7).

use std::collections::HashSet;

use super::index_out::IndexOut;
use super::survey::{Fate, Listing, Survey, find};
use super::usage::goes;
use super::{LISTINGS, PruneReport};
use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::index::IndexPack;
use crate::vault::{INDEX, SNAPSHOTS, SnapshotScan, Vault, pack_name};

/// Refuse when a listing of `snapshots/` or `index/` now shows an object the first listings
/// (`snaps`, `survey.files`) missed.
pub(super) fn confirm_listings(vault: &Vault, snaps: &SnapshotScan, survey: &Survey) -> Result<()> {
    // A listing can miss an object (an eventually consistent store, a flaky proxy). Deleting
    // on one listing could then drop the data of a snapshot, or keep an index file that still
    // names deleted packs: what was read came from two listings, and two more now must show
    // nothing else before anything is superseded (the fault campaign saw the same snapshot
    // missed by two listings in a row).
    let seen_snaps: HashSet<Id> = snaps
        .readable
        .iter()
        .map(|(id, _)| *id)
        .chain(snaps.unreadable.iter().map(|(id, _)| *id))
        .collect();
    let seen_index: HashSet<Id> = survey.files.iter().map(|f| f.id).collect();
    for (prefix, seen) in [(SNAPSHOTS, &seen_snaps), (INDEX, &seen_index)] {
        if let Some((id, _)) = vault
            .list_ids_union(prefix, LISTINGS)?
            .into_iter()
            .find(|(id, _)| !seen.contains(id))
        {
            return Err(Error::Store {
                object: format!("{}/{prefix}/{}", vault.location(), id.to_hex()),
                detail: format!(
                    "it was not in this prune's first listing of {prefix}/ (the storage listed it late, or a writer ignored the lock); nothing was deleted: run prune again"
                ),
            });
        }
    }
    Ok(())
}

/// The index files that new ones replace.
pub(super) struct Replaced {
    /// Per file of `survey.files`: replaced by the new files.
    each: Vec<bool>,
    /// Superseded in one atomic write by the last new index file, then deleted: the replaced
    /// files and those already superseded.
    pub(super) old: Vec<Id>,
}

/// Step 5: the files that cannot be read or name a pack that goes (or is gone), and, when index
/// files are being written anyway (`packs_written`: new packs need one), the small ones. Marks
/// the packs files that stay name, and drops the listings.
pub(super) fn choose_replaced(
    survey: &mut Survey,
    index_file_blobs: usize,
    packs_written: bool,
) -> Replaced {
    let mut each = needs_replacing(survey);
    // When prune writes index files anyway it merges the small ones (a backup writes a few
    // small files per run), so they do not pile up.
    let small_file = index_file_blobs / 2;
    let small: Vec<usize> = (0..survey.files.len())
        .filter(|&i| {
            !each[i] && survey.in_force(&survey.files[i]) && survey.files[i].blobs < small_file
        })
        .collect();
    let states = &survey.states;
    let names_unindexed = survey
        .unindexed
        .iter()
        .any(|p| find(states, &p.id).is_some_and(|s| states[s].fate == Fate::Keep));
    let writes = each.iter().any(|r| *r) || names_unindexed || packs_written;
    if writes && small.len() > 1 {
        small.iter().for_each(|&i| each[i] = true);
    }
    mark_kept_files(survey, &each);
    drop(std::mem::take(&mut survey.listings));
    let old: Vec<Id> = survey
        .files
        .iter()
        .enumerate()
        .filter(|(i, f)| each[*i] || survey.superseded.contains(&f.id))
        .map(|(_, f)| f.id)
        .collect();
    Replaced { each, old }
}

/// Per file: not superseded, and unreadable or naming a pack that does not stay.
fn needs_replacing(survey: &Survey) -> Vec<bool> {
    let states = &survey.states;
    let stays = |l: &Listing| find(states, &l.pack).is_some_and(|s| states[s].fate == Fate::Keep);
    survey
        .files
        .iter()
        .map(|f| {
            !survey.superseded.contains(&f.id)
                && (!f.readable || !survey.listings[f.listings.clone()].iter().all(stays))
        })
        .collect()
}

/// Mark each pack an index file that stays in force lists: new files need not name it.
fn mark_kept_files(survey: &mut Survey, replace: &[bool]) {
    for (i, f) in survey.files.iter().enumerate() {
        if survey.in_force(f) && !replace[i] {
            for l in &survey.listings[f.listings.clone()] {
                if let Some(s) = find(&survey.states, &l.pack) {
                    survey.states[s].in_kept_file = true;
                }
            }
        }
    }
}

/// Step 6: index files for every kept pack no staying file names, and the `written` packs;
/// the last supersedes the replaced files. The replaced files are read again one at a time
/// for their kept packs' entries (checked against their names, so they are the bytes read
/// above). Returns how many files were written.
pub(super) fn write_index_files(
    vault: &Vault,
    survey: &mut Survey,
    replaced: &Replaced,
    written: Vec<(IndexPack, u64)>,
    max_blobs: usize,
    fence: &dyn Fn() -> Result<()>,
) -> Result<usize> {
    let mut out = IndexOut::new(vault, max_blobs);
    let states = &mut survey.states;
    let mut take = |p: IndexPack, out: &mut IndexOut| -> Result<()> {
        if let Some(s) = find(states, &p.id) {
            let st = &mut states[s];
            if st.fate == Fate::Keep && !st.in_kept_file && !st.emitted {
                st.emitted = true;
                out.push(p)?;
            }
        }
        Ok(())
    };
    for (i, f) in survey.files.iter().enumerate() {
        if replaced.each[i] && f.readable {
            for p in vault.read_index_file(&f.id)?.packs {
                take(p, &mut out)?;
            }
        }
    }
    for p in std::mem::take(&mut survey.unindexed) {
        take(p, &mut out)?;
    }
    for (p, _) in written {
        out.push(p)?;
    }
    // The lock is checked again right before the commit: reading the replaced files again
    // and storing the earlier files can take a while.
    out.finish(&replaced.old, fence)
}

/// Step 7: delete the replaced index files, the packs that go, the damaged packs and the
/// damaged forget records (`report`).
pub(super) fn delete_old(
    vault: &Vault,
    replaced: &Replaced,
    survey: &Survey,
    report: &PruneReport,
) -> Result<()> {
    for id in &replaced.old {
        vault.store().delete(&format!("{INDEX}/{}", id.to_hex()))?;
    }
    for s in survey.states.iter().filter(goes) {
        vault.store().delete(&pack_name(&s.id))?;
    }
    for id in &report.packs_damaged_deleted {
        vault.store().delete(&pack_name(id))?;
    }
    for id in &report.forget_records_damaged_deleted {
        vault
            .store()
            .delete(&format!("{}/{}", crate::ops::forget::FORGETS, id.to_hex()))?;
    }
    Ok(())
}
