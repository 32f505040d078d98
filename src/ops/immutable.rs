//! Keeping an immutable vault immutable (formats/ §3.2): after each backup and forget, every
//! object a kept snapshot needs is retained until at least now + `days` (extended, with slack,
//! before it would fall short); objects only forgotten snapshots needed are left to expire.
//! Prune then removes old versions whose retention has ended, so the bucket does not grow
//! without bound.

use std::collections::HashSet;

use jiff::Timestamp;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::config::Immutable;
use crate::store::s3lock::{S3Lock, VersionDelete, must_hold_until, retain_until};
use crate::vault::{CONFIG, INDEX, KEYS, SNAPSHOTS, Vault, pack_name};

/// What [`keep_retained`] found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetentionReport {
    /// Objects kept snapshots need (config, key files, snapshots, index files, used packs).
    pub objects: usize,
    /// Of those, retentions extended now.
    pub extended: usize,
    /// The earliest retain-until among them, after any extension.
    pub immutable_until: Option<Timestamp>,
}

/// What [`sweep_versions`] found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepReport {
    /// Old versions and delete markers removed (their retention had ended).
    pub versions_removed: usize,
    pub bytes_removed: u64,
    /// Old versions still held by their retention, their bytes, and the latest date.
    pub versions_held: usize,
    pub bytes_held: u64,
    pub held_until: Option<Timestamp>,
}

fn lock_of(vault: &Vault) -> Result<Option<(&S3Lock, Immutable)>> {
    let Some(policy) = vault.config().immutable else {
        return Ok(None);
    };
    match vault.store().object_lock() {
        Some(l) => Ok(Some((l, policy))),
        None => Err(Error::InvalidInput(format!(
            "vault {} is immutable (S3 Object Lock) but this store cannot set retention; open it through its s3:// URL",
            vault.location()
        ))),
    }
}

/// Every object the vault's snapshots need, by name.
fn needed(vault: &Vault) -> Result<Vec<String>> {
    let index = vault.load_index()?;
    let snaps = vault.list_snapshots()?;
    let used = crate::vault::used::used_set(vault, &index, &snaps)?;
    let mut packs: HashSet<String> = HashSet::new();
    index.for_each_entry(&mut |pos, _, b| {
        if used.contains(pos)
            && let Some(l) = index.get(&b.id)
        {
            packs.insert(pack_name(&l.pack));
        }
    })?;
    // An on-disk index that failed a read answered "not found": that pack would be left out.
    index.check_io()?;
    let mut out = vec![CONFIG.to_string()];
    // Forget records too: they are what tells a forgotten snapshot from a deleted one.
    for prefix in [KEYS, INDEX, crate::ops::forget::FORGETS] {
        out.extend(vault.store().list(prefix)?.into_iter().map(|o| o.name));
    }
    out.extend(
        snaps
            .iter()
            .map(|(id, _)| format!("{SNAPSHOTS}/{}", id.to_hex())),
    );
    let mut packs: Vec<String> = packs.into_iter().collect();
    packs.sort();
    out.extend(packs);
    Ok(out)
}

/// Extend the retention of every object the vault's snapshots need to at least now + `days`
/// (to now + `days` + slack when it falls short). With `measure_only`, change nothing and only
/// report the earliest retain-until (`stats`). A vault that is not immutable gives `None`.
pub fn keep_retained(vault: &Vault, measure_only: bool) -> Result<Option<RetentionReport>> {
    let Some((lock, policy)) = lock_of(vault)? else {
        return Ok(None);
    };
    let names = needed(vault)?;
    let now = Timestamp::now();
    let floor = must_hold_until(&policy, now);
    let target = retain_until(&policy, now);
    let results: Vec<Result<(bool, Timestamp)>> =
        crate::store::in_download_pool(vault.store().downloads(), || {
            names
                .par_iter()
                .map(|name| {
                    let current = lock.retention(name, None)?.map(|(_, u)| u);
                    match current {
                        Some(u) if u >= floor => Ok((false, u)),
                        _ if measure_only => Ok((false, current.unwrap_or(now))),
                        _ => lock
                            .extend(name, None, policy.mode, target)
                            .map(|()| (true, target)),
                    }
                })
                .collect()
        });
    let mut report = RetentionReport {
        objects: names.len(),
        ..RetentionReport::default()
    };
    for r in results {
        let (extended, until) = r?;
        report.extended += usize::from(extended);
        report.immutable_until = Some(report.immutable_until.map_or(until, |e| e.min(until)));
    }
    Ok(Some(report))
}

/// Remove old versions (and delete markers) whose retention has ended, so deleted and
/// superseded objects do not stay in the bucket for ever; report what retention still holds.
/// Current versions are never touched here (prune deletes those itself).
pub fn sweep_versions(vault: &Vault, dry_run: bool) -> Result<Option<SweepReport>> {
    let Some((lock, _)) = lock_of(vault)? else {
        return Ok(None);
    };
    let now = Timestamp::now();
    let versions = lock.versions("")?;
    let mut report = SweepReport::default();
    // Version ids removed (or, in a dry run, that would be).
    let mut gone: HashSet<&str> = HashSet::new();
    for v in versions.iter().filter(|v| !v.is_latest && !v.delete_marker) {
        let held = match lock.retention(&v.name, Some(&v.version_id))? {
            Some((_, until)) if until > now => Some(until),
            _ => None,
        };
        match held {
            Some(until) => {
                report.versions_held += 1;
                report.bytes_held += v.size;
                report.held_until = Some(report.held_until.map_or(until, |h| h.max(until)));
            }
            None if dry_run => {
                report.versions_removed += 1;
                report.bytes_removed += v.size;
                gone.insert(&v.version_id);
            }
            None => match lock.delete_version(&v.name, &v.version_id)? {
                VersionDelete::Deleted => {
                    report.versions_removed += 1;
                    report.bytes_removed += v.size;
                    gone.insert(&v.version_id);
                }
                // Its retention was extended meanwhile.
                VersionDelete::Locked => report.versions_held += 1,
            },
        }
    }
    // A delete marker with no version left of its object hides nothing: remove it too.
    let remaining: HashSet<&str> = versions
        .iter()
        .filter(|v| !v.delete_marker && !gone.contains(v.version_id.as_str()))
        .map(|v| v.name.as_str())
        .collect();
    for v in versions.iter().filter(|v| v.delete_marker) {
        if remaining.contains(v.name.as_str()) {
            continue;
        }
        if !dry_run {
            lock.delete_version(&v.name, &v.version_id)?;
        }
        report.versions_removed += 1;
    }
    Ok(Some(report))
}
