//! Prune under fire: killed with SIGKILL after every one of its writes, and racing a backup.
//! After each kill the vault must check clean and every remaining snapshot restore exactly.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{
    Paused, Watched, assert_trees_equal, copy_tree, init_vault_with, random_bytes, restored_path,
    run, sv,
};

/// A vault with four nights of small files (several per 64 KiB pack, so forgetting leaves
/// packs partly used), nights 1 and 3 forgotten. Returns the surviving nights' sources.
struct Fixture {
    dir: tempfile::TempDir,
    repo: PathBuf,
    kept: Vec<(String, PathBuf)>,
}

fn write_night(src: &Path, night: u64) {
    fs::create_dir_all(src.join("sub")).unwrap();
    for i in 0..40u64 {
        // A third of the files change each night; the rest keep their content.
        let version = if i % 3 == night % 3 { night } else { 0 };
        let len = 3_000 + (i as usize * 977) % 17_000;
        let dir = if i % 4 == 0 {
            src.join("sub")
        } else {
            src.to_path_buf()
        };
        fs::write(
            dir.join(format!("f{i}.bin")),
            random_bytes(i * 1000 + version, len),
        )
        .unwrap();
    }
    if night == 2 {
        fs::write(src.join("only-night-2.log"), random_bytes(77, 40_000)).unwrap();
    }
}

fn backup_json(repo: &Path, src: &Path, time: &str) -> String {
    let o = run(sv()
        .args(["backup", "--json", "--time", time, "--repo"])
        .arg(repo)
        .arg(src));
    assert_eq!(o.code, 0, "backup failed: {}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("backup --json");
    v["id"].as_str().expect("id").to_string()
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault_with(&repo, &["--pack-size", "64KiB"]);
    let mut all = Vec::new();
    for night in 1..=4u64 {
        let src = dir.path().join(format!("night{night}"));
        write_night(&src, night);
        let id = backup_json(&repo, &src, &format!("2026-01-0{night}T03:00:00Z"));
        all.push((id, src));
    }
    // Forget nights 1 and 3.
    let o = run(sv()
        .args(["forget", "--lock-wait", "0", "--repo"])
        .arg(&repo)
        .args([&all[0].0, &all[2].0]));
    assert_eq!(o.code, 0, "forget: {}", o.stderr);
    let kept = vec![all[1].clone(), all[3].clone()];
    Fixture { dir, repo, kept }
}

fn prune_args(repo: &Path) -> Vec<&OsStr> {
    vec![
        OsStr::new("prune"),
        OsStr::new("--max-unused"),
        OsStr::new("0%"),
        OsStr::new("--lock-wait"),
        OsStr::new("0"),
        OsStr::new("--repo"),
        repo.as_os_str(),
    ]
}

fn assert_check_clean(repo: &Path, when: &str) {
    let o = run(sv().args(["check", "--read-data", "--repo"]).arg(repo));
    assert_eq!(
        o.code, 0,
        "check --read-data {when}:\n{}\n{}",
        o.stdout, o.stderr
    );
}

fn assert_restores(repo: &Path, kept: &[(String, PathBuf)], scratch: &Path, when: &str) {
    for (id, src) in kept {
        let target = scratch.join(format!("restore-{}", &id[..8]));
        let _ = fs::remove_dir_all(&target);
        let o = run(sv()
            .args(["restore", &id[..12], "--target"])
            .arg(&target)
            .arg("--repo")
            .arg(repo));
        assert_eq!(o.code, 0, "restore {id} {when}: {}", o.stderr);
        assert_trees_equal(&restored_path(&target, src), src);
    }
}

fn pack_count(repo: &Path) -> usize {
    walkdir::WalkDir::new(repo.join("data"))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file() && e.file_name().len() == 64)
        .count()
}

#[test]
fn prune_killed_after_each_write_leaves_a_valid_vault() {
    let f = fixture();
    let template = f.dir.path().join("template");
    copy_tree(&f.repo, &template);
    let packs_before = pack_count(&template);
    let mut points = Vec::new();
    for n in 1.. {
        let repo = f.dir.path().join(format!("vault-{n}"));
        copy_tree(&template, &repo);
        let p = Paused::start(&prune_args(&repo), n);
        let Some(at) = p.at.clone() else {
            let (code, err) = p.resume();
            assert_eq!(code, 0, "prune without a kill: {err}");
            fs::remove_dir_all(&repo).unwrap();
            break;
        };
        p.kill();
        let when = format!("after prune was killed after write {n} ({at})");
        // The killed prune's lock names a dead process on this host: nobody waits for it.
        assert_check_clean(&repo, &when);
        assert_restores(&repo, &f.kept, f.dir.path(), &when);
        // And a new prune finishes the job.
        let o = run(sv().args(prune_args(&repo)));
        assert_eq!(o.code, 0, "prune {when}: {}", o.stderr);
        assert_check_clean(&repo, &format!("{when}, then a full prune"));
        assert!(
            pack_count(&repo) < packs_before,
            "the second prune freed packs {when}"
        );
        points.push(at);
        fs::remove_dir_all(&repo).unwrap();
    }
    eprintln!("prune was killed at {} points", points.len());
    assert!(
        points.len() >= 20,
        "prune was killed at only {} points: {points:?}",
        points.len()
    );
    // Every kind of write was a kill point: new packs, the new index, and the deletions.
    for kind in [
        "put data/",
        "put index/",
        "delete index/",
        "delete data/",
        "delete locks/",
    ] {
        assert!(
            points.iter().any(|p| p.starts_with(kind)),
            "no kill after a `{kind}` write: {points:?}"
        );
    }
    // The last state restores too, after a prune that ran to the end.
    let o = run(sv().args(prune_args(&f.repo)));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_check_clean(&f.repo, "after a full prune");
    assert_restores(&f.repo, &f.kept, f.dir.path(), "after a full prune");
}

#[test]
fn prune_frees_what_forgotten_snapshots_alone_used() {
    let f = fixture();
    let before = pack_count(&f.repo);
    let o = run(sv()
        .args(["prune", "--json", "--max-unused", "0%", "--repo"])
        .arg(&f.repo));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r: serde_json::Value = serde_json::from_str(&o.stdout).expect("prune --json");
    assert_eq!(r["snapshots"], 2);
    assert!(r["packs_deleted"].as_u64().unwrap() > 0, "{r}");
    assert!(r["packs_repacked"].as_u64().unwrap() > 0, "{r}");
    assert!(r["bytes_freed"].as_u64().unwrap() > 40_000, "{r}");
    assert_eq!(r["bytes_unused_after"], 0, "{r}");
    assert_eq!(
        pack_count(&f.repo) as u64,
        r["packs_after"].as_u64().unwrap(),
        "{r}"
    );
    assert!(pack_count(&f.repo) < before);
    // Only one index file is left, and a second prune has nothing to do.
    assert_eq!(fs::read_dir(f.repo.join("index")).unwrap().count(), 1);
    let o = run(sv().args(["prune", "--json", "--repo"]).arg(&f.repo));
    let r: serde_json::Value = serde_json::from_str(&o.stdout).expect("prune --json");
    assert_eq!(
        (r["packs_deleted"].as_u64(), r["packs_repacked"].as_u64()),
        (Some(0), Some(0))
    );
    assert_check_clean(&f.repo, "after prune");
    assert_restores(&f.repo, &f.kept, f.dir.path(), "after prune");
}

#[test]
fn prune_dry_run_changes_nothing() {
    let f = fixture();
    let listing = |repo: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = walkdir::WalkDir::new(repo)
            .into_iter()
            .map(|e| e.unwrap().into_path())
            .collect();
        v.sort();
        v
    };
    let before = listing(&f.repo);
    let o = run(sv()
        .args(["prune", "--dry-run", "--max-unused", "0%", "--repo"])
        .arg(&f.repo));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("would delete"), "{}", o.stdout);
    assert_eq!(listing(&f.repo), before);
}

#[test]
fn backup_waits_for_a_running_prune_and_both_succeed() {
    let f = fixture();
    // Prune stops after its second write, holding its exclusive lock.
    let p = Paused::start(&prune_args(&f.repo), 2);
    assert!(p.at.is_some(), "prune stopped midway");
    let src = f.dir.path().join("night5");
    write_night(&src, 5);
    let backup = Watched::start(&[
        OsStr::new("backup"),
        OsStr::new("--json"),
        OsStr::new("--lock-wait"),
        OsStr::new("60s"),
        OsStr::new("--repo"),
        f.repo.as_os_str(),
        src.as_os_str(),
    ]);
    backup.wait_for("waiting up to 60s for the vault lock held by prune (exclusive lock");
    let (code, err) = p.resume();
    assert_eq!(code, 0, "prune: {err}");
    let (code, stdout) = backup.finish();
    assert_eq!(code, 0, "backup failed after waiting");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let mut kept = f.kept.clone();
    kept.push((v["id"].as_str().unwrap().to_string(), src));
    assert_check_clean(&f.repo, "after backup and prune raced");
    assert_restores(&f.repo, &kept, f.dir.path(), "after backup and prune raced");
}

#[test]
fn prune_waits_for_a_running_backup_and_both_succeed() {
    let f = fixture();
    let src = f.dir.path().join("night5");
    write_night(&src, 5);
    // The backup stops after its second write (its lock, then a pack), holding a shared lock.
    let b = Paused::start(
        &[
            OsStr::new("backup"),
            OsStr::new("--repo"),
            f.repo.as_os_str(),
            src.as_os_str(),
        ],
        2,
    );
    assert!(b.at.is_some(), "backup stopped midway");
    let mut args = prune_args(&f.repo);
    args[4] = OsStr::new("60s");
    let prune = Watched::start(&args);
    prune.wait_for("held by backup (shared lock");
    let (code, err) = b.resume();
    assert_eq!(code, 0, "backup: {err}");
    let (code, _) = prune.finish();
    assert_eq!(code, 0, "prune failed after waiting");
    let id = {
        let o = run(sv().args(["snapshots", "--json", "--repo"]).arg(&f.repo));
        let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
        v.as_array().unwrap().last().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let mut kept = f.kept.clone();
    kept.push((id, src));
    assert_check_clean(&f.repo, "after prune waited for backup");
    assert_restores(
        &f.repo,
        &kept,
        f.dir.path(),
        "after prune waited for backup",
    );
}

#[test]
fn a_backup_whose_lock_was_removed_commits_nothing() {
    let f = fixture();
    let src = f.dir.path().join("night5");
    write_night(&src, 5);
    let b = Paused::start(
        &[
            OsStr::new("backup"),
            OsStr::new("--repo"),
            f.repo.as_os_str(),
            src.as_os_str(),
        ],
        2,
    );
    assert!(b.at.is_some());
    // What a prune does to a lock it judged stale.
    for e in fs::read_dir(f.repo.join("locks")).unwrap() {
        fs::remove_file(e.unwrap().path()).unwrap();
    }
    let snaps_before = fs::read_dir(f.repo.join("snapshots")).unwrap().count();
    let (code, err) = b.resume();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("lost the lock on vault"), "{err}");
    assert!(err.contains("was removed by another process"), "{err}");
    assert_eq!(
        fs::read_dir(f.repo.join("snapshots")).unwrap().count(),
        snaps_before,
        "no snapshot was written"
    );
}

#[test]
fn a_held_lock_is_named_and_unlock_removes_only_stale_ones() {
    let f = fixture();
    let p = Paused::start(&prune_args(&f.repo), 1);
    assert!(p.at.as_deref().is_some_and(|a| a.starts_with("put locks/")));
    // A live exclusive lock: a backup that will not wait fails at once and names the holder.
    let o = run(sv()
        .args(["backup", "--lock-wait", "0", "--repo"])
        .arg(&f.repo)
        .arg(&f.kept[0].1));
    assert_eq!(o.code, 1);
    assert!(
        o.stderr
            .contains("is locked by prune (exclusive lock, process"),
        "{}",
        o.stderr
    );
    // unlock leaves a live process's lock alone ...
    let o = run(sv().args(["unlock", "--repo"]).arg(&f.repo));
    assert_eq!(o.code, 0);
    assert!(o.stdout.contains("0 locks removed"), "{}", o.stdout);
    // ... and once the process is dead its lock no longer blocks anyone.
    p.kill();
    let o = run(sv()
        .args(["check", "--lock-wait", "0", "--repo"])
        .arg(&f.repo));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = run(sv().args(["unlock", "--repo"]).arg(&f.repo));
    assert_eq!(o.code, 0);
    assert_eq!(fs::read_dir(f.repo.join("locks")).unwrap().count(), 0);
}
