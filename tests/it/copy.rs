//! `copy`: snapshots move between vaults with different keys, only what the destination
//! lacks, idempotently, and a copy killed after any of its writes resumes cleanly. The same
//! cycle runs against the S3 and Azure emulators when `.ci/run` started them.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;

use crate::cloud::{azure_and_s3, fresh};
use crate::common::{Paused, assert_trees_equal, init_vault, random_bytes, restored_path, run, sv};

fn night(src: &Path, n: u64) {
    fs::create_dir_all(src.join("db")).unwrap();
    fs::write(src.join("db/site.mdf"), random_bytes(500 + n, 200_000)).unwrap();
    fs::write(src.join("static.bin"), random_bytes(9, 120_000)).unwrap();
    fs::write(src.join("night.txt"), format!("night {n}\n")).unwrap();
}

fn ok(args: &[&str]) -> String {
    let o = run(sv().args(args));
    assert_eq!(o.code, 0, "{args:?}:\n{}\n{}", o.stdout, o.stderr);
    o.stdout
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(args)).expect("JSON")
}

fn init(repo: &str) {
    if repo.contains("://") {
        ok(&[
            "init",
            "--repo",
            repo,
            "--kdf-memory-kib",
            "1024",
            "--kdf-iterations",
            "1",
        ]);
    } else {
        init_vault(Path::new(repo));
    }
}

/// Three nights in a local source vault; returns the source folder.
fn source(dir: &Path, repo: &str) -> std::path::PathBuf {
    let src = dir.join("site");
    init(repo);
    for n in 1..=3u64 {
        night(&src, n);
        ok(&[
            "backup",
            "--repo",
            repo,
            "--time",
            &format!("2026-11-0{n}T03:00:00Z"),
            src.to_str().unwrap(),
        ]);
    }
    src
}

fn times(repo: &str) -> Vec<String> {
    let v = json(&["snapshots", "--json", "--repo", repo]);
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["time"].as_str().unwrap().to_string())
        .collect()
}

fn assert_latest_restores(repo: &str, src: &Path, scratch: &Path) {
    let target = scratch.join(format!("restore-{}", times(repo).len()));
    let _ = fs::remove_dir_all(&target);
    ok(&[
        "restore",
        "latest",
        "--repo",
        repo,
        "--target",
        target.to_str().unwrap(),
    ]);
    assert_trees_equal(&restored_path(&target, src), src);
}

/// Copy, copy again (nothing to do), add a night, copy only that; restore and check the copy.
fn cycle(src_repo: &str, dst_repo: &str, src: &Path, scratch: &Path) {
    init(dst_repo);
    let v = json(&["copy", "--json", "--from", src_repo, "--repo", dst_repo]);
    assert_eq!(v["copied"].as_array().unwrap().len(), 3, "{v}");
    assert!(v["packs_added"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(times(dst_repo), times(src_repo));
    assert_latest_restores(dst_repo, src, scratch);

    let v = json(&["copy", "--json", "--from", src_repo, "--repo", dst_repo]);
    assert_eq!(v["copied"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["already_there"].as_array().unwrap().len(), 3, "{v}");
    assert_eq!(v["packs_added"], 0, "{v}");

    let c = json(&["check", "--read-data", "--json", "--repo", dst_repo]);
    assert_eq!(c["clean"], true, "{c}");
}

#[test]
fn copy_between_local_vaults_with_different_keys() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a").display().to_string();
    let b = dir.path().join("b").display().to_string();
    let src = source(dir.path(), &a);
    cycle(&a, &b, &src, dir.path());

    // A new night in the source: only it is copied, and only its new data is stored.
    night(&src, 4);
    ok(&[
        "backup",
        "--repo",
        &a,
        "--time",
        "2026-11-04T03:00:00Z",
        src.to_str().unwrap(),
    ]);
    let v = json(&["copy", "--json", "--from", &a, "--repo", &b]);
    assert_eq!(v["copied"].as_array().unwrap().len(), 1, "{v}");
    let added = v["bytes_added"].as_u64().unwrap();
    assert!(
        added < 200_000 + 50_000,
        "only the new database file is new: {added} bytes added"
    );
    assert_latest_restores(&b, &src, dir.path());

    // Named snapshots only; and a vault cannot be copied into itself.
    let c = dir.path().join("c").display().to_string();
    init(&c);
    let first = times(&a)[0].clone();
    let ids = json(&["snapshots", "--json", "--repo", &a]);
    let first_id = ids[0]["id"].as_str().unwrap()[..8].to_string();
    let v = json(&["copy", "--json", "--from", &a, "--repo", &c, &first_id]);
    assert_eq!(v["copied"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(times(&c), vec![first]);
    let o = run(sv().args(["copy", "--from", &a, "--repo", &a]));
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("same vault"), "{}", o.stderr);
}

/// Kill the copy after its nth write for several n; each time the destination checks clean
/// and holds only whole snapshots, and the next copy finishes the job.
fn interrupted(src_repo: &str, dst_repo: &str, src: &Path, scratch: &Path) {
    init(dst_repo);
    let args: Vec<&OsStr> = ["copy", "--from", src_repo, "--repo", dst_repo]
        .into_iter()
        .map(OsStr::new)
        .collect();
    let mut kills = 0;
    for n in 2..=5u64 {
        let p = Paused::start(&args, n);
        if p.at.is_none() {
            let (code, err) = p.resume();
            assert_eq!(code, 0, "copy without a kill: {err}");
            break;
        }
        p.kill();
        kills += 1;
        let c = json(&["check", "--json", "--repo", dst_repo]);
        assert_eq!(c["clean"], true, "after a kill at write {n}: {c}");
        // Whatever snapshots exist are whole: they restore.
        if !times(dst_repo).is_empty() {
            let v = json(&["snapshots", "--json", "--repo", dst_repo]);
            for s in v.as_array().unwrap() {
                let id = &s["id"].as_str().unwrap()[..12];
                let t = scratch.join(format!("kill-{n}-{id}"));
                ok(&[
                    "restore",
                    id,
                    "--repo",
                    dst_repo,
                    "--target",
                    t.to_str().unwrap(),
                ]);
            }
        }
    }
    assert!(kills >= 2, "the copy was killed only {kills} times");
    let v = json(&["copy", "--json", "--from", src_repo, "--repo", dst_repo]);
    assert!(v["copied"].as_array().unwrap().len() <= 3, "{v}");
    assert_eq!(times(dst_repo), times(src_repo));
    assert_latest_restores(dst_repo, src, scratch);
    let c = json(&["check", "--read-data", "--json", "--repo", dst_repo]);
    assert_eq!(c["clean"], true, "{c}");
}

#[test]
fn an_interrupted_local_copy_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a").display().to_string();
    let b = dir.path().join("b").display().to_string();
    let src = source(dir.path(), &a);
    interrupted(&a, &b, &src, dir.path());
}

/// Local → Azure → S3, and an interrupted copy to each service, when the emulators run.
#[test]
fn copy_local_to_azure_to_s3_and_resume_on_each() {
    let Some((az, s3)) = azure_and_s3("copy_local_to_azure_to_s3_and_resume_on_each") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local").display().to_string();
    let src = source(dir.path(), &local);
    let az_repo = fresh(&az, "copy");
    let s3_repo = fresh(&s3, "copy");
    cycle(&local, &az_repo, &src, dir.path());
    cycle(&az_repo, &s3_repo, &src, dir.path());
    interrupted(&local, &fresh(&az, "resume"), &src, dir.path());
    interrupted(&local, &fresh(&s3, "resume"), &src, dir.path());
}

/// `[vault] copy_to`: after each afterbackup run the new recovery point is in every target,
/// retention applies there too, and a target that fails makes the run exit 3 while the
/// local recovery point stands.
#[test]
fn afterbackup_copies_each_recovery_point_to_its_targets() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let site = root.join("ConfigMgr_Backup/CENBackup");
    fs::create_dir_all(site.join("SiteServer")).unwrap();
    fs::create_dir_all(site.join("SiteDBServer")).unwrap();
    fs::write(
        root.join("ConfigMgr_Backup/smsbkup.log"),
        "STATMSG: ID=5034 SEV=I\r\nSTATMSG: ID=5035 SEV=I\r\n",
    )
    .unwrap();
    let local = root.join("vault");
    let offsite = root.join("offsite");
    init_vault(&local);
    init_vault(&offsite);
    let missing = root.join("no-such-vault");
    let write_config = |targets: &[&Path]| {
        let list: Vec<String> = targets
            .iter()
            .map(|t| format!("'{}'", t.display()))
            .collect();
        fs::write(
            root.join("job.toml"),
            format!(
                "[vault]\nrepository = '{}'\ncopy_to = [{}]\n[site]\ncode = 'CEN'\nbackup_folder = '{}'\n[retention]\nkeep_last = 2\nprune = true\n[log]\nfile = '{}'\n",
                local.display(),
                list.join(", "),
                site.display(),
                root.join("run.log").display()
            ),
        )
        .unwrap();
    };
    write_config(&[&offsite]);
    let job = root.join("job.toml");
    for n in 1..=3u64 {
        fs::write(
            site.join("SiteDBServer/CM_CEN.mdf"),
            random_bytes(n, 100_000),
        )
        .unwrap();
        let v = json(&[
            "afterbackup",
            "--json",
            "--config",
            job.to_str().unwrap(),
            "--time",
            &format!("2026-11-0{n}T03:00:00Z"),
        ]);
        assert_eq!(v["outcome"], "ok", "{v}");
        assert_eq!(v["copies"][0]["ok"], true, "{v}");
    }
    let want = vec![
        "2026-11-02T03:00:00Z".to_string(),
        "2026-11-03T03:00:00Z".to_string(),
    ];
    assert_eq!(times(local.to_str().unwrap()), want);
    assert_eq!(
        times(offsite.to_str().unwrap()),
        want,
        "retention ran on the copy"
    );
    let c = json(&[
        "check",
        "--read-data",
        "--json",
        "--repo",
        offsite.to_str().unwrap(),
    ]);
    assert_eq!(c["clean"], true, "{c}");

    // A target that cannot be opened: logged, exit 3, the local point and the good copy stand.
    write_config(&[&missing, &offsite]);
    let o = run(sv().args([
        "afterbackup",
        "--json",
        "--config",
        job.to_str().unwrap(),
        "--time",
        "2026-11-04T03:00:00Z",
    ]));
    assert_eq!(o.code, 3, "{}\n{}", o.stdout, o.stderr);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["copies"][0]["ok"], false, "{v}");
    assert_eq!(v["copies"][1]["ok"], true, "{v}");
    assert!(o.stderr.contains("copy to"), "{}", o.stderr);
    let log = fs::read_to_string(root.join("run.log")).unwrap();
    assert!(
        log.contains(&format!("ERROR  copy to {} failed", missing.display())),
        "{log}"
    );
    assert_eq!(times(local.to_str().unwrap()).len(), 2);
    assert_eq!(
        times(offsite.to_str().unwrap()).last().unwrap(),
        "2026-11-04T03:00:00Z"
    );
}

/// afterbackup with its vault on Azure and a copy on S3: `[vault.options]` and
/// `[vault.copy_options."<url>"]` reach their stores (an unknown key there fails only that
/// target, exit 3, named in the log), and the S3 copy restores byte-identical.
#[test]
fn afterbackup_archives_to_azure_and_copies_to_s3() {
    let Some((az, s3)) = azure_and_s3("afterbackup_archives_to_azure_and_copies_to_s3") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let site = root.join("ConfigMgr_Backup/CENBackup");
    fs::create_dir_all(site.join("SiteServer")).unwrap();
    fs::create_dir_all(site.join("SiteDBServer")).unwrap();
    fs::write(site.join("SiteServer/site.ini"), "[site]\n").unwrap();
    fs::write(
        root.join("ConfigMgr_Backup/smsbkup.log"),
        "STATMSG: ID=5035 SEV=I\r\n",
    )
    .unwrap();
    let (az_repo, s3_repo) = (fresh(&az, "afterbackup"), fresh(&s3, "afterbackup"));
    init(&az_repo);
    init(&s3_repo);
    let job = root.join("job.toml");
    let write_config = |s3_option: &str| {
        fs::write(
            &job,
            format!(
                "[vault]\nrepository = '{az_repo}'\ncopy_to = ['{s3_repo}']\n[vault.options]\ndownload_connections = '4'\n[vault.copy_options.'{s3_repo}']\n{s3_option}\n[site]\ncode = 'CEN'\nbackup_folder = '{}'\n[log]\nfile = '{}'\n",
                site.display(),
                root.join("run.log").display()
            ),
        )
        .unwrap();
    };
    write_config("connections = '2'");
    fs::write(
        site.join("SiteDBServer/CM_CEN.mdf"),
        random_bytes(77, 300_000),
    )
    .unwrap();
    let v = json(&["afterbackup", "--json", "--config", job.to_str().unwrap()]);
    assert_eq!(v["outcome"], "ok", "{v}");
    assert_eq!(v["copies"][0]["ok"], true, "{v}");
    assert!(
        v["copies"][0]["requests"]["puts"].as_u64().unwrap() >= 3,
        "{v}"
    );
    assert_eq!(times(&az_repo).len(), 1);
    assert_eq!(times(&s3_repo).len(), 1);
    assert_latest_restores(&s3_repo, &site, root);

    write_config("no_such_key = '1'");
    let o = run(sv().args(["afterbackup", "--json", "--config", job.to_str().unwrap()]));
    assert_eq!(o.code, 3, "{}\n{}", o.stdout, o.stderr);
    let log = fs::read_to_string(root.join("run.log")).unwrap();
    assert!(
        log.contains("ERROR  copy to") && log.contains("no_such_key"),
        "{log}"
    );
    assert_eq!(times(&az_repo).len(), 2);
    assert_eq!(times(&s3_repo).len(), 1);
}

/// A folder of small files is read from the source in a few range reads, not one per file
/// (on S3 and Azure every request is billed).
#[test]
fn copy_reads_a_folder_of_small_files_in_few_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let src = dir.path().join("site/SCCMContentLib");
    fs::create_dir_all(&src).unwrap();
    for i in 0..60 {
        fs::write(
            src.join(format!("{i:03}.xml")),
            random_bytes(900 + i, 10_000),
        )
        .unwrap();
    }
    init_vault(&a);
    init_vault(&b);
    ok(&[
        "backup",
        "--repo",
        a.to_str().unwrap(),
        src.to_str().unwrap(),
    ]);
    let v = json(&[
        "copy",
        "--json",
        "--from",
        a.to_str().unwrap(),
        "--repo",
        b.to_str().unwrap(),
    ]);
    // One range read for the 60 files' chunks, one per tree on the way down.
    let trees = src.components().count() as u64;
    let reads = v["requests_source"]["range_gets"].as_u64().unwrap();
    assert!(
        reads <= trees + 1,
        "{reads} range reads for {trees} trees: {v}"
    );
    assert_latest_restores(b.to_str().unwrap(), &src, dir.path());
}
