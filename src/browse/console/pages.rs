//! The console's pages. Each takes the parsed query (or form) and renders server-side HTML;
//! element ids and `data-` attributes are the contract the browser tests hold them to.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;

use super::calendar::{Month, WEEKDAYS, parse_month};
use super::html::{Fields, error_page, esc, esc_bytes, html, page, q, secure, size};
use super::jobs::State;
use super::{Console, LastCheck};
use crate::browse::http::{Body, Response};
use crate::browse::{Entry, Kind, SnapInfo};
use crate::format::id::Id;
use crate::format::tree::NodeKind;
use crate::ops::restore::{Destination, IfExists, RestoreOptions};
use crate::paths::{PathStyle, parse_original};

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

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Dir => "dir",
        Kind::File => "file",
        Kind::Symlink => "symlink",
    }
}

/// What identifies an entry's content: chunk list, subtree or link target.
fn content_key(e: &Entry) -> Option<Vec<u8>> {
    let Entry::Node { node, .. } = e else {
        return None;
    };
    Some(match &node.kind {
        NodeKind::File { chunks } => {
            let mut h = blake3::Hasher::new();
            for c in chunks {
                h.update(&c.0);
            }
            h.finalize().as_bytes().to_vec()
        }
        NodeKind::Dir { subtree } => subtree.0.to_vec(),
        NodeKind::Symlink { target } => target.clone(),
    })
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

impl Ctx<'_> {
    fn base(&self) -> &str {
        &self.c.base
    }

    // ------------------------------------------------------------------------------------
    // The calendar

    pub fn calendar(&self, f: &Fields) -> Response {
        let c = self.c;
        let base = self.base();
        let snaps = c.browser.snapshots();
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for s in &snaps {
            *counts.entry(s.day.clone()).or_default() += 1;
        }
        let newest_day = snaps.last().map(|s| s.day.clone());
        let today = Timestamp::now().to_zoned(c.opts.time_zone.clone()).date();
        let month_start = match f.text("month") {
            Some(m) => match parse_month(m) {
                Some(d) => d,
                None => {
                    return error_page(base, 400, &format!("{m:?} is not a month like 2026-11"));
                }
            },
            None => newest_day
                .as_deref()
                .and_then(parse_month)
                .unwrap_or(today.first_of_month()),
        };
        let month = Month::new(month_start, &counts);
        let key = month.key();
        let day = f
            .text("day")
            .map(str::to_string)
            .or_else(|| counts.keys().rev().find(|d| d.starts_with(&key)).cloned())
            .filter(|d| d.starts_with(&key));

        let mut h = String::new();
        let _ = write!(h, "<h1>Recovery points</h1>");
        if snaps.is_empty() {
            h.push_str("<p id=empty>The vault holds no recovery points yet.</p>");
        }
        for (id, why) in c.browser.unreadable() {
            let _ = write!(
                h,
                "<p class=warn>Recovery point {} cannot be read and is not shown: {}</p>",
                esc(&id.short()),
                esc(&why)
            );
        }
        let month_link = |d: Option<jiff::civil::Date>, id: &str, text: &str| match d {
            Some(d) => format!(
                "<a id={id} href=\"{base}?month={}\">{text}</a>",
                d.strftime("%Y-%m")
            ),
            None => String::new(),
        };
        let _ = write!(
            h,
            "<div class=monthbar>{}<h2 id=month-title>{}</h2>{}\
             <form id=month-form method=get action=\"{base}\"><input type=month name=month value=\"{key}\" aria-label=Month><button>Go</button></form>{}</div>",
            month_link(month.previous(), "prev-month", "◀"),
            esc(&month.title()),
            month_link(month.next(), "next-month", "▶"),
            newest_day
                .as_deref()
                .map(|d| format!(
                    "<a id=newest href=\"{base}?month={}&day={d}\">Newest</a>",
                    &d[..7]
                ))
                .unwrap_or_default()
        );
        let _ = write!(
            h,
            "<table id=calendar class=calendar data-month=\"{key}\"><thead><tr>"
        );
        for w in WEEKDAYS {
            let name = format!("{w:?}");
            let _ = write!(h, "<th>{}</th>", &name[..3]);
        }
        h.push_str("</tr></thead><tbody>");
        for week in &month.weeks {
            h.push_str("<tr>");
            for cell in week {
                match cell.date {
                    None => h.push_str("<td class=pad></td>"),
                    Some(d) => {
                        let ds = d.to_string();
                        let mut cls = String::from("day");
                        if cell.points > 0 {
                            cls.push_str(" has-points");
                        }
                        if day.as_deref() == Some(ds.as_str()) {
                            cls.push_str(" selected");
                        }
                        if d == today {
                            cls.push_str(" today");
                        }
                        if cell.points > 0 {
                            let _ = write!(
                                h,
                                "<td class=\"{cls}\" data-date={ds} data-points={}><a href=\"{base}?month={key}&day={ds}\"><span class=num>{}</span><span class=count>{}</span></a></td>",
                                cell.points,
                                d.day(),
                                cell.points
                            );
                        } else {
                            let _ = write!(
                                h,
                                "<td class=\"{cls}\" data-date={ds} data-points=0><span class=num>{}</span></td>",
                                d.day()
                            );
                        }
                    }
                }
            }
            h.push_str("</tr>");
        }
        h.push_str("</tbody></table>");

        if let Some(d) = &day {
            let outside = outside(c);
            let _ = write!(
                h,
                "<h2 id=day-title>{d}</h2><table id=points class=list><thead><tr><th>Time</th><th>Host</th><th>Label</th><th>Id</th><th>State</th><th></th></tr></thead><tbody>"
            );
            let mut any = false;
            for s in snaps.iter().filter(|s| &s.day == d) {
                any = true;
                let state = if s.snapshot.complete {
                    "complete"
                } else {
                    "partial"
                };
                let ct = match s.snapshot.change_tracking_days {
                    Some(_) if outside.contains(&s.id) => {
                        " <span class=warn title=\"older than the SQL change-tracking retention: restoring its site database means a replication reinit\">outside change tracking</span>"
                    }
                    Some(_) => " <span class=ok>inside change tracking</span>",
                    None => "",
                };
                let _ = write!(
                    h,
                    "<tr data-id={short}><td><time>{t}</time></td><td>{host}</td><td>{label}</td><td><a class=open href=\"{url}\"><code>{short}</code></a></td><td>{state}{ct}</td><td><a href=\"{url}\">Browse</a></td></tr>",
                    short = esc(&s.id.short()),
                    t = esc(&when(c, s.snapshot.time)),
                    host = esc(&s.snapshot.host),
                    label = esc(&s.snapshot.label),
                    url = browse_url(base, s, &[]),
                );
            }
            h.push_str("</tbody></table>");
            if !any {
                h.push_str("<p id=no-points>No recovery points on this day.</p>");
            }
        }
        html(200, page(base, "Recovery points", "calendar", &h))
    }

    // ------------------------------------------------------------------------------------
    // Browsing

    pub fn browse(&self, f: &Fields) -> Response {
        let c = self.c;
        let base = self.base();
        let s = match c.pick(f) {
            Ok(s) => s,
            Err(r) => return r,
        };
        let style = s.snapshot.path_style;
        let comps = match parse_original(style, f.bytes("path").unwrap_or_default()) {
            Ok(x) => x,
            Err(e) => return error_page(base, 400, &e.to_string()),
        };
        let listing = if comps.is_empty() {
            c.browser.root_entries(&s)
        } else {
            match c.browser.at_path(&s, &comps) {
                Ok(Some(e)) if c.browser.attr(&e).kind == Kind::Dir => c.browser.list(&e),
                Ok(Some(e)) => return self.file_page(&s, &comps, &e),
                Ok(None) => {
                    return error_page(
                        base,
                        404,
                        &format!(
                            "recovery point {} holds nothing at {}",
                            s.id.short(),
                            String::from_utf8_lossy(&shown(style, &comps))
                        ),
                    );
                }
                Err(e) => Err(e),
            }
        };
        let list = match listing {
            Ok(l) => l,
            Err(e) => return error_page(base, 500, &e.to_string()),
        };
        let mut rows: Vec<(Vec<u8>, Entry, crate::browse::Attr)> = list
            .into_iter()
            .map(|(n, e)| {
                let a = c.browser.attr(&e);
                (n, e, a)
            })
            .collect();
        rows.sort_by(|a, b| (a.2.kind != Kind::Dir, &a.0).cmp(&(b.2.kind != Kind::Dir, &b.0)));

        let mut h = String::new();
        let _ = write!(h, "<h1>Browse</h1>{}", snap_bar(c, &s));
        // Breadcrumbs: each ancestor folder.
        let _ = write!(
            h,
            "<nav class=crumbs id=crumbs><a href=\"{}\">all paths</a>",
            browse_url(base, &s, &[])
        );
        for i in 1..=comps.len() {
            let _ = write!(
                h,
                " <span>›</span> <a href=\"{}\">{}</a>",
                browse_url(base, &s, &comps[..i]),
                esc_bytes(&comps[i - 1])
            );
        }
        h.push_str("</nav>");
        let shown_path = shown(style, &comps);
        let _ = write!(
            h,
            "<p class=where>Folder <code id=path>{}</code>{}</p>",
            if comps.is_empty() {
                "(the backed-up paths)".to_string()
            } else {
                esc_bytes(&shown_path)
            },
            if comps.is_empty() {
                String::new()
            } else {
                format!(
                    " · <a id=folder-history href=\"{}\">History</a>",
                    history_url(base, &s, &comps)
                )
            }
        );
        let _ = write!(
            h,
            "<form id=restore-form method=post action=\"{base}restore\">\
             <input type=hidden name=csrf value=\"{}\"><input type=hidden name=id value=\"{}\">\
             <input type=hidden name=folder value=\"{}\">",
            self.csrf,
            s.id.to_hex(),
            esc(&q(&shown_path))
        );
        h.push_str("<table id=entries class=list><thead><tr><th><input type=checkbox id=select-all aria-label=\"Select all\"></th><th>Name</th><th class=num>Size</th><th>Modified</th><th></th></tr></thead><tbody>");
        for (name, _, a) in &rows {
            let mut child = comps.clone();
            child.push(name.clone());
            let path_q = q(&shown(style, &child));
            let shown_name = if comps.is_empty() {
                shown(style, &child)
            } else {
                name.clone()
            };
            let link = match a.kind {
                Kind::Dir => format!(
                    "<a class=folder href=\"{}\">{}</a>",
                    browse_url(base, &s, &child),
                    esc_bytes(&shown_name)
                ),
                _ => format!(
                    "<a class=download href=\"{}\" download>{}</a>",
                    download_url(base, &s, &child),
                    esc_bytes(&shown_name)
                ),
            };
            let _ = write!(
                h,
                "<tr data-name=\"{}\" data-kind={}><td><input type=checkbox name=sel value=\"{}\" aria-label=Select></td><td>{link}</td><td class=num>{}</td><td><time>{}</time></td><td><a class=history href=\"{}\">History</a></td></tr>",
                esc_bytes(name),
                kind_name(a.kind),
                esc(&path_q),
                if a.kind == Kind::Dir {
                    String::new()
                } else {
                    size(a.size)
                },
                esc(&when_ns(c, a.mtime_ns)),
                history_url(base, &s, &child)
            );
        }
        h.push_str("</tbody></table>");
        if rows.is_empty() {
            h.push_str("<p id=empty-folder>This folder is empty.</p>");
        }
        h.push_str(&self.restore_fieldset(&s));
        h.push_str("</form>");
        html(200, page(base, "Browse", "calendar", &h))
    }

    fn file_page(&self, s: &Arc<SnapInfo>, comps: &[Vec<u8>], e: &Entry) -> Response {
        let c = self.c;
        let base = self.base();
        let a = c.browser.attr(e);
        let style = s.snapshot.path_style;
        let parent = &comps[..comps.len() - 1];
        let h = format!(
            "<h1>File</h1>{}<p class=where>File <code id=path>{}</code> · {} · modified <time>{}</time></p>\
             <p><a id=download class=button href=\"{}\" download>Download</a> <a id=file-history href=\"{}\">History</a> <a href=\"{}\">The folder</a></p>",
            snap_bar(c, s),
            esc_bytes(&shown(style, comps)),
            size(a.size),
            esc(&when_ns(c, a.mtime_ns)),
            download_url(base, s, comps),
            history_url(base, s, comps),
            browse_url(base, s, parent)
        );
        html(200, page(base, "File", "calendar", &h))
    }

    /// The restore controls; disabled (with why) unless serve allows restores.
    fn restore_fieldset(&self, s: &SnapInfo) -> String {
        let allowed = self.c.opts.allow_restore;
        let native = s.snapshot.path_style == PathStyle::native();
        let mut h = format!(
            "<fieldset id=restore class=restore{}><legend>Restore</legend>",
            if allowed { "" } else { " disabled" }
        );
        if !allowed {
            h.push_str("<p id=restore-disabled class=note>Restoring from this page is off: start <code>sitevault serve</code> with <code>--allow-restore</code> to turn it on.</p>");
        }
        let _ = write!(
            h,
            "<p class=note>The ticked entries, or this whole folder when none is ticked.</p>\
             <label><input type=radio name=dest value=original{}{}> To the original location{}</label>\
             <label><input type=radio name=dest value=target{}> Under another folder: <input type=text name=target id=target placeholder=\"{}\" size=40></label>\
             <label>If a file is already there: <select name=if_exists id=if-exists>\
             <option value=overwrite>overwrite it (when different)</option>\
             <option value=skip>skip it</option>\
             <option value=keep-both>keep both versions</option></select></label>\
             <div class=buttons><button name=action value=preview id=preview>Preview (dry run)</button>\
             <button name=action value=restore id=restore-now class=primary>Restore</button></div></fieldset>",
            if native { " checked" } else { "" },
            if native { "" } else { " disabled" },
            if native {
                ""
            } else {
                " (not from this platform)"
            },
            if native { "" } else { " checked" },
            if cfg!(windows) {
                r"D:\Restore"
            } else {
                "/srv/restore"
            }
        );
        h
    }

    // ------------------------------------------------------------------------------------
    // History, diff, search

    pub fn history(&self, f: &Fields) -> Response {
        let c = self.c;
        let base = self.base();
        let snaps = c.browser.snapshots();
        // The style of the recovery point the link came from (or the newest).
        let from = c.pick(f).ok();
        let Some(style) = from
            .as_ref()
            .map(|s| s.snapshot.path_style)
            .or_else(|| snaps.last().map(|s| s.snapshot.path_style))
        else {
            return error_page(base, 404, "the vault holds no recovery points yet");
        };
        let comps = match parse_original(style, f.bytes("path").unwrap_or_default()) {
            Ok(x) if !x.is_empty() => x,
            Ok(_) => return error_page(base, 400, "give the path of a file or folder"),
            Err(e) => return error_page(base, 400, &e.to_string()),
        };
        let shown_path = shown(style, &comps);
        let mut h = format!(
            "<h1>History</h1><p class=where><code id=path>{}</code></p>\
             <table id=history class=list><thead><tr><th>Recovery point</th><th>Time</th><th>Host</th><th class=num>Size</th><th>Modified</th><th>Change</th><th></th></tr></thead><tbody>",
            esc_bytes(&shown_path)
        );
        let mut last: HashMap<(String, String), Vec<u8>> = HashMap::new();
        let mut held = 0;
        for s in snaps.iter().filter(|s| s.snapshot.path_style == style) {
            let e = match c.browser.at_path(s, &comps) {
                Ok(Some(e)) => e,
                Ok(None) => continue,
                Err(e) => {
                    let _ = write!(
                        h,
                        "<tr class=error><td><code>{}</code></td><td colspan=6>{}</td></tr>",
                        esc(&s.id.short()),
                        esc(&e.to_string())
                    );
                    continue;
                }
            };
            held += 1;
            let a = c.browser.attr(&e);
            let group = (s.snapshot.host.clone(), s.snapshot.label.clone());
            let key = content_key(&e).unwrap_or_default();
            let change = match last.insert(group, key.clone()) {
                None => "first",
                Some(prev) if prev == key => "unchanged",
                Some(_) => "changed",
            };
            let action = if a.kind == Kind::Dir {
                format!("<a href=\"{}\">Browse</a>", browse_url(base, s, &comps))
            } else {
                format!(
                    "<a class=download href=\"{}\" download>Download</a> <a href=\"{}\">Folder</a>",
                    download_url(base, s, &comps),
                    browse_url(base, s, &comps[..comps.len() - 1])
                )
            };
            let _ = write!(
                h,
                "<tr data-id={short} data-change={change}><td><code>{short}</code></td><td><time>{}</time></td><td>{}</td><td class=num>{}</td><td><time>{}</time></td><td class=\"change {change}\">{change}</td><td>{action}</td></tr>",
                esc(&when(c, s.snapshot.time)),
                esc(&s.snapshot.host),
                if a.kind == Kind::Dir {
                    String::new()
                } else {
                    size(a.size)
                },
                esc(&when_ns(c, a.mtime_ns)),
                short = esc(&s.id.short()),
            );
        }
        h.push_str("</tbody></table>");
        let _ = write!(
            h,
            "<p id=history-count>In {held} of {} recovery points. <em>changed</em> means its content differs from the previous recovery point of the same host and label that holds it; a new modification time alone is not a change.</p>",
            snaps.len()
        );
        html(200, page(base, "History", "", &h))
    }

    pub fn diff(&self, f: &Fields) -> Response {
        let c = self.c;
        let base = self.base();
        let snaps = c.browser.snapshots();
        if snaps.is_empty() {
            return error_page(base, 404, "the vault holds no recovery points yet");
        }
        let find = |k: &str| -> Result<Option<Arc<SnapInfo>>, Response> {
            match f.text(k) {
                None => Ok(None),
                Some(v) => {
                    let one = Fields(vec![("id".into(), v.as_bytes().to_vec())]);
                    c.pick(&one).map(Some)
                }
            }
        };
        let b = match find("b") {
            Ok(Some(b)) => b,
            Ok(None) => Arc::clone(&snaps[snaps.len() - 1]),
            Err(r) => return r,
        };
        let a = match find("a") {
            Ok(Some(a)) => Some(a),
            // The one before of the same host and label, else simply the one before.
            Ok(None) => {
                let before = || {
                    snaps
                        .iter()
                        .rev()
                        .filter(|s| s.snapshot.time < b.snapshot.time)
                };
                before()
                    .find(|s| {
                        s.snapshot.host == b.snapshot.host && s.snapshot.label == b.snapshot.label
                    })
                    .or_else(|| before().next())
                    .cloned()
            }
            Err(r) => return r,
        };
        let options = |sel: Option<&Id>| {
            let mut o = String::new();
            for s in snaps.iter().rev() {
                let _ = write!(
                    o,
                    "<option value={}{}>{} · {} {}</option>",
                    s.id.to_hex(),
                    if Some(&s.id) == sel { " selected" } else { "" },
                    esc(&when(c, s.snapshot.time)),
                    esc(&s.snapshot.host),
                    esc(&s.id.short())
                );
            }
            o
        };
        let mut h = format!(
            "<h1>Compare two recovery points</h1><form id=diff-form method=get action=\"{base}diff\">\
             <label>From <select name=a id=diff-a>{}</select></label> <label>to <select name=b id=diff-b>{}</select></label> <button>Compare</button></form>",
            options(a.as_ref().map(|a| &a.id)),
            options(Some(&b.id))
        );
        let Some(a) = a else {
            h.push_str("<p id=diff-none>This is the oldest recovery point: choose another to compare with.</p>");
            return html(200, page(base, "Compare", "diff", &h));
        };
        let index = c.browser.index();
        let d = match crate::ops::history::diff(c.browser.vault(), &index, &a.snapshot, &b.snapshot)
        {
            Ok(d) => d,
            Err(e) => return error_page(base, 500, &e.to_string()),
        };
        let sm = &d.summary;
        let _ = write!(
            h,
            "<p id=diff-summary>From <code>{}</code> to <code>{}</code>: {} added, {} removed, {} modified ({} more with only a new modification time); {} added, {} removed.</p>\
             <table id=diff class=list><thead><tr><th></th><th>Path</th><th class=num>Before</th><th class=num>After</th></tr></thead><tbody>",
            esc(&a.id.short()),
            esc(&b.id.short()),
            sm.added,
            sm.removed,
            sm.modified,
            sm.metadata_only,
            size(sm.bytes_added),
            size(sm.bytes_removed)
        );
        let style = b.snapshot.path_style;
        for e in d.entries.iter().take(MAX_ROWS) {
            let (snap, comps) = match parse_original(style, &e.path) {
                Ok(cs) if e.change == crate::ops::history::Change::Removed => (&a, cs),
                Ok(cs) => (&b, cs),
                Err(_) => (&b, Vec::new()),
            };
            let _ = write!(
                h,
                "<tr data-change={:?}><td class=mark>{}</td><td><a href=\"{}\">{}</a></td><td class=num>{}</td><td class=num>{}</td></tr>",
                e.change,
                e.change.mark(),
                browse_url(base, snap, &comps),
                esc_bytes(&e.path),
                e.size_before.map(size).unwrap_or_default(),
                e.size_after.map(size).unwrap_or_default()
            );
        }
        h.push_str("</tbody></table>");
        if d.entries.len() > MAX_ROWS {
            let _ = write!(
                h,
                "<p class=note>The first {MAX_ROWS} of {} changes; `sitevault diff` lists them all.</p>",
                d.entries.len()
            );
        }
        html(200, page(base, "Compare", "diff", &h))
    }

    pub fn search(&self, f: &Fields) -> Response {
        let c = self.c;
        let base = self.base();
        let text = f.text("q").unwrap_or_default();
        let mut h = format!(
            "<h1>Search</h1><form id=search-form method=get action=\"{base}search\"><input name=q id=q type=search value=\"{}\" placeholder=\"*.mdf, Scupdb.sdf, /srv/site/**\" size=40> <button>Find</button></form>\
             <p class=note>A name without a separator matches at any depth; a path matches whole. <code>*</code> and <code>?</code> stay within a name, <code>**</code> crosses folders.</p>",
            esc(text)
        );
        if text.is_empty() {
            return html(200, page(base, "Search", "search", &h));
        }
        let pattern = match crate::pattern::PathFilter::new(&[text.to_string()], &[]) {
            Ok(p) => p,
            Err(e) => return error_page(base, 400, &e.to_string()),
        };
        let snaps = c.browser.snapshots();
        let pairs: Vec<(Id, crate::format::snapshot::Snapshot)> =
            snaps.iter().map(|s| (s.id, s.snapshot.clone())).collect();
        let index = c.browser.index();
        let hits = match crate::ops::history::find(c.browser.vault(), &index, &pairs, &pattern) {
            Ok(h) => h,
            Err(e) => return error_page(base, 500, &e.to_string()),
        };
        // One row per path: its newest appearance, and how many recovery points hold it.
        let by_id: HashMap<Id, &Arc<SnapInfo>> = snaps.iter().map(|s| (s.id, s)).collect();
        let mut rows: BTreeMap<Vec<u8>, (usize, &crate::ops::history::Hit)> = BTreeMap::new();
        for hit in &hits {
            let r = rows.entry(hit.path.clone()).or_insert((0, hit));
            r.0 += 1;
            if hit.time >= r.1.time {
                r.1 = hit;
            }
        }
        let _ = write!(
            h,
            "<p id=search-count>{} paths in {} places.</p><table id=hits class=list><thead><tr><th>Path</th><th class=num>Size</th><th>Newest in</th><th>Recovery points</th><th></th></tr></thead><tbody>",
            rows.len(),
            hits.len()
        );
        for (path, (n, hit)) in rows.iter().take(MAX_ROWS) {
            let Some(s) = by_id.get(&hit.snapshot) else {
                continue;
            };
            let comps = parse_original(s.snapshot.path_style, path).unwrap_or_default();
            let parent = &comps[..comps.len().saturating_sub(1)];
            let dir = matches!(hit.kind, crate::ops::history::EntryKind::Dir);
            let _ = write!(
                h,
                "<tr data-path=\"{}\"><td><a href=\"{}\">{}</a></td><td class=num>{}</td><td><code>{}</code> <time>{}</time></td><td>{n}</td><td><a class=history href=\"{}\">History</a></td></tr>",
                esc_bytes(path),
                browse_url(base, s, if dir { &comps } else { parent }),
                esc_bytes(path),
                if dir { String::new() } else { size(hit.size) },
                esc(&s.id.short()),
                esc(&when(c, hit.time)),
                history_url(base, s, &comps)
            );
        }
        h.push_str("</tbody></table>");
        html(200, page(base, "Search", "search", &h))
    }

    // ------------------------------------------------------------------------------------
    // The vault page

    pub fn vault(&self) -> Response {
        let c = self.c;
        let base = self.base();
        let snaps = c.browser.snapshots();
        let mut h = format!(
            "<h1>Vault</h1><p class=where><code id=vault-location>{}</code> · {} recovery points</p>",
            esc(c.browser.vault().location()),
            snaps.len()
        );
        // Per host and label.
        let mut groups: BTreeMap<(String, String), (usize, Timestamp, Timestamp, u64)> =
            BTreeMap::new();
        for s in &snaps {
            let g = groups
                .entry((s.snapshot.host.clone(), s.snapshot.label.clone()))
                .or_insert((0, s.snapshot.time, s.snapshot.time, 0));
            g.0 += 1;
            g.1 = g.1.min(s.snapshot.time);
            g.2 = g.2.max(s.snapshot.time);
            g.3 += s.snapshot.summary.bytes_added;
        }
        h.push_str("<h2>Recovery points per host and label</h2><table id=groups class=list><thead><tr><th>Host</th><th>Label</th><th class=num>Count</th><th>Oldest</th><th>Newest</th><th class=num>Stored by them</th></tr></thead><tbody>");
        for ((host, label), (n, first, last, added)) in &groups {
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

        // Bytes added per night, as bars.
        let mut nights: BTreeMap<String, u64> = BTreeMap::new();
        for s in &snaps {
            *nights.entry(s.day.clone()).or_default() += s.snapshot.summary.bytes_added;
        }
        h.push_str("<h2>Stored bytes added per night</h2>");
        h.push_str(&chart(&nights));

        // Change-tracking windows of site-database recovery points.
        let out = outside(c);
        let sites: Vec<&Arc<SnapInfo>> = snaps
            .iter()
            .filter(|s| s.snapshot.change_tracking_days.is_some())
            .collect();
        if !sites.is_empty() {
            h.push_str("<h2>Site database recovery points</h2><table id=change-tracking class=list><thead><tr><th>Recovery point</th><th>Time</th><th>Host</th><th>Change tracking</th></tr></thead><tbody>");
            for s in sites.iter().rev() {
                let inside = !out.contains(&s.id);
                let _ = write!(
                    h,
                    "<tr data-id={} data-window={}><td><code>{}</code></td><td>{}</td><td>{}</td><td class={}>{} ({} days)</td></tr>",
                    esc(&s.id.short()),
                    if inside { "inside" } else { "outside" },
                    esc(&s.id.short()),
                    esc(&when(c, s.snapshot.time)),
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
            h.push_str("</tbody></table>");
        }

        // The last check.
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
        let _ = write!(
            h,
            "<form id=check-form method=post action=\"{base}check\"><input type=hidden name=csrf value=\"{}\"><button id=check-now>Check the vault's structure now</button></form>",
            self.csrf
        );
        html(200, page(base, "Vault", "vault", &h))
    }

    // ------------------------------------------------------------------------------------
    // Restore jobs

    pub fn job(&self, n: &str) -> Response {
        let base = self.base();
        let Some(st) = n.parse().ok().and_then(|n| self.c.jobs.status(n)) else {
            return error_page(base, 404, &format!("no restore job {n}"));
        };
        let state = match st.state {
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
        };
        let mut h = format!(
            "<h1>Restore {}</h1><div id=job data-job={} data-state={state} data-url=\"{base}jobs/{}.json\">\
             <p>Recovery point <code>{}</code> to {}</p>\
             <progress id=job-progress max={} value={}></progress>\
             <p id=job-counts>{} of {} files, {} of {}</p><p id=job-result class=result>{}</p><ul id=job-errors>",
            st.id,
            st.id,
            st.id,
            esc(&st.snapshot),
            esc(&st.destination),
            st.bytes_total.max(1),
            st.bytes_done,
            st.files_done,
            st.files_total,
            size(st.bytes_done),
            size(st.bytes_total),
            esc(st.result.as_deref().unwrap_or("running…"))
        );
        for e in &st.errors {
            let _ = write!(h, "<li>{}</li>", esc(e));
        }
        h.push_str("</ul></div>");
        if matches!(st.state, State::Running) {
            // Without the script the page still moves on.
            h.push_str("<noscript><meta http-equiv=refresh content=2></noscript>");
        }
        html(200, page(base, "Restore", "", &h))
    }

    pub fn job_json(&self, n: &str) -> Response {
        match n.parse().ok().and_then(|n| self.c.jobs.status(n)) {
            Some(st) => secure(
                Response::new(200)
                    .with_header("Content-Type", "application/json")
                    .with_bytes(serde_json::to_vec(&st).unwrap_or_default()),
            ),
            None => secure(Response::text(404, "no such job\n")),
        }
    }
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

// ----------------------------------------------------------------------------------------
// Requests that are not pages

/// Stream a file of a recovery point, byte for byte.
pub(super) fn download(c: &Console, f: &Fields) -> Response {
    let base = &c.base;
    let s = match c.pick(f) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let comps = match parse_original(s.snapshot.path_style, f.bytes("path").unwrap_or_default()) {
        Ok(x) if !x.is_empty() => x,
        Ok(_) => return error_page(base, 400, "give the path of a file"),
        Err(e) => return error_page(base, 400, &e.to_string()),
    };
    let e = match c.browser.at_path(&s, &comps) {
        Ok(Some(e)) if c.browser.attr(&e).kind != Kind::Dir => e,
        Ok(Some(_)) => return error_page(base, 400, "that is a folder: restore it instead"),
        Ok(None) => return error_page(base, 404, "the recovery point holds no such file"),
        Err(e) => return error_page(base, 500, &e.to_string()),
    };
    let file = match c.browser.open(&e) {
        Ok(f) => Arc::new(f),
        Err(e) => return error_page(base, 500, &e.to_string()),
    };
    let name = comps.last().cloned().unwrap_or_default();
    let ascii: String = String::from_utf8_lossy(&name)
        .chars()
        .map(|ch| {
            if ch.is_ascii_graphic() && ch != '"' && ch != '\\' {
                ch
            } else {
                '_'
            }
        })
        .collect();
    let len = file.size();
    let mut r = secure(
        Response::new(200)
            .with_header("Content-Type", "application/octet-stream")
            .with_header(
                "Content-Disposition",
                format!(
                    "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
                    q(&name)
                ),
            )
            .with_header("ETag", format!("\"{}\"", file.etag())),
    );
    let browser = Arc::clone(&c.browser);
    let what = format!("download {}", String::from_utf8_lossy(&name));
    r.body = Body::Stream {
        len,
        write: Box::new(move |w| crate::browse::webdav::stream(&browser, &file, 0, len, w, &what)),
    };
    r
}

/// A restore target from the page: absolute, and no `.` or `..` to climb out of it.
fn target_dir(t: &str) -> Result<PathBuf, String> {
    let p = Path::new(t);
    if !p.is_absolute() {
        return Err(format!(
            "the folder {t:?} is not an absolute path: give one like {}",
            if cfg!(windows) {
                r"D:\Restore"
            } else {
                "/srv/restore"
            }
        ));
    }
    if p.components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(format!(
            "the folder {t:?} may not contain . or .. components"
        ));
    }
    Ok(p.to_path_buf())
}

/// `POST restore`: validate everything, then preview (dry run) or start the job.
pub(super) fn restore_post(c: &Console, f: &Fields) -> Response {
    let base = &c.base;
    if !c.opts.allow_restore {
        return error_page(
            base,
            403,
            "restoring from the console is off: start sitevault serve with --allow-restore",
        );
    }
    if f.text("id").is_none() {
        return error_page(base, 400, "the form names no recovery point");
    }
    let s = match c.pick(f) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let style = s.snapshot.path_style;
    // Each selected path is percent-encoded in the form (names need not be UTF-8), and must
    // exist in the recovery point.
    let mut chosen: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut picked: Vec<&[u8]> = f.all("sel");
    if picked.is_empty()
        && let Some(folder) = f.bytes("folder")
        && !folder.is_empty()
    {
        picked.push(folder);
    }
    for p in picked {
        let Some(raw) = crate::browse::webdav::decode(&String::from_utf8_lossy(p)) else {
            return error_page(
                base,
                400,
                "a selected path is not encoded as the page sends it",
            );
        };
        let comps = match parse_original(style, &raw) {
            Ok(x) if !x.is_empty() => x,
            Ok(_) => continue,
            Err(e) => return error_page(base, 400, &e.to_string()),
        };
        match c.browser.at_path(&s, &comps) {
            Ok(Some(_)) => chosen.push(comps),
            Ok(None) => {
                return error_page(
                    base,
                    400,
                    &format!(
                        "recovery point {} holds nothing at {}",
                        s.id.short(),
                        String::from_utf8_lossy(&raw)
                    ),
                );
            }
            Err(e) => return error_page(base, 500, &e.to_string()),
        }
    }
    let (dest, dest_shown) = match f.text("dest") {
        Some("original") | None => (Destination::Original, "the original location".to_string()),
        Some("target") => match f.text("target").map(target_dir) {
            Some(Ok(p)) => {
                let shown = p.display().to_string();
                (Destination::Target(p), shown)
            }
            Some(Err(e)) => return error_page(base, 400, &e),
            None => return error_page(base, 400, "give the folder to restore under"),
        },
        Some(other) => {
            return error_page(
                base,
                400,
                &format!("destination {other:?}: choose original or another folder"),
            );
        }
    };
    let if_exists: IfExists = match f.text("if_exists").unwrap_or("overwrite").parse() {
        Ok(x) => x,
        Err(e) => return error_page(base, 400, &e.to_string()),
    };
    let mut opts = RestoreOptions::new(dest);
    opts.if_exists = if_exists;
    if !chosen.is_empty() {
        opts.filter = crate::pattern::PathFilter::exact(chosen.clone());
    }
    opts.stamp = s
        .snapshot
        .time
        .to_zoned(c.opts.time_zone.clone())
        .strftime("%Y-%m-%d %H%M")
        .to_string();
    match f.text("action") {
        Some("preview") => preview(c, f, &s, opts, &chosen, &dest_shown),
        Some("restore") => {
            let n = c.jobs.start(
                Arc::clone(&c.browser),
                s.id,
                s.snapshot.clone(),
                opts,
                dest_shown,
            );
            if n == 0 {
                return error_page(base, 500, "cannot start a restore thread");
            }
            secure(Response::new(303).with_header("Location", format!("{base}jobs/{n}")))
        }
        _ => error_page(base, 400, "choose Preview or Restore"),
    }
}

/// The dry run's plan, with a button that runs it for real with the same fields.
fn preview(
    c: &Console,
    f: &Fields,
    s: &Arc<SnapInfo>,
    mut opts: RestoreOptions,
    chosen: &[Vec<Vec<u8>>],
    dest: &str,
) -> Response {
    let base = &c.base;
    opts.dry_run = true;
    let index = c.browser.index();
    let plan = match crate::ops::restore::restore(c.browser.vault(), &index, &s.snapshot, &opts) {
        Ok(p) => p,
        Err(e) => return error_page(base, 400, &e.to_string()),
    };
    let style = s.snapshot.path_style;
    let what = if chosen.is_empty() {
        "everything".to_string()
    } else {
        chosen
            .iter()
            .map(|cs| String::from_utf8_lossy(&shown(style, cs)).into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for a in &plan.actions {
        *counts.entry(action_name(a.action)).or_default() += 1;
    }
    let tally = if counts.is_empty() {
        "nothing to do".to_string()
    } else {
        counts
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut h = format!(
        "<h1>Restore preview</h1>{}<p id=plan-summary>Restoring {} to {}: {}{}. Nothing has been written yet.</p>\
         <table id=plan class=list><thead><tr><th>Action</th><th>Path</th><th>Written to</th></tr></thead><tbody>",
        snap_bar(c, s),
        esc(&what),
        esc(dest),
        esc(&tally),
        if plan.summary.errors.is_empty() {
            String::new()
        } else {
            format!("; {} cannot be restored", plan.summary.errors.len())
        }
    );
    for a in plan.actions.iter().take(MAX_ROWS) {
        let act = action_name(a.action);
        let _ = write!(
            h,
            "<tr data-action={act}><td>{act}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.path),
            esc(a.written_to.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</tbody></table>");
    // The confirm form repeats every field but the action.
    let _ = write!(
        h,
        "<form id=confirm-form method=post action=\"{base}restore\">"
    );
    for (k, v) in &f.0 {
        if k == "action" {
            continue;
        }
        let _ = write!(
            h,
            "<input type=hidden name=\"{}\" value=\"{}\">",
            esc(k),
            esc(&String::from_utf8_lossy(v))
        );
    }
    h.push_str(
        "<button name=action value=restore id=confirm class=primary>Restore now</button></form>",
    );
    html(200, page(base, "Restore preview", "", &h))
}

/// `write`, `overwrite`, `unchanged`, `skip`, `keep-both`: as `restore --dry-run --json`.
fn action_name(a: crate::ops::restore::Action) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `POST check`: run a structural check in the background; the vault page shows it.
pub(super) fn check_post(c: &Console) -> Response {
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
            let done = match r {
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
            };
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(done);
        });
    if started.is_err() {
        *c.last_check.lock().unwrap_or_else(|p| p.into_inner()) = None;
        return error_page(&base, 500, "cannot start a check thread");
    }
    secure(Response::new(303).with_header("Location", format!("{base}vault")))
}
