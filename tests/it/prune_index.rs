//! Prune rewrites only the index files that name what goes, merging small ones when it writes
//! anyway, and does the same with its index in a working file as in memory (issue 18).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use sitevault::Vault;
use sitevault::prune::{PruneOptions, PruneReport};

use crate::common::{
    PASSWORD, assert_trees_equal, init_vault_with, random_files, restored_path, run, sv,
};

/// Every index file: name → stored bytes.
fn index_files(repo: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(repo.join("index"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn json(args: &[&str], repo: &Path, extra: &[&Path]) -> serde_json::Value {
    let mut c = sv();
    c.args(args).arg("--json").arg("--repo").arg(repo);
    for p in extra {
        c.arg(p);
    }
    let o = run(&mut c);
    assert_eq!(o.code, 0, "{args:?}: {}", o.stderr);
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", o.stdout))
}

fn backup(repo: &Path, src: &Path, time: &str) -> String {
    let v = json(&["backup", "--time", time], repo, &[src]);
    v["id"].as_str().unwrap().to_string()
}

fn forget(repo: &Path, id: &str) {
    let o = run(sv().args(["forget", "--repo"]).arg(repo).arg(id));
    assert_eq!(o.code, 0, "forget: {}", o.stderr);
}

fn prune(repo: &Path, budget: &str) -> serde_json::Value {
    json(
        &["prune", "--max-unused", "0%", "--index-memory", budget],
        repo,
        &[],
    )
}

fn restores(repo: &Path, id: &str, src: &Path, work: &Path) {
    let target = work.join(format!("restore-{id}"));
    let o = run(sv()
        .args(["restore", "--repo"])
        .arg(repo)
        .arg(id)
        .arg("--target")
        .arg(&target));
    assert_eq!(o.code, 0, "restore {id}: {}", o.stderr);
    assert_trees_equal(src, &restored_path(&target, src));
}

/// Prune in process, with index files of at most `file_blobs` blobs (so a test vault's files
/// count as large) and the index on disk with a 1 KiB budget unless `budget` is unlimited.
fn prune_small_files(repo: &Path, budget: &str, file_blobs: usize) -> PruneReport {
    let store = sitevault::open_store(repo.to_str().unwrap(), false, &Default::default()).unwrap();
    let mut v = Vault::open(store, Some(PASSWORD.as_bytes())).unwrap();
    v.set_index_budget((budget != "unlimited").then_some(1024));
    let opts = PruneOptions {
        max_unused: 0.0,
        index_file_blobs: file_blobs,
        ..PruneOptions::default()
    };
    // No lock: nothing else runs on this vault.
    sitevault::prune::prune(&v, &opts, &|| Ok(())).unwrap()
}

#[test]
fn prune_rewrites_only_the_index_files_that_name_what_goes() {
    for budget in ["unlimited", "1KiB"] {
        let w = tempfile::tempdir().unwrap();
        let repo = w.path().join("vault");
        init_vault_with(&repo, &["--pack-size", "64KiB"]);
        let src = |n: u64| {
            let d = w.path().join(format!("src{n}"));
            random_files(&d, 10, n, 30_000);
            d
        };
        let (a, b, c, d) = (src(1), src(2), src(3), src(4));

        // Two nights, one index file each; forgetting the second leaves its packs unused.
        let ida = backup(&repo, &a, "2026-01-01T03:00:00Z");
        let first = index_files(&repo);
        let idb = backup(&repo, &b, "2026-01-02T03:00:00Z");
        let second = index_files(&repo).len() - first.len();
        assert!(second >= 1);
        forget(&repo, &idb);
        // Every file lists a blob or more, so none counts as small (under half of 2).
        let r = prune_small_files(&repo, budget, 2);
        assert_eq!(r.index_on_disk, budget != "unlimited", "{budget}: {r:?}");
        assert!(r.packs_deleted >= 2, "{r:?}");
        assert_eq!(r.packs_repacked, 0, "{r:?}");
        // Only the second night's files named what went; the first night's are untouched.
        assert_eq!(r.index_files_replaced, second, "{r:?}");
        assert_eq!(r.index_files_written, 1, "{r:?}");
        let after = index_files(&repo);
        assert_eq!(after.len(), first.len() + 1, "{budget}: {:?}", after.keys());
        for (name, bytes) in &first {
            assert_eq!(
                after.get(name),
                Some(bytes),
                "{budget}: {name} was rewritten"
            );
        }

        // Nothing to do: nothing written.
        let r = prune(&repo, budget);
        assert_eq!(r["index_files_written"], 0, "{r}");
        assert_eq!(index_files(&repo), after);

        // Two more nights, the first of them forgotten: its files go, and since prune writes
        // anyway the small files left (all of them, at the default of 50,000 blobs a file) are
        // merged into one.
        let idc = backup(&repo, &c, "2026-01-03T03:00:00Z");
        let idd = backup(&repo, &d, "2026-01-04T03:00:00Z");
        forget(&repo, &idc);
        let before = index_files(&repo).len();
        let r = prune(&repo, budget);
        assert_eq!(r["index_files_replaced"], before as u64, "{r}");
        assert_eq!(r["index_files_written"], 1, "{r}");
        assert_eq!(index_files(&repo).len(), 1);

        let check = run(sv().args(["check", "--read-data", "--repo"]).arg(&repo));
        assert_eq!(
            check.code, 0,
            "{budget}: check: {}{}",
            check.stdout, check.stderr
        );
        restores(&repo, &ida, &a, w.path());
        restores(&repo, &idd, &d, w.path());
        let tmp: Vec<_> = fs::read_dir(repo.join("tmp"))
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(tmp.is_empty(), "{budget}: working files left: {tmp:?}");
    }
}
