//! `--index-memory`: an index over the budget is kept on disk (formats/ §7.4). Backups on it
//! dedup exactly as on the in-memory index, restores are byte-identical, and its working files
//! are gone afterwards.

use std::fs;
use std::path::Path;

use crate::common::{assert_trees_equal, init_vault_with, random_files, restored_path, run, sv};

fn backup(repo: &Path, src: &Path, budget: &str) -> serde_json::Value {
    let o = run(sv()
        .args([
            "backup",
            "--json",
            "--force-reread",
            "--index-memory",
            budget,
            "--repo",
        ])
        .arg(repo)
        .arg(src));
    assert_eq!(o.code, 0, "backup: {}", o.stderr);
    serde_json::from_str(&o.stdout).expect("backup --json")
}

fn tmp_files(repo: &Path) -> Vec<String> {
    match fs::read_dir(repo.join("tmp")) {
        Err(_) => Vec::new(),
        Ok(d) => d
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
    }
}

#[test]
fn an_index_over_its_budget_lives_on_disk_and_dedups_as_in_memory() {
    let w = tempfile::tempdir().unwrap();
    let src = w.path().join("src");
    random_files(&src, 20, 1, 120_000);
    // Two vaults given the same nights: one keeps its index in memory, one on disk.
    let (mem, disk) = (w.path().join("mem"), w.path().join("disk"));
    let mut night1 = 0;
    for repo in [&mem, &disk] {
        init_vault_with(repo, &["--pack-size", "128KiB"]);
        let first = backup(repo, &src, "unlimited");
        assert_eq!(first["index"]["on_disk"], false, "{first}");
        night1 = first["summary"]["data_blobs_added"].as_u64().unwrap();
    }
    // Night 2: five new files; every old chunk is looked up again (--force-reread).
    random_files(&src, 25, 1, 120_000);
    let m = backup(&mem, &src, "unlimited");
    let d = backup(&disk, &src, "1KiB");
    assert_eq!(m["index"]["on_disk"], false, "{m}");
    assert_eq!(d["index"]["on_disk"], true, "{d}");
    assert_eq!(m["index"]["blobs"], d["index"]["blobs"]);
    assert!(
        d["index"]["memory_bytes"].as_u64().unwrap() < m["index"]["memory_bytes"].as_u64().unwrap(),
        "the on-disk index keeps less in memory: {} vs {}",
        d["index"],
        m["index"]
    );
    for field in ["data_blobs_added", "tree_blobs_added", "files"] {
        assert_eq!(
            m["summary"][field], d["summary"][field],
            "{field}: the on-disk index finds every chunk the in-memory one does"
        );
    }
    // Only the five new files' chunks are new: a quarter of night 1's twenty.
    let added = d["summary"]["data_blobs_added"].as_u64().unwrap();
    assert!(added > 0 && added * 3 < night1, "{added} of {night1}");
    assert_eq!(
        tmp_files(&disk),
        Vec::<String>::new(),
        "working files removed"
    );

    // Restore through the on-disk index, byte-identical.
    let target = w.path().join("restore");
    let o = run(sv()
        .args(["restore", "--index-memory", "1KiB", "--repo"])
        .arg(&disk)
        .args(["latest", "--target"])
        .arg(&target));
    assert_eq!(o.code, 0, "restore: {}", o.stderr);
    assert_trees_equal(&restored_path(&target, &src), &src);
    assert_eq!(tmp_files(&disk), Vec::<String>::new());
    let o = run(sv().args(["check", "--read-data", "--repo"]).arg(&disk));
    assert_eq!(o.code, 0, "check: {}{}", o.stdout, o.stderr);
}

#[test]
fn a_bad_index_memory_is_named() {
    let w = tempfile::tempdir().unwrap();
    let repo = w.path().join("vault");
    init_vault_with(&repo, &[]);
    let o = run(sv()
        .args(["snapshots", "--index-memory", "lots", "--repo"])
        .arg(&repo));
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("--index-memory") && o.stderr.contains("unlimited"),
        "{}",
        o.stderr
    );
}

/// Run `args --json --index-memory budget` on `repo`: exit code and JSON report.
fn report(repo: &Path, args: &[&str], budget: &str) -> (i32, serde_json::Value) {
    let o = run(sv()
        .args(args)
        .args(["--json", "--index-memory", budget, "--repo"])
        .arg(repo));
    let v = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}{}", o.stdout, o.stderr));
    (o.code, v)
}

#[test]
fn check_and_prune_with_the_index_on_disk_report_as_in_memory() {
    let w = tempfile::tempdir().unwrap();
    let src = w.path().join("src");
    let repo = w.path().join("vault");
    init_vault_with(&repo, &["--pack-size", "64KiB"]);
    random_files(&src, 20, 3, 30_000);
    backup(&repo, &src, "unlimited");
    random_files(&src, 5, 4, 30_000);
    backup(&repo, &src, "unlimited");

    // What prune would do, in memory and on disk.
    let (code_m, mut pm) = report(&repo, &["prune", "--dry-run"], "unlimited");
    let (code_d, mut pd) = report(&repo, &["prune", "--dry-run"], "1KiB");
    assert_eq!((code_m, code_d), (0, 0));
    assert_eq!(pm["index_on_disk"], false);
    assert_eq!(pd["index_on_disk"], true);
    pm["index_on_disk"] = serde_json::Value::Null;
    pd["index_on_disk"] = serde_json::Value::Null;
    assert_eq!(pm, pd, "prune finds the same on disk as in memory");

    // Damage: one pack gone, a byte flipped in another. check --read-data names the same
    // packs, blobs, files and snapshots either way.
    let packs = crate::common::pack_files(&repo);
    assert!(packs.len() >= 4, "{packs:?}");
    fs::remove_file(&packs[0]).unwrap();
    let mut bytes = fs::read(&packs[1]).unwrap();
    bytes[100] ^= 1;
    fs::write(&packs[1], bytes).unwrap();
    let (code_m, mut cm) = report(&repo, &["check", "--read-data"], "unlimited");
    let (code_d, mut cd) = report(&repo, &["check", "--read-data"], "1KiB");
    assert_eq!((code_m, code_d), (1, 1), "{cm}");
    assert_eq!(cm["index_on_disk"], false);
    assert_eq!(cd["index_on_disk"], true);
    assert!(cm["errors"].as_array().unwrap().len() >= 2, "{cm}");
    assert!(
        !cm["damaged_snapshots"].as_array().unwrap().is_empty(),
        "{cm}"
    );
    cm["index_on_disk"] = serde_json::Value::Null;
    cd["index_on_disk"] = serde_json::Value::Null;
    assert_eq!(cm, cd, "check finds the same on disk as in memory");
    assert_eq!(
        tmp_files(&repo),
        Vec::<String>::new(),
        "working files removed"
    );
}
