//! Unit tests of the retention rules: plans, refusals and `--keep-within` parsing.

use super::*;
use crate::error::ErrorKind;
use crate::format::snapshot::{SNAPSHOT_VERSION, Summary};
use crate::paths::PathStyle;
use proptest::prelude::*;

fn id(n: u32) -> Id {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&n.to_be_bytes());
    Id(b)
}

fn snapshot(
    time: Timestamp,
    host: &str,
    label: &str,
    complete: bool,
    tags: Vec<String>,
) -> Snapshot {
    Snapshot {
        format_version: SNAPSHOT_VERSION,
        program_version: "0.1.0".into(),
        time,
        host: host.into(),
        label: label.into(),
        tags,
        paths: vec!["/srv".into()],
        path_style: PathStyle::Unix,
        tree: Id::default(),
        complete,
        summary: Summary::default(),
        change_tracking_days: None,
        previous: None,
    }
}

/// One snapshot per line: an RFC 3339 time, then optional `inc`, `host=H`, `label=L`,
/// `tag=T` (repeatable). Host defaults to "h". Ids are 1, 2, ... in line order.
fn snaps(lines: &[&str]) -> Vec<(Id, Snapshot)> {
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let mut words = line.split_whitespace();
            let time: Timestamp = words.next().unwrap().parse().unwrap();
            let (mut host, mut label, mut complete, mut tags) = ("h", "", true, Vec::new());
            for w in words {
                if w == "inc" {
                    complete = false;
                } else if let Some(h) = w.strip_prefix("host=") {
                    host = h;
                } else if let Some(l) = w.strip_prefix("label=") {
                    label = l;
                } else if let Some(t) = w.strip_prefix("tag=") {
                    tags.push(t.to_string());
                } else {
                    panic!("bad fixture word {w:?}");
                }
            }
            (
                id(i as u32 + 1),
                snapshot(time, host, label, complete, tags),
            )
        })
        .collect()
}

fn render(plans: &[GroupPlan]) -> String {
    let mut out = String::new();
    for p in plans {
        out += &format!("[{}/{}]\n", p.group.host, p.group.label);
        for d in &p.decisions {
            out += &format!(
                "{} {} {} {} {}\n",
                d.id.short(),
                d.time,
                if d.complete { "ok " } else { "inc" },
                if d.keep { "keep" } else { "drop" },
                d.reasons.join(", ")
            );
        }
    }
    out
}

fn expect(got: &str, want: &str) {
    let want: Vec<&str> = want
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let got_lines: Vec<&str> = got.lines().collect();
    assert_eq!(got_lines, want, "\ngot:\n{got}");
}

fn run_in(lines: &[&str], policy: &Policy, tz: &TimeZone) -> String {
    render(&plan(&snaps(lines), policy, tz).unwrap())
}

fn run(lines: &[&str], policy: &Policy) -> String {
    run_in(lines, policy, &TimeZone::UTC)
}

fn within(s: &str) -> Option<KeepWithin> {
    Some(s.parse().unwrap())
}

fn berlin() -> TimeZone {
    TimeZone::get("Europe/Berlin").unwrap_or_else(|_| TimeZone::fixed(jiff::tz::offset(1)))
}

#[test]
fn keep_last() {
    let got = run(
        &[
            "2026-01-01T00:00:00Z",
            "2026-01-02T00:00:00Z",
            "2026-01-03T00:00:00Z",
            "2026-01-04T00:00:00Z",
            "2026-01-05T00:00:00Z",
        ],
        &Policy {
            keep_last: 3,
            ..Policy::default()
        },
    );
    expect(
        &got,
        "[h/]
            00000005 2026-01-05T00:00:00Z ok  keep last
            00000004 2026-01-04T00:00:00Z ok  keep last
            00000003 2026-01-03T00:00:00Z ok  keep last
            00000002 2026-01-02T00:00:00Z ok  drop matched no keep rule
            00000001 2026-01-01T00:00:00Z ok  drop matched no keep rule",
    );
}

#[test]
fn keep_hourly_keeps_newest_per_hour() {
    let got = run(
        &[
            "2026-03-01T10:05:00Z",
            "2026-03-01T10:40:00Z",
            "2026-03-01T11:10:00Z",
            "2026-03-01T12:59:59Z",
            "2026-03-01T13:00:00Z",
        ],
        &Policy {
            keep_hourly: 3,
            ..Policy::default()
        },
    );
    expect(
        &got,
        "[h/]
            00000005 2026-03-01T13:00:00Z ok  keep hourly
            00000004 2026-03-01T12:59:59Z ok  keep hourly
            00000003 2026-03-01T11:10:00Z ok  keep hourly
            00000002 2026-03-01T10:40:00Z ok  drop matched no keep rule
            00000001 2026-03-01T10:05:00Z ok  drop matched no keep rule",
    );
}

#[test]
fn keep_daily_across_midnight_and_gaps() {
    // Feb 21..28 have no snapshots and do not count.
    let got = run(
        &[
            "2026-02-19T12:00:00Z",
            "2026-02-20T12:00:00Z",
            "2026-03-01T23:59:59Z",
            "2026-03-02T00:00:00Z",
            "2026-03-02T00:00:01Z",
        ],
        &Policy {
            keep_daily: 3,
            ..Policy::default()
        },
    );
    expect(
        &got,
        "[h/]
            00000005 2026-03-02T00:00:01Z ok  keep daily
            00000004 2026-03-02T00:00:00Z ok  drop matched no keep rule
            00000003 2026-03-01T23:59:59Z ok  keep daily
            00000002 2026-02-20T12:00:00Z ok  keep daily
            00000001 2026-02-19T12:00:00Z ok  drop matched no keep rule",
    );
}

#[test]
fn iso_weeks_at_year_boundaries() {
    let week = |s: &str| {
        let z = s.parse::<Timestamp>().unwrap().to_zoned(TimeZone::UTC);
        match Period::Weekly.bucket(&z) {
            Bucket::Week(y, w) => (y, w),
            _ => unreachable!(),
        }
    };
    assert_eq!(week("2026-12-27T12:00:00Z"), (2026, 52));
    assert_eq!(week("2026-12-28T00:00:00Z"), (2026, 53));
    assert_eq!(week("2026-12-31T12:00:00Z"), (2026, 53));
    assert_eq!(week("2027-01-01T12:00:00Z"), (2026, 53));
    assert_eq!(week("2027-01-03T23:59:59Z"), (2026, 53));
    assert_eq!(week("2027-01-04T00:00:00Z"), (2027, 1));
    assert_eq!(week("2024-12-29T12:00:00Z"), (2024, 52));
    assert_eq!(week("2024-12-30T12:00:00Z"), (2025, 1));
    assert_eq!(week("2020-12-31T12:00:00Z"), (2020, 53));
    assert_eq!(week("2021-01-01T12:00:00Z"), (2020, 53));
}

#[test]
fn keep_weekly_across_iso_year_with_week_53() {
    let got = run(
        &[
            "2026-12-27T12:00:00Z", // Sun, 2026-W52
            "2026-12-28T12:00:00Z", // Mon, 2026-W53
            "2026-12-31T12:00:00Z", // Thu, 2026-W53
            "2027-01-01T12:00:00Z", // Fri, 2026-W53
            "2027-01-03T12:00:00Z", // Sun, 2026-W53
            "2027-01-04T12:00:00Z", // Mon, 2027-W01
        ],
        &Policy {
            keep_weekly: 3,
            ..Policy::default()
        },
    );
    expect(
        &got,
        "[h/]
            00000006 2027-01-04T12:00:00Z ok  keep weekly
            00000005 2027-01-03T12:00:00Z ok  keep weekly
            00000004 2027-01-01T12:00:00Z ok  drop matched no keep rule
            00000003 2026-12-31T12:00:00Z ok  drop matched no keep rule
            00000002 2026-12-28T12:00:00Z ok  drop matched no keep rule
            00000001 2026-12-27T12:00:00Z ok  keep weekly",
    );
}

#[test]
fn keep_weekly_when_iso_year_starts_in_december() {
    let got = run(
        &[
            "2024-12-29T12:00:00Z", // Sun, 2024-W52
            "2024-12-30T12:00:00Z", // Mon, 2025-W01
            "2025-01-01T12:00:00Z", // Wed, 2025-W01
        ],
        &Policy {
            keep_weekly: 2,
            ..Policy::default()
        },
    );
    expect(
        &got,
        "[h/]
            00000003 2025-01-01T12:00:00Z ok  keep weekly
            00000002 2024-12-30T12:00:00Z ok  drop matched no keep rule
            00000001 2024-12-29T12:00:00Z ok  keep weekly",
    );
}

#[test]
fn keep_monthly_across_month_ends_leap_day_and_new_year() {
    let lines = [
        "2027-12-31T12:00:00Z",
        "2028-01-01T12:00:00Z",
        "2028-01-31T23:59:59Z",
        "2028-02-01T00:00:00Z",
        "2028-02-29T12:00:00Z",
        "2028-03-01T00:00:00Z",
    ];
    expect(
        &run(
            &lines,
            &Policy {
                keep_monthly: 3,
                ..Policy::default()
            },
        ),
        "[h/]
            00000006 2028-03-01T00:00:00Z ok  keep monthly
            00000005 2028-02-29T12:00:00Z ok  keep monthly
            00000004 2028-02-01T00:00:00Z ok  drop matched no keep rule
            00000003 2028-01-31T23:59:59Z ok  keep monthly
            00000002 2028-01-01T12:00:00Z ok  drop matched no keep rule
            00000001 2027-12-31T12:00:00Z ok  drop matched no keep rule",
    );
    expect(
        &run(
            &lines,
            &Policy {
                keep_monthly: 4,
                ..Policy::default()
            },
        ),
        "[h/]
            00000006 2028-03-01T00:00:00Z ok  keep monthly
            00000005 2028-02-29T12:00:00Z ok  keep monthly
            00000004 2028-02-01T00:00:00Z ok  drop matched no keep rule
            00000003 2028-01-31T23:59:59Z ok  keep monthly
            00000002 2028-01-01T12:00:00Z ok  drop matched no keep rule
            00000001 2027-12-31T12:00:00Z ok  keep monthly",
    );
    // Non-leap February.
    expect(
        &run(
            &[
                "2027-01-31T12:00:00Z",
                "2027-02-28T23:59:59Z",
                "2027-03-01T00:00:00Z",
                "2027-03-15T00:00:00Z",
            ],
            &Policy {
                keep_monthly: 2,
                ..Policy::default()
            },
        ),
        "[h/]
            00000004 2027-03-15T00:00:00Z ok  keep monthly
            00000003 2027-03-01T00:00:00Z ok  drop matched no keep rule
            00000002 2027-02-28T23:59:59Z ok  keep monthly
            00000001 2027-01-31T12:00:00Z ok  drop matched no keep rule",
    );
}

#[test]
fn keep_yearly() {
    let got = run(
        &[
            "2024-06-01T00:00:00Z",
            "2024-12-31T23:59:59Z",
            "2025-01-01T00:00:00Z",
            "2025-07-01T00:00:00Z",
            "2026-02-01T00:00:00Z",
        ],
        &Policy {
            keep_yearly: 2,
            ..Policy::default()
        },
    );
    expect(
        &got,
        "[h/]
            00000005 2026-02-01T00:00:00Z ok  keep yearly
            00000004 2025-07-01T00:00:00Z ok  keep yearly
            00000003 2025-01-01T00:00:00Z ok  drop matched no keep rule
            00000002 2024-12-31T23:59:59Z ok  drop matched no keep rule
            00000001 2024-06-01T00:00:00Z ok  drop matched no keep rule",
    );
}

#[test]
fn keep_within_uses_calendar_arithmetic() {
    // (duration, newest, oldest kept, newest dropped)
    let cases = [
        (
            "5d",
            "2026-03-10T12:00:00Z",
            "2026-03-05T12:00:00Z",
            "2026-03-05T11:59:59Z",
        ),
        (
            "2w",
            "2026-03-10T12:00:00Z",
            "2026-02-24T12:00:00Z",
            "2026-02-24T11:59:59Z",
        ),
        (
            "6m",
            "2026-08-31T10:00:00Z",
            "2026-02-28T10:00:00Z",
            "2026-02-28T09:59:59Z",
        ),
        (
            "1m",
            "2026-03-31T00:00:00Z",
            "2026-02-28T00:00:00Z",
            "2026-02-27T23:59:59Z",
        ),
        (
            "1y",
            "2028-02-29T12:00:00Z",
            "2027-02-28T12:00:00Z",
            "2027-02-28T11:59:59Z",
        ),
        (
            "1y6m",
            "2026-08-31T00:00:00Z",
            "2025-02-28T00:00:00Z",
            "2025-02-27T23:59:59Z",
        ),
        (
            "12h",
            "2026-03-10T12:00:00Z",
            "2026-03-10T00:00:00Z",
            "2026-03-09T23:59:59Z",
        ),
    ];
    for (d, newest, kept, dropped) in cases {
        let got = run(
            &[dropped, kept, newest],
            &Policy {
                keep_within: within(d),
                ..Policy::default()
            },
        );
        let want = format!(
            "[h/]
                00000003 {newest} ok  keep within {d} of the newest
                00000002 {kept} ok  keep within {d} of the newest
                00000001 {dropped} ok  drop matched no keep rule"
        );
        expect(&got, &want);
    }
}

#[test]
fn keep_within_counts_from_newest_even_if_incomplete() {
    let got = run(
        &[
            "2026-03-01T00:00:00Z",
            "2026-03-04T00:00:00Z",
            "2026-03-10T00:00:00Z inc",
        ],
        &Policy {
            keep_within: within("1w"),
            ..Policy::default()
        },
    );
    expect(
        &got,
        "[h/]
            00000003 2026-03-10T00:00:00Z inc keep within 1w of the newest
            00000002 2026-03-04T00:00:00Z ok  keep within 1w of the newest
            00000001 2026-03-01T00:00:00Z ok  drop matched no keep rule",
    );
}

#[test]
fn keep_tags() {
    let got = run(
        &[
            "2026-01-01T00:00:00Z tag=other",
            "2026-01-02T00:00:00Z tag=keep tag=monthly",
            "2026-01-03T00:00:00Z tag=keep",
            "2026-01-04T00:00:00Z",
        ],
        &Policy {
            keep_last: 1,
            keep_tags: vec!["monthly".into(), "keep".into(), "monthly".into()],
            ..Policy::default()
        },
    );
    expect(
        &got,
        "[h/]
            00000004 2026-01-04T00:00:00Z ok  keep last
            00000003 2026-01-03T00:00:00Z ok  keep tagged keep
            00000002 2026-01-02T00:00:00Z ok  keep tagged monthly, tagged keep
            00000001 2026-01-01T00:00:00Z ok  drop matched no keep rule",
    );
}

#[test]
fn union_lists_every_reason_in_order() {
    let got = run(
        &[
            "2025-12-31T08:00:00Z",
            "2026-04-30T08:00:00Z",
            "2026-05-14T08:00:00Z",
            "2026-05-15T08:00:00Z tag=x",
            "2026-05-01T08:00:00Z",
        ],
        &Policy {
            keep_last: 1,
            keep_hourly: 1,
            keep_daily: 2,
            keep_weekly: 1,
            keep_monthly: 2,
            keep_yearly: 2,
            keep_within: within("1d"),
            keep_tags: vec!["x".into()],
        },
    );
    expect(
            &got,
            "[h/]
            00000004 2026-05-15T08:00:00Z ok  keep last, hourly, daily, weekly, monthly, yearly, within 1d of the newest, tagged x
            00000003 2026-05-14T08:00:00Z ok  keep daily, within 1d of the newest
            00000005 2026-05-01T08:00:00Z ok  drop matched no keep rule
            00000002 2026-04-30T08:00:00Z ok  keep monthly
            00000001 2025-12-31T08:00:00Z ok  keep yearly",
        );
}

#[test]
fn groups_by_host_case_insensitively_and_label() {
    let got = run(
        &[
            "2026-01-01T00:00:00Z host=web1",
            "2026-01-03T00:00:00Z host=WEB1",
            "2026-01-02T00:00:00Z host=web1 label=sites",
            "2026-01-02T00:00:00Z host=db",
            "2026-01-01T00:00:00Z host=Zeta",
            "2026-01-01T00:00:00Z host=alpha",
            "2026-01-01T00:00:00Z host=web1 label=Sites",
        ],
        &Policy {
            keep_last: 1,
            ..Policy::default()
        },
    );
    expect(
        &got,
        "[alpha/]
            00000006 2026-01-01T00:00:00Z ok  keep last
            [db/]
            00000004 2026-01-02T00:00:00Z ok  keep last
            [WEB1/]
            00000002 2026-01-03T00:00:00Z ok  keep last
            00000001 2026-01-01T00:00:00Z ok  drop matched no keep rule
            [web1/Sites]
            00000007 2026-01-01T00:00:00Z ok  keep last
            [web1/sites]
            00000003 2026-01-02T00:00:00Z ok  keep last
            [Zeta/]
            00000005 2026-01-01T00:00:00Z ok  keep last",
    );
}

#[test]
fn equal_times_are_ordered_by_id_descending() {
    let got = run(
        &[
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00Z",
        ],
        &Policy {
            keep_daily: 1,
            ..Policy::default()
        },
    );
    expect(
        &got,
        "[h/]
            00000003 2026-01-01T00:00:00Z ok  keep daily
            00000002 2026-01-01T00:00:00Z ok  drop matched no keep rule
            00000001 2026-01-01T00:00:00Z ok  drop matched no keep rule",
    );
}

#[test]
fn complete_snapshot_wins_its_bucket_over_newer_incomplete() {
    let got = run(
        &[
            "2026-05-31T10:00:00Z",
            "2026-06-01T10:00:00Z",
            "2026-06-01T22:00:00Z inc",
        ],
        &Policy {
            keep_daily: 1,
            ..Policy::default()
        },
    );
    expect(
        &got,
        "[h/]
            00000003 2026-06-01T22:00:00Z inc drop matched no keep rule
            00000002 2026-06-01T10:00:00Z ok  keep daily
            00000001 2026-05-31T10:00:00Z ok  drop matched no keep rule",
    );
}

#[test]
fn incomplete_only_days_do_not_count() {
    let got = run(
        &[
            "2026-06-01T12:00:00Z",
            "2026-06-02T06:00:00Z inc",
            "2026-06-02T12:00:00Z",
            "2026-06-03T12:00:00Z",
            "2026-06-04T12:00:00Z inc",
            "2026-06-05T12:00:00Z inc",
            "2026-06-05T08:00:00Z inc",
        ],
        &Policy {
            keep_daily: 2,
            ..Policy::default()
        },
    );
    expect(
        &got,
        "[h/]
            00000006 2026-06-05T12:00:00Z inc keep daily (incomplete, no complete snapshot that day)
            00000007 2026-06-05T08:00:00Z inc drop matched no keep rule
            00000005 2026-06-04T12:00:00Z inc keep daily (incomplete, no complete snapshot that day)
            00000004 2026-06-03T12:00:00Z ok  keep daily
            00000003 2026-06-02T12:00:00Z ok  keep daily
            00000002 2026-06-02T06:00:00Z inc drop matched no keep rule
            00000001 2026-06-01T12:00:00Z ok  drop matched no keep rule",
    );
}

#[test]
fn incomplete_only_bucket_after_the_window_is_dropped() {
    let got = run(
        &["2026-06-01T12:00:00Z inc", "2026-06-02T12:00:00Z"],
        &Policy {
            keep_daily: 1,
            ..Policy::default()
        },
    );
    expect(
        &got,
        "[h/]
            00000002 2026-06-02T12:00:00Z ok  keep daily
            00000001 2026-06-01T12:00:00Z inc drop matched no keep rule",
    );
}

#[test]
fn keep_last_counts_only_complete_snapshots() {
    let got = run(
        &[
            "2026-01-01T00:00:00Z",
            "2026-01-02T00:00:00Z",
            "2026-01-03T00:00:00Z inc",
            "2026-01-04T00:00:00Z",
            "2026-01-05T00:00:00Z inc",
        ],
        &Policy {
            keep_last: 2,
            ..Policy::default()
        },
    );
    expect(
        &got,
        "[h/]
            00000005 2026-01-05T00:00:00Z inc keep last (incomplete)
            00000004 2026-01-04T00:00:00Z ok  keep last
            00000003 2026-01-03T00:00:00Z inc keep last (incomplete)
            00000002 2026-01-02T00:00:00Z ok  keep last
            00000001 2026-01-01T00:00:00Z ok  drop matched no keep rule",
    );
}

#[test]
fn incomplete_weekly_and_every_reason_suffix() {
    let got = run(
        &["2026-06-03T12:00:00Z", "2026-06-04T12:00:00Z inc"],
        &Policy {
            keep_weekly: 1,
            ..Policy::default()
        },
    );
    expect(
        &got,
        "[h/]
            00000002 2026-06-04T12:00:00Z inc drop matched no keep rule
            00000001 2026-06-03T12:00:00Z ok  keep weekly",
    );
    // A group with only incomplete snapshots: each rule keeps at most N of them.
    let got = run(
        &["2026-06-03T12:00:00Z inc", "2026-06-04T12:00:00Z inc"],
        &Policy {
            keep_last: 1,
            keep_hourly: 1,
            keep_daily: 1,
            keep_weekly: 1,
            keep_monthly: 1,
            keep_yearly: 1,
            ..Policy::default()
        },
    );
    expect(
            &got,
            "[h/]
            00000002 2026-06-04T12:00:00Z inc keep last (incomplete), hourly (incomplete, no complete snapshot that hour), daily (incomplete, no complete snapshot that day), weekly (incomplete, no complete snapshot that week), monthly (incomplete, no complete snapshot that month), yearly (incomplete, no complete snapshot that year)
            00000001 2026-06-03T12:00:00Z inc drop matched no keep rule",
        );
    // Failed nights after good ones: up to N failed ones are kept on top of N good ones.
    let got = run(
        &[
            "2026-06-01T03:00:00Z",
            "2026-06-02T03:00:00Z",
            "2026-06-03T03:00:00Z inc",
            "2026-06-04T03:00:00Z inc",
            "2026-06-05T03:00:00Z inc",
        ],
        &Policy {
            keep_daily: 2,
            ..Policy::default()
        },
    );
    expect(
        &got,
        "[h/]
            00000005 2026-06-05T03:00:00Z inc keep daily (incomplete, no complete snapshot that day)
            00000004 2026-06-04T03:00:00Z inc keep daily (incomplete, no complete snapshot that day)
            00000003 2026-06-03T03:00:00Z inc drop matched no keep rule
            00000002 2026-06-02T03:00:00Z ok  keep daily
            00000001 2026-06-01T03:00:00Z ok  keep daily",
    );
}

fn refusal(lines: &[&str], policy: &Policy) -> String {
    match plan(&snaps(lines), policy, &TimeZone::UTC) {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            e.to_string()
        }
        Ok(p) => panic!("expected a refusal, got:\n{}", render(&p)),
    }
}

#[test]
fn empty_policy_is_refused() {
    let msg = refusal(&["2026-01-01T00:00:00Z"], &Policy::default());
    assert!(msg.contains("no keep rule"), "{msg}");
    assert!(
        msg.contains("--keep-last") && msg.contains("snapshot ids"),
        "{msg}"
    );
    assert!(Policy::default().is_empty());
    assert!(
        !Policy {
            keep_tags: vec!["x".into()],
            ..Policy::default()
        }
        .is_empty()
    );
    assert!(
        !Policy {
            keep_within: within("1h"),
            ..Policy::default()
        }
        .is_empty()
    );
    // Even with no snapshots at all.
    assert!(plan(&[], &Policy::default(), &TimeZone::UTC).is_err());
    assert!(
        plan(
            &[],
            &Policy {
                keep_last: 1,
                ..Policy::default()
            },
            &TimeZone::UTC
        )
        .unwrap()
        .is_empty()
    );
}

#[test]
fn removing_every_complete_snapshot_is_refused() {
    // Tags only: the tagged snapshot is incomplete; the other group is fine, but the
    // whole plan fails.
    let msg = refusal(
        &[
            "2026-01-01T00:00:00Z host=web1 label=sites",
            "2026-01-02T00:00:00Z host=web1 label=sites inc tag=keep",
            "2026-01-01T00:00:00Z host=db tag=keep",
        ],
        &Policy {
            keep_tags: vec!["keep".into()],
            ..Policy::default()
        },
    );
    assert_eq!(
        msg,
        "the policy would remove every complete snapshot of host \"web1\" label \"sites\"; \
             nothing was forgotten. Add --keep-last 1 (or another count rule) to keep the newest \
             complete snapshot"
    );
    // Within only, with an incomplete newest snapshot far from the last good one.
    let msg = refusal(
        &["2026-06-01T00:00:00Z", "2026-06-10T00:00:00Z inc"],
        &Policy {
            keep_within: within("2d"),
            ..Policy::default()
        },
    );
    assert!(msg.contains("host \"h\" label \"\""), "{msg}");
    assert!(msg.contains("every complete snapshot"), "{msg}");
}

#[test]
fn groups_without_complete_snapshots_are_not_refused() {
    let got = run(
        &[
            "2026-01-01T00:00:00Z inc",
            "2026-01-02T00:00:00Z tag=x host=other",
        ],
        &Policy {
            keep_tags: vec!["x".into()],
            ..Policy::default()
        },
    );
    expect(
        &got,
        "[h/]
            00000001 2026-01-01T00:00:00Z inc drop matched no keep rule
            [other/]
            00000002 2026-01-02T00:00:00Z ok  keep tagged x",
    );
}

#[test]
fn buckets_follow_the_given_zone() {
    // 23:30 UTC on Jan 10 is 00:30 on Jan 11 in Berlin (UTC+1 in winter).
    let lines = [
        "2026-01-10T22:30:00Z",
        "2026-01-10T23:30:00Z",
        "2026-01-11T12:00:00Z",
    ];
    let policy = Policy {
        keep_daily: 2,
        ..Policy::default()
    };
    expect(
        &run_in(&lines, &policy, &berlin()),
        "[h/]
            00000003 2026-01-11T12:00:00Z ok  keep daily
            00000002 2026-01-10T23:30:00Z ok  drop matched no keep rule
            00000001 2026-01-10T22:30:00Z ok  keep daily",
    );
    expect(
        &run(&lines, &policy),
        "[h/]
            00000003 2026-01-11T12:00:00Z ok  keep daily
            00000002 2026-01-10T23:30:00Z ok  keep daily
            00000001 2026-01-10T22:30:00Z ok  drop matched no keep rule",
    );
}

#[test]
fn keep_within_days_are_local_calendar_days() {
    let Ok(tz) = TimeZone::get("Europe/Berlin") else {
        return; // needs the tz database for the DST change
    };
    // Berlin moves to CEST on 2026-03-29: that local day has 23 hours, so one day
    // before 12:00 CEST (10:00Z) is 12:00 CET on the 28th (11:00Z).
    let lines = [
        "2026-03-28T10:59:00Z",
        "2026-03-28T11:00:00Z",
        "2026-03-29T10:00:00Z",
    ];
    let policy = Policy {
        keep_within: within("1d"),
        ..Policy::default()
    };
    expect(
        &run_in(&lines, &policy, &tz),
        "[h/]
            00000003 2026-03-29T10:00:00Z ok  keep within 1d of the newest
            00000002 2026-03-28T11:00:00Z ok  keep within 1d of the newest
            00000001 2026-03-28T10:59:00Z ok  drop matched no keep rule",
    );
    expect(
        &run(&lines, &policy),
        "[h/]
            00000003 2026-03-29T10:00:00Z ok  keep within 1d of the newest
            00000002 2026-03-28T11:00:00Z ok  keep within 1d of the newest
            00000001 2026-03-28T10:59:00Z ok  keep within 1d of the newest",
    );
}

#[test]
fn keep_within_parses_and_displays() {
    for (text, canonical) in [
        ("5d", "5d"),
        ("2w", "2w"),
        ("6m", "6m"),
        ("1y", "1y"),
        ("12h", "12h"),
        ("1y6m", "1y6m"),
        ("2w3d", "2w3d"),
        ("3d2w", "2w3d"),
        ("1y0m", "1y"),
        ("007d", "7d"),
        ("1y2m3w4d5h", "1y2m3w4d5h"),
        ("19998y", "19998y"),
    ] {
        let kw: KeepWithin = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(kw.to_string(), canonical, "{text}");
        assert_eq!(canonical.parse::<KeepWithin>().unwrap(), kw, "{text}");
    }
    assert_eq!(
        "1y6m".parse::<KeepWithin>().unwrap(),
        KeepWithin {
            years: 1,
            months: 6,
            weeks: 0,
            days: 0,
            hours: 0
        }
    );
    for bad in [
        "",
        "5x",
        "5",
        "d",
        "5 d",
        " 5d",
        "5d ",
        "-5d",
        "+5d",
        "5D",
        "5M",
        "1.5d",
        "0d",
        "0y0m",
        "1d1d",
        "1y2m1y",
        "99999999999d",
        "20000y",
        "5dd",
        "d5",
        "５d",
    ] {
        let err = bad.parse::<KeepWithin>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("--keep-within {bad:?}: ")),
            "{msg}"
        );
        assert!(msg.ends_with(ACCEPTED), "{msg}");
    }
    assert_eq!(
        "5x".parse::<KeepWithin>().unwrap_err().to_string(),
        "--keep-within \"5x\": give a number and unit, like 5d, 2w, 6m, 1y (units y m w d h)"
    );
}

#[test]
fn plan_ids_forgets_exactly_the_named() {
    let s = snaps(&[
        "2026-01-01T00:00:00Z",
        "2026-01-02T00:00:00Z inc",
        "2026-01-03T00:00:00Z host=db",
    ]);
    let got = render(&plan_ids(&s, &[id(2), id(3), id(99)]));
    expect(
        &got,
        "[db/]
            00000003 2026-01-03T00:00:00Z ok  drop named
            [h/]
            00000002 2026-01-02T00:00:00Z inc drop named
            00000001 2026-01-01T00:00:00Z ok  keep not named",
    );
}

// ---- properties ----

fn has_count_rule(p: &Policy) -> bool {
    p.keep_last > 0 || Period::ALL.iter().any(|&per| per.count(p) > 0)
}

fn arb_snaps() -> impl Strategy<Value = Vec<(Id, Snapshot)>> {
    let one = (
        // Wide spread for yearly buckets, narrow for ties and shared buckets.
        prop_oneof![0i64..20_000, 0i64..40],
        prop::sample::select(vec!["a", "A", "b"]),
        prop::sample::select(vec!["", "x"]),
        prop::bool::weighted(0.7),
        prop::sample::subsequence(vec!["t1", "t2"], 0..=2),
    );
    prop::collection::vec(one, 0..40).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (k, host, label, complete, tags))| {
                let time = Timestamp::from_second(1_735_689_600 + k * 5_400).unwrap();
                let tags = tags.into_iter().map(String::from).collect();
                (
                    id(i as u32 * 7919 % 1_000_003),
                    snapshot(time, host, label, complete, tags),
                )
            })
            .collect()
    })
}

fn count() -> impl Strategy<Value = u32> {
    prop_oneof![3 => Just(0u32), 1 => 1u32..4]
}

fn arb_policy() -> impl Strategy<Value = Policy> {
    (
        // Mostly 0 per rule, so within/tags-only policies (which can refuse) are common.
        (count(), count(), count(), count(), count(), count()),
        prop::option::of(prop::sample::select(vec![
            "12h", "5d", "2w", "6m", "1y", "1y6m",
        ])),
        prop::sample::subsequence(vec!["t1", "t3"], 0..=2),
    )
        .prop_map(|((l, h, d, w, m, y), within, tags)| Policy {
            keep_last: l,
            keep_hourly: h,
            keep_daily: d,
            keep_weekly: w,
            keep_monthly: m,
            keep_yearly: y,
            keep_within: within.map(|s| s.parse().unwrap()),
            keep_tags: tags.into_iter().map(String::from).collect(),
        })
}

fn arb_tz() -> impl Strategy<Value = TimeZone> {
    prop::sample::select(vec![
        TimeZone::UTC,
        TimeZone::fixed(jiff::tz::offset(1)),
        TimeZone::fixed(jiff::tz::offset(-5)),
        TimeZone::fixed(jiff::tz::offset(13)),
        berlin(),
    ])
}

proptest! {
    #[test]
    fn plan_properties(
        (snaps, shuffled) in arb_snaps().prop_flat_map(|s| (Just(s.clone()), Just(s).prop_shuffle())),
        policy in arb_policy(),
        tz in arb_tz(),
    ) {
        let result = plan(&snaps, &policy, &tz);
        // (d) input order does not matter.
        match (&result, plan(&shuffled, &policy, &tz)) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, &b),
            (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
            _ => prop_assert!(false, "order changed the outcome"),
        }
        let plans = match result {
            Ok(p) => p,
            Err(e) => {
                prop_assert_eq!(e.kind(), ErrorKind::InvalidInput);
                prop_assert!(!has_count_rule(&policy), "count rules never refuse: {}", e);
                return Ok(());
            }
        };
        // (a) every snapshot exactly once.
        let mut seen: Vec<Id> = plans.iter().flat_map(|p| p.decisions.iter().map(|d| d.id)).collect();
        let mut want: Vec<Id> = snaps.iter().map(|(id, _)| *id).collect();
        seen.sort();
        want.sort();
        prop_assert_eq!(seen, want);
        let by_id: HashMap<Id, &Snapshot> = snaps.iter().map(|(id, s)| (*id, s)).collect();
        for p in &plans {
            prop_assert!(!p.decisions.is_empty());
            for pair in p.decisions.windows(2) {
                prop_assert!((pair[0].time, pair[0].id) > (pair[1].time, pair[1].id));
            }
            for d in &p.decisions {
                let s = by_id[&d.id];
                prop_assert!(s.host.eq_ignore_ascii_case(&p.group.host));
                prop_assert_eq!(&s.label, &p.group.label);
                // (b) kept snapshots say why; removed ones have the single reason.
                if d.keep {
                    prop_assert!(!d.reasons.is_empty());
                } else {
                    prop_assert_eq!(&d.reasons, &vec![NO_RULE.to_string()]);
                }
            }
            // (c) and the refusal guarantee.
            let newest_complete = p.decisions.iter().find(|d| d.complete);
            if let Some(nc) = newest_complete {
                prop_assert!(p.decisions.iter().any(|d| d.complete && d.keep));
                if has_count_rule(&policy) {
                    prop_assert!(nc.keep, "newest complete {:?} removed", nc.id);
                }
            }
        }
    }

    #[test]
    fn keep_within_display_round_trips(f in prop::array::uniform5(0u32..50)) {
        let [years, months, weeks, days, hours] = f;
        let kw = KeepWithin { years, months, weeks, days, hours };
        let parsed = kw.to_string().parse::<KeepWithin>();
        if f.iter().all(|&n| n == 0) {
            prop_assert!(parsed.is_err());
        } else {
            prop_assert_eq!(parsed.unwrap(), kw);
        }
    }
}
