//! Bad input: each case gets the documented exit code, a single `error:` line on stderr that
//! names the thing at fault, no panic, and nothing half-written in the vault.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sitevault::pack::BlobKind;
use sitevault::paths::PathStyle;
use sitevault::snapshot::select;
use sitevault::{ErrorKind, Id, Snapshot, SnapshotFilter, Summary, Vault};

use crate::common::{Out, PASSWORD, init_vault, random_bytes, restored_path, run, sv};

/// Exit 1 and a stderr of exactly one line, an `error:` line holding every needle.
#[track_caller]
fn assert_error(out: &Out, needles: &[&str]) {
    assert_eq!(
        out.code, 1,
        "exit code; stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "want exactly one stderr line, got:\n{}",
        out.stderr
    );
    assert!(
        lines[0].starts_with("error: "),
        "stderr line does not start with `error: `: {:?}",
        lines[0]
    );
    for n in needles {
        assert!(
            lines[0].contains(n),
            "{n:?} is not named in the error {:?}",
            lines[0]
        );
    }
}

/// Exit 2 (clap usage error), no panic.
#[track_caller]
fn assert_usage(out: &Out) {
    assert_eq!(out.code, 2, "usage errors exit 2; stderr:\n{}", out.stderr);
    assert!(
        out.stderr.starts_with("error:"),
        "clap names the problem: {}",
        out.stderr
    );
}

fn s(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// A small folder: a text file and a larger random file in a subfolder.
fn fixture(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    fs::write(src.join("sub/b.bin"), random_bytes(7, 200_000)).unwrap();
    src
}

/// A fresh encrypted vault holding one snapshot of `fixture`; returns (vault, source folder).
fn vault_with_backup(dir: &Path) -> (PathBuf, PathBuf) {
    let repo = dir.join("vault");
    init_vault(&repo);
    let src = fixture(dir);
    let out = run(sv().args(["backup", "--repo"]).arg(&repo).arg(&src));
    assert_eq!(out.code, 0, "backup: {}", out.stderr);
    (repo, src)
}

fn snapshots_json(repo: &Path) -> Vec<Value> {
    let out = run(sv().args(["snapshots", "--json", "--repo"]).arg(repo));
    assert_eq!(out.code, 0, "snapshots --json: {}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).expect("snapshots --json prints JSON");
    v.as_array().expect("a JSON array").clone()
}

/// Every file below `dir` with its content, to show that nothing was written.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(dir).unwrap().to_path_buf(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Pack files of one kind (read from each pack's preamble).
fn packs(repo: &Path, kind: BlobKind) -> Vec<PathBuf> {
    walkdir::WalkDir::new(repo.join("data"))
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            sitevault::pack::parse_preamble(&fs::read(e.path()).unwrap()).ok() == Some(kind)
        })
        .map(|e| e.into_path())
        .collect()
}

fn the_pack(repo: &Path, kind: BlobKind) -> PathBuf {
    let p = packs(repo, kind);
    assert_eq!(
        p.len(),
        1,
        "one {kind:?} pack expected in a vault with one small backup: {p:?}"
    );
    p.into_iter().next().unwrap()
}

fn file_name(p: &Path) -> &str {
    p.file_name().unwrap().to_str().unwrap()
}

fn flip_middle_byte(p: &Path) {
    let mut b = fs::read(p).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x40;
    fs::write(p, b).unwrap();
}

fn truncate_to_half(p: &Path) {
    let len = fs::metadata(p).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(p)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
}

/// Temp files restore writes before renaming into place.
fn leftover_temp_files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".sitevault-"))
        .map(|e| e.into_path())
        .collect()
}

#[test]
fn missing_backup_path_is_named_and_no_snapshot_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault(&repo);
    let src = fixture(dir.path());
    let missing = dir.path().join("no-such-folder");
    let before = files(&repo);

    let out = run(sv().args(["backup", "--repo"]).arg(&repo).arg(&missing));
    assert_error(&out, &[s(&missing)]);

    // One good path and one missing one: still refused as a whole, before anything is stored.
    let out = run(sv()
        .args(["backup", "--repo"])
        .arg(&repo)
        .arg(&src)
        .arg(&missing));
    assert_error(&out, &[s(&missing)]);

    assert!(
        snapshots_json(&repo).is_empty(),
        "no snapshot may be written"
    );
    assert_eq!(files(&repo), before, "the vault must be untouched");
}

#[test]
fn unreadable_file_is_named_exit_3_and_snapshot_incomplete() {
    // /proc/self/mem is a regular file whose read fails with EIO, even for root.
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault(&repo);
    let src = fixture(dir.path());

    let out = run(sv()
        .args(["backup", "--json", "--repo"])
        .arg(&repo)
        .arg(&src)
        .arg("/proc/self/mem"));
    assert_eq!(
        out.code, 3,
        "exit 3 when files could not be read; stderr:\n{}",
        out.stderr
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one warning line expected:\n{}", out.stderr);
    assert!(lines[0].starts_with("warning: "), "{:?}", lines[0]);
    assert!(
        lines[0].contains("/proc/self/mem"),
        "the unreadable file is named: {:?}",
        lines[0]
    );
    let summary: Value = serde_json::from_str(&out.stdout).expect("backup --json prints JSON");
    assert_eq!(summary["complete"], Value::Bool(false));

    let snaps = snapshots_json(&repo);
    assert_eq!(snaps.len(), 1, "the snapshot is still written");
    assert_eq!(
        snaps[0]["complete"],
        Value::Bool(false),
        "and marked incomplete"
    );
    assert_eq!(snaps[0]["id"], summary["id"]);

    // Everything else is there and restores.
    let ls = run(sv().args(["ls", "--repo"]).arg(&repo).arg("latest"));
    assert_eq!(ls.code, 0, "{}", ls.stderr);
    assert!(
        ls.stdout.lines().any(|l| l == s(&src.join("sub/b.bin"))),
        "{}",
        ls.stdout
    );
    assert!(
        !ls.stdout.lines().any(|l| l == "/proc/self/mem"),
        "the unreadable file is not archived"
    );
    let target = dir.path().join("restored");
    let r = run(sv()
        .args(["restore", "--repo"])
        .arg(&repo)
        .arg("latest")
        .arg("--target")
        .arg(&target));
    assert_eq!(r.code, 0, "{}", r.stderr);
    for f in ["a.txt", "sub/b.bin"] {
        let orig = src.join(f);
        assert_eq!(
            fs::read(restored_path(&target, &orig)).unwrap(),
            fs::read(&orig).unwrap(),
            "{f}"
        );
    }
    assert!(!restored_path(&target, Path::new("/proc/self/mem")).exists());
}

#[test]
fn chmod_000_file_is_named_exit_3_when_not_root() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture(dir.path());
    let locked = src.join("locked.txt");
    fs::write(&locked, b"secret").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::read(&locked).is_ok() {
        // Root (or CAP_DAC_OVERRIDE) reads it anyway; the /proc/self/mem test covers this case.
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o600)).unwrap();
        return;
    }
    let repo = dir.path().join("vault");
    init_vault(&repo);
    let out = run(sv().args(["backup", "--repo"]).arg(&repo).arg(&src));
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(out.code, 3, "stderr:\n{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one warning line expected:\n{}", out.stderr);
    assert!(
        lines[0].starts_with("warning: ") && lines[0].contains(s(&locked)),
        "{:?}",
        lines[0]
    );
    let snaps = snapshots_json(&repo);
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0]["complete"], Value::Bool(false));
}

#[test]
fn file_changed_while_read_is_named_and_snapshot_stays_complete() {
    // /proc/self/status: stat says 0 bytes, reading yields more, so it "changed" while read.
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault(&repo);
    let src = fixture(dir.path());

    let out = run(sv()
        .args(["backup", "--repo"])
        .arg(&repo)
        .arg(&src)
        .arg("/proc/self/status"));
    assert_eq!(
        out.code, 0,
        "a changed file is archived as read: exit 0; stderr:\n{}",
        out.stderr
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one warning line expected:\n{}", out.stderr);
    assert!(lines[0].starts_with("warning: "), "{:?}", lines[0]);
    assert!(
        lines[0].contains("/proc/self/status"),
        "the changed file is named: {:?}",
        lines[0]
    );
    assert!(
        lines[0].contains("changed"),
        "the warning says it changed: {:?}",
        lines[0]
    );

    let snaps = snapshots_json(&repo);
    assert_eq!(snaps.len(), 1);
    assert_eq!(
        snaps[0]["complete"],
        Value::Bool(true),
        "a changed file does not make it incomplete"
    );

    let target = dir.path().join("restored");
    let r = run(sv()
        .args(["restore", "--repo"])
        .arg(&repo)
        .arg("latest")
        .arg("--target")
        .arg(&target));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got = fs::read_to_string(restored_path(&target, Path::new("/proc/self/status"))).unwrap();
    assert!(
        got.starts_with("Name:"),
        "archived as read, not as the 0 bytes stat reported: {got:?}"
    );
}

#[test]
fn wrong_password_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, src) = vault_with_backup(dir.path());
    let before = files(&repo);

    let out = run(sv()
        .env("SITEVAULT_PASSWORD", "not the password")
        .args(["snapshots", "--repo"])
        .arg(&repo));
    assert_error(&out, &["wrong password", s(&repo)]);
    let out = run(sv()
        .env("SITEVAULT_PASSWORD", "not the password")
        .args(["ls", "--repo"])
        .arg(&repo)
        .arg("latest"));
    assert_error(&out, &["wrong password"]);
    let out = run(sv()
        .env("SITEVAULT_PASSWORD", "not the password")
        .args(["backup", "--repo"])
        .arg(&repo)
        .arg(&src));
    assert_error(&out, &["wrong password"]);

    let pw = dir.path().join("pw.txt");
    fs::write(&pw, "also wrong\n").unwrap();
    let out = run(sv()
        .args(["snapshots", "--repo"])
        .arg(&repo)
        .arg("--password-file")
        .arg(&pw));
    assert_error(&out, &["wrong password"]);

    assert_eq!(
        files(&repo),
        before,
        "nothing written with a wrong password"
    );
}

#[test]
fn missing_password_names_sitevault_password() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, src) = vault_with_backup(dir.path());

    let out = run(sv()
        .env_remove("SITEVAULT_PASSWORD")
        .args(["snapshots", "--repo"])
        .arg(&repo));
    assert_error(&out, &["SITEVAULT_PASSWORD", s(&repo)]);
    // An empty variable is no password either.
    let out = run(sv()
        .env("SITEVAULT_PASSWORD", "")
        .args(["backup", "--repo"])
        .arg(&repo)
        .arg(&src));
    assert_error(&out, &["SITEVAULT_PASSWORD"]);

    // init without a password refuses and creates nothing.
    let fresh = dir.path().join("fresh");
    let out = run(sv()
        .env_remove("SITEVAULT_PASSWORD")
        .args(["init", "--repo"])
        .arg(&fresh));
    assert_error(&out, &["SITEVAULT_PASSWORD"]);
    assert!(!fresh.join("config").exists(), "no vault may be created");
}

#[test]
fn folder_that_is_not_a_vault_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture(dir.path());
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let missing = dir.path().join("missing");
    let file = src.join("a.txt");

    for repo in [&empty, &missing, &file] {
        let out = run(sv().args(["snapshots", "--repo"]).arg(repo));
        assert_error(&out, &["not a sitevault vault", s(repo)]);
    }
    let out = run(sv().args(["backup", "--repo"]).arg(&empty).arg(&src));
    assert_error(&out, &["not a sitevault vault", s(&empty)]);
    let out = run(sv().args(["ls", "--repo"]).arg(&empty).arg("latest"));
    assert_error(&out, &["not a sitevault vault", s(&empty)]);
    assert_eq!(
        fs::read_dir(&empty).unwrap().count(),
        0,
        "nothing written into a non-vault"
    );
    assert!(!missing.exists(), "a missing folder is not created");
}

#[test]
fn vault_from_a_newer_format_asks_for_an_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, src) = vault_with_backup(dir.path());
    let config = repo.join("config");
    let mut v: Value = serde_json::from_slice(&fs::read(&config).unwrap()).unwrap();
    assert_eq!(v["sitevault_format"], Value::from(1));
    v["sitevault_format"] = Value::from(2);
    fs::write(&config, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let before = files(&repo);

    let out = run(sv().args(["snapshots", "--repo"]).arg(&repo));
    assert_error(&out, &["upgrade", "2", s(&repo)]);
    let out = run(sv().args(["backup", "--repo"]).arg(&repo).arg(&src));
    assert_error(&out, &["upgrade"]);
    let out = run(sv()
        .args(["restore", "--repo"])
        .arg(&repo)
        .arg("latest")
        .arg("--target")
        .arg(dir.path().join("t")));
    assert_error(&out, &["upgrade"]);
    assert_eq!(files(&repo), before, "nothing written into a newer vault");
}

#[test]
fn unknown_snapshot_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault(&repo);

    // Empty vault: `latest` matches nothing.
    let out = run(sv().args(["ls", "--repo"]).arg(&repo).arg("latest"));
    assert_error(&out, &["latest"]);

    let src = fixture(dir.path());
    let b = run(sv()
        .args(["backup", "--label", "real", "--repo"])
        .arg(&repo)
        .arg(&src));
    assert_eq!(b.code, 0, "{}", b.stderr);
    let id = snapshots_json(&repo)[0]["id"].as_str().unwrap().to_string();

    // A 4-digit prefix and a full id that the one snapshot does not have.
    let first = u8::from_str_radix(&id[..1], 16).unwrap();
    let other = format!("{:x}", (first + 1) % 16);
    let prefix = other.repeat(4);
    let full = other.repeat(64);
    for reference in [&prefix, &full] {
        let out = run(sv().args(["ls", "--repo"]).arg(&repo).arg(reference));
        assert_error(&out, &[reference.as_str()]);
        let target = dir.path().join("t");
        let out = run(sv()
            .args(["restore", "--repo"])
            .arg(&repo)
            .arg(reference)
            .arg("--target")
            .arg(&target));
        assert_error(&out, &[reference.as_str()]);
        assert!(!target.exists(), "nothing restored");
    }

    // `latest` with a filter nothing matches.
    let out = run(sv()
        .args(["ls", "--label", "nope", "--repo"])
        .arg(&repo)
        .arg("latest"));
    assert_error(&out, &["latest"]);
}

#[test]
fn ambiguous_snapshot_prefix_lists_the_candidates() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _src) = vault_with_backup(dir.path());

    // Store copies of the snapshot (each sealing draws a new nonce, so a new id) until two ids
    // share their first 4 hex digits: about 300 tiny objects by the birthday bound.
    let store = sitevault::open_store(s(&repo), false, &Default::default()).unwrap();
    let vault = Vault::open(store, Some(PASSWORD.as_bytes())).unwrap();
    let (orig, snap) = vault.list_snapshots().unwrap().remove(0);
    let mut seen: HashMap<String, Id> = HashMap::from([(orig.to_hex()[..4].to_string(), orig)]);
    let mut copies = Vec::new();
    let (a, b) = loop {
        assert!(
            copies.len() < 20_000,
            "no 4-digit collision after 20000 snapshots"
        );
        let id = vault.save_snapshot(&snap).unwrap();
        copies.push(id);
        if let Some(prev) = seen.insert(id.to_hex()[..4].to_string(), id) {
            break (prev, id);
        }
    };
    for id in copies.iter().filter(|id| **id != a && **id != b) {
        vault
            .store()
            .delete(&format!("{}/{}", sitevault::vault::SNAPSHOTS, id.to_hex()))
            .unwrap();
    }
    let prefix = a.to_hex()[..4].to_string();

    let out = run(sv().args(["ls", "--repo"]).arg(&repo).arg(&prefix));
    assert_error(&out, &["ambiguous", &prefix, &a.short(), &b.short()]);
    let target = dir.path().join("t");
    let out = run(sv()
        .args(["restore", "--repo"])
        .arg(&repo)
        .arg(&prefix)
        .arg("--target")
        .arg(&target));
    assert_error(&out, &["ambiguous", &prefix, &a.short(), &b.short()]);
    assert!(!target.exists(), "nothing restored");

    // The shortest prefix that tells them apart works, and so does the full id.
    let n = (4..=64)
        .find(|&n| a.to_hex()[..n] != b.to_hex()[..n])
        .unwrap();
    for reference in [a.to_hex()[..n].to_string(), a.to_hex()] {
        let out = run(sv().args(["ls", "--repo"]).arg(&repo).arg(&reference));
        assert_eq!(out.code, 0, "ls {reference}: {}", out.stderr);
    }
}

fn hand_made(time: &str, label: &str, host: &str) -> Snapshot {
    Snapshot {
        format_version: 1,
        program_version: "test".into(),
        time: time.parse().unwrap(),
        host: host.into(),
        label: label.into(),
        tags: vec![],
        paths: vec!["/srv".into()],
        path_style: PathStyle::Unix,
        tree: Id::default(),
        complete: true,
        summary: Summary::default(),
        change_tracking_days: None,
        previous: None,
    }
}

#[test]
fn ambiguous_prefix_in_the_library_lists_the_candidates() {
    let mut a = [0x11u8; 32];
    a[..3].copy_from_slice(&[0xab, 0xcd, 0x01]);
    let mut b = a;
    b[2] = 0x02;
    let (a, b, c) = (Id(a), Id(b), Id([0x12; 32]));
    // Sorted by time, oldest first, as select() requires.
    let snaps = vec![
        (a, hand_made("2026-01-01T00:00:00Z", "x", "h1")),
        (b, hand_made("2026-01-02T00:00:00Z", "y", "h2")),
        (c, hand_made("2026-01-03T00:00:00Z", "x", "h2")),
    ];
    let all = SnapshotFilter::default();

    let e = select(&snaps, "abcd", &all).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AmbiguousSnapshot);
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "one line: {msg:?}");
    for needle in ["abcd", &a.short(), &b.short()] {
        assert!(msg.contains(needle), "{needle:?} missing from {msg:?}");
    }
    assert!(
        !msg.contains(&c.short()),
        "only candidates are listed: {msg:?}"
    );

    assert_eq!(select(&snaps, "abcd01", &all).unwrap().0, a);
    assert_eq!(select(&snaps, "abcd02", &all).unwrap().0, b);
    assert_eq!(select(&snaps, &c.to_hex(), &all).unwrap().0, c);
    assert_eq!(
        select(&snaps, "ffff", &all).unwrap_err().kind(),
        ErrorKind::SnapshotNotFound
    );
    assert_eq!(
        select(&snaps, "abc", &all).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        select(&snaps, "abcx", &all).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(select(&snaps, "latest", &all).unwrap().0, c);
    let f = |label: Option<&str>, host: Option<&str>| SnapshotFilter {
        label: label.map(Into::into),
        host: host.map(Into::into),
    };
    assert_eq!(select(&snaps, "latest", &f(Some("y"), None)).unwrap().0, b);
    assert_eq!(select(&snaps, "latest", &f(None, Some("h1"))).unwrap().0, a);
    assert_eq!(
        select(&snaps, "latest", &f(Some("y"), Some("h1")))
            .unwrap_err()
            .kind(),
        ErrorKind::SnapshotNotFound
    );
}

#[test]
fn corrupt_tree_pack_fails_restore_and_ls_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _src) = vault_with_backup(dir.path());
    let pack = the_pack(&repo, BlobKind::Tree);
    flip_middle_byte(&pack);

    let target = dir.path().join("restored");
    let out = run(sv()
        .args(["restore", "--repo"])
        .arg(&repo)
        .arg("latest")
        .arg("--target")
        .arg(&target));
    assert_error(&out, &["corrupt", file_name(&pack)]);
    assert!(!target.exists(), "nothing restored from an unreadable tree");
    let out = run(sv().args(["ls", "--repo"]).arg(&repo).arg("latest"));
    assert_error(&out, &["corrupt", file_name(&pack)]);
}

#[test]
fn corrupt_data_pack_fails_restore_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, src) = vault_with_backup(dir.path());
    // The middle of the only data pack lies inside the 200 kB random file's blob.
    let pack = the_pack(&repo, BlobKind::Data);
    flip_middle_byte(&pack);

    let target = dir.path().join("restored");
    let out = run(sv()
        .args(["restore", "--repo"])
        .arg(&repo)
        .arg("latest")
        .arg("--target")
        .arg(&target));
    // Nothing half-written: the damaged file is absent, no temp file is left behind.
    assert!(
        !restored_path(&target, &src.join("sub/b.bin")).exists(),
        "a damaged file must not be restored"
    );
    assert_eq!(
        leftover_temp_files(&target),
        Vec::<PathBuf>::new(),
        "temp files left behind"
    );
    assert_error(&out, &["corrupt", file_name(&pack)]);
}

#[test]
fn truncated_tree_pack_fails_restore_and_ls_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _src) = vault_with_backup(dir.path());
    let pack = the_pack(&repo, BlobKind::Tree);
    truncate_to_half(&pack);

    let target = dir.path().join("restored");
    let out = run(sv()
        .args(["restore", "--repo"])
        .arg(&repo)
        .arg("latest")
        .arg("--target")
        .arg(&target));
    assert!(!target.exists(), "nothing restored from an unreadable tree");
    assert_error(&out, &[file_name(&pack)]);
    assert!(
        out.stderr.contains("corrupt") || out.stderr.contains("truncated"),
        "a truncated pack is reported as damage, not as a storage failure: {}",
        out.stderr
    );
    let out = run(sv().args(["ls", "--repo"]).arg(&repo).arg("latest"));
    assert_error(&out, &[file_name(&pack)]);
}

#[test]
fn truncated_data_pack_fails_restore_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, src) = vault_with_backup(dir.path());
    let pack = the_pack(&repo, BlobKind::Data);
    truncate_to_half(&pack);

    let target = dir.path().join("restored");
    let out = run(sv()
        .args(["restore", "--repo"])
        .arg(&repo)
        .arg("latest")
        .arg("--target")
        .arg(&target));
    assert!(
        !restored_path(&target, &src.join("sub/b.bin")).exists(),
        "a damaged file must not be restored"
    );
    assert_eq!(
        leftover_temp_files(&target),
        Vec::<PathBuf>::new(),
        "temp files left behind"
    );
    assert_error(&out, &[file_name(&pack)]);
}

#[test]
fn corrupt_snapshot_file_fails_snapshots_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _src) = vault_with_backup(dir.path());
    let snap = fs::read_dir(repo.join("snapshots"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    flip_middle_byte(&snap);

    let out = run(sv().args(["snapshots", "--repo"]).arg(&repo));
    assert_error(&out, &["corrupt", file_name(&snap)]);
    let out = run(sv().args(["ls", "--repo"]).arg(&repo).arg("latest"));
    assert_error(&out, &["corrupt", file_name(&snap)]);
}

#[test]
fn init_over_an_existing_vault_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _src) = vault_with_backup(dir.path());
    let before = files(&repo);

    let out = run(sv().args(["init", "--repo"]).arg(&repo));
    assert_error(&out, &[s(&repo), "already"]);
    let out = run(sv()
        .args(["init", "--insecure-no-encryption", "--repo"])
        .arg(&repo));
    assert_error(&out, &[s(&repo), "already"]);
    assert_eq!(files(&repo), before, "the existing vault is untouched");
    assert_eq!(snapshots_json(&repo).len(), 1);
}

#[test]
fn bad_time_is_named_and_no_snapshot_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault(&repo);
    let src = fixture(dir.path());
    let before = files(&repo);
    let out = run(sv()
        .args(["backup", "--time", "yesterday-ish", "--repo"])
        .arg(&repo)
        .arg(&src));
    // A malformed flag value is a usage error (exit 2), like every other bad flag value.
    assert_usage(&out);
    assert!(
        out.stderr.contains("yesterday-ish") && out.stderr.contains("--time"),
        "{}",
        out.stderr
    );
    assert!(snapshots_json(&repo).is_empty());
    assert_eq!(files(&repo), before);
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault(&repo);
    let src = fixture(dir.path());
    let repo = s(&repo);

    // restore needs exactly one of --target and --original.
    assert_usage(&run(sv().args(["restore", "--repo", repo, "latest"])));
    assert_usage(&run(sv().args([
        "restore",
        "--repo",
        repo,
        "latest",
        "--original",
        "--target",
        s(dir.path()),
    ])));
    // Unknown flags, unknown commands, missing required arguments.
    assert_usage(&run(sv().args([
        "snapshots",
        "--repo",
        repo,
        "--no-such-flag",
    ])));
    assert_usage(&run(sv().args([
        "backup",
        "--repo",
        repo,
        "--no-such-flag",
        s(&src),
    ])));
    assert_usage(&run(sv().args(["frobnicate", "--repo", repo])));
    assert_usage(&run(sv().args(["backup", "--repo", repo])));
    assert_usage(&run(sv().args(["ls", "--repo", repo])));
    assert_usage(&run(sv().args(["snapshots"])));
    assert!(
        snapshots_json(Path::new(repo)).is_empty(),
        "usage errors write nothing"
    );
}

/// A snapshot that cannot be read (here: written by a newer format) does not hide the others:
/// `snapshots` lists the readable ones and names the bad one (exit 1); `ls` by id and
/// `restore latest` of a readable one work, with a warning about the skipped one.
#[test]
fn one_unreadable_snapshot_does_not_hide_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _src) = vault_with_backup(dir.path());
    let store = sitevault::open_store(s(&repo), false, &Default::default()).unwrap();
    let vault = Vault::open(store, Some(PASSWORD.as_bytes())).unwrap();
    let (good, mut snap) = vault.list_snapshots().unwrap().remove(0);
    snap.format_version = 2;
    snap.time = "2030-01-01T00:00:00Z".parse().unwrap();
    let newer = vault.save_snapshot(&snap).unwrap();

    let out = run(sv().args(["snapshots", "--json", "--repo"]).arg(&repo));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let listed: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], good.to_hex());
    assert!(
        out.stderr.contains(&newer.short()) && out.stderr.contains("upgrade"),
        "{}",
        out.stderr
    );

    let out = run(sv().args(["ls", "--repo"]).arg(&repo).arg(good.to_hex()));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = run(sv().args(["ls", "--repo"]).arg(&repo).arg("latest"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("warning") && out.stderr.contains(&newer.short()),
        "{}",
        out.stderr
    );
    let out = run(sv().args(["ls", "--repo"]).arg(&repo).arg(newer.to_hex()));
    assert_error(&out, &["upgrade"]);
}

/// `init` refuses a folder holding vault objects but no config (a vault that lost its config,
/// or an interrupted init), instead of mixing a new key with old objects.
#[test]
fn init_refuses_objects_without_config() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _src) = vault_with_backup(dir.path());
    fs::remove_file(repo.join("config")).unwrap();
    let out = run(sv().args(["init", "--repo"]).arg(&repo));
    assert_error(&out, &[s(&repo), "no config"]);
}

/// A reader that closes the pipe early (`ls | head -1`) ends the listing quietly: no panic,
/// no error message.
#[test]
fn closed_stdout_pipe_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("many");
    fs::create_dir_all(&src).unwrap();
    for i in 0..3000 {
        fs::write(
            src.join(format!("a-rather-long-file-name-to-fill-the-pipe-{i:05}")),
            b"x",
        )
        .unwrap();
    }
    let repo = dir.path().join("vault");
    init_vault(&repo);
    sv().args(["backup", "--repo"])
        .arg(&repo)
        .arg(&src)
        .assert()
        .success();
    for json in [false, true] {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("sitevault"));
        cmd.env("SITEVAULT_PASSWORD", PASSWORD)
            .args(["ls", "--repo"])
            .arg(&repo)
            .arg("latest");
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("error"),
            "json={json}: {stderr}"
        );
        assert_eq!(out.status.code(), Some(0), "json={json}: {stderr}");
    }
}
