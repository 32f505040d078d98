//! `repair index`: rebuild every index file from the pack headers (formats/ §6.3).

use std::collections::HashMap;

use serde::Serialize;

use super::{read_headers, replace_index};
use crate::error::Result;
use crate::format::id::Id;
use crate::format::index::IndexPack;
use crate::vault::{DATA, Vault};

#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairIndexReport {
    pub dry_run: bool,
    /// Packs the new index lists, and their blobs.
    pub packs: usize,
    pub blobs: usize,
    /// Packs whose header cannot be read but which an old index file still described: kept
    /// with the old entries (their blobs may still be readable; `check --read-data` tells).
    pub packs_from_old_index: Vec<Id>,
    /// Packs whose header cannot be read and that no old index file describes: left out.
    pub packs_unreadable: Vec<Id>,
    /// Packs old index files named that storage no longer holds: dropped.
    pub packs_missing: usize,
    pub index_files_replaced: usize,
    pub index_files_written: usize,
}

/// Rebuild the index from the pack headers. The caller holds an exclusive lock; `fence`
/// re-checks it before the new index is stored and before old files are deleted.
pub fn repair_index(
    vault: &Vault,
    dry_run: bool,
    fence: &dyn Fn() -> Result<()>,
) -> Result<RepairIndexReport> {
    let mut report = RepairIndexReport {
        dry_run,
        ..Default::default()
    };
    let scan = vault.scan_index()?;
    let old: HashMap<Id, IndexPack> = scan.packs().into_iter().map(|p| (p.id, p)).collect();
    let mut stored = vault.list_ids(DATA)?;
    stored.sort();
    report.packs_missing = old
        .keys()
        .filter(|id| stored.binary_search_by_key(*id, |(i, _)| *i).is_err())
        .count();
    let mut packs = Vec::new();
    for (id, h) in read_headers(vault, &stored) {
        match (h, old.get(&id)) {
            (Ok(p), _) => packs.push(p),
            (Err(_), Some(p)) => {
                report.packs_from_old_index.push(id);
                packs.push(p.clone());
            }
            (Err(_), None) => report.packs_unreadable.push(id),
        }
    }
    report.packs = packs.len();
    report.blobs = packs.iter().map(|p| p.blobs.len()).sum();
    report.index_files_replaced = scan.all.len();
    if dry_run || (packs.is_empty() && scan.all.is_empty()) {
        return Ok(report);
    }
    report.index_files_written = replace_index(vault, packs, &scan.all, fence)?;
    Ok(report)
}
