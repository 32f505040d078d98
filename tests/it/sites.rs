//! Many sites, one vault: eight processes with different `--host` back up into one s3:// (moto)
//! and one az:// (Azurite) vault at once while a `forget --keep-last 1 --prune` runs. Every
//! snapshot left restores byte-identical, the vault checks clean with every byte read, and
//! content the sites share (the same content-library files) is stored once.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::cloud::{azure_and_s3, fresh};
use crate::common::{PASSWORD, assert_trees_equal, random_bytes, restored_path, run, sv};

const SITES: u64 = 8;
const SHARED_FILES: u64 = 6;
const SHARED_LEN: usize = 256 * 1024;
const OWN_FILES: u64 = 3;
const OWN_LEN: usize = 64 * 1024;

/// A site's source folder on one night: the shared content library plus its own files.
fn source(dir: &Path, site: u64, night: u64) -> PathBuf {
    let src = dir.join(format!("site{site}-night{night}")).join("SCCM");
    fs::create_dir_all(src.join("SCCMContentLib")).unwrap();
    fs::create_dir_all(src.join("SiteServer")).unwrap();
    for f in 0..SHARED_FILES {
        let p = src.join("SCCMContentLib").join(format!("pkg{f}.cab"));
        fs::write(p, random_bytes(1000 + f, SHARED_LEN)).unwrap();
    }
    for f in 0..OWN_FILES {
        let p = src.join("SiteServer").join(format!("own{f}.dat"));
        fs::write(p, random_bytes(site * 100 + night * 10 + f, OWN_LEN)).unwrap();
    }
    src
}

fn spawn(args: &[String]) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("sitevault"))
        .env("SITEVAULT_PASSWORD", PASSWORD)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(c: Child, what: &str) {
    let o = c.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "{what}: {:?}\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn backup_args(repo: &str, site: u64, night: u64, src: &Path) -> Vec<String> {
    [
        "backup",
        "--lock-wait",
        "5m",
        "--host",
        &format!("SITE{site}"),
        "--time",
        &format!("2026-11-2{night}T03:00:0{site}Z"),
        "--repo",
        repo,
        src.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

fn json(args: &[&str], repo: &str) -> Value {
    let o = run(sv().args(args).args(["--repo", repo]));
    assert_eq!(o.code, 0, "{args:?}:\n{}\n{}", o.stdout, o.stderr);
    serde_json::from_str(&o.stdout).unwrap()
}

fn many_sites(base: &str, name: &str) {
    let repo = fresh(base, name);
    let o = run(sv()
        .args(["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"])
        .args(["--pack-size", "1MiB", "--repo", &repo]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let dir = tempfile::tempdir().unwrap();
    let mut sources: BTreeMap<(u64, u64), PathBuf> = BTreeMap::new();
    for site in 0..SITES {
        for night in 1..=2 {
            sources.insert((site, night), source(dir.path(), site, night));
        }
    }

    // Night 1: all eight at once.
    let running: Vec<Child> = (0..SITES)
        .map(|s| spawn(&backup_args(&repo, s, 1, &sources[&(s, 1)])))
        .collect();
    for (s, c) in running.into_iter().enumerate() {
        finish(c, &format!("night 1 of site {s}"));
    }
    // Night 2: all eight again, with a forget --prune among them.
    let mut running: Vec<(String, Child)> = (0..SITES)
        .map(|s| {
            (
                format!("night 2 of site {s}"),
                spawn(&backup_args(&repo, s, 2, &sources[&(s, 2)])),
            )
        })
        .collect();
    let forget = [
        "forget",
        "--keep-last",
        "1",
        "--prune",
        "--lock-wait",
        "5m",
        "--repo",
        &repo,
    ]
    .map(String::from);
    running.insert(
        SITES as usize / 2,
        ("forget --prune".into(), spawn(&forget)),
    );
    for (what, c) in running {
        finish(c, &what);
    }

    // Every site has its night 2; whatever the forget saw of night 1 is gone or intact.
    let snaps = json(&["snapshots", "--json"], &repo);
    let mut kept: Vec<(String, u64, u64)> = Vec::new();
    for s in snaps.as_array().unwrap() {
        let host = s["host"].as_str().unwrap();
        let site: u64 = host.trim_start_matches("SITE").parse().unwrap();
        let night = if s["time"].as_str().unwrap().starts_with("2026-11-22") {
            2
        } else {
            1
        };
        kept.push((s["id"].as_str().unwrap().to_string(), site, night));
    }
    for site in 0..SITES {
        assert!(
            kept.iter().any(|k| k.1 == site && k.2 == 2),
            "site {site} has its night 2: {kept:?}"
        );
    }
    let o = run(sv().args(["check", "--read-data", "--repo", &repo]));
    assert_eq!(o.code, 0, "check --read-data:\n{}\n{}", o.stdout, o.stderr);
    for (id, site, night) in &kept {
        let target = dir.path().join(format!("restore-{id}"));
        let o = run(sv()
            .args(["restore", id, "--repo", &repo, "--target"])
            .arg(&target));
        assert_eq!(o.code, 0, "restore {id}:\n{}", o.stderr);
        let src = &sources[&(*site, *night)];
        assert_trees_equal(&restored_path(&target, src), src);
    }
    // Shared files once, each kept snapshot's own files once: nothing else.
    let st = json(&["stats", "--json"], &repo);
    let want = SHARED_FILES * SHARED_LEN as u64 + kept.len() as u64 * OWN_FILES * OWN_LEN as u64;
    assert_eq!(st["unique_bytes"], want, "{st}");
    let per_snapshot = SHARED_FILES * SHARED_LEN as u64 + OWN_FILES * OWN_LEN as u64;
    assert_eq!(
        st["logical_bytes"],
        kept.len() as u64 * per_snapshot,
        "{st}"
    );
    eprintln!(
        "{name}: {} sites, {} snapshots kept after a concurrent forget --prune, {} unique of {} logical bytes",
        SITES,
        kept.len(),
        st["unique_bytes"],
        st["logical_bytes"]
    );
}

#[test]
fn eight_sites_back_up_into_one_vault_at_once_while_a_prune_runs() {
    let Some((az, s3)) = azure_and_s3("eight_sites_back_up_into_one_vault") else {
        return;
    };
    std::thread::scope(|t| {
        t.spawn(|| many_sites(&s3, "sites-s3"));
        t.spawn(|| many_sites(&az, "sites-az"));
    });
}
