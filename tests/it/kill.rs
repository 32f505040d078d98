//! The kill matrix: `backup`, `forget --prune`, `prune` and `copy` are killed with SIGKILL
//! before and after every one of their writes (`SITEVAULT_FAILPOINT`), and at random moments.
//! After each kill `check --read-data` passes, every snapshot that existed before (and is meant
//! to survive) restores byte-identical, and the next run of the same command succeeds and leaves
//! a clean vault holding exactly what it should.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    PASSWORD, assert_trees_equal, copy_tree, random_bytes, restored_path, run, sv,
};

/// Cheap key derivation and small packs, so a few MiB of small files make dozens of writes.
const INIT: [&str; 6] = [
    "--kdf-memory-kib",
    "8",
    "--kdf-iterations",
    "1",
    "--pack-size",
    "64KiB",
];

/// Random-timing kills that must hit the process before it finishes, per command.
const RANDOM_KILLS: usize = 10;

/// Every kind of write a command can be killed at.
const KINDS: [&str; 9] = [
    "put data/",
    "put index/",
    "put snapshots/",
    "put forgets/",
    "delete data/",
    "delete index/",
    "delete snapshots/",
    "put locks/",
    "delete locks/",
];

fn init(repo: &Path) {
    let o = run(sv().arg("init").arg("--repo").arg(repo).args(INIT));
    assert_eq!(o.code, 0, "init: {}", o.stderr);
}

/// Night `night`'s source: `files` files of 10–20 KiB (one chunk each). A file keeps its
/// content unless `changed(i)`, when it gets content of its own for this night.
fn write_night(src: &Path, night: u64, files: u64, changed: impl Fn(u64) -> bool) {
    for i in 0..files {
        let version = if changed(i) { night } else { 0 };
        let dir = src.join(format!("d{}", i % 5));
        fs::create_dir_all(&dir).unwrap();
        let len = 10_000 + (i as usize * 7_919) % 10_000;
        fs::write(
            dir.join(format!("f{i:03}.bin")),
            random_bytes(i * 1_000 + version, len),
        )
        .unwrap();
    }
}

fn time(night: u64) -> String {
    format!("2026-01-{night:02}T03:00:00Z")
}

fn backup(repo: &Path, src: &Path, night: u64) {
    let o = run(sv()
        .args(["backup", "--time", &time(night), "--repo"])
        .arg(repo)
        .arg(src));
    assert_eq!(o.code, 0, "backup night {night}: {}", o.stderr);
}

/// The vault's snapshots as (time, source path), sorted.
fn snapshots(repo: &Path) -> Vec<(String, PathBuf)> {
    let vault = open(repo);
    let mut v: Vec<(String, PathBuf)> = vault
        .list_snapshots()
        .expect("list snapshots")
        .into_iter()
        .map(|(_, s)| (s.time.to_string(), PathBuf::from(&s.paths[0])))
        .collect();
    v.sort();
    v
}

fn open(repo: &Path) -> sitevault::Vault {
    let store = sitevault::open_store(repo.to_str().unwrap(), false, &Default::default())
        .expect("open the vault's folder");
    sitevault::Vault::open(store, Some(PASSWORD.as_bytes())).expect("open the vault")
}

/// `check --read-data` exits 0. It must not wait: the killed process's lock is stale.
fn assert_check(repo: &Path, when: &str) {
    let o = run(sv()
        .args(["check", "--read-data", "--lock-wait", "0", "--repo"])
        .arg(repo));
    assert_eq!(
        o.code, 0,
        "check --read-data {when}:\n{}\n{}",
        o.stdout, o.stderr
    );
}

/// Restore (in-process) every snapshot of the vault whose time is in `times`, each into its own
/// folder, and compare it with its source (the path it was backed up from). Returns how many
/// snapshots were restored.
fn assert_restores(repo: &Path, times: &BTreeSet<String>, scratch: &Path, when: &str) -> usize {
    let vault = open(repo);
    let index = vault
        .load_index()
        .unwrap_or_else(|e| panic!("load index {when}: {e}"));
    let mut n = 0;
    for (id, s) in vault
        .list_snapshots()
        .unwrap_or_else(|e| panic!("list snapshots {when}: {e}"))
    {
        if !times.contains(&s.time.to_string()) {
            continue;
        }
        let target = scratch.join(format!("restore-{}", id.short()));
        let _ = fs::remove_dir_all(&target);
        let opts =
            sitevault::restore::RestoreOptions::new(sitevault::Destination::Target(target.clone()));
        let plan = sitevault::restore(&vault, &index, &s, &opts)
            .unwrap_or_else(|e| panic!("restore {} ({}) {when}: {e}", id.short(), s.time));
        assert!(
            plan.summary.errors.is_empty(),
            "restore {} ({}) {when}: {:?}",
            id.short(),
            s.time,
            plan.summary.errors
        );
        let src = PathBuf::from(&s.paths[0]);
        assert_trees_equal(&restored_path(&target, &src), &src);
        fs::remove_dir_all(&target).unwrap();
        n += 1;
    }
    n
}

/// What a command's matrix did.
#[derive(Default)]
struct Tally {
    before: usize,
    after: usize,
    random: usize,
    /// Random kills that came too late (the process had finished): not counted.
    random_missed: usize,
    /// The most writes a failpoint reached: the writes of an unkilled run.
    writes: u64,
    kinds: BTreeMap<String, usize>,
    unkilled: Duration,
    /// (write number, before/after) pairs a kill reached.
    hit: std::collections::BTreeSet<(u64, &'static str)>,
}

fn reached_label(t: &Tally, n: u64, label: &'static str) -> bool {
    t.hit.contains(&(n, label))
}

impl Tally {
    fn points(&self) -> usize {
        self.before + self.after + self.random
    }

    fn report(&self, name: &str) {
        eprintln!(
            "kill matrix {name}: {} points ({} before, {} after, {} random; {} random kills came too late), \
             {} writes in an unkilled run of {:?}; kills at: {:?}",
            self.points(),
            self.before,
            self.after,
            self.random,
            self.random_missed,
            self.writes,
            self.unkilled,
            KINDS
                .iter()
                .map(|k| (*k, self.kinds.get(*k).copied().unwrap_or(0)))
                .collect::<Vec<_>>()
        );
        let other: Vec<_> = self
            .kinds
            .keys()
            .filter(|k| !KINDS.contains(&k.as_str()))
            .collect();
        assert!(
            other.is_empty(),
            "{name}: writes of unexpected kinds: {other:?}"
        );
    }

    fn assert(&self, name: &str, kinds: &[&str]) {
        self.report(name);
        assert!(
            self.points() >= 50,
            "{name}: only {} kill points",
            self.points()
        );
        assert!(
            self.random >= RANDOM_KILLS,
            "{name}: only {} random kills hit the running process",
            self.random
        );
        for k in kinds {
            assert!(
                self.kinds.contains_key(*k),
                "{name}: no kill at a `{k}` write: {:?}",
                self.kinds
            );
        }
    }
}

/// `put data/ab/abcd…` → `put data/`.
fn kind(write: &str) -> String {
    let (op, name) = write.split_once(' ').unwrap_or((write, ""));
    let folder = name.split_once('/').map_or(name, |(f, _)| f);
    format!("{op} {folder}/")
}

fn spawn(args: &[OsString], failpoint: Option<&str>) -> std::process::Child {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("sitevault"));
    c.env_remove("SITEVAULT_REPOSITORY")
        .env_remove("SITEVAULT_PASSWORD_FILE")
        .env_remove("SITEVAULT_FROM_PASSWORD")
        .env_remove("SITEVAULT_FAILPOINT")
        .env_remove("SITEVAULT_TEST_STOP_AFTER_WRITES")
        .env("SITEVAULT_PASSWORD", PASSWORD)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(f) = failpoint {
        c.env("SITEVAULT_FAILPOINT", f);
    }
    c.spawn().expect("spawn sitevault")
}

/// xorshift64*, seeded, so a failing random point reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A command under test. `templates` are the vaults it works on (copied afresh for each point,
/// in this order); `args` builds its arguments for the copies; `after_kill` checks the copies
/// after a kill, `after_rerun` after the next, unkilled run. Both get the copies, a scratch
/// folder and a description of the point.
struct Matrix<'a> {
    name: &'static str,
    work: &'a Path,
    templates: Vec<PathBuf>,
    args: &'a dyn Fn(&[PathBuf]) -> Vec<OsString>,
    after_kill: &'a dyn Fn(&[PathBuf], &Path, &str),
    after_rerun: &'a dyn Fn(&[PathBuf], &Path, &str),
    seed: u64,
}

impl Matrix<'_> {
    fn fresh(&self, k: usize) -> (PathBuf, Vec<PathBuf>) {
        let dir = self
            .work
            .join(format!("{}-point-{k}", self.name.replace(' ', "-")));
        let _ = fs::remove_dir_all(&dir);
        let vaults: Vec<PathBuf> = self
            .templates
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let v = dir.join(format!("vault{i}"));
                copy_tree(t, &v);
                v
            })
            .collect();
        (dir, vaults)
    }

    /// The checks after a kill, then the next run and the checks after it.
    /// Run once with SITEVAULT_FAILPOINT=`spec`; if the failpoint was reached, check the kill,
    /// count it and verify the vault, and return the write it killed at.
    fn kill_at(&self, t: &mut Tally, k: &mut usize, spec: &str, label: &str) -> Option<String> {
        *k += 1;
        let (dir, vaults) = self.fresh(*k);
        let out = spawn(&(self.args)(&vaults), Some(spec))
            .wait_with_output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let Some(line) = stderr
            .lines()
            .find_map(|l| l.strip_prefix("sitevault-failpoint: "))
        else {
            // It ended before that write: past the end (this time).
            assert!(
                out.status.success(),
                "{} with SITEVAULT_FAILPOINT={spec} failed without reaching it: {:?}\n{stderr}",
                self.name,
                out.status
            );
            fs::remove_dir_all(&dir).unwrap();
            return None;
        };
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGKILL),
            "{} with SITEVAULT_FAILPOINT={spec} was not killed: {:?}\n{stderr}",
            self.name,
            out.status
        );
        // `before write 3: put data/..` → `put data/..`
        let write = line.split_once(": ").map_or(line, |(_, w)| w).to_string();
        *t.kinds.entry(kind(&write)).or_default() += 1;
        match label {
            "before" => t.before += 1,
            _ => t.after += 1,
        }
        let when = format!("after a kill {label} ({spec}: {write})");
        if std::env::var_os("KILL_VERBOSE").is_some() {
            eprintln!("{} {when}", self.name);
        }
        self.verify(&dir, &vaults, &when);
        Some(write)
    }

    fn verify(&self, dir: &Path, vaults: &[PathBuf], when: &str) {
        (self.after_kill)(vaults, dir, when);
        let o = run(sv().args((self.args)(vaults)));
        assert_eq!(
            o.code, 0,
            "{} {when}, the next run failed:\n{}\n{}",
            self.name, o.stdout, o.stderr
        );
        (self.after_rerun)(vaults, dir, &format!("{when}, after the next run"));
        fs::remove_dir_all(dir).unwrap();
    }

    fn run(&self) -> Tally {
        let mut t = Tally::default();
        let mut k = 0;

        // An unkilled run: how long it takes, and that it passes its own checks.
        let (dir, vaults) = self.fresh(k);
        let started = Instant::now();
        let child = spawn(&(self.args)(&vaults), None);
        let out = child.wait_with_output().unwrap();
        t.unkilled = started.elapsed();
        assert!(
            out.status.success(),
            "{} without a kill: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        (self.after_rerun)(&vaults, &dir, "after an unkilled run");
        fs::remove_dir_all(&dir).unwrap();

        // Every write, before and after.
        let mut misses = 0;
        for n in 1.. {
            let mut reached = false;
            // Near the end, a run may make one write fewer than the last (pack boundaries
            // depend on which walker fills a pack first): try a number up to three times
            // before calling it past the end, so the final writes are always killed at.
            for (label, attempt) in ["before", "after"]
                .into_iter()
                .flat_map(|l| (0..3).map(move |a| (l, a)))
            {
                if attempt > 0 && reached_label(&t, n, label) {
                    continue;
                }
                if self
                    .kill_at(&mut t, &mut k, &format!("{label}:{n}"), label)
                    .is_some()
                {
                    t.hit.insert((n, label));
                    reached = true;
                    t.writes = t.writes.max(n);
                }
            }
            // Parallel uploads make the order, and so the count, of writes vary a little from
            // run to run: stop only after two numbers in a row that no run reached.
            if reached {
                misses = 0;
            } else {
                misses += 1;
                if misses == 2 {
                    break;
                }
            }
        }

        // The write at a given number shifts by one from run to run, so a kind of write can fall
        // between the numbers tried: kill at the first write of every kind still missed (a
        // kind the command never writes is simply not reached).
        for kind_name in KINDS {
            if !t.kinds.contains_key(kind_name) {
                for label in ["before", "after"] {
                    self.kill_at(&mut t, &mut k, &format!("{label}:1:{kind_name}"), label);
                }
            }
        }

        // Random moments within an unkilled run's duration.
        let mut rng = Rng(self.seed);
        let mut tries = 0;
        while t.random < RANDOM_KILLS {
            tries += 1;
            assert!(
                tries <= 4 * RANDOM_KILLS,
                "{}: {} of {tries} random kills came after the process had finished",
                self.name,
                t.random_missed
            );
            k += 1;
            let delay = t.unkilled.mul_f64(0.02 + 0.96 * rng.unit());
            let (dir, vaults) = self.fresh(k);
            let mut child = spawn(&(self.args)(&vaults), None);
            std::thread::sleep(delay);
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            if out.status.signal() != Some(libc::SIGKILL) {
                assert!(
                    out.status.success(),
                    "{} failed unkilled: {}",
                    self.name,
                    String::from_utf8_lossy(&out.stderr)
                );
                t.random_missed += 1;
                fs::remove_dir_all(&dir).unwrap();
                continue;
            }
            t.random += 1;
            self.verify(
                &dir,
                &vaults,
                &format!(
                    "after a kill at a random moment ({delay:?}, seed {:#x})",
                    self.seed
                ),
            );
        }
        t
    }
}

fn os(args: &[&dyn AsRef<OsStr>]) -> Vec<OsString> {
    args.iter().map(|a| a.as_ref().to_os_string()).collect()
}

fn set(times: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    times.into_iter().collect()
}

/// The times of the snapshots in `repo`.
fn times(repo: &Path) -> BTreeSet<String> {
    snapshots(repo).into_iter().map(|(t, _)| t).collect()
}

#[test]
fn kill_backup_at_every_write_and_at_random() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let template = w.join("template");
    init(&template);
    // Two earlier nights, then the night under test: two thirds of its files are new.
    for night in 1..=2u64 {
        let src = w.join(format!("night{night}"));
        write_night(&src, night, 150, |i| i % 3 == night % 3);
        backup(&template, &src, night);
    }
    let src3 = w.join("night3");
    write_night(&src3, 3, 150, |i| i % 3 != 0);
    let earlier = times(&template);
    assert_eq!(earlier.len(), 2);
    let all = {
        let mut a = earlier.clone();
        a.insert(time(3));
        a
    };
    let args = |v: &[PathBuf]| {
        os(&[
            &"backup",
            &"--lock-wait",
            &"0",
            &"--time",
            &time(3),
            &"--repo",
            &v[0],
            &src3,
        ])
    };
    let after_kill = |v: &[PathBuf], scratch: &Path, when: &str| {
        assert_check(&v[0], when);
        let now = snapshots(&v[0]);
        let now_times: BTreeSet<String> = now.iter().map(|(t, _)| t.clone()).collect();
        assert!(
            earlier.is_subset(&now_times) && now.len() <= earlier.len() + 1,
            "snapshots {when}: {now:?}"
        );
        // The earlier nights, and the killed night's snapshot if it was stored.
        let restored = assert_restores(&v[0], &all, scratch, when);
        assert_eq!(restored, now.len(), "{when}");
    };
    let after_rerun = |v: &[PathBuf], scratch: &Path, when: &str| {
        assert_check(&v[0], when);
        let now = snapshots(&v[0]);
        let new = now.iter().filter(|(t, _)| *t == time(3)).count();
        assert!(
            (1..=2).contains(&new) && now.len() == earlier.len() + new,
            "snapshots {when}: {now:?}"
        );
        assert_eq!(assert_restores(&v[0], &all, scratch, when), now.len());
    };
    let t = Matrix {
        name: "backup",
        work: w,
        templates: vec![template],
        args: &args,
        after_kill: &after_kill,
        after_rerun: &after_rerun,
        seed: 0xBAC0_0001,
    }
    .run();
    t.assert(
        "backup",
        &[
            "put locks/",
            "put data/",
            "put index/",
            "put snapshots/",
            "delete locks/",
        ],
    );
}

/// `nights` nights in one vault, each changing a third of 60 files (few enough that a prune
/// makes a few dozen writes, not a hundred).
fn nights(w: &Path, template: &Path, nights: u64) {
    init(template);
    for night in 1..=nights {
        let src = w.join(format!("night{night}"));
        write_night(&src, night, 60, |i| i % 3 == night % 3);
        backup(template, &src, night);
    }
}

#[test]
fn kill_forget_prune_at_every_write_and_at_random() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let template = w.join("template");
    nights(w, &template, 5);
    let all = times(&template);
    let kept = set([time(4), time(5)]);
    let args = |v: &[PathBuf]| {
        os(&[
            &"forget",
            &"--keep-last",
            &"2",
            &"--prune",
            &"--max-unused",
            &"0%",
            &"--lock-wait",
            &"0",
            &"--repo",
            &v[0],
        ])
    };
    let after_kill = |v: &[PathBuf], scratch: &Path, when: &str| {
        assert_check(&v[0], when);
        let now = times(&v[0]);
        assert!(
            kept.is_subset(&now) && now.is_subset(&all),
            "snapshots {when}: {now:?}"
        );
        // What is still there restores, forgotten or not.
        assert_eq!(assert_restores(&v[0], &all, scratch, when), now.len());
    };
    let after_rerun = |v: &[PathBuf], scratch: &Path, when: &str| {
        assert_check(&v[0], when);
        assert_eq!(times(&v[0]), kept, "snapshots {when}");
        assert_eq!(assert_restores(&v[0], &kept, scratch, when), kept.len());
    };
    let t = Matrix {
        name: "forget --prune",
        work: w,
        templates: vec![template],
        args: &args,
        after_kill: &after_kill,
        after_rerun: &after_rerun,
        seed: 0xF0E6_0002,
    }
    .run();
    t.assert(
        "forget --prune",
        &[
            "put locks/",
            "put forgets/",
            "delete snapshots/",
            "put data/",
            "put index/",
            "delete index/",
            "delete data/",
            "delete locks/",
        ],
    );
}

#[test]
fn kill_prune_at_every_write_and_at_random() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let template = w.join("template");
    nights(w, &template, 5);
    // Forget nights 1, 2 and 4: much of their data is unused, spread over packs with used data.
    let ids = open(&template).list_snapshots().unwrap();
    let o = run(sv()
        .args(["forget", "--lock-wait", "0", "--repo"])
        .arg(&template)
        .args([0, 1, 3].map(|i| ids[i].0.to_hex())));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let kept = times(&template);
    let args = |v: &[PathBuf]| {
        os(&[
            &"prune",
            &"--max-unused",
            &"0%",
            &"--lock-wait",
            &"0",
            &"--repo",
            &v[0],
        ])
    };
    let check_kept = |v: &[PathBuf], scratch: &Path, when: &str| {
        assert_check(&v[0], when);
        assert_eq!(times(&v[0]), kept, "snapshots {when}");
        assert_eq!(assert_restores(&v[0], &kept, scratch, when), kept.len());
    };
    let t = Matrix {
        name: "prune",
        work: w,
        templates: vec![template],
        args: &args,
        after_kill: &check_kept,
        after_rerun: &check_kept,
        seed: 0x9E0E_0003,
    }
    .run();
    t.assert(
        "prune",
        &[
            "put locks/",
            "put data/",
            "put index/",
            "delete index/",
            "delete data/",
            "delete locks/",
        ],
    );
}

#[test]
fn kill_copy_at_every_write_and_at_random() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let from = w.join("from");
    let to = w.join("to");
    init(&from);
    init(&to);
    for night in 1..=3u64 {
        let src = w.join(format!("night{night}"));
        write_night(&src, night, 150, |i| i % 3 == night % 3);
        backup(&from, &src, night);
    }
    // Night 1 is already in the destination; the copy under test brings nights 2 and 3.
    let ids = open(&from).list_snapshots().unwrap();
    let o = run(sv()
        .args(["copy", "--lock-wait", "0", "--from"])
        .arg(&from)
        .arg("--repo")
        .arg(&to)
        .arg(ids[0].0.to_hex()));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let earlier = times(&to);
    assert_eq!(earlier, set([time(1)]));
    let all = times(&from);
    let args = |v: &[PathBuf]| {
        os(&[
            &"copy",
            &"--lock-wait",
            &"0",
            &"--from",
            &v[0],
            &"--repo",
            &v[1],
        ])
    };
    let after_kill = |v: &[PathBuf], scratch: &Path, when: &str| {
        assert_check(&v[1], when);
        let now = times(&v[1]);
        assert!(
            earlier.is_subset(&now) && now.is_subset(&all),
            "destination snapshots {when}: {now:?}"
        );
        assert_eq!(assert_restores(&v[1], &all, scratch, when), now.len());
    };
    let after_rerun = |v: &[PathBuf], scratch: &Path, when: &str| {
        assert_check(&v[1], when);
        assert_eq!(times(&v[1]), all, "destination snapshots {when}");
        assert_eq!(assert_restores(&v[1], &all, scratch, when), all.len());
        // The source is untouched but for its (stale) lock.
        assert_eq!(times(&v[0]), all, "source snapshots {when}");
    };
    let t = Matrix {
        name: "copy",
        work: w,
        templates: vec![from, to],
        args: &args,
        after_kill: &after_kill,
        after_rerun: &after_rerun,
        seed: 0xC0B1_0004,
    }
    .run();
    t.assert(
        "copy",
        &[
            "put locks/",
            "put data/",
            "put index/",
            "put snapshots/",
            "delete locks/",
        ],
    );
}
