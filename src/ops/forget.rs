//! Forgetting snapshots with a record of what went, and the chain check built on it: every
//! snapshot names its predecessor of the same host and label (`Snapshot::previous`), so a
//! predecessor that is gone and in no forget record was deleted outside sitevault (formats/ §9.3).

use std::collections::HashSet;

use jiff::Timestamp;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::snapshot::Snapshot;
use crate::vault::{SNAPSHOTS, Vault};

/// Top-level prefix of forget records.
pub(crate) const FORGETS: &str = "forgets";
pub(crate) const FORGET_VERSION: u32 = 1;

/// What one `forget` (or retention run, or `repair snapshots --forget`) removed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ForgetRecord {
    pub version: u32,
    /// The writer's clock; informational.
    pub time: Timestamp,
    pub host: String,
    /// The command that removed them, for messages.
    pub command: String,
    pub snapshots: Vec<Id>,
}

impl ForgetRecord {
    pub fn decode(bytes: &[u8], what: &str) -> Result<ForgetRecord> {
        let r: ForgetRecord =
            serde_json::from_slice(bytes).map_err(|e| Error::corrupt(what, e.to_string()))?;
        if r.version > FORGET_VERSION {
            return Err(Error::UnsupportedVersion {
                location: what.to_string(),
                found: r.version,
                supported: FORGET_VERSION,
            });
        }
        Ok(r)
    }
}

/// Delete the snapshot objects `ids`, storing a forget record naming them first (a crash
/// between leaves a record naming snapshots still present: harmless). `fence` runs before the
/// record is stored (the lock check). Returns the record's id, `None` when `ids` is empty.
pub fn forget_snapshots(
    vault: &Vault,
    ids: &[Id],
    host: &str,
    command: &str,
    fence: &dyn Fn() -> Result<()>,
) -> Result<Option<Id>> {
    if ids.is_empty() {
        return Ok(None);
    }
    fence()?;
    let record = ForgetRecord {
        version: FORGET_VERSION,
        time: Timestamp::now(),
        host: host.into(),
        command: command.into(),
        snapshots: ids.to_vec(),
    };
    let json = serde_json::to_vec(&record).expect("forget record serialises");
    let rid = vault.save_object(FORGETS, &json)?;
    for id in ids {
        vault
            .store()
            .delete(&format!("{SNAPSHOTS}/{}", id.to_hex()))?;
    }
    Ok(Some(rid))
}

/// Every forget record, read.
#[derive(Debug, Default)]
pub struct ForgetScan {
    pub records: Vec<(Id, ForgetRecord)>,
    pub unreadable: Vec<(Id, Error)>,
}

impl ForgetScan {
    /// Records whose bytes fail their hash, authentication or parsing: torn uploads of a
    /// forget that then deleted nothing (it stores the record first). Not newer versions.
    pub fn damaged(&self) -> Vec<Id> {
        self.unreadable
            .iter()
            .filter(|(_, e)| e.kind() == crate::error::ErrorKind::Corrupt)
            .map(|(id, _)| *id)
            .collect()
    }

    /// [`ForgetScan::damaged`], each confirmed by reading it twice more and getting the same
    /// damaged bytes both times: a read that flipped a bit on the way (a flaky link or proxy)
    /// must not get a sound record deleted, which would leave its snapshots' deletion looking
    /// like tampering.
    pub(crate) fn damaged_confirmed(&self, vault: &Vault) -> Vec<Id> {
        self.damaged()
            .into_iter()
            .filter(|id| {
                let name = format!("{FORGETS}/{}", id.to_hex());
                let read = || vault.store().get(&name).ok().flatten();
                match (read(), read()) {
                    (Some(a), Some(b)) if a == b => {
                        let what = name.as_str();
                        Id::of_object(&a) != *id
                            || vault
                                .sealer()
                                .open(&a, None, what)
                                .and_then(|plain| ForgetRecord::decode(&plain, what))
                                .is_err_and(|e| e.kind() == crate::error::ErrorKind::Corrupt)
                    }
                    _ => false,
                }
            })
            .collect()
    }

    pub fn forgotten(&self) -> HashSet<Id> {
        self.records
            .iter()
            .flat_map(|(_, r)| r.snapshots.iter().copied())
            .collect()
    }
}

pub fn scan_forgets(vault: &Vault) -> Result<ForgetScan> {
    let loaded: Vec<(Id, Result<ForgetRecord>)> = vault
        .list_ids(FORGETS)?
        .par_iter()
        .map(|(id, _)| {
            let what = format!("{FORGETS}/{}", id.to_hex());
            let r = vault
                .load_object(FORGETS, id)
                .and_then(|b| ForgetRecord::decode(&b, &what));
            (*id, r)
        })
        .collect();
    let mut scan = ForgetScan::default();
    for (id, r) in loaded {
        match r {
            Ok(rec) => scan.records.push((id, rec)),
            Err(e) => scan.unreadable.push((id, e)),
        }
    }
    scan.records.sort_by_key(|(id, _)| *id);
    scan.unreadable.sort_by_key(|(id, _)| *id);
    Ok(scan)
}

/// A snapshot whose predecessor is gone without a forget record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// The snapshot that vanished.
    pub missing: Id,
    /// The snapshot that names it as its predecessor.
    pub successor: Id,
    pub host: String,
    pub label: String,
    /// The successor's time: the vanished one is older.
    pub before: Timestamp,
}

/// The predecessors named by `snaps` that are neither present (`present`: every snapshot id
/// listed, readable or not) nor in `forgotten`, ascending by missing id.
pub fn chain_breaks(
    snaps: &[(Id, Snapshot)],
    present: &HashSet<Id>,
    forgotten: &HashSet<Id>,
) -> Vec<ChainBreak> {
    let mut out: Vec<ChainBreak> = snaps
        .iter()
        .filter_map(|(id, s)| {
            let p = s.previous?;
            (!present.contains(&p) && !forgotten.contains(&p)).then(|| ChainBreak {
                missing: p,
                successor: *id,
                host: s.host.clone(),
                label: s.label.clone(),
                before: s.time,
            })
        })
        .collect();
    out.sort_by_key(|b| (b.missing, b.successor));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::snapshot::Summary;
    use crate::paths::PathStyle;

    fn snap(previous: Option<Id>) -> Snapshot {
        Snapshot {
            format_version: 1,
            program_version: "t".into(),
            time: "2026-12-01T03:00:00Z".parse().unwrap(),
            host: "h".into(),
            label: "l".into(),
            tags: vec![],
            paths: vec!["/srv".into()],
            path_style: PathStyle::Unix,
            tree: Id([0; 32]),
            complete: true,
            summary: Summary::default(),
            change_tracking_days: None,
            previous,
        }
    }

    #[test]
    fn a_predecessor_gone_without_a_record_is_a_break() {
        let (a, b, c) = (Id([1; 32]), Id([2; 32]), Id([3; 32]));
        let snaps = vec![(b, snap(Some(a))), (c, snap(Some(b)))];
        let present: HashSet<Id> = [b, c].into();
        let breaks = chain_breaks(&snaps, &present, &HashSet::new());
        assert_eq!(breaks.len(), 1);
        assert_eq!((breaks[0].missing, breaks[0].successor), (a, b));
        assert!(chain_breaks(&snaps, &present, &[a].into()).is_empty());
        // The first snapshot of a chain names nothing.
        assert!(chain_breaks(&[(a, snap(None))], &[a].into(), &HashSet::new()).is_empty());
    }

    #[test]
    fn a_newer_record_asks_for_an_upgrade() {
        let json = br#"{"version":2,"time":"2026-12-01T03:00:00Z","host":"h","command":"forget","snapshots":[]}"#;
        let e = ForgetRecord::decode(json, "forgets/x").unwrap_err();
        assert!(e.to_string().contains("upgrade sitevault"), "{e}");
    }
}
