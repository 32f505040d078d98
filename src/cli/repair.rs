//! `repair index|snapshots|packs`: put a damaged vault right, saying exactly what was lost.
//! Exit 0 when the repair is complete, 3 when something could not be saved (named on stdout).

use anyhow::Result;
use sitevault::repair::{self, RepairSnapshotsOptions, RepairSnapshotsReport};
use sitevault::{Id, Snapshot};

use super::args::*;
use super::context::*;

use super::exit::{EXIT_INCOMPLETE, EXIT_OK};
use super::output::{self, outln};

pub fn repair(a: RepairArgs) -> Result<u8> {
    match a.what {
        RepairCommand::Index(a) => index(a),
        RepairCommand::Snapshots(a) => snapshots(a),
        RepairCommand::Packs(a) => packs(a),
    }
}

fn index(a: RepairIndexArgs) -> Result<u8> {
    let vault = open(&a.repo)?;
    let lock = lock(&vault, &a.lock, true, "repair index")?;
    let r = repair::repair_index(&vault, a.dry_run, &|| lock.check())?;
    lock.release()?;
    let code = if r.packs_unreadable.is_empty() {
        EXIT_OK
    } else {
        EXIT_INCOMPLETE
    };
    if a.json {
        output::json(&serde_json::to_value(&r)?);
        return Ok(code);
    }
    for p in &r.packs_from_old_index {
        outln!(
            "pack {}: its header cannot be read; kept with what the old index said (run `sitevault check --read-data`)",
            p.to_hex()
        );
    }
    for p in &r.packs_unreadable {
        outln!(
            "pack {}: its header cannot be read and no index described it; left out (`sitevault repair packs --from` can heal what it held)",
            p.to_hex()
        );
    }
    outln!(
        "{}{} packs with {} blobs indexed from their headers; {} old index files replaced by {}; {} packs named by the old index are gone",
        if a.dry_run { "dry run: " } else { "" },
        r.packs,
        r.blobs,
        r.index_files_replaced,
        r.index_files_written,
        r.packs_missing
    );
    Ok(code)
}

fn snapshots(a: RepairSnapshotsArgs) -> Result<u8> {
    let vault = open(&a.repo)?;
    // Forgetting the originals deletes: that needs prune kept away, as forget does.
    let lock = lock(&vault, &a.lock, a.forget && !a.dry_run, "repair snapshots")?;
    let Chosen { snaps, unreadable } = chosen(&vault, &a)?;
    let opts = RepairSnapshotsOptions {
        dry_run: a.dry_run,
        forget: a.forget,
        read_data: a.read_data,
        host: hostname(),
    };
    let r = repair::repair_snapshots(&vault, &snaps, &unreadable, &opts, &|| lock.check())?;
    lock.release()?;
    let code = if r.unrepairable.is_empty() {
        EXIT_OK
    } else {
        EXIT_INCOMPLETE
    };
    if a.json {
        output::json(&serde_json::to_value(&r)?);
        return Ok(code);
    }
    print_snapshots(&a, &r);
    Ok(code)
}

/// What `repair snapshots` looks at.
struct Chosen {
    /// The snapshots named, else every one the filter matches.
    snaps: Vec<(Id, Snapshot)>,
    /// The unreadable records to report.
    unreadable: Vec<(Id, sitevault::Error)>,
}

/// The snapshots to look at and the unreadable records to report.
fn chosen(vault: &sitevault::Vault, a: &RepairSnapshotsArgs) -> Result<Chosen> {
    let f = filter(&a.filter);
    let scan = vault.scan_snapshots()?;
    let matching: Vec<_> = scan
        .readable
        .into_iter()
        .filter(|(_, s)| f.matches(s))
        .collect();
    let chosen = if a.snapshots.is_empty() {
        matching
    } else {
        let mut w = Vec::new();
        for r in &a.snapshots {
            w.push(sitevault::snapshot::select(&matching, r, &f)?.clone());
        }
        w
    };
    // Unreadable records are reported only when no particular snapshots were asked for.
    let unreadable = if a.snapshots.is_empty() {
        scan.unreadable
    } else {
        vec![]
    };
    Ok(Chosen {
        snaps: chosen,
        unreadable,
    })
}

/// `repair snapshots` as text: each repaired snapshot with what it left out, each one that
/// cannot be repaired, and the totals.
fn print_snapshots(a: &RepairSnapshotsArgs, r: &RepairSnapshotsReport) {
    for s in &r.repaired {
        let new = s.repaired.map_or_else(
            || "would be repaired".to_string(),
            |id| format!("repaired as {}", id.short()),
        );
        outln!(
            "snapshot {} ({}): {new}{}; {} files and {} folders left out:",
            s.original.short(),
            s.time,
            if s.forgotten {
                ", original forgotten"
            } else {
                ""
            },
            s.files_removed.len(),
            s.dirs_removed.len()
        );
        for d in &s.dirs_removed {
            outln!("  {d} (folder listing unreadable: everything below it)");
        }
        for p in &s.files_removed {
            outln!("  {p}");
        }
    }
    for u in &r.unrepairable {
        outln!(
            "snapshot {}: cannot be repaired: {}",
            u.id.short(),
            u.reason
        );
    }
    outln!(
        "{}{} snapshots looked at: {} intact, {} repaired, {} cannot be repaired{}",
        if a.dry_run { "dry run: " } else { "" },
        r.snapshots,
        r.intact,
        r.repaired.len(),
        r.unrepairable.len(),
        if a.read_data {
            format!("; {} chunks read and verified", r.blobs_verified)
        } else {
            "; only missing data was looked for (--read-data also finds damaged data)".into()
        }
    );
}

fn packs(a: RepairPacksArgs) -> Result<u8> {
    let other = open_other(&a.repo, &a.from, &a.from_password_file, &a.from_options)?;
    let vault = open(&a.repo)?;
    if other.config().id == vault.config().id {
        anyhow::bail!(
            "--from and --repo are the same vault ({}); give the other vault to heal from",
            vault.location()
        );
    }
    let _other_lock = lock(&other, &a.lock, false, "repair packs (source)")?;
    let lock = lock(&vault, &a.lock, !a.dry_run, "repair packs")?;
    let r = repair::repair_packs(&vault, &other, a.dry_run, &|| lock.check())?;
    lock.release()?;
    let code = if r.blobs_unhealed.is_empty() {
        EXIT_OK
    } else {
        EXIT_INCOMPLETE
    };
    if a.json {
        output::json(&serde_json::to_value(&r)?);
        return Ok(code);
    }
    for p in &r.damaged_packs {
        outln!("damaged pack {}", p.to_hex());
    }
    for b in &r.blobs_unhealed {
        outln!(
            "blob {}: not found intact in {}; `sitevault repair snapshots` saves the rest of the snapshots using it",
            b.to_hex(),
            other.location()
        );
    }
    if r.damaged_packs.is_empty() && r.blobs_lost == 0 {
        outln!("{} packs read: nothing is damaged", r.packs_read);
        return Ok(code);
    }
    outln!(
        "{}{} packs read, {} damaged; {} blobs lost, {} healed from {}, {} good blobs moved out of damaged packs; {} new packs ({}), {} damaged packs deleted",
        if a.dry_run { "dry run: " } else { "" },
        r.packs_read,
        r.damaged_packs.len(),
        r.blobs_lost,
        r.blobs_healed,
        other.location(),
        r.blobs_salvaged,
        r.packs_written,
        output::bytes(r.bytes_written),
        r.packs_deleted
    );
    Ok(code)
}
