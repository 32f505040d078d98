//! The snapshot list laid out as folders (ids/, dates/, latest), rebuilt when the list changes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use rayon::prelude::*;

use crate::error::Result;
use crate::format::id::Id;
use crate::format::snapshot::Snapshot;
use crate::vault::{SNAPSHOTS, Vault};

use super::{BrowseOptions, SnapInfo};

/// The snapshot list as folders, rebuilt when it changes.
pub(super) struct Layout {
    /// Oldest first.
    pub(super) snaps: Vec<Arc<SnapInfo>>,
    pub(super) by_name: HashMap<String, usize>,
    /// Day → `HHMM_<name>` → snapshot, in name order.
    pub(super) days: BTreeMap<String, BTreeMap<String, usize>>,
    /// Every snapshot object listed (also filtered out ones): a new one triggers a rebuild.
    pub(super) listed: HashSet<Id>,
    pub(super) unreadable: Vec<(Id, String)>,
}

pub(super) fn listed_snapshots(vault: &Vault) -> Result<Vec<Id>> {
    Ok(vault
        .list_ids(SNAPSHOTS)?
        .into_iter()
        .map(|(id, _)| id)
        .collect())
}

/// Lay the `listed` snapshots out; those already read (in `old`) are not read again.
pub(super) fn build_layout(
    vault: &Vault,
    opts: &BrowseOptions,
    listed: Vec<Id>,
    old: Option<&Layout>,
) -> Result<Layout> {
    let known: HashMap<Id, &Snapshot> = old
        .map(|o| o.snaps.iter().map(|s| (s.id, &s.snapshot)).collect())
        .unwrap_or_default();
    let loaded: Vec<(Id, Result<Option<Snapshot>>)> = listed
        .par_iter()
        .map(|id| {
            if let Some(s) = known.get(id) {
                return (*id, Ok(Some((*s).clone())));
            }
            (*id, vault.load_snapshot_if_present(id))
        })
        .collect();
    let mut snaps: Vec<(Id, Snapshot)> = Vec::new();
    let mut unreadable = Vec::new();
    for (id, r) in loaded {
        match r {
            Ok(Some(s)) if opts.filter.matches(&s) => snaps.push((id, s)),
            Ok(_) => {}
            Err(e) => unreadable.push((id, e.to_string())),
        }
    }
    snaps.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
    // Short ids that two snapshots share are written out in full for both.
    let mut shorts: HashMap<String, usize> = HashMap::new();
    for (id, _) in &snaps {
        *shorts.entry(id.short()).or_default() += 1;
    }
    let mut layout = Layout {
        snaps: Vec::new(),
        by_name: HashMap::new(),
        days: BTreeMap::new(),
        listed: listed.into_iter().collect(),
        unreadable,
    };
    for (i, (id, snapshot)) in snaps.into_iter().enumerate() {
        let name = if shorts[&id.short()] > 1 {
            id.to_hex()
        } else {
            id.short()
        };
        let local = snapshot.time.to_zoned(opts.time_zone.clone());
        let day = local.strftime("%Y-%m-%d").to_string();
        let day_name = format!("{}_{name}", local.strftime("%H%M"));
        layout.by_name.insert(name.clone(), i);
        layout
            .days
            .entry(day.clone())
            .or_default()
            .insert(day_name.clone(), i);
        layout.snaps.push(Arc::new(SnapInfo {
            id,
            name,
            day,
            day_name,
            snapshot,
        }));
    }
    Ok(layout)
}
