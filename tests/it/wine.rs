//! sitevault.exe under Wine, driven by the repository's own examples/AfterBackup.bat through
//! `wine cmd /c`, against a generated site tree on Wine drives. `.ci/run` sources
//! `.ci/windows.sh`, which cross-builds the exe and exports `SITEVAULT_WINE_EXE` and
//! `WINEPREFIX`; without them these tests say so and pass.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{PASSWORD, random_bytes, run, sv};

/// The Windows build and the Wine prefix it runs in.
pub struct Wine {
    pub exe: PathBuf,
    pub prefix: PathBuf,
}

impl Wine {
    /// `None` (with a visible SKIPPED line) when `.ci/windows.sh` has not set things up.
    pub fn get(test: &str) -> Option<Wine> {
        match (
            std::env::var_os("SITEVAULT_WINE_EXE"),
            std::env::var_os("WINEPREFIX"),
        ) {
            (Some(exe), Some(prefix)) if Path::new(&exe).is_file() => Some(Wine {
                exe: exe.into(),
                prefix: prefix.into(),
            }),
            _ => {
                eprintln!(
                    "SKIPPED: {test}: SITEVAULT_WINE_EXE / WINEPREFIX are not set (`bash .ci/run` sources .ci/windows.sh)"
                );
                None
            }
        }
    }

    /// `wine <program> <args>` with the test password, at most two minutes.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("timeout");
        c.args(["120", "wine", program])
            .env("WINEDEBUG", "-all")
            .env("WINEPREFIX", &self.prefix)
            .env("SITEVAULT_PASSWORD", PASSWORD)
            .env_remove("SITEVAULT_REPOSITORY")
            .env_remove("SITEVAULT_PASSWORD_FILE")
            .stdin(std::process::Stdio::null());
        c
    }

    /// Run sitevault.exe; output with CRLF turned into LF.
    pub fn sv(&self, args: &[&str]) -> WineOut {
        let mut c = self.command(self.exe.to_str().expect("UTF-8 exe path"));
        c.args(args);
        WineOut::of(&mut c)
    }

    /// Map drive `letter` to `dir` for as long as the guard lives.
    pub fn drive(&self, letter: char, dir: &Path) -> Drive {
        fs::create_dir_all(dir).unwrap();
        let link = self
            .prefix
            .join("dosdevices")
            .join(format!("{}:", letter.to_ascii_lowercase()));
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(dir, &link).unwrap();
        Drive { link }
    }
}

/// A mapped Wine drive; unmapped on drop, also when a test fails.
pub struct Drive {
    link: PathBuf,
}

impl Drop for Drive {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.link);
    }
}

pub struct WineOut {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl WineOut {
    /// Output goes to files, not pipes: a wineserver started by this call keeps its stderr
    /// open for ~3 s after the program ends, and reading a pipe to its end would wait for that.
    pub fn of(c: &mut Command) -> WineOut {
        let (out, err) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
        let status = c
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap())
            .status()
            .expect("wine runs");
        let text = |mut f: fs::File| {
            use std::io::{Read, Seek};
            let mut b = Vec::new();
            f.seek(std::io::SeekFrom::Start(0)).unwrap();
            f.read_to_end(&mut b).unwrap();
            String::from_utf8_lossy(&b).replace("\r\n", "\n")
        };
        let out = WineOut {
            code: status.code().expect("wine exited normally"),
            stdout: text(out),
            stderr: text(err),
        };
        assert_ne!(out.code, 124, "wine timed out:\n{}", out.show());
        assert_ne!(
            out.code, 53,
            "exit 53: the ProcessPrng stand-in is missing from the prefix (.ci/windows.sh)"
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.show());
        out
    }

    pub fn show(&self) -> String {
        format!(
            "exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Every entry below `dir`: its relative path, its content (`None` for a folder) and its mtime
/// in the 100 ns units Windows keeps (a restore through Wine can only be that exact).
pub fn tree_state(dir: &Path) -> std::collections::BTreeMap<String, (Option<Vec<u8>>, i128)> {
    let mut out = std::collections::BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).min_depth(1) {
        let e = e.expect("walk");
        let m = e.metadata().expect("metadata");
        let t = m.modified().expect("mtime");
        let ns = match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        };
        let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
        let content = m.is_file().then(|| fs::read(e.path()).unwrap());
        out.insert(rel, (content, ns.div_euclid(100)));
    }
    assert!(!out.is_empty(), "nothing below {}", dir.display());
    out
}

/// The night's site backup as the Backup Site Server task leaves it, under `e` (drive E:).
fn site_backup(e: &Path, night: u64, ok: bool) {
    let b = e.join("ConfigMgr_Backup");
    let site = b.join("CENBackup");
    fs::create_dir_all(site.join("SiteServer/SMSServer/inboxes")).unwrap();
    fs::create_dir_all(site.join("SiteDBServer")).unwrap();
    fs::write(
        site.join("SiteServer/SMSServer/inboxes/site.ctl"),
        format!("night {night}\r\n"),
    )
    .unwrap();
    fs::write(
        site.join("SiteDBServer/CM_CEN.mdf"),
        random_bytes(night, 900_000),
    )
    .unwrap();
    fs::write(
        site.join("SiteDBServer/CM_CEN_log.ldf"),
        random_bytes(50 + night, 200_000),
    )
    .unwrap();
    let mut log = String::from(
        "SMS_SITE_BACKUP started.\r\nSTATMSG: ID=5034 SEV=I LEV=M SOURCE=\"SMS Server\" COMP=\"SMS_SITE_BACKUP\"\r\n",
    );
    if ok {
        log.push_str(
            "STATMSG: ID=5035 SEV=I LEV=M SOURCE=\"SMS Server\" COMP=\"SMS_SITE_BACKUP\"\r\n",
        );
    } else {
        log.push_str("STATMSG: ID=5043 SEV=E LEV=M SOURCE=\"SMS Server\" COMP=\"SMS_SITE_BACKUP\"\r\nError: the site database could not be backed up.\r\n");
    }
    fs::write(b.join("smsbkup.log"), log).unwrap();
    let lib = e.join("SCCMContentLib/FileLib/4A1B");
    fs::create_dir_all(&lib).unwrap();
    fs::write(lib.join("4A1B2C3D"), random_bytes(7, 300_000)).unwrap();
    fs::create_dir_all(e.join("SCCMContentLib/DataLib")).unwrap();
    fs::write(
        e.join("SCCMContentLib/DataLib/CEN00001.INI"),
        b"[Content]\r\nHash=4A1B2C3D\r\n",
    )
    .unwrap();
}

/// Install sitevault.exe where AfterBackup.bat looks for it, `C:\Program Files\sitevault\`.
/// A temporary name then a rename: tests running at once never see half an exe.
fn install(w: &Wine) {
    let dir = w.prefix.join("drive_c/Program Files/sitevault");
    fs::create_dir_all(&dir).unwrap();
    let tmp = dir.join(format!("sitevault.exe.{}", std::process::id()));
    fs::copy(&w.exe, &tmp).unwrap();
    fs::rename(&tmp, dir.join("sitevault.exe")).unwrap();
}

/// Runs AfterBackup.bat the way Configuration Manager would, from a caller that reports the
/// `%ERRORLEVEL%` it sees; returns (cmd's exit code, that ERRORLEVEL, output).
fn after_backup(w: &Wine, e: &Path) -> (i32, Option<i32>, WineOut) {
    let caller = e.join("run-afterbackup.bat");
    fs::write(
        &caller,
        "@echo off\r\ncall \"E:\\ConfigMgr\\inboxes\\smsbkup.box\\AfterBackup.bat\"\r\necho afterbackup errorlevel=%ERRORLEVEL%\r\nexit /b %ERRORLEVEL%\r\n",
    )
    .unwrap();
    let mut c = w.command("cmd");
    c.args(["/c", "E:\\run-afterbackup.bat"])
        .env("SITEVAULT_CONFIG", "E:\\sitevault\\sitevault.toml");
    let o = WineOut::of(&mut c);
    let level = o
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("afterbackup errorlevel="))
        .and_then(|n| n.trim().parse().ok());
    (o.code, level, o)
}

#[test]
fn afterbackup_bat_archives_refuses_and_restores_under_wine() {
    let Some(w) = Wine::get("afterbackup_bat_archives_refuses_and_restores_under_wine") else {
        return;
    };
    install(&w);
    let dir = tempfile::tempdir().unwrap();
    let (e, v, t) = (
        dir.path().join("e"),
        dir.path().join("v"),
        dir.path().join("t"),
    );
    // Letters of this test only: tests run at once in one prefix.
    let _drives = [w.drive('E', &e), w.drive('V', &v), w.drive('T', &t)];

    // The repository's own AfterBackup.bat, byte for byte (CRLF), in the inbox it lives in.
    let bat = fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/AfterBackup.bat"
    ))
    .unwrap();
    assert!(
        bat.windows(2).any(|p| p == b"\r\n"),
        "AfterBackup.bat is CRLF"
    );
    fs::create_dir_all(e.join("ConfigMgr/inboxes/smsbkup.box")).unwrap();
    fs::write(
        e.join("ConfigMgr/inboxes/smsbkup.box/AfterBackup.bat"),
        &bat,
    )
    .unwrap();
    fs::create_dir_all(e.join("sitevault")).unwrap();
    fs::write(
        e.join("sitevault/sitevault.toml"),
        "[vault]\r\nrepository = 'V:\\Vault'\r\n[site]\r\ncode = \"CEN\"\r\nbackup_folder = 'E:\\ConfigMgr_Backup\\CENBackup'\r\n[sources]\r\ncontent_library = 'E:\\SCCMContentLib'\r\n[retention]\r\nkeep_last = 5\r\nprune = true\r\n[log]\r\nfile = 'E:\\ConfigMgr_Backup\\sitevault.log'\r\n",
    )
    .unwrap();
    let o = w.sv(&[
        "init",
        "--repo",
        "V:\\Vault",
        "--kdf-memory-kib",
        "1024",
        "--kdf-iterations",
        "1",
    ]);
    assert_eq!(o.code, 0, "{}", o.show());
    let vault = v.join("Vault");
    let count = || {
        let o = run(sv().args(["snapshots", "--json", "--repo", vault.to_str().unwrap()]));
        assert_eq!(o.code, 0, "{}", o.stderr);
        serde_json::from_str::<Vec<serde_json::Value>>(&o.stdout)
            .unwrap()
            .len()
    };

    // A good night archives: exit 0 through the batch file, a log, one recovery point.
    site_backup(&e, 1, true);
    let (code, level, o) = after_backup(&w, &e);
    assert_eq!((code, level), (0, Some(0)), "{}", o.show());
    let log = fs::read_to_string(e.join("ConfigMgr_Backup/sitevault.log")).unwrap();
    assert!(log.contains("site backup verified"), "{log}");
    assert!(log.contains("end: ok (exit code 0)"), "{log}");
    assert!(
        log.contains("E:\\ConfigMgr_Backup\\CENBackup"),
        "the log names Windows paths: {log}"
    );
    assert_eq!(count(), 1);
    // What the recovery point holds, mtimes included, to compare restores with.
    let want_site = tree_state(&e.join("ConfigMgr_Backup/CENBackup"));
    let want_lib = tree_state(&e.join("SCCMContentLib"));

    // A failed night is refused: the batch file sees ERRORLEVEL 1, nothing is archived, and
    // the log says why.
    site_backup(&e, 2, false);
    let (code, level, o) = after_backup(&w, &e);
    assert_eq!((code, level), (1, Some(1)), "{}", o.show());
    let log = fs::read_to_string(e.join("ConfigMgr_Backup/sitevault.log")).unwrap();
    assert!(log.contains("end: refused (exit code 1)"), "{log}");
    assert_eq!(count(), 1);

    // The site is lost: restore --original puts every file back at its E:\ path.
    fs::remove_dir_all(e.join("ConfigMgr_Backup/CENBackup")).unwrap();
    fs::remove_dir_all(e.join("SCCMContentLib")).unwrap();
    let o = w.sv(&["restore", "latest", "--repo", "V:\\Vault", "--original"]);
    assert_eq!(o.code, 0, "{}", o.show());
    assert_eq!(tree_state(&e.join("ConfigMgr_Backup/CENBackup")), want_site);
    assert_eq!(tree_state(&e.join("SCCMContentLib")), want_lib);

    // --target maps E:\x to <target>\E\x.
    let o = w.sv(&[
        "restore",
        "latest",
        "--repo",
        "V:\\Vault",
        "--target",
        "T:\\restore",
    ]);
    assert_eq!(o.code, 0, "{}", o.show());
    assert_eq!(
        tree_state(&t.join("restore/E/ConfigMgr_Backup/CENBackup")),
        want_site
    );
    assert_eq!(tree_state(&t.join("restore/E/SCCMContentLib")), want_lib);
}

/// The R, H and S letters `attrib` shows for each entry directly in `dir_win` (a Windows path).
fn attributes(w: &Wine, dir_win: &str) -> std::collections::BTreeMap<String, String> {
    let mut c = w.command("cmd");
    c.args(["/c", &format!("attrib /d {dir_win}\\*")]);
    let o = WineOut::of(&mut c);
    assert_eq!(o.code, 0, "{}", o.show());
    o.stdout
        .lines()
        .filter_map(|l| {
            let (flags, path) = l.split_at(l.find(dir_win)?);
            let name = path.rsplit('\\').next()?.to_string();
            let f: String = flags.chars().filter(|c| "RHS".contains(*c)).collect();
            Some((name, f))
        })
        .collect()
}

/// Read-only, hidden and system attributes are archived and restored, under --target and over
/// the original files (a read-only file is replaced, and stays read-only).
#[test]
fn windows_attributes_are_archived_and_restored_under_wine() {
    let Some(w) = Wine::get("windows_attributes_are_archived_and_restored_under_wine") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p");
    let _drive = w.drive('P', &p);
    let src = p.join("site");
    fs::create_dir_all(src.join("hiddendir")).unwrap();
    for (name, data) in [
        ("ro.txt", "read-only\r\n"),
        ("hid.txt", "hidden\r\n"),
        ("sys.txt", "system\r\n"),
        ("plain.txt", "plain\r\n"),
        ("hiddendir/inner.txt", "inner\r\n"),
    ] {
        fs::write(src.join(name), data).unwrap();
    }
    // Wine's attrib applies one change per call.
    let mut c = w.command("cmd");
    c.args([
        "/c",
        "attrib +r P:\\site\\ro.txt & attrib +h P:\\site\\hid.txt & attrib +s P:\\site\\sys.txt & attrib +h /d P:\\site\\hiddendir",
    ]);
    let o = WineOut::of(&mut c);
    assert_eq!(o.code, 0, "{}", o.show());
    let want = attributes(&w, "P:\\site");
    let expect: std::collections::BTreeMap<String, String> = [
        ("hid.txt", "H"),
        ("hiddendir", "H"),
        ("plain.txt", ""),
        ("ro.txt", "R"),
        ("sys.txt", "S"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(want, expect, "attrib set them");

    for args in [
        &[
            "init",
            "--repo",
            "P:\\vault",
            "--kdf-memory-kib",
            "1024",
            "--kdf-iterations",
            "1",
        ][..],
        &["backup", "--repo", "P:\\vault", "P:\\site"],
        &[
            "restore",
            "latest",
            "--repo",
            "P:\\vault",
            "--target",
            "P:\\out",
        ],
    ] {
        let o = w.sv(args);
        assert_eq!(o.code, 0, "{args:?}: {}", o.show());
    }
    assert_eq!(attributes(&w, "P:\\out\\P\\site"), expect);
    assert_eq!(
        fs::read(p.join("out/P/site/hiddendir/inner.txt")).unwrap(),
        b"inner\r\n"
    );

    // Over the originals: the changed read-only file is replaced and stays read-only.
    let ro = src.join("ro.txt");
    let mut perm = fs::metadata(&ro).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    fs::set_permissions(&ro, perm).unwrap();
    fs::write(&ro, "changed\r\n").unwrap();
    let mut perm = fs::metadata(&ro).unwrap().permissions();
    perm.set_readonly(true);
    fs::set_permissions(&ro, perm).unwrap();
    let o = w.sv(&[
        "restore",
        "latest",
        "--repo",
        "P:\\vault",
        "--original",
        "--if-exists",
        "overwrite",
    ]);
    assert_eq!(o.code, 0, "{}", o.show());
    assert_eq!(fs::read(&ro).unwrap(), b"read-only\r\n");
    assert_eq!(attributes(&w, "P:\\site"), expect);
    // Again: every file is already right, so only metadata is set, on a read-only file too.
    let o = w.sv(&["restore", "latest", "--repo", "P:\\vault", "--original"]);
    assert_eq!(o.code, 0, "{}", o.show());
    assert!(
        o.stdout.contains("0 files written, 5 unchanged"),
        "{}",
        o.show()
    );
    assert_eq!(attributes(&w, "P:\\site"), expect);
}

/// A snapshot taken on Linux holds names Windows cannot: restoring it under Windows names each
/// one with the reason and exit code 1, and restores everything else.
#[test]
fn names_windows_cannot_hold_are_named_not_lost_under_wine() {
    let Some(w) = Wine::get("names_windows_cannot_hold_are_named_not_lost_under_wine") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let l = dir.path().join("l");
    let src = l.join("site");
    fs::create_dir_all(src.join("dir.")).unwrap();
    fs::create_dir_all(src.join("good")).unwrap();
    for name in [
        "a:b.txt",
        "what?.log",
        "CON",
        "dir./inside.txt",
        "good/ok.txt",
        "ok.txt",
    ] {
        fs::write(src.join(name), name).unwrap();
    }
    let vault = l.join("vault");
    crate::common::init_vault(&vault);
    let o = run(sv().args([
        "backup",
        "--repo",
        vault.to_str().unwrap(),
        src.to_str().unwrap(),
    ]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let _drive = w.drive('L', &l);
    let o = w.sv(&[
        "restore",
        "latest",
        "--json",
        "--repo",
        "L:\\vault",
        "--target",
        "L:\\out",
    ]);
    assert_eq!(o.code, 1, "{}", o.show());
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let errors: Vec<String> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    assert_eq!(errors.len(), 4, "{errors:#?}");
    for (name, why) in [
        ("a:b.txt", "the character ':'"),
        ("what?.log", "the character '?'"),
        ("CON", "CON is a device name"),
        ("dir. (and everything below it)", "ends with a dot"),
    ] {
        assert!(
            errors
                .iter()
                .any(|e| e.contains(&format!("/{name}: ")) && e.contains(why)),
            "{name}: {errors:#?}"
        );
    }
    let out = l.join("out").join(src.strip_prefix("/").unwrap());
    assert_eq!(fs::read(out.join("ok.txt")).unwrap(), b"ok.txt");
    assert_eq!(fs::read(out.join("good/ok.txt")).unwrap(), b"good/ok.txt");
    assert!(!out.join("dir.").exists() && !out.join("dir").exists());
}

/// A file held open without sharing (as SQL Server holds a live database) is tried again, then
/// reported as unreadable by name: the snapshot is saved, marked incomplete, exit code 3.
#[test]
fn a_file_held_open_without_sharing_is_retried_then_reported_under_wine() {
    let test = "a_file_held_open_without_sharing_is_retried_then_reported_under_wine";
    let Some(w) = Wine::get(test) else {
        return;
    };
    let Some(holdopen) = std::env::var_os("SITEVAULT_WINE_HOLDOPEN") else {
        eprintln!("SKIPPED: {test}: SITEVAULT_WINE_HOLDOPEN is not set (.ci/windows.sh builds it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("h");
    let _drive = w.drive('H', &h);
    fs::create_dir_all(h.join("site")).unwrap();
    fs::write(h.join("site/CM_CEN.mdf"), random_bytes(3, 200_000)).unwrap();
    fs::write(h.join("site/other.txt"), "other\r\n").unwrap();
    let o = w.sv(&[
        "init",
        "--repo",
        "H:\\vault",
        "--kdf-memory-kib",
        "1024",
        "--kdf-iterations",
        "1",
    ]);
    assert_eq!(o.code, 0, "{}", o.show());

    // The holder says "held" once the file is open; it lets go after 60 s or when killed.
    let said = dir.path().join("holder.out");
    let mut holder = w
        .command(holdopen.to_str().unwrap())
        .args(["H:\\site\\CM_CEN.mdf", "60"])
        .stdout(fs::File::create(&said).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !fs::read_to_string(&said).unwrap().contains("held") {
        assert!(
            std::time::Instant::now() < deadline,
            "holdopen never held the file"
        );
        assert!(
            holder.try_wait().unwrap().is_none(),
            "holdopen exited early"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let o = w.sv(&["backup", "--json", "--repo", "H:\\vault", "H:\\site"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(o.code, 3, "{}", o.show());
    assert!(
        o.stderr.contains("CM_CEN.mdf") && o.stderr.contains("still so after 4 tries"),
        "{}",
        o.show()
    );
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["complete"], false, "{v}");
    // Everything else is in the snapshot.
    let o = w.sv(&["ls", "--repo", "H:\\vault", "latest"]);
    assert!(o.stdout.contains("H:\\site\\other.txt"), "{}", o.show());
    assert!(!o.stdout.contains("CM_CEN.mdf"), "{}", o.show());
}

/// Paths longer than MAX_PATH (260 characters) back up and restore, to --target and to their
/// original place; the same folder named twice in different letter case is archived once.
#[test]
fn long_paths_and_case_insensitive_sources_under_wine() {
    let Some(w) = Wine::get("long_paths_and_case_insensitive_sources_under_wine") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join("g");
    let _drive = w.drive('G', &g);
    let deep: Vec<String> = (0..6)
        .map(|i| format!("folder-{i}-{}", "x".repeat(40)))
        .collect();
    let deep_rel = deep.join("/");
    let leaf = g.join("Site").join(&deep_rel).join("Scupdb.sdf");
    fs::create_dir_all(leaf.parent().unwrap()).unwrap();
    fs::write(&leaf, random_bytes(11, 50_000)).unwrap();
    fs::write(g.join("Site/top.txt"), "top\r\n").unwrap();
    let win_leaf = format!("G:\\Site\\{}\\Scupdb.sdf", deep.join("\\"));
    assert!(win_leaf.len() > 260, "{}", win_leaf.len());
    let want = tree_state(&g.join("Site"));
    for args in [
        &[
            "init",
            "--repo",
            "G:\\vault",
            "--kdf-memory-kib",
            "1024",
            "--kdf-iterations",
            "1",
        ][..],
        // The same folder twice, in different case: one entry in the snapshot.
        &[
            "backup",
            "--json",
            "--repo",
            "G:\\vault",
            "G:\\Site",
            "g:\\SITE",
        ],
    ] {
        let o = w.sv(args);
        assert_eq!(o.code, 0, "{args:?}: {}", o.show());
    }
    // The long-path form of the vault's folder names the same vault.
    let o = w.sv(&["ls", "--repo", "\\\\?\\G:\\vault", "latest"]);
    assert_eq!(o.code, 0, "{}", o.show());
    assert_eq!(
        o.stdout.lines().filter(|l| l.ends_with("top.txt")).count(),
        1,
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains(&win_leaf), "{}", o.stdout);

    let o = w.sv(&[
        "restore",
        "latest",
        "--repo",
        "G:\\vault",
        "--target",
        "G:\\out",
    ]);
    assert_eq!(o.code, 0, "{}", o.show());
    assert_eq!(tree_state(&g.join("out/G/Site")), want);
    fs::remove_dir_all(g.join("Site")).unwrap();
    let o = w.sv(&[
        "restore",
        "latest",
        "--repo",
        "G:\\vault",
        "--original",
        "--verify",
    ]);
    assert_eq!(o.code, 0, "{}", o.show());
    assert_eq!(tree_state(&g.join("Site")), want);
}
