//! `sitevault afterbackup` end to end over a generated Configuration Manager site server: a
//! verified site backup plus content library, package sources, every user's SCUP database and
//! extra folders archived as one recovery point; refusals that leave the vault untouched;
//! retention over many nights; incomplete runs; dry runs; SQL change-tracking windows; config
//! mistakes.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{Out, assert_trees_equal, init_vault, random_bytes, restored_path, run, sv};

const HOST: &str = "sccm01";

const START: &str = r#"STATMSG: ID=5034 SEV=I LEV=M SOURCE="SMS Server" COMP="SMS_SITE_BACKUP" SYS=SCCM01.corp.local SITE=CEN PID=2212 TID=4404 GMTDATE=Sun Nov 22 03:00:01.123 2026 ISTR0="\\SCCM01\E$\ConfigMgr_Backup"  $$<SMS_SITE_BACKUP><11-22-2026 03:00:01.123+00><thread=4404 (0x1134)>"#;
const INFO: &str = "Info: Copying files ...  $$<SMS_SITE_BACKUP><11-22-2026 03:05:00.000+00><thread=4404 (0x1134)>";
const COMPLETED: &str = "Backup completed - Sun Nov 22 03:12:44 2026~  $$<SMS_SITE_BACKUP><11-22-2026 03:12:44.456+00><thread=4404 (0x1134)>";
const OK_5035: &str = r#"STATMSG: ID=5035 SEV=I LEV=M SOURCE="SMS Server" COMP="SMS_SITE_BACKUP" SYS=SCCM01.corp.local SITE=CEN PID=2212 TID=4404  $$<SMS_SITE_BACKUP><11-22-2026 03:12:44.500+00><thread=4404 (0x1134)>"#;
const ERROR: &str = r#"STATMSG: ID=5043 SEV=E LEV=M SOURCE="SMS Server" COMP="SMS_SITE_BACKUP" SYS=SCCM01.corp.local SITE=CEN ISTR0="SQL backup failed"  $$<SMS_SITE_BACKUP><11-23-2026 03:05:00.000+00><thread=4404 (0x1134)>"#;

fn crlf(lines: &[&str]) -> String {
    let mut s = lines.join("\r\n");
    s.push_str("\r\n");
    s
}

fn good_log() -> String {
    crlf(&[START, INFO, COMPLETED, OK_5035])
}

fn show(o: &Out) -> String {
    format!(
        "exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.code, o.stdout, o.stderr
    )
}

fn json_of(o: &Out) -> Value {
    serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", show(o)))
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// A TOML literal string (single quotes) for a path.
fn lit(p: &Path) -> String {
    let s = p.display().to_string();
    assert!(!s.contains('\''), "test path holds a quote: {s}");
    format!("'{s}'")
}

fn lits(ps: &[PathBuf]) -> String {
    format!(
        "[{}]",
        ps.iter().map(|p| lit(p)).collect::<Vec<_>>().join(", ")
    )
}

/// A generated site server in its own temp folder, with a vault and a job config.
struct Site {
    _dir: tempfile::TempDir,
    root: PathBuf,
    repo: PathBuf,
    /// `<root>/ConfigMgr_Backup`, where smsbkup.log is.
    backup_parent: PathBuf,
    backup_folder: PathBuf,
    smsbkup: PathBuf,
    content_library: Vec<PathBuf>,
    package_sources: Vec<PathBuf>,
    users: PathBuf,
    extra: Vec<PathBuf>,
    /// Every user's Scupdb.sdf the generator wrote, sorted.
    scup_files: Vec<PathBuf>,
    log_file: PathBuf,
    config: PathBuf,
    /// Config knobs; `write_config` writes the current ones.
    label: Option<String>,
    keep_last: Option<u32>,
    prune: bool,
    change_tracking_days: Option<u32>,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        let repo = root.join("vault");
        init_vault(&repo);

        // The site backup: <root>/ConfigMgr_Backup/CENBackup.
        let backup_parent = root.join("ConfigMgr_Backup");
        let backup_folder = backup_parent.join("CENBackup");
        let ss = backup_folder.join("SiteServer");
        write(
            &ss.join("SMSServer")
                .join("inboxes")
                .join("hman.box")
                .join("site.ct0"),
            b"site control file\r\n",
        );
        write(
            &ss.join("SMSServer").join("data").join("hierarchy.cfg"),
            &random_bytes(11, 3_000),
        );
        write(
            &ss.join("SiteServer.reg"),
            b"Windows Registry Editor Version 5.00\r\n",
        );
        write(
            &backup_folder.join("SMSbkSiteRegSMS.dat"),
            &random_bytes(12, 1_500),
        );
        let db = backup_folder.join("SiteDBServer");
        write(&db.join("CM_CEN.mdf"), &random_bytes(13, 200_000));
        write(&db.join("CM_CEN_log.ldf"), &random_bytes(14, 20_000));
        let smsbkup = backup_parent.join("smsbkup.log");
        write(&smsbkup, good_log().as_bytes());

        // Content library on two drives, package sources, extra folders.
        let cl1 = root.join("SCCMContentLib");
        write(
            &cl1.join("DataLib").join("CEN00001.1").join("setup.exe.INI"),
            b"[File]\r\nHash=ABCD\r\n",
        );
        write(
            &cl1.join("FileLib").join("ABCD").join("ABCD1234"),
            &random_bytes(21, 60_000),
        );
        write(
            &cl1.join("PkgLib").join("CEN00001.INI"),
            b"[Packages]\r\nCEN00001_1=\r\n",
        );
        let cl2 = root.join("SCCMContentLibF");
        write(
            &cl2.join("FileLib").join("EF01").join("EF012345"),
            &random_bytes(22, 40_000),
        );
        fs::create_dir_all(cl2.join("DataLib").join("empty")).unwrap();
        let src = root.join("Sources");
        write(
            &src.join("Apps").join("7zip").join("7z.msi"),
            &random_bytes(31, 50_000),
        );
        write(
            &src.join("Apps").join("7zip").join("install.cmd"),
            b"msiexec /i 7z.msi /qn\r\n",
        );
        write(
            &src.join("OSD").join("Drivers").join("readme.txt"),
            b"drivers\n",
        );
        let usmt = root.join("USMT");
        write(
            &usmt.join("PC0042").join("USMT").join("USMT.MIG"),
            &random_bytes(41, 30_000),
        );

        // User profiles: two with a SCUP database (differently named publisher and version
        // folders), one without.
        let users = root.join("Users");
        let local = |u: &str| {
            users
                .join(u)
                .join("AppData")
                .join("Local")
                .join("Microsoft")
        };
        let alice = local("alice")
            .join("System Center Updates Publisher 2011")
            .join("5.00.1727.0000")
            .join("Scupdb.sdf");
        let bob = local("bob")
            .join("System Center Updates Publisher")
            .join("6.0.283.0")
            .join("Scupdb.sdf");
        write(&alice, &random_bytes(51, 25_000));
        write(&bob, &random_bytes(52, 15_000));
        write(
            &local("carol")
                .join("Windows")
                .join("Explorer")
                .join("thumbcache_32.db"),
            b"thumbs",
        );
        write(
            &users.join("carol").join("Documents").join("notes.txt"),
            b"n",
        );
        let mut scup_files = vec![alice, bob];
        scup_files.sort();

        let site = Site {
            _dir: dir,
            repo,
            backup_parent,
            backup_folder,
            smsbkup,
            content_library: vec![cl1, cl2],
            package_sources: vec![src],
            users,
            extra: vec![usmt],
            scup_files,
            log_file: root.join("sitevault.log"),
            config: root.join("sitevault.toml"),
            root,
            label: Some("sccm-CEN".into()),
            keep_last: Some(3),
            prune: true,
            change_tracking_days: None,
        };
        site.write_config();
        site
    }

    fn write_config(&self) {
        let mut t = String::new();
        t += "[vault]\n";
        t += &format!("repository = {}\n", lit(&self.repo));
        if let Some(l) = &self.label {
            t += &format!("label = \"{l}\"\n");
        }
        t += "\n[site]\ncode = \"CEN\"\n";
        t += &format!("backup_folder = {}\n", lit(&self.backup_folder));
        if let Some(d) = self.change_tracking_days {
            t += &format!("change_tracking_days = {d}\n");
        }
        t += "\n[sources]\n";
        t += &format!("content_library = {}\n", lits(&self.content_library));
        t += &format!("package_sources = {}\n", lits(&self.package_sources));
        t += &format!("scup_profiles = {}\n", lit(&self.users));
        t += &format!("extra = {}\n", lits(&self.extra));
        if let Some(k) = self.keep_last {
            t += &format!("\n[retention]\nkeep_last = {k}\nprune = {}\n", self.prune);
        }
        t += &format!("\n[log]\nfile = {}\n", lit(&self.log_file));
        fs::write(&self.config, t).unwrap();
    }

    /// `afterbackup --config .. --host sccm01 [args]`.
    fn afterbackup(&self, args: &[&str]) -> Out {
        run(sv()
            .arg("afterbackup")
            .arg("--config")
            .arg(&self.config)
            .args(["--host", HOST])
            .args(args))
    }

    /// A JSON run at `2026-11-<day>T03:00:00Z`.
    fn night(&self, day: u32) -> Out {
        let time = format!("2026-11-{day:02}T03:00:00Z");
        self.afterbackup(&["--json", "--time", &time])
    }

    /// A good JSON run at night `day`; returns the summary.
    fn good_night(&self, day: u32) -> Value {
        let o = self.night(day);
        assert_eq!(o.code, 0, "afterbackup night {day} failed:\n{}", show(&o));
        let v = json_of(&o);
        assert_eq!(v["outcome"], "ok", "night {day}:\n{}", show(&o));
        v
    }

    fn snapshots(&self) -> Vec<Value> {
        let o = run(sv().args(["snapshots", "--json", "--repo"]).arg(&self.repo));
        assert_eq!(o.code, 0, "snapshots failed:\n{}", show(&o));
        match json_of(&o) {
            Value::Array(a) => a,
            other => panic!("snapshots --json is not an array: {other}\n{}", show(&o)),
        }
    }

    fn snapshot_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .snapshots()
            .iter()
            .map(|s| s["id"].as_str().expect("id").to_string())
            .collect();
        ids.sort();
        ids
    }

    /// Every file of the vault except locks, with its contents.
    fn vault_files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        walkdir::WalkDir::new(&self.repo)
            .into_iter()
            .map(|e| e.expect("walk vault"))
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().strip_prefix(&self.repo).unwrap().to_path_buf())
            .filter(|rel| !rel.starts_with("locks"))
            .map(|rel| {
                let bytes = fs::read(self.repo.join(&rel)).unwrap();
                (rel, bytes)
            })
            .collect()
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// Every source path the generator made, as the snapshot should record them.
    fn all_source_paths(&self) -> Vec<PathBuf> {
        let mut v = vec![self.backup_folder.clone()];
        v.extend(self.content_library.iter().cloned());
        v.extend(self.package_sources.iter().cloned());
        v.extend(self.scup_files.iter().cloned());
        v.extend(self.extra.iter().cloned());
        v
    }
}

/// Assert `needles` occur in `text` in this order (each after the previous one's line).
fn assert_in_order(text: &str, needles: &[&str], ctx: &str) {
    let lines: Vec<&str> = text.lines().collect();
    let mut at = 0;
    for n in needles {
        match lines[at..].iter().position(|l| l.contains(n)) {
            Some(i) => at += i + 1,
            None => panic!(
                "log has no line containing {n:?} after line {at}\n--- log ---\n{text}\n{ctx}"
            ),
        }
    }
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| {
            x.as_str()
                .unwrap_or_else(|| panic!("not a string: {x}"))
                .to_string()
        })
        .collect()
}

#[test]
fn a_good_run_archives_every_source_and_restores_them_byte_identical() {
    let mut site = Site::new();
    site.label = Some("CEN-nightly".into());
    site.write_config();
    let o = site.afterbackup(&["--json"]);
    let ctx = show(&o);
    assert_eq!(o.code, 0, "afterbackup failed:\n{ctx}");
    let v = json_of(&o);
    assert_eq!(v["outcome"], "ok", "{ctx}");
    assert_eq!(v["exit_code"], 0, "{ctx}");
    assert_eq!(v["dry_run"], false, "{ctx}");
    assert_eq!(v["label"], "CEN-nightly", "{ctx}");
    assert_eq!(v["log_file"], site.log_file.display().to_string(), "{ctx}");
    assert!(v["duration_secs"].as_f64().is_some(), "{ctx}");
    assert_eq!(v["warnings"], serde_json::json!([]), "{ctx}");

    // The verified site backup.
    let sb = &v["site_backup"];
    assert_eq!(sb["log"], site.smsbkup.display().to_string(), "{ctx}");
    assert_eq!(sb["success_line_no"], 4, "the 5035 line is line 4:\n{ctx}");
    assert!(
        sb["success_line"]
            .as_str()
            .unwrap_or("")
            .contains("ID=5035"),
        "{ctx}"
    );
    assert_eq!(
        strs(&sb["mdf_files"]),
        vec![
            site.backup_folder
                .join("SiteDBServer")
                .join("CM_CEN.mdf")
                .display()
                .to_string()
        ],
        "{ctx}"
    );

    // Sources: kind, path, counts.
    let sources = v["sources"].as_array().unwrap_or_else(|| panic!("{ctx}"));
    let kinds: Vec<(String, String)> = sources
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap().to_string(),
                s["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut want_kinds = vec![(
        "site-backup".to_string(),
        site.backup_folder.display().to_string(),
    )];
    for p in &site.content_library {
        want_kinds.push(("content-library".into(), p.display().to_string()));
    }
    for p in &site.package_sources {
        want_kinds.push(("package-sources".into(), p.display().to_string()));
    }
    for p in &site.scup_files {
        want_kinds.push(("scup".into(), p.display().to_string()));
    }
    for p in &site.extra {
        want_kinds.push(("extra".into(), p.display().to_string()));
    }
    assert_eq!(kinds, want_kinds, "{ctx}");
    for s in sources {
        let p = PathBuf::from(s["path"].as_str().unwrap());
        let (files, bytes) = walkdir::WalkDir::new(&p)
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .fold((0u64, 0u64), |(f, b), e| {
                (f + 1, b + e.metadata().unwrap().len())
            });
        assert_eq!(s["files"], files, "files of {}:\n{ctx}", p.display());
        assert_eq!(s["bytes"], bytes, "bytes of {}:\n{ctx}", p.display());
    }

    // The snapshot.
    let snap = &v["snapshot"];
    let id = snap["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{ctx}"))
        .to_string();
    assert_eq!(id.len(), 64, "{ctx}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{ctx}");
    assert!(id.starts_with(snap["short_id"].as_str().unwrap()), "{ctx}");
    assert_eq!(snap["host"], HOST, "{ctx}");
    assert_eq!(snap["label"], "CEN-nightly", "{ctx}");
    assert_eq!(snap["complete"], true, "{ctx}");
    let mut tags = strs(&snap["tags"]);
    tags.sort();
    assert_eq!(
        tags,
        vec![
            "content-library",
            "extra",
            "package-sources",
            "scup",
            "site-backup"
        ],
        "{ctx}"
    );
    let paths = strs(&snap["paths"]);
    for p in site.all_source_paths() {
        assert!(
            paths.contains(&p.display().to_string()),
            "snapshot paths lack {}:\n{ctx}",
            p.display()
        );
    }
    assert_eq!(paths.len(), site.all_source_paths().len(), "{ctx}");
    let files: u64 = sources.iter().map(|s| s["files"].as_u64().unwrap()).sum();
    assert_eq!(snap["summary"]["files"], files, "{ctx}");
    assert_eq!(v["retention"]["kept"], 1, "{ctx}");
    assert_eq!(v["retention"]["removed"], serde_json::json!([]), "{ctx}");
    assert!(v["retention"]["prune"].is_object(), "{ctx}");

    // The vault agrees.
    let snaps = site.snapshots();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert_eq!(snaps[0]["id"], id.as_str());
    assert_eq!(snaps[0]["label"], "CEN-nightly");
    assert_eq!(snaps[0]["change_tracking"], "inside");
    assert_eq!(snaps[0]["change_tracking_days"], 5);

    // The run log, in order.
    let log = site.log_text();
    let src_line = |kind: &str, p: &Path| format!("source {kind}: {} (", p.display());
    let mut want = vec![
        "INFO   start: ".to_string(),
        "INFO   site backup verified: ".to_string(),
        src_line("site-backup", &site.backup_folder),
    ];
    want.extend(
        site.content_library
            .iter()
            .map(|p| src_line("content-library", p)),
    );
    want.extend(
        site.package_sources
            .iter()
            .map(|p| src_line("package-sources", p)),
    );
    want.extend(site.scup_files.iter().map(|p| src_line("scup", p)));
    want.extend(site.extra.iter().map(|p| src_line("extra", p)));
    want.push(format!("snapshot {id} saved (complete)"));
    want.push("retention: kept 1, removed 0".into());
    want.push("prune: freed ".into());
    want.push("INFO   end: ok (exit code 0)".into());
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    assert_in_order(&log, &want, &ctx);
    assert!(
        !log.contains("WARN") && !log.contains("ERROR"),
        "{log}\n{ctx}"
    );

    // Restore reproduces every source.
    let target = site.root.join("restore");
    let r = run(sv()
        .args(["restore", "latest", "--target"])
        .arg(&target)
        .arg("--repo")
        .arg(&site.repo));
    assert_eq!(r.code, 0, "restore failed:\n{}", show(&r));
    assert!(
        !r.stderr.contains("change-tracking"),
        "a lone snapshot is inside its window:\n{}",
        show(&r)
    );
    let mut dirs = vec![site.backup_folder.clone()];
    dirs.extend(site.content_library.iter().cloned());
    dirs.extend(site.package_sources.iter().cloned());
    dirs.extend(site.extra.iter().cloned());
    for d in &dirs {
        assert_trees_equal(d, &restored_path(&target, d));
    }
    for f in &site.scup_files {
        let back = fs::read(restored_path(&target, f))
            .unwrap_or_else(|e| panic!("restored {} missing: {e}", f.display()));
        assert!(back == fs::read(f).unwrap(), "content of {}", f.display());
    }
    // carol's profile holds no SCUP database and is not archived.
    assert!(!restored_path(&target, &site.users.join("carol")).exists());
    assert!(!restored_path(&target, &site.backup_parent.join("smsbkup.log")).exists());
}

/// Breaks the site backup with `spoil`, runs, and checks the refusal: exit 1, the reason on
/// stderr and in the JSON, the log's ERROR and end lines, and the vault unchanged (it already
/// holds one good recovery point, which must survive). Returns the site and the refusal text.
fn assert_refused(spoil: impl FnOnce(&Site), reason: &str) -> (Site, String) {
    let site = Site::new();
    let first = site.good_night(1);
    let before = site.vault_files();
    spoil(&site);
    let o = site.night(2);
    let ctx = show(&o);
    assert_eq!(o.code, 1, "a bad site backup must be refused:\n{ctx}");
    let head = format!(
        "error: the site backup in {} is not verified good: ",
        site.backup_folder.display()
    );
    assert!(o.stderr.contains(&head), "stderr lacks {head:?}:\n{ctx}");
    assert!(
        o.stderr
            .contains("; nothing was archived and no recovery point was removed"),
        "{ctx}"
    );
    assert!(o.stderr.contains(reason), "stderr lacks {reason:?}:\n{ctx}");
    let v = json_of(&o);
    assert_eq!(v["outcome"], "refused", "{ctx}");
    assert_eq!(v["exit_code"], 1, "{ctx}");
    let refused = v["refused"].as_str().unwrap_or_else(|| panic!("{ctx}"));
    assert!(refused.contains(reason), "refused lacks {reason:?}:\n{ctx}");
    assert!(v.get("snapshot").is_none(), "{ctx}");
    assert!(v.get("retention").is_none(), "{ctx}");

    assert!(
        site.vault_files() == before,
        "a refused run changed the vault:\n{ctx}"
    );
    let snaps = site.snapshots();
    assert_eq!(snaps.len(), 1, "{snaps:?}\n{ctx}");
    assert_eq!(snaps[0]["id"], first["snapshot"]["id"], "{ctx}");

    let log = site.log_text();
    let run2 = log
        .split_inclusive('\n')
        .skip_while(|l| !l.contains("end: ok"))
        .skip(1)
        .collect::<String>();
    assert_in_order(
        &run2,
        &[
            "INFO   start: ",
            "ERROR  site backup refused:",
            "ERROR  end: refused (exit code 1)",
        ],
        &ctx,
    );
    assert!(
        run2.lines()
            .any(|l| l.contains("site backup refused:") && l.contains(reason)),
        "the log's refusal lacks {reason:?}:\n{run2}\n{ctx}"
    );
    assert!(
        !run2.contains("source ") && !run2.contains("snapshot ") && !run2.contains("retention"),
        "a refused run went on:\n{run2}\n{ctx}"
    );
    let refused = refused.to_string();
    (site, refused)
}

#[test]
fn a_log_without_any_success_line_is_refused() {
    assert_refused(
        |s| write(&s.smsbkup, crlf(&[START, INFO]).as_bytes()),
        "has no success message (STATMSG: ID=5035 or 'Backup completed')",
    );
}

#[test]
fn an_error_after_the_last_success_is_refused() {
    let (_site, r) = assert_refused(
        |s| {
            write(
                &s.smsbkup,
                crlf(&[START, INFO, COMPLETED, OK_5035, ERROR]).as_bytes(),
            )
        },
        "reports an error (SEV=E) at line 5 after its last success (line 4)",
    );
    assert!(
        r.contains("SQL backup failed"),
        "the error line is quoted: {r}"
    );
}

#[test]
fn an_error_without_any_success_is_refused() {
    assert_refused(
        |s| write(&s.smsbkup, crlf(&[START, ERROR]).as_bytes()),
        "its last error (SEV=E) is at line 2",
    );
}

#[test]
fn a_missing_backup_log_is_refused_naming_the_folder() {
    let (site, r) = assert_refused(
        |s| fs::remove_file(&s.smsbkup).unwrap(),
        "no smsbkup.log in ",
    );
    let want = format!(
        "no smsbkup.log in {} or its parent",
        site.backup_folder.display()
    );
    assert!(r.contains(&want), "{want:?} not in {r}");
}

#[test]
fn a_site_db_server_with_only_the_ldf_is_refused() {
    assert_refused(
        |s| fs::remove_file(s.backup_folder.join("SiteDBServer").join("CM_CEN.mdf")).unwrap(),
        "SiteDBServer holds no .mdf database file",
    );
}

#[test]
fn a_missing_site_server_folder_is_refused() {
    assert_refused(
        |s| fs::remove_dir_all(s.backup_folder.join("SiteServer")).unwrap(),
        "SiteServer folder is missing",
    );
}

#[test]
fn a_retried_backup_error_then_success_is_accepted() {
    let site = Site::new();
    write(
        &site.smsbkup,
        crlf(&[START, INFO, ERROR, START, INFO, COMPLETED, OK_5035]).as_bytes(),
    );
    let v = site.good_night(1);
    assert_eq!(v["site_backup"]["success_line_no"], 7, "{v:#}");
    assert_eq!(v["snapshot"]["complete"], true, "{v:#}");
    // The task's own "Backup completed" line counts as success too.
    write(
        &site.smsbkup,
        crlf(&[START, ERROR, START, INFO, COMPLETED]).as_bytes(),
    );
    let v = site.good_night(2);
    assert_eq!(v["site_backup"]["success_line_no"], 5, "{v:#}");
    assert_eq!(site.snapshots().len(), 2);
}

#[test]
fn scup_databases_of_every_user_are_found_and_only_those() {
    let mut site = Site::new();
    site.label = None;
    site.write_config();
    let v = site.good_night(1);
    let ctx = format!("{v:#}");
    assert_eq!(v["label"], "sccm-CEN", "default label:\n{ctx}");
    assert_eq!(v["snapshot"]["label"], "sccm-CEN", "{ctx}");
    let want: Vec<String> = site
        .scup_files
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(want.len(), 2);
    let users = site.users.display().to_string();
    let under_users: Vec<String> = strs(&v["snapshot"]["paths"])
        .into_iter()
        .filter(|p| p.starts_with(&users))
        .collect();
    assert_eq!(under_users, want, "exactly the two SCUP databases:\n{ctx}");
    let scup_sources: Vec<String> = v["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "scup")
        .map(|s| s["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(scup_sources, want, "{ctx}");
    assert!(
        strs(&v["snapshot"]["tags"]).contains(&"scup".to_string()),
        "{ctx}"
    );

    // No user has a SCUP database any more: the run is still good, just without the tag.
    for f in &site.scup_files {
        fs::remove_file(f).unwrap();
    }
    let v = site.good_night(2);
    let ctx = format!("{v:#}");
    assert_eq!(v["snapshot"]["complete"], true, "{ctx}");
    assert!(
        !strs(&v["snapshot"]["tags"]).contains(&"scup".to_string()),
        "{ctx}"
    );
    assert!(
        !strs(&v["snapshot"]["paths"])
            .iter()
            .any(|p| p.starts_with(&users)),
        "{ctx}"
    );
    let log = site.log_text();
    assert!(
        log.contains(&format!("no SCUP database found below {users}")),
        "{log}"
    );
}

#[test]
fn retention_over_eight_nights_keeps_the_newest_three_and_prunes() {
    let site = Site::new();
    let nightly = site.package_sources[0].join("nightly.bin");
    let mut ids: Vec<String> = Vec::new();
    let mut last = Value::Null;
    for night in 1..=8u32 {
        // Something changes every night, so removed snapshots leave data to prune.
        write(&nightly, &random_bytes(100 + u64::from(night), 30_000));
        let v = site.good_night(night);
        let ctx = format!("night {night}:\n{v:#}");
        ids.push(v["snapshot"]["id"].as_str().unwrap().to_string());
        let removed = strs(&v["retention"]["removed"]);
        if night <= 3 {
            assert!(removed.is_empty(), "{ctx}");
            assert_eq!(v["retention"]["kept"], night, "{ctx}");
        } else {
            assert_eq!(
                removed,
                vec![ids[night as usize - 4].clone()],
                "night {night} removes night {}:\n{ctx}",
                night - 3
            );
            assert_eq!(v["retention"]["kept"], 3, "{ctx}");
        }
        assert!(v["retention"]["prune"].is_object(), "{ctx}");
        last = v;
    }
    assert_eq!(
        strs(&last["retention"]["removed"]).len(),
        1,
        "the last run removes one:\n{last:#}"
    );
    let snaps = site.snapshots();
    let mut times: Vec<String> = snaps
        .iter()
        .map(|s| s["time"].as_str().unwrap().to_string())
        .collect();
    times.sort();
    assert_eq!(
        times,
        vec![
            "2026-11-06T03:00:00Z",
            "2026-11-07T03:00:00Z",
            "2026-11-08T03:00:00Z"
        ],
        "{snaps:#?}"
    );
    let mut want = ids[5..].to_vec();
    want.sort();
    assert_eq!(site.snapshot_ids(), want);

    let log = site.log_text();
    assert_eq!(
        log.matches("end: ok (exit code 0)").count(),
        8,
        "one end line per run:\n{log}"
    );
    assert_eq!(
        log.matches("retention removed snapshot ").count(),
        5,
        "{log}"
    );
    assert!(log.contains("retention: kept 3, removed 1"), "{log}");

    let c = run(sv()
        .args(["check", "--read-data", "--repo"])
        .arg(&site.repo));
    assert_eq!(c.code, 0, "check --read-data failed:\n{}", show(&c));

    // A refused night removes nothing.
    let before = site.vault_files();
    write(&site.smsbkup, crlf(&[START, INFO]).as_bytes());
    let o = site.night(9);
    assert_eq!(o.code, 1, "{}", show(&o));
    assert_eq!(json_of(&o)["outcome"], "refused", "{}", show(&o));
    assert!(
        site.vault_files() == before,
        "a refused run changed the vault:\n{}",
        show(&o)
    );
    assert_eq!(site.snapshot_ids(), want);

    // The newest recovery point restores the last night's package sources.
    let target = site.root.join("restore");
    let r = run(sv()
        .args(["restore", "latest", "--target"])
        .arg(&target)
        .arg("--repo")
        .arg(&site.repo));
    assert_eq!(r.code, 0, "{}", show(&r));
    for d in &site.package_sources {
        assert_trees_equal(d, &restored_path(&target, d));
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// An incomplete run's common signs: exit 3, outcome, snapshot marked, WARN lines.
fn assert_incomplete(site: &Site, o: &Out, warn_names: &Path) -> Value {
    let ctx = show(o);
    assert_eq!(o.code, 3, "an incomplete recovery point exits 3:\n{ctx}");
    let v = json_of(o);
    assert_eq!(v["outcome"], "incomplete", "{ctx}");
    assert_eq!(v["exit_code"], 3, "{ctx}");
    assert_eq!(v["snapshot"]["complete"], false, "{ctx}");
    let name = warn_names.display().to_string();
    assert!(
        strs(&v["warnings"]).iter().any(|w| w.contains(&name)),
        "no warning names {name}:\n{ctx}"
    );
    assert!(
        o.stderr
            .contains("warning: the recovery point is incomplete"),
        "{ctx}"
    );
    let log = site.log_text();
    let last_run: Vec<&str> = log
        .lines()
        .rev()
        .take_while(|l| !l.contains("start: "))
        .collect();
    assert!(
        last_run
            .iter()
            .any(|l| l.contains("WARN ") && l.contains(&name)),
        "no WARN line names {name}:\n{log}\n{ctx}"
    );
    assert!(
        last_run[0].contains("WARN   end: incomplete (exit code 3)"),
        "last line {:?}:\n{log}\n{ctx}",
        last_run[0]
    );
    assert!(
        last_run.iter().any(|l| l.contains("saved (INCOMPLETE)")),
        "{log}\n{ctx}"
    );
    // It is in the vault, marked so.
    let id = v["snapshot"]["id"].as_str().unwrap();
    let snaps = site.snapshots();
    let s = snaps
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("snapshot {id} not listed:\n{snaps:#?}"));
    assert_eq!(s["complete"], false, "{s:#}");
    v
}

#[test]
fn a_missing_extra_path_makes_the_run_incomplete() {
    let mut site = Site::new();
    let missing = site.root.join("ReportServerBackup");
    site.extra.push(missing.clone());
    site.write_config();
    // A dry run predicts the exit code the real run will have.
    let o = site.afterbackup(&["--dry-run"]);
    assert_eq!(o.code, 3, "dry run with a missing source:\n{}", show(&o));
    let o = site.night(1);
    let v = assert_incomplete(&site, &o, &missing);
    let ctx = show(&o);
    let paths = strs(&v["snapshot"]["paths"]);
    assert!(!paths.contains(&missing.display().to_string()), "{ctx}");
    assert!(
        paths.contains(&site.extra[0].display().to_string()),
        "{ctx}"
    );
    assert!(
        o.stderr.contains(&format!(
            "warning: extra source {} does not exist",
            missing.display()
        )),
        "{ctx}"
    );
}

#[test]
fn an_unreadable_package_source_file_makes_the_run_incomplete() {
    if is_root() {
        eprintln!("skipped: root reads a chmod 000 file");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let site = Site::new();
    let locked = site.package_sources[0]
        .join("Apps")
        .join("7zip")
        .join("7z.msi");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    let o = site.night(1);
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o644)).unwrap();
    let v = assert_incomplete(&site, &o, &locked);
    assert_eq!(
        v["snapshot"]["summary"]["files_unreadable"],
        1,
        "{}",
        show(&o)
    );
}

#[test]
fn retention_never_drops_complete_recovery_points_for_incomplete_ones() {
    let mut site = Site::new();
    site.keep_last = Some(2);
    site.write_config();
    let n1 = site.good_night(1)["snapshot"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let n2 = site.good_night(2)["snapshot"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // From night 3 on the extra drive is gone: every run is incomplete.
    let missing = site.root.join("USMT-drive-gone");
    site.extra = vec![missing.clone()];
    site.write_config();
    let mut incomplete = Vec::new();
    let mut outs = Vec::new();
    for night in 3..=5 {
        let o = site.night(night);
        let v = assert_incomplete(&site, &o, &missing);
        incomplete.push(v["snapshot"]["id"].as_str().unwrap().to_string());
        outs.push(show(&o));
    }
    let ids = site.snapshot_ids();
    let all = outs.join("\n======\n");
    assert!(
        ids.contains(&n1) && ids.contains(&n2),
        "a complete recovery point was removed in favour of incomplete ones; left {ids:?}\n{all}"
    );
    // keep_last 2 counts complete ones only, and keeps at most 2 incomplete ones newer.
    let mut want = vec![n1, n2, incomplete[1].clone(), incomplete[2].clone()];
    want.sort();
    assert_eq!(ids, want, "{all}");
}

#[test]
fn a_dry_run_verifies_and_lists_but_changes_nothing() {
    let mut site = Site::new();
    // Retention that would remove the first recovery point if a second one were written.
    site.keep_last = Some(1);
    site.write_config();
    let first = site.good_night(1);
    write(
        &site.package_sources[0].join("new.msi"),
        &random_bytes(77, 40_000),
    );
    let before = site.vault_files();
    let log_before = site.log_text();

    let o = site.afterbackup(&["--dry-run", "--json", "--time", "2026-11-02T03:00:00Z"]);
    let ctx = show(&o);
    assert_eq!(o.code, 0, "{ctx}");
    let v = json_of(&o);
    assert_eq!(v["dry_run"], true, "{ctx}");
    assert_eq!(v["outcome"], "ok", "{ctx}");
    assert_eq!(v["exit_code"], 0, "{ctx}");
    assert!(v["site_backup"].is_object(), "it verifies:\n{ctx}");
    assert_eq!(
        v["sources"].as_array().map(Vec::len),
        Some(site.all_source_paths().len()),
        "it lists every source:\n{ctx}"
    );
    assert!(v.get("snapshot").is_none(), "{ctx}");
    assert!(v.get("retention").is_none(), "{ctx}");
    assert!(
        site.vault_files() == before,
        "a dry run changed the vault:\n{ctx}"
    );
    assert_eq!(
        site.snapshot_ids(),
        vec![first["snapshot"]["id"].as_str().unwrap().to_string()],
        "{ctx}"
    );
    let log = site.log_text();
    let added = &log[log_before.len()..];
    assert_in_order(
        added,
        &[
            "start: sitevault ",
            "site backup verified:",
            "dry run: would archive 7 sources",
            "end: ok (exit code 0)",
        ],
        &ctx,
    );
    assert!(
        added
            .lines()
            .next()
            .unwrap_or("")
            .contains("afterbackup (dry run)"),
        "{added}\n{ctx}"
    );
    assert!(
        !added.contains("saved (") && !added.contains("retention") && !added.contains("prune"),
        "{added}\n{ctx}"
    );

    // Without --json it says so in words.
    let o = site.afterbackup(&["--dry-run"]);
    let ctx = show(&o);
    assert_eq!(o.code, 0, "{ctx}");
    assert!(
        o.stdout
            .contains("dry run: site backup verified; would archive"),
        "{ctx}"
    );
    assert!(o.stdout.contains("nothing was written"), "{ctx}");
    assert!(
        site.vault_files() == before,
        "a dry run changed the vault:\n{ctx}"
    );

    // A dry run still refuses a bad site backup.
    write(
        &site.smsbkup,
        crlf(&[START, INFO, OK_5035, ERROR]).as_bytes(),
    );
    let o = site.afterbackup(&["--dry-run", "--json"]);
    let ctx = show(&o);
    assert_eq!(o.code, 1, "{ctx}");
    assert_eq!(json_of(&o)["outcome"], "refused", "{ctx}");
    assert!(site.vault_files() == before, "{ctx}");
}

#[test]
fn change_tracking_windows_are_shown_and_warned_on_restore() {
    let site = Site::new();
    let old = site.good_night(1)["snapshot"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let new = site.good_night(10)["snapshot"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let snaps = site.snapshots();
    let by_id = |id: &str| {
        snaps
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed:\n{snaps:#?}"))
            .clone()
    };
    let (o, n) = (by_id(&old), by_id(&new));
    assert_eq!(o["change_tracking"], "outside", "{snaps:#?}");
    assert_eq!(o["change_tracking_days"], 5, "{snaps:#?}");
    assert_eq!(n["change_tracking"], "inside", "{snaps:#?}");
    assert_eq!(n["change_tracking_days"], 5, "{snaps:#?}");

    let t = run(sv().args(["snapshots", "--repo"]).arg(&site.repo));
    assert_eq!(t.code, 0, "{}", show(&t));
    assert!(t.stdout.contains("OUTSIDE"), "{}", show(&t));

    // Restoring the old one warns, and still restores.
    let target = site.root.join("restore-old");
    let r = run(sv()
        .arg("restore")
        .arg(&old)
        .arg("--target")
        .arg(&target)
        .arg("--repo")
        .arg(&site.repo));
    let ctx = show(&r);
    assert_eq!(r.code, 0, "{ctx}");
    assert!(r.stderr.contains("change-tracking"), "no warning:\n{ctx}");
    assert!(
        r.stderr.contains(&old[..8]),
        "the warning names the snapshot:\n{ctx}"
    );
    let mdf = site.backup_folder.join("SiteDBServer").join("CM_CEN.mdf");
    assert!(
        fs::read(restored_path(&target, &mdf)).unwrap() == fs::read(&mdf).unwrap(),
        "{ctx}"
    );

    // The new one does not warn.
    let target = site.root.join("restore-new");
    let r = run(sv()
        .arg("restore")
        .arg(&new)
        .arg("--target")
        .arg(&target)
        .arg("--repo")
        .arg(&site.repo));
    assert_eq!(r.code, 0, "{}", show(&r));
    assert!(!r.stderr.contains("change-tracking"), "{}", show(&r));
}

#[test]
fn a_longer_configured_change_tracking_window_is_recorded() {
    let mut site = Site::new();
    site.change_tracking_days = Some(14);
    site.write_config();
    site.good_night(1);
    site.good_night(10);
    let snaps = site.snapshots();
    assert_eq!(snaps.len(), 2, "{snaps:#?}");
    for s in &snaps {
        assert_eq!(s["change_tracking_days"], 14, "{snaps:#?}");
        assert_eq!(s["change_tracking"], "inside", "{snaps:#?}");
    }
}

#[test]
fn config_mistakes_are_named() {
    let site = Site::new();
    let good = fs::read_to_string(&site.config).unwrap();
    let before = site.vault_files();

    // A typo in a key.
    let bad = site.root.join("typo.toml");
    fs::write(&bad, good.replace("backup_folder =", "backup_foldr =")).unwrap();
    let o = run(sv().arg("afterbackup").arg("--config").arg(&bad));
    let ctx = show(&o);
    assert_eq!(o.code, 1, "{ctx}");
    assert!(o.stderr.contains("backup_foldr"), "names the key:\n{ctx}");
    assert!(
        o.stderr.contains(&bad.display().to_string()),
        "names the file:\n{ctx}"
    );

    // A typo in a source key would drop a source silently; it is refused too.
    let bad2 = site.root.join("typo2.toml");
    fs::write(&bad2, good.replace("extra =", "extras =")).unwrap();
    let o = run(sv().arg("afterbackup").arg("--config").arg(&bad2));
    let ctx = show(&o);
    assert_eq!(o.code, 1, "{ctx}");
    assert!(o.stderr.contains("extras"), "names the key:\n{ctx}");
    assert!(o.stderr.contains(&bad2.display().to_string()), "{ctx}");

    // No config file at all.
    let missing = site.root.join("nope").join("sitevault.toml");
    let o = run(sv()
        .arg("afterbackup")
        .arg("--config")
        .arg(&missing)
        .arg("--json"));
    let ctx = show(&o);
    assert_eq!(o.code, 1, "{ctx}");
    assert!(
        o.stderr.contains(&missing.display().to_string()),
        "names the file:\n{ctx}"
    );

    // None of these touched the vault or wrote the log.
    assert!(site.vault_files() == before);
    assert!(site.snapshots().is_empty());
    assert!(!site.log_file.exists(), "{}", site.log_text());
}
