//! Tamper evidence on every backend (formats/ §9.3): each snapshot names its predecessor of the
//! same host and label, forget (and retention, and repair) records what it removed, and `check`
//! names a snapshot deleted behind sitevault's back, on a real local vault through the binary.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{Out, PASSWORD, init_vault, run, sv};

struct Fx {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    src: PathBuf,
}

fn show(o: &Out) -> String {
    format!(
        "exit code {}\n--- stdout:\n{}\n--- stderr:\n{}",
        o.code, o.stdout, o.stderr
    )
}

fn ok(args: &[&str], repo: &Path) -> Out {
    let o = run(sv().args(args).arg("--repo").arg(repo));
    assert_eq!(o.code, 0, "{args:?}:\n{}", show(&o));
    o
}

fn json(args: &[&str], repo: &Path) -> Value {
    let o = ok(args, repo);
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{args:?} --json: {e}\n{}", show(&o)))
}

impl Fx {
    fn new() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("vault");
        init_vault(&repo);
        let src = dir.path().join("src");
        fs::create_dir_all(&src).unwrap();
        Fx {
            _dir: dir,
            repo,
            src,
        }
    }

    /// A backup at `time` of host `host`; the file changes each night. Returns the full id.
    fn backup(&self, host: &str, time: &str) -> String {
        fs::write(self.src.join("night.txt"), time).unwrap();
        let v = json(
            &[
                "backup",
                "--json",
                "--host",
                host,
                "--time",
                time,
                self.src.to_str().unwrap(),
            ],
            &self.repo,
        );
        v["id"].as_str().unwrap().to_string()
    }

    /// id -> previous, from `snapshots --json`.
    fn previous(&self) -> Vec<(String, Option<String>)> {
        chain(&self.repo)
    }

    fn check(&self) -> (Out, Value) {
        let o = run(sv()
            .args(["check", "--json", "--lock-wait", "0", "--repo"])
            .arg(&self.repo));
        let v: Value = serde_json::from_str(&o.stdout)
            .unwrap_or_else(|e| panic!("check --json: {e}\n{}", show(&o)));
        (o, v)
    }

    fn forget_records(&self) -> usize {
        match fs::read_dir(self.repo.join("forgets")) {
            Ok(d) => d.count(),
            Err(_) => 0,
        }
    }
}

/// (id, previous) of every snapshot, oldest first, from `snapshots --json`.
fn chain(repo: &Path) -> Vec<(String, Option<String>)> {
    json(&["snapshots", "--json"], repo)
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["previous"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn vanished(v: &Value) -> Vec<(String, String)> {
    v["vanished_snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["missing"].as_str().unwrap().to_string(),
                b["successor"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn each_snapshot_names_its_predecessor_of_the_same_host_and_label() {
    let f = Fx::new();
    let a1 = f.backup("alpha", "2026-11-01T02:00:00Z");
    let b1 = f.backup("beta", "2026-11-01T03:00:00Z");
    let a2 = f.backup("alpha", "2026-11-02T02:00:00Z");
    // A labelled backup of the same host is a chain of its own.
    fs::write(f.src.join("night.txt"), "labelled").unwrap();
    let l1 = json(
        &[
            "backup",
            "--json",
            "--host",
            "alpha",
            "--label",
            "CEN",
            "--time",
            "2026-11-02T04:00:00Z",
            f.src.to_str().unwrap(),
        ],
        &f.repo,
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b2 = f.backup("beta", "2026-11-03T03:00:00Z");
    assert_eq!(
        f.previous(),
        vec![
            (a1.clone(), None),
            (b1.clone(), None),
            (a2.clone(), Some(a1.clone())),
            (l1, None),
            (b2, Some(b1)),
        ]
    );
    let (o, v) = f.check();
    assert_eq!(o.code, 0, "{}", show(&o));
    assert_eq!(vanished(&v), vec![], "{}", show(&o));
}

#[test]
fn a_snapshot_deleted_outside_sitevault_is_named_by_check() {
    let f = Fx::new();
    let a = f.backup("alpha", "2026-11-01T02:00:00Z");
    let b = f.backup("alpha", "2026-11-02T02:00:00Z");
    let c = f.backup("alpha", "2026-11-03T02:00:00Z");
    let other = f.backup("beta", "2026-11-02T03:00:00Z");

    // The attacker (or a lossy store) removes one snapshot file and nothing else.
    fs::remove_file(f.repo.join("snapshots").join(&b)).unwrap();
    let (o, v) = f.check();
    assert_eq!(o.code, 1, "{}", show(&o));
    assert_eq!(vanished(&v), vec![(b.clone(), c.clone())], "{}", show(&o));
    assert_eq!(v["vanished_snapshots"][0]["host"], "alpha");

    let o = run(sv()
        .args(["check", "--lock-wait", "0", "--repo"])
        .arg(&f.repo));
    assert_eq!(o.code, 1, "{}", show(&o));
    let line = o
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("error: snapshot {b}: ")))
        .unwrap_or_else(|| panic!("check names the deleted snapshot:\n{}", show(&o)));
    assert!(
        line.contains("no forget record names it")
            && line.contains(&c[..8])
            && line.contains("deleted outside sitevault"),
        "{line}"
    );
    assert!(!o.stdout.contains(&other[..8]), "{}", show(&o));

    // The oldest one too: both gaps are reported.
    fs::remove_file(f.repo.join("snapshots").join(&a)).unwrap();
    let (o, v) = f.check();
    assert_eq!(o.code, 1, "{}", show(&o));
    // `a` was b's predecessor, but b is gone too: only what a remaining snapshot names shows.
    assert_eq!(vanished(&v), vec![(b, c)], "{}", show(&o));
}

#[test]
fn forget_retention_and_prune_leave_a_clean_chain() {
    let f = Fx::new();
    let ids: Vec<String> = (1..=5)
        .map(|d| f.backup("alpha", &format!("2026-11-0{d}T02:00:00Z")))
        .collect();
    assert_eq!(f.forget_records(), 0);

    // An explicit id from the middle, then a policy with --prune.
    ok(&["forget", &ids[2][..8]], &f.repo);
    assert_eq!(f.forget_records(), 1);
    let (o, v) = f.check();
    assert_eq!(o.code, 0, "{}", show(&o));
    assert_eq!(vanished(&v), vec![]);

    ok(&["forget", "--keep-last", "1", "--prune"], &f.repo);
    assert_eq!(
        f.forget_records(),
        2,
        "one record per forget run, kept by prune"
    );
    ok(&["prune"], &f.repo);
    assert_eq!(f.forget_records(), 2);
    let (o, v) = f.check();
    assert_eq!(o.code, 0, "{}", show(&o));
    assert_eq!(vanished(&v), vec![]);

    // A dry run records nothing; forgetting nothing records nothing.
    ok(&["forget", "--keep-last", "1", "--dry-run"], &f.repo);
    ok(&["forget", "--keep-last", "5"], &f.repo);
    assert_eq!(f.forget_records(), 2);

    // Which record names what: the newest remaining snapshot's predecessor is in the second.
    let records = {
        let store =
            sitevault::open_store(f.repo.to_str().unwrap(), false, &Default::default()).unwrap();
        let vault = sitevault::Vault::open(store, Some(PASSWORD.as_bytes())).unwrap();
        sitevault::forget::scan_forgets(&vault).unwrap().records
    };
    assert_eq!(records.len(), 2);
    let path_of = |names: &str| {
        let (id, _) = records
            .iter()
            .find(|(_, r)| r.snapshots.iter().any(|s| s.to_hex() == names))
            .unwrap();
        f.repo.join("forgets").join(id.to_hex())
    };
    let check_text = || {
        run(sv()
            .args(["check", "--lock-wait", "0", "--repo"])
            .arg(&f.repo))
    };

    // Damaged, and it may name the vanished predecessor: both are errors.
    let needed = path_of(&ids[3]);
    let good = fs::read(&needed).unwrap();
    fs::write(&needed, b"garbage").unwrap();
    let o = check_text();
    assert_eq!(o.code, 1, "{}", show(&o));
    let name = needed.file_name().unwrap().to_str().unwrap();
    assert!(
        o.stdout
            .lines()
            .any(|l| l.starts_with(&format!("error: forgets/{name}: "))),
        "{}",
        show(&o)
    );
    assert!(
        o.stdout.contains(&format!("error: snapshot {}: ", ids[3]))
            && o.stdout.contains("unless a damaged forget record names it"),
        "{}",
        show(&o)
    );
    fs::write(&needed, good).unwrap();

    // Damaged but explaining nothing missing (a torn upload of a forget that deleted nothing):
    // a warning, and prune removes it.
    let spare = path_of(&ids[2]);
    fs::write(&spare, b"torn").unwrap();
    let o = check_text();
    assert_eq!(o.code, 0, "{}", show(&o));
    let name = spare.file_name().unwrap().to_str().unwrap();
    assert!(
        o.stdout
            .lines()
            .any(|l| l.starts_with(&format!("warning: forgets/{name}: "))
                && l.contains("torn upload")),
        "{}",
        show(&o)
    );
    let o = run(sv().args(["prune", "--json", "--repo"]).arg(&f.repo));
    assert_eq!(o.code, 0, "{}", show(&o));
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(
        v["forget_records_damaged_deleted"],
        serde_json::json!([name]),
        "{v}"
    );
    assert_eq!(f.forget_records(), 1);
    let o = check_text();
    assert_eq!(o.code, 0, "{}", show(&o));
    assert!(!o.stdout.contains("forgets/"), "{}", show(&o));
}

#[test]
fn copies_chain_to_their_predecessors_in_the_destination() {
    let f = Fx::new();
    for d in 1..=3 {
        f.backup("alpha", &format!("2026-11-0{d}T02:00:00Z"));
    }
    let dst = f._dir.path().join("copy");
    init_vault(&dst);
    // The newest first, then the rest: the chain is still built in the destination's ids.
    let newest = f.previous()[2].0.clone();
    let from = f.repo.to_str().unwrap().to_string();
    ok(&["copy", "--from", &from, &newest[..8]], &dst);
    ok(&["copy", "--from", &from], &dst);
    let here = chain(&dst);
    assert_eq!(here.len(), 3);
    assert_eq!(here[0].1, None);
    assert_eq!(here[1].1.as_deref(), Some(here[0].0.as_str()));
    // Copied first, when it was alone there: it names nothing rather than a foreign id.
    assert_eq!(here[2].1, None);
    let o = run(sv().args(["check", "--lock-wait", "0", "--repo"]).arg(&dst));
    assert_eq!(o.code, 0, "{}", show(&o));
}
