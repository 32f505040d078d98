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
    pub(crate) fn native() -> PathStyle {
        if cfg!(windows) {
            PathStyle::Windows
        } else {
            PathStyle::Unix
        }
    }

    /// Whether two names are the same entry under this style's rules.
    pub(crate) fn same_name(self, a: &[u8], b: &[u8]) -> bool {
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

/// Root-tree components of an original path as shown (`/srv/site`, `E:\\Backup`,
/// `\\\\server\\share\\x`; `/` also separates Windows paths). `.` and `..` are refused, so a
/// path from a web form cannot climb; an empty path is the root (no components).
pub(crate) fn parse_original(style: PathStyle, path: &[u8]) -> Result<Vec<Vec<u8>>> {
    let bad =
        |why: &str| Error::InvalidInput(format!("path {:?} {why}", String::from_utf8_lossy(path)));
    let mut out: Vec<Vec<u8>> = Vec::new();
    let (sep, mut rest) = match style {
        PathStyle::Unix => (b'/', path.to_vec()),
        PathStyle::Windows => (
            b'\\',
            path.iter()
                .map(|&b| if b == b'/' { b'\\' } else { b })
                .collect(),
        ),
    };
    if style == PathStyle::Windows
        && let Some(unc) = rest.strip_prefix(b"\\\\")
    {
        let mut parts = unc.splitn(3, |&b| b == b'\\');
        let server = parts.next().unwrap_or_default();
        let share = parts.next().unwrap_or_default();
        if server.is_empty() || share.is_empty() {
            return Err(bad("names a server but no share"));
        }
        out.push([b"\\\\", server, b"\\", share].concat());
        rest = parts.next().unwrap_or_default().to_vec();
    }
    for c in rest.split(|&b| b == sep) {
        match c {
            b"" => {}
            b"." | b".." => return Err(bad("may not contain . or .. components")),
            _ => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

/// A stored name as a local file name.
pub(crate) fn local_name(name: &[u8]) -> Result<OsString> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(std::ffi::OsStr::from_bytes(name).to_os_string())
    }
    #[cfg(not(unix))]
    {
        String::from_utf8(name.to_vec())
            .map(OsString::from)
            .map_err(|_| Error::NameNotAllowed {
                name: String::from_utf8_lossy(name).into_owned(),
                platform: "this platform",
                reason: "it is not valid UTF-8".into(),
            })
    }
}

/// One path component to create on this platform. Names are checked again here, not only
/// when trees are decoded, because a forged tree must never write outside the destination.
/// On Windows a name another platform allows but Windows does not (`a:b`, `what?`, `CON`,
/// `name.`) is refused with [`Error::NameNotAllowed`] naming the reason, never changed.
fn component(name: &[u8]) -> Result<OsString> {
    if name.is_empty() || name == b"." || name == b".." || name.iter().any(|b| b"/\0".contains(b)) {
        return Err(Error::corrupt(
            "snapshot tree",
            format!(
                "entry name {:?} cannot be created safely on this platform",
                String::from_utf8_lossy(name)
            ),
        ));
    }
    if cfg!(windows)
        && let Some(reason) = windows_name_problem(name)
    {
        return Err(Error::NameNotAllowed {
            name: String::from_utf8_lossy(name).into_owned(),
            platform: "Windows",
            reason,
        });
    }
    local_name(name)
}

/// Why `name` cannot be a file or folder name on Windows, if it cannot: Windows forbids
/// `< > : " / \ | ? *` and control characters, drops trailing dots and spaces (two names
/// would become one), and keeps device names (`CON`, `NUL.txt`, `com1`) for devices.
pub(crate) fn windows_name_problem(name: &[u8]) -> Option<String> {
    if let Some(&b) = name
        .iter()
        .find(|&&b| b < 0x20 || b"<>:\"/\\|?*".contains(&b))
    {
        return Some(if b < 0x20 {
            format!("control character 0x{b:02x}")
        } else {
            format!("the character {:?}", b as char)
        });
    }
    if let Some(&last) = name.last()
        && (last == b'.' || last == b' ')
    {
        return Some(format!(
            "it ends with {}",
            if last == b'.' { "a dot" } else { "a space" }
        ));
    }
    let stem = name.split(|&b| b == b'.').next().unwrap_or(name);
    let stem = String::from_utf8_lossy(stem)
        .trim_end()
        .to_ascii_uppercase();
    let device = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || (stem.len() == 4
            && (stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.as_bytes()[3].is_ascii_digit()
            && stem.as_bytes()[3] != b'0');
    device.then(|| format!("{stem} is a device name"))
}

/// The volume of a Windows path: `Drive('E')` for `E:`, `Unc(server, share)` for `\\server\share`.
enum Volume<'a> {
    Drive(u8),
    Unc(&'a [u8], &'a [u8]),
}

fn windows_volume(c: &[u8]) -> Result<Volume<'_>> {
    if c.len() == 2 && c[1] == b':' && c[0].is_ascii_alphabetic() {
        return Ok(Volume::Drive(c[0].to_ascii_uppercase()));
    }
    if let Some(rest) = c.strip_prefix(b"\\\\") {
        let parts: Vec<&[u8]> = rest.split(|&b| b == b'\\').collect();
        if let [server, share] = parts[..] {
            component(server)?;
            component(share)?;
            return Ok(Volume::Unc(server, share));
        }
    }
    Err(Error::corrupt(
        "snapshot tree",
        format!(
            "{:?} is not a Windows drive or UNC share",
            String::from_utf8_lossy(c)
        ),
    ))
}

/// The folders a Windows volume becomes under a restore target (and in `mount`/`serve`):
/// `E:` becomes `E`, `\\server\share` becomes `UNC`, `server`, `share`.
pub(crate) fn volume_folders(first: &[u8]) -> Result<Vec<Vec<u8>>> {
    Ok(match windows_volume(first)? {
        Volume::Drive(d) => vec![vec![d]],
        Volume::Unc(server, share) => vec![b"UNC".to_vec(), server.to_vec(), share.to_vec()],
    })
}

/// Destination for `restore --target DIR`: the original path without its root, under DIR.
/// `E:` becomes `E`, `\\server\share` becomes `UNC/server/share`.
pub fn under_target(target: &Path, style: PathStyle, comps: &[&[u8]]) -> Result<PathBuf> {
    let mut out = target.to_path_buf();
    let mut rest = comps;
    if style == PathStyle::Windows
        && let Some((first, tail)) = comps.split_first()
    {
        for f in volume_folders(first)? {
            out.push(component(&f)?);
        }
        rest = tail;
    }
    for c in rest {
        out.push(component(c)?);
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
                out.push(component(c)?);
            }
            Ok(out)
        }
        PathStyle::Windows => {
            let Some((first, tail)) = comps.split_first() else {
                return Err(Error::InvalidInput(
                    "a Windows snapshot entry has no volume".into(),
                ));
            };
            let mut out = match windows_volume(first)? {
                Volume::Drive(d) => PathBuf::from(format!("{}:\\", d as char)),
                Volume::Unc(server, share) => {
                    let mut p = OsString::from("\\\\");
                    p.push(component(server)?);
                    p.push("\\");
                    p.push(component(share)?);
                    p.push("\\");
                    PathBuf::from(p)
                }
            };
            for c in tail {
                out.push(component(c)?);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_paths_parse_into_root_tree_components() {
        let w = PathStyle::Windows;
        let v = |x: &[&str]| x.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        assert_eq!(
            parse_original(w, br"E:\Backup\x").unwrap(),
            v(&["E:", "Backup", "x"])
        );
        assert_eq!(
            parse_original(w, b"E:/Backup/").unwrap(),
            v(&["E:", "Backup"])
        );
        assert_eq!(
            parse_original(w, br"\\srv\share\a").unwrap(),
            v(&[r"\\srv\share", "a"])
        );
        assert!(parse_original(w, br"\\srv").is_err());
        let u = PathStyle::Unix;
        assert_eq!(
            parse_original(u, b"/srv/site").unwrap(),
            v(&["srv", "site"])
        );
        assert_eq!(parse_original(u, b"").unwrap(), Vec::<Vec<u8>>::new());
        let e = parse_original(u, b"/srv/../etc").unwrap_err().to_string();
        assert!(e.contains(". or .."), "{e}");
    }

    fn t(style: PathStyle, comps: &[&[u8]]) -> Result<PathBuf> {
        under_target(Path::new("/restore"), style, comps)
    }

    #[test]
    fn target_mapping() {
        assert_eq!(
            t(PathStyle::Unix, &[b"srv", b"a", b"b"]).unwrap(),
            Path::new("/restore/srv/a/b")
        );
        assert_eq!(
            t(PathStyle::Windows, &[b"E:", b"x", b"y"]).unwrap(),
            Path::new("/restore/E/x/y")
        );
        assert_eq!(
            t(PathStyle::Windows, &[b"e:"]).unwrap(),
            Path::new("/restore/E")
        );
        assert_eq!(
            t(PathStyle::Windows, &[b"\\\\srv01\\Share$", b"Sources"]).unwrap(),
            Path::new("/restore/UNC/srv01/Share$/Sources")
        );
    }

    #[test]
    fn forged_components_cannot_escape_the_target() {
        for comps in [
            vec![&b"\\\\..\\.."[..], b"x"],
            vec![b"\\\\a\\b\\c"],
            vec![b"E:", b".."],
            vec![b"..:"],
            vec![b"E:\\Windows"],
        ] {
            assert!(t(PathStyle::Windows, &comps).is_err(), "{comps:?}");
        }
        assert!(t(PathStyle::Unix, &[b"a", b".."]).is_err());
        assert!(t(PathStyle::Unix, &[b"a/b"]).is_err());
        assert!(t(PathStyle::Unix, &[b""]).is_err());
    }

    #[test]
    fn display_paths() {
        assert_eq!(PathStyle::Unix.join(&[b"srv", b"a"]), b"/srv/a");
        assert_eq!(PathStyle::Unix.join(&[]), b"/");
        assert_eq!(PathStyle::Windows.join(&[b"E:", b"x", b"y"]), b"E:\\x\\y");
        assert_eq!(PathStyle::Windows.join(&[b"E:"]), b"E:\\");
        assert_eq!(
            PathStyle::Windows.join(&[b"\\\\srv\\share", b"a"]),
            b"\\\\srv\\share\\a"
        );
    }

    /// Real Windows path parsing (run under Wine in CI): drive letters, UNC shares and the
    /// `\\?\` long-path forms all become the same root-tree components, and come back as a
    /// path naming the same place, also beyond 260 characters.
    #[cfg(windows)]
    #[test]
    fn windows_path_components() {
        let c = |p: &str| components(Path::new(p)).unwrap();
        let back = |comps: &[Vec<u8>]| {
            let refs: Vec<&[u8]> = comps.iter().map(|v| v.as_slice()).collect();
            original(PathStyle::Windows, &refs).unwrap()
        };
        assert_eq!(
            c(r"e:\SCCMContentLib\x"),
            [&b"E:"[..], b"SCCMContentLib", b"x"].map(|b| b.to_vec())
        );
        assert_eq!(
            c(r"\\srv01\Share$\Sources"),
            [&b"\\\\srv01\\Share$"[..], b"Sources"].map(|b| b.to_vec())
        );
        assert_eq!(c(r"\\?\E:\a\b"), c(r"E:\a\b"));
        assert_eq!(c(r"\\?\UNC\srv01\Share$\a"), c(r"\\srv01\Share$\a"));
        assert_eq!(
            back(&c(r"\\srv01\Share$\Sources\App")),
            PathBuf::from(r"\\srv01\Share$\Sources\App")
        );
        let long = format!(r"E:\{}", vec!["d".repeat(50); 8].join("\\"));
        assert!(long.len() > 260);
        assert_eq!(c(&long).len(), 9);
        assert_eq!(back(&c(&long)), PathBuf::from(&long));
        assert_eq!(back(&c(&format!(r"\\?\{long}"))), PathBuf::from(&long));
    }

    #[test]
    fn names_windows_cannot_hold() {
        for (name, why) in [
            ("a:b.txt", "the character ':'"),
            ("what?.log", "the character '?'"),
            ("x\"y", "the character '\"'"),
            ("a\\b", "the character '\\\\'"),
            ("pipe|", "the character '|'"),
            ("tab\there", "control character 0x09"),
            ("name.", "ends with a dot"),
            ("name ", "ends with a space"),
            ("CON", "CON is a device name"),
            ("nul.txt", "NUL is a device name"),
            ("Com1.log", "COM1 is a device name"),
            ("lpt9", "LPT9 is a device name"),
            ("aux .x", "AUX is a device name"),
        ] {
            let got = windows_name_problem(name.as_bytes());
            assert!(
                got.as_deref().is_some_and(|g| g.contains(why)),
                "{name:?}: {got:?}, want {why:?}"
            );
        }
        for ok in [
            "café.txt",
            "CON1",
            "COM0",
            "console",
            ".hidden",
            "a.b.c",
            "LPT",
            "Scupdb.sdf",
        ] {
            assert_eq!(windows_name_problem(ok.as_bytes()), None, "{ok:?}");
        }
    }

    #[test]
    fn windows_names_compare_without_case() {
        assert!(PathStyle::Windows.same_name(b"SCCMContentLib", b"sccmcontentlib"));
        assert!(!PathStyle::Unix.same_name(b"SCCMContentLib", b"sccmcontentlib"));
    }

    #[cfg(unix)]
    #[test]
    fn original_paths_on_unix() {
        assert_eq!(
            original(PathStyle::Unix, &[b"srv", b"a"]).unwrap(),
            Path::new("/srv/a")
        );
        assert!(original(PathStyle::Windows, &[b"E:", b"a"]).is_err());
    }
}
