//! `sitevault forget` end to end through the real binary: every retention flag with exact
//! kept/removed sets and reasons, dry runs, groups and filters, incomplete snapshots,
//! refusals, explicit ids, and `--prune`. Snapshot times come from `backup --time`; every
//! forget runs with an explicit `TZ` so calendar buckets are deterministic.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{
    Out, assert_trees_equal, dir_size, init_vault, random_bytes, restored_path, run, sv,
};

const HOST: &str = "web01";
const NO_RULE: &str = "matched no keep rule";

/// A vault and a tiny source folder, with helpers for backups at chosen times.
struct Fx {
    dir: tempfile::TempDir,
    repo: PathBuf,
    src: PathBuf,
}

impl Fx {
    fn new() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("vault");
        init_vault(&repo);
        let src = dir.path().join("src");
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("site.cfg"), b"site=CEN\n").unwrap();
        Fx { dir, repo, src }
    }

    /// `backup --json --time T [extra] <paths>`; `--host web01` unless `extra` names a host.
    fn backup_paths(&self, time: &str, extra: &[&str], paths: &[&Path], want_code: i32) -> Value {
        let mut cmd = sv();
        cmd.args(["backup", "--json", "--time", time, "--repo"])
            .arg(&self.repo);
        if !extra.contains(&"--host") {
            cmd.args(["--host", HOST]);
        }
        cmd.args(extra).args(paths);
        let o = run(&mut cmd);
        assert_eq!(
            o.code, want_code,
            "backup at {time} {extra:?}: exit code\n{}\n{}",
            o.stdout, o.stderr
        );
        let v: Value = serde_json::from_str(&o.stdout).expect("backup --json");
        assert_eq!(v["time"], time, "backup --time is recorded as given");
        v
    }

    /// A complete backup of the source folder; returns the full id.
    fn backup(&self, time: &str, extra: &[&str]) -> String {
        let v = self.backup_paths(time, extra, &[&self.src], 0);
        assert_eq!(v["complete"], true, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    /// A backup of the source folder and the unreadable `/proc/self/mem`: exit 3 and
    /// `complete: false`, both in the backup report and in `snapshots --json`.
    fn backup_incomplete(&self, time: &str, extra: &[&str]) -> String {
        let v = self.backup_paths(time, extra, &[&self.src, Path::new("/proc/self/mem")], 3);
        assert_eq!(v["complete"], false, "{v}");
        assert_eq!(v["summary"]["files_unreadable"], 1, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        let listed = self.snapshots();
        let s = listed
            .iter()
            .find(|s| s["id"] == id.as_str())
            .expect("incomplete snapshot is listed");
        assert_eq!(s["complete"], false, "{s}");
        id
    }

    fn forget_tz(&self, tz: &str, args: &[&str]) -> Out {
        run(sv()
            .env("TZ", tz)
            .args(["forget", "--lock-wait", "0", "--repo"])
            .arg(&self.repo)
            .args(args))
    }

    /// `forget` in UTC.
    fn forget(&self, args: &[&str]) -> Out {
        self.forget_tz("UTC", args)
    }

    /// `forget --json` in `tz`, which must succeed.
    fn forget_json_tz(&self, tz: &str, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let o = self.forget_tz(tz, &all);
        assert_eq!(
            o.code, 0,
            "forget {args:?}: exit code\n{}\n{}",
            o.stdout, o.stderr
        );
        serde_json::from_str(&o.stdout)
            .unwrap_or_else(|e| panic!("forget --json: {e}\n{}", o.stdout))
    }

    /// `forget --json` in UTC, which must succeed.
    fn forget_json(&self, args: &[&str]) -> Value {
        self.forget_json_tz("UTC", args)
    }

    fn snapshots(&self) -> Vec<Value> {
        let o = run(sv().args(["snapshots", "--json", "--repo"]).arg(&self.repo));
        assert_eq!(o.code, 0, "snapshots: {}", o.stderr);
        match serde_json::from_str(&o.stdout).expect("snapshots --json") {
            Value::Array(a) => a,
            other => panic!("snapshots --json is not an array: {other}"),
        }
    }

    /// Times of every snapshot in the vault.
    fn times(&self) -> BTreeSet<String> {
        self.snapshots()
            .iter()
            .map(|s| s["time"].as_str().unwrap().to_string())
            .collect()
    }

    /// (host, label, time) of every snapshot in the vault.
    fn listing(&self) -> BTreeSet<(String, String, String)> {
        self.snapshots()
            .iter()
            .map(|s| {
                (
                    s["host"].as_str().unwrap().to_string(),
                    s["label"].as_str().unwrap().to_string(),
                    s["time"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn ids(&self) -> BTreeSet<String> {
        self.snapshots()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    }
}

fn set(times: &[&str]) -> BTreeSet<String> {
    times.iter().map(|t| t.to_string()).collect()
}

/// One `forget --json` group: kept (time, reasons) and removed times, newest first.
#[derive(Debug, PartialEq)]
struct Plan {
    host: String,
    label: String,
    keep: Vec<(String, Vec<String>)>,
    remove: Vec<(String, Vec<String>)>,
}

/// Parse every group of a `forget --json` report, checking the per-entry id fields.
fn plans(v: &Value) -> Vec<Plan> {
    let groups = v["groups"].as_array().expect("groups array");
    groups
        .iter()
        .map(|g| {
            let entries = |key: &str| -> Vec<(String, Vec<String>)> {
                g[key]
                    .as_array()
                    .unwrap_or_else(|| panic!("{key} array in {g}"))
                    .iter()
                    .map(|e| {
                        let id = e["id"].as_str().expect("id");
                        assert_eq!(id.len(), 64, "{e}");
                        assert_eq!(e["short_id"].as_str(), Some(&id[..8]), "{e}");
                        assert!(e["complete"].is_boolean(), "{e}");
                        let reasons = e["reasons"]
                            .as_array()
                            .expect("reasons")
                            .iter()
                            .map(|r| r.as_str().unwrap().to_string())
                            .collect();
                        (e["time"].as_str().unwrap().to_string(), reasons)
                    })
                    .collect()
            };
            Plan {
                host: g["host"].as_str().unwrap().to_string(),
                label: g["label"].as_str().unwrap().to_string(),
                keep: entries("keep"),
                remove: entries("remove"),
            }
        })
        .collect()
}

/// The report's single group.
#[track_caller]
fn only_plan(v: &Value) -> Plan {
    let mut p = plans(v);
    assert_eq!(p.len(), 1, "want one group: {v}");
    p.remove(0)
}

fn keep(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    list.iter()
        .map(|(t, r)| (t.to_string(), r.iter().map(|s| s.to_string()).collect()))
        .collect()
}

fn strs(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Assert a group's plan: `kept` newest first with exact reasons, `removed` newest first,
/// each with the single reason "matched no keep rule".
#[track_caller]
fn assert_plan(p: &Plan, host: &str, label: &str, kept: &[(&str, &[&str])], removed: &[&str]) {
    let want = Plan {
        host: host.into(),
        label: label.into(),
        keep: keep(kept),
        remove: removed
            .iter()
            .map(|t| (t.to_string(), strs(&[NO_RULE])))
            .collect(),
    };
    assert_eq!(*p, want);
}

/// Exit 1 and one `error:` line on stderr containing every needle; nothing on stdout.
#[track_caller]
fn assert_refused(o: &Out, needles: &[&str]) {
    assert_eq!(
        o.code, 1,
        "exit code\nstdout:\n{}\nstderr:\n{}",
        o.stdout, o.stderr
    );
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one stderr line, got:\n{}", o.stderr);
    assert!(lines[0].starts_with("error: "), "{:?}", lines[0]);
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} not in {:?}", lines[0]);
    }
    assert_eq!(o.stdout, "", "a refused forget prints no plan");
}

// ---------------------------------------------------------------------------------------
// 1. Every policy flag.
// ---------------------------------------------------------------------------------------

#[test]
fn forget_keep_last_keeps_the_n_newest() {
    let fx = Fx::new();
    let all = [
        "2026-03-01T01:00:00Z",
        "2026-03-01T02:00:00Z",
        "2026-03-05T00:00:00Z",
        "2026-04-10T12:00:00Z",
        "2027-01-01T00:00:00Z",
    ];
    for t in all {
        fx.backup(t, &[]);
    }
    let v = fx.forget_json(&["--keep-last", "1", "--dry-run"]);
    assert_plan(
        &only_plan(&v),
        HOST,
        "",
        &[("2027-01-01T00:00:00Z", &["last"])],
        &[
            "2026-04-10T12:00:00Z",
            "2026-03-05T00:00:00Z",
            "2026-03-01T02:00:00Z",
            "2026-03-01T01:00:00Z",
        ],
    );
    // More than there are keeps everything.
    let v = fx.forget_json(&["--keep-last", "9", "--dry-run"]);
    let p = only_plan(&v);
    assert_eq!(p.keep.len(), 5);
    assert!(p.keep.iter().all(|(_, r)| *r == ["last"]), "{p:?}");
    assert!(p.remove.is_empty());

    let v = fx.forget_json(&["--keep-last", "3"]);
    assert_plan(
        &only_plan(&v),
        HOST,
        "",
        &[
            ("2027-01-01T00:00:00Z", &["last"]),
            ("2026-04-10T12:00:00Z", &["last"]),
            ("2026-03-05T00:00:00Z", &["last"]),
        ],
        &["2026-03-01T02:00:00Z", "2026-03-01T01:00:00Z"],
    );
    assert_eq!(v["dry_run"], false);
    assert_eq!(v["removed"], 2);
    assert_eq!(v["prune"], Value::Null);
    assert_eq!(fx.times(), set(&all[2..]));
}

#[test]
fn forget_keep_hourly_counts_hours_that_have_snapshots() {
    let fx = Fx::new();
    let all = [
        "2026-02-28T13:20:00Z", // same hour of day as 13:xx below, but another date
        "2026-03-01T10:05:00Z",
        "2026-03-01T10:40:00Z",
        "2026-03-01T11:10:00Z",
        "2026-03-01T11:59:59Z",
        "2026-03-01T13:00:00Z", // no snapshot at 12:xx: that hour does not count
        "2026-03-01T13:30:00Z",
    ];
    for t in all {
        fx.backup(t, &[]);
    }
    let v = fx.forget_json(&["--keep-hourly", "3", "--dry-run"]);
    assert_plan(
        &only_plan(&v),
        HOST,
        "",
        &[
            ("2026-03-01T13:30:00Z", &["hourly"]),
            ("2026-03-01T11:59:59Z", &["hourly"]),
            ("2026-03-01T10:40:00Z", &["hourly"]),
        ],
        &[
            "2026-03-01T13:00:00Z",
            "2026-03-01T11:10:00Z",
            "2026-03-01T10:05:00Z",
            "2026-02-28T13:20:00Z",
        ],
    );
    let v = fx.forget_json(&["--keep-hourly", "4"]);
    assert_plan(
        &only_plan(&v),
        HOST,
        "",
        &[
            ("2026-03-01T13:30:00Z", &["hourly"]),
            ("2026-03-01T11:59:59Z", &["hourly"]),
            ("2026-03-01T10:40:00Z", &["hourly"]),
            ("2026-02-28T13:20:00Z", &["hourly"]),
        ],
        &[
            "2026-03-01T13:00:00Z",
            "2026-03-01T11:10:00Z",
            "2026-03-01T10:05:00Z",
        ],
    );
    assert_eq!(v["removed"], 3);
    assert_eq!(
        fx.times(),
        set(&[
            "2026-02-28T13:20:00Z",
            "2026-03-01T10:40:00Z",
            "2026-03-01T11:59:59Z",
            "2026-03-01T13:30:00Z",
        ])
    );
}

#[test]
fn forget_keep_daily_keeps_the_newest_of_each_day() {
    let fx = Fx::new();
    let all = [
        "2026-03-01T00:00:00Z",
        "2026-03-01T22:00:00Z",
        "2026-03-02T12:00:00Z",
        // No snapshot on 2026-03-03: the day does not count.
        "2026-03-04T00:00:00Z",
        "2026-03-04T23:59:59Z",
    ];
    for t in all {
        fx.backup(t, &[]);
    }
    let v = fx.forget_json(&["--keep-daily", "1", "--dry-run"]);
    assert_plan(
        &only_plan(&v),
        HOST,
        "",
        &[("2026-03-04T23:59:59Z", &["daily"])],
        &[
            "2026-03-04T00:00:00Z",
            "2026-03-02T12:00:00Z",
            "2026-03-01T22:00:00Z",
            "2026-03-01T00:00:00Z",
        ],
    );
    let v = fx.forget_json(&["--keep-daily", "3"]);
    assert_plan(
        &only_plan(&v),
        HOST,
        "",
        &[
            ("2026-03-04T23:59:59Z", &["daily"]),
            ("2026-03-02T12:00:00Z", &["daily"]),
            ("2026-03-01T22:00:00Z", &["daily"]),
        ],
        &["2026-03-04T00:00:00Z", "2026-03-01T00:00:00Z"],
    );
    assert_eq!(v["removed"], 2);
    assert_eq!(
        fx.times(),
        set(&[
            "2026-03-01T22:00:00Z",
            "2026-03-02T12:00:00Z",
            "2026-03-04T23:59:59Z",
        ])
    );
}

#[test]
fn forget_keep_weekly_uses_iso_weeks_across_the_year_boundary() {
    let fx = Fx::new();
    // ISO weeks: 12-20 is 2026-W51, 12-27 W52; Mon 12-28 .. Sun 2027-01-03 are all 2026-W53;
    // Mon 2027-01-04 starts 2027-W01.
    let all = [
        "2026-12-20T10:00:00Z",
        "2026-12-27T10:00:00Z",
        "2026-12-28T10:00:00Z",
        "2026-12-31T10:00:00Z",
        "2027-01-01T10:00:00Z",
        "2027-01-03T23:00:00Z",
        "2027-01-04T01:00:00Z",
        "2027-01-05T10:00:00Z",
    ];
    for t in all {
        fx.backup(t, &[]);
    }
    let v = fx.forget_json(&["--keep-weekly", "2", "--dry-run"]);
    assert_plan(
        &only_plan(&v),
        HOST,
        "",
        &[
            ("2027-01-05T10:00:00Z", &["weekly"]),
            ("2027-01-03T23:00:00Z", &["weekly"]),
        ],
        &[
            "2027-01-04T01:00:00Z",
            "2027-01-01T10:00:00Z",
            "2026-12-31T10:00:00Z",
            "2026-12-28T10:00:00Z",
            "2026-12-27T10:00:00Z",
            "2026-12-20T10:00:00Z",
        ],
    );
    let v = fx.forget_json(&["--keep-weekly", "3"]);
    assert_plan(
        &only_plan(&v),
        HOST,
        "",
        &[
            ("2027-01-05T10:00:00Z", &["weekly"]),
            ("2027-01-03T23:00:00Z", &["weekly"]),
            ("2026-12-27T10:00:00Z", &["weekly"]),
        ],
        &[
            "2027-01-04T01:00:00Z",
            "2027-01-01T10:00:00Z",
            "2026-12-31T10:00:00Z",
            "2026-12-28T10:00:00Z",
            "2026-12-20T10:00:00Z",
        ],
    );
    assert_eq!(v["removed"], 5);
    assert_eq!(
        fx.times(),
        set(&[
            "2026-12-27T10:00:00Z",
            "2027-01-03T23:00:00Z",
            "2027-01-05T10:00:00Z",
        ])
    );
}

#[test]
fn forget_keep_monthly_across_month_ends_and_the_year_boundary() {
    let fx = Fx::new();
    let all = [
        "2026-11-15T12:00:00Z",
        "2026-12-01T12:00:00Z",
        "2026-12-31T23:30:00Z",
        "2027-01-01T00:30:00Z",
        "2027-01-31T23:59:59Z",
        "2027-02-01T00:00:00Z",
        "2027-02-28T23:00:00Z",
        "2027-03-01T00:30:00Z",
    ];
    for t in all {
        fx.backup(t, &[]);
    }
    let v = fx.forget_json(&["--keep-monthly", "2", "--dry-run"]);
    assert_plan(
        &only_plan(&v),
        HOST,
        "",
        &[
            ("2027-03-01T00:30:00Z", &["monthly"]),
            ("2027-02-28T23:00:00Z", &["monthly"]),
        ],
        &[
            "2027-02-01T00:00:00Z",
            "2027-01-31T23:59:59Z",
            "2027-01-01T00:30:00Z",
            "2026-12-31T23:30:00Z",
            "2026-12-01T12:00:00Z",
            "2026-11-15T12:00:00Z",
        ],
    );
    let v = fx.forget_json(&["--keep-monthly", "4"]);
    assert_plan(
        &only_plan(&v),
        HOST,
        "",
        &[
            ("2027-03-01T00:30:00Z", &["monthly"]),
            ("2027-02-28T23:00:00Z", &["monthly"]),
            ("2027-01-31T23:59:59Z", &["monthly"]),
            ("2026-12-31T23:30:00Z", &["monthly"]),
        ],
        &[
            "2027-02-01T00:00:00Z",
            "2027-01-01T00:30:00Z",
            "2026-12-01T12:00:00Z",
            "2026-11-15T12:00:00Z",
        ],
    );
    assert_eq!(v["removed"], 4);
    assert_eq!(
        fx.times(),
        set(&[
            "2026-12-31T23:30:00Z",
            "2027-01-31T23:59:59Z",
            "2027-02-28T23:00:00Z",
            "2027-03-01T00:30:00Z",
        ])
    );
}

#[test]
fn forget_keep_yearly_counts_years_that_have_snapshots() {
    let fx = Fx::new();
    let all = [
        "2024-06-01T12:00:00Z",
        "2024-12-31T23:00:00Z",
        "2025-01-01T00:00:00Z",
        "2025-07-01T12:00:00Z",
        // Nothing in 2026.
        "2027-03-01T12:00:00Z",
        "2027-12-31T23:59:59Z",
    ];
    for t in all {
        fx.backup(t, &[]);
    }
    let v = fx.forget_json(&["--keep-yearly", "3"]);
    assert_plan(
        &only_plan(&v),
        HOST,
        "",
        &[
            ("2027-12-31T23:59:59Z", &["yearly"]),
            ("2025-07-01T12:00:00Z", &["yearly"]),
            ("2024-12-31T23:00:00Z", &["yearly"]),
        ],
        &[
            "2027-03-01T12:00:00Z",
            "2025-01-01T00:00:00Z",
            "2024-06-01T12:00:00Z",
        ],
    );
    assert_eq!(v["removed"], 3);
    assert_eq!(
        fx.times(),
        set(&[
            "2024-12-31T23:00:00Z",
            "2025-07-01T12:00:00Z",
            "2027-12-31T23:59:59Z",
        ])
    );
}

#[test]
fn forget_keep_within_uses_calendar_durations_from_the_newest() {
    let fx = Fx::new();
    // Newest 2027-03-31T12:00Z. Boundaries (inclusive): 5d -> 03-26T12:00, 2w -> 03-17T12:00,
    // 6m -> 2026-09-30T12:00 (March 31 minus 6 months is clamped to September 30; 180 days
    // would be 2026-10-02), 1y -> 2026-03-31T12:00, 1y6m -> 2025-09-30T12:00.
    let all = [
        "2025-09-30T11:59:59Z",
        "2025-09-30T12:00:00Z",
        "2026-03-31T11:00:00Z",
        "2026-03-31T12:00:00Z",
        "2026-09-30T11:00:00Z",
        "2026-09-30T13:00:00Z",
        "2027-03-17T11:59:00Z",
        "2027-03-17T12:00:00Z",
        "2027-03-26T11:00:00Z",
        "2027-03-26T12:00:00Z",
        "2027-03-31T12:00:00Z",
    ];
    for t in all {
        fx.backup(t, &[]);
    }
    // Index of the oldest snapshot each duration keeps.
    for (d, first_kept) in [("5d", 9), ("2w", 7), ("6m", 5), ("1y", 3), ("1y6m", 1)] {
        let v = fx.forget_json(&["--keep-within", d, "--dry-run"]);
        let reason = [format!("within {d} of the newest")];
        let reason: [&str; 1] = [reason[0].as_str()];
        let kept: Vec<(&str, &[&str])> = all[first_kept..]
            .iter()
            .rev()
            .map(|t| (*t, &reason[..]))
            .collect();
        let removed: Vec<&str> = all[..first_kept].iter().rev().copied().collect();
        assert_plan(&only_plan(&v), HOST, "", &kept, &removed);
        assert_eq!(v["dry_run"], true, "{d}");
        assert_eq!(v["removed"], 0, "{d}");
    }
    assert_eq!(fx.times(), set(&all), "dry runs removed nothing");

    // A combined duration with another rule: the union, each kept snapshot naming both.
    let w: &str = "within 6m of the newest";
    let v = fx.forget_json(&["--keep-within", "6m", "--keep-yearly", "2"]);
    assert_plan(
        &only_plan(&v),
        HOST,
        "",
        &[
            ("2027-03-31T12:00:00Z", &["yearly", w]),
            ("2027-03-26T12:00:00Z", &[w]),
            ("2027-03-26T11:00:00Z", &[w]),
            ("2027-03-17T12:00:00Z", &[w]),
            ("2027-03-17T11:59:00Z", &[w]),
            ("2026-09-30T13:00:00Z", &["yearly", w]),
        ],
        &[
            "2026-09-30T11:00:00Z",
            "2026-03-31T12:00:00Z",
            "2026-03-31T11:00:00Z",
            "2025-09-30T12:00:00Z",
            "2025-09-30T11:59:59Z",
        ],
    );
    assert_eq!(v["removed"], 5);
    assert_eq!(fx.times(), set(&all[5..]));
}

#[test]
fn forget_keep_tag_keeps_exactly_the_tagged() {
    let fx = Fx::new();
    fx.backup("2026-05-01T03:00:00Z", &["--tag", "monthly-archive"]);
    fx.backup(
        "2026-05-02T03:00:00Z",
        &["--tag", "pre-upgrade", "--tag", "monthly-archive"],
    );
    fx.backup("2026-05-03T03:00:00Z", &["--tag", "Pre-Upgrade"]);
    fx.backup("2026-05-04T03:00:00Z", &["--tag", "pre-upgrade"]);
    fx.backup("2026-05-05T03:00:00Z", &["--tag", "pre-upgrade-2"]);
    fx.backup("2026-05-06T03:00:00Z", &[]);

    // Tags match exactly: not "Pre-Upgrade", not "pre-upgrade-2". The untagged newest goes:
    // other complete snapshots stay, so this is not refused.
    let v = fx.forget_json(&["--keep-tag", "pre-upgrade", "--dry-run"]);
    assert_plan(
        &only_plan(&v),
        HOST,
        "",
        &[
            ("2026-05-04T03:00:00Z", &["tagged pre-upgrade"]),
            ("2026-05-02T03:00:00Z", &["tagged pre-upgrade"]),
        ],
        &[
            "2026-05-06T03:00:00Z",
            "2026-05-05T03:00:00Z",
            "2026-05-03T03:00:00Z",
            "2026-05-01T03:00:00Z",
        ],
    );

    // Repeatable; a tag given twice counts once; reasons follow the order the tags were given.
    let v = fx.forget_json(&[
        "--keep-tag",
        "pre-upgrade",
        "--keep-tag",
        "monthly-archive",
        "--keep-tag",
        "pre-upgrade",
        "--keep-last",
        "1",
    ]);
    assert_plan(
        &only_plan(&v),
        HOST,
        "",
        &[
            ("2026-05-06T03:00:00Z", &["last"]),
            ("2026-05-04T03:00:00Z", &["tagged pre-upgrade"]),
            (
                "2026-05-02T03:00:00Z",
                &["tagged pre-upgrade", "tagged monthly-archive"],
            ),
            ("2026-05-01T03:00:00Z", &["tagged monthly-archive"]),
        ],
        &["2026-05-05T03:00:00Z", "2026-05-03T03:00:00Z"],
    );
    assert_eq!(v["removed"], 2);
    let tags: BTreeMap<String, Vec<String>> = fx
        .snapshots()
        .iter()
        .map(|s| {
            (
                s["time"].as_str().unwrap().to_string(),
                s["tags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    let want: BTreeMap<String, Vec<String>> = [
        ("2026-05-01T03:00:00Z", strs(&["monthly-archive"])),
        (
            "2026-05-02T03:00:00Z",
            strs(&["pre-upgrade", "monthly-archive"]),
        ),
        ("2026-05-04T03:00:00Z", strs(&["pre-upgrade"])),
        ("2026-05-06T03:00:00Z", vec![]),
    ]
    .into_iter()
    .map(|(t, v)| (t.to_string(), v))
    .collect();
    assert_eq!(tags, want);
}

#[test]
fn forget_rules_combine_as_a_union_with_every_reason() {
    let fx = Fx::new();
    // ISO weeks: 03-02 is W10, 03-20 W12, 03-31 .. 04-02 W14.
    let all = [
        "2026-03-02T09:00:00Z",
        "2026-03-20T09:00:00Z",
        "2026-03-31T09:00:00Z",
        "2026-04-01T09:00:00Z",
        "2026-04-02T09:00:00Z",
        "2026-04-02T18:00:00Z",
    ];
    for t in all {
        let tag: &[&str] = if t.starts_with("2026-03-20") {
            &["--tag", "keep"]
        } else {
            &[]
        };
        fx.backup(t, tag);
    }
    let policy = [
        "--keep-last",
        "1",
        "--keep-hourly",
        "1",
        "--keep-daily",
        "2",
        "--keep-weekly",
        "2",
        "--keep-monthly",
        "2",
        "--keep-yearly",
        "1",
        "--keep-within",
        "1d",
        "--keep-tag",
        "keep",
    ];
    let w = "within 1d of the newest";
    let v = fx.forget_json(&policy);
    assert_plan(
        &only_plan(&v),
        HOST,
        "",
        &[
            (
                "2026-04-02T18:00:00Z",
                &["last", "hourly", "daily", "weekly", "monthly", "yearly", w],
            ),
            ("2026-04-02T09:00:00Z", &[w]),
            ("2026-04-01T09:00:00Z", &["daily"]),
            ("2026-03-31T09:00:00Z", &["monthly"]),
            ("2026-03-20T09:00:00Z", &["weekly", "tagged keep"]),
        ],
        &["2026-03-02T09:00:00Z"],
    );
    assert_eq!(v["removed"], 1);
    assert_eq!(fx.times(), set(&all[1..]));
    // The same policy again finds nothing more to remove.
    let v = fx.forget_json(&policy);
    let p = only_plan(&v);
    assert_eq!(p.keep.len(), 5, "{p:?}");
    assert!(p.remove.is_empty(), "{p:?}");
    assert_eq!(v["removed"], 0);
}

// ---------------------------------------------------------------------------------------
// 2. Dry run, then the real run; the text output.
// ---------------------------------------------------------------------------------------

#[test]
fn forget_dry_run_changes_nothing_and_the_real_run_removes_exactly_that() {
    let fx = Fx::new();
    let a = fx.backup("2026-03-01T03:00:00Z", &[]);
    let b = fx.backup("2026-03-02T03:00:00Z", &[]);
    let c = fx.backup_incomplete("2026-03-03T03:00:00Z", &[]);
    let d = fx.backup("2026-03-04T03:00:00Z", &[]);
    let e = fx.backup("2026-03-04T05:00:00Z", &[]);
    let before = fx.snapshots();

    let v = fx.forget_json(&["--keep-daily", "2", "--dry-run"]);
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["removed"], 0);
    assert_eq!(v["prune"], Value::Null);
    let inc = "daily (incomplete, no complete snapshot that day)";
    let p = only_plan(&v);
    assert_plan(
        &p,
        HOST,
        "",
        &[
            ("2026-03-04T05:00:00Z", &["daily"]),
            ("2026-03-03T03:00:00Z", &[inc]),
            ("2026-03-02T03:00:00Z", &["daily"]),
        ],
        &["2026-03-04T03:00:00Z", "2026-03-01T03:00:00Z"],
    );
    let would: Vec<&str> = v["groups"][0]["remove"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(would, [d.as_str(), a.as_str()]);
    let complete: Vec<bool> = v["groups"][0]["keep"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["complete"].as_bool().unwrap())
        .collect();
    assert_eq!(complete, [true, false, true]);
    assert_eq!(fx.snapshots(), before, "a JSON dry run changed the vault");

    let line = |verb: &str, id: &str, when: &str, complete: &str, why: &str| {
        format!("  {verb:<6}  {}  {when}  {complete:<10}  {why}\n", &id[..8])
    };
    let body = [
        line(
            "keep",
            &e,
            "2026-03-04 05:00:00 +00:00",
            "complete",
            "daily",
        ),
        line(
            "remove",
            &d,
            "2026-03-04 03:00:00 +00:00",
            "complete",
            NO_RULE,
        ),
        line("keep", &c, "2026-03-03 03:00:00 +00:00", "incomplete", inc),
        line(
            "keep",
            &b,
            "2026-03-02 03:00:00 +00:00",
            "complete",
            "daily",
        ),
        line(
            "remove",
            &a,
            "2026-03-01 03:00:00 +00:00",
            "complete",
            NO_RULE,
        ),
    ]
    .concat();
    let header = format!("host {HOST}, label \"\": keep 3, remove 2\n");

    let o = fx.forget(&["--keep-daily", "2", "--dry-run"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        o.stdout,
        format!("{header}{body}dry run: 2 snapshots would be removed\n")
    );
    assert_eq!(fx.snapshots(), before, "a text dry run changed the vault");

    let o = fx.forget(&["--keep-daily", "2"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout, format!("{header}{body}2 snapshots removed\n"));
    assert_eq!(
        fx.ids(),
        [e.clone(), c.clone(), b.clone()].into_iter().collect()
    );
    // What stays is byte for byte what was listed before.
    let kept: Vec<&Value> = before
        .iter()
        .filter(|s| s["id"] != a.as_str() && s["id"] != d.as_str())
        .collect();
    let after = fx.snapshots();
    assert_eq!(after.iter().collect::<Vec<_>>(), kept);

    // Again: nothing more to do.
    let o = fx.forget(&["--keep-daily", "2"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        o.stdout,
        format!(
            "host {HOST}, label \"\": keep 3, remove 0\n{}{}{}0 snapshots removed\n",
            line(
                "keep",
                &e,
                "2026-03-04 05:00:00 +00:00",
                "complete",
                "daily"
            ),
            line("keep", &c, "2026-03-03 03:00:00 +00:00", "incomplete", inc),
            line(
                "keep",
                &b,
                "2026-03-02 03:00:00 +00:00",
                "complete",
                "daily"
            ),
        )
    );
    assert_eq!(fx.snapshots(), after);
}

// ---------------------------------------------------------------------------------------
// 3. Groups and filters.
// ---------------------------------------------------------------------------------------

#[test]
fn forget_thins_each_host_and_label_separately_and_filters_restrict_it() {
    let fx = Fx::new();
    // Interleaved in time, so one plan over everything would keep far less.
    let spec: [(&str, &str, &str); 11] = [
        ("web01", "cen", "2026-03-01T01:00:00Z"),
        ("web01", "cen", "2026-03-02T01:00:00Z"),
        ("WEB01", "cen", "2026-03-03T01:00:00Z"), // host compared case-insensitively
        ("web01", "lib", "2026-03-01T02:00:00Z"),
        ("web01", "lib", "2026-03-02T02:00:00Z"),
        ("web01", "lib", "2026-03-03T02:00:00Z"),
        ("web02", "cen", "2026-03-01T03:00:00Z"),
        ("web02", "cen", "2026-03-02T03:00:00Z"),
        ("web02", "cen", "2026-03-03T03:00:00Z"),
        ("web02", "lib", "2026-03-01T04:00:00Z"),
        ("web02", "lib", "2026-03-02T04:00:00Z"),
    ];
    for (host, label, time) in spec {
        fx.backup(time, &["--host", host, "--label", label]);
    }
    let listing = |skip: &[&str]| -> BTreeSet<(String, String, String)> {
        spec.iter()
            .filter(|(_, _, t)| !skip.contains(t))
            .map(|(h, l, t)| (h.to_string(), l.to_string(), t.to_string()))
            .collect()
    };
    assert_eq!(fx.listing(), listing(&[]));

    let v = fx.forget_json(&["--keep-daily", "1", "--dry-run"]);
    let p = plans(&v);
    assert_eq!(p.len(), 4, "{v}");
    assert_plan(
        &p[0],
        "WEB01", // the group shows its newest snapshot's host text
        "cen",
        &[("2026-03-03T01:00:00Z", &["daily"])],
        &["2026-03-02T01:00:00Z", "2026-03-01T01:00:00Z"],
    );
    assert_plan(
        &p[1],
        "web01",
        "lib",
        &[("2026-03-03T02:00:00Z", &["daily"])],
        &["2026-03-02T02:00:00Z", "2026-03-01T02:00:00Z"],
    );
    assert_plan(
        &p[2],
        "web02",
        "cen",
        &[("2026-03-03T03:00:00Z", &["daily"])],
        &["2026-03-02T03:00:00Z", "2026-03-01T03:00:00Z"],
    );
    assert_plan(
        &p[3],
        "web02",
        "lib",
        &[("2026-03-02T04:00:00Z", &["daily"])],
        &["2026-03-01T04:00:00Z"],
    );

    // --host (case-insensitive) restricts forget to that host's groups.
    let v = fx.forget_json(&["--host", "WEB02", "--keep-last", "2"]);
    let p = plans(&v);
    assert_eq!(p.len(), 2, "{v}");
    assert_plan(
        &p[0],
        "web02",
        "cen",
        &[
            ("2026-03-03T03:00:00Z", &["last"]),
            ("2026-03-02T03:00:00Z", &["last"]),
        ],
        &["2026-03-01T03:00:00Z"],
    );
    assert_plan(
        &p[1],
        "web02",
        "lib",
        &[
            ("2026-03-02T04:00:00Z", &["last"]),
            ("2026-03-01T04:00:00Z", &["last"]),
        ],
        &[],
    );
    assert_eq!(v["removed"], 1);
    assert_eq!(fx.listing(), listing(&["2026-03-01T03:00:00Z"]));

    // --host and --label together: exactly one group.
    let v = fx.forget_json(&["--host", "web01", "--label", "lib", "--keep-last", "1"]);
    assert_plan(
        &only_plan(&v),
        "web01",
        "lib",
        &[("2026-03-03T02:00:00Z", &["last"])],
        &["2026-03-02T02:00:00Z", "2026-03-01T02:00:00Z"],
    );
    assert_eq!(v["removed"], 2);
    assert_eq!(
        fx.listing(),
        listing(&[
            "2026-03-01T03:00:00Z",
            "2026-03-02T02:00:00Z",
            "2026-03-01T02:00:00Z",
        ])
    );

    // --label alone: that label on every host.
    let v = fx.forget_json(&["--label", "cen", "--keep-last", "1"]);
    let p = plans(&v);
    assert_eq!(p.len(), 2, "{v}");
    assert_plan(
        &p[0],
        "WEB01",
        "cen",
        &[("2026-03-03T01:00:00Z", &["last"])],
        &["2026-03-02T01:00:00Z", "2026-03-01T01:00:00Z"],
    );
    assert_plan(
        &p[1],
        "web02",
        "cen",
        &[("2026-03-03T03:00:00Z", &["last"])],
        &["2026-03-02T03:00:00Z"],
    );
    assert_eq!(v["removed"], 3);
    assert_eq!(
        fx.listing(),
        listing(&[
            "2026-03-01T03:00:00Z",
            "2026-03-02T02:00:00Z",
            "2026-03-01T02:00:00Z",
            "2026-03-02T01:00:00Z",
            "2026-03-01T01:00:00Z",
            "2026-03-02T03:00:00Z",
        ])
    );
    // A filter that matches nothing removes nothing.
    let v = fx.forget_json(&["--host", "web03", "--keep-last", "1"]);
    assert_eq!(v["groups"], serde_json::json!([]));
    assert_eq!(v["removed"], 0);
    assert_eq!(fx.listing().len(), 5);
}

// ---------------------------------------------------------------------------------------
// 4. Incomplete snapshots.
// ---------------------------------------------------------------------------------------

#[test]
fn forget_incomplete_snapshots_never_push_complete_ones_out() {
    let fx = Fx::new();
    // Label a: a newer incomplete snapshot on the same day as a complete one.
    fx.backup("2026-04-30T02:00:00Z", &["--label", "a"]);
    fx.backup("2026-05-01T02:00:00Z", &["--label", "a"]);
    fx.backup_incomplete("2026-05-01T04:00:00Z", &["--label", "a"]);
    // Label b: two good nights, then three failed ones.
    fx.backup("2026-05-01T02:00:00Z", &["--label", "b"]);
    fx.backup("2026-05-02T02:00:00Z", &["--label", "b"]);
    fx.backup_incomplete("2026-05-03T02:00:00Z", &["--label", "b"]);
    fx.backup_incomplete("2026-05-04T02:00:00Z", &["--label", "b"]);
    fx.backup_incomplete("2026-05-05T02:00:00Z", &["--label", "b"]);
    let before = fx.snapshots();
    let inc = "daily (incomplete, no complete snapshot that day)";

    let v = fx.forget_json(&["--label", "a", "--keep-daily", "2", "--dry-run"]);
    assert_plan(
        &only_plan(&v),
        HOST,
        "a",
        &[
            ("2026-05-01T02:00:00Z", &["daily"]),
            ("2026-04-30T02:00:00Z", &["daily"]),
        ],
        &["2026-05-01T04:00:00Z"],
    );
    assert_eq!(v["groups"][0]["remove"][0]["complete"], false);
    let v = fx.forget_json(&[
        "--label",
        "a",
        "--keep-daily",
        "1",
        "--keep-last",
        "1",
        "--dry-run",
    ]);
    assert_plan(
        &only_plan(&v),
        HOST,
        "a",
        &[
            ("2026-05-01T04:00:00Z", &["last (incomplete)"]),
            ("2026-05-01T02:00:00Z", &["last", "daily"]),
        ],
        &["2026-04-30T02:00:00Z"],
    );

    // Failed nights do not count toward N: both good days stay, and at most 2 failed ones.
    let v = fx.forget_json(&["--label", "b", "--keep-daily", "2", "--dry-run"]);
    assert_plan(
        &only_plan(&v),
        HOST,
        "b",
        &[
            ("2026-05-05T02:00:00Z", &[inc]),
            ("2026-05-04T02:00:00Z", &[inc]),
            ("2026-05-02T02:00:00Z", &["daily"]),
            ("2026-05-01T02:00:00Z", &["daily"]),
        ],
        &["2026-05-03T02:00:00Z"],
    );
    let v = fx.forget_json(&["--label", "b", "--keep-last", "1", "--dry-run"]);
    assert_plan(
        &only_plan(&v),
        HOST,
        "b",
        &[
            ("2026-05-05T02:00:00Z", &["last (incomplete)"]),
            ("2026-05-02T02:00:00Z", &["last"]),
        ],
        &[
            "2026-05-04T02:00:00Z",
            "2026-05-03T02:00:00Z",
            "2026-05-01T02:00:00Z",
        ],
    );
    // --keep-within counts from the newest snapshot, complete or not...
    let w = "within 3d of the newest";
    let v = fx.forget_json(&["--label", "b", "--keep-within", "3d", "--dry-run"]);
    assert_plan(
        &only_plan(&v),
        HOST,
        "b",
        &[
            ("2026-05-05T02:00:00Z", &[w]),
            ("2026-05-04T02:00:00Z", &[w]),
            ("2026-05-03T02:00:00Z", &[w]),
            ("2026-05-02T02:00:00Z", &[w]),
        ],
        &["2026-05-01T02:00:00Z"],
    );
    // ...so a window holding only failed nights is refused rather than losing every good one.
    let o = fx.forget(&["--label", "b", "--keep-within", "2d"]);
    assert_refused(
        &o,
        &[
            "would remove every complete snapshot of host \"web01\" label \"b\"",
            "nothing was forgotten",
        ],
    );
    assert_eq!(fx.snapshots(), before);

    // The real run over both groups.
    let v = fx.forget_json(&["--keep-daily", "2"]);
    let p = plans(&v);
    assert_eq!(p.len(), 2, "{v}");
    assert_eq!((p[0].label.as_str(), p[1].label.as_str()), ("a", "b"));
    assert_eq!(v["removed"], 2);
    assert_eq!(
        fx.listing(),
        [
            ("a", "2026-04-30T02:00:00Z"),
            ("a", "2026-05-01T02:00:00Z"),
            ("b", "2026-05-01T02:00:00Z"),
            ("b", "2026-05-02T02:00:00Z"),
            ("b", "2026-05-04T02:00:00Z"),
            ("b", "2026-05-05T02:00:00Z"),
        ]
        .iter()
        .map(|(l, t)| (HOST.to_string(), l.to_string(), t.to_string()))
        .collect()
    );
}

// ---------------------------------------------------------------------------------------
// 5. Refusals.
// ---------------------------------------------------------------------------------------

#[test]
fn forget_refusals_exit_1_and_remove_nothing() {
    let fx = Fx::new();
    let first = fx.backup("2026-05-01T03:00:00Z", &["--tag", "keep"]);
    fx.backup("2026-05-02T03:00:00Z", &[]);
    fx.backup("2026-05-03T03:00:00Z", &[]);
    fx.backup("2026-05-01T04:00:00Z", &["--host", "web02"]);
    fx.backup("2026-05-02T04:00:00Z", &["--host", "web02"]);
    let before = fx.snapshots();
    let ids = fx.ids();

    for args in [&[][..], &["--dry-run"][..], &["--json"][..]] {
        let o = fx.forget(args);
        assert_refused(&o, &["no keep rule given", "refusing to forget everything"]);
    }
    assert_eq!(fx.snapshots(), before);

    // A policy that would remove every complete snapshot of one group is refused as a whole,
    // even though web01's plan alone would be fine.
    let o = fx.forget(&["--keep-tag", "keep"]);
    assert_refused(
        &o,
        &[
            "would remove every complete snapshot of host \"web02\" label \"\"",
            "nothing was forgotten",
            "--keep-last 1",
        ],
    );
    assert!(!o.stderr.contains("web01"), "{}", o.stderr);
    assert_eq!(fx.snapshots(), before);
    for extra in [&[][..], &["--dry-run"][..], &["--json"][..]] {
        let mut args = vec!["--keep-tag", "nosuchtag"];
        args.extend_from_slice(extra);
        let o = fx.forget(&args);
        assert_refused(
            &o,
            &[
                "host \"web01\" label \"\"",
                "host \"web02\" label \"\"",
                "nothing was forgotten",
            ],
        );
    }
    assert_eq!(fx.snapshots(), before);

    // A bad duration is named.
    let o = fx.forget(&["--keep-within", "5x"]);
    assert_refused(&o, &[]);
    assert_eq!(
        o.stderr,
        "error: --keep-within \"5x\": give a number and unit, like 5d, 2w, 6m, 1y (units y m w d h)\n"
    );
    let o = fx.forget(&["--keep-within", "0d", "--keep-last", "1"]);
    assert_refused(&o, &["--keep-within \"0d\"", "more than zero"]);
    assert_eq!(fx.snapshots(), before);

    // Ids together with a rule.
    let o = fx.forget(&[&first[..8], "--keep-last", "1"]);
    assert_refused(&o, &["give snapshot ids or --keep-* rules, not both"]);
    assert_eq!(fx.snapshots(), before);

    // An unknown id is named, also next to a valid one (which then stays).
    let unknown = ["deadbeef", "feedface", "0badcafe", "12345678"]
        .into_iter()
        .find(|u| ids.iter().all(|id| !id.starts_with(u)))
        .unwrap();
    let o = fx.forget(&[unknown]);
    assert_refused(&o, &[&format!("no snapshot matches \"{unknown}\"")]);
    let o = fx.forget(&[&first[..8], unknown]);
    assert_refused(&o, &[&format!("no snapshot matches \"{unknown}\"")]);
    let o = fx.forget(&["abc"]);
    assert_refused(&o, &["snapshot \"abc\"", "at least 4 hex digits"]);
    assert_eq!(fx.snapshots(), before);

    // Usage errors are exit 2.
    let o = fx.forget(&["--keep-last", "many"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("--keep-last"), "{}", o.stderr);
    assert_eq!(fx.snapshots(), before);
}

// ---------------------------------------------------------------------------------------
// 6. Explicit ids.
// ---------------------------------------------------------------------------------------

#[test]
fn forget_named_snapshots_and_latest() {
    let fx = Fx::new();
    let s1 = fx.backup("2026-06-01T03:00:00Z", &[]);
    let s2 = fx.backup("2026-06-02T03:00:00Z", &[]);
    let s3 = fx.backup("2026-06-03T03:00:00Z", &[]);
    let s4 = fx.backup("2026-06-04T03:00:00Z", &[]);
    let t1 = fx.backup("2026-06-01T05:00:00Z", &["--host", "web02"]);
    let t2 = fx.backup("2026-06-05T03:00:00Z", &["--host", "web02"]);
    let ids =
        |list: &[&String]| -> BTreeSet<String> { list.iter().map(|s| s.to_string()).collect() };
    let entry = |t: &str, why: &str| (t.to_string(), strs(&[why]));

    // A short id and a full id.
    let v = fx.forget_json(&[&s1[..8], &s3]);
    let p = plans(&v);
    assert_eq!(
        p,
        [
            Plan {
                host: HOST.into(),
                label: String::new(),
                keep: vec![
                    entry("2026-06-04T03:00:00Z", "not named"),
                    entry("2026-06-02T03:00:00Z", "not named"),
                ],
                remove: vec![
                    entry("2026-06-03T03:00:00Z", "named"),
                    entry("2026-06-01T03:00:00Z", "named"),
                ],
            },
            Plan {
                host: "web02".into(),
                label: String::new(),
                keep: vec![
                    entry("2026-06-05T03:00:00Z", "not named"),
                    entry("2026-06-01T05:00:00Z", "not named"),
                ],
                remove: vec![],
            },
        ]
    );
    assert_eq!(v["removed"], 2);
    assert_eq!(fx.ids(), ids(&[&s2, &s4, &t1, &t2]));

    // A dry run by id removes nothing.
    let v = fx.forget_json(&[&s2[..8], "--dry-run"]);
    assert_eq!(v["groups"][0]["remove"][0]["id"], s2.as_str());
    assert_eq!(v["removed"], 0);
    assert_eq!(fx.ids(), ids(&[&s2, &s4, &t1, &t2]));

    // `latest` is the newest snapshot overall...
    let v = fx.forget_json(&["latest"]);
    let p = plans(&v);
    assert_eq!(p.len(), 2);
    assert!(p[0].remove.is_empty(), "{v}");
    assert_eq!(p[1].remove, [entry("2026-06-05T03:00:00Z", "named")]);
    assert_eq!(v["removed"], 1);
    assert_eq!(fx.ids(), ids(&[&s2, &s4, &t1]));

    // ...or of the host given.
    let v = fx.forget_json(&["--host", "web01", "latest"]);
    assert_plan_named(
        &only_plan(&v),
        &["2026-06-02T03:00:00Z"],
        &["2026-06-04T03:00:00Z"],
    );
    assert_eq!(fx.ids(), ids(&[&s2, &t1]));

    // A prefix is matched case-insensitively.
    let upper = s2[..6].to_ascii_uppercase();
    let v = fx.forget_json(&[&upper]);
    assert_eq!(v["removed"], 1);
    assert_eq!(fx.ids(), ids(&[&t1]));
}

#[track_caller]
fn assert_plan_named(p: &Plan, kept: &[&str], removed: &[&str]) {
    let e = |t: &&str, why: &str| (t.to_string(), strs(&[why]));
    assert_eq!(
        p.keep,
        kept.iter().map(|t| e(t, "not named")).collect::<Vec<_>>()
    );
    assert_eq!(
        p.remove,
        removed.iter().map(|t| e(t, "named")).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------
// 7. --prune.
// ---------------------------------------------------------------------------------------

#[test]
fn forget_prune_frees_the_forgotten_data_and_keeps_the_rest_restorable() {
    let fx = Fx::new();
    const LEN: usize = 48 * 1024;
    let mut srcs = Vec::new();
    for night in 1..=3u64 {
        let src = fx.dir.path().join(format!("night{night}"));
        fs::create_dir_all(src.join("db")).unwrap();
        fs::write(src.join("db/unique.bin"), random_bytes(9000 + night, LEN)).unwrap();
        fs::write(src.join("notes.txt"), format!("night {night}\n")).unwrap();
        let v = fx.backup_paths(&format!("2026-07-0{night}T03:00:00Z"), &[], &[&src], 0);
        assert_eq!(v["complete"], true);
        srcs.push((v["id"].as_str().unwrap().to_string(), src));
    }
    let data = fx.repo.join("data");
    let size_before = dir_size(&data);

    // A dry run with --prune changes nothing at all.
    let before = fx.snapshots();
    let v = fx.forget_json(&[
        "--keep-last",
        "1",
        "--prune",
        "--dry-run",
        "--max-unused",
        "0%",
    ]);
    assert_eq!(v["removed"], 0);
    assert_eq!(fx.snapshots(), before);
    assert_eq!(dir_size(&data), size_before);
    // ...but previews the prune as if the two older nights were already forgotten.
    let preview = v["prune"].clone();
    assert_eq!(preview["dry_run"], true, "{preview}");
    assert_eq!(preview["snapshots"], 1, "{preview}");
    assert!(
        preview["bytes_freed"].as_u64().unwrap() >= 2 * LEN as u64,
        "{preview}"
    );

    let v = fx.forget_json(&["--keep-last", "1", "--prune", "--max-unused", "0%"]);
    assert_plan(
        &only_plan(&v),
        HOST,
        "",
        &[("2026-07-03T03:00:00Z", &["last"])],
        &["2026-07-02T03:00:00Z", "2026-07-01T03:00:00Z"],
    );
    assert_eq!(v["removed"], 2);
    let r = &v["prune"];
    assert_eq!(r["dry_run"], false, "{r}");
    assert_eq!(r["snapshots"], 1, "{r}");
    // Each forgotten night had its own packs of unique data.
    assert!(r["packs_deleted"].as_u64().unwrap() >= 2, "{r}");
    assert!(
        r["packs_after"].as_u64().unwrap() < r["packs_before"].as_u64().unwrap(),
        "{r}"
    );
    let freed = r["bytes_freed"].as_u64().unwrap();
    assert!(freed >= 2 * LEN as u64, "{r}");
    // The preview promised what the real run did.
    for field in ["packs_deleted", "packs_repacked", "bytes_rewritten"] {
        assert_eq!(
            preview[field], r[field],
            "{field}: preview {preview} vs run {r}"
        );
    }
    assert_eq!(r["bytes_unused_after"], 0, "{r}");
    let size_after = dir_size(&data);
    assert!(
        size_before - size_after >= 2 * LEN as u64,
        "data/ shrank by only {} bytes",
        size_before - size_after
    );

    let (kept_id, kept_src) = &srcs[2];
    let target = fx.dir.path().join("restore");
    let o = run(sv()
        .args(["restore", &kept_id[..8], "--target"])
        .arg(&target)
        .arg("--repo")
        .arg(&fx.repo));
    assert_eq!(o.code, 0, "restore: {}", o.stderr);
    assert_trees_equal(&restored_path(&target, kept_src), kept_src);

    // A forgotten snapshot is gone.
    let o = run(sv()
        .args(["restore", &srcs[0].0[..8], "--target"])
        .arg(fx.dir.path().join("restore-old"))
        .arg("--repo")
        .arg(&fx.repo));
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("no snapshot matches"), "{}", o.stderr);

    // `check --read-data` finds the vault clean.
    let o = run(sv().args(["check", "--read-data", "--repo"]).arg(&fx.repo));
    assert_eq!(o.code, 0, "check --read-data:\n{}\n{}", o.stdout, o.stderr);
}

// ---------------------------------------------------------------------------------------
// Time zones: buckets and --keep-within follow the local calendar.
// ---------------------------------------------------------------------------------------

#[test]
fn forget_buckets_by_the_local_day_of_the_time_zone() {
    if !Path::new("/usr/share/zoneinfo/Europe/Berlin").exists() {
        eprintln!("skipped: no /usr/share/zoneinfo/Europe/Berlin");
        return;
    }
    let berlin = "Europe/Berlin";
    let fx = Fx::new();
    // In Berlin (UTC+2 in June): 23:00 on June 10, 01:30 and 22:00 on June 11.
    fx.backup("2026-06-10T21:00:00Z", &["--label", "daily"]);
    let late = fx.backup("2026-06-10T23:30:00Z", &["--label", "daily"]);
    fx.backup("2026-06-11T20:00:00Z", &["--label", "daily"]);
    // DST began in Berlin at 2026-03-29T01:00Z: one local day before 14:00 CEST on March 29
    // is 14:00 CET on March 28, i.e. 13:00Z, 23 hours earlier.
    fx.backup("2026-03-28T12:30:00Z", &["--label", "dst"]);
    fx.backup("2026-03-29T12:00:00Z", &["--label", "dst"]);
    let before = fx.snapshots();

    let daily = ["--label", "daily", "--keep-daily", "2", "--dry-run"];
    let v = fx.forget_json_tz(berlin, &daily);
    assert_plan(
        &only_plan(&v),
        HOST,
        "daily",
        &[
            ("2026-06-11T20:00:00Z", &["daily"]),
            ("2026-06-10T21:00:00Z", &["daily"]),
        ],
        &["2026-06-10T23:30:00Z"],
    );
    let v = fx.forget_json(&daily);
    assert_plan(
        &only_plan(&v),
        HOST,
        "daily",
        &[
            ("2026-06-11T20:00:00Z", &["daily"]),
            ("2026-06-10T23:30:00Z", &["daily"]),
        ],
        &["2026-06-10T21:00:00Z"],
    );
    // The text output shows local times.
    let o = fx.forget_tz(berlin, &daily);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let want = format!(
        "  remove  {}  2026-06-11 01:30:00 +02:00  complete    {NO_RULE}\n",
        &late[..8]
    );
    assert!(o.stdout.contains(&want), "{want:?} not in\n{}", o.stdout);

    let within = ["--label", "dst", "--keep-within", "1d", "--dry-run"];
    let w = "within 1d of the newest";
    let v = fx.forget_json_tz(berlin, &within);
    assert_plan(
        &only_plan(&v),
        HOST,
        "dst",
        &[("2026-03-29T12:00:00Z", &[w])],
        &["2026-03-28T12:30:00Z"],
    );
    let v = fx.forget_json(&within);
    assert_plan(
        &only_plan(&v),
        HOST,
        "dst",
        &[
            ("2026-03-29T12:00:00Z", &[w]),
            ("2026-03-28T12:30:00Z", &[w]),
        ],
        &[],
    );
    assert_eq!(fx.snapshots(), before);

    // The real run in Berlin removes the 23:30Z snapshot.
    let v = fx.forget_json_tz(berlin, &["--label", "daily", "--keep-daily", "2"]);
    assert_eq!(v["removed"], 1);
    assert_eq!(
        fx.times(),
        set(&[
            "2026-03-28T12:30:00Z",
            "2026-03-29T12:00:00Z",
            "2026-06-10T21:00:00Z",
            "2026-06-11T20:00:00Z",
        ])
    );
}
