//! Restore: recreate a snapshot's entries under a target folder or at their original paths.
//! Files are written to a temporary name and renamed into place, so a destination file is
//! never left half-written.
//!
//! `select` chooses the entries and their destinations, `decide` compares each with what is
//! already there, `runs` plans the range reads, `fetch` downloads and writes the files, and
//! `disk` does the writes to the local filesystem.

mod decide;
mod disk;
mod fetch;
mod runs;
mod select;

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeKind};
use crate::paths;
use crate::pattern::PathFilter;
use crate::vault::Vault;
use crate::vault::index::Index;
use crate::vault::walk;

use decide::{decide, same_content};
use disk::{apply_metadata, remove_stale_temporaries, restore_symlink};
use select::Item;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `DIR/<original path without its root>`.
    Target(PathBuf),
    /// Each entry's original absolute path.
    Original,
}

/// What to do with a file that already exists at the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IfExists {
    /// Replace it (atomically) when its content differs; leave identical files untouched.
    #[default]
    Overwrite,
    /// Leave every existing file alone.
    Skip,
    /// Write the restored version beside it as `<stem> (restored <stamp>)<.ext>`.
    KeepBoth,
}

impl std::str::FromStr for IfExists {
    type Err = Error;
    fn from_str(s: &str) -> Result<IfExists> {
        match s {
            "overwrite" => Ok(IfExists::Overwrite),
            "skip" => Ok(IfExists::Skip),
            "keep-both" => Ok(IfExists::KeepBoth),
            _ => Err(Error::InvalidInput(format!(
                "--if-exists {s:?}: give overwrite, skip or keep-both"
            ))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub dest: Destination,
    /// Which entries to restore (`--include`/`--exclude`); empty restores everything.
    pub filter: PathFilter,
    pub if_exists: IfExists,
    /// Decide and report every action, write nothing.
    pub dry_run: bool,
    /// Re-read every restored file and check it against the snapshot.
    pub verify: bool,
    /// Goes into keep-both names, e.g. `2026-11-20 0300`.
    pub stamp: String,
    /// Counters a watcher (the console's progress view) reads while the restore runs.
    pub progress: Option<Arc<RestoreProgress>>,
}

/// How far a running restore is: totals once the plan is made, then files and bytes written.
#[derive(Debug, Default)]
pub struct RestoreProgress {
    pub files_total: AtomicU64,
    pub bytes_total: AtomicU64,
    pub files_done: AtomicU64,
    pub bytes_done: AtomicU64,
}

impl RestoreOptions {
    pub fn new(dest: Destination) -> RestoreOptions {
        RestoreOptions {
            dest,
            filter: PathFilter::default(),
            if_exists: IfExists::default(),
            dry_run: false,
            verify: false,
            stamp: String::new(),
            progress: None,
        }
    }
}

/// What restore did (or, in a dry run, would do) with one file or symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Nothing was there: written.
    Write,
    /// Something different was there: replaced.
    Overwrite,
    /// The same content was already there: left untouched.
    Unchanged,
    /// Something was there and `--if-exists skip` left it.
    Skip,
    /// Something different was there: the restored version was written beside it.
    KeepBoth,
}

/// One planned action, for dry runs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Planned {
    pub path: String,
    pub action: Action,
    /// Where a keep-both copy goes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written_to: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreSummary {
    /// Files written (new, overwritten or kept both).
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes_written: u64,
    pub files_unchanged: u64,
    pub files_skipped: u64,
    pub files_kept_both: u64,
    /// Files re-read and found correct by `verify`.
    pub files_verified: u64,
    /// Entries that could not be restored, with the reason; empty on success.
    pub errors: Vec<String>,
}

/// Every action a dry run decided, with its summary.
#[derive(Debug, Clone, Default)]
pub struct RestorePlan {
    pub summary: RestoreSummary,
    pub actions: Vec<Planned>,
}

pub fn restore(
    vault: &Vault,
    index: &Index,
    snapshot: &Snapshot,
    opts: &RestoreOptions,
) -> Result<RestorePlan> {
    let entries = walk::entries(vault, index, &snapshot.tree)?;
    restore_entries(vault, index, snapshot, opts, &entries)
}

/// Restore the given entries of `snapshot`: a list of steps, each one below.
fn restore_entries(
    vault: &Vault,
    index: &Index,
    snapshot: &Snapshot,
    opts: &RestoreOptions,
    entries: &[walk::Entry],
) -> Result<RestorePlan> {
    let style = snapshot.path_style;
    let selected = select::select(entries, style, opts)?;
    let placed = select::place(entries, &selected, style, &opts.dest)?;
    if !opts.dry_run
        && let Destination::Target(dir) = &opts.dest
    {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let r = Restorer {
        vault,
        index,
        opts,
        errors: Mutex::new(placed.unplaceable),
    };
    let items = placed.items;
    let mut summary = RestoreSummary {
        dirs: r.create_dirs(&items),
        ..RestoreSummary::default()
    };
    let decided = r.decide_all(&items, &mut summary);
    if opts.dry_run {
        return Ok(r.dry_run_plan(summary, decided.actions));
    }
    let written = r.write_files(&decided.to_write);
    summary.symlinks = r.restore_symlinks(&decided.links);
    r.restore_unchanged_metadata(&decided.unchanged);
    r.restore_dir_metadata(&items, snapshot);
    if opts.verify {
        let ok = written.ok.into_inner().expect("written lock");
        // Unchanged files were compared with the snapshot when they were found identical.
        summary.files_verified = r.verify(&decided.to_write, ok) + summary.files_unchanged;
    }
    summary.files = written.files.into_inner();
    summary.files_kept_both = decided
        .to_write
        .iter()
        .filter(|(_, _, action)| *action == Action::KeepBoth)
        .count() as u64;
    summary.bytes_written = written.bytes.into_inner();
    summary.errors = r.errors.into_inner().expect("errors lock");
    Ok(RestorePlan {
        summary,
        actions: decided.actions,
    })
}

/// One restore's shared state: the vault it reads, what was asked, and the errors so far.
struct Restorer<'a> {
    vault: &'a Vault,
    index: &'a Index,
    opts: &'a RestoreOptions,
    /// Entries that could not be restored, with the reason.
    errors: Mutex<Vec<String>>,
}

/// The files and symlinks to act on, sorted by what is done to them.
#[derive(Default)]
struct Decided<'a> {
    to_write: Vec<(PathBuf, &'a Node, Action)>,
    links: Vec<(PathBuf, &'a Node)>,
    /// Identical content already in place: only the metadata is restored.
    unchanged: Vec<(PathBuf, &'a Node)>,
    /// Every decision, kept in a dry run only.
    actions: Vec<Planned>,
}

impl Restorer<'_> {
    /// Record that `path` could not be restored, and why.
    fn fail(&self, path: &Path, e: &dyn std::fmt::Display) {
        self.errors
            .lock()
            .expect("errors lock")
            .push(format!("{}: {e}", path.display()))
    }

    /// Create the directories (none in a dry run); returns how many selected ones exist now.
    fn create_dirs(&self, items: &[Item]) -> u64 {
        let mut dirs = 0;
        // Directories first, parents before children, so files have somewhere to go. Temporary
        // files an interrupted restore left behind are removed on the way.
        for it in items.iter().filter(|it| it.entry.node.is_dir()) {
            if self.opts.dry_run {
                continue;
            }
            match fs::create_dir_all(&it.path) {
                Ok(()) => {
                    dirs += u64::from(!it.only_parent);
                    remove_stale_temporaries(&it.path);
                }
                Err(err) => self.fail(&it.path, &err),
            }
        }
        dirs
    }

    /// Decide, per file and symlink, what to do about what is already there; counts the
    /// unchanged and skipped files in `summary`.
    fn decide_all<'e>(&self, items: &[Item<'e>], summary: &mut RestoreSummary) -> Decided<'e> {
        let decided: Vec<(usize, Result<(Action, PathBuf)>)> = items
            .par_iter()
            .enumerate()
            .filter(|(_, it)| !it.entry.node.is_dir())
            .map(|(i, it)| {
                let d = decide(self.vault, self.index, &it.path, &it.entry.node, self.opts);
                (i, d)
            })
            .collect();
        let mut out = Decided::default();
        for (i, d) in decided {
            let it = &items[i];
            let (action, dest) = match d {
                Ok(x) => x,
                Err(err) => {
                    self.fail(&it.path, &err);
                    continue;
                }
            };
            match action {
                Action::Unchanged => summary.files_unchanged += 1,
                Action::Skip => summary.files_skipped += 1,
                _ => {}
            }
            if self.opts.dry_run {
                out.actions.push(Planned {
                    path: it.path.display().to_string(),
                    action,
                    written_to: (action == Action::KeepBoth).then(|| dest.display().to_string()),
                });
                continue;
            }
            let node = &it.entry.node;
            if action == Action::Unchanged && dest == it.path {
                // Same content; its metadata (mode, mtime) is still restored.
                out.unchanged.push((dest, node));
            } else if matches!(action, Action::Write | Action::Overwrite | Action::KeepBoth) {
                match &node.kind {
                    NodeKind::Symlink { .. } => out.links.push((dest, node)),
                    _ => out.to_write.push((dest, node, action)),
                }
            }
        }
        out
    }

    /// A dry run's answer: every decision, and the summary of what it would do.
    fn dry_run_plan(self, mut summary: RestoreSummary, actions: Vec<Planned>) -> RestorePlan {
        summary.errors = self.errors.into_inner().expect("errors lock");
        summary.files_kept_both = actions
            .iter()
            .filter(|a| a.action == Action::KeepBoth)
            .count() as u64;
        RestorePlan { summary, actions }
    }

    /// Create the symlinks; returns how many were made.
    fn restore_symlinks(&self, links: &[(PathBuf, &Node)]) -> u64 {
        let mut made = 0;
        for (path, node) in links {
            let NodeKind::Symlink { target } = &node.kind else {
                continue;
            };
            match restore_symlink(path, target, node) {
                Ok(()) => made += 1,
                Err(err) => self.fail(path, &err),
            }
        }
        made
    }

    /// Give the entries found identical their metadata.
    fn restore_unchanged_metadata(&self, unchanged: &[(PathBuf, &Node)]) {
        unchanged.par_iter().for_each(|(path, node)| {
            let link = matches!(node.kind, NodeKind::Symlink { .. });
            if let Err(err) = apply_metadata(path, node, link) {
                self.fail(path, &err);
            }
        });
    }

    /// Directory metadata last, deepest first: writing inside a directory changes its mtime.
    fn restore_dir_metadata(&self, items: &[Item], snapshot: &Snapshot) {
        let shared = shared_parents(&self.opts.dest, snapshot);
        for it in items.iter().rev().filter(|it| {
            it.entry.node.is_dir() && !it.only_parent && !shared.contains(&it.entry.components)
        }) {
            if let Err(err) = apply_metadata(&it.path, &it.entry.node, false) {
                self.fail(&it.path, &err);
            }
        }
    }

    /// Re-read each file in `to_write` that was written without error (`ok`) and check it
    /// against the snapshot; returns how many match.
    fn verify(&self, to_write: &[(PathBuf, &Node, Action)], ok: Vec<PathBuf>) -> u64 {
        let written: HashSet<PathBuf> = ok.into_iter().collect();
        let verified = AtomicU64::new(0);
        to_write
            .par_iter()
            .filter(|(path, _, _)| written.contains(path))
            .for_each(
                |(path, node, _)| match same_content(self.vault, self.index, path, node) {
                    Ok(true) => {
                        verified.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(false) => self.fail(
                        path,
                        &"verification failed: the file on disk differs from the snapshot",
                    ),
                    Err(err) => self.fail(path, &format!("verification failed: {err}")),
                },
            );
        verified.into_inner()
    }
}

/// The folders above the snapshot's paths, when restoring to the original place.
fn shared_parents(dest: &Destination, snapshot: &Snapshot) -> HashSet<Vec<Vec<u8>>> {
    // Back at the original place, the parents of the backed-up paths (`/srv`, `/home`, `E:\`)
    // are shared folders, not part of what was archived: leave their metadata alone.
    match dest {
        Destination::Original => snapshot
            .paths
            .iter()
            .filter_map(|p| paths::components(Path::new(p)).ok())
            .flat_map(|c| (0..c.len()).map(move |n| c[..n].to_vec()))
            .collect(),
        Destination::Target(_) => HashSet::new(),
    }
}
