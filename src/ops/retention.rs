//! Retention planning for `sitevault forget`: which snapshots a keep policy keeps.
//!
//! Pure: no I/O, no environment, no clock. The caller passes the time zone in which
//! calendar buckets are formed (the CLI passes the system zone).
//!
//! # Contract
//!
//! Snapshots are split into groups by host (ASCII case-insensitive; the group shows the
//! host text of its newest snapshot) and label (exact). Each group is planned on its own.
//! Within a group snapshots are ordered newest first; equal times are ordered by id,
//! highest first, so plans are deterministic.
//!
//! Every rule is evaluated independently over the group and the kept set is the union.
//! A kept snapshot lists every rule that kept it, in the order last, hourly, daily,
//! weekly, monthly, yearly, within, tag. A removed snapshot has the single reason
//! "matched no keep rule".
//!
//! * `keep_last N`: the N newest snapshots.
//! * `keep_hourly/daily/weekly/monthly/yearly N`: snapshots fall into buckets by their
//!   local time in the given zone: (date, hour), date, ISO 8601 week (ISO week-year and
//!   week number, so 2026-12-31 and 2027-01-01 are both 2026-W53), (year, month), year.
//!   Buckets are walked newest to oldest; each bucket keeps its newest snapshot and
//!   counts, until N buckets have been counted. Periods without snapshots do not count:
//!   `keep_daily 7` means "the last 7 days that have snapshots", as in restic.
//! * `keep_within D`: every snapshot no older than the group's newest snapshot (complete
//!   or not) minus D, computed with calendar arithmetic in the given zone (one month
//!   before March 31 is February 28; one day is one local calendar day, 23 or 25 hours
//!   across a DST change).
//! * `keep_tags`: every snapshot carrying any of the tags (exact match).
//!
//! ## Incomplete snapshots (unlike restic)
//!
//! A snapshot with `complete == false` (some files could not be read) never takes the
//! place of a complete one: a bucket holding a complete snapshot keeps its newest
//! complete snapshot, even when an incomplete one is newer. A bucket holding only
//! incomplete snapshots keeps its newest one while the walk is still running, but does
//! not count toward N; at most N such buckets are kept per rule, so a rule keeps at most
//! 2N snapshots even for a host whose every run fails. `keep_last` likewise counts only
//! complete snapshots and keeps up to N incomplete ones it passes on the way. So a run of
//! failed nights never pushes a good archive out of the window. Such keeps say
//! "(incomplete ...)" in their reason.
//!
//! ## Refusals
//!
//! An empty policy is refused (forgetting everything is never what was meant). A plan
//! that would remove every complete snapshot of a group that has one is refused as a
//! whole: nothing is removed. That can only happen with `keep_within` and `keep_tags`
//! alone, since every count rule keeps the newest complete snapshot.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Zoned};

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::snapshot::Snapshot;

/// What `forget` keeps; see the module documentation for the exact semantics.
///
/// A count of 0 turns that rule off. Rules combine as a union: a snapshot is kept when any
/// rule keeps it. Incomplete snapshots never displace complete ones in `keep_last` and the
/// bucket rules, and buckets holding only incomplete snapshots do not count toward N.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    /// Keep the N newest complete snapshots (and up to N incomplete ones newer than the Nth).
    pub keep_last: u32,
    /// Keep the newest snapshot of each of the N newest hours that have snapshots.
    pub keep_hourly: u32,
    /// Same, per local calendar day.
    pub keep_daily: u32,
    /// Same, per ISO 8601 week.
    pub keep_weekly: u32,
    /// Same, per calendar month.
    pub keep_monthly: u32,
    /// Same, per calendar year.
    pub keep_yearly: u32,
    /// Keep every snapshot within this duration of the group's newest snapshot.
    pub keep_within: Option<KeepWithin>,
    /// Keep every snapshot carrying any of these tags.
    pub keep_tags: Vec<String>,
}

impl Policy {
    /// True when no rule is given at all.
    pub fn is_empty(&self) -> bool {
        self.keep_last == 0
            && self.keep_hourly == 0
            && self.keep_daily == 0
            && self.keep_weekly == 0
            && self.keep_monthly == 0
            && self.keep_yearly == 0
            && self.keep_within.is_none()
            && self.keep_tags.is_empty()
    }
}

/// A calendar duration for `--keep-within`: "5d", "2w", "6m" (months), "1y", "12h", or a
/// combination such as "1y6m" or "2w3d". Always more than zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeepWithin {
    years: u32,
    months: u32,
    weeks: u32,
    days: u32,
    hours: u32,
}

const UNITS: [char; 5] = ['y', 'm', 'w', 'd', 'h'];

impl KeepWithin {
    fn fields(&self) -> [u32; 5] {
        [self.years, self.months, self.weeks, self.days, self.hours]
    }

    /// The duration as a jiff span (calendar units are kept, not converted to hours).
    pub fn span(&self) -> Result<Span> {
        let too_large = |_| {
            Error::InvalidInput(format!(
                "--keep-within {:?}: too large; {ACCEPTED}",
                self.to_string()
            ))
        };
        Span::new()
            .try_years(self.years)
            .and_then(|s| s.try_months(self.months))
            .and_then(|s| s.try_weeks(self.weeks))
            .and_then(|s| s.try_days(self.days))
            .and_then(|s| s.try_hours(self.hours))
            .map_err(too_large)
    }
}

const ACCEPTED: &str = "give a number and unit, like 5d, 2w, 6m, 1y (units y m w d h)";

impl FromStr for KeepWithin {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::InvalidInput(format!("--keep-within {s:?}: {why}{ACCEPTED}"));
        if s.is_empty() {
            return Err(bad("empty; "));
        }
        let mut fields: [Option<u32>; 5] = [None; 5];
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(bad(""));
            }
            let (num, tail) = rest.split_at(digits);
            let mut chars = tail.chars();
            let unit = chars.next().ok_or_else(|| bad(""))?;
            let slot = UNITS
                .iter()
                .position(|&u| u == unit)
                .ok_or_else(|| bad(""))?;
            let n: u32 = num.parse().map_err(|_| bad("number too large; "))?;
            if fields[slot].replace(n).is_some() {
                return Err(bad(&format!("unit {unit} given twice; ")));
            }
            rest = chars.as_str();
        }
        let [years, months, weeks, days, hours] = fields.map(|f| f.unwrap_or(0));
        let kw = KeepWithin {
            years,
            months,
            weeks,
            days,
            hours,
        };
        if kw.fields().iter().all(|&n| n == 0) {
            return Err(bad("the duration must be more than zero; "));
        }
        kw.span().map_err(|_| bad("too large; "))?;
        Ok(kw)
    }
}

impl fmt::Display for KeepWithin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut any = false;
        for (n, unit) in self.fields().into_iter().zip(UNITS) {
            if n > 0 {
                write!(f, "{n}{unit}")?;
                any = true;
            }
        }
        if !any {
            f.write_str("0h")?;
        }
        Ok(())
    }
}

/// Snapshots planned together: same host (ASCII case-insensitive) and label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Ord, PartialOrd)]
pub struct Group {
    /// Host text of the group's newest snapshot.
    pub host: String,
    pub label: String,
}

/// What happens to one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub id: Id,
    pub time: Timestamp,
    pub complete: bool,
    pub keep: bool,
    /// Why it is kept (every rule that keeps it) or why it is removed (one reason).
    pub reasons: Vec<String>,
}

/// The plan for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPlan {
    pub group: Group,
    /// Newest first.
    pub decisions: Vec<Decision>,
}

const NO_RULE: &str = "matched no keep rule";

#[derive(Clone, Copy)]
enum Period {
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Bucket {
    Hour(jiff::civil::Date, i8),
    Day(jiff::civil::Date),
    Week(i16, i8),
    Month(i16, i8),
    Year(i16),
}

impl Period {
    const ALL: [Period; 5] = [
        Period::Hourly,
        Period::Daily,
        Period::Weekly,
        Period::Monthly,
        Period::Yearly,
    ];

    fn count(self, p: &Policy) -> u32 {
        match self {
            Period::Hourly => p.keep_hourly,
            Period::Daily => p.keep_daily,
            Period::Weekly => p.keep_weekly,
            Period::Monthly => p.keep_monthly,
            Period::Yearly => p.keep_yearly,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Period::Hourly => "hourly",
            Period::Daily => "daily",
            Period::Weekly => "weekly",
            Period::Monthly => "monthly",
            Period::Yearly => "yearly",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Period::Hourly => "hour",
            Period::Daily => "day",
            Period::Weekly => "week",
            Period::Monthly => "month",
            Period::Yearly => "year",
        }
    }

    fn bucket(self, z: &Zoned) -> Bucket {
        match self {
            Period::Hourly => Bucket::Hour(z.date(), z.hour()),
            Period::Daily => Bucket::Day(z.date()),
            Period::Weekly => {
                let w = z.date().iso_week_date();
                Bucket::Week(w.year(), w.week())
            }
            Period::Monthly => Bucket::Month(z.year(), z.month()),
            Period::Yearly => Bucket::Year(z.year()),
        }
    }
}

/// Group snapshots and sort each group newest first; groups sorted by (lowercased host, label).
fn grouped(snaps: &[(Id, Snapshot)]) -> Vec<(Group, Vec<&(Id, Snapshot)>)> {
    let mut map: BTreeMap<(String, String), Vec<&(Id, Snapshot)>> = BTreeMap::new();
    for entry in snaps {
        let key = (entry.1.host.to_ascii_lowercase(), entry.1.label.clone());
        map.entry(key).or_default().push(entry);
    }
    map.into_iter()
        .filter_map(|((_, label), mut members)| {
            members.sort_by(|a, b| b.1.time.cmp(&a.1.time).then_with(|| b.0.cmp(&a.0)));
            let host = members.first()?.1.host.clone();
            Some((Group { host, label }, members))
        })
        .collect()
}

/// Plan `forget` with a keep policy. `snaps`: any order. `tz`: the zone in which hours,
/// days, weeks, months and years are bucketed (the CLI passes the system zone).
pub fn plan(snaps: &[(Id, Snapshot)], policy: &Policy, tz: &TimeZone) -> Result<Vec<GroupPlan>> {
    if policy.is_empty() {
        return Err(Error::InvalidInput(
            "no keep rule given: pass --keep-last, --keep-hourly, --keep-daily, --keep-weekly, \
             --keep-monthly, --keep-yearly, --keep-within or --keep-tag, or snapshot ids; \
             refusing to forget everything"
                .into(),
        ));
    }
    let within = policy.keep_within.as_ref().map(|w| w.span()).transpose()?;

    let mut plans = Vec::new();
    let mut refused = Vec::new();
    for (group, members) in grouped(snaps) {
        let decisions = decide_group(&members, policy, within, tz);
        let has_complete = decisions.iter().any(|d| d.complete);
        if has_complete && !decisions.iter().any(|d| d.complete && d.keep) {
            refused.push(format!("host {:?} label {:?}", group.host, group.label));
        }
        plans.push(GroupPlan { group, decisions });
    }

    if !refused.is_empty() {
        return Err(Error::InvalidInput(format!(
            "the policy would remove every complete snapshot of {}; nothing was forgotten. \
             Add --keep-last 1 (or another count rule) to keep the newest complete snapshot",
            refused.join(", ")
        )));
    }
    Ok(plans)
}

/// Decide one group (`members` newest first): every rule in turn adds its reasons to keep, and
/// a snapshot with none goes.
fn decide_group(
    members: &[&(Id, Snapshot)],
    policy: &Policy,
    within: Option<Span>,
    tz: &TimeZone,
) -> Vec<Decision> {
    let zoned: Vec<Zoned> = members
        .iter()
        .map(|(_, s)| s.time.to_zoned(tz.clone()))
        .collect();
    let mut reasons: Vec<Vec<String>> = vec![Vec::new(); members.len()];
    if policy.keep_last > 0 {
        keep_last(members, policy.keep_last, &mut reasons);
    }
    for period in Period::ALL {
        let n = period.count(policy);
        if n == 0 {
            continue;
        }
        keep_per_period(members, &zoned, period, n, &mut reasons);
    }
    if let (Some(span), Some(kw), Some(newest)) =
        (within, policy.keep_within.as_ref(), zoned.first())
    {
        keep_within(members, newest, span, kw, &mut reasons);
    }
    keep_tagged(members, &policy.keep_tags, &mut reasons);
    decisions(members, reasons)
}

/// `keep_last n`: the n newest complete snapshots, and at most n incomplete ones passed on the
/// way.
fn keep_last(members: &[&(Id, Snapshot)], n: u32, reasons: &mut [Vec<String>]) {
    let (mut counted, mut extra) = (0, 0);
    for (i, (_, s)) in members.iter().enumerate() {
        if counted >= n {
            break;
        }
        if s.complete {
            counted += 1;
            reasons[i].push("last".into());
        } else if extra < n {
            // Bounded, so a host that always fails does not keep its whole history.
            extra += 1;
            reasons[i].push("last (incomplete)".into());
        }
    }
}

/// A bucket rule with count `n`: the newest complete snapshot of each of the n newest
/// `period` buckets that hold one, and the newest of at most n buckets passed that hold none.
fn keep_per_period(
    members: &[&(Id, Snapshot)],
    zoned: &[Zoned],
    period: Period,
    n: u32,
    reasons: &mut [Vec<String>],
) {
    // Buckets in order of their newest snapshot; a map rather than runs of equal
    // keys, so a zone whose clock jumps back across a boundary still works.
    let mut order: Vec<Bucket> = Vec::new();
    let mut buckets: HashMap<Bucket, Vec<usize>> = HashMap::new();
    for (i, z) in zoned.iter().enumerate() {
        let b = period.bucket(z);
        buckets
            .entry(b)
            .or_insert_with(|| {
                order.push(b);
                Vec::new()
            })
            .push(i);
    }
    let (mut counted, mut extra) = (0, 0);
    for b in &order {
        if counted >= n {
            break;
        }
        let Some(idx) = buckets.get(b) else { continue };
        if let Some(&i) = idx.iter().find(|&&i| members[i].1.complete) {
            counted += 1;
            reasons[i].push(period.name().into());
        } else if extra < n
            && let Some(&i) = idx.first()
        {
            // At most N such extras, so a host that always fails stays bounded.
            extra += 1;
            reasons[i].push(format!(
                "{} (incomplete, no complete snapshot that {})",
                period.name(),
                period.noun()
            ));
        }
    }
}

/// `keep_within kw` (of length `span`): every snapshot no older than `newest` minus `span`.
fn keep_within(
    members: &[&(Id, Snapshot)],
    newest: &Zoned,
    span: Span,
    kw: &KeepWithin,
    reasons: &mut [Vec<String>],
) {
    // Out of jiff's range means the window reaches before any representable time.
    let since = newest
        .checked_sub(span)
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::MIN);
    for (i, (_, s)) in members.iter().enumerate() {
        if s.time >= since {
            reasons[i].push(format!("within {kw} of the newest"));
        }
    }
}

/// `keep_tags`: every snapshot carrying one of `tags` (each tag counted once).
fn keep_tagged(members: &[&(Id, Snapshot)], tags: &[String], reasons: &mut [Vec<String>]) {
    let mut seen_tags = HashSet::new();
    for tag in tags {
        if !seen_tags.insert(tag) {
            continue;
        }
        for (i, (_, s)) in members.iter().enumerate() {
            if s.tags.iter().any(|t| t == tag) {
                reasons[i].push(format!("tagged {tag}"));
            }
        }
    }
}

/// One decision per member: kept when some rule gave a reason.
fn decisions(members: &[&(Id, Snapshot)], reasons: Vec<Vec<String>>) -> Vec<Decision> {
    members
        .iter()
        .zip(reasons)
        .map(|((id, s), reasons)| {
            let keep = !reasons.is_empty();
            Decision {
                id: *id,
                time: s.time,
                complete: s.complete,
                keep,
                reasons: if keep { reasons } else { vec![NO_RULE.into()] },
            }
        })
        .collect()
}

/// Forget exactly the given ids (already resolved); every other snapshot is kept with
/// reason "not named". Ids not among `snaps` are ignored.
pub fn plan_ids(snaps: &[(Id, Snapshot)], ids: &[Id]) -> Vec<GroupPlan> {
    let named: HashSet<&Id> = ids.iter().collect();
    grouped(snaps)
        .into_iter()
        .map(|(group, members)| GroupPlan {
            group,
            decisions: members
                .into_iter()
                .map(|(id, s)| {
                    let keep = !named.contains(id);
                    Decision {
                        id: *id,
                        time: s.time,
                        complete: s.complete,
                        keep,
                        reasons: vec![if keep { "not named" } else { "named" }.into()],
                    }
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests;
