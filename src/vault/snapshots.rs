//! Snapshot objects: saving, loading and listing them, keeping the unreadable ones apart.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::snapshot::Snapshot;

use super::{SNAPSHOTS, Vault};

/// The outcome of reading every snapshot.
#[derive(Debug, Default)]
pub struct SnapshotScan {
    pub readable: Vec<(Id, Snapshot)>,
    pub unreadable: Vec<(Id, Error)>,
}

impl Vault {
    pub fn save_snapshot(&self, s: &Snapshot) -> Result<Id> {
        let json = serde_json::to_vec(s).expect("snapshot serialises");
        self.save_object(SNAPSHOTS, &json)
    }

    /// A snapshot object, decoded; `Ok(None)` when it was forgotten meanwhile.
    pub(crate) fn load_snapshot_if_present(&self, id: &Id) -> Result<Option<Snapshot>> {
        self.load_object_if_present(SNAPSHOTS, id)?
            .map(|b| self.parse_snapshot(id, &b))
            .transpose()
    }

    pub(super) fn parse_snapshot(&self, id: &Id, bytes: &[u8]) -> Result<Snapshot> {
        Snapshot::decode(bytes, id, self.location())
    }

    /// All snapshots, oldest first; fails if any cannot be read.
    pub fn list_snapshots(&self) -> Result<Vec<(Id, Snapshot)>> {
        let all = self.scan_snapshots()?;
        match all.unreadable.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(all.readable),
        }
    }

    /// Every snapshot, the readable ones (oldest first) apart from the unreadable ones, so one
    /// damaged or newer snapshot does not hide the others.
    pub fn scan_snapshots(&self) -> Result<SnapshotScan> {
        self.scan_snapshots_listed(1)
    }

    /// [`Vault::scan_snapshots`] over the union of `listings` listings of `snapshots/`.
    pub(crate) fn scan_snapshots_listed(&self, listings: usize) -> Result<SnapshotScan> {
        // A snapshot that vanishes between listing and reading was forgotten meanwhile.
        let loaded: Vec<(Id, Result<Option<Snapshot>>)> = self
            .list_ids_union(SNAPSHOTS, listings)?
            .par_iter()
            .map(|(id, _)| (*id, self.load_snapshot_if_present(id)))
            .collect();
        let mut scan = SnapshotScan::default();
        for (id, r) in loaded {
            match r {
                Ok(Some(s)) => scan.readable.push((id, s)),
                Ok(None) => {}
                Err(e) => scan.unreadable.push((id, e)),
            }
        }
        scan.readable
            .sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        scan.unreadable.sort_by_key(|(id, _)| *id);
        Ok(scan)
    }
}
