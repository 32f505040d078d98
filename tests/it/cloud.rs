//! Vaults on real S3 (moto) and Azure Blob (Azurite) servers that `.ci/run` starts on
//! 127.0.0.1 and names in `SITEVAULT_TEST_S3` / `SITEVAULT_TEST_AZ` (with the `AWS_*` and
//! `AZURE_*` variables the servers need). Without them these tests say so and pass: CI always
//! has them.

use std::fs;
use std::path::Path;

use crate::common::{assert_trees_equal, random_bytes, restored_path, run, sv};

/// The base URL of each emulator that is running.
fn services() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (name, var) in [("s3", "SITEVAULT_TEST_S3"), ("azure", "SITEVAULT_TEST_AZ")] {
        match std::env::var(var) {
            Ok(url) if !url.is_empty() => out.push((name, url)),
            _ => eprintln!(
                "SKIPPED: {var} is not set, so the {name} tests did not run (`bash .ci/run` starts the emulators)"
            ),
        }
    }
    out
}

/// The Azure and S3 base URLs when both emulators run; else a visible SKIPPED line.
pub fn azure_and_s3(test: &str) -> Option<(String, String)> {
    match (
        std::env::var("SITEVAULT_TEST_AZ"),
        std::env::var("SITEVAULT_TEST_S3"),
    ) {
        (Ok(az), Ok(s3)) if !az.is_empty() && !s3.is_empty() => Some((az, s3)),
        _ => {
            eprintln!(
                "SKIPPED: {test}: SITEVAULT_TEST_AZ / SITEVAULT_TEST_S3 are not set (`bash .ci/run` starts the emulators)"
            );
            None
        }
    }
}

/// A fresh prefix per test, so tests share one bucket without meeting.
pub fn fresh(base: &str, test: &str) -> String {
    let n: u64 = random_bytes(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            ^ std::process::id() as u64,
        8,
    )
    .iter()
    .fold(0, |a, b| a << 8 | *b as u64);
    format!("{}/{test}-{n:016x}", base.trim_end_matches('/'))
}

fn ok(args: &[&str], repo: &str) -> String {
    let o = run(sv().args(args).args(["--repo", repo]));
    assert_eq!(o.code, 0, "{args:?} on {repo}:\n{}\n{}", o.stdout, o.stderr);
    o.stdout
}

/// A vault with cheap key derivation and 256 KiB packs, so small data spans several packs.
fn init_small_packs(repo: &str) {
    ok(
        &[
            "init",
            "--kdf-memory-kib",
            "1024",
            "--kdf-iterations",
            "1",
            "--pack-size",
            "256KiB",
        ],
        repo,
    );
}

fn write_night(src: &Path, night: u64) {
    fs::create_dir_all(src.join("SiteDBServer")).unwrap();
    fs::write(
        src.join("SiteDBServer/CM_CEN.mdf"),
        random_bytes(100 + night, 300_000),
    )
    .unwrap();
    fs::write(src.join("smsbkup.log"), format!("night {night}\n")).unwrap();
    fs::write(src.join("static.bin"), random_bytes(7, 150_000)).unwrap();
}

#[test]
fn full_cycle_on_each_cloud_service() {
    for (name, base) in services() {
        let repo = fresh(&base, "cycle");
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("site");
        init_small_packs(&repo);
        let mut ids = Vec::new();
        for night in 1..=3u64 {
            write_night(&src, night);
            let out = ok(
                &[
                    "backup",
                    "--json",
                    "--time",
                    &format!("2026-11-0{night}T03:00:00Z"),
                    src.to_str().unwrap(),
                ],
                &repo,
            );
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            ids.push(v["id"].as_str().unwrap().to_string());
            // Every request is counted: the new packs, index and snapshot went up as puts.
            let req = &v["requests"];
            let added = v["summary"]["bytes_added"].as_u64().unwrap();
            assert!(req["puts"].as_u64().unwrap() >= 3, "{name}: {req}");
            assert!(
                req["bytes_uploaded"].as_u64().unwrap() > added,
                "{name}: {req} vs {added} added"
            );
            assert!(req["lists"].as_u64().unwrap() >= 1, "{name}: {req}");
        }
        // The newest night restores byte-identical from the cloud.
        let target = dir.path().join("restore");
        ok(
            &["restore", "latest", "--target", target.to_str().unwrap()],
            &repo,
        );
        assert_trees_equal(&restored_path(&target, &src), &src);

        // Forget the first two nights and prune: data is freed, the rest stays whole.
        let out = ok(&["forget", "--keep-last", "1", "--prune", "--json"], &repo);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["removed"], 2, "{name}: {out}");
        assert!(
            v["prune"]["bytes_freed"].as_u64().unwrap() > 300_000,
            "{name}: {out}"
        );
        let out = ok(&["check", "--read-data", "--json"], &repo);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["clean"], true, "{name}: {out}");
        assert!(v["packs_read"].as_u64().unwrap() > 0, "{name}: {out}");
        let target2 = dir.path().join("restore2");
        ok(
            &[
                "restore",
                &ids[2][..8],
                "--target",
                target2.to_str().unwrap(),
            ],
            &repo,
        );
        assert_trees_equal(&restored_path(&target2, &src), &src);
        let out = ok(&["stats", "--json"], &repo);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["snapshots"], 1, "{name}: {out}");
        assert_eq!(v["unused_bytes"], 0, "{name}: {out}");
    }
}

#[test]
fn a_second_init_at_the_same_url_is_refused() {
    for (name, base) in services() {
        let repo = fresh(&base, "twice");
        let args = ["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"];
        ok(&args, &repo);
        let o = run(sv().args(args).args(["--repo", &repo]));
        assert_eq!(o.code, 1, "{name}: {}", o.stderr);
        assert!(
            o.stderr.contains("already holds a vault"),
            "{name}: {}",
            o.stderr
        );
        // And the first vault still opens.
        ok(&["snapshots"], &repo);
    }
}

#[test]
fn an_empty_prefix_is_not_a_vault_and_bad_options_are_named() {
    for (name, base) in services() {
        let repo = fresh(&base, "empty");
        let o = run(sv().args(["snapshots", "--repo", &repo]));
        assert_eq!(o.code, 1, "{name}: {}", o.stderr);
        assert!(
            o.stderr.contains("is not a sitevault vault"),
            "{name}: {}",
            o.stderr
        );
        let o = run(sv().args(["snapshots", "--repo", &repo, "--option", "no_such_key=1"]));
        assert_eq!(o.code, 1, "{name}: {}", o.stderr);
        assert!(o.stderr.contains("no_such_key"), "{name}: {}", o.stderr);
    }
}

#[test]
fn repository_urls_are_checked_before_anything_is_contacted() {
    for (repo, needle) in [
        ("ftp://host/x", "unknown scheme ftp://"),
        ("s3:///prefix", "names no bucket"),
        ("az://", "names no bucket or container"),
    ] {
        let o = run(sv().args(["snapshots", "--repo", repo]));
        assert_eq!(o.code, 1, "{repo}: {}", o.stderr);
        assert!(o.stderr.contains(needle), "{repo}: {}", o.stderr);
    }
    let o = run(sv().args(["snapshots", "--repo", "s3://b/p", "--option", "novalue"]));
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("KEY=VALUE"), "{}", o.stderr);
}

/// The lock protocol on real services: a backup started while prune holds its exclusive
/// lock waits for it, then both succeed and the vault checks clean.
#[test]
fn a_backup_waits_for_a_prune_on_each_cloud_service() {
    use crate::common::{Paused, Watched};
    use std::ffi::OsStr;
    for (name, base) in services() {
        let repo = fresh(&base, "race");
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("site");
        init_small_packs(&repo);
        for night in 1..=2u64 {
            write_night(&src, night);
            ok(&["backup", src.to_str().unwrap()], &repo);
        }
        ok(&["forget", "--keep-last", "1"], &repo);
        let prune: Vec<&OsStr> = [
            "prune",
            "--max-unused",
            "0%",
            "--lock-wait",
            "0",
            "--repo",
            &repo,
        ]
        .into_iter()
        .map(OsStr::new)
        .collect();
        // Prune stops after its second write, holding its exclusive lock.
        let p = Paused::start(&prune, 2);
        assert!(p.at.is_some(), "{name}: prune stopped midway");
        write_night(&src, 3);
        let backup = Watched::start(&[
            OsStr::new("backup"),
            OsStr::new("--lock-wait"),
            OsStr::new("60s"),
            OsStr::new("--repo"),
            OsStr::new(&repo),
            src.as_os_str(),
        ]);
        backup.wait_for("waiting up to 60s for the vault lock held by prune (exclusive lock");
        let (code, err) = p.resume();
        assert_eq!(code, 0, "{name}: prune: {err}");
        let (code, _) = backup.finish();
        assert_eq!(code, 0, "{name}: backup failed after waiting");
        let out = ok(&["check", "--read-data", "--json"], &repo);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["clean"], true, "{name}: {out}");
        let target = dir.path().join("restore");
        ok(
            &["restore", "latest", "--target", target.to_str().unwrap()],
            &repo,
        );
        assert_trees_equal(&restored_path(&target, &src), &src);
    }
}

/// Objects above `multipart_threshold` go up in parts (each part a request, plus one to start
/// and one to complete the upload), restore byte-identical on many download connections, and
/// check clean. The same data sent as single PUTs to a second vault shows the difference.
#[test]
fn big_packs_go_up_in_parts_on_each_cloud_service() {
    for (name, base) in services() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("site");
        fs::create_dir_all(&src).unwrap();
        // 13 MiB of random bytes: one data pack of three parts (5 + 5 + 3 MiB).
        fs::write(src.join("content.bin"), random_bytes(31, 13 << 20)).unwrap();
        let mut puts = Vec::new();
        for parts in [false, true] {
            let repo = fresh(&base, "multipart");
            let mut opts: Vec<&str> = Vec::new();
            if parts {
                opts.extend([
                    "-o",
                    "multipart_threshold=6MiB",
                    "-o",
                    "multipart_part_size=5MiB",
                ]);
            }
            ok(
                &[
                    &["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"],
                    &opts[..],
                ]
                .concat(),
                &repo,
            );
            let out = ok(
                &[&["backup", "--json", src.to_str().unwrap()], &opts[..]].concat(),
                &repo,
            );
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            let r = &v["requests"];
            assert_eq!(r["multipart_uploads"], u64::from(parts), "{name}: {out}");
            puts.push(r["puts"].as_u64().unwrap());
            let target = dir.path().join(format!("restore-{parts}"));
            let out = ok(
                &[
                    "restore",
                    "latest",
                    "--json",
                    "-o",
                    "download_connections=5",
                    "--target",
                    target.to_str().unwrap(),
                ],
                &repo,
            );
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert!(v["requests"]["range_gets"].as_u64().unwrap() >= 1, "{out}");
            assert_trees_equal(&restored_path(&target, &src), &src);
            let out = ok(&["check", "--read-data", "--json"], &repo);
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(v["clean"], true, "{name}: {out}");
        }
        // Three parts, one request to start and one to complete, instead of one PUT.
        assert_eq!(puts[1], puts[0] + 4, "{name}: puts {puts:?}");
    }
}

#[test]
fn storage_limits_outside_the_services_ranges_are_refused() {
    for (opt, needle) in [
        ("multipart_part_size=1MiB", "give a size from 5MiB to 4GiB"),
        ("multipart_threshold=lots", "multipart_threshold"),
        (
            "download_connections=0",
            "download_connections=\"0\": give a number from 1 to 64",
        ),
        ("connections=65", "give a number from 1 to 64"),
    ] {
        let o = run(sv().args(["snapshots", "--repo", "s3://b/p", "-o", opt]));
        assert_eq!(o.code, 1, "{opt}: {}", o.stderr);
        assert!(o.stderr.contains(needle), "{opt}: {}", o.stderr);
    }
    // A folder vault takes the transfer limits and names any cloud key as a mistake.
    let dir = tempfile::tempdir().unwrap();
    let vault = dir.path().join("vault");
    crate::common::init_vault(&vault);
    let o = run(sv()
        .args([
            "snapshots",
            "-o",
            "connections=4",
            "-o",
            "download_connections=6",
            "--repo",
        ])
        .arg(&vault));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = run(sv()
        .args(["snapshots", "-o", "aws_region=eu-west-1", "--repo"])
        .arg(&vault));
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr
            .contains("is a folder: option \"aws_region\" applies only to s3:// and az:// vaults"),
        "{}",
        o.stderr
    );
}

/// Two site servers back up into one bucket at the same moment, sharing much of their data (so
/// both race to store the same chunks), then one prunes while the other backs up again. Every
/// run succeeds, no snapshot loses data, and the vault checks clean.
#[test]
fn two_hosts_write_one_vault_at_once_on_each_cloud_service() {
    let spawn = |args: Vec<String>| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("sitevault"))
            .env_remove("SITEVAULT_REPOSITORY")
            .env_remove("SITEVAULT_PASSWORD_FILE")
            .env("SITEVAULT_PASSWORD", crate::common::PASSWORD)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn sitevault")
    };
    let finish = |c: std::process::Child, what: &str| {
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    for (name, base) in services() {
        let repo = fresh(&base, "hosts");
        let dir = tempfile::tempdir().unwrap();
        init_small_packs(&repo);
        let site = |host: &str, night: u64| {
            let src = dir.path().join(host);
            fs::create_dir_all(src.join("SCCMContentLib")).unwrap();
            // Shared content (the same package on both sites) and each site's own database.
            for i in 0..4 {
                fs::write(
                    src.join(format!("SCCMContentLib/pkg{i}.cab")),
                    random_bytes(500 + i, 400_000),
                )
                .unwrap();
            }
            fs::write(
                src.join("CM.mdf"),
                random_bytes(host.len() as u64 * 1000 + night, 600_000),
            )
            .unwrap();
            src
        };
        let backup = |host: &str, src: &Path| {
            spawn(
                [
                    "backup",
                    "--host",
                    host,
                    "--lock-wait",
                    "60s",
                    "--repo",
                    &repo,
                    src.to_str().unwrap(),
                ]
                .map(String::from)
                .to_vec(),
            )
        };
        let (a, b) = (site("site-a", 1), site("site-bb", 1));
        let (pa, pb) = (backup("site-a", &a), backup("site-bb", &b));
        finish(pa, &format!("{name}: backup site-a"));
        finish(pb, &format!("{name}: backup site-bb"));
        let b = site("site-bb", 2);
        ok(&["backup", "--host", "site-bb", b.to_str().unwrap()], &repo);
        // Night 2 of site-a backs up while site-bb's admin forgets night 1 and prunes it.
        let a2 = site("site-a", 2);
        let pa = backup("site-a", &a2);
        let pp = spawn(
            [
                "forget",
                "--host",
                "site-bb",
                "--keep-last",
                "1",
                "--prune",
                "--lock-wait",
                "60s",
                "--repo",
                &repo,
            ]
            .map(String::from)
            .to_vec(),
        );
        finish(pa, &format!("{name}: backup site-a night 2"));
        finish(pp, &format!("{name}: forget --prune"));
        let out = ok(&["check", "--read-data", "--json"], &repo);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["clean"], true, "{name}: {out}");
        let out = ok(&["snapshots", "--json"], &repo);
        let snaps: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        assert_eq!(snaps.len(), 3, "{name}: {out}");
        for (host, src) in [("site-a", &a2), ("site-bb", &b)] {
            let target = dir.path().join(format!("restore-{host}"));
            ok(
                &[
                    "restore",
                    "latest",
                    "--host",
                    host,
                    "--target",
                    target.to_str().unwrap(),
                ],
                &repo,
            );
            assert_trees_equal(&restored_path(&target, src), src);
        }
    }
}
