//! Configuration Manager specifics: deciding whether a site backup ("Backup Site Server" task) is
//! good enough to archive, and finding every user's SCUP database.
//!
//! A site backup is verified good when `smsbkup.log` shows a success status message after its last
//! error-severity one, `SiteServer\` is a folder and `SiteDBServer\` holds at least one `.mdf` file.
//! Folder and file names are compared without ASCII case, as Windows does, on every platform.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The log the "Backup Site Server" task writes.
const LOG_NAME: &str = "smsbkup.log";
/// Longest success line kept in [`SiteBackup::success_line`], in characters.
const SUCCESS_LINE_MAX: usize = 200;
/// Longest error line quoted in a refusal; longer than the success line because the inserted
/// strings (ISTR0...) that say what failed come late in a status message.
const ERROR_LINE_MAX: usize = 400;
const SUCCESS_HINT: &str = "STATMSG: ID=5035 or 'Backup completed'";
const SCUP_PREFIX: &str = "System Center Updates Publisher";
const SCUP_DB: &str = "Scupdb.sdf";

/// What the verification found; goes into the run log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SiteBackup {
    pub folder: PathBuf,
    pub log: PathBuf,
    /// The success line found (trimmed, at most 200 chars) and its 1-based line number.
    pub success_line: String,
    pub success_line_no: usize,
    /// The `<MM-DD-YYYY HH:MM:SS.mmm+ZZ>` time stamp of the success line when it has one, as written
    /// (without the angle brackets).
    pub completed_at: Option<String>,
    pub site_server: PathBuf,
    pub site_db_server: PathBuf,
    /// Every `.mdf` file below `site_db_server`, sorted.
    pub mdf_files: Vec<PathBuf>,
}

/// Checks that the site backup in `backup_folder` completed and left a usable database copy.
///
/// The log is `backup_log` when given, else `smsbkup.log` in `backup_folder`, else in its parent.
/// A backup that cannot be shown good is [`Error::SiteBackupFailed`]; I/O failures other than
/// "not found" are [`Error::Io`].
pub fn verify_site_backup(backup_folder: &Path, backup_log: Option<&Path>) -> Result<SiteBackup> {
    let refuse = |reason: String| Error::SiteBackupFailed {
        folder: backup_folder.to_path_buf(),
        reason,
    };
    require_folder(backup_folder).map_err(|e| e.or_refuse(refuse))?;
    let log = match backup_log {
        Some(p) => configured_log(p).map_err(|e| e.or_refuse(refuse))?,
        None => find_log(backup_folder)?.ok_or_else(|| {
            refuse(format!(
                "no {LOG_NAME} in {} or its parent (give [site] backup_log in the config if it is elsewhere)",
                backup_folder.display()
            ))
        })?,
    };

    let bytes = fs::read(&log).map_err(|e| Error::io(&log, e))?;
    let text = decode_log(&bytes);
    let name = log.display().to_string();
    let (success_line_no, full_line) = find_success(&text, &name).map_err(refuse)?;

    let (site_server, site_db_server) = site_folders(backup_folder)?.map_err(refuse)?;
    let mdf_files = mdf_files_below(&site_db_server)?;
    if mdf_files.is_empty() {
        return Err(refuse("SiteDBServer holds no .mdf database file".into()));
    }

    Ok(SiteBackup {
        folder: backup_folder.to_path_buf(),
        log,
        success_line: clip(full_line.trim(), SUCCESS_LINE_MAX),
        success_line_no,
        completed_at: time_stamp(full_line).map(str::to_string),
        site_server,
        site_db_server,
        mdf_files,
    })
}

/// Why a path given to [`verify_site_backup`] is unusable: a reason that refuses the backup,
/// or an I/O failure other than "not found".
enum Unusable {
    Refused(String),
    Io(Error),
}

impl Unusable {
    fn or_refuse(self, refuse: impl FnOnce(String) -> Error) -> Error {
        match self {
            Unusable::Refused(reason) => refuse(reason),
            Unusable::Io(e) => e,
        }
    }
}

/// The backup folder exists and is a folder.
fn require_folder(folder: &Path) -> std::result::Result<(), Unusable> {
    match fs::metadata(folder) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Unusable::Refused(
            "the backup folder is not a folder".into(),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(Unusable::Refused("the backup folder does not exist".into()))
        }
        Err(e) => Err(Unusable::Io(Error::io(folder, e))),
    }
}

/// `[site] backup_log`, which must be an existing file.
fn configured_log(p: &Path) -> std::result::Result<PathBuf, Unusable> {
    match fs::metadata(p) {
        Ok(m) if m.is_file() => Ok(p.to_path_buf()),
        Ok(_) => Err(Unusable::Refused(format!(
            "the configured backup_log {} is not a file",
            p.display()
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Unusable::Refused(format!(
            "the configured backup_log {} does not exist",
            p.display()
        ))),
        Err(e) => Err(Unusable::Io(Error::io(p, e))),
    }
}

/// `smsbkup.log` in the backup folder, else in its parent (where the site writes it).
fn find_log(backup_folder: &Path) -> Result<Option<PathBuf>> {
    let parent = match backup_folder.parent() {
        // A bare relative name ("CENBackup") has the current folder as parent.
        Some(p) if p.as_os_str().is_empty() => Some(Path::new(".")),
        other => other,
    };
    for dir in std::iter::once(backup_folder).chain(parent) {
        if let Some(p) = child_named(dir, LOG_NAME, Want::File)? {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// The `SiteServer` and `SiteDBServer` folders, or the reason one is missing.
fn site_folders(backup_folder: &Path) -> Result<std::result::Result<(PathBuf, PathBuf), String>> {
    let Some(site_server) = child_named(backup_folder, "SiteServer", Want::Dir)? else {
        return Ok(Err("SiteServer folder is missing".into()));
    };
    let Some(site_db_server) = child_named(backup_folder, "SiteDBServer", Want::Dir)? else {
        return Ok(Err("SiteDBServer folder is missing".into()));
    };
    Ok(Ok((site_server, site_db_server)))
}

/// Pure log check, for the unit tests: Ok((line_no, line)) of the success line that follows the
/// last SEV=E, else Err(reason clause).
///
/// The line is trimmed and at most 200 characters; its number is 1-based.
#[cfg(test)]
fn check_log_text(text: &str) -> std::result::Result<(usize, String), String> {
    find_success(text, LOG_NAME).map(|(no, line)| (no, clip(line.trim(), SUCCESS_LINE_MAX)))
}

/// The last success line after the last error line, untrimmed; `name` names the log in reasons.
fn find_success<'a>(text: &'a str, name: &str) -> std::result::Result<(usize, &'a str), String> {
    if text.trim().is_empty() {
        return Err(format!(
            "{name} is empty, so it does not show that the backup completed"
        ));
    }
    let mut last_error: Option<(usize, &str)> = None;
    let mut last_success: Option<(usize, &str)> = None;
    for (i, line) in text.lines().enumerate() {
        // An error wins over a success on the same line: refusing is the safe side.
        if is_error(line) {
            last_error = Some((i + 1, line));
        } else if is_success(line) {
            last_success = Some((i + 1, line));
        }
    }
    match (last_success, last_error) {
        (None, None) => Err(format!("{name} has no success message ({SUCCESS_HINT})")),
        (None, Some((e_no, e_line))) => Err(format!(
            "{name} has no success message ({SUCCESS_HINT}); its last error (SEV=E) is at line {e_no}: {}",
            clip(e_line.trim(), ERROR_LINE_MAX)
        )),
        (Some((s_no, _)), Some((e_no, e_line))) if e_no > s_no => Err(format!(
            "{name} reports an error (SEV=E) at line {e_no} after its last success (line {s_no}): {}",
            clip(e_line.trim(), ERROR_LINE_MAX)
        )),
        (Some(s), _) => Ok(s),
    }
}

/// An error-severity status message. Any line with the token counts, STATMSG or not, since
/// over-refusing only costs a night's archive while under-refusing archives a broken backup.
fn is_error(line: &str) -> bool {
    line.split_whitespace().any(|t| t == "SEV=E")
}

/// Status message 5035 ("site backup completed") or the task's own "Backup completed" line. The
/// latter is case-sensitive on purpose: sub-steps write lower-case "backup completed" texts.
fn is_success(line: &str) -> bool {
    (line.contains("STATMSG:") && line.split_whitespace().any(|t| t == "ID=5035"))
        || line.contains("Backup completed")
}

/// The last `<MM-DD-YYYY HH:MM:SS.mmm+ZZ>` stamp on the line, without its brackets.
fn time_stamp(line: &str) -> Option<&str> {
    let mut best = None;
    let mut rest = line;
    let mut base = 0;
    while let Some(open) = rest.find('<') {
        let start = base + open + 1;
        let Some(close) = line[start..].find('>') else {
            break;
        };
        let inner = &line[start..start + close];
        if is_time_stamp(inner) {
            best = Some(inner);
        }
        base = start;
        rest = &line[start..];
    }
    best
}

/// `MM-DD-YYYY HH:MM:SS`, optional `.fraction`, then a signed bias in digits.
fn is_time_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    let shape = b"dd-dd-dddd dd:dd:dd";
    if b.len() < shape.len() + 2 {
        return false;
    }
    let fixed_ok = shape.iter().zip(b).all(|(want, got)| match want {
        b'd' => got.is_ascii_digit(),
        w => w == got,
    });
    if !fixed_ok {
        return false;
    }
    let mut tail = &b[shape.len()..];
    if let Some(frac) = tail.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        tail = &frac[n..];
    }
    match tail.split_first() {
        Some((b'+' | b'-', bias)) => !bias.is_empty() && bias.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// At most `max` characters of `s`, cut on a character boundary.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// The log as text: UTF-16 (with a BOM, or LE without one), UTF-8, else the ANSI code page.
fn decode_log(bytes: &[u8]) -> String {
    let utf16 = |b: &[u8], le: bool| {
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16_lossy(&units)
    };
    if let Some(b) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(b, true);
    }
    if let Some(b) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(b, false);
    }
    // ASCII text saved as UTF-16LE without a BOM: a NUL after the first character.
    if bytes.len() >= 2 && bytes[0] != 0 && bytes[1] == 0 {
        return utf16(bytes, true);
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        // Not UTF-8: the server's ANSI code page, taken as Windows-1252 so that the quoted lines
        // keep their accented letters; the markers we look for are ASCII either way.
        Err(_) => bytes.iter().map(|&b| windows_1252(b)).collect(),
    }
}

fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž',
        '\u{8F}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}',
        'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9F => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    File,
    Dir,
}

/// Windows compares names without case; the names we look for are ASCII, so ASCII folding is
/// exact for them, and comparing encoded bytes works for names that are not valid Unicode too.
fn same_name(name: &OsStr, want: &str) -> bool {
    name.as_encoded_bytes()
        .eq_ignore_ascii_case(want.as_bytes())
}

/// The child of `dir` named `name` (any case) of the wanted kind, following links. On a
/// case-sensitive file system several may match: the exact spelling wins, else the first by name.
/// `Ok(None)` when `dir` or the child does not exist.
fn child_named(dir: &Path, name: &str, want: Want) -> Result<Option<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut hits = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if !same_name(&entry.file_name(), name) {
            continue;
        }
        let path = entry.path();
        let kind_ok = match fs::metadata(&path) {
            Ok(m) => match want {
                Want::File => m.is_file(),
                Want::Dir => m.is_dir(),
            },
            // A dangling link or an entry that vanished is not what we look for.
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(Error::io(&path, e)),
        };
        if kind_ok {
            hits.push(path);
        }
    }
    hits.sort();
    let exact = hits
        .iter()
        .position(|p| p.file_name() == Some(OsStr::new(name)));
    Ok(match exact {
        Some(i) => Some(hits.swap_remove(i)),
        None => hits.into_iter().next(),
    })
}

/// Every `.mdf` file (any case) at any depth below `dir`, sorted. An unreadable subfolder is an
/// error rather than skipped: it could hold the database we are asked to vouch for.
fn mdf_files_below(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1) {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_path_buf();
            let cause = io::Error::from(e);
            Error::io(path, cause)
        })?;
        let is_mdf = entry
            .path()
            .extension()
            .is_some_and(|x| same_name(x, "mdf"));
        if !is_mdf {
            continue;
        }
        let is_file = entry.file_type().is_file()
            || (entry.file_type().is_symlink()
                && fs::metadata(entry.path()).is_ok_and(|m| m.is_file()));
        if is_file {
            out.push(entry.into_path());
        }
    }
    out.sort();
    Ok(out)
}

/// Every user's SCUP database below `profiles` (e.g. C:\Users), matching
/// `<profiles>\*\AppData\Local\Microsoft\System Center Updates Publisher*\*\Scupdb.sdf`
/// (each `*` is exactly one folder level; folder names compared case-insensitively, since Windows is; the
/// `System Center Updates Publisher*` level matches any folder whose name starts with that text, case-insensitively).
/// Returns the found files sorted, plus the folders that could not be read (e.g. another user's profile
/// with access denied) as warnings, instead of failing the whole search.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ScupSearch {
    pub found: Vec<PathBuf>,
    pub unreadable: Vec<(PathBuf, String)>,
}

/// One level of the SCUP path pattern.
#[derive(Clone, Copy)]
enum Level {
    AnyDir,
    Dir(&'static str),
    DirPrefix(&'static str),
    File(&'static str),
}

const SCUP_PATTERN: [Level; 7] = [
    Level::AnyDir,
    Level::Dir("AppData"),
    Level::Dir("Local"),
    Level::Dir("Microsoft"),
    Level::DirPrefix(SCUP_PREFIX),
    Level::AnyDir,
    Level::File(SCUP_DB),
];

/// See [`ScupSearch`]. Err only if `profiles` itself cannot be read ([`Error::Io`]).
pub fn find_scup_databases(profiles: &Path) -> Result<ScupSearch> {
    let entries = fs::read_dir(profiles).map_err(|e| Error::io(profiles, e))?;
    let mut search = ScupSearch::default();
    descend(profiles, entries, &SCUP_PATTERN, &mut search);
    search.found.sort();
    search.found.dedup();
    search.unreadable.sort();
    Ok(search)
}

/// Matches the entries of `dir` against `levels[0]` and goes on below each match.
fn descend(dir: &Path, entries: fs::ReadDir, levels: &[Level], search: &mut ScupSearch) {
    let Some((level, rest)) = levels.split_first() else {
        return;
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                search.unreadable.push((dir.to_path_buf(), e.to_string()));
                continue;
            }
        };
        let name = entry.file_name();
        let name_ok = match level {
            Level::AnyDir => true,
            Level::Dir(want) | Level::File(want) => same_name(&name, want),
            Level::DirPrefix(prefix) => name
                .as_encoded_bytes()
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes())),
        };
        if !name_ok {
            continue;
        }
        // Links and junctions are not followed: C:\Users holds junctions such as "All Users" and
        // "Default User" that deny listing and would only yield false warnings or duplicates.
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if let Level::File(_) = level {
            if file_type.is_file() {
                search.found.push(path);
            }
            continue;
        }
        if !file_type.is_dir() {
            continue;
        }
        match fs::read_dir(&path) {
            Ok(sub) => descend(&path, sub, rest, search),
            // Vanished since it was listed: nothing to find there.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => search.unreadable.push((path, e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    const START: &str = r#"STATMSG: ID=5034 SEV=I LEV=M SOURCE="SMS Server" COMP="SMS_SITE_BACKUP" SYS=SCCM01.corp.local SITE=CEN PID=2212 TID=4404 GMTDATE=Sun Nov 22 03:00:01.123 2026 ISTR0="\\SCCM01\E$\ConfigMgr_Backup"  $$<SMS_SITE_BACKUP><11-22-2026 03:00:01.123+00><thread=4404 (0x1134)>"#;
    const COMPLETED: &str = "Backup completed - Sun Nov 22 03:12:44 2026~  $$<SMS_SITE_BACKUP><11-22-2026 03:12:44.456+00><thread=4404 (0x1134)>";
    const OK_5035: &str = r#"STATMSG: ID=5035 SEV=I LEV=M SOURCE="SMS Server" COMP="SMS_SITE_BACKUP" SYS=SCCM01.corp.local SITE=CEN PID=2212 TID=4404  $$<SMS_SITE_BACKUP><11-22-2026 03:12:44.500+00><thread=4404 (0x1134)>"#;
    const ERROR: &str = r#"STATMSG: ID=5043 SEV=E LEV=M SOURCE="SMS Server" COMP="SMS_SITE_BACKUP" SYS=SCCM01.corp.local SITE=CEN ISTR0="SQL backup failed"  $$<SMS_SITE_BACKUP><11-23-2026 03:05:00.000+00><thread=4404 (0x1134)>"#;
    const INFO: &str = "Info: Copying files ...  $$<SMS_SITE_BACKUP><11-22-2026 03:05:00.000+00><thread=4404 (0x1134)>";

    fn crlf(lines: &[&str]) -> String {
        let mut s = lines.join("\r\n");
        s.push_str("\r\n");
        s
    }

    /// A backup folder `<root>/ConfigMgr_Backup/CENBackup` with SiteServer and a database.
    fn site(root: &Path) -> PathBuf {
        let folder = root.join("ConfigMgr_Backup").join("CENBackup");
        fs::create_dir_all(folder.join("SiteServer").join("SMSServer")).unwrap();
        fs::create_dir_all(folder.join("SiteDBServer")).unwrap();
        fs::write(folder.join("SiteDBServer").join("CM_CEN.mdf"), b"db").unwrap();
        fs::write(folder.join("SiteDBServer").join("CM_CEN_log.ldf"), b"log").unwrap();
        folder
    }

    fn good_log() -> String {
        crlf(&[START, INFO, COMPLETED, OK_5035])
    }

    fn refused(r: Result<SiteBackup>) -> String {
        match r {
            Ok(s) => panic!("expected a refusal, got {s:?}"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::SiteBackupFailed, "{e}");
                e.to_string()
            }
        }
    }

    #[test]
    fn success_only_is_ok() {
        let (no, line) = check_log_text(&good_log()).unwrap();
        assert_eq!(no, 4);
        assert!(line.starts_with("STATMSG: ID=5035"));
        assert!(line.chars().count() <= 200);
    }

    #[test]
    fn error_after_success_is_refused_with_its_line_number() {
        let text = crlf(&[START, COMPLETED, OK_5035, INFO, ERROR]);
        let reason = check_log_text(&text).unwrap_err();
        assert!(reason.contains("SEV=E"), "{reason}");
        assert!(reason.contains("at line 5"), "{reason}");
        assert!(reason.contains("ID=5043"), "{reason}");
    }

    #[test]
    fn error_then_retried_success_is_ok() {
        let text = crlf(&[START, ERROR, START, INFO, COMPLETED]);
        assert_eq!(check_log_text(&text).unwrap().0, 5);
    }

    #[test]
    fn backup_completed_line_counts() {
        let text = crlf(&[START, INFO, COMPLETED]);
        let (no, line) = check_log_text(&text).unwrap();
        assert_eq!(no, 3);
        assert!(line.starts_with("Backup completed - Sun Nov 22"));
    }

    #[test]
    fn status_5035_alone_counts() {
        let text = crlf(&[START, OK_5035]);
        assert_eq!(check_log_text(&text).unwrap().0, 2);
    }

    #[test]
    fn no_success_is_refused() {
        let reason = check_log_text(&crlf(&[START, INFO])).unwrap_err();
        assert!(reason.contains("no success message"), "{reason}");
        let reason = check_log_text(&crlf(&[START, ERROR])).unwrap_err();
        assert!(reason.contains("no success message"), "{reason}");
        assert!(reason.contains("line 2"), "{reason}");
        // A look-alike id is not the success message.
        let reason = check_log_text(&OK_5035.replace("ID=5035", "ID=50351")).unwrap_err();
        assert!(reason.contains("no success message"), "{reason}");
    }

    #[test]
    fn empty_log_is_refused() {
        for text in ["", "\r\n\r\n", "   "] {
            let reason = check_log_text(text).unwrap_err();
            assert!(reason.contains("empty"), "{reason}");
        }
    }

    #[test]
    fn success_line_is_clipped_to_200_chars() {
        let long = format!("Backup completed - {}", "é".repeat(500));
        let (_, line) = check_log_text(&long).unwrap();
        assert_eq!(line.chars().count(), 200);
    }

    #[test]
    fn time_stamps() {
        assert_eq!(time_stamp(OK_5035), Some("11-22-2026 03:12:44.500+00"));
        assert_eq!(
            time_stamp("x <01-02-2026 10:00:00-300>"),
            Some("01-02-2026 10:00:00-300")
        );
        assert_eq!(
            time_stamp("Backup completed - Sun Nov 22 03:12:44 2026"),
            None
        );
        assert_eq!(time_stamp("<11-22-2026 03:12:44.+00> <a> <"), None);
    }

    #[test]
    fn verified_backup_reports_what_it_found() {
        let tmp = tempfile::tempdir().unwrap();
        let folder = site(tmp.path());
        fs::write(folder.join("smsbkup.log"), good_log()).unwrap();
        let s = verify_site_backup(&folder, None).unwrap();
        assert_eq!(s.folder, folder);
        assert_eq!(s.log, folder.join("smsbkup.log"));
        assert_eq!(s.success_line_no, 4);
        assert!(s.success_line.starts_with("STATMSG: ID=5035"));
        assert_eq!(
            s.completed_at.as_deref(),
            Some("11-22-2026 03:12:44.500+00")
        );
        assert_eq!(s.site_server, folder.join("SiteServer"));
        assert_eq!(s.site_db_server, folder.join("SiteDBServer"));
        assert_eq!(
            s.mdf_files,
            vec![folder.join("SiteDBServer").join("CM_CEN.mdf")]
        );
        serde_json::to_value(&s).unwrap();
    }

    #[test]
    fn utf16le_log_with_bom_is_parsed() {
        let tmp = tempfile::tempdir().unwrap();
        let folder = site(tmp.path());
        let mut bytes = vec![0xFF, 0xFE];
        for u in good_log().encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        fs::write(folder.join("smsbkup.log"), &bytes).unwrap();
        let s = verify_site_backup(&folder, None).unwrap();
        assert_eq!(s.success_line_no, 4);
        assert!(s.success_line.starts_with("STATMSG: ID=5035"));

        // And an error written in UTF-16 is seen as well.
        let mut bytes = vec![0xFF, 0xFE];
        for u in crlf(&[COMPLETED, ERROR]).encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        fs::write(folder.join("smsbkup.log"), &bytes).unwrap();
        let msg = refused(verify_site_backup(&folder, None));
        assert!(msg.contains("at line 2"), "{msg}");
    }

    #[test]
    fn ansi_and_utf8_bom_logs_are_parsed() {
        let mut ansi = b"Server M\xfcnchen\r\n".to_vec();
        ansi.extend_from_slice(COMPLETED.as_bytes());
        let text = decode_log(&ansi);
        assert!(text.starts_with("Server München"));
        assert_eq!(check_log_text(&text).unwrap().0, 2);

        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(COMPLETED.as_bytes());
        assert!(decode_log(&bom).starts_with("Backup completed"));
    }

    #[test]
    fn missing_log_is_refused_and_names_the_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let folder = site(tmp.path());
        let msg = refused(verify_site_backup(&folder, None));
        assert!(msg.contains(&folder.display().to_string()), "{msg}");
        assert!(msg.contains("no smsbkup.log"), "{msg}");
        assert!(msg.contains("backup_log"), "{msg}");
    }

    #[test]
    fn log_in_the_parent_folder_is_found() {
        let tmp = tempfile::tempdir().unwrap();
        let folder = site(tmp.path());
        let parent = folder.parent().unwrap();
        // Windows does not care about the case of the name.
        fs::write(parent.join("SMSBKUP.LOG"), good_log()).unwrap();
        let s = verify_site_backup(&folder, None).unwrap();
        assert_eq!(s.log, parent.join("SMSBKUP.LOG"));

        // The one in the backup folder itself wins.
        fs::write(folder.join("smsbkup.log"), crlf(&[COMPLETED, ERROR])).unwrap();
        let msg = refused(verify_site_backup(&folder, None));
        assert!(msg.contains("reports an error"), "{msg}");
    }

    #[test]
    fn explicit_backup_log_is_used() {
        let tmp = tempfile::tempdir().unwrap();
        let folder = site(tmp.path());
        // A failing log where it would otherwise be looked for.
        fs::write(folder.join("smsbkup.log"), crlf(&[ERROR])).unwrap();
        let elsewhere = tmp.path().join("Logs");
        fs::create_dir_all(&elsewhere).unwrap();
        let log = elsewhere.join("smsbkup.log");
        fs::write(&log, good_log()).unwrap();
        let s = verify_site_backup(&folder, Some(&log)).unwrap();
        assert_eq!(s.log, log);

        let missing = elsewhere.join("nope.log");
        let msg = refused(verify_site_backup(&folder, Some(&missing)));
        assert!(msg.contains(&missing.display().to_string()), "{msg}");
    }

    #[test]
    fn refusal_from_the_log_names_the_log() {
        let tmp = tempfile::tempdir().unwrap();
        let folder = site(tmp.path());
        let log = folder.join("smsbkup.log");
        fs::write(&log, "").unwrap();
        let msg = refused(verify_site_backup(&folder, None));
        assert!(msg.contains(&log.display().to_string()), "{msg}");
        assert!(msg.contains("empty"), "{msg}");
        assert!(msg.contains("nothing was archived"), "{msg}");
    }

    #[test]
    fn only_ldf_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let folder = site(tmp.path());
        fs::write(folder.join("smsbkup.log"), good_log()).unwrap();
        fs::remove_file(folder.join("SiteDBServer").join("CM_CEN.mdf")).unwrap();
        let msg = refused(verify_site_backup(&folder, None));
        assert!(
            msg.contains("SiteDBServer holds no .mdf database file"),
            "{msg}"
        );
    }

    #[test]
    fn upper_case_mdf_in_a_subfolder_and_folder_case_are_accepted() {
        let tmp = tempfile::tempdir().unwrap();
        let folder = tmp.path().join("CENBackup");
        fs::create_dir_all(folder.join("siteserver")).unwrap();
        let db = folder.join("SITEDBSERVER");
        fs::create_dir_all(db.join("Data")).unwrap();
        fs::write(db.join("Data").join("CM_CEN.MDF"), b"db").unwrap();
        fs::write(db.join("CM_CEN_log.LDF"), b"log").unwrap();
        fs::write(folder.join("smsbkup.log"), good_log()).unwrap();
        let s = verify_site_backup(&folder, None).unwrap();
        assert_eq!(s.site_server, folder.join("siteserver"));
        assert_eq!(s.site_db_server, db);
        assert_eq!(s.mdf_files, vec![db.join("Data").join("CM_CEN.MDF")]);
    }

    #[test]
    fn missing_site_server_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let folder = site(tmp.path());
        fs::write(folder.join("smsbkup.log"), good_log()).unwrap();
        fs::remove_dir_all(folder.join("SiteServer")).unwrap();
        let msg = refused(verify_site_backup(&folder, None));
        assert!(msg.contains("SiteServer folder is missing"), "{msg}");

        // A file of that name is not the folder.
        fs::write(folder.join("SiteServer"), b"").unwrap();
        let msg = refused(verify_site_backup(&folder, None));
        assert!(msg.contains("SiteServer folder is missing"), "{msg}");
    }

    #[test]
    fn missing_backup_folder_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let msg = refused(verify_site_backup(&tmp.path().join("CENBackup"), None));
        assert!(msg.contains("does not exist"), "{msg}");
    }

    fn touch(p: &Path) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b"sdf").unwrap();
    }

    /// Three users (two with a database, one without) plus decoys; returns the expected finds.
    fn scup_tree(users: &Path) -> Vec<PathBuf> {
        let alice = users
            .join("alice")
            .join(r"AppData/Local/Microsoft/System Center Updates Publisher 2011/5.0.1727.0000/Scupdb.sdf");
        let bob = users
            .join("bob")
            .join(r"appdata/local/microsoft/System Center Updates Publisher/6.0.283.0/Scupdb.sdf");
        touch(&alice);
        touch(&bob);
        fs::create_dir_all(users.join("carol/AppData/Local/Microsoft/Windows")).unwrap();
        // Wrong depths: right under the publisher folder, and one level too deep.
        touch(
            &users.join("carol/AppData/Local/Microsoft/System Center Updates Publisher/Scupdb.sdf"),
        );
        touch(&users.join(
            "alice/AppData/Local/Microsoft/System Center Updates Publisher 2011/5.0/x/Scupdb.sdf",
        ));
        touch(&users.join("alice/AppData/Scupdb.sdf"));
        // Wrong folder name and a file named like a profile.
        touch(
            &users.join(
                "carol/AppData/Roaming/Microsoft/System Center Updates Publisher/1/Scupdb.sdf",
            ),
        );
        fs::write(users.join("desktop.ini"), b"").unwrap();
        let mut want = vec![alice, bob];
        want.sort();
        want
    }

    #[test]
    fn scup_databases_are_found_per_user() {
        let tmp = tempfile::tempdir().unwrap();
        let users = tmp.path().join("Users");
        let want = scup_tree(&users);
        let s = find_scup_databases(&users).unwrap();
        assert_eq!(s.found, want);
        assert!(s.unreadable.is_empty(), "{:?}", s.unreadable);
    }

    #[test]
    fn missing_profiles_folder_is_an_io_error() {
        let tmp = tempfile::tempdir().unwrap();
        let e = find_scup_databases(&tmp.path().join("nope")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io);
    }

    #[cfg(unix)]
    #[test]
    fn unreadable_profile_is_a_warning_not_a_failure() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let users = tmp.path().join("Users");
        let want = scup_tree(&users);
        let dave = users.join("dave");
        touch(&dave.join("AppData/Local/Microsoft/System Center Updates Publisher/1/Scupdb.sdf"));
        fs::set_permissions(&dave, fs::Permissions::from_mode(0o000)).unwrap();
        let s = find_scup_databases(&users);
        // Let the temporary folder be removed whatever the outcome.
        fs::set_permissions(&dave, fs::Permissions::from_mode(0o755)).unwrap();
        let s = s.unwrap();
        for w in &want {
            assert!(s.found.contains(w), "{w:?} not in {:?}", s.found);
        }
        // Root reads anything, so only an ordinary user sees the folder as unreadable.
        if unsafe { libc::geteuid() } != 0 {
            assert_eq!(s.found, want);
            assert_eq!(s.unreadable.len(), 1, "{:?}", s.unreadable);
            assert_eq!(s.unreadable[0].0, dave);
        }
    }
}
