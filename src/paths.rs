//! Original paths: how a local absolute path becomes root-tree components, and how components
//! become a displayed original path or a local destination. Windows paths are designed for here
//! and exercised on Windows builds: drive letters become the component `E:`, UNC shares the
//! component `\\server\share`.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which platform's path rules a snapshot's paths follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PathStyle {
    Unix,
    Windows,
}

impl PathStyle {
    /// The style of paths on the running platform.
    pub fn native() -> PathStyle {
        if cfg!(windows) {
            PathStyle::Windows
        } else {
            PathStyle::Unix
        }
    }

    /// Whether two names are the same entry under this style's rules.
    pub fn same_name(self, a: &[u8], b: &[u8]) -> bool {
        match self {
            PathStyle::Unix => a == b,
            PathStyle::Windows => match (std::str::from_utf8(a), std::str::from_utf8(b)) {
                (Ok(a), Ok(b)) => a.to_lowercase() == b.to_lowercase(),
                _ => a == b,
            },
        }
    }

    /// The original absolute path, for display (`ls`) and matching.
    pub fn join(self, comps: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            PathStyle::Unix => {
                for c in comps {
                    out.push(b'/');
                    out.extend_from_slice(c);
                }
                if out.is_empty() {
                    out.push(b'/');
                }
            }
            PathStyle::Windows => {
                for (i, c) in comps.iter().enumerate() {
                    if i > 0 {
                        out.push(b'\\');
                    }
                    out.extend_from_slice(c);
                }
                if comps.len() == 1 {
                    out.push(b'\\');
                }
            }
        }
        out
    }
}

/// Make `path` absolute and lexically normal (no `.` or `..`), without following the last
/// component, so a symlink given as a backup path is archived as a symlink.
pub fn absolute(path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    Ok(out)
}

/// Root-tree components of an absolute local path.
pub fn components(path: &Path) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Prefix(p) => out.push(prefix_name(p.kind())),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                return Err(Error::InvalidInput(format!(
                    "{}: path is not normalised",
                    path.display()
                )));
            }
            Component::Normal(n) => out.push(n.as_encoded_bytes().to_vec()),
        }
    }
    Ok(out)
}

fn prefix_name(p: std::path::Prefix<'_>) -> Vec<u8> {
    use std::path::Prefix::*;
    match p {
        Disk(d) | VerbatimDisk(d) => vec![d.to_ascii_uppercase(), b':'],
        UNC(server, share) | VerbatimUNC(server, share) => {
            let mut v = b"\\\\".to_vec();
            v.extend_from_slice(server.as_encoded_bytes());
            v.push(b'\\');
            v.extend_from_slice(share.as_encoded_bytes());
            v
        }
        Verbatim(x) | DeviceNS(x) => x.as_encoded_bytes().to_vec(),
    }
}

/// A stored name as a local file name.
pub fn local_name(name: &[u8]) -> Result<OsString> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(std::ffi::OsStr::from_bytes(name).to_os_string())
    }
    #[cfg(not(unix))]
    {
        String::from_utf8(name.to_vec())
            .map(OsString::from)
            .map_err(|_| {
                Error::InvalidInput(format!(
                    "name {:?} is not valid UTF-8 and cannot be created on this platform",
                    String::from_utf8_lossy(name)
                ))
            })
    }
}

/// Destination for `restore --target DIR`: the original path without its root, under DIR.
/// `E:` becomes `E`, `\\server\share` becomes `UNC/server/share`.
pub fn under_target(target: &Path, style: PathStyle, comps: &[&[u8]]) -> Result<PathBuf> {
    let mut out = target.to_path_buf();
    for (i, c) in comps.iter().enumerate() {
        if i == 0 && style == PathStyle::Windows {
            if let Some(rest) = c.strip_prefix(b"\\\\") {
                out.push("UNC");
                for part in rest.split(|&b| b == b'\\').filter(|p| !p.is_empty()) {
                    out.push(local_name(part)?);
                }
                continue;
            }
            if c.len() == 2 && c[1] == b':' {
                out.push(local_name(&c[..1])?);
                continue;
            }
        }
        out.push(local_name(c)?);
    }
    Ok(out)
}

/// Destination for `restore --original`.
pub fn original(style: PathStyle, comps: &[&[u8]]) -> Result<PathBuf> {
    if style != PathStyle::native() {
        return Err(Error::InvalidInput(format!(
            "this snapshot holds {style:?} paths, which cannot be restored to their original place on this platform; use --target"
        )));
    }
    match style {
        PathStyle::Unix => {
            let mut out = PathBuf::from("/");
            for c in comps {
                out.push(local_name(c)?);
            }
            Ok(out)
        }
        PathStyle::Windows => {
            let mut s = OsString::new();
            for (i, c) in comps.iter().enumerate() {
                if i > 0 {
                    s.push("\\");
                }
                s.push(local_name(c)?);
            }
            if comps.len() == 1 {
                s.push("\\");
            }
            Ok(PathBuf::from(s))
        }
    }
}
