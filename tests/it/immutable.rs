//! Immutable vaults on S3 Object Lock, against moto: `.ci/run` creates the bucket named by
//! `SITEVAULT_TEST_S3_LOCK` with Object Lock (and so versioning) enabled, and `SITEVAULT_TEST_S3`
//! without. `init --immutable-days` refuses the unlocked bucket and a folder; in the locked one
//! every object written gets a retention of at least N days, and an attacker holding the same
//! keys cannot delete a single version of them.

use std::fs;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use sitevault::config::LockMode;
use sitevault::store::s3lock::{LockState, VersionDelete};

use crate::cloud::fresh;
use crate::common::{random_bytes, run, sv};

fn lock_bucket(test: &str) -> Option<String> {
    match std::env::var("SITEVAULT_TEST_S3_LOCK") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            eprintln!(
                "SKIPPED: {test}: SITEVAULT_TEST_S3_LOCK is not set (`bash .ci/run` starts moto with an Object Lock bucket)"
            );
            None
        }
    }
}

/// The store as the CLI opens it: with the `AWS_*` variables the emulator needs.
fn store(url: &str) -> Arc<dyn sitevault::Store> {
    let environment = std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let opts = sitevault::store::StoreOptions {
        environment,
        explicit: Vec::new(),
    };
    sitevault::open_store(url, false, &opts).expect("open the S3 store")
}

const INIT: [&str; 5] = ["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"];

#[test]
fn init_refuses_a_bucket_without_object_lock_and_a_folder() {
    let Ok(plain) = std::env::var("SITEVAULT_TEST_S3") else {
        eprintln!("SKIPPED: SITEVAULT_TEST_S3 is not set");
        return;
    };
    let repo = fresh(&plain, "immutable-refused");
    let o = run(sv()
        .args(INIT)
        .args(["--immutable-days", "30", "--repo", &repo]));
    assert_eq!(o.code, 1, "{}", o.stdout);
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", o.stderr);
    assert!(
        lines[0].contains("S3 Object Lock") && lines[0].contains("leave out --immutable-days"),
        "{}",
        lines[0]
    );
    // Nothing was written: a plain init at the same place still works.
    let o = run(sv().args(INIT).args(["--repo", &repo]));
    assert_eq!(o.code, 0, "{}", o.stderr);

    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("vault");
    let o = run(sv()
        .args(INIT)
        .args(["--immutable-days", "30", "--repo"])
        .arg(&folder));
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("needs an s3:// vault"), "{}", o.stderr);
    assert!(!folder.join("config").exists());

    if let Some(locked) = lock_bucket("init_refuses_bad_days") {
        for bad in ["0", "4000"] {
            let repo = fresh(&locked, "immutable-days");
            let o = run(sv()
                .args(INIT)
                .args(["--immutable-days", bad, "--repo", &repo]));
            assert_eq!(o.code, 1, "--immutable-days {bad}: {}", o.stdout);
            assert!(o.stderr.contains("give 1 to 3650 days"), "{}", o.stderr);
        }
        let o = run(sv().args(INIT).args([
            "--immutable-days",
            "3",
            "--immutable-mode",
            "forever",
            "--repo",
            &fresh(&locked, "immutable-mode"),
        ]));
        assert_eq!(o.code, 1);
        assert!(
            o.stderr.contains("give governance or compliance"),
            "{}",
            o.stderr
        );
    }
}

#[test]
fn every_object_is_retained_and_no_version_can_be_deleted() {
    let Some(locked) = lock_bucket("every_object_is_retained") else {
        return;
    };
    let repo = fresh(&locked, "immutable");
    let started = Timestamp::now();
    let o = run(sv().args(INIT).args([
        "--pack-size",
        "256KiB",
        "--immutable-days",
        "7",
        "--immutable-mode",
        "compliance",
        "--repo",
        &repo,
    ]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout
            .contains("retained for at least 7 days (compliance mode)"),
        "{}",
        o.stdout
    );

    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("site");
    fs::create_dir_all(&src).unwrap();
    for i in 0..6u64 {
        fs::write(src.join(format!("f{i}.bin")), random_bytes(i, 120_000)).unwrap();
    }
    let o = run(sv().args(["backup", "--repo", &repo]).arg(&src));
    assert_eq!(o.code, 0, "{}", o.stderr);

    let s = store(&repo);
    let lock = s
        .object_lock()
        .expect("an S3 store has Object Lock requests");
    assert_eq!(lock.state().unwrap(), LockState::Enabled);
    let mut objects: Vec<String> = ["keys/", "data/", "index/", "snapshots/"]
        .iter()
        .flat_map(|p| s.list(p).unwrap())
        .map(|o| o.name)
        .collect();
    objects.push("config".into());
    let packs = objects.iter().filter(|n| n.starts_with("data/")).count();
    assert!(packs >= 2, "several packs: {objects:?}");
    let floor = started
        .checked_add(SignedDuration::from_hours(7 * 24))
        .unwrap()
        .checked_sub(SignedDuration::from_secs(2))
        .unwrap();
    for name in &objects {
        let (mode, until) = lock
            .retention(name, None)
            .unwrap()
            .unwrap_or_else(|| panic!("{name} has no retention"));
        assert_eq!(mode, LockMode::Compliance, "{name}");
        assert!(until >= floor, "{name} is retained only until {until}");
    }
    // The vault's locks are not retained: they must go away.
    assert!(
        s.list("locks/").unwrap().is_empty(),
        "the backup removed its lock"
    );

    // An attacker with the same keys: every version stays.
    let versions = lock.versions("").unwrap();
    let mut refused = 0;
    for v in versions
        .iter()
        .filter(|v| !v.delete_marker && !v.name.starts_with("locks/"))
    {
        match lock.delete_version(&v.name, &v.version_id).unwrap() {
            VersionDelete::Locked => refused += 1,
            VersionDelete::Deleted => panic!("{} version {} was deleted", v.name, v.version_id),
        }
    }
    assert_eq!(
        refused,
        objects.len(),
        "every object's version refused deletion: {objects:?}\n{versions:#?}"
    );
    let o = run(sv().args(["check", "--read-data", "--repo", &repo]));
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
}

/// The attack the feature exists for: someone holding the vault's password and the same cloud
/// keys deletes every object and overwrites some. The vault as it stood before the attack still
/// lists, checks and restores byte-identical, and `copy --vault-as-of` moves it to a new vault.
#[test]
fn a_vault_deleted_and_overwritten_by_an_attacker_reads_as_it_stood() {
    let Some(locked) = lock_bucket("a_vault_deleted_and_overwritten") else {
        return;
    };
    let repo = fresh(&locked, "attacked");
    let o = run(sv().args(INIT).args([
        "--pack-size",
        "256KiB",
        "--immutable-days",
        "3",
        "--repo",
        &repo,
    ]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let dir = tempfile::tempdir().unwrap();
    let mut nights = Vec::new();
    for night in 1..=2u64 {
        let src = dir.path().join(format!("night{night}"));
        fs::create_dir_all(&src).unwrap();
        for i in 0..4u64 {
            let seed = if i % 2 == 0 { i } else { i * 10 + night };
            fs::write(src.join(format!("f{i}.bin")), random_bytes(seed, 90_000)).unwrap();
        }
        let o = run(sv().args(["backup", "--repo", &repo]).arg(&src));
        assert_eq!(o.code, 0, "night {night}: {}", o.stderr);
        nights.push(src);
    }
    // moto keeps modification times to the second.
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let before = Timestamp::now().to_string();
    std::thread::sleep(std::time::Duration::from_millis(1_100));

    // The attack: the same keys, through the same store.
    let s = store(&repo);
    let mut names: Vec<String> = ["keys/", "data/", "index/", "snapshots/"]
        .iter()
        .flat_map(|p| s.list(p).unwrap())
        .map(|o| o.name)
        .collect();
    names.push("config".into());
    for n in &names {
        s.delete(n).unwrap();
    }
    for n in names
        .iter()
        .filter(|n| n.starts_with("snapshots/") || n.starts_with("index/"))
    {
        assert!(
            s.put(n, bytes::Bytes::from_static(b"encrypted by ransomware"))
                .unwrap()
        );
    }
    let o = run(sv().args(["snapshots", "--repo", &repo]));
    assert_eq!(o.code, 1, "the live vault is gone: {}", o.stdout);

    // As it stood.
    let o = run(sv().args([
        "snapshots",
        "--json",
        "--vault-as-of",
        &before,
        "--repo",
        &repo,
    ]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let snaps: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 2, "{}", o.stdout);
    let o = run(sv().args([
        "check",
        "--read-data",
        "--vault-as-of",
        &before,
        "--repo",
        &repo,
    ]));
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    for (i, src) in nights.iter().enumerate() {
        let id = snaps[i]["id"].as_str().unwrap();
        let t = dir.path().join(format!("restore{i}"));
        let o = run(sv()
            .args([
                "restore",
                "--vault-as-of",
                &before,
                "--repo",
                &repo,
                id,
                "--target",
            ])
            .arg(&t));
        assert_eq!(o.code, 0, "{}", o.stderr);
        crate::common::assert_trees_equal(&crate::common::restored_path(&t, src), src);
    }
    // Writing to the past is refused up front.
    let o = run(sv()
        .args(["backup", "--vault-as-of", &before, "--repo", &repo])
        .arg(&nights[0]));
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("cannot read it --vault-as-of"),
        "{}",
        o.stderr
    );

    // The recovery path: copy what stood into a new vault.
    let new = dir.path().join("recovered");
    let o = run(sv().args(INIT).args(["--repo"]).arg(&new));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = run(sv()
        .args(["copy", "--vault-as-of", &before, "--from", &repo, "--repo"])
        .arg(&new));
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let t = dir.path().join("from-copy");
    let o = run(sv()
        .args(["restore", "latest", "--target"])
        .arg(&t)
        .arg("--repo")
        .arg(&new));
    assert_eq!(o.code, 0, "{}", o.stderr);
    crate::common::assert_trees_equal(&crate::common::restored_path(&t, &nights[1]), &nights[1]);
}

/// Retention follows what is kept: a backup extends every object the snapshots need before it
/// falls short of now + N days; after a forget, the forgotten night's own objects are no longer
/// extended, prune removes them (delete markers: the locked versions stay), reports what the
/// locks still hold, and once their retention has ended removes the old versions too. moto lets
/// a test shorten a retention, which stands in for the days passing.
#[test]
fn retention_follows_what_is_kept_and_prune_sweeps_expired_versions() {
    let Some(locked) = lock_bucket("retention_follows_what_is_kept") else {
        return;
    };
    let repo = fresh(&locked, "retention");
    let o = run(sv().args(INIT).args([
        "--pack-size",
        "256KiB",
        "--immutable-days",
        "2",
        "--repo",
        &repo,
    ]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("site");
    fs::create_dir_all(&src).unwrap();
    for night in 1..=2u64 {
        for i in 0..3u64 {
            fs::write(
                src.join(format!("f{i}.bin")),
                random_bytes(night * 10 + i, 100_000),
            )
            .unwrap();
        }
        let o = run(sv().args(["backup", "--repo", &repo]).arg(&src));
        assert_eq!(o.code, 0, "night {night}: {}", o.stderr);
        assert!(o.stdout.contains("retention: "), "{}", o.stdout);
        if night == 1 {
            // A day and more passes: every retention now ends within the 2 days promised.
            let s = store(&repo);
            let lock = s.object_lock().unwrap();
            let soon = Timestamp::now()
                .checked_add(SignedDuration::from_hours(20))
                .unwrap();
            for v in lock.versions("").unwrap() {
                if !v.delete_marker && v.is_latest && !v.name.starts_with("locks/") {
                    lock.extend(&v.name, Some(&v.version_id), LockMode::Governance, soon)
                        .unwrap();
                }
            }
        }
    }
    let s = store(&repo);
    let lock = s.object_lock().unwrap();
    let floor = Timestamp::now()
        .checked_add(SignedDuration::from_hours(48))
        .unwrap()
        .checked_sub(SignedDuration::from_secs(5))
        .unwrap();
    let o = run(sv().args(["stats", "--json", "--repo", &repo]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let stats: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let until: Timestamp = stats["immutable_until"].as_str().unwrap().parse().unwrap();
    assert!(
        until >= floor,
        "after night 2 every needed object holds until {until}"
    );

    // Forget night 1 and prune: its own objects go, but their locked versions stay.
    let night1_only: Vec<String> = {
        let v = lock.versions("").unwrap();
        let mut names: Vec<String> = v
            .iter()
            .filter(|v| v.is_latest && !v.delete_marker && !v.name.starts_with("locks/"))
            .map(|v| v.name.clone())
            .collect();
        names.sort();
        names
    };
    let o = run(sv().args([
        "forget",
        "--keep-last",
        "1",
        "--prune",
        "--max-unused",
        "0%",
        "--repo",
        &repo,
    ]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.contains("still held by Object Lock"),
        "{}",
        o.stdout
    );
    let after: Vec<_> = lock.versions("").unwrap();
    let gone: Vec<&String> = night1_only
        .iter()
        .filter(|n| {
            after
                .iter()
                .any(|v| &v.name == *n && v.is_latest && v.delete_marker)
        })
        .collect();
    assert!(!gone.is_empty(), "prune removed night 1's own objects");
    for n in &gone {
        // The version is still there, and locked.
        let old = after
            .iter()
            .find(|v| &v.name == *n && !v.delete_marker)
            .unwrap_or_else(|| panic!("{n}: its locked version is gone"));
        assert_eq!(
            lock.delete_version(n, &old.version_id).unwrap(),
            VersionDelete::Locked,
            "{n}"
        );
    }
    // Their retention ends (stand-in: shortened to a moment from now); the next prune sweeps.
    let moment = Timestamp::now()
        .checked_add(SignedDuration::from_secs(2))
        .unwrap();
    for v in after.iter().filter(|v| !v.is_latest && !v.delete_marker) {
        lock.extend(&v.name, Some(&v.version_id), LockMode::Governance, moment)
            .unwrap();
    }
    std::thread::sleep(std::time::Duration::from_secs(3));
    let o = run(sv().args(["prune", "--json", "--repo", &repo]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let p: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert!(
        p["versions"]["versions_removed"].as_u64().unwrap() >= gone.len() as u64,
        "{}",
        o.stdout
    );
    let left = lock.versions("").unwrap();
    for n in &gone {
        assert!(
            !left.iter().any(|v| &v.name == *n),
            "{n}: every version and its delete marker are gone"
        );
    }
    // What is kept still restores and checks.
    let o = run(sv().args(["check", "--read-data", "--repo", &repo]));
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let t = dir.path().join("r");
    let o = run(sv()
        .args(["restore", "latest", "--repo", &repo, "--target"])
        .arg(&t));
    assert_eq!(o.code, 0, "{}", o.stderr);
    crate::common::assert_trees_equal(&crate::common::restored_path(&t, &src), &src);
}

/// The IAM policy the README gives a backup host allows deletes only under `locks/`: backups
/// (the first, and one that finds everything already stored) make no other delete.
#[test]
fn a_backup_deletes_nothing_but_its_locks() {
    use sitevault::backup::{BackupObserver, BackupOptions};
    use sitevault::vault::lock::{LockOptions, VaultLock};
    struct Quiet;
    impl BackupObserver for Quiet {}
    /// Refuses every delete outside `locks/`, as the bucket policy does.
    struct DenyDeletes(Arc<dyn sitevault::Store>);
    impl sitevault::Store for DenyDeletes {
        fn location(&self) -> &str {
            self.0.location()
        }
        fn get(&self, n: &str) -> sitevault::Result<Option<bytes::Bytes>> {
            self.0.get(n)
        }
        fn get_range(&self, n: &str, r: std::ops::Range<u64>) -> sitevault::Result<bytes::Bytes> {
            self.0.get_range(n, r)
        }
        fn put(&self, n: &str, d: bytes::Bytes) -> sitevault::Result<bool> {
            self.0.put(n, d)
        }
        fn list(&self, p: &str) -> sitevault::Result<Vec<sitevault::store::ObjectInfo>> {
            self.0.list(p)
        }
        fn delete(&self, n: &str) -> sitevault::Result<()> {
            assert!(n.starts_with("locks/"), "a backup deleted {n}");
            self.0.delete(n)
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    crate::common::init_vault(&repo);
    let src = dir.path().join("site");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.bin"), random_bytes(1, 200_000)).unwrap();
    let inner = sitevault::open_store(repo.to_str().unwrap(), false, &Default::default()).unwrap();
    let store: Arc<dyn sitevault::Store> = Arc::new(DenyDeletes(inner));
    let vault = sitevault::Vault::open(store, Some(crate::common::PASSWORD.as_bytes())).unwrap();
    for _ in 0..2 {
        let opts = LockOptions {
            exclusive: false,
            command: "backup".into(),
            host: "h".into(),
            wait: std::time::Duration::ZERO,
        };
        let lock = VaultLock::acquire(&vault, &opts, &|_| {}).unwrap();
        let b = BackupOptions {
            paths: vec![src.clone()],
            host: "h".into(),
            ..BackupOptions::default()
        };
        sitevault::backup(&vault, &b, &Quiet, Some(&lock)).unwrap();
        lock.release().unwrap();
    }
    assert_eq!(vault.list_snapshots().unwrap().len(), 2);
}
