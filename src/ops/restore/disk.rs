//! Writing restored entries to the local filesystem: files through a temporary name renamed
//! into place, sparse writes that leave runs of zeros as holes, symlinks, and metadata.

use std::fs::{self, File};
use std::path::Path;

use crate::error::{Error, Result};
use crate::format::crypto::random_array;
use crate::format::tree::Node;
use crate::paths;

/// Temporary files (`.sitevault-<16 hex>.tmp`) a killed restore left in `dir`.
pub(super) fn remove_stale_temporaries(dir: &Path) {
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

/// Create `path` through a temporary file in the same folder: sized first, filled by `fill`,
/// given its metadata, then renamed into place; on failure the temporary file is removed.
pub(super) fn write_file(
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

/// Holes are made in units of this many bytes, aligned to the file offset.
const HOLE_UNIT: u64 = 64 * 1024;

/// Write `data` at `offset`, skipping aligned all-zero units (the file was sized beforehand, so
/// they read back as zeros and stay unallocated). Non-zero neighbours go out in one write.
pub(super) fn write_sparse(f: &File, data: &[u8], offset: u64) -> std::io::Result<()> {
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

/// Put a symlink to `target` at `path`, replacing what is there unless it is a directory.
pub(super) fn restore_symlink(path: &Path, target: &[u8], node: &Node) -> Result<()> {
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
pub(super) fn apply_metadata(path: &Path, node: &Node, is_link: bool) -> Result<()> {
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
