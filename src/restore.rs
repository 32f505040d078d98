//! Restore: recreate a snapshot's entries under a target folder or at their original paths.
//! Files are written to a temporary name and renamed into place, so a destination file is
//! never left half-written.

use std::collections::HashSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::crypto::random_array;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::{BlobLocation, Index, check_blob_kind};
use crate::pack::BlobKind;
use crate::paths;
use crate::snapshot::Snapshot;
use crate::tree::{Node, NodeKind};
use crate::vault::{Vault, pack_name};
use crate::walk;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `DIR/<original path without its root>`.
    Target(PathBuf),
    /// Each entry's original absolute path.
    Original,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreSummary {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes_written: u64,
    /// Entries that could not be restored, with the reason; empty on success.
    pub errors: Vec<String>,
}

pub fn restore(
    vault: &Vault,
    index: &Index,
    snapshot: &Snapshot,
    dest: &Destination,
) -> Result<RestoreSummary> {
    let entries = walk::entries(vault, index, &snapshot.tree)?;
    let mut planned = Vec::with_capacity(entries.len());
    for e in entries {
        let path = match dest {
            Destination::Target(dir) => paths::under_target(dir, snapshot.path_style, &e.comps())?,
            Destination::Original => paths::original(snapshot.path_style, &e.comps())?,
        };
        planned.push((path, e));
    }
    if let Destination::Target(dir) = dest {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }

    let errors = Mutex::new(Vec::new());
    let fail = |path: &Path, e: &dyn std::fmt::Display| {
        errors
            .lock()
            .expect("errors lock")
            .push(format!("{}: {e}", path.display()))
    };
    let files = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let links = AtomicU64::new(0);
    let mut summary = RestoreSummary::default();

    // Directories first, parents before children, so files have somewhere to go.
    for (path, _) in planned.iter().filter(|(_, e)| e.node.is_dir()) {
        match fs::create_dir_all(path) {
            Ok(()) => summary.dirs += 1,
            Err(err) => fail(path, &err),
        }
    }
    // Files whose blobs lie in one stretch of one pack (small files, the common case) are
    // grouped with their neighbours in the pack, so a pack is fetched once for many files;
    // larger files fetch their own runs, in parallel.
    let mut single: Vec<(&Path, &Node, Run)> = Vec::new();
    let mut multi: Vec<(&Path, &Node, Vec<Run>)> = Vec::new();
    for (path, e) in &planned {
        if let NodeKind::File { chunks } = &e.node.kind {
            match plan_runs(index, chunks)
                .and_then(|(runs, total)| check_size(path, &e.node, total).map(|_| runs))
            {
                Ok(mut runs) if runs.len() == 1 => single.push((path, &e.node, runs.remove(0))),
                Ok(runs) => multi.push((path, &e.node, runs)),
                Err(err) => fail(path, &err),
            }
        }
    }
    let done = |path: &Path, node: &Node, r: Result<()>| match r {
        Ok(()) => {
            files.fetch_add(1, Ordering::Relaxed);
            bytes.fetch_add(node.size, Ordering::Relaxed);
        }
        Err(err) => fail(path, &err),
    };
    group_by_pack(single).par_iter().for_each(|group| {
        let name = pack_name(&group.pack);
        match vault.store().get_range(&name, group.start..group.end) {
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
    multi.par_iter().for_each(|(path, node, runs)| {
        let r = write_file(path, node, |f, tmp| {
            runs.par_iter().try_for_each(|run| {
                let buf = vault
                    .store()
                    .get_range(&pack_name(&run.pack), run.start..run.end)?;
                write_run(vault, &buf, run, f, tmp)
            })
        });
        done(path, node, r);
    });
    planned.par_iter().for_each(|(path, e)| match &e.node.kind {
        NodeKind::File { .. } => {}
        NodeKind::Symlink { target } => match restore_symlink(path, target, &e.node) {
            Ok(()) => {
                links.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => fail(path, &err),
        },
        NodeKind::Dir { .. } => {}
    });
    summary.symlinks = links.into_inner();
    // Back at the original place, the parents of the backed-up paths (`/srv`, `/home`, `E:\`)
    // are shared folders, not part of what was archived: leave their metadata alone.
    let parents: HashSet<Vec<Vec<u8>>> = match dest {
        Destination::Original => snapshot
            .paths
            .iter()
            .filter_map(|p| paths::components(Path::new(p)).ok())
            .flat_map(|c| (0..c.len()).map(move |n| c[..n].to_vec()))
            .collect(),
        Destination::Target(_) => HashSet::new(),
    };
    // Directory metadata last, deepest first: writing inside a directory changes its mtime.
    for (path, e) in planned
        .iter()
        .rev()
        .filter(|(_, e)| e.node.is_dir() && !parents.contains(&e.components))
    {
        if let Err(err) = apply_metadata(path, &e.node, false) {
            fail(path, &err);
        }
    }
    summary.files = files.into_inner();
    summary.bytes_written = bytes.into_inner();
    summary.errors = errors.into_inner().expect("errors lock");
    Ok(summary)
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
        fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
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
    files.sort_by(|a, b| (a.2.pack, a.2.start).cmp(&(b.2.pack, b.2.start)));
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

/// Group a file's chunks into range reads: consecutive chunks stored contiguously in the same
/// pack (the usual case, since backup writes them in order) share one request. Returns the runs
/// and the file size the chunks add up to.
fn plan_runs(index: &Index, chunks: &[Id]) -> Result<(Vec<Run>, u64)> {
    let mut runs: Vec<Run> = Vec::new();
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
        match runs.last_mut() {
            Some(r) if r.pack == loc.pack && r.end == start && end - r.start <= MAX_RUN => {
                r.end = end;
                r.blobs.push(blob);
            }
            _ => runs.push(Run {
                pack: loc.pack,
                start,
                end,
                blobs: vec![blob],
            }),
        }
        offset += loc.raw_len as u64;
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
    let r = if is_link {
        filetime::set_symlink_file_times(path, t, t)
    } else {
        filetime::set_file_mtime(path, t)
    };
    r.map_err(|e| Error::io(path, e))
}
