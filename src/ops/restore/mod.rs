//! Restore: recreate a snapshot's entries under a target folder or at their original paths.
//! Files are written to a temporary name and renamed into place, so a destination file is
//! never left half-written.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::format::crypto::random_array;
use crate::format::id::Id;
use crate::format::pack::BlobKind;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeKind};
use crate::paths;
use crate::pattern::PathFilter;
use crate::store::in_download_pool;
use crate::vault::index::{BlobLocation, Index, check_blob_kind};
use crate::vault::walk;
use crate::vault::{Vault, pack_name};

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

struct Item<'a> {
    path: PathBuf,
    entry: &'a walk::Entry,
    /// An ancestor directory of a selected entry, not selected itself: created, nothing more.
    only_parent: bool,
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

fn restore_entries(
    vault: &Vault,
    index: &Index,
    snapshot: &Snapshot,
    opts: &RestoreOptions,
    entries: &[walk::Entry],
) -> Result<RestorePlan> {
    let style = snapshot.path_style;
    let selected: Vec<bool> = entries
        .iter()
        .map(|e| opts.filter.selects(style, &e.comps()))
        .collect();
    if !opts.filter.is_empty() && !selected.iter().any(|s| *s) {
        return Err(Error::InvalidInput(format!(
            "nothing in the snapshot matches {}; run `sitevault ls` to see its paths",
            opts.filter.describe()
        )));
    }
    // Parents of selected entries must exist for them to be written.
    let parents: HashSet<&[Vec<u8>]> = entries
        .iter()
        .zip(&selected)
        .filter(|(_, s)| **s)
        .flat_map(|(e, _)| (1..e.components.len()).map(move |n| &e.components[..n]))
        .collect();
    let mut planned: Vec<Item> = Vec::with_capacity(entries.len());
    // Entries whose name this platform cannot hold (a Linux name like `a:b` on Windows): each is
    // reported with everything below it, and the rest is restored.
    let mut unplaceable: Vec<String> = Vec::new();
    let mut skipped: Vec<&[Vec<u8>]> = Vec::new();
    for (e, sel) in entries.iter().zip(&selected) {
        let only_parent = !sel && e.node.is_dir() && parents.contains(e.components.as_slice());
        if !sel && !only_parent {
            continue;
        }
        if skipped.iter().any(|p| e.components.starts_with(p)) {
            continue;
        }
        let path = match &opts.dest {
            Destination::Target(dir) => paths::under_target(dir, style, &e.comps()),
            Destination::Original => paths::original(style, &e.comps()),
        };
        let path = match path {
            Ok(p) => p,
            Err(why @ Error::NameNotAllowed { .. }) => {
                let shown = String::from_utf8_lossy(&style.join(&e.comps())).into_owned();
                let below = if e.node.is_dir() {
                    " (and everything below it)"
                } else {
                    ""
                };
                unplaceable.push(format!("{shown}{below}: {why}"));
                skipped.push(&e.components);
                continue;
            }
            Err(err) => return Err(err),
        };
        planned.push(Item {
            path,
            entry: e,
            only_parent,
        });
    }
    if !opts.dry_run
        && let Destination::Target(dir) = &opts.dest
    {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }

    let errors = Mutex::new(unplaceable);
    let fail = |path: &Path, e: &dyn std::fmt::Display| {
        errors
            .lock()
            .expect("errors lock")
            .push(format!("{}: {e}", path.display()))
    };
    let mut summary = RestoreSummary::default();
    let mut actions: Vec<Planned> = Vec::new();

    // Directories first, parents before children, so files have somewhere to go. Temporary
    // files an interrupted restore left behind are removed on the way.
    for it in planned.iter().filter(|it| it.entry.node.is_dir()) {
        if opts.dry_run {
            continue;
        }
        match fs::create_dir_all(&it.path) {
            Ok(()) => {
                summary.dirs += u64::from(!it.only_parent);
                remove_stale_temporaries(&it.path);
            }
            Err(err) => fail(&it.path, &err),
        }
    }

    // Decide, per file and symlink, what to do about what is already there.
    let decided: Vec<(usize, Result<(Action, PathBuf)>)> = planned
        .par_iter()
        .enumerate()
        .filter(|(_, it)| !it.entry.node.is_dir())
        .map(|(i, it)| (i, decide(vault, index, &it.path, &it.entry.node, opts)))
        .collect();
    let mut to_write: Vec<(PathBuf, &Node, Action)> = Vec::new();
    let mut links: Vec<(PathBuf, &Node)> = Vec::new();
    let mut unchanged: Vec<(PathBuf, &Node)> = Vec::new();
    for (i, d) in decided {
        let it = &planned[i];
        let (action, dest) = match d {
            Ok(x) => x,
            Err(err) => {
                fail(&it.path, &err);
                continue;
            }
        };
        match action {
            Action::Unchanged => summary.files_unchanged += 1,
            Action::Skip => summary.files_skipped += 1,
            _ => {}
        }
        if opts.dry_run {
            actions.push(Planned {
                path: it.path.display().to_string(),
                action,
                written_to: (action == Action::KeepBoth).then(|| dest.display().to_string()),
            });
            continue;
        }
        if action == Action::Unchanged && dest == it.path {
            // Same content; its metadata (mode, mtime) is still restored.
            unchanged.push((dest, &it.entry.node));
        } else if matches!(action, Action::Write | Action::Overwrite | Action::KeepBoth) {
            match &it.entry.node.kind {
                NodeKind::Symlink { .. } => links.push((dest, &it.entry.node)),
                _ => to_write.push((dest, &it.entry.node, action)),
            }
        }
    }
    if opts.dry_run {
        summary.errors = errors.into_inner().expect("errors lock");
        summary.files_kept_both = actions
            .iter()
            .filter(|a| a.action == Action::KeepBoth)
            .count() as u64;
        return Ok(RestorePlan { summary, actions });
    }

    let files = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let kept_both = AtomicU64::new(0);
    let written_ok = Mutex::new(Vec::new());
    // Files whose blobs lie in one stretch of one pack (small files, the common case) are
    // grouped with their neighbours in the pack, so a pack is fetched once for many files;
    // larger files fetch their own runs, in parallel.
    let mut single: Vec<(&Path, &Node, Run)> = Vec::new();
    let mut multi: Vec<(&Path, &Node, Vec<Run>)> = Vec::new();
    for (path, node, _) in &to_write {
        if let NodeKind::File { chunks } = &node.kind {
            match plan_runs(index, chunks)
                .and_then(|(runs, total)| check_size(path, node, total).map(|_| runs))
            {
                Ok(mut runs) if runs.len() == 1 => single.push((path, node, runs.remove(0))),
                Ok(runs) => multi.push((path, node, runs)),
                Err(err) => fail(path, &err),
            }
        }
    }
    if let Some(p) = &opts.progress {
        let files_total = (single.len() + multi.len()) as u64;
        let bytes_total: u64 = single.iter().map(|f| f.1.size).sum::<u64>()
            + multi.iter().map(|f| f.1.size).sum::<u64>();
        p.files_total.store(files_total, Ordering::Relaxed);
        p.bytes_total.store(bytes_total, Ordering::Relaxed);
    }
    let done = |path: &Path, node: &Node, r: Result<()>| match r {
        Ok(()) => {
            files.fetch_add(1, Ordering::Relaxed);
            bytes.fetch_add(node.size, Ordering::Relaxed);
            if let Some(p) = &opts.progress {
                p.files_done.fetch_add(1, Ordering::Relaxed);
                p.bytes_done.fetch_add(node.size, Ordering::Relaxed);
            }
            written_ok
                .lock()
                .expect("written lock")
                .push(path.to_path_buf());
        }
        Err(err) => fail(path, &err),
    };
    let groups = group_by_pack(single);
    let small = || {
        groups.par_iter().for_each(|group| {
            let name = pack_name(&group.pack);
            match vault.store().get_range_exact(&name, group.start..group.end) {
                Ok(buf) => group.files.iter().for_each(|(path, node, run)| {
                    let r = write_file(path, node, |f, tmp| {
                        write_run(
                            vault,
                            &buf[(run.start - group.start) as usize..],
                            run,
                            f,
                            tmp,
                        )
                    });
                    done(path, node, r);
                }),
                Err(err) => group.files.iter().for_each(|(path, _, _)| fail(path, &err)),
            }
        });
    };
    let large = || {
        multi.par_iter().for_each(|(path, node, runs)| {
            let r = write_file(path, node, |f, tmp| {
                runs.par_iter().try_for_each(|run| {
                    let buf = vault
                        .store()
                        .get_range_exact(&pack_name(&run.pack), run.start..run.end)?;
                    write_run(vault, &buf, run, f, tmp)
                })
            });
            done(path, node, r);
        });
    };
    // Small and big files are fetched at the same time, so neither waits for the other's tail.
    in_download_pool(vault.store().downloads(), || rayon::join(small, large));
    for (_, _, action) in &to_write {
        if *action == Action::KeepBoth {
            kept_both.fetch_add(1, Ordering::Relaxed);
        }
    }
    for (path, node) in &links {
        let NodeKind::Symlink { target } = &node.kind else {
            continue;
        };
        match restore_symlink(path, target, node) {
            Ok(()) => summary.symlinks += 1,
            Err(err) => fail(path, &err),
        }
    }
    unchanged.par_iter().for_each(|(path, node)| {
        let link = matches!(node.kind, NodeKind::Symlink { .. });
        if let Err(err) = apply_metadata(path, node, link) {
            fail(path, &err);
        }
    });
    // Back at the original place, the parents of the backed-up paths (`/srv`, `/home`, `E:\`)
    // are shared folders, not part of what was archived: leave their metadata alone.
    let shared: HashSet<Vec<Vec<u8>>> = match &opts.dest {
        Destination::Original => snapshot
            .paths
            .iter()
            .filter_map(|p| paths::components(Path::new(p)).ok())
            .flat_map(|c| (0..c.len()).map(move |n| c[..n].to_vec()))
            .collect(),
        Destination::Target(_) => HashSet::new(),
    };
    // Directory metadata last, deepest first: writing inside a directory changes its mtime.
    for it in planned.iter().rev().filter(|it| {
        it.entry.node.is_dir() && !it.only_parent && !shared.contains(&it.entry.components)
    }) {
        if let Err(err) = apply_metadata(&it.path, &it.entry.node, false) {
            fail(&it.path, &err);
        }
    }
    if opts.verify {
        let written: HashSet<PathBuf> = written_ok
            .into_inner()
            .expect("written lock")
            .into_iter()
            .collect();
        let verified = AtomicU64::new(0);
        to_write
            .par_iter()
            .filter(|(path, _, _)| written.contains(path))
            .for_each(
                |(path, node, _)| match same_content(vault, index, path, node) {
                    Ok(true) => {
                        verified.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(false) => fail(
                        path,
                        &"verification failed: the file on disk differs from the snapshot",
                    ),
                    Err(err) => fail(path, &format!("verification failed: {err}")),
                },
            );
        // Unchanged files were compared with the snapshot when they were found identical.
        summary.files_verified = verified.into_inner() + summary.files_unchanged;
    }
    summary.files = files.into_inner();
    summary.files_kept_both = kept_both.into_inner();
    summary.bytes_written = bytes.into_inner();
    summary.errors = errors.into_inner().expect("errors lock");
    Ok(RestorePlan { summary, actions })
}

/// What to do with one file or symlink, and where it goes.
fn decide(
    vault: &Vault,
    index: &Index,
    path: &Path,
    node: &Node,
    opts: &RestoreOptions,
) -> Result<(Action, PathBuf)> {
    let meta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Action::Write, path.to_path_buf()));
        }
        Err(e) => return Err(Error::io(path, e)),
        Ok(m) => m,
    };
    if meta.is_dir() {
        return Err(Error::InvalidInput(
            "a directory is in the way; move it, or restore with --target".into(),
        ));
    }
    if opts.if_exists == IfExists::Skip {
        return Ok((Action::Skip, path.to_path_buf()));
    }
    if same_entry(vault, index, path, &meta, node)? {
        return Ok((Action::Unchanged, path.to_path_buf()));
    }
    if opts.if_exists == IfExists::Overwrite {
        return Ok((Action::Overwrite, path.to_path_buf()));
    }
    // Keep both: the first free `(restored …)` name, or one already holding this version.
    for n in 1..=100u32 {
        let alt = keep_both_name(path, &opts.stamp, n);
        match fs::symlink_metadata(&alt) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Action::KeepBoth, alt));
            }
            Err(e) => return Err(Error::io(&alt, e)),
            Ok(m) if !m.is_dir() && same_entry(vault, index, &alt, &m, node)? => {
                return Ok((Action::Unchanged, alt));
            }
            Ok(_) => {}
        }
    }
    Err(Error::InvalidInput(
        "100 restored copies are already beside it; clean some up".into(),
    ))
}

/// `dir/CM_CEN (restored 2026-11-20 0300).mdf`; the nth attempt adds ` n`.
pub fn keep_both_name(path: &Path, stamp: &str, n: u32) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The extension is after the last dot, unless that dot starts the name (`.profile`).
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name.as_str(), ""),
    };
    let suffix = if n > 1 {
        format!(" {n}")
    } else {
        String::new()
    };
    path.with_file_name(format!("{stem} (restored {stamp}{suffix}){ext}"))
}

/// Whether what is at `path` already is this entry: a file with the same content (compared
/// chunk by chunk against the chunk ids), or a symlink with the same target.
fn same_entry(
    vault: &Vault,
    index: &Index,
    path: &Path,
    meta: &fs::Metadata,
    node: &Node,
) -> Result<bool> {
    match &node.kind {
        NodeKind::File { .. } if meta.is_file() => same_content(vault, index, path, node),
        NodeKind::Symlink { target } if meta.file_type().is_symlink() => {
            let have = fs::read_link(path).map_err(|e| Error::io(path, e))?;
            Ok(paths::local_name(target).is_ok_and(|t| t == have))
        }
        _ => Ok(false),
    }
}

/// Whether the file at `path` holds exactly the chunks of `node`.
fn same_content(vault: &Vault, index: &Index, path: &Path, node: &Node) -> Result<bool> {
    use std::io::Read;
    let NodeKind::File { chunks } = &node.kind else {
        return Ok(false);
    };
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) => return Err(Error::io(path, e)),
    };
    if f.metadata().map_err(|e| Error::io(path, e))?.len() != node.size {
        return Ok(false);
    }
    let mut buf = Vec::new();
    for id in chunks {
        let Some(loc) = index.get(id) else {
            return Ok(false);
        };
        buf.resize(loc.raw_len as usize, 0);
        if f.read_exact(&mut buf).is_err() || vault.blob_id(BlobKind::Data, &buf) != *id {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Temporary files (`.sitevault-<16 hex>.tmp`) a killed restore left in `dir`.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name();
        let n = name.to_string_lossy();
        let ours = n.len() == ".sitevault-.tmp".len() + 16
            && n.starts_with(".sitevault-")
            && n.ends_with(".tmp")
            && n[11..27].bytes().all(|b| b.is_ascii_hexdigit());
        if ours {
            let _ = fs::remove_file(e.path());
        }
    }
}

fn check_size(path: &Path, node: &Node, total: u64) -> Result<()> {
    if total == node.size {
        return Ok(());
    }
    Err(Error::corrupt(
        format!("file {}", path.display()),
        format!(
            "chunks hold {total} bytes but the tree records {}",
            node.size
        ),
    ))
}

/// Create `path` through a temporary file in the same folder: sized first, filled by `fill`,
/// given its metadata, then renamed into place; on failure the temporary file is removed.
fn write_file(
    path: &Path,
    node: &Node,
    fill: impl FnOnce(&File, &Path) -> Result<()>,
) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".sitevault-{}.tmp",
        hex::encode(random_array::<8>()?)
    ));
    let result = (|| -> Result<()> {
        let f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        // Final size first: blocks are written in place, possibly in parallel, and runs of
        // zeros are never written, so they stay holes where the filesystem supports them.
        f.set_len(node.size).map_err(|e| Error::io(&tmp, e))?;
        fill(&f, &tmp)?;
        // No fsync per file: a restore interrupted by power loss is simply run again.
        drop(f);
        apply_metadata(&tmp, node, false)?;
        let r = fs::rename(&tmp, path);
        // Windows refuses to replace a read-only file: clear it and try once more (the new
        // file carries its own attributes). Only that case pays the extra calls.
        #[cfg(windows)]
        let r = match r {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                set_attributes(path, 0)?;
                fs::rename(&tmp, path)
            }
            r => r,
        };
        r.map_err(|e| Error::io(path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Open and verify the blobs of `run` from `buf` (which starts at `run.start`) and write them
/// at their file offsets.
fn write_run(vault: &Vault, buf: &[u8], run: &Run, f: &File, tmp: &Path) -> Result<()> {
    let name = pack_name(&run.pack);
    for b in &run.blobs {
        let at = (b.loc.offset as u64 - run.start) as usize;
        let sealed = &buf[at..at + b.loc.stored_len as usize];
        let data = vault.open_blob(sealed, &b.id, BlobKind::Data, b.loc.raw_len, &name)?;
        write_sparse(f, &data, b.file_offset).map_err(|e| Error::io(tmp, e))?;
    }
    Ok(())
}

/// Single-run files of one pack whose runs are close together, fetched with one range read.
struct PackGroup<'a> {
    pack: Id,
    start: u64,
    end: u64,
    files: Vec<(&'a Path, &'a Node, Run)>,
}

/// Bytes of other blobs a group may read across to join two files' runs.
const MAX_GAP: u64 = 256 * 1024;

fn group_by_pack<'a>(mut files: Vec<(&'a Path, &'a Node, Run)>) -> Vec<PackGroup<'a>> {
    files.sort_by_key(|a| (a.2.pack, a.2.start));
    let mut groups: Vec<PackGroup<'a>> = Vec::new();
    for f in files {
        let (pack, start, end) = (f.2.pack, f.2.start, f.2.end);
        match groups.last_mut() {
            Some(g)
                if g.pack == pack
                    && start <= g.end + MAX_GAP
                    && end.max(g.end) - g.start <= MAX_RUN =>
            {
                g.end = g.end.max(end);
                g.files.push(f);
            }
            _ => groups.push(PackGroup {
                pack,
                start,
                end,
                files: vec![f],
            }),
        }
    }
    groups
}

/// Blobs that lie back to back in one pack, fetched with one range read.
struct Run {
    pack: Id,
    start: u64,
    end: u64,
    blobs: Vec<RunBlob>,
}

struct RunBlob {
    id: Id,
    loc: BlobLocation,
    file_offset: u64,
}

/// Largest range read; bounds memory per restore thread.
const MAX_RUN: u64 = 16 << 20;

/// Group a file's chunks into range reads: chunks of one pack that lie close together share one
/// request, even when other files' blobs sit between them (parallel backups interleave files in a
/// pack) or the file's own chunks alternate between packs (deduplicated runs). Returns the runs
/// and the file size the chunks add up to.
fn plan_runs(index: &Index, chunks: &[Id]) -> Result<(Vec<Run>, u64)> {
    let mut runs: Vec<Run> = Vec::new();
    // The run each pack's next chunk may join.
    let mut open: HashMap<Id, usize> = HashMap::new();
    let mut offset = 0u64;
    for id in chunks {
        let loc = index
            .get(id)
            .ok_or_else(|| Error::corrupt(format!("blob {id}"), "not in any index"))?;
        check_blob_kind(loc.kind, BlobKind::Data, id)?;
        let (start, end) = (loc.offset as u64, loc.offset as u64 + loc.stored_len as u64);
        let blob = RunBlob {
            id: *id,
            loc,
            file_offset: offset,
        };
        offset += loc.raw_len as u64;
        if let Some(r) = open.get(&loc.pack).map(|&i| &mut runs[i]) {
            let (s, e) = (r.start.min(start), r.end.max(end));
            if start <= r.end + MAX_GAP && end + MAX_GAP >= r.start && e - s <= MAX_RUN {
                (r.start, r.end) = (s, e);
                r.blobs.push(blob);
                continue;
            }
        }
        open.insert(loc.pack, runs.len());
        runs.push(Run {
            pack: loc.pack,
            start,
            end,
            blobs: vec![blob],
        });
    }
    Ok((runs, offset))
}

/// Holes are made in units of this many bytes, aligned to the file offset.
const HOLE_UNIT: u64 = 64 * 1024;

/// Write `data` at `offset`, skipping aligned all-zero units (the file was sized beforehand, so
/// they read back as zeros and stay unallocated). Non-zero neighbours go out in one write.
fn write_sparse(f: &File, data: &[u8], offset: u64) -> std::io::Result<()> {
    let mut pos = 0usize;
    let mut pending: Option<usize> = None; // start of a run of non-zero units
    while pos < data.len() {
        let abs = offset + pos as u64;
        let end = data.len().min(pos + (HOLE_UNIT - abs % HOLE_UNIT) as usize);
        let zero = data[pos..end].iter().all(|&b| b == 0);
        match (zero, pending) {
            (true, Some(start)) => {
                write_all_at(f, &data[start..pos], offset + start as u64)?;
                pending = None;
            }
            (false, None) => pending = Some(pos),
            _ => {}
        }
        pos = end;
    }
    if let Some(start) = pending {
        write_all_at(f, &data[start..], offset + start as u64)?;
    }
    Ok(())
}

#[cfg(unix)]
fn write_all_at(f: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, buf, offset)
}

#[cfg(windows)]
fn write_all_at(f: &File, mut buf: &[u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = f.seek_write(buf, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
        offset += n as u64;
    }
    Ok(())
}

fn restore_symlink(path: &Path, target: &[u8], node: &Node) -> Result<()> {
    if let Ok(m) = fs::symlink_metadata(path) {
        if m.is_dir() {
            return Err(Error::InvalidInput(
                "a directory is in the way of the symlink".into(),
            ));
        }
        fs::remove_file(path).map_err(|e| Error::io(path, e))?;
    }
    let target = paths::local_name(target)?;
    #[cfg(unix)]
    std::os::unix::fs::symlink(&target, path).map_err(|e| Error::io(path, e))?;
    #[cfg(windows)]
    std::os::windows::fs::symlink_file(&target, path).map_err(|e| Error::io(path, e))?;
    apply_metadata(path, node, true)
}

/// Ownership (best effort: only root may give files away), permissions, then mtime.
fn apply_metadata(path: &Path, node: &Node, is_link: bool) -> Result<()> {
    #[cfg(unix)]
    if let Some(u) = node.unix {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::os::unix::fs::lchown(path, Some(u.uid), Some(u.gid));
        if !is_link {
            fs::set_permissions(path, fs::Permissions::from_mode(u.mode & 0o7777))
                .map_err(|e| Error::io(path, e))?;
        }
    }
    let secs = node.mtime_ns.div_euclid(1_000_000_000);
    let nanos = node.mtime_ns.rem_euclid(1_000_000_000) as u32;
    let t = filetime::FileTime::from_unix_time(secs, nanos);
    let set_time = || {
        if is_link {
            filetime::set_symlink_file_times(path, t, t)
        } else {
            filetime::set_file_mtime(path, t)
        }
    };
    let r = set_time();
    // A read-only file cannot take a new mtime on Windows (that opens it for writing): clear
    // the attribute and try once more; the snapshot's attributes go on last.
    #[cfg(windows)]
    let r = match r {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && !is_link => {
            set_attributes(path, 0)?;
            set_time()
        }
        r => r,
    };
    r.map_err(|e| Error::io(path, e))?;
    #[cfg(windows)]
    if let (Some(a), false) = (node.win_attrs, is_link) {
        set_attributes(path, a)?;
    }
    Ok(())
}

/// Set the Windows attributes a restore may set (read-only, hidden, system, archive, temporary,
/// not content-indexed) from `attrs`; the others (directory, compressed, reparse point, ...)
/// describe what the entry is, not something to set.
#[cfg(windows)]
fn set_attributes(path: &Path, attrs: u32) -> Result<()> {
    use std::os::windows::ffi::OsStrExt;
    use windows_sys::Win32::Storage::FileSystem::{
        FILE_ATTRIBUTE_ARCHIVE, FILE_ATTRIBUTE_HIDDEN, FILE_ATTRIBUTE_NORMAL,
        FILE_ATTRIBUTE_NOT_CONTENT_INDEXED, FILE_ATTRIBUTE_READONLY, FILE_ATTRIBUTE_SYSTEM,
        FILE_ATTRIBUTE_TEMPORARY, SetFileAttributesW,
    };
    let settable = FILE_ATTRIBUTE_READONLY
        | FILE_ATTRIBUTE_HIDDEN
        | FILE_ATTRIBUTE_SYSTEM
        | FILE_ATTRIBUTE_ARCHIVE
        | FILE_ATTRIBUTE_TEMPORARY
        | FILE_ATTRIBUTE_NOT_CONTENT_INDEXED;
    let want = match attrs & settable {
        0 => FILE_ATTRIBUTE_NORMAL,
        a => a,
    };
    let wide: Vec<u16> = path.as_os_str().encode_wide().chain([0]).collect();
    // SAFETY: `wide` is a NUL-terminated UTF-16 path that outlives the call.
    if unsafe { SetFileAttributesW(wide.as_ptr(), want) } == 0 {
        return Err(Error::io(path, std::io::Error::last_os_error()));
    }
    Ok(())
}
