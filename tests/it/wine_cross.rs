//! A vault written on Linux restores under Windows (Wine), and the reverse.
//!
//! These tests drive the Windows build of sitevault under Wine, named by `SITEVAULT_WINE_EXE`
//! (with `WINEPREFIX`, `WINEDEBUG`, `WINEDLLOVERRIDES`), which `.ci/windows.sh` exports before
//! `cargo test` runs. Without it they say so and pass. Each test reaches its folders through its
//! own drive letter (M:, N:) mapped in the prefix's `dosdevices`, or through Z: (which maps to
//! `/`), so they can run in parallel with each other and with the other Wine tests.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::common::{self, random_bytes, restored_path, run, sv};
use crate::wine::{Wine, WineOut, tree_state};

const KIB: usize = 1024;

/// `sitevault.exe ARGS` under Wine in the folder `cwd` (see [`crate::wine::Wine::command`]).
fn run_in(w: &Wine, cwd: &Path, args: &[&str]) -> WineOut {
    let mut c = w.command(w.exe.to_str().expect("UTF-8 exe path"));
    c.args(args).current_dir(cwd);
    WineOut::of(&mut c)
}

/// Same, and it must exit 0; returns stdout.
fn ok_in(w: &Wine, cwd: &Path, args: &[&str]) -> String {
    let o = run_in(w, cwd, args);
    assert_eq!(
        o.code,
        0,
        "sitevault.exe {args:?} under Wine:\n{}",
        o.show()
    );
    o.stdout
}

/// `restore --original` of a snapshot from the other platform: exit 1, saying why and naming
/// the fix.
fn assert_refused_original((code, stderr): (i32, &str), style: &str) {
    assert_eq!(
        code, 1,
        "restore --original of a {style} snapshot: {stderr}"
    );
    assert!(
        stderr.contains(&format!("{style} paths"))
            && stderr.contains("cannot be restored to their original place")
            && stderr.contains("--target"),
        "the refusal should say why and name --target: {stderr:?}"
    );
}

fn wine(test: &str) -> Option<Wine> {
    Wine::get(test)
}

/// The Windows path of a Linux path through Z: (`/tmp/x` is `Z:\tmp\x`).
fn zpath(p: &Path) -> String {
    format!("Z:{}", p.to_str().expect("UTF-8 path").replace('/', "\\"))
}

fn write(p: &Path, data: &[u8]) {
    fs::create_dir_all(p.parent().expect("parent")).expect("mkdir -p");
    fs::write(p, data).expect("write file");
}

fn set_mtime(p: &Path, t: SystemTime) {
    fs::File::options()
        .write(true)
        .open(p)
        .expect("open for set_modified")
        .set_modified(t)
        .expect("set mtime");
}

/// 2021-02-03 04:05:06.123456789 UTC: its last two digits are below what Windows keeps.
fn odd_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::new(1_612_325_106, 123_456_789)
}

/// The awkward cases of a cross-platform restore: an empty file, an empty folder, a 2 MiB random
/// file (two or more chunks) three levels down, a non-ASCII name (NFC `café`, and one outside
/// the BMP, which is a surrogate pair in UTF-16), and a sub-second mtime.
fn build_tree(src: &Path, seed: u64) {
    write(&src.join("hello.txt"), b"hello from the other platform\r\n");
    set_mtime(&src.join("hello.txt"), odd_time());
    write(&src.join("empty"), b"");
    fs::create_dir_all(src.join("empty dir")).unwrap();
    write(
        &src.join("sub/deeper/random.bin"),
        &random_bytes(seed, 2 * 1024 * KIB + 4321),
    );
    write(&src.join("sub/café.txt"), "café au lait\n".as_bytes());
    write(&src.join("sub/\u{1F600} smile.txt"), b"surrogates\n");
    write(
        &src.join("SCUP/Scupdb.sdf"),
        &random_bytes(seed + 1, 64 * KIB),
    );
    write(&src.join("SCUP/Scupdb.sdf.txt"), b"not the database\n");
}

/// Every entry below `root`, relative to it, sorted.
fn entries(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            e.expect("walk")
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_path_buf()
        })
        .collect();
    v.sort();
    v
}

/// Assert `restored` holds exactly the entries of `src` (names byte for byte), with the same
/// types and contents, and every file's and folder's mtime equal to the source's truncated to
/// 100 ns (what a Windows FILETIME keeps, so what crosses the platform boundary).
fn assert_same_tree(src: &Path, restored: &Path) {
    assert_eq!(
        tree_state(restored),
        tree_state(src),
        "{} against {}",
        restored.display(),
        src.display()
    );
    // The sub-second mtime made the whole trip, to the 100 ns.
    let hello = fs::metadata(restored.join("hello.txt")).unwrap();
    assert_eq!(
        hello.modified().unwrap(),
        SystemTime::UNIX_EPOCH + Duration::new(1_612_325_106, 123_456_700)
    );
}

fn names(root: &Path) -> Vec<String> {
    entries(root)
        .iter()
        .map(|p| String::from_utf8_lossy(p.as_os_str().as_bytes()).into_owned())
        .collect()
}

fn assert_empty_dir(d: &Path, what: &str) {
    assert_eq!(names(d), Vec::<String>::new(), "{what} ({})", d.display());
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}):\n{s}"))
}

/// A vault made and filled on Linux, read, checked and restored by sitevault.exe under Wine
/// through a mapped drive M:, then compared on Linux.
#[test]
fn linux_vault_restores_under_wine() {
    let Some(w) = wine("linux_vault_restores_under_wine") else {
        return;
    };
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("site");
    let vault = dir.path().join("vault");
    build_tree(&src, 11);
    common::init_vault(&vault);
    let b = run(sv()
        .args(["backup", "--repo"])
        .arg(&vault)
        .args(["--host", "linuxhost"])
        .arg(&src));
    assert_eq!(b.code, 0, "backup on Linux:\n{}\n{}", b.stdout, b.stderr);

    let _m = w.drive('M', dir.path());
    let scratch = tempfile::tempdir().unwrap();
    let cwd = scratch.path();

    // ls under Wine prints the same original (Unix) paths as ls on Linux.
    let wls = ok_in(&w, cwd, &["ls", "--repo", r"M:\vault", "latest"]);
    let lls = run(sv().args(["ls", "--repo"]).arg(&vault).arg("latest"));
    assert_eq!(lls.code, 0, "ls on Linux: {}", lls.stderr);
    assert_eq!(wls, lls.stdout, "ls under Wine and on Linux differ");
    let src_s = src.to_str().unwrap();
    for want in [
        format!("{src_s}/sub/café.txt"),
        format!("{src_s}/sub/\u{1F600} smile.txt"),
        format!("{src_s}/sub/deeper/random.bin"),
        format!("{src_s}/empty"),
    ] {
        assert!(
            wls.lines().any(|l| l == want),
            "ls under Wine lacks {want}:\n{wls}"
        );
    }

    // check --read-data under Wine reads and verifies every blob.
    let c = json(&ok_in(
        &w,
        cwd,
        &["check", "--repo", r"M:\vault", "--read-data", "--json"],
    ));
    assert_eq!(c["clean"], true, "{c}");
    assert_eq!(c["snapshots"], 1, "{c}");
    assert!(c["bytes_read"].as_u64().unwrap() > 2 * 1024 * 1024, "{c}");

    // restore --target M:\out puts /tmp/.../site at out/tmp/.../site.
    let r = ok_in(
        &w,
        cwd,
        &[
            "restore",
            "latest",
            "--repo",
            r"M:\vault",
            "--target",
            r"M:\out",
        ],
    );
    assert!(
        r.contains("7 files written") && r.contains("host linuxhost"),
        "restore under Wine said:\n{r}"
    );
    let out = dir.path().join("out");
    assert_same_tree(&src, &restored_path(&out, &src));
    // Besides the tree, only the folders down to it (tmp, .tmpXXXX, site).
    let above = src.components().count() - 1;
    assert_eq!(
        names(&out).len(),
        above + entries(&src).len(),
        "restore wrote something besides the tree: {:?}",
        names(&out)
    );

    // restore --original of a Linux snapshot is refused on Windows, and writes nothing. Were it
    // not, `/tmp/.../site` would land on `\tmp\...\site` of the current drive, Z: (which is /),
    // that is, on the source itself: change the source so a write would show.
    fs::write(src.join("hello.txt"), b"changed since the backup\n").unwrap();
    fs::remove_file(src.join("sub/café.txt")).unwrap();
    let before = names(&src);
    let o = run_in(
        &w,
        cwd,
        &["restore", "latest", "--repo", r"M:\vault", "--original"],
    );
    assert_refused_original((o.code, &o.stderr), "Unix");
    assert_eq!(
        names(&src),
        before,
        "restore --original wrote into the source"
    );
    assert_eq!(
        fs::read(src.join("hello.txt")).unwrap(),
        b"changed since the backup\n"
    );
    assert_empty_dir(cwd, "restore --original wrote into the working folder");
    assert_empty_dir(&vault.join("locks"), "a lock was left in the vault");
    eprintln!(
        "linux_vault_restores_under_wine: {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

/// A vault made and filled by sitevault.exe under Wine on a mapped drive N:, listed, checked
/// and restored on Linux.
#[test]
fn wine_vault_restores_on_linux() {
    let Some(w) = wine("wine_vault_restores_on_linux") else {
        return;
    };
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("site");
    let vault = dir.path().join("vault");
    build_tree(&src, 22);
    let _n = w.drive('N', dir.path());
    let scratch = tempfile::tempdir().unwrap();
    let cwd = scratch.path();
    ok_in(
        &w,
        cwd,
        &[
            "init",
            "--repo",
            r"N:\vault",
            "--kdf-memory-kib",
            "1024",
            "--kdf-iterations",
            "1",
        ],
    );
    let b = ok_in(
        &w,
        cwd,
        &[
            "backup",
            "--repo",
            r"N:\vault",
            "--host",
            "winhost",
            r"N:\site",
        ],
    );
    assert!(b.contains("(complete)"), "backup under Wine said:\n{b}");

    // The snapshot records the host and the Windows path as given.
    let s = run(sv().args(["snapshots", "--json", "--repo"]).arg(&vault));
    assert_eq!(s.code, 0, "snapshots on Linux: {}", s.stderr);
    let s = json(&s.stdout);
    let snaps = s.as_array().expect("an array");
    assert_eq!(snaps.len(), 1, "{s}");
    assert_eq!(snaps[0]["host"], "winhost", "{s}");
    assert_eq!(snaps[0]["paths"], serde_json::json!([r"N:\site"]), "{s}");
    assert_eq!(snaps[0]["complete"], true, "{s}");
    assert_eq!(snaps[0]["summary"]["files"], 7, "{s}");

    // ls on Linux shows Windows paths, with the non-ASCII names intact.
    let l = run(sv().args(["ls", "--repo"]).arg(&vault).arg("latest"));
    assert_eq!(l.code, 0, "ls on Linux: {}", l.stderr);
    for want in [
        r"N:\site\sub\café.txt",
        "N:\\site\\sub\\\u{1F600} smile.txt",
        r"N:\site\sub\deeper\random.bin",
        r"N:\site\SCUP\Scupdb.sdf",
        r"N:\site\empty dir",
    ] {
        assert!(
            l.stdout.lines().any(|x| x == want),
            "ls on Linux lacks {want}:\n{}",
            l.stdout
        );
    }
    let wls = ok_in(&w, cwd, &["ls", "--repo", r"N:\vault", "latest"]);
    assert_eq!(wls, l.stdout, "ls under Wine and on Linux differ");
    assert!(
        !l.stdout.contains('/'),
        "a Windows snapshot lists with backslashes:\n{}",
        l.stdout
    );

    // check --read-data on Linux.
    let c = run(sv()
        .args(["check", "--read-data", "--json", "--repo"])
        .arg(&vault));
    assert_eq!(c.code, 0, "check on Linux:\n{}\n{}", c.stdout, c.stderr);
    let c = json(&c.stdout);
    assert_eq!(c["clean"], true, "{c}");

    // restore --target DIR on Linux puts N:\site at DIR/N/site.
    let out = dir.path().join("out");
    let r = run(sv()
        .args(["restore", "latest", "--repo"])
        .arg(&vault)
        .arg("--target")
        .arg(&out));
    assert_eq!(r.code, 0, "restore on Linux:\n{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("host winhost"), "{}", r.stdout);
    assert_eq!(names(&out)[..2], ["N", "N/site"], "{:?}", names(&out));
    assert_same_tree(&src, &out.join("N/site"));
    assert_eq!(
        names(&out).len(),
        2 + entries(&src).len(),
        "restore wrote something besides the tree: {:?}",
        names(&out)
    );

    // restore --original of a Windows snapshot is refused on Linux, and writes nothing (a
    // Windows path would be a relative name here: look in the working folder too).
    let o = run(sv()
        .args(["restore", "latest", "--original", "--repo"])
        .arg(&vault)
        .current_dir(cwd));
    assert_refused_original((o.code, &o.stderr), "Windows");
    assert_empty_dir(cwd, "restore --original wrote into the working folder");
    assert_empty_dir(&vault.join("locks"), "a lock was left in the vault");
    eprintln!(
        "wine_vault_restores_on_linux: {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

/// On a Windows snapshot, `restore --include` matches names and paths without regard to case
/// (as Windows does): `SCUPDB.SDF` selects the stored `Scupdb.sdf`, under Wine and on Linux.
/// This one goes through Z: (Wine's view of /), so it needs no drive letter of its own.
#[test]
fn windows_snapshot_include_ignores_case() {
    let Some(w) = wine("windows_snapshot_include_ignores_case") else {
        return;
    };
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("Site");
    build_tree(&src, 33);
    let vault = dir.path().join("vault");
    let z = zpath(dir.path());
    let wvault = format!(r"{z}\vault");
    let cwd = dir.path();
    // The vault's format does not depend on the platform (see the tests above): init on Linux,
    // and keep the Wine runs for what is tested here.
    common::init_vault(&vault);
    let site = format!(r"{z}\Site");
    ok_in(
        &w,
        cwd,
        &["backup", "--repo", &wvault, "--host", "winhost", &site],
    );
    let stored = format!(r"{site}\SCUP\Scupdb.sdf");
    let ls = run(sv().args(["ls", "--repo"]).arg(&vault).arg("latest"));
    assert!(
        ls.stdout.lines().any(|l| l == stored),
        "ls lacks {stored}:\n{}",
        ls.stdout
    );

    // Where the database lands under --target T: T/Z/<dir>/Site/SCUP/Scupdb.sdf.
    let db_rel = Path::new("Z")
        .join(src.strip_prefix("/").unwrap())
        .join("SCUP/Scupdb.sdf");
    let want = fs::read(src.join("SCUP/Scupdb.sdf")).unwrap();
    // Exactly one file was restored under `t`: the database, byte for byte.
    let only_the_db = |t: &Path| {
        let files: Vec<PathBuf> = entries(t)
            .into_iter()
            .filter(|p| fs::symlink_metadata(t.join(p)).unwrap().is_file())
            .collect();
        assert_eq!(
            files,
            std::slice::from_ref(&db_rel),
            "files restored under {}",
            t.display()
        );
        assert!(
            fs::read(t.join(&db_rel)).unwrap() == want,
            "content of the database"
        );
    };

    // A name pattern and a path pattern, each in another case than stored, under Wine.
    let upper_path = stored.to_uppercase();
    let lower_path = format!(r"{}\**\scupdb.SDF", site.to_lowercase());
    for (i, pattern) in ["SCUPDB.SDF", &upper_path, &lower_path]
        .into_iter()
        .enumerate()
    {
        let target = dir.path().join(format!("wine{i}"));
        let r = ok_in(
            &w,
            cwd,
            &[
                "restore",
                "latest",
                "--host",
                "winhost",
                "--repo",
                &wvault,
                "--target",
                &zpath(&target),
                "--include",
                pattern,
            ],
        );
        assert!(
            r.contains("1 files written"),
            "--include {pattern:?} under Wine:\n{r}"
        );
        only_the_db(&target);
    }

    // A folder include and an exclude, both in another case than stored, under Wine: the
    // exclude wins, so only the other file of SCUP comes back.
    let target = dir.path().join("wine-excluded");
    let r = ok_in(
        &w,
        cwd,
        &[
            "restore",
            "latest",
            "--host",
            "winhost",
            "--repo",
            &wvault,
            "--target",
            &zpath(&target),
            "--include",
            r"scup",
            "--exclude",
            "*.SDF",
        ],
    );
    assert!(
        r.contains("1 files written"),
        "include scup, exclude *.SDF:\n{r}"
    );
    assert!(
        !target.join(&db_rel).exists(),
        "--exclude '*.SDF' did not exclude Scupdb.sdf"
    );
    assert_eq!(
        fs::read(target.join(&db_rel).with_extension("sdf.txt")).unwrap(),
        b"not the database\n"
    );

    // The same snapshot matches without regard to case on Linux too (the snapshot's style
    // decides, not the platform).
    let target = dir.path().join("linux");
    let r = run(sv()
        .args(["restore", "latest", "--host", "winhost", "--repo"])
        .arg(&vault)
        .arg("--target")
        .arg(&target)
        .args(["--include", "SCUPDB.SDF"]));
    assert_eq!(r.code, 0, "restore on Linux:\n{}\n{}", r.stdout, r.stderr);
    only_the_db(&target);

    // And the other way round: a Linux snapshot of the same tree keeps Unix case rules under
    // Wine, so the same pattern selects nothing there (exit 1, nothing written).
    let b = run(sv()
        .args(["backup", "--host", "linuxhost", "--repo"])
        .arg(&vault)
        .arg(&src));
    assert_eq!(b.code, 0, "backup on Linux:\n{}\n{}", b.stdout, b.stderr);
    let target = dir.path().join("wine-unix");
    let o = run_in(
        &w,
        cwd,
        &[
            "restore",
            "latest",
            "--host",
            "linuxhost",
            "--repo",
            &wvault,
            "--target",
            &zpath(&target),
            "--include",
            "SCUPDB.SDF",
        ],
    );
    assert_eq!(
        o.code, 1,
        "--include SCUPDB.SDF on a Linux snapshot under Wine:\n{}\n{}",
        o.stdout, o.stderr
    );
    assert!(
        o.stderr.contains("nothing in the snapshot matches include"),
        "{:?}",
        o.stderr
    );
    assert!(
        !target.exists(),
        "a restore that matched nothing wrote something"
    );
    eprintln!(
        "windows_snapshot_include_ignores_case: {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}
