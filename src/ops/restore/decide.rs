//! What to do about what is already at a destination: write, overwrite, leave an identical
//! entry alone, skip, or find a keep-both name beside it.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::pack::BlobKind;
use crate::format::tree::{Node, NodeKind};
use crate::paths;
use crate::vault::Vault;
use crate::vault::index::Index;

use super::{Action, IfExists, RestoreOptions};

/// What to do with one file or symlink, and where it goes.
pub(super) fn decide(
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
pub(crate) fn keep_both_name(path: &Path, stamp: &str, n: u32) -> PathBuf {
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
pub(super) fn same_content(vault: &Vault, index: &Index, path: &Path, node: &Node) -> Result<bool> {
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
