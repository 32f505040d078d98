//! Packs fill in spool files, not memory (formats/ §2 `tmp/`): a vault folder's packs are
//! published from `tmp/` by hard link and nothing is left there; a killed backup's spool files
//! are removed by the next prune; `SITEVAULT_SPOOL_DIR` moves the spool elsewhere.

use std::fs;
use std::path::Path;

use crate::common::{
    assert_trees_equal, init_vault_with, pack_files, random_files, restored_path, run, sv,
};

/// Files (not folders) below `dir`, relative; none when it does not exist.
fn files_in(dir: &Path) -> Vec<String> {
    if !dir.exists() {
        return Vec::new();
    }
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect()
}

#[test]
fn packs_are_linked_from_the_spool_and_nothing_is_left_in_it() {
    let w = tempfile::tempdir().unwrap();
    let (repo, src) = (w.path().join("vault"), w.path().join("src"));
    init_vault_with(&repo, &["--pack-size", "256KiB"]);
    random_files(&src, 12, 1, 90_000);
    let o = run(sv().args(["backup", "--repo"]).arg(&repo).arg(&src));
    assert_eq!(o.code, 0, "backup: {}", o.stderr);
    let packs = pack_files(&repo);
    assert!(packs.len() >= 4, "several packs: {}", packs.len());
    assert!(
        repo.join("tmp").is_dir(),
        "the packs filled in the vault's spool folder"
    );
    assert_eq!(files_in(&repo.join("tmp")), Vec::<String>::new());
    #[cfg(unix)]
    for p in &packs {
        use std::os::unix::fs::MetadataExt;
        // The spool name is gone: the pack has one link, its own name.
        assert_eq!(fs::metadata(p).unwrap().nlink(), 1, "{}", p.display());
    }
    let target = w.path().join("restore");
    let o = run(sv()
        .args(["restore", "--repo"])
        .arg(&repo)
        .args(["latest", "--target"])
        .arg(&target));
    assert_eq!(o.code, 0, "restore: {}", o.stderr);
    assert_trees_equal(&restored_path(&target, &src), &src);
}

#[test]
fn a_killed_backups_spool_files_are_removed_by_prune() {
    let w = tempfile::tempdir().unwrap();
    let (repo, src) = (w.path().join("vault"), w.path().join("src"));
    init_vault_with(&repo, &["--pack-size", "256KiB"]);
    random_files(&src, 12, 2, 90_000);
    // Killed as it stores its second pack: the open packs' spool files stay behind.
    let o = sv()
        .env("SITEVAULT_FAILPOINT", "before:2:put data/")
        .args(["backup", "--repo"])
        .arg(&repo)
        .arg(&src)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let left = files_in(&repo.join("tmp"));
    assert!(
        !left.is_empty() && left.iter().all(|f| f.starts_with("pack-")),
        "spool files left by the kill: {left:?}"
    );
    let o = run(sv().args(["unlock", "--repo"]).arg(&repo));
    assert_eq!(o.code, 0, "unlock: {}", o.stderr);
    let o = run(sv().args(["prune", "--json", "--repo"]).arg(&repo));
    assert_eq!(o.code, 0, "prune: {}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("prune --json");
    assert_eq!(v["spool_files_removed"], left.len(), "{}", o.stdout);
    assert_eq!(files_in(&repo.join("tmp")), Vec::<String>::new());
    let o = run(sv().args(["check", "--read-data", "--repo"]).arg(&repo));
    assert_eq!(o.code, 0, "check: {}{}", o.stdout, o.stderr);
    let o = run(sv().args(["backup", "--repo"]).arg(&repo).arg(&src));
    assert_eq!(o.code, 0, "the next backup: {}", o.stderr);
}

#[test]
fn the_spool_folder_can_be_moved_and_is_left_empty() {
    let w = tempfile::tempdir().unwrap();
    let (repo, src, spool) = (
        w.path().join("vault"),
        w.path().join("src"),
        w.path().join("elsewhere"),
    );
    init_vault_with(&repo, &["--pack-size", "256KiB"]);
    random_files(&src, 12, 3, 90_000);
    let o = run(sv()
        .env("SITEVAULT_SPOOL_DIR", &spool)
        .args(["backup", "--repo"])
        .arg(&repo)
        .arg(&src));
    assert_eq!(o.code, 0, "backup: {}", o.stderr);
    assert!(spool.is_dir(), "the spool folder was used");
    assert!(!repo.join("tmp").exists(), "the vault's own spool was not");
    assert_eq!(files_in(&spool), Vec::<String>::new());
    let o = run(sv().args(["check", "--read-data", "--repo"]).arg(&repo));
    assert_eq!(o.code, 0, "check: {}{}", o.stdout, o.stderr);
}
