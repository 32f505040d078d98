//! A full disk: the vault lives on a real, small tmpfs. A backup that runs out of space fails
//! with one clear line naming the vault and the cause, leaves no snapshot and no half-written
//! object, keeps every earlier snapshot restorable, and the next run after space is freed
//! succeeds. A restore onto a full disk fails the same way. Also a source that cannot be read.
//!
//! Mounting needs root (or `sudo -n`); elsewhere the test skips with a note, unless
//! `SITEVAULT_TEST_REQUIRE_TMPFS` is set (as `.ci/run` does), when it fails instead.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{assert_trees_equal, dir_size, random_files, restored_path, run, sv};

/// A tmpfs of `size` mounted at a fresh folder, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
    sudo: bool,
}

impl Tmpfs {
    fn mount(dir: PathBuf, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(&dir).unwrap();
        let opts = format!("size={size},mode=0755");
        for sudo in [false, true] {
            let mut c = if sudo {
                let mut c = Command::new("sudo");
                c.arg("-n").arg("mount");
                c
            } else {
                Command::new("mount")
            };
            let ok = c
                .args(["-t", "tmpfs", "-o", &opts, "sitevault-test"])
                .arg(&dir)
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return Some(Tmpfs { dir, sudo });
            }
        }
        None
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let mut c = if self.sudo {
            let mut c = Command::new("sudo");
            c.arg("-n").arg("umount");
            c
        } else {
            Command::new("umount")
        };
        let _ = c.arg("-l").arg(&self.dir).status();
    }
}

fn small_fs(dir: PathBuf, size: &str) -> Option<Tmpfs> {
    let m = Tmpfs::mount(dir, size);
    if m.is_none() {
        assert!(
            std::env::var_os("SITEVAULT_TEST_REQUIRE_TMPFS").is_none(),
            "SITEVAULT_TEST_REQUIRE_TMPFS is set but a tmpfs cannot be mounted (needs root or sudo -n)"
        );
        eprintln!("skipping the disk-full test: mounting a tmpfs needs root or sudo -n");
    }
    m
}

/// Fill `fs` until fewer than `leave` bytes are free.
fn fill(fs_dir: &Path, leave: u64) -> PathBuf {
    let filler = fs_dir.join("filler");
    let mut f = fs::File::create(&filler).unwrap();
    let block = vec![0xA5u8; 16 * 1024];
    use std::io::Write;
    loop {
        let free = free_bytes(fs_dir);
        if free < leave {
            break;
        }
        if f.write_all(&block[..block.len().min((free - leave + 1) as usize)])
            .is_err()
        {
            break;
        }
    }
    f.sync_all().unwrap();
    filler
}

fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

/// Files below `dir` that are not where a vault keeps objects (temporary or stray names).
fn strays(repo: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(repo)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(repo).unwrap().to_path_buf())
        .filter(|p| {
            let s = p.to_str().unwrap();
            let name = p.file_name().unwrap().to_str().unwrap();
            let hex = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
            !(s == "config"
                || hex
                    && ["data/", "index/", "snapshots/", "keys/"]
                        .iter()
                        .any(|d| s.starts_with(d)))
        })
        .collect()
}

fn snapshot_count(repo: &Path) -> usize {
    fs::read_dir(repo.join("snapshots")).map_or(0, |d| d.count())
}

fn restore_and_compare(repo: &Path, snap: &str, src: &Path, target: &Path) {
    let o = run(sv()
        .args(["restore", "--repo"])
        .arg(repo)
        .arg(snap)
        .arg("--target")
        .arg(target));
    assert_eq!(o.code, 0, "restore {snap}: {}", o.stderr);
    assert_trees_equal(&restored_path(target, src), src);
    fs::remove_dir_all(target).unwrap();
}

#[test]
fn a_full_disk_fails_clearly_keeps_earlier_snapshots_and_the_next_run_works() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let Some(small) = small_fs(w.join("small"), "3m") else {
        return;
    };
    let repo = small.dir.join("vault");
    let o = run(sv()
        .args(["init", "--kdf-memory-kib", "8", "--kdf-iterations", "1"])
        .args(["--pack-size", "64KiB", "--repo"])
        .arg(&repo));
    assert_eq!(o.code, 0, "init: {}", o.stderr);

    let src1 = w.join("night1");
    random_files(&src1, 20, 1, 12_000);
    let o = run(sv().args(["backup", "--repo"]).arg(&repo).arg(&src1));
    assert_eq!(o.code, 0, "night 1: {}", o.stderr);
    let vault_before: Vec<_> = walkdir::WalkDir::new(&repo)
        .into_iter()
        .map(|e| e.unwrap().path().to_path_buf())
        .collect();

    // Night 2 holds 1.2 MB of new data; leave 400 KB free.
    let src2 = w.join("night2");
    random_files(&src2, 40, 2, 30_000);
    let filler = fill(&small.dir, 400_000);
    let o = run(sv().args(["backup", "--repo"]).arg(&repo).arg(&src2));
    assert_eq!(
        o.code, 1,
        "a backup onto a full disk fails: {}\n{}",
        o.stdout, o.stderr
    );
    let err: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(err.len(), 1, "one error line: {}", o.stderr);
    assert!(
        err[0].contains("No space left on device")
            && err[0].contains("free space on it and run the command again")
            && err[0].contains(repo.to_str().unwrap()),
        "the error names the vault and the cause: {}",
        err[0]
    );
    assert_eq!(
        snapshot_count(&repo),
        1,
        "no snapshot is written for the failed night"
    );
    assert_eq!(
        strays(&repo),
        Vec::<PathBuf>::new(),
        "no half-written object is left"
    );
    assert!(
        !repo
            .join("locks")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some()),
        "the failed backup released its lock"
    );

    // Still on the full disk: check passes (packs the failed run stored are only unused) and
    // night 1 restores exactly.
    let o = run(sv().args(["check", "--read-data", "--repo"]).arg(&repo));
    assert_eq!(
        o.code, 0,
        "check after the failed backup:\n{}\n{}",
        o.stdout, o.stderr
    );
    restore_and_compare(&repo, "latest", &src1, &w.join("restore1"));
    assert!(
        vault_before.iter().all(|p| p.exists()),
        "nothing earlier was removed"
    );

    // A restore onto a full disk: a clear error, not a panic or a silent partial success.
    let full_target = small.dir.join("restore-here");
    let o = run(sv()
        .args(["restore", "--repo"])
        .arg(&repo)
        .arg("latest")
        .arg("--target")
        .arg(&full_target));
    fs::remove_file(&filler).unwrap();
    let filler = fill(&small.dir, 100_000);
    let o2 = run(sv()
        .args(["restore", "--repo"])
        .arg(&repo)
        .arg("latest")
        .arg("--target")
        .arg(small.dir.join("restore-too")));
    for o in [&o, &o2] {
        if o.code != 0 {
            assert!(
                o.stderr.contains("No space left on device"),
                "a restore onto a full disk names the cause: {}",
                o.stderr
            );
        }
    }
    // A failed restore leaves no temporary files behind.
    let temps: Vec<_> = walkdir::WalkDir::new(&small.dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".sitevault-"))
        .map(|e| e.into_path())
        .collect();
    assert!(
        temps.is_empty(),
        "temporary files left by failed restores: {temps:?}"
    );
    assert_ne!(
        o2.code, 0,
        "a 240 KB restore into 100 KB of space cannot succeed: {}",
        o2.stdout
    );

    // Space freed: the next backup works, and both nights restore.
    fs::remove_file(&filler).unwrap();
    let _ = fs::remove_dir_all(&full_target);
    let _ = fs::remove_dir_all(small.dir.join("restore-too"));
    let o = run(sv().args(["backup", "--repo"]).arg(&repo).arg(&src2));
    assert_eq!(o.code, 0, "night 2 once space is freed: {}", o.stderr);
    assert_eq!(snapshot_count(&repo), 2);
    let o = run(sv().args(["check", "--read-data", "--repo"]).arg(&repo));
    assert_eq!(
        o.code, 0,
        "check after the next run:\n{}\n{}",
        o.stdout, o.stderr
    );
    let o = run(sv().args(["snapshots", "--json", "--repo"]).arg(&repo));
    let snaps: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let ids: Vec<String> = snaps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    restore_and_compare(&repo, &ids[0], &src1, &w.join("restore1"));
    restore_and_compare(&repo, &ids[1], &src2, &w.join("restore2"));
    // The space the failed run used is given back by prune.
    let before = dir_size(&repo);
    let o = run(sv()
        .args(["prune", "--max-unused", "0%", "--repo"])
        .arg(&repo));
    assert_eq!(o.code, 0, "prune: {}", o.stderr);
    assert!(dir_size(&repo) <= before);
    assert_eq!(strays(&repo), Vec::<PathBuf>::new());
}

/// A source file that cannot be read (`/proc/self/mem` fails with EIO even for root): named,
/// exit 3, an incomplete snapshot of everything else; earlier snapshots still restore and the
/// next run without it exits 0.
#[test]
fn an_unreadable_source_is_named_and_the_next_run_works() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let repo = w.join("vault");
    crate::common::init_vault_with(&repo, &["--pack-size", "64KiB"]);
    let src = w.join("site");
    random_files(&src, 10, 1, 8_000);
    let o = run(sv().args(["backup", "--repo"]).arg(&repo).arg(&src));
    assert_eq!(o.code, 0, "night 1: {}", o.stderr);
    let first = w.join("first");
    crate::common::copy_tree(&src, &first);

    random_files(&src, 10, 2, 8_000);
    let o = run(sv()
        .args(["backup", "--repo"])
        .arg(&repo)
        .arg(&src)
        .arg("/proc/self/mem"));
    assert_eq!(
        o.code, 3,
        "an unreadable source makes the run incomplete: {}",
        o.stderr
    );
    assert!(o.stderr.contains("/proc/self/mem"), "named: {}", o.stderr);
    let o = run(sv().args(["snapshots", "--json", "--repo"]).arg(&repo));
    let snaps: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let snaps = snaps.as_array().unwrap();
    assert_eq!(snaps.len(), 2);
    assert_eq!(snaps[1]["complete"], false);
    let first_id = snaps[0]["id"].as_str().unwrap().to_string();

    let o = run(sv().args(["backup", "--repo"]).arg(&repo).arg(&src));
    assert_eq!(o.code, 0, "the next run: {}", o.stderr);
    let o = run(sv().args(["check", "--read-data", "--repo"]).arg(&repo));
    assert_eq!(o.code, 0, "check: {}{}", o.stdout, o.stderr);
    // Night 1 as it was, and the latest as the source is now.
    let t = w.join("r1");
    let o = run(sv()
        .args(["restore", "--repo"])
        .arg(&repo)
        .arg(&first_id)
        .arg("--target")
        .arg(&t));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let got = restored_path(&t, &src);
    for e in fs::read_dir(&first).unwrap() {
        let e = e.unwrap();
        assert_eq!(
            fs::read(got.join(e.file_name())).unwrap(),
            fs::read(e.path()).unwrap(),
            "night 1's {:?}",
            e.file_name()
        );
    }
    restore_and_compare(&repo, "latest", &src, &w.join("r3"));
}
