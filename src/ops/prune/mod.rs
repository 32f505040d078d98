//! Prune: delete what no snapshot uses, and repack packs that are mostly unused.
//!
//! Ordering (formats/ §12.6): new packs first, then the index files that replace the old ones
//! naming what goes (the last of them supersedes those), and only then deletions. A crash at
//! any point leaves a vault whose every snapshot still resolves. The caller holds an exclusive
//! lock; `fence` re-checks it before the first write that removes anything.
//!
//! Memory and work (issue 18): the index is never held decoded. Index files are read a batch
//! at a time into an index built like a backup's (on disk past the memory budget); prune keeps
//! per pack only its sizes and fate, and the used set is one bit per blob. Only index files
//! that name something that goes are rewritten (small ones merged along the way), so what
//! prune writes follows what changed, not the size of the vault.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::vault::used::UsedSet;
use crate::vault::{SnapshotScan, Vault};

mod commit;
mod index_out;
mod repack;
mod survey;
mod usage;

pub(crate) use index_out::write_index;
use survey::{Built, Survey};
use usage::Removal;

/// Index files written by prune list at most this many blobs each (about 2 MiB).
const BLOBS_PER_INDEX_FILE: usize = 50_000;
/// Listings of `snapshots/` and `index/` taken together, before the work and again before the
/// commit: an object must be missed by all four to be missed.
const LISTINGS: usize = 2;
/// Index files fetched at once (in parallel); each batch is taken in and dropped.
const INDEX_BATCH: usize = 32;

#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Compute and report, change nothing.
    pub dry_run: bool,
    /// Repack partly used packs until unused bytes are at most this fraction of what stays.
    pub max_unused: f64,
    /// Snapshots to treat as already forgotten (only with `dry_run`: `forget --dry-run --prune`
    /// previews what forgetting them would free).
    pub assume_forgotten: HashSet<Id>,
    /// Index files prune writes list at most this many blobs; files in force listing fewer
    /// than half as many are merged when prune writes index files anyway.
    pub index_file_blobs: usize,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            dry_run: false,
            max_unused: 0.05,
            assume_forgotten: HashSet::new(),
            index_file_blobs: BLOBS_PER_INDEX_FILE,
        }
    }
}

/// What prune found and did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    pub snapshots: usize,
    pub packs_before: usize,
    pub bytes_before: u64,
    /// Distinct blobs the snapshots use.
    pub blobs_used: usize,
    /// Packs holding nothing used: deleted.
    pub packs_deleted: usize,
    /// Partly used packs whose used blobs were copied into new packs, then deleted.
    pub packs_repacked: usize,
    pub packs_written: usize,
    /// Stored bytes copied into new packs.
    pub bytes_rewritten: u64,
    /// Stored bytes removed (deleted and repacked packs) minus the bytes of new packs.
    pub bytes_freed: u64,
    pub packs_after: usize,
    pub bytes_after: u64,
    /// Unused stored bytes that remain in packs kept as they are.
    pub bytes_unused_after: u64,
    /// Packs that no index file listed (left by interrupted backups); indexed or deleted now.
    pub packs_unindexed: usize,
    /// Packs no index lists and whose header cannot be read: left alone for `check` to report.
    pub packs_unreadable: Vec<Id>,
    /// Packs no index lists whose bytes are damaged (a torn upload), found while every index
    /// file was readable: nothing can refer to them, so they are deleted.
    pub packs_damaged_deleted: Vec<Id>,
    /// Index entries for packs that no longer exist: dropped (no snapshot needed them).
    pub packs_missing: usize,
    pub index_files_replaced: usize,
    pub index_files_written: usize,
    /// Forget records whose bytes are damaged (torn uploads of forgets that deleted nothing):
    /// deleted (formats/ §9.3).
    pub forget_records_damaged_deleted: Vec<Id>,
    /// Spool files in a vault folder's `tmp/` left by killed backups (formats/ §2): removed.
    pub spool_files_removed: usize,
    /// Whether prune kept its index in a working file (past `--index-memory`, formats/ §7.4).
    pub index_on_disk: bool,
}

/// Delete what no snapshot uses and repack packs that are mostly unused, under the exclusive
/// lock `fence` checks (see the module documentation for the order).
pub fn prune(
    vault: &Vault,
    opts: &PruneOptions,
    fence: &dyn Fn() -> Result<()>,
) -> Result<PruneReport> {
    let mut report = PruneReport {
        dry_run: opts.dry_run,
        ..PruneReport::default()
    };
    check_options(opts)?;
    let plan = Plan::make(vault, opts, &mut report)?;
    let nothing_to_do = nothing_to_do(&report, &plan.survey);
    if !opts.dry_run {
        // Under the exclusive lock no writer of this vault is running: every spool file in
        // the vault's own folder was left by one that was killed.
        fence()?;
        report.spool_files_removed = vault.clear_own_spool()?;
    }
    if opts.dry_run || nothing_to_do {
        plan.removal.estimate(&mut report);
        return Ok(report);
    }
    plan.carry_out(vault, opts, fence, report)
}

/// What steps 1 to 3 found and decided.
struct Plan {
    survey: Survey,
    built: Built,
    snaps: SnapshotScan,
    used: UsedSet,
    removal: Removal,
}

impl Plan {
    /// Steps 1 to 3: what the vault holds, what its snapshots use, and each pack's fate.
    fn make(vault: &Vault, opts: &PruneOptions, report: &mut PruneReport) -> Result<Plan> {
        // 1. Everything the vault holds: every index file, a batch at a time, into an index of
        // the packs that still exist; then the headers of packs no index file in force names
        // (interrupted backups, or an index file that is damaged).
        let (mut survey, built) = Survey::read(vault, report)?;

        // 2. What the snapshots use. Prune must see every snapshot whole, or it could delete
        // what an unreadable one needs.
        let snaps = usage::read_snapshots(vault, &opts.assume_forgotten)?;
        report.snapshots = snaps.readable.len();
        let used = crate::vault::used::used_set(vault, &built.index, &snaps.readable)?;
        report.blobs_used = used.count();

        // 3. How much of each pack is used: a used blob counts in the pack the index resolves
        // it to (its other copies are unused).
        usage::count_used(&built.index, &used, &built.slot_of, &mut survey.states)?;
        // Decide: packs with nothing used go; then the most wasteful partly used packs are
        // repacked until what stays unused is within the limit.
        let unused_after = usage::decide_fates(&mut survey.states, opts.max_unused);
        let removal = usage::tally(&survey.states, unused_after, report);
        report.forget_records_damaged_deleted =
            crate::ops::forget::scan_forgets(vault)?.damaged_confirmed(vault);
        Ok(Plan {
            survey,
            built,
            snaps,
            used,
            removal,
        })
    }

    /// Steps 4 to 7: new packs, listings checked again, new index files, then deletions.
    fn carry_out(
        self,
        vault: &Vault,
        opts: &PruneOptions,
        fence: &dyn Fn() -> Result<()>,
        mut report: PruneReport,
    ) -> Result<PruneReport> {
        let Plan {
            mut survey,
            built,
            snaps,
            used,
            removal,
        } = self;
        // 4. New packs with the used blobs of the packs being repacked, each blob checked
        // first: prune must never copy damage into a new pack and then delete the last good
        // copy.
        let repacks = report.packs_repacked > 0;
        let moving = repack::moving_blobs(&built, &used, &survey.states, repacks)?;
        drop(built);
        let written = repack::repack_packs(vault, &survey.states, &moving)?;
        drop(moving);
        report.packs_written = written.len();
        let written_bytes: u64 = written.iter().map(|(_, size)| *size).sum();
        commit::confirm_listings(vault, &snaps, &survey)?;

        // 5. Which index files are replaced: those that cannot be read or name a pack that
        // goes (or is gone), and, when index files are being written anyway, the small ones.
        let writes_packs = !written.is_empty();
        let replaced = commit::choose_replaced(&mut survey, opts.index_file_blobs, writes_packs);

        // 6. Index files for every kept pack no staying file names, and the new packs; the
        // last supersedes the replaced files.
        fence()?;
        let max_blobs = opts.index_file_blobs.max(1);
        report.index_files_written =
            commit::write_index_files(vault, &mut survey, &replaced, written, max_blobs, fence)?;
        report.index_files_replaced = replaced.old.len();

        // 7. Deletions, now that no index in force names what goes.
        fence()?;
        commit::delete_old(vault, &replaced, &survey, &report)?;
        let packs_written = report.packs_written;
        removal.totals(&mut report, packs_written, written_bytes);
        Ok(report)
    }
}

/// Refuse options prune cannot honour.
fn check_options(opts: &PruneOptions) -> Result<()> {
    if !opts.dry_run && !opts.assume_forgotten.is_empty() {
        return Err(Error::InvalidInput(
            "prune can only assume snapshots forgotten in a dry run".into(),
        ));
    }
    if !(0.0..=1.0).contains(&opts.max_unused) {
        return Err(Error::InvalidInput(
            "--max-unused must be between 0% and 100%".into(),
        ));
    }
    Ok(())
}

/// Whether the vault is already as prune would leave it: nothing goes, is repacked, indexed,
/// dropped or replaced.
fn nothing_to_do(report: &PruneReport, survey: &Survey) -> bool {
    // Index files that another one supersedes, still stored.
    let stale = survey
        .files
        .iter()
        .any(|f| survey.superseded.contains(&f.id));
    report.packs_deleted == 0
        && report.packs_repacked == 0
        && report.forget_records_damaged_deleted.is_empty()
        && report.packs_unindexed == 0
        && report.packs_missing == 0
        && report.packs_damaged_deleted.is_empty()
        && survey.unreadable_files == 0
        && !stale
}
