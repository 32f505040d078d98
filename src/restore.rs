//! Restore: recreate a snapshot's entries under a target folder or at their original paths.
//! Files are written to a temporary name and renamed into place, so a destination file is
//! never left half-written.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::crypto::random_array;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::pack::BlobKind;
use crate::paths;
use crate::snapshot::Snapshot;
use crate::tree::{Node, NodeKind};
use crate::vault::Vault;
use crate::walk::{self, Entry};

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
    let mut summary = RestoreSummary::default();

    // Directories first, parents before children, so files have somewhere to go.
    for (path, _) in planned.iter().filter(|(_, e)| e.node.is_dir()) {
        match fs::create_dir_all(path) {
            Ok(()) => summary.dirs += 1,
            Err(err) => fail(path, &err),
        }
    }
    planned.par_iter().for_each(|(path, e)| match &e.node.kind {
        NodeKind::File { chunks } => match restore_file(vault, index, path, &e.node, chunks) {
            Ok(n) => {
                files.fetch_add(1, Ordering::Relaxed);
                bytes.fetch_add(n, Ordering::Relaxed);
            }
            Err(err) => fail(path, &err),
        },
        NodeKind::Symlink { target } => {
            if let Err(err) = restore_symlink(path, target, &e.node) {
                fail(path, &err);
            }
        }
        NodeKind::Dir { .. } => {}
    });
    summary.symlinks = planned
        .iter()
        .filter(|(_, e)| matches!(e.node.kind, NodeKind::Symlink { .. }))
        .count() as u64;
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

fn restore_file(
    vault: &Vault,
    index: &Index,
    path: &Path,
    node: &Node,
    chunks: &[crate::id::Id],
) -> Result<u64> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".sitevault-{}.tmp",
        hex::encode(random_array::<8>()?)
    ));
    let result = (|| -> Result<u64> {
        let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.set_len(node.size).map_err(|e| Error::io(&tmp, e))?;
        let mut written = 0u64;
        for id in chunks {
            let data = vault.read_blob(index, id, BlobKind::Data)?;
            f.write_all(&data).map_err(|e| Error::io(&tmp, e))?;
            written += data.len() as u64;
        }
        if written != node.size {
            return Err(Error::corrupt(
                format!("file {}", path.display()),
                format!(
                    "chunks hold {written} bytes but the tree records {}",
                    node.size
                ),
            ));
        }
        // No fsync per file: a restore interrupted by power loss is simply run again.
        drop(f);
        apply_metadata(&tmp, node, false)?;
        fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        Ok(written)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
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

/// Entries of a snapshot, for `ls`.
pub fn list(vault: &Vault, index: &Index, snapshot: &Snapshot) -> Result<Vec<Entry>> {
    walk::entries(vault, index, &snapshot.tree)
}
