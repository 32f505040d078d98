//! The vault page: recovery points per host and label, bytes added per night, change-tracking
//! windows, and the structural check run from the page.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use jiff::Timestamp;

use super::{Ctx, outside, when};
use crate::browse::SnapInfo;
use crate::browse::console::html::{error_page, esc, html, page, secure, size};
use crate::browse::console::{Console, LastCheck};
use crate::browse::http::Response;
use crate::format::id::Id;
use crate::ops::check::CheckReport;

/// One host and label's recovery points: how many, the oldest and newest time, and the
/// bytes they added.
type Group = (usize, Timestamp, Timestamp, u64);

impl Ctx<'_> {
    pub fn vault(&self) -> Response {
        let c = self.c;
        let base = self.base();
        let snaps = c.browser.snapshots();
        let mut h = format!(
            "<h1>Vault</h1><p class=where><code id=vault-location>{}</code> · {} recovery points</p>",
            esc(c.browser.vault().location()),
            snaps.len()
        );
        self.groups_table(&mut h, &snaps);
        // Bytes added per night, as bars.
        h.push_str("<h2>Stored bytes added per night</h2>");
        h.push_str(&chart(&bytes_per_night(&snaps)));
        self.change_tracking_table(&mut h, &snaps);
        self.last_check(&mut h);
        let _ = write!(
            h,
            "<form id=check-form method=post action=\"{base}check\"><input type=hidden name=csrf value=\"{}\"><button id=check-now>Check the vault's structure now</button></form>",
            self.csrf
        );
        html(200, page(base, "Vault", "vault", &h))
    }

    /// The table of recovery points per host and label.
    fn groups_table(&self, h: &mut String, snaps: &[Arc<SnapInfo>]) {
        let c = self.c;
        h.push_str("<h2>Recovery points per host and label</h2><table id=groups class=list><thead><tr><th>Host</th><th>Label</th><th class=num>Count</th><th>Oldest</th><th>Newest</th><th class=num>Stored by them</th></tr></thead><tbody>");
        for ((host, label), (n, first, last, added)) in &groups(snaps) {
            let _ = write!(
                h,
                "<tr data-host=\"{}\" data-label=\"{}\" data-count={n}><td>{}</td><td>{}</td><td class=num>{n}</td><td>{}</td><td>{}</td><td class=num>{}</td></tr>",
                esc(host),
                esc(label),
                esc(host),
                esc(label),
                esc(&when(c, *first)),
                esc(&when(c, *last)),
                size(*added)
            );
        }
        h.push_str("</tbody></table>");
    }

    /// Change-tracking windows of site-database recovery points (nothing when there are none).
    fn change_tracking_table(&self, h: &mut String, snaps: &[Arc<SnapInfo>]) {
        let out = outside(self.c);
        let sites: Vec<&Arc<SnapInfo>> = snaps
            .iter()
            .filter(|s| s.snapshot.change_tracking_days.is_some())
            .collect();
        if sites.is_empty() {
            return;
        }
        h.push_str("<h2>Site database recovery points</h2><table id=change-tracking class=list><thead><tr><th>Recovery point</th><th>Time</th><th>Host</th><th>Change tracking</th></tr></thead><tbody>");
        for s in sites.iter().rev() {
            self.change_tracking_row(h, s, &out);
        }
        h.push_str("</tbody></table>");
    }

    /// One site-database recovery point, inside or outside its change-tracking window.
    fn change_tracking_row(&self, h: &mut String, s: &SnapInfo, out: &HashSet<Id>) {
        let inside = !out.contains(&s.id);
        let _ = write!(
            h,
            "<tr data-id={} data-window={}><td><code>{}</code></td><td>{}</td><td>{}</td><td class={}>{} ({} days)</td></tr>",
            esc(&s.id.short()),
            if inside { "inside" } else { "outside" },
            esc(&s.id.short()),
            esc(&when(self.c, s.snapshot.time)),
            esc(&s.snapshot.host),
            if inside { "ok" } else { "warn" },
            if inside {
                "inside the window"
            } else {
                "outside: restoring its database means a replication reinit"
            },
            s.snapshot.change_tracking_days.unwrap_or(0)
        );
    }

    /// The last check run from this page: none yet, running, or its result and errors.
    fn last_check(&self, h: &mut String) {
        let c = self.c;
        h.push_str("<h2>Check</h2>");
        let last = c
            .last_check
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match last {
            None => h.push_str("<p id=check-result data-state=none>No check has run from this page since serve started. <code>sitevault check</code> runs one from the command line.</p>"),
            Some(l) if l.running => {
                let _ = write!(
                    h,
                    "<p id=check-result data-state=running>A check started at {} is running; reload to see its result.</p>",
                    esc(&when(c, l.time))
                );
            }
            Some(l) => {
                let state = if l.clean == Some(true) { "clean" } else { "damaged" };
                let _ = write!(
                    h,
                    "<p id=check-result data-state={state} class={}>{}: {}</p>",
                    if state == "clean" { "ok" } else { "warn" },
                    esc(&when(c, l.time)),
                    esc(&l.summary)
                );
                if !l.errors.is_empty() {
                    h.push_str("<ul id=check-errors>");
                    for e in l.errors.iter().take(50) {
                        let _ = write!(h, "<li>{}</li>", esc(e));
                    }
                    h.push_str("</ul>");
                }
            }
        }
    }
}

/// The recovery points per host and label.
fn groups(snaps: &[Arc<SnapInfo>]) -> BTreeMap<(String, String), Group> {
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    for s in snaps {
        let g = groups
            .entry((s.snapshot.host.clone(), s.snapshot.label.clone()))
            .or_insert((0, s.snapshot.time, s.snapshot.time, 0));
        g.0 += 1;
        g.1 = g.1.min(s.snapshot.time);
        g.2 = g.2.max(s.snapshot.time);
        g.3 += s.snapshot.summary.bytes_added;
    }
    groups
}

/// The stored bytes the recovery points of each night added.
fn bytes_per_night(snaps: &[Arc<SnapInfo>]) -> BTreeMap<String, u64> {
    let mut nights: BTreeMap<String, u64> = BTreeMap::new();
    for s in snaps {
        *nights.entry(s.day.clone()).or_default() += s.snapshot.summary.bytes_added;
    }
    nights
}

/// An inline SVG bar chart of bytes per night (the last 60 nights with recovery points).
fn chart(nights: &BTreeMap<String, u64>) -> String {
    let shown: Vec<(&String, &u64)> = nights.iter().rev().take(60).collect::<Vec<_>>();
    let shown: Vec<_> = shown.into_iter().rev().collect();
    if shown.is_empty() {
        return "<p id=added-chart-empty>No recovery points yet.</p>".into();
    }
    let max = shown.iter().map(|(_, b)| **b).max().unwrap_or(1).max(1);
    // Bars at most 36 units wide, so a young vault does not show a few huge blocks.
    let (w, hgt) = (720.0f64, 160.0f64);
    let bar = (w / shown.len() as f64).min(36.0);
    let mut s = format!(
        "<svg id=added-chart class=chart viewBox=\"0 0 {w} {}\" role=img aria-label=\"Stored bytes added per night\">",
        hgt + 20.0
    );
    for (i, (day, bytes)) in shown.iter().enumerate() {
        let bh = (**bytes as f64 / max as f64 * hgt).max(1.0);
        let _ = write!(
            s,
            "<rect class=bar data-day={day} data-bytes={bytes} x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\"><title>{day}: {}</title></rect>",
            i as f64 * bar + 1.0,
            hgt - bh,
            (bar - 2.0).max(1.0),
            size(**bytes)
        );
    }
    let _ = write!(
        s,
        "<text x=0 y=\"{}\" class=axis>{}</text><text x=\"{w}\" y=\"{}\" text-anchor=end class=axis>{}</text><text x=\"{w}\" y=12 text-anchor=end class=axis>max {}</text></svg>",
        hgt + 16.0,
        shown[0].0,
        hgt + 16.0,
        shown[shown.len() - 1].0,
        size(max)
    );
    s
}

/// `POST check`: run a structural check in the background; the vault page shows it.
pub(crate) fn check_post(c: &Console) -> Response {
    let base = c.base.clone();
    {
        let mut last = c.last_check.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_ref().is_some_and(|l| l.running) {
            return secure(Response::new(303).with_header("Location", format!("{base}vault")));
        }
        *last = Some(LastCheck {
            time: Timestamp::now(),
            running: true,
            clean: None,
            summary: String::new(),
            errors: Vec::new(),
        });
    }
    let browser = Arc::clone(&c.browser);
    let slot = Arc::clone(&c.last_check);
    let started = std::thread::Builder::new()
        .name("sitevault-check".into())
        .spawn(move || {
            let r = crate::ops::check::check(
                browser.vault(),
                &crate::ops::check::CheckOptions::default(),
            );
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(check_done(r));
        });
    if started.is_err() {
        *c.last_check.lock().unwrap_or_else(|p| p.into_inner()) = None;
        return error_page(&base, 500, "cannot start a check thread");
    }
    secure(Response::new(303).with_header("Location", format!("{base}vault")))
}

/// What the vault page shows of a finished check: its counts and errors, or why it could
/// not run.
fn check_done(r: crate::error::Result<CheckReport>) -> LastCheck {
    match r {
        Ok(rep) => LastCheck {
            time: Timestamp::now(),
            running: false,
            clean: Some(rep.is_clean()),
            summary: format!(
                "{} snapshots, {} index files, {} packs, {} trees: {}",
                rep.snapshots,
                rep.index_files,
                rep.packs,
                rep.trees,
                if rep.is_clean() {
                    "no errors".to_string()
                } else {
                    format!("{} errors", rep.errors.len())
                }
            ),
            errors: rep.errors.iter().map(|p| p.to_string()).collect(),
        },
        Err(e) => LastCheck {
            time: Timestamp::now(),
            running: false,
            clean: Some(false),
            summary: format!("the check could not run: {e}"),
            errors: Vec::new(),
        },
    }
}
