//! Check of the snapshot records: the ones that cannot be read, and the chain's evidence of
//! snapshots deleted outside sitevault (formats/ §9.3).

use std::collections::HashSet;

use super::{CheckReport, DamagedSnapshot, problem};
use crate::error::{ErrorKind, Result};
use crate::format::id::Id;
use crate::ops::forget::{FORGETS, chain_breaks, scan_forgets};
use crate::vault::{SnapshotScan, Vault};

/// Read the snapshot records, reporting the unreadable ones and the vanished predecessors.
pub(super) fn check_snapshots(vault: &Vault, report: &mut CheckReport) -> Result<SnapshotScan> {
    let snaps = vault.scan_snapshots()?;
    report.snapshots = snaps.readable.len() + snaps.unreadable.len();
    for (id, e) in &snaps.unreadable {
        report.errors.push(problem(
            format!("snapshot {}", id.to_hex()),
            format!(
                "{e}; it cannot be restored: `sitevault forget {}` removes it",
                id.short()
            ),
        ));
        report.damaged_snapshots.push(DamagedSnapshot {
            id: *id,
            time: None,
            host: String::new(),
            label: String::new(),
            unreadable: Some(e.to_string()),
            files: vec![],
            dirs: vec![],
        });
    }
    tamper_evidence(vault, &snaps, report)?;
    Ok(snaps)
}

/// Name every predecessor that vanished without a forget record, and damaged forget records.
fn tamper_evidence(vault: &Vault, snaps: &SnapshotScan, report: &mut CheckReport) -> Result<()> {
    let forgets = scan_forgets(vault)?;
    let present: HashSet<Id> = snaps
        .readable
        .iter()
        .map(|(id, _)| *id)
        .chain(snaps.unreadable.iter().map(|(id, _)| *id))
        .collect();
    let breaks = chain_breaks(&snaps.readable, &present, &forgets.forgotten());
    // A record that cannot be read matters only if it might explain a vanished snapshot;
    // otherwise it is a torn upload of a forget that deleted nothing (formats/ §9.3).
    for (id, e) in &forgets.unreadable {
        let object = format!("{FORGETS}/{}", id.to_hex());
        if !breaks.is_empty() {
            report.errors.push(problem(object, e.to_string()));
        } else if e.kind() == ErrorKind::Corrupt {
            report.warnings.push(problem(
                object,
                format!(
                    "{e}; a torn upload of a forget that deleted nothing (no snapshot is missing without a record); `sitevault prune` removes it"
                ),
            ));
        } else {
            report.warnings.push(problem(object, e.to_string()));
        }
    }
    let caveat = if forgets.unreadable.is_empty() {
        ""
    } else {
        " (unless a damaged forget record names it)"
    };
    for b in &breaks {
        report.errors.push(problem(
            format!("snapshot {}", b.missing.to_hex()),
            format!(
                "gone, and no forget record names it{caveat}: it was the snapshot before {} (host {}, label {:?}, {}), so it was deleted outside sitevault (an attack or storage loss); on a versioned S3 bucket `--vault-as-of` a time before the deletion still reads it",
                b.successor.short(),
                b.host,
                b.label,
                b.before
            ),
        ));
    }
    report.vanished_snapshots = breaks;
    Ok(())
}
