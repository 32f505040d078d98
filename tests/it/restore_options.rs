//! Point-in-time restore options end to end: `--at` across day boundaries, `--include` and
//! `--exclude`, the `--if-exists` policies (over a `--target` copy and over the original folder),
//! `--dry-run`, `--verify`, `--host` for an alternate server, and resuming a restore that was
//! interrupted (by hand-made damage and by a real SIGKILL).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{
    Out, PASSWORD, assert_trees_equal, init_vault, random_bytes, restored_path, run, sv,
};

/// The snapshot time the `--if-exists` tests back up at, and the stamp keep-both gives it in UTC.
const SNAP_TIME: &str = "2026-03-10T23:30:00Z";
const STAMP: &str = "2026-03-10 2330";

fn show(o: &Out) -> String {
    format!(
        "exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.code, o.stdout, o.stderr
    )
}

/// `sitevault` with the test password, in UTC so local-time forms and stamps are deterministic.
fn svz() -> assert_cmd::Command {
    let mut c = sv();
    c.env("TZ", "UTC");
    c
}

/// Run `sitevault <args>` (in UTC).
fn sv_run<S: AsRef<OsStr>>(args: &[S]) -> Out {
    run(svz().args(args))
}

/// Run it, require exit 0 and JSON on stdout.
fn sv_json<S: AsRef<OsStr>>(args: &[S], what: &str) -> (Value, Out) {
    let o = sv_run(args);
    assert_eq!(o.code, 0, "{what} failed:\n{}", show(&o));
    let v: Value = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e}):\n{}", show(&o)));
    (v, o)
}

/// One test's folders: a vault and a source folder, under one canonical temp dir.
struct Env {
    _dir: tempfile::TempDir,
    base: PathBuf,
    repo: PathBuf,
    src: PathBuf,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = fs::canonicalize(dir.path()).expect("canonical tempdir");
    let repo = base.join("vault");
    init_vault(&repo);
    let src = base.join("src");
    fs::create_dir_all(&src).expect("mkdir src");
    Env {
        _dir: dir,
        base,
        repo,
        src,
    }
}

impl Env {
    /// `backup --json [extra] <src>`; returns the snapshot id.
    fn backup(&self, extra: &[&str]) -> String {
        let mut args: Vec<&OsStr> = vec!["backup".as_ref(), "--json".as_ref(), "--repo".as_ref()];
        args.push(self.repo.as_os_str());
        args.extend(extra.iter().map(OsStr::new));
        args.push(self.src.as_os_str());
        let (v, o) = sv_json(&args, &format!("backup {extra:?}"));
        let id = v["id"]
            .as_str()
            .unwrap_or_else(|| panic!("backup --json has no id:\n{}", show(&o)))
            .to_string();
        assert_eq!(id.len(), 64, "snapshot id is 64 hex digits:\n{}", show(&o));
        id
    }

    /// `restore --repo R <args>`.
    fn restore(&self, args: &[&OsStr]) -> Out {
        let mut all: Vec<&OsStr> = vec!["restore".as_ref(), "--repo".as_ref()];
        all.push(self.repo.as_os_str());
        all.extend_from_slice(args);
        sv_run(&all)
    }

    /// `restore --repo R <args> --json`, which must succeed; returns the JSON summary.
    fn restore_json(&self, args: &[&OsStr]) -> (Value, Out) {
        let mut all: Vec<&OsStr> = args.to_vec();
        all.push("--json".as_ref());
        let o = self.restore(&all);
        assert_eq!(o.code, 0, "restore {args:?} failed:\n{}", show(&o));
        let v: Value = serde_json::from_str(&o.stdout)
            .unwrap_or_else(|e| panic!("restore --json is not JSON ({e}):\n{}", show(&o)));
        (v, o)
    }

    /// Where `--target t` puts `<src>/<rel>`.
    fn at(&self, target: &Path, rel: &str) -> PathBuf {
        let r = restored_path(target, &self.src);
        if rel.is_empty() { r } else { r.join(rel) }
    }
}

fn os<S: AsRef<OsStr> + ?Sized>(s: &S) -> &OsStr {
    s.as_ref()
}

fn write(p: &Path, data: &[u8]) {
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).expect("mkdir -p");
    }
    fs::write(p, data).expect("write file");
}

fn read(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn ino(p: &Path) -> u64 {
    fs::metadata(p)
        .unwrap_or_else(|e| panic!("stat {}: {e}", p.display()))
        .ino()
}

/// Every entry below `root`, relative, directories ending in `/`.
fn entries(root: &Path) -> BTreeSet<String> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            let e = e.expect("walk");
            let rel = e
                .path()
                .strip_prefix(root)
                .expect("prefix")
                .to_string_lossy()
                .into_owned();
            if e.file_type().is_dir() {
                format!("{rel}/")
            } else {
                rel
            }
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// One entry's kind, content, inode, mode and mtime (seconds, nanoseconds).
type Print = (String, Vec<u8>, u64, u32, i64, i64);

/// Everything below `root` (the root included): kind, content, inode, mode, mtime.
fn fingerprint(root: &Path) -> BTreeMap<PathBuf, Print> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| {
            let e = e.expect("walk");
            let m = fs::symlink_metadata(e.path()).expect("stat");
            let (kind, data) = if m.is_file() {
                ("file".to_string(), read(e.path()))
            } else if m.file_type().is_symlink() {
                (
                    "link".to_string(),
                    fs::read_link(e.path())
                        .expect("readlink")
                        .into_os_string()
                        .into_encoded_bytes(),
                )
            } else {
                ("dir".to_string(), Vec::new())
            };
            (
                e.path().to_path_buf(),
                (kind, data, m.ino(), m.mode(), m.mtime(), m.mtime_nsec()),
            )
        })
        .collect()
}

/// Every `.sitevault-*.tmp` file below `root`.
fn temporaries(root: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy();
            n.starts_with(".sitevault-") && n.ends_with(".tmp")
        })
        .map(|e| e.into_path())
        .collect()
}

/// `assert_trees_equal`, with the output of the restore that made `b` in the failure message.
fn trees_equal(a: &Path, b: &Path, o: &Out) {
    if let Err(panic) = std::panic::catch_unwind(|| assert_trees_equal(a, b)) {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("{msg}\nafter the restore:\n{}", show(o));
    }
}

fn num(v: &Value, field: &str, o: &Out) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("restore --json has no number {field:?}:\n{}", show(o)))
}

// ---------------------------------------------------------------------------------------------
// 1. --at
// ---------------------------------------------------------------------------------------------

#[test]
fn at_picks_the_newest_snapshot_at_or_before_time_across_day_boundaries() {
    let e = env();
    let file = e.src.join("site.db");
    let times = [
        "2026-03-09T23:59:00Z",
        "2026-03-10T00:01:00Z",
        "2026-03-10T23:30:00Z",
        "2026-03-11T08:00:00Z",
    ];
    let mut ids = Vec::new();
    let mut contents = Vec::new();
    for (i, t) in times.iter().enumerate() {
        // A different length each time, so no change detection can take it for unchanged.
        let data = format!("backup {i} taken at {t}\n{}", "x".repeat(10 * i + 1)).into_bytes();
        write(&file, &data);
        ids.push(e.backup(&["--time", t]));
        contents.push(data);
    }
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 4, "four distinct snapshots: {ids:?}");

    // (TIME, index of the snapshot it must pick)
    let cases: &[(&str, usize)] = &[
        ("2026-03-10", 2),
        ("2026-03-10 00:00", 0),
        ("2026-03-10T00:01:00Z", 1),
        ("2026-03-09", 0),
        ("2026-03-10 00:00:59", 0),
        ("2026-03-10 00:01:00", 1),
        ("2026-03-11 07:59", 2),
        ("2026-03-11", 3),
        ("2026-03-10T23:29:59Z", 1),
    ];
    for (n, (at, want)) in cases.iter().enumerate() {
        // Which snapshot `snapshots --at` names.
        let (v, o) = sv_json(
            &[
                os("snapshots"),
                os("--repo"),
                e.repo.as_os_str(),
                os("--at"),
                os(at),
                os("--json"),
            ],
            &format!("snapshots --at {at:?}"),
        );
        let arr = v
            .as_array()
            .unwrap_or_else(|| panic!("snapshots --json is not an array:\n{}", show(&o)));
        assert_eq!(
            arr.len(),
            1,
            "snapshots --at {at:?} shows exactly one snapshot:\n{}",
            show(&o)
        );
        assert_eq!(
            arr[0]["id"].as_str(),
            Some(ids[*want].as_str()),
            "snapshots --at {at:?} must pick the snapshot of {} (ids {ids:?}):\n{}",
            times[*want],
            show(&o)
        );

        // And what `restore --at` restores.
        let target = e.base.join(format!("restore-{n}"));
        let (v, o) = e.restore_json(&[os("--at"), os(at), os("--target"), target.as_os_str()]);
        assert_eq!(
            v["snapshot"].as_str(),
            Some(ids[*want].as_str()),
            "restore --at {at:?} must pick the snapshot of {}:\n{}",
            times[*want],
            show(&o)
        );
        let got = read(&restored_path(&target, &file));
        assert!(
            got == contents[*want],
            "restore --at {at:?}: restored content {:?}, want that of {} ({:?}):\n{}",
            String::from_utf8_lossy(&got),
            times[*want],
            String::from_utf8_lossy(&contents[*want]),
            show(&o)
        );
    }

    // Before every snapshot: a clear failure, nothing restored.
    let o = sv_run(&[
        os("snapshots"),
        os("--repo"),
        e.repo.as_os_str(),
        os("--at"),
        os("2026-03-08"),
        os("--json"),
    ]);
    assert_ne!(
        o.code,
        0,
        "snapshots --at before every snapshot must fail:\n{}",
        show(&o)
    );
    assert!(
        o.stderr.contains("2026-03-08"),
        "the error names the time asked for:\n{}",
        show(&o)
    );
    let target = e.base.join("restore-too-early");
    let o = e.restore(&[
        os("--at"),
        os("2026-03-08"),
        os("--target"),
        target.as_os_str(),
    ]);
    assert_ne!(
        o.code,
        0,
        "restore --at before every snapshot must fail:\n{}",
        show(&o)
    );
    assert!(
        o.stderr.contains("2026-03-08") && o.stderr.to_lowercase().contains("snapshot"),
        "the error says no snapshot is that old:\n{}",
        show(&o)
    );
    assert!(
        !restored_path(&target, &file).exists(),
        "a failed restore --at writes nothing:\n{}",
        show(&o)
    );
}

// ---------------------------------------------------------------------------------------------
// 2. --include / --exclude
// ---------------------------------------------------------------------------------------------

#[test]
fn include_and_exclude_select_exactly_the_matching_entries() {
    let e = env();
    let tree: &[(&str, &[u8])] = &[
        ("a.mdf", b"database a"),
        ("b.ldf", b"log of database a"),
        ("logs/x.log", b"x log line\n"),
        ("logs/y.txt", b"y text\n"),
        ("sub/deep/c.mdf", b"database c, deep down"),
        ("sub/keep.txt", b"keep me\n"),
    ];
    for (rel, data) in tree {
        write(&e.src.join(rel), data);
    }
    e.backup(&[]);

    let sub_pattern = format!("{}/sub/*", e.src.display());
    let deep_pattern = format!("{}/sub/deep", e.src.display());
    // (what, includes, excludes, expected files)
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<&'a str>, BTreeSet<String>);
    let cases: Vec<Case> = vec![
        (
            "only *.mdf",
            vec!["*.mdf"],
            vec![],
            set(&["a.mdf", "sub/", "sub/deep/", "sub/deep/c.mdf"]),
        ),
        (
            "the logs directory brings its subtree",
            vec!["logs"],
            vec![],
            set(&["logs/", "logs/x.log", "logs/y.txt"]),
        ),
        (
            "*.mdf without the deep directory",
            vec!["*.mdf"],
            vec!["deep"],
            set(&["a.mdf"]),
        ),
        (
            "an absolute path pattern",
            vec![sub_pattern.as_str()],
            vec![],
            set(&["sub/", "sub/deep/", "sub/deep/c.mdf", "sub/keep.txt"]),
        ),
        (
            "exclude only: everything but logs and *.ldf",
            vec![],
            vec!["logs", "*.ldf"],
            set(&[
                "a.mdf",
                "sub/",
                "sub/deep/",
                "sub/deep/c.mdf",
                "sub/keep.txt",
            ]),
        ),
        (
            "two includes, an exclude by name that wins over one of them",
            vec!["*.mdf", "*.txt"],
            vec!["keep.txt"],
            set(&[
                "a.mdf",
                "logs/",
                "logs/y.txt",
                "sub/",
                "sub/deep/",
                "sub/deep/c.mdf",
            ]),
        ),
        (
            "exclude by absolute path wins over an include of its parent",
            vec!["sub"],
            vec![deep_pattern.as_str()],
            set(&["sub/", "sub/keep.txt"]),
        ),
    ];
    for (n, (what, includes, excludes, want)) in cases.iter().enumerate() {
        let target = e.base.join(format!("restore-{n}"));
        let mut args: Vec<&OsStr> = vec![os("latest"), os("--target"), target.as_os_str()];
        for i in includes {
            args.push(os("--include"));
            args.push(os(*i));
        }
        for x in excludes {
            args.push(os("--exclude"));
            args.push(os(*x));
        }
        let (v, o) = e.restore_json(&args);
        let got = entries(&e.at(&target, ""));
        assert_eq!(
            &got,
            want,
            "{what} (include {includes:?}, exclude {excludes:?}): wrong entries restored:\n{}",
            show(&o)
        );
        // Nothing outside the source folder was restored either.
        let files_anywhere: BTreeSet<PathBuf> = walkdir::WalkDir::new(&target)
            .into_iter()
            .map(|x| x.expect("walk"))
            .filter(|x| !x.file_type().is_dir())
            .map(|x| x.into_path())
            .collect();
        let want_files: BTreeSet<PathBuf> = want
            .iter()
            .filter(|r| !r.ends_with('/'))
            .map(|r| e.at(&target, r))
            .collect();
        assert_eq!(
            files_anywhere,
            want_files,
            "{what}: files under the target:\n{}",
            show(&o)
        );
        for rel in want.iter().filter(|r| !r.ends_with('/')) {
            let orig = tree.iter().find(|(r, _)| r == rel).expect("known file").1;
            assert_eq!(
                read(&e.at(&target, rel)),
                orig,
                "{what}: content of {rel}:\n{}",
                show(&o)
            );
        }
        assert_eq!(
            num(&v, "files", &o),
            want_files.len() as u64,
            "{what}: files written:\n{}",
            show(&o)
        );
    }

    // A pattern that matches nothing is an error, not an empty restore.
    let target = e.base.join("restore-none");
    let o = e.restore(&[
        os("latest"),
        os("--target"),
        target.as_os_str(),
        os("--include"),
        os("*.nothing"),
    ]);
    assert_ne!(
        o.code,
        0,
        "an include matching nothing must fail:\n{}",
        show(&o)
    );
    assert!(
        o.stderr.contains("*.nothing"),
        "the error names the pattern:\n{}",
        show(&o)
    );
}

// ---------------------------------------------------------------------------------------------
// 3. --if-exists
// ---------------------------------------------------------------------------------------------

/// A source with `report.txt` (to be modified), `notes.md` (left identical), `data/blob.bin`
/// and `README` (no extension), backed up at SNAP_TIME. Returns the snapshot content.
fn policy_source(e: &Env) -> BTreeMap<&'static str, Vec<u8>> {
    let files: BTreeMap<&'static str, Vec<u8>> = [
        ("report.txt", b"quarterly report, as backed up\n".to_vec()),
        (
            "notes.md",
            b"# notes\nunchanged since the backup\n".to_vec(),
        ),
        ("data/blob.bin", random_bytes(7, 30_000)),
        ("README", b"no extension\n".to_vec()),
    ]
    .into_iter()
    .collect();
    for (rel, data) in &files {
        write(&e.src.join(rel), data);
    }
    e.backup(&["--time", SNAP_TIME]);
    files
}

/// Restore everything to `target`, then modify `report.txt` and `README` there.
fn restored_then_edited(e: &Env, target: &Path) -> (Vec<u8>, Vec<u8>) {
    let (_, o) = e.restore_json(&[os("latest"), os("--target"), target.as_os_str()]);
    trees_equal(&e.src, &e.at(target, ""), &o);
    let edited = b"report edited after the restore, longer than before\n".to_vec();
    write(&e.at(target, "report.txt"), &edited);
    let edited_readme = b"no extension, edited\n".to_vec();
    write(&e.at(target, "README"), &edited_readme);
    assert!(
        read(&e.at(target, "report.txt")) == edited,
        "setup: edit took:\n{}",
        show(&o)
    );
    (edited, edited_readme)
}

#[test]
fn if_exists_overwrite_replaces_differing_files_and_leaves_identical_ones() {
    let e = env();
    let files = policy_source(&e);
    let target = e.base.join("target");
    restored_then_edited(&e, &target);
    let report = e.at(&target, "report.txt");
    let notes = e.at(&target, "notes.md");
    let (notes_ino, report_ino) = (ino(&notes), ino(&report));

    // overwrite is the default; say it explicitly once and rely on the default once.
    for explicit in [true, false] {
        let mut args = vec![os("latest"), os("--target"), target.as_os_str()];
        if explicit {
            args.extend([os("--if-exists"), os("overwrite")]);
        }
        let (v, o) = e.restore_json(&args);
        assert!(
            read(&report) == files["report.txt"],
            "overwrite: the modified file gets the snapshot content:\n{}",
            show(&o)
        );
        assert!(
            read(&notes) == files["notes.md"],
            "overwrite: the identical file keeps its content:\n{}",
            show(&o)
        );
        assert_eq!(
            ino(&notes),
            notes_ino,
            "overwrite: the identical file is not rewritten (same inode):\n{}",
            show(&o)
        );
        if explicit {
            assert_ne!(
                ino(&report),
                report_ino,
                "overwrite replaces through a new file (temp + rename):\n{}",
                show(&o)
            );
            assert_eq!(
                num(&v, "files", &o),
                2,
                "report.txt and README rewritten:\n{}",
                show(&o)
            );
            assert_eq!(
                num(&v, "files_unchanged", &o),
                2,
                "notes.md, blob.bin:\n{}",
                show(&o)
            );
        } else {
            assert_eq!(num(&v, "files", &o), 0, "all correct now:\n{}", show(&o));
            assert_eq!(
                num(&v, "files_unchanged", &o),
                4,
                "all unchanged:\n{}",
                show(&o)
            );
        }
        assert_eq!(num(&v, "files_kept_both", &o), 0, "{}", show(&o));
        assert_eq!(num(&v, "files_skipped", &o), 0, "{}", show(&o));
        trees_equal(&e.src, &e.at(&target, ""), &o);
        assert!(
            temporaries(&target).is_empty(),
            "no temporaries left:\n{}",
            show(&o)
        );
    }
}

#[test]
fn if_exists_skip_leaves_every_existing_file_alone() {
    let e = env();
    let files = policy_source(&e);
    let target = e.base.join("target");
    let (edited, edited_readme) = restored_then_edited(&e, &target);
    // A missing file is still written.
    fs::remove_file(e.at(&target, "data/blob.bin")).unwrap();
    let notes = e.at(&target, "notes.md");
    let report = e.at(&target, "report.txt");
    let (notes_ino, report_ino) = (ino(&notes), ino(&report));

    let (v, o) = e.restore_json(&[
        os("latest"),
        os("--target"),
        target.as_os_str(),
        os("--if-exists"),
        os("skip"),
    ]);
    assert!(
        read(&report) == edited,
        "skip: the modified file keeps the modified content:\n{}",
        show(&o)
    );
    assert!(
        read(&e.at(&target, "README")) == edited_readme,
        "skip: README keeps its edit:\n{}",
        show(&o)
    );
    assert_eq!(
        ino(&report),
        report_ino,
        "skip: not rewritten:\n{}",
        show(&o)
    );
    assert!(read(&notes) == files["notes.md"], "{}", show(&o));
    assert_eq!(
        ino(&notes),
        notes_ino,
        "skip: identical file untouched:\n{}",
        show(&o)
    );
    assert!(
        read(&e.at(&target, "data/blob.bin")) == files["data/blob.bin"],
        "skip: a missing file is restored:\n{}",
        show(&o)
    );
    assert_eq!(
        num(&v, "files", &o),
        1,
        "only blob.bin written:\n{}",
        show(&o)
    );
    assert_eq!(
        num(&v, "files_skipped", &o),
        3,
        "three existing files skipped:\n{}",
        show(&o)
    );
    assert_eq!(
        entries(&e.at(&target, "")),
        set(&["README", "data/", "data/blob.bin", "notes.md", "report.txt"]),
        "skip makes no copies:\n{}",
        show(&o)
    );
}

#[test]
fn if_exists_keep_both_writes_a_stamped_sibling_beside_differing_files() {
    let e = env();
    let files = policy_source(&e);
    let target = e.base.join("target");
    let (edited, edited_readme) = restored_then_edited(&e, &target);
    let report = e.at(&target, "report.txt");
    let notes = e.at(&target, "notes.md");
    let (notes_ino, report_ino) = (ino(&notes), ino(&report));

    let (v, o) = e.restore_json(&[
        os("latest"),
        os("--target"),
        target.as_os_str(),
        os("--if-exists"),
        os("keep-both"),
    ]);
    let sibling = e.at(&target, &format!("report (restored {STAMP}).txt"));
    let readme_sibling = e.at(&target, &format!("README (restored {STAMP})"));
    assert!(
        read(&report) == edited,
        "keep-both: the existing file is unchanged:\n{}",
        show(&o)
    );
    assert_eq!(
        ino(&report),
        report_ino,
        "keep-both: not replaced:\n{}",
        show(&o)
    );
    assert!(
        sibling.is_file(),
        "keep-both: {} exists; target holds {:?}:\n{}",
        sibling.display(),
        entries(&e.at(&target, "")),
        show(&o)
    );
    assert!(
        read(&sibling) == files["report.txt"],
        "keep-both: the sibling holds the snapshot content:\n{}",
        show(&o)
    );
    assert!(
        read(&e.at(&target, "README")) == edited_readme,
        "README unchanged:\n{}",
        show(&o)
    );
    assert!(
        read(&readme_sibling) == files["README"],
        "a name without extension gets the stamp at its end:\n{}",
        show(&o)
    );
    assert!(read(&notes) == files["notes.md"], "{}", show(&o));
    assert_eq!(
        ino(&notes),
        notes_ino,
        "identical file untouched:\n{}",
        show(&o)
    );
    assert_eq!(
        entries(&e.at(&target, "")),
        set(&[
            "README",
            &format!("README (restored {STAMP})"),
            "data/",
            "data/blob.bin",
            "notes.md",
            &format!("report (restored {STAMP}).txt"),
            "report.txt",
        ]),
        "keep-both: siblings only beside the differing files (none for notes.md):\n{}",
        show(&o)
    );
    assert_eq!(num(&v, "files_kept_both", &o), 2, "{}", show(&o));
    assert_eq!(num(&v, "files_unchanged", &o), 2, "{}", show(&o));
    assert_eq!(
        num(&v, "files", &o),
        2,
        "the two siblings were written:\n{}",
        show(&o)
    );

    // Again: the sibling already holds this version, so nothing new appears.
    let before = fingerprint(&target);
    let (v, o) = e.restore_json(&[
        os("latest"),
        os("--target"),
        target.as_os_str(),
        os("--if-exists"),
        os("keep-both"),
    ]);
    assert_eq!(
        entries(&e.at(&target, "")).len(),
        7,
        "a second keep-both makes no second copy: {:?}\n{}",
        entries(&e.at(&target, "")),
        show(&o)
    );
    let after = fingerprint(&target);
    for (p, (kind, data, inode, ..)) in &before {
        let (k2, d2, i2, ..) = &after[p];
        assert!(
            kind == k2 && data == d2 && (kind == "dir" || inode == i2),
            "a second keep-both changed {}:\n{}",
            p.display(),
            show(&o)
        );
    }
    assert_eq!(num(&v, "files_kept_both", &o), 0, "{}", show(&o));
}

#[test]
fn if_exists_keep_both_over_the_original_folder() {
    let e = env();
    let files = policy_source(&e);
    // The live folder moves on after the backup.
    let edited = b"report edited in place after the backup\n".to_vec();
    write(&e.src.join("report.txt"), &edited);
    fs::remove_file(e.src.join("data/blob.bin")).unwrap();
    let notes_ino = ino(&e.src.join("notes.md"));
    let report_ino = ino(&e.src.join("report.txt"));

    let (v, o) = e.restore_json(&[
        os("latest"),
        os("--original"),
        os("--if-exists"),
        os("keep-both"),
    ]);
    assert!(
        read(&e.src.join("report.txt")) == edited,
        "--original keep-both: the live file is unchanged:\n{}",
        show(&o)
    );
    assert_eq!(ino(&e.src.join("report.txt")), report_ino, "{}", show(&o));
    let sibling = e.src.join(format!("report (restored {STAMP}).txt"));
    assert!(
        sibling.is_file() && read(&sibling) == files["report.txt"],
        "--original keep-both: {} holds the snapshot content; folder holds {:?}:\n{}",
        sibling.display(),
        entries(&e.src),
        show(&o)
    );
    assert!(
        read(&e.src.join("data/blob.bin")) == files["data/blob.bin"],
        "a deleted file comes back at its own name:\n{}",
        show(&o)
    );
    assert_eq!(
        ino(&e.src.join("notes.md")),
        notes_ino,
        "identical untouched:\n{}",
        show(&o)
    );
    assert_eq!(
        entries(&e.src),
        set(&[
            "README",
            "data/",
            "data/blob.bin",
            "notes.md",
            &format!("report (restored {STAMP}).txt"),
            "report.txt",
        ]),
        "--original keep-both: one sibling, nothing else:\n{}",
        show(&o)
    );
    assert_eq!(num(&v, "files_kept_both", &o), 1, "{}", show(&o));
    assert!(
        temporaries(&e.src).is_empty(),
        "no temporaries left:\n{}",
        show(&o)
    );
}

// ---------------------------------------------------------------------------------------------
// 4. --dry-run
// ---------------------------------------------------------------------------------------------

/// The dry run's actions, by path.
fn actions(v: &Value, o: &Out) -> BTreeMap<String, (String, Option<String>)> {
    v["actions"]
        .as_array()
        .unwrap_or_else(|| panic!("dry run --json has no actions array:\n{}", show(o)))
        .iter()
        .map(|a| {
            (
                a["path"]
                    .as_str()
                    .unwrap_or_else(|| panic!("action without path:\n{}", show(o)))
                    .to_string(),
                (
                    a["action"]
                        .as_str()
                        .unwrap_or_else(|| panic!("action without action:\n{}", show(o)))
                        .to_string(),
                    a.get("written_to")
                        .and_then(|w| w.as_str())
                        .map(String::from),
                ),
            )
        })
        .collect()
}

#[test]
fn dry_run_reports_each_policy_and_writes_nothing() {
    let e = env();
    policy_source(&e);

    // Into an empty place: every file would be written, and the target is not even created.
    let fresh = e.base.join("fresh");
    let (v, o) = e.restore_json(&[
        os("latest"),
        os("--target"),
        fresh.as_os_str(),
        os("--dry-run"),
    ]);
    let got = actions(&v, &o);
    let want: BTreeMap<String, (String, Option<String>)> =
        ["README", "data/blob.bin", "notes.md", "report.txt"]
            .iter()
            .map(|r| {
                (
                    e.at(&fresh, r).display().to_string(),
                    ("write".to_string(), None),
                )
            })
            .collect();
    assert_eq!(got, want, "dry run into an empty target:\n{}", show(&o));
    assert!(
        !fresh.exists(),
        "a dry run creates nothing, not even the target:\n{}",
        show(&o)
    );
    assert_eq!(v["dry_run"].as_bool(), Some(true), "{}", show(&o));

    // Over a restored copy: report.txt and README edited, notes.md identical, blob.bin deleted.
    let target = e.base.join("target");
    restored_then_edited(&e, &target);
    fs::remove_file(e.at(&target, "data/blob.bin")).unwrap();
    let p = |r: &str| e.at(&target, r).display().to_string();
    let before = fingerprint(&target);

    // (policy, [(path, action, written_to)])
    type Expected<'a> = (&'a str, &'a [(&'a str, &'a str, Option<String>)]);
    let cases: &[Expected] = &[
        (
            "overwrite",
            &[
                ("README", "overwrite", None),
                ("data/blob.bin", "write", None),
                ("notes.md", "unchanged", None),
                ("report.txt", "overwrite", None),
            ],
        ),
        (
            "skip",
            &[
                ("README", "skip", None),
                ("data/blob.bin", "write", None),
                ("notes.md", "skip", None),
                ("report.txt", "skip", None),
            ],
        ),
        (
            "keep-both",
            &[
                (
                    "README",
                    "keep-both",
                    Some(p(&format!("README (restored {STAMP})"))),
                ),
                ("data/blob.bin", "write", None),
                ("notes.md", "unchanged", None),
                (
                    "report.txt",
                    "keep-both",
                    Some(p(&format!("report (restored {STAMP}).txt"))),
                ),
            ],
        ),
    ];
    for (policy, expected) in cases {
        let (v, o) = e.restore_json(&[
            os("latest"),
            os("--target"),
            target.as_os_str(),
            os("--if-exists"),
            os(*policy),
            os("--dry-run"),
        ]);
        let want: BTreeMap<String, (String, Option<String>)> = expected
            .iter()
            .map(|(r, a, w)| (p(r), (a.to_string(), w.clone())))
            .collect();
        assert_eq!(
            actions(&v, &o),
            want,
            "dry run --if-exists {policy}: actions:\n{}",
            show(&o)
        );
        assert_eq!(
            num(&v, "bytes_written", &o),
            0,
            "dry run --if-exists {policy} writes no bytes:\n{}",
            show(&o)
        );
        let after = fingerprint(&target);
        assert!(
            before == after,
            "dry run --if-exists {policy} changed the target: before {:?}\nafter {:?}\n{}",
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>(),
            show(&o)
        );
    }
    // The text form also writes nothing and says so.
    let o = e.restore(&[
        os("latest"),
        os("--target"),
        target.as_os_str(),
        os("--if-exists"),
        os("keep-both"),
        os("--dry-run"),
    ]);
    assert_eq!(o.code, 0, "text dry run:\n{}", show(&o));
    assert!(
        o.stdout.contains("keep-both") && o.stdout.contains(&format!("restored {STAMP}")),
        "the text dry run lists the keep-both copy:\n{}",
        show(&o)
    );
    assert!(
        before == fingerprint(&target),
        "text dry run wrote:\n{}",
        show(&o)
    );
}

// ---------------------------------------------------------------------------------------------
// 5. --verify
// ---------------------------------------------------------------------------------------------

#[test]
fn verify_rereads_every_restored_file() {
    let e = env();
    let mut n = 0u64;
    for i in 0..12u64 {
        write(
            &e.src.join(format!("d{}/f{i}.bin", i % 3)),
            &random_bytes(500 + i, 1_000 + i as usize * 3_777),
        );
        n += 1;
    }
    write(&e.src.join("empty"), b"");
    n += 1;
    e.backup(&[]);

    let target = e.base.join("target");
    let (v, o) = e.restore_json(&[
        os("latest"),
        os("--target"),
        target.as_os_str(),
        os("--verify"),
    ]);
    assert_eq!(num(&v, "files", &o), n, "{}", show(&o));
    assert_eq!(
        num(&v, "files_verified", &o),
        n,
        "every restored file is verified:\n{}",
        show(&o)
    );
    assert_eq!(
        v["errors"].as_array().map(Vec::len),
        Some(0),
        "{}",
        show(&o)
    );
    trees_equal(&e.src, &e.at(&target, ""), &o);

    // Again over the same copy: nothing is written, everything still counts as verified.
    let (v, o) = e.restore_json(&[
        os("latest"),
        os("--target"),
        target.as_os_str(),
        os("--verify"),
    ]);
    assert_eq!(num(&v, "files", &o), 0, "{}", show(&o));
    assert_eq!(num(&v, "files_unchanged", &o), n, "{}", show(&o));
    assert_eq!(num(&v, "files_verified", &o), n, "{}", show(&o));

    // The text form says so too.
    let o = e.restore(&[
        os("latest"),
        os("--target"),
        target.as_os_str(),
        os("--verify"),
    ]);
    assert_eq!(o.code, 0, "{}", show(&o));
    assert!(
        o.stdout.contains(&format!("verified {n} files")),
        "text output names the verified files:\n{}",
        show(&o)
    );
    // Without --verify, files_verified is not claimed.
    let (v, o) = e.restore_json(&[os("latest"), os("--target"), target.as_os_str()]);
    assert!(
        v["files_verified"].is_null(),
        "files_verified only with --verify:\n{}",
        show(&o)
    );
}

// ---------------------------------------------------------------------------------------------
// 6. --host
// ---------------------------------------------------------------------------------------------

#[test]
fn host_restores_another_servers_snapshot_on_an_alternate_server() {
    let e = env();
    let file = e.src.join("site/config.ini");
    let a = b"[site]\ncode=AAA\nserver=site-a\n".to_vec();
    let b = b"[site]\ncode=BBB\nserver=site-b, newer and longer\n".to_vec();
    write(&file, &a);
    let id_a = e.backup(&["--host", "site-a", "--time", "2026-03-10T03:00:00Z"]);
    write(&file, &b);
    let id_b = e.backup(&["--host", "site-b", "--time", "2026-03-11T03:00:00Z"]);

    let target = e.base.join("alternate");
    let (v, o) = e.restore_json(&[
        os("latest"),
        os("--host"),
        os("site-a"),
        os("--target"),
        target.as_os_str(),
    ]);
    assert_eq!(v["snapshot"].as_str(), Some(id_a.as_str()), "{}", show(&o));
    assert_eq!(v["host"].as_str(), Some("site-a"), "{}", show(&o));
    assert!(
        read(&restored_path(&target, &file)) == a,
        "restore latest --host site-a restores site-a's content:\n{}",
        show(&o)
    );

    // --at with --host: site-a's snapshot even at a time after site-b's.
    let target2 = e.base.join("alternate-at");
    let (v, o) = e.restore_json(&[
        os("--at"),
        os("2026-03-12"),
        os("--host"),
        os("site-a"),
        os("--target"),
        target2.as_os_str(),
    ]);
    assert_eq!(v["snapshot"].as_str(), Some(id_a.as_str()), "{}", show(&o));
    assert!(read(&restored_path(&target2, &file)) == a, "{}", show(&o));

    // Without --host, latest is site-b's newer snapshot.
    let target3 = e.base.join("any-host");
    let (v, o) = e.restore_json(&[os("latest"), os("--target"), target3.as_os_str()]);
    assert_eq!(v["snapshot"].as_str(), Some(id_b.as_str()), "{}", show(&o));
    assert!(read(&restored_path(&target3, &file)) == b, "{}", show(&o));

    // A host with no snapshot fails.
    let o = e.restore(&[
        os("latest"),
        os("--host"),
        os("site-c"),
        os("--target"),
        e.base.join("none").as_os_str(),
    ]);
    assert_ne!(o.code, 0, "no snapshot of site-c:\n{}", show(&o));
}

// ---------------------------------------------------------------------------------------------
// 7. Resuming
// ---------------------------------------------------------------------------------------------

#[test]
fn rerunning_a_restore_repairs_damage_and_leaves_correct_files_alone() {
    let e = env();
    for i in 0..10u64 {
        write(
            &e.src.join(format!("dir{}/file{i}.dat", i % 2)),
            &random_bytes(900 + i, 2_000 + i as usize * 1_001),
        );
    }
    e.backup(&[]);
    let target = e.base.join("target");
    let (_, o) = e.restore_json(&[os("latest"), os("--target"), target.as_os_str()]);
    let root = e.at(&target, "");
    trees_equal(&e.src, &root, &o);

    // Damage: one deleted, one truncated, one corrupted (same size), a stale temporary.
    let deleted = e.at(&target, "dir0/file0.dat");
    let truncated = e.at(&target, "dir1/file1.dat");
    let corrupted = e.at(&target, "dir0/file2.dat");
    fs::remove_file(&deleted).unwrap();
    let f = fs::OpenOptions::new().write(true).open(&truncated).unwrap();
    f.set_len(100).unwrap();
    drop(f);
    let mut bytes = read(&corrupted);
    bytes[1_000] ^= 0xff;
    fs::write(&corrupted, &bytes).unwrap();
    let stale = e.at(&target, "dir1/.sitevault-0123456789abcdef.tmp");
    fs::write(&stale, b"half a file from a killed restore").unwrap();

    let damaged: BTreeSet<PathBuf> = [&deleted, &truncated, &corrupted]
        .into_iter()
        .cloned()
        .collect();
    let inodes: BTreeMap<PathBuf, u64> = walkdir::WalkDir::new(&root)
        .into_iter()
        .map(|x| x.expect("walk"))
        .filter(|x| x.file_type().is_file() && !damaged.contains(x.path()) && x.path() != stale)
        .map(|x| (x.path().to_path_buf(), x.metadata().unwrap().ino()))
        .collect();
    assert_eq!(
        inodes.len(),
        7,
        "seven files were left correct:\n{}",
        show(&o)
    );

    let (v, o) = e.restore_json(&[os("latest"), os("--target"), target.as_os_str()]);
    assert!(
        !stale.exists(),
        "the stale temporary is removed:\n{}",
        show(&o)
    );
    trees_equal(&e.src, &root, &o);
    for (p, i) in &inodes {
        assert_eq!(
            ino(p),
            *i,
            "{} was already correct and must not be rewritten:\n{}",
            p.display(),
            show(&o)
        );
    }
    assert_eq!(
        num(&v, "files", &o),
        3,
        "only the three damaged files written:\n{}",
        show(&o)
    );
    assert_eq!(num(&v, "files_unchanged", &o), 7, "{}", show(&o));
    assert!(temporaries(&target).is_empty(), "{}", show(&o));
}

#[test]
fn a_killed_restore_is_finished_by_running_it_again() {
    let e = env();
    for i in 0..200u64 {
        let len = 20_000 + (i as usize * 7_919) % 40_001;
        write(
            &e.src.join(format!("d{:02}/f{i:03}.bin", i % 10)),
            &random_bytes(10_000 + i, len),
        );
    }
    e.backup(&[]);
    let target = e.base.join("target");
    let child_err = e.base.join("killed-restore.stderr");

    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("sitevault"))
        .env_remove("SITEVAULT_REPOSITORY")
        .env_remove("SITEVAULT_PASSWORD_FILE")
        .env("SITEVAULT_PASSWORD", PASSWORD)
        .env("TZ", "UTC")
        .arg("restore")
        .arg("--repo")
        .arg(&e.repo)
        .arg("latest")
        .arg("--target")
        .arg(&target)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(&child_err).expect("stderr file"))
        .spawn()
        .expect("spawn sitevault restore");
    let deadline = Instant::now() + Duration::from_secs(120);
    let any_file = |root: &Path| {
        walkdir::WalkDir::new(root)
            .into_iter()
            .filter_map(|x| x.ok())
            .any(|x| x.file_type().is_file())
    };
    let mut finished = None;
    loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            finished = Some(status);
            break;
        }
        if target.exists() && any_file(&target) {
            break;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the restore wrote no file within two minutes; its stderr:\n{}",
                fs::read_to_string(&child_err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    if finished.is_none() {
        // It may end between the check and the kill; either way it is reaped.
        let _ = child.kill();
        let status = child.wait().expect("reap sitevault");
        eprintln!(
            "killed restore: {status:?}; it left {} temporaries",
            temporaries(&target).len()
        );
    } else {
        eprintln!(
            "restore finished before it could be killed: {finished:?}; stderr:\n{}",
            fs::read_to_string(&child_err).unwrap_or_default()
        );
    }

    let (v, o) = e.restore_json(&[os("latest"), os("--target"), target.as_os_str()]);
    assert_eq!(
        v["errors"].as_array().map(Vec::len),
        Some(0),
        "{}",
        show(&o)
    );
    trees_equal(&e.src, &e.at(&target, ""), &o);
    let left = temporaries(&target);
    assert!(
        left.is_empty(),
        "temporaries left after the re-run: {left:?}\n{}",
        show(&o)
    );
    assert_eq!(
        num(&v, "files", &o) + num(&v, "files_unchanged", &o),
        200,
        "every file was written or found correct:\n{}",
        show(&o)
    );
}

/// A big file's chunks fill packs of their own even while small files are archived beside it,
/// so restoring it alone reads its bytes back to back: two range reads for 20 MiB (restore reads
/// at most 16 MiB per request), not one per stretch between small files.
#[test]
fn a_big_file_restores_in_few_range_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (src, repo) = (dir.path().join("site"), dir.path().join("vault"));
    fs::create_dir_all(src.join("small")).unwrap();
    fs::write(src.join("CM_CEN.mdf"), random_bytes(5, 20 << 20)).unwrap();
    for i in 0..60 {
        fs::write(
            src.join(format!("small/{i:03}.bin")),
            random_bytes(100 + i, 300_000),
        )
        .unwrap();
    }
    init_vault(&repo);
    let o = sv_run(&[
        "backup",
        "--repo",
        repo.to_str().unwrap(),
        src.to_str().unwrap(),
    ]);
    assert_eq!(o.code, 0, "{}", show(&o));
    let target = dir.path().join("restore");
    let restore = |extra: &[&str]| {
        let mut args = vec![
            "restore",
            "latest",
            "--json",
            "--include",
            "CM_CEN.mdf",
            "--repo",
            repo.to_str().unwrap(),
            "--target",
            target.to_str().unwrap(),
        ];
        args.extend(extra);
        let o = sv_run(&args);
        assert_eq!(o.code, 0, "{}", show(&o));
        let v: Value = serde_json::from_str(&o.stdout).unwrap();
        (v["requests"]["range_gets"].as_u64().unwrap(), o.stdout)
    };
    // A dry run reads the same trees and no data.
    let (trees, _) = restore(&["--dry-run"]);
    let (all, out) = restore(&[]);
    assert_eq!(all - trees, 2, "{out}");
    let restored = restored_path(&target, &src).join("CM_CEN.mdf");
    assert!(fs::read(&restored).unwrap() == fs::read(src.join("CM_CEN.mdf")).unwrap());
}
