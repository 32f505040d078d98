//! The per-host index cache (formats/ §7.5): a backup downloads only index files it has not
//! seen, a damaged cached file is fetched again, and files prune replaced leave the cache.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use crate::common::{init_vault_with, random_files, run, sv};

fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `backup --json` of `src`; returns its GET requests.
fn backup_gets(repo: &Path, src: &Path, cache: Option<&Path>) -> u64 {
    let mut cmd = sv();
    cmd.args(["backup", "--json", "--repo"]).arg(repo).arg(src);
    match cache {
        Some(c) => cmd.arg("--cache-dir").arg(c),
        None => cmd.arg("--no-cache"),
    };
    let o = run(&mut cmd);
    assert_eq!(o.code, 0, "backup: {}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    v["requests"]["gets"].as_u64().unwrap()
}

#[test]
fn backups_download_only_index_files_they_have_not_seen() {
    let w = tempfile::tempdir().unwrap();
    let (repo, src, cache) = (
        w.path().join("vault"),
        w.path().join("src"),
        w.path().join("cache"),
    );
    init_vault_with(&repo, &["--pack-size", "128KiB"]);
    random_files(&src, 30, 1, 90_000);
    // Made now: a folder made later would change the parent folder's mtime, which snapshots
    // record, and so add a tree and an index file.
    fs::create_dir(&cache).unwrap();
    backup_gets(&repo, &src, None);
    let listed = names(&repo.join("index"));
    assert!(listed.len() >= 2, "several index files: {listed:?}");
    assert_eq!(names(&cache).len(), 0, "--no-cache wrote no cache");

    // The same data again: no new index files. The first cached run downloads every index
    // file, the next none; each run also reads one more snapshot than the one before.
    let warm = backup_gets(&repo, &src, Some(&cache));
    let cached = backup_gets(&repo, &src, Some(&cache));
    assert_eq!(names(&repo.join("index")), listed);
    let l = listed.len() as u64;
    assert_eq!(
        cached + l,
        warm + 1,
        "warm {warm}, cached {cached}, {l} index files"
    );
    let dirs: Vec<_> = fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "one folder, named for the vault");
    let cdir = dirs[0].join("index");
    assert_eq!(names(&cdir), listed);

    // A damaged cached file is noticed (it no longer hashes to its name) and fetched again.
    let first = cdir.join(listed.iter().next().unwrap());
    let mut bytes = fs::read(&first).unwrap();
    bytes[10] ^= 1;
    fs::write(&first, bytes).unwrap();
    let again = backup_gets(&repo, &src, Some(&cache));
    assert_eq!(
        again,
        cached + 2,
        "one more snapshot and the damaged index file"
    );
    assert_eq!(names(&cdir), listed);

    // New content, then the old forgotten: prune deletes packs and replaces every index file,
    // and the next load drops the replaced ones from the cache.
    fs::remove_dir_all(&src).unwrap();
    random_files(&src, 30, 2, 90_000);
    backup_gets(&repo, &src, Some(&cache));
    let o = run(sv()
        .args(["forget", "--keep-last", "1", "--prune", "--repo"])
        .arg(&repo));
    assert_eq!(o.code, 0, "forget --prune: {}", o.stderr);
    let after = names(&repo.join("index"));
    assert_ne!(after, listed);
    backup_gets(&repo, &src, Some(&cache));
    assert_eq!(names(&cdir), after);
}
