//! The per-host index cache (formats/ §7.5): a backup downloads only index files it has not
//! seen, a damaged cached file is fetched again, and files prune replaced leave the cache.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use crate::common::{init_vault_with, pack_files, random_files, run, sv};

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

    // The same data again. The first cached run downloads every index file, the next only
    // those the first wrote; each run also reads one more snapshot than the one before. The
    // data adds nothing, but a folder above the source (such as /tmp, which other processes
    // touch) may have a new mtime and so add one tree, and one index file, per run.
    let warm = backup_gets(&repo, &src, Some(&cache));
    let after_warm = names(&repo.join("index"));
    let cached = backup_gets(&repo, &src, Some(&cache));
    let after_cached = names(&repo.join("index"));
    let added = |before: &BTreeSet<String>, after: &BTreeSet<String>| {
        assert!(before.is_subset(after), "a backup removed an index file");
        let n = after.len() - before.len();
        assert!(n <= 1, "the same data added {n} index files");
        n as u64
    };
    let l = listed.len() as u64;
    let by_warm = added(&listed, &after_warm);
    assert_eq!(
        cached + l,
        warm + 1 + by_warm,
        "warm {warm}, cached {cached}, {l} index files, {by_warm} added by the warm run"
    );
    let by_cached = added(&after_warm, &after_cached);
    let dirs: Vec<_> = fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "one folder, named for the vault");
    let cdir = dirs[0].join("index");
    assert_eq!(
        names(&cdir),
        after_warm,
        "the cache holds what the last run read"
    );

    // A damaged cached file is noticed (it no longer hashes to its name) and fetched again.
    let first = cdir.join(listed.iter().next().unwrap());
    let mut bytes = fs::read(&first).unwrap();
    bytes[10] ^= 1;
    fs::write(&first, bytes).unwrap();
    let again = backup_gets(&repo, &src, Some(&cache));
    // The cached run downloaded the files the warm run added; this one downloads the damaged
    // file and those the cached run added instead.
    assert_eq!(
        again + by_warm,
        cached + 2 + by_cached,
        "one more snapshot, the damaged index file, {by_cached} added by the last run"
    );
    assert_eq!(names(&cdir), after_cached);

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

/// `check --json` with the cache folder `cache` (and `extra` flags): exit code and report.
fn check(repo: &Path, cache: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let o = run(sv()
        .args(["check", "--json"])
        .args(extra)
        .arg("--cache-dir")
        .arg(cache)
        .arg("--repo")
        .arg(repo));
    let v = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("check --json: {e}: {}{}", o.stdout, o.stderr));
    (o.code, v)
}

/// With a cache folder, `check` reads the header of a pack once: later checks on the host read
/// only new packs' headers (formats/ §7.6). `--all-headers` and `--read-data` still read
/// everything, and a damaged record is ignored.
#[test]
fn check_reads_only_the_pack_headers_it_has_not_verified() {
    let w = tempfile::tempdir().unwrap();
    let (repo, src, cache) = (
        w.path().join("vault"),
        w.path().join("src"),
        w.path().join("cache"),
    );
    init_vault_with(&repo, &["--pack-size", "64KiB"]);
    random_files(&src, 12, 5, 40_000);
    backup_gets(&repo, &src, None);
    let first = pack_files(&repo);

    let (code, v) = check(&repo, &cache, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["headers_read"], first.len() as u64, "{v}");
    assert_eq!(v["headers_skipped"], 0, "{v}");
    let (code, v) = check(&repo, &cache, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["headers_read"], 0, "{v}");
    assert_eq!(v["headers_skipped"], first.len() as u64, "{v}");

    // A second night: only its packs' headers are read.
    random_files(&src, 16, 6, 40_000);
    backup_gets(&repo, &src, None);
    let now = pack_files(&repo);
    let added = now.len() - first.len();
    assert!(added > 0);
    let (_, v) = check(&repo, &cache, &[]);
    assert_eq!(v["headers_read"], added as u64, "{v}");
    assert_eq!(v["headers_skipped"], first.len() as u64, "{v}");

    // A header damaged after it was verified: the record-based check does not read it (the
    // trade: a structure check reads what is new; --read-data reads everything), while
    // --all-headers and --read-data find it.
    let victim = &first[0];
    let mut bytes = fs::read(victim).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x40;
    fs::write(victim, bytes).unwrap();
    let (code, v) = check(&repo, &cache, &[]);
    assert_eq!((code, v["headers_read"].as_u64()), (0, Some(0)), "{v}");
    let name = victim.file_name().unwrap().to_str().unwrap();
    for flags in [&["--all-headers"][..], &["--read-data"][..]] {
        let (code, v) = check(&repo, &cache, flags);
        assert_eq!(code, 1, "{flags:?}: {v}");
        assert!(
            v["damaged_packs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p == name),
            "{flags:?}: {v}"
        );
    }
    // The damaged pack left the record: the next check reads its header again.
    let (code, v) = check(&repo, &cache, &[]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["headers_read"], 1, "{v}");

    // A record that does not open is ignored: every header is read.
    let vault_dir = fs::read_dir(&cache)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let record = fs::read_dir(&vault_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("checked-headers-")
        })
        .expect("a check record in the cache folder");
    let mut bytes = fs::read(&record).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&record, bytes).unwrap();
    let (_, v) = check(&repo, &cache, &[]);
    assert_eq!(v["headers_read"], now.len() as u64, "{v}");
}
