//! Snapshot records (JSON) and how a user's reference picks one.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::paths::PathStyle;

pub(crate) const SNAPSHOT_VERSION: u32 = 1;

/// What one backup run did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Summary {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// File bytes read from disk.
    pub bytes_read: u64,
    /// Bytes of new packs this run stored (after compression and encryption).
    pub bytes_added: u64,
    pub data_blobs_added: u64,
    pub tree_blobs_added: u64,
    /// Files not read because they are unchanged since the parent snapshot (size, mtime,
    /// ctime, inode): their chunk lists were reused.
    pub files_unchanged: u64,
    /// Entries that could not be read; they are missing from the snapshot.
    pub files_unreadable: u64,
    /// Files whose size or mtime changed while they were read.
    pub files_changed: u64,
    pub duration_secs: f64,
}

/// One point-in-time archive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    pub format_version: u32,
    pub program_version: String,
    pub time: Timestamp,
    pub host: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Original absolute paths as given to `backup`.
    pub paths: Vec<String>,
    pub path_style: PathStyle,
    /// Root tree: its entries are the first components of the paths.
    pub tree: Id,
    /// False when files could not be read.
    pub complete: bool,
    #[serde(default)]
    pub summary: Summary,
    /// For a Configuration Manager site backup: the SQL change-tracking retention in days.
    /// A site database older than that (before the newest site backup) cannot simply be
    /// restored: the site must reinitialise its data from other sites.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_tracking_days: Option<u32>,
    /// The newest snapshot of the same host and label when this one was written: `check`
    /// names a predecessor that vanished without a forget record (tampering, or loss).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Id>,
}

impl Snapshot {
    /// Parse a snapshot's JSON (its opened sealed string), checking `format_version` before the
    /// rest so a newer snapshot gets an upgrade message rather than a parse error. `id` and
    /// `vault` (the vault's location) name it in errors.
    pub fn decode(bytes: &[u8], id: &Id, vault: &str) -> Result<Snapshot> {
        let v: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt(format!("snapshot {id}"), e.to_string()))?;
        let newer = v
            .get("format_version")
            .and_then(|f| f.as_u64())
            .filter(|f| *f > SNAPSHOT_VERSION as u64);
        if let Some(found) = newer {
            return Err(Error::UnsupportedVersion {
                location: format!("{vault} (snapshot {})", id.short()),
                found: found.min(u32::MAX as u64) as u32,
                supported: SNAPSHOT_VERSION,
            });
        }
        serde_json::from_value(v)
            .map_err(|e| Error::corrupt(format!("snapshot {id}"), e.to_string()))
    }
}

/// A point in time as users give it: RFC 3339 (`2026-11-20T03:00:00Z`), or a civil time in
/// `tz`: `YYYY-MM-DD` (the end of that day, so its last snapshot is the one meant),
/// `YYYY-MM-DD HH:MM` or `YYYY-MM-DD HH:MM:SS` (`T` also separates).
pub fn parse_time(s: &str, tz: &jiff::tz::TimeZone) -> std::result::Result<Timestamp, String> {
    let t = s.trim();
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts);
    }
    let bad = || {
        format!(
            "{s:?} is not a time: give RFC 3339 (2026-11-20T03:00:00Z) or local YYYY-MM-DD, YYYY-MM-DD HH:MM or YYYY-MM-DD HH:MM:SS"
        )
    };
    let civil = if t.len() == 10 {
        let d: jiff::civil::Date = t.parse().map_err(|_| bad())?;
        d.to_datetime(jiff::civil::Time::MAX)
    } else {
        let normal = t.replacen('T', " ", 1);
        let full = if normal.len() == 16 {
            format!("{normal}:00")
        } else {
            normal
        };
        full.replacen(' ', "T", 1)
            .parse::<jiff::civil::DateTime>()
            .map_err(|_| bad())?
    };
    civil
        .to_zoned(tz.clone())
        .map(|z| z.timestamp())
        .map_err(|e| format!("{s:?}: {e}"))
}

/// Filters shared by commands that pick snapshots.
#[derive(Debug, Clone, Default)]
pub struct SnapshotFilter {
    pub label: Option<String>,
    pub host: Option<String>,
}

impl SnapshotFilter {
    pub fn matches(&self, s: &Snapshot) -> bool {
        self.label.as_ref().is_none_or(|l| &s.label == l)
            && self
                .host
                .as_ref()
                .is_none_or(|h| s.host.eq_ignore_ascii_case(h))
    }
}

/// The newest snapshot taken at or before `at` that matches `filter`. `snaps` must be sorted by
/// time, oldest first.
pub fn select_at<'a>(
    snaps: &'a [(Id, Snapshot)],
    at: Timestamp,
    filter: &SnapshotFilter,
) -> Result<&'a (Id, Snapshot)> {
    snaps
        .iter()
        .rev()
        .find(|(_, s)| s.time <= at && filter.matches(s))
        .ok_or_else(|| Error::SnapshotNotFound(format!("taken at or before {at}")))
}

/// Resolve `latest`, a full id or a unique prefix of at least 4 hex digits.
/// `snaps` must be sorted by time, oldest first.
pub fn select<'a>(
    snaps: &'a [(Id, Snapshot)],
    reference: &str,
    filter: &SnapshotFilter,
) -> Result<&'a (Id, Snapshot)> {
    if reference == "latest" {
        return snaps
            .iter()
            .rev()
            .find(|(_, s)| filter.matches(s))
            .ok_or_else(|| Error::SnapshotNotFound(reference.to_string()));
    }
    let r = reference.to_ascii_lowercase();
    if r.len() < 4 || r.len() > 64 || !r.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::InvalidInput(format!(
            "snapshot {reference:?}: give `latest`, a full id, or at least 4 hex digits of one"
        )));
    }
    let hits: Vec<_> = snaps
        .iter()
        .filter(|(id, _)| id.to_hex().starts_with(&r))
        .collect();
    match hits.len() {
        0 => Err(Error::SnapshotNotFound(reference.to_string())),
        1 => Ok(hits[0]),
        _ => Err(Error::AmbiguousSnapshot {
            prefix: reference.to_string(),
            matches: hits
                .iter()
                .map(|(id, _)| id.short())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Site-backup snapshots taken more than their change-tracking retention before the newest
/// site backup of the same host and label: restoring their site database costs a reinit.
pub fn outside_change_tracking(snaps: &[(Id, Snapshot)]) -> std::collections::HashSet<Id> {
    use std::collections::HashMap;
    let mut newest: HashMap<(&str, &str), Timestamp> = HashMap::new();
    for (_, s) in snaps
        .iter()
        .filter(|(_, s)| s.change_tracking_days.is_some())
    {
        let e = newest.entry((&s.host, &s.label)).or_insert(s.time);
        *e = (*e).max(s.time);
    }
    snaps
        .iter()
        .filter(|(_, s)| {
            let Some(days) = s.change_tracking_days else {
                return false;
            };
            let window = jiff::SignedDuration::from_hours(24 * days as i64);
            newest
                .get(&(s.host.as_str(), s.label.as_str()))
                .is_some_and(|n| n.duration_since(s.time) > window)
        })
        .map(|(id, _)| *id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn change_tracking_window_is_per_host_and_label() {
        let mk = |t: &str, host: &str, days: Option<u32>| Snapshot {
            format_version: SNAPSHOT_VERSION,
            program_version: "t".into(),
            time: t.parse().unwrap(),
            host: host.into(),
            label: "sccm-CEN".into(),
            tags: vec![],
            paths: vec!["/srv".into()],
            path_style: PathStyle::Unix,
            tree: Id::default(),
            complete: true,
            summary: Summary::default(),
            change_tracking_days: days,
            previous: None,
        };
        let snaps = vec![
            (Id([1; 32]), mk("2026-11-01T03:00:00Z", "a", Some(5))),
            (Id([2; 32]), mk("2026-11-05T03:00:01Z", "a", Some(5))),
            // Exactly five days before the newest: still inside.
            (Id([3; 32]), mk("2026-11-05T03:00:00Z", "b", Some(5))),
            (Id([4; 32]), mk("2026-11-10T03:00:00Z", "a", Some(5))),
            (Id([5; 32]), mk("2026-11-10T03:00:00Z", "b", Some(5))),
            // Not a site backup: never marked.
            (Id([6; 32]), mk("2026-01-01T03:00:00Z", "a", None)),
        ];
        let out = outside_change_tracking(&snaps);
        let mut got: Vec<u8> = out.iter().map(|i| i.0[0]).collect();
        got.sort();
        assert_eq!(got, vec![1]);
    }

    fn arb_snapshot() -> impl Strategy<Value = Snapshot> {
        (
            (any::<i64>(), any::<u32>()),
            "\\PC{0,20}",
            "\\PC{0,20}",
            proptest::collection::vec("\\PC{0,10}", 0..4),
            proptest::collection::vec("\\PC{0,40}", 1..4),
            any::<bool>(),
            any::<[u8; 32]>(),
            any::<bool>(),
            (any::<u64>(), any::<u64>(), any::<u64>(), 0u32..1_000_000),
        )
            .prop_map(
                |(
                    (secs, nanos),
                    host,
                    label,
                    tags,
                    paths,
                    win,
                    tree,
                    complete,
                    (files, read, added, ms),
                )| {
                    let time = Timestamp::new(
                        secs.rem_euclid(200_000_000_000) - 100_000_000_000,
                        (nanos % 1_000_000_000) as i32,
                    )
                    .unwrap_or(Timestamp::UNIX_EPOCH);
                    Snapshot {
                        format_version: SNAPSHOT_VERSION,
                        program_version: "0.1.0".into(),
                        time,
                        host,
                        label,
                        tags,
                        paths,
                        path_style: if win {
                            PathStyle::Windows
                        } else {
                            PathStyle::Unix
                        },
                        tree: Id(tree),
                        complete,
                        summary: Summary {
                            files,
                            bytes_read: read,
                            bytes_added: added,
                            duration_secs: ms as f64 / 1000.0,
                            ..Summary::default()
                        },
                        change_tracking_days: None,
                        previous: None,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn snapshot_json_round_trips(s in arb_snapshot()) {
            let json = serde_json::to_vec(&s).unwrap();
            let back: Snapshot = serde_json::from_slice(&json).unwrap();
            prop_assert_eq!(back, s);
        }
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let json = r#"{"format_version":1,"program_version":"9.9","time":"2026-11-22T03:00:00Z","host":"h",
            "paths":["/x"],"path_style":"unix","tree":"0000000000000000000000000000000000000000000000000000000000000000",
            "complete":true,"new_field":{"a":1},"summary":{"files":1,"future":2}}"#;
        let s: Snapshot = serde_json::from_str(json).unwrap();
        assert_eq!(s.summary.files, 1);
        assert_eq!(s.label, "");
    }
}
