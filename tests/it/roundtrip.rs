//! Round trips through the real binary: back up a real folder, restore it, compare everything.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use filetime::FileTime;

use crate::common::{self, assert_trees_equal, random_bytes, restored_path, sv};

const MIB: usize = 1024 * 1024;

fn set_mode(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn set_mtime(p: &Path, secs: i64, nanos: u32) {
    filetime::set_file_mtime(p, FileTime::from_unix_time(secs, nanos)).expect("set mtime");
}

fn write(p: &Path, data: &[u8]) {
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).expect("mkdir -p");
    }
    fs::write(p, data).expect("write file");
}

/// Every directory below `root` (deepest first) gets an explicit mtime, so restore must set
/// directory times after writing their content.
fn stamp_dirs(root: &Path, base_secs: i64) {
    let mut dirs: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_dir())
        .map(|e| e.into_path())
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for (i, d) in dirs.iter().enumerate() {
        set_mtime(
            d,
            base_secs + i as i64 * 3_600,
            (i as u32 * 7_919) % 1_000_000_000,
        );
    }
}

/// A tree with the awkward cases a restore must get exactly right.
fn build_rich_tree(src: &Path) {
    fs::create_dir_all(src).unwrap();
    // Empty files, at the top and nested.
    write(&src.join("empty"), b"");
    write(&src.join("nested/deeper/empty-too"), b"");
    // Many chunks: ~6 MiB of incompressible data (chunk average is 1 MiB).
    write(&src.join("big.dat"), &random_bytes(1, 6 * MIB + 12_345));
    // Long zero runs between random parts (zero chunks repeat; the file must still be whole).
    let mut zeros = random_bytes(2, MIB + 333);
    zeros.extend(std::iter::repeat_n(0u8, 3 * MIB));
    zeros.extend(random_bytes(3, 700_001));
    zeros.extend(std::iter::repeat_n(0u8, 77));
    write(&src.join("zero-runs.dat"), &zeros);
    // Odd sizes around block and chunk limits.
    for (i, len) in [1usize, 7, 511, 4_095, 4_097, 65_537, 262_143, 1_048_577]
        .into_iter()
        .enumerate()
    {
        write(
            &src.join(format!("odd/size-{len}")),
            &random_bytes(100 + i as u64, len),
        );
    }
    // Symlinks: relative, relative upwards, absolute, dangling, to a directory.
    symlink("big.dat", src.join("link-relative")).unwrap();
    symlink("../../big.dat", src.join("nested/deeper/link-up")).unwrap();
    symlink(src.join("odd/size-7"), src.join("link-absolute")).unwrap();
    symlink(
        "/nonexistent/sitevault/target",
        src.join("link-dangling-abs"),
    )
    .unwrap();
    symlink("no-such-file", src.join("link-dangling")).unwrap();
    symlink("nested", src.join("link-to-dir")).unwrap();
    // Empty directories, one nested.
    fs::create_dir_all(src.join("empty-dir")).unwrap();
    fs::create_dir_all(src.join("nested/a/b/c/empty-leaf")).unwrap();
    write(&src.join("nested/a/b/c/d/file.txt"), b"deep file\n");
    // Names that are not UTF-8.
    let cafe = OsStr::from_bytes(b"caf\xe9");
    write(&src.join(cafe), b"latin-1 name\n");
    let odd_dir = src.join(OsStr::from_bytes(b"dir-\xff\xfe"));
    write(
        &odd_dir.join(OsStr::from_bytes(b"inner-\x80.txt")),
        b"inside a non-UTF-8 directory\n",
    );
    symlink(
        OsStr::from_bytes(b"caf\xe9"),
        src.join(OsStr::from_bytes(b"link-\xe9")),
    )
    .unwrap();
    // A path far beyond 260 characters.
    let mut long = src.join("long");
    for i in 0..6 {
        long.push(format!("{i}-{}", "x".repeat(55)));
    }
    let long_file = long.join(format!("file-with-a-long-name-{}.txt", "y".repeat(40)));
    write(&long_file, b"far away\n");
    assert!(long_file.strip_prefix(src).unwrap().as_os_str().len() > 300);
    // Modes.
    write(&src.join("modes/private"), b"secret\n");
    set_mode(&src.join("modes/private"), 0o600);
    write(&src.join("modes/script.sh"), b"#!/bin/sh\necho hi\n");
    set_mode(&src.join("modes/script.sh"), 0o755);
    write(&src.join("modes/read-only"), b"ro\n");
    set_mode(&src.join("modes/read-only"), 0o444);
    write(&src.join("modes/locked-dir/inside"), b"in a 0555 dir\n");
    create_dir_with_mode(&src.join("modes/private-dir"), 0o700);
    // Explicit mtimes on every regular file: nanoseconds, an old date and one before 1970.
    let files: Vec<PathBuf> = walkdir::WalkDir::new(src)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    for (i, f) in files.iter().enumerate() {
        set_mtime(f, 1_000_000_000 + i as i64 * 86_400, 123_456_789 + i as u32);
    }
    set_mtime(&src.join("odd/size-1"), 315_532_800, 0); // 1980-01-01
    set_mtime(&src.join("odd/size-7"), -31_536_000, 500_000_000); // 1969-01-01
    stamp_dirs(src, 1_500_000_000);
    // Last, so creating the content above was still allowed.
    set_mode(&src.join("modes/locked-dir"), 0o555);
}

fn create_dir_with_mode(p: &Path, mode: u32) {
    fs::create_dir_all(p).unwrap();
    set_mode(p, mode);
}

/// The lines of `ls`, as raw bytes (names need not be UTF-8).
fn ls_lines(repo: &Path, snapshot: &str) -> Vec<Vec<u8>> {
    let out = sv()
        .args(["ls", "--repo"])
        .arg(repo)
        .arg(snapshot)
        .assert()
        .success();
    let stdout = &out.get_output().stdout;
    assert!(stdout.ends_with(b"\n"), "ls output ends with a newline");
    stdout[..stdout.len() - 1]
        .split(|&b| b == b'\n')
        .map(|l| l.to_vec())
        .collect()
}

/// What `ls` must list for a backup of `roots`: their ancestors and everything below them.
fn expected_ls(roots: &[&Path]) -> BTreeSet<Vec<u8>> {
    let mut want = BTreeSet::new();
    for root in roots {
        for anc in root.ancestors() {
            if anc != Path::new("/") {
                want.insert(anc.as_os_str().as_bytes().to_vec());
            }
        }
        for e in walkdir::WalkDir::new(root) {
            want.insert(e.expect("walk").path().as_os_str().as_bytes().to_vec());
        }
    }
    want
}

fn assert_ls_matches(repo: &Path, roots: &[&Path]) {
    let lines = ls_lines(repo, "latest");
    let got: BTreeSet<Vec<u8>> = lines.iter().cloned().collect();
    assert_eq!(got.len(), lines.len(), "ls lists some entry twice");
    let want = expected_ls(roots);
    let show = |s: &BTreeSet<Vec<u8>>| {
        s.iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect::<Vec<_>>()
    };
    let missing: BTreeSet<_> = want.difference(&got).cloned().collect();
    let extra: BTreeSet<_> = got.difference(&want).cloned().collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "ls differs: missing {:?}, extra {:?}",
        show(&missing),
        show(&extra)
    );
}

fn backup_json(repo: &Path, paths: &[&Path]) -> serde_json::Value {
    let out = sv()
        .args(["backup", "--repo"])
        .arg(repo)
        .arg("--json")
        .args(paths)
        .assert()
        .success();
    let v: serde_json::Value =
        serde_json::from_slice(&out.get_output().stdout).expect("backup --json prints JSON");
    assert_eq!(v["complete"], true, "snapshot complete: {v}");
    assert_eq!(
        v["warnings"].as_array().map(|w| w.len()),
        Some(0),
        "no warnings: {v}"
    );
    v
}

fn restore_target(repo: &Path, snapshot: &str, target: &Path) {
    let out = sv()
        .args(["restore", "--repo"])
        .arg(repo)
        .arg(snapshot)
        .arg("--target")
        .arg(target)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(
        !stderr.contains("error"),
        "restore reported errors: {stderr}"
    );
}

/// No restore temporaries anywhere below `dir`.
fn assert_no_temporaries(dir: &Path) {
    for e in walkdir::WalkDir::new(dir) {
        let e = e.expect("walk");
        let name = e.file_name().as_bytes();
        assert!(
            !name.starts_with(b".sitevault-"),
            "stray temporary file {}",
            e.path().display()
        );
    }
}

fn rich_round_trip(init_extra: &[&str]) {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    build_rich_tree(&src);
    let repo = work.path().join("vault");
    common::init_vault_with(&repo, init_extra);

    let v = backup_json(&repo, &[&src]);
    let s = &v["summary"];
    let n_files = walkdir::WalkDir::new(&src)
        .into_iter()
        .filter(|e| e.as_ref().unwrap().file_type().is_file())
        .count();
    let n_links = walkdir::WalkDir::new(&src)
        .into_iter()
        .filter(|e| e.as_ref().unwrap().file_type().is_symlink())
        .count();
    assert_eq!(s["files"].as_u64(), Some(n_files as u64), "file count: {v}");
    assert_eq!(
        s["symlinks"].as_u64(),
        Some(n_links as u64),
        "symlink count: {v}"
    );
    assert!(
        s["data_blobs_added"].as_u64().unwrap() >= 6,
        "the big file spans several chunks: {v}"
    );

    let target = work.path().join("restore");
    restore_target(&repo, "latest", &target);
    assert_trees_equal(&src, &restored_path(&target, &src));
    assert_no_temporaries(&target);
    assert_ls_matches(&repo, &[&src]);

    if !init_extra.contains(&"--insecure-no-encryption") {
        // Nothing of the (incompressible) file content may be readable in an encrypted vault.
        let big = fs::read(src.join("big.dat")).unwrap();
        let needle = &big[3 * MIB..3 * MIB + 64];
        for e in walkdir::WalkDir::new(&repo) {
            let e = e.unwrap();
            if e.file_type().is_file() {
                let hay = fs::read(e.path()).unwrap();
                assert!(
                    !hay.windows(needle.len()).any(|w| w == needle),
                    "plaintext found in {}",
                    e.path().display()
                );
            }
        }
    }
}

#[test]
fn rich_tree_round_trip_encrypted() {
    rich_round_trip(&[]);
}

#[test]
fn rich_tree_round_trip_unencrypted() {
    rich_round_trip(&["--insecure-no-encryption"]);
}

#[test]
fn ten_thousand_small_files_round_trip() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("many");
    for d in 0..100 {
        let dir = src.join(format!("d{d:03}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            let body = format!(
                "directory {d} file {f} {:016x}\n",
                (d * 100 + f) as u64 * 0x9E37_79B9
            );
            fs::write(dir.join(format!("f{f:03}.txt")), body.repeat(1 + f % 3)).unwrap();
        }
    }
    let repo = work.path().join("vault");
    common::init_vault(&repo);
    let v = backup_json(&repo, &[&src]);
    assert_eq!(v["summary"]["files"].as_u64(), Some(10_000), "{v}");
    // Every file is distinct, and small files are single chunks.
    assert_eq!(
        v["summary"]["data_blobs_added"].as_u64(),
        Some(10_000),
        "{v}"
    );

    let target = work.path().join("restore");
    restore_target(&repo, "latest", &target);
    assert_trees_equal(&src, &restored_path(&target, &src));
    assert_no_temporaries(&target);
}

#[test]
fn two_paths_in_one_snapshot_restore_both() {
    let work = tempfile::tempdir().unwrap();
    let a = work.path().join("src/a");
    let b = work.path().join("other/b");
    write(&a.join("one.txt"), b"first path\n");
    write(&a.join("sub/two.bin"), &random_bytes(7, 300_000));
    write(&b.join("three.txt"), b"second path\n");
    symlink("three.txt", b.join("link")).unwrap();
    // A sibling of a given path that was not given: it must stay out of the snapshot.
    write(&work.path().join("src/not-given.txt"), b"left out\n");
    stamp_dirs(&a, 1_600_000_000);
    stamp_dirs(&b, 1_610_000_000);

    let repo = work.path().join("vault");
    common::init_vault(&repo);
    let v = backup_json(&repo, &[&a, &b]);
    let paths: Vec<&str> = v["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&a.to_str().unwrap()) && paths.contains(&b.to_str().unwrap()),
        "{v}"
    );

    let target = work.path().join("restore");
    restore_target(&repo, "latest", &target);
    assert_trees_equal(&a, &restored_path(&target, &a));
    assert_trees_equal(&b, &restored_path(&target, &b));
    assert!(
        !restored_path(&target, &work.path().join("src/not-given.txt")).exists(),
        "an unrequested sibling was archived"
    );
    assert_ls_matches(&repo, &[&a, &b]);
}

/// Copy a tree with modes, symlinks and mtimes (directories' times set last, deepest first).
fn copy_tree(from: &Path, to: &Path) {
    let mut dirs = Vec::new();
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        let meta = e.path().symlink_metadata().unwrap();
        if e.file_type().is_dir() {
            fs::create_dir_all(&dest).unwrap();
            dirs.push((dest, meta));
        } else if e.file_type().is_symlink() {
            symlink(fs::read_link(e.path()).unwrap(), &dest).unwrap();
        } else {
            fs::copy(e.path(), &dest).unwrap();
            fs::set_permissions(&dest, meta.permissions()).unwrap();
            filetime::set_file_mtime(&dest, FileTime::from_last_modification_time(&meta)).unwrap();
        }
    }
    for (d, meta) in dirs.iter().rev() {
        fs::set_permissions(d, meta.permissions()).unwrap();
        filetime::set_file_mtime(d, FileTime::from_last_modification_time(meta)).unwrap();
    }
}

#[test]
fn restore_original_puts_everything_back() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("site");
    write(&src.join("config.ini"), b"[site]\ncode=CEN\n");
    write(&src.join("data/blob.bin"), &random_bytes(11, 1_500_000));
    write(&src.join("data/gone/soon.txt"), b"deleted later\n");
    write(&src.join("data/mode.txt"), b"mode changes\n");
    set_mode(&src.join("data/mode.txt"), 0o640);
    symlink("data/blob.bin", src.join("link")).unwrap();
    for (i, f) in [
        "config.ini",
        "data/blob.bin",
        "data/gone/soon.txt",
        "data/mode.txt",
    ]
    .iter()
    .enumerate()
    {
        set_mtime(&src.join(f), 1_400_000_000 + i as i64, 42);
    }
    stamp_dirs(&src, 1_450_000_000);
    let copy = work.path().join("copy");
    copy_tree(&src, &copy);
    assert_trees_equal(&src, &copy);

    let repo = work.path().join("vault");
    common::init_vault(&repo);
    backup_json(&repo, &[&src]);

    // Damage the original: delete, truncate, rewrite, chmod, retarget a link.
    fs::remove_dir_all(src.join("data/gone")).unwrap();
    fs::remove_file(src.join("config.ini")).unwrap();
    fs::write(src.join("data/blob.bin"), b"overwritten").unwrap();
    set_mode(&src.join("data/mode.txt"), 0o777);
    fs::remove_file(src.join("link")).unwrap();
    symlink("elsewhere", src.join("link")).unwrap();
    // The parent folder is shared, not archived: `--original` must leave its metadata alone.
    set_mode(work.path(), 0o751);
    set_mtime(work.path(), 1_234_567_890, 7);
    let parent_before = fs::metadata(work.path()).unwrap();

    let out = sv()
        .args(["restore", "--repo"])
        .arg(&repo)
        .args(["latest", "--original"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(
        !stderr.contains("error"),
        "restore --original reported errors: {stderr}"
    );
    assert_trees_equal(&copy, &src);
    assert_no_temporaries(&src);
    let parent_after = fs::metadata(work.path()).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        parent_after.mode() & 0o7777,
        0o751,
        "parent folder mode was changed"
    );
    assert_eq!(
        parent_after.mtime(),
        parent_before.mtime(),
        "parent folder mtime was changed"
    );
}

/// Runs of zeros are not written on restore, so they stay holes (where the filesystem allows):
/// a 24 MiB file that is mostly zeros takes far less disk than its length, and reads back
/// byte-identical.
#[test]
fn zero_runs_restore_as_holes() {
    use std::os::unix::fs::MetadataExt;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("db");
    fs::create_dir_all(&src).unwrap();
    let mut body = random_bytes(77, 1 << 20);
    body.extend(std::iter::repeat_n(0u8, 22 << 20));
    body.extend(random_bytes(78, 1 << 20));
    // Fixed 64 KiB chunks (`.mdf`) and content-defined chunks (`.bin`) both.
    fs::write(src.join("sparse.mdf"), &body).unwrap();
    fs::write(src.join("sparse.bin"), &body).unwrap();
    let repo = work.path().join("vault");
    common::init_vault(&repo);
    backup_json(&repo, &[&src]);
    let target = work.path().join("restore");
    sv().args(["restore", "--repo"])
        .arg(&repo)
        .args(["latest", "--target"])
        .arg(&target)
        .assert()
        .success();
    for name in ["sparse.mdf", "sparse.bin"] {
        let restored = restored_path(&target, &src.join(name));
        assert!(fs::read(&restored).unwrap() == body, "{name} content");
        let m = fs::metadata(&restored).unwrap();
        assert_eq!(m.len(), body.len() as u64);
        let allocated = m.blocks() * 512;
        assert!(
            allocated < 4 << 20,
            "{name}: {allocated} bytes allocated for a mostly-zero {} byte file",
            m.len()
        );
    }
}

/// A file whose bytes equal a tree encoding (the empty tree is `01 00 00 00 00`) must not be
/// confused with that tree: data and tree blobs have separate id spaces.
#[test]
fn file_equal_to_a_tree_encoding_round_trips() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir_all(src.join("empty")).unwrap();
    fs::write(src.join("looks-like-a-tree"), [1u8, 0, 0, 0, 0]).unwrap();
    let repo = work.path().join("vault");
    common::init_vault(&repo);
    backup_json(&repo, &[&src]);
    sv().args(["ls", "--repo"])
        .arg(&repo)
        .arg("latest")
        .assert()
        .success();
    let target = work.path().join("restore");
    sv().args(["restore", "--repo"])
        .arg(&repo)
        .args(["latest", "--target"])
        .arg(&target)
        .assert()
        .success();
    assert_trees_equal(&src, &restored_path(&target, &src));
}
