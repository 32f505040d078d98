//! A backup killed with SIGKILL midway: the vault stays valid, the next backup reuses what the
//! killed one uploaded, and the result restores exactly.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, PASSWORD, assert_trees_equal, random_bytes, restored_path, sv};

const MIB: usize = 1024 * 1024;

/// Complete pack objects under `data/` (names are 64 hex digits; staging files are not packs).
fn packs(repo: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(repo.join("data"))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            let n = e.file_name().as_encoded_bytes();
            n.len() == 64 && n.iter().all(|b| b.is_ascii_hexdigit())
        })
        .map(|e| e.into_path())
        .collect()
}

fn snapshot_count(repo: &Path) -> usize {
    let out = sv()
        .args(["snapshots", "--json", "--repo"])
        .arg(repo)
        .assert()
        .success();
    let v: serde_json::Value =
        serde_json::from_slice(&out.get_output().stdout).expect("snapshots --json prints JSON");
    v.as_array()
        .expect("snapshots --json prints an array")
        .len()
}

/// Start a backup, kill it with SIGKILL once `min_packs` packs are stored. Returns false when
/// the backup was too quick to be caught midway.
fn backup_killed_midway(repo: &Path, src: &Path, min_packs: usize) -> bool {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("sitevault"))
        .env_remove("SITEVAULT_REPOSITORY")
        .env_remove("SITEVAULT_PASSWORD_FILE")
        .env("SITEVAULT_PASSWORD", PASSWORD)
        .args(["backup", "--repo"])
        .arg(repo)
        .arg(src)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sitevault backup");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if packs(repo).len() >= min_packs {
            child.kill().expect("SIGKILL the backup");
            child.wait().expect("reap the backup");
            return true;
        }
        if let Some(status) = child.try_wait().expect("poll the backup") {
            eprintln!("backup ended ({status}) before {min_packs} packs were seen");
            return false;
        }
        assert!(
            Instant::now() < deadline,
            "backup neither finished nor stored {min_packs} packs in 60 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn backup_killed_midway_leaves_a_valid_vault_and_is_resumed() {
    let work = tempfile::tempdir().unwrap();
    // If the machine is fast enough to finish before we look, retry once with twice the data.
    let mut attempt = 0;
    let (repo, src, data_size, stored_at_kill) = loop {
        attempt += 1;
        let files = 40 * attempt;
        let src = work.path().join(format!("src-{attempt}"));
        fs::create_dir_all(&src).unwrap();
        for i in 0..files {
            fs::write(
                src.join(format!("part-{i:03}.dat")),
                random_bytes(0xC0FFEE + i as u64, MIB),
            )
            .unwrap();
        }
        let data_size = (files * MIB) as u64;
        let repo = work.path().join(format!("vault-{attempt}"));
        common::init_vault_with(&repo, &["--pack-size", "64KiB"]);
        if backup_killed_midway(&repo, &src, files / 2) {
            let n = snapshot_count(&repo);
            if n == 0 {
                let stored: u64 = packs(&repo)
                    .iter()
                    .map(|p| p.metadata().unwrap().len())
                    .sum();
                break (repo, src, data_size, stored);
            }
            assert_eq!(n, 1, "a killed backup left {n} snapshots");
            eprintln!("backup of {data_size} bytes finished before it was killed");
        }
        assert!(
            attempt < 2,
            "could not catch a backup midway even with {data_size} bytes of data"
        );
    };
    assert!(
        stored_at_kill >= data_size / 4,
        "only {stored_at_kill} bytes of packs stored at the kill"
    );

    // The vault is still valid: listing works and shows no snapshot from the killed run.
    assert_eq!(
        snapshot_count(&repo),
        0,
        "the killed backup must not have saved a snapshot"
    );

    // A second backup completes and reuses what the killed one stored.
    let out = sv()
        .args(["backup", "--json", "--repo"])
        .arg(&repo)
        .arg(&src)
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["complete"], true, "{v}");
    assert_eq!(v["summary"]["bytes_read"].as_u64(), Some(data_size), "{v}");
    let added = v["summary"]["bytes_added"].as_u64().unwrap();
    eprintln!(
        "killed with {stored_at_kill} of {data_size} bytes stored as packs; the resumed backup added {added}"
    );
    assert!(
        added < data_size * 85 / 100,
        "resumed backup added {added} of {data_size} bytes: the packs stored before the kill were not reused"
    );
    assert!(
        added <= data_size - stored_at_kill * 9 / 10,
        "resumed backup added {added} bytes although {stored_at_kill} of {data_size} were already stored"
    );
    assert_eq!(snapshot_count(&repo), 1);

    let target = work.path().join("restore");
    let out = sv()
        .args(["restore", "--repo"])
        .arg(&repo)
        .args(["latest", "--target"])
        .arg(&target)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(
        !stderr.contains("error"),
        "restore reported errors: {stderr}"
    );
    let restored = restored_path(&target, &src);
    assert_trees_equal(&src, &restored);
    // Nothing but the restored tree and its parents: no temporaries anywhere in the target.
    for e in walkdir::WalkDir::new(&target) {
        let p = e.unwrap().into_path();
        assert!(
            p.starts_with(&restored) || restored.starts_with(&p),
            "stray file in the restore target: {}",
            p.display()
        );
        let name = p
            .file_name()
            .map(|n| n.as_encoded_bytes().to_vec())
            .unwrap_or_default();
        assert!(
            !name.starts_with(b".sitevault-"),
            "stray temporary file {}",
            p.display()
        );
    }
}
