//! The console's pages. Each takes the parsed query (or form) and renders server-side HTML;
//! element ids and `data-` attributes are the contract the browser tests hold them to.
//!
//! One file per page family: `calendar`, `browse` (folders, files, downloads), `history`
//! (history, compare, search), `vault` (the vault page and its check), `restore` (restore
//! requests, the preview, jobs). This file holds what they share: links, times, the RP bar.

mod browse;
mod calendar;
mod history;
mod restore;
mod vault;

pub(super) use browse::download;
pub(super) use restore::restore_post;
pub(super) use vault::check_post;

use jiff::Timestamp;

use super::Console;
use super::html::{esc, q};
use crate::browse::SnapInfo;
use crate::format::id::Id;
use crate::paths::PathStyle;

/// Rows a listing shows at most (search hits, diff entries, preview actions).
const MAX_ROWS: usize = 2000;

pub(super) struct Ctx<'a> {
    pub c: &'a Console,
    pub csrf: &'a str,
}

fn when(c: &Console, t: Timestamp) -> String {
    t.to_zoned(c.opts.time_zone.clone())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn when_ns(c: &Console, ns: i64) -> String {
    when(c, crate::browse::webdav::timestamp(ns))
}

fn refs(comps: &[Vec<u8>]) -> Vec<&[u8]> {
    comps.iter().map(|c| c.as_slice()).collect()
}

/// The original path of `comps` as shown (`/srv/site`, `E:\Backup`); the root is empty.
fn shown(style: PathStyle, comps: &[Vec<u8>]) -> Vec<u8> {
    if comps.is_empty() {
        return Vec::new();
    }
    style.join(&refs(comps))
}

fn browse_url(base: &str, s: &SnapInfo, comps: &[Vec<u8>]) -> String {
    format!(
        "{base}browse?at={}&id={}&path={}",
        q(s.snapshot.time.to_string().as_bytes()),
        s.id.to_hex(),
        q(&shown(s.snapshot.path_style, comps))
    )
}

fn download_url(base: &str, s: &SnapInfo, comps: &[Vec<u8>]) -> String {
    format!(
        "{base}download?id={}&path={}",
        s.id.to_hex(),
        q(&shown(s.snapshot.path_style, comps))
    )
}

fn history_url(base: &str, s: &SnapInfo, comps: &[Vec<u8>]) -> String {
    format!(
        "{base}history?id={}&path={}",
        s.id.to_hex(),
        q(&shown(s.snapshot.path_style, comps))
    )
}

/// The RP's header line: short id, time, host, label, state.
fn snap_bar(c: &Console, s: &SnapInfo) -> String {
    let label = if s.snapshot.label.is_empty() {
        String::new()
    } else {
        format!(" · label <b>{}</b>", esc(&s.snapshot.label))
    };
    let partial = if s.snapshot.complete {
        ""
    } else {
        " · <span class=warn>partial: some files could not be read</span>"
    };
    format!(
        "<p class=snapbar>Recovery point <code id=snapshot-id>{}</code> · <time>{}</time> · host <b>{}</b>{label}{partial}</p>",
        esc(&s.id.short()),
        esc(&when(c, s.snapshot.time)),
        esc(&s.snapshot.host)
    )
}

/// Site-database recovery points outside their change-tracking window.
fn outside(c: &Console) -> std::collections::HashSet<Id> {
    let pairs: Vec<(Id, crate::format::snapshot::Snapshot)> = c
        .browser
        .snapshots()
        .iter()
        .map(|s| (s.id, s.snapshot.clone()))
        .collect();
    crate::format::snapshot::outside_change_tracking(&pairs)
}

impl Ctx<'_> {
    fn base(&self) -> &str {
        &self.c.base
    }
}
