//! Steps 2 and 3 of prune: what the snapshots use, how much of each pack that is, and each
//! pack's fate (kept, deleted or repacked).

use std::collections::HashSet;

use super::PruneReport;
use super::survey::{Fate, PackState};
use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::vault::index::Index;
use crate::vault::used::UsedSet;
use crate::vault::{SnapshotScan, Vault};

/// Every snapshot but those in `assume_forgotten`, read whole: refuses when one cannot be read.
pub(super) fn read_snapshots(
    vault: &Vault,
    assume_forgotten: &HashSet<Id>,
) -> Result<SnapshotScan> {
    let mut snaps = vault.scan_snapshots_listed(super::LISTINGS)?;
    snaps
        .readable
        .retain(|(id, _)| !assume_forgotten.contains(id));
    snaps
        .unreadable
        .retain(|(id, _)| !assume_forgotten.contains(id));
    if let Some((id, e)) = snaps.unreadable.first() {
        return Err(Error::InvalidInput(format!(
            "snapshot {} cannot be read ({e}); prune needs every snapshot intact to know what is used: run `sitevault check`, and `sitevault forget` the damaged snapshot if it cannot be repaired",
            id.short()
        )));
    }
    Ok(snaps)
}

/// Count each used blob, in blobs and stored bytes, in the pack the index resolves it to.
pub(super) fn count_used(
    index: &Index,
    used: &UsedSet,
    slot_of: &[u32],
    states: &mut [PackState],
) -> Result<()> {
    index.for_each_entry(&mut |pos, n, b| {
        if used.contains(pos)
            && let Some(s) = slot_of
                .get(n as usize)
                .and_then(|&s| states.get_mut(s as usize))
        {
            s.used_blobs += 1;
            s.used_bytes += b.stored_len as u64;
        }
    })
}

/// Packs with nothing used go; then the most wasteful partly used packs are repacked until
/// what stays unused is within `max_unused` of what stays. Returns the unused bytes that stay.
pub(super) fn decide_fates(states: &mut [PackState], max_unused: f64) -> u64 {
    let mut keep: Vec<usize> = Vec::new();
    for (i, s) in states.iter_mut().enumerate() {
        if s.used_blobs == 0 {
            s.fate = Fate::Delete;
        } else {
            keep.push(i);
        }
    }
    keep.sort_by(|&a, &b| {
        let (a, b) = (&states[a], &states[b]);
        b.unused_bytes()
            .cmp(&a.unused_bytes())
            .then(a.id.cmp(&b.id))
    });
    let used_total: u64 = keep.iter().map(|&i| states[i].used_bytes).sum();
    let mut unused_total: u64 = keep.iter().map(|&i| states[i].unused_bytes()).sum();
    let limit = max_unused * (used_total + unused_total) as f64;
    for &i in &keep {
        let unused = states[i].unused_bytes();
        if unused_total as f64 > limit && unused > 0 {
            unused_total -= unused;
            states[i].fate = Fate::Repack;
        }
    }
    unused_total
}

/// What the fates leave: how many packs are kept as they are, and the stored bytes of those
/// that go (deleted or repacked).
pub(super) struct Removal {
    kept: usize,
    bytes: u64,
}

impl Removal {
    /// Put the totals after into `report` when nothing is written (a dry run, or nothing to
    /// do): the repacked packs' used bytes count as one new pack.
    pub(super) fn estimate(&self, report: &mut PruneReport) {
        let new_packs = usize::from(report.packs_repacked > 0);
        let new_bytes = report.bytes_rewritten;
        self.totals(report, new_packs, new_bytes);
    }

    /// Put the totals after into `report`, when `new_packs` packs of `new_bytes` are added.
    pub(super) fn totals(&self, report: &mut PruneReport, new_packs: usize, new_bytes: u64) {
        report.packs_after = self.kept + new_packs;
        report.bytes_after = report.bytes_before - self.bytes + new_bytes;
        report.bytes_freed = self.bytes.saturating_sub(new_bytes);
    }
}

/// Whether pack `s` goes (deleted or repacked).
pub(super) fn goes(s: &&PackState) -> bool {
    s.fate != Fate::Keep
}

/// Count the fates into `report` (`unused_after`: unused bytes that stay).
pub(super) fn tally(states: &[PackState], unused_after: u64, report: &mut PruneReport) -> Removal {
    let count = |fate: Fate| states.iter().filter(|s| s.fate == fate).count();
    report.packs_deleted = count(Fate::Delete);
    report.packs_repacked = count(Fate::Repack);
    report.bytes_rewritten = states
        .iter()
        .filter(|s| s.fate == Fate::Repack)
        .map(|s| s.used_bytes)
        .sum();
    report.bytes_unused_after = unused_after;
    Removal {
        kept: count(Fate::Keep),
        bytes: states.iter().filter(goes).map(|s| s.size).sum(),
    }
}
