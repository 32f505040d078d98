//! Looking across recovery points: a path's history, comparing two recovery points, and
//! searching them all by name or path pattern.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use super::{Ctx, MAX_ROWS, browse_url, download_url, history_url, shown, when, when_ns};
use crate::browse::console::html::{Fields, error_page, esc, esc_bytes, html, page, size};
use crate::browse::http::Response;
use crate::browse::{Entry, Kind, SnapInfo};
use crate::format::id::Id;
use crate::format::tree::NodeKind;
use crate::ops::history::{Diff, Hit};
use crate::paths::{PathStyle, parse_original};

/// The content each (host, label) last had at the path, to tell a change from none.
type LastSeen = HashMap<(String, String), Vec<u8>>;

impl Ctx<'_> {
    pub fn history(&self, f: &Fields) -> Response {
        let c = self.c;
        let base = self.base();
        let snaps = c.browser.snapshots();
        let (style, comps) = match self.history_path(f, &snaps) {
            Ok(x) => x,
            Err(r) => return r,
        };
        let shown_path = shown(style, &comps);
        let mut h = format!(
            "<h1>History</h1><p class=where><code id=path>{}</code></p>\
             <table id=history class=list><thead><tr><th>Recovery point</th><th>Time</th><th>Host</th><th class=num>Size</th><th>Modified</th><th>Change</th><th></th></tr></thead><tbody>",
            esc_bytes(&shown_path)
        );
        let mut last = LastSeen::new();
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
            self.history_row(&mut h, s, &comps, &e, &mut last);
        }
        h.push_str("</tbody></table>");
        let _ = write!(
            h,
            "<p id=history-count>In {held} of {} recovery points. <em>changed</em> means its content differs from the previous recovery point of the same host and label that holds it; a new modification time alone is not a change.</p>",
            snaps.len()
        );
        html(200, page(base, "History", "", &h))
    }

    /// The path whose history is asked for, and the path style it is read in.
    fn history_path(
        &self,
        f: &Fields,
        snaps: &[Arc<SnapInfo>],
    ) -> Result<(PathStyle, Vec<Vec<u8>>), Response> {
        let base = self.base();
        // The style of the recovery point the link came from (or the newest).
        let from = self.c.pick(f).ok();
        let Some(style) = from
            .as_ref()
            .map(|s| s.snapshot.path_style)
            .or_else(|| snaps.last().map(|s| s.snapshot.path_style))
        else {
            return Err(error_page(
                base,
                404,
                "the vault holds no recovery points yet",
            ));
        };
        match parse_original(style, f.bytes("path").unwrap_or_default()) {
            Ok(x) if !x.is_empty() => Ok((style, x)),
            Ok(_) => Err(error_page(base, 400, "give the path of a file or folder")),
            Err(e) => Err(error_page(base, 400, &e.to_string())),
        }
    }

    /// The path `comps` as recovery point `s` holds it (`e`): time, size, and whether it
    /// changed since the last recovery point of the same host and label.
    fn history_row(
        &self,
        h: &mut String,
        s: &SnapInfo,
        comps: &[Vec<u8>],
        e: &Entry,
        last: &mut LastSeen,
    ) {
        let c = self.c;
        let base = self.base();
        let a = c.browser.attr(e);
        let group = (s.snapshot.host.clone(), s.snapshot.label.clone());
        let key = content_key(e).unwrap_or_default();
        let change = match last.insert(group, key.clone()) {
            None => "first",
            Some(prev) if prev == key => "unchanged",
            Some(_) => "changed",
        };
        let action = if a.kind == Kind::Dir {
            format!("<a href=\"{}\">Browse</a>", browse_url(base, s, comps))
        } else {
            format!(
                "<a class=download href=\"{}\" download>Download</a> <a href=\"{}\">Folder</a>",
                download_url(base, s, comps),
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

    pub fn diff(&self, f: &Fields) -> Response {
        let c = self.c;
        let base = self.base();
        let snaps = c.browser.snapshots();
        if snaps.is_empty() {
            return error_page(base, 404, "the vault holds no recovery points yet");
        }
        let (a, b) = match self.diff_pair(f, &snaps) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let mut h = format!(
            "<h1>Compare two recovery points</h1><form id=diff-form method=get action=\"{base}diff\">\
             <label>From <select name=a id=diff-a>{}</select></label> <label>to <select name=b id=diff-b>{}</select></label> <button>Compare</button></form>",
            self.snapshot_options(&snaps, a.as_ref().map(|a| &a.id)),
            self.snapshot_options(&snaps, Some(&b.id))
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
        self.diff_table(&mut h, &a, &b, &d);
        html(200, page(base, "Compare", "diff", &h))
    }

    /// The two recovery points to compare: `b` as asked (else the newest), and `a` as asked,
    /// else the one before `b` of the same host and label, else simply the one before.
    fn diff_pair(
        &self,
        f: &Fields,
        snaps: &[Arc<SnapInfo>],
    ) -> Result<(Option<Arc<SnapInfo>>, Arc<SnapInfo>), Response> {
        let find = |k: &str| -> Result<Option<Arc<SnapInfo>>, Response> {
            match f.text(k) {
                None => Ok(None),
                Some(v) => {
                    let one = Fields(vec![("id".into(), v.as_bytes().to_vec())]);
                    self.c.pick(&one).map(Some)
                }
            }
        };
        let b = match find("b")? {
            Some(b) => b,
            None => Arc::clone(&snaps[snaps.len() - 1]),
        };
        let a = match find("a")? {
            Some(a) => Some(a),
            // The one before of the same host and label, else simply the one before.
            None => {
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
        };
        Ok((a, b))
    }

    /// The `<option>`s of every recovery point, newest first, with `sel` selected.
    fn snapshot_options(&self, snaps: &[Arc<SnapInfo>], sel: Option<&Id>) -> String {
        let mut o = String::new();
        for s in snaps.iter().rev() {
            let _ = write!(
                o,
                "<option value={}{}>{} · {} {}</option>",
                s.id.to_hex(),
                if Some(&s.id) == sel { " selected" } else { "" },
                esc(&when(self.c, s.snapshot.time)),
                esc(&s.snapshot.host),
                esc(&s.id.short())
            );
        }
        o
    }

    /// The summary of the differences from `a` to `b`, and a table of the first of them.
    fn diff_table(&self, h: &mut String, a: &Arc<SnapInfo>, b: &Arc<SnapInfo>, d: &Diff) {
        let base = self.base();
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
                Ok(cs) if e.change == crate::ops::history::Change::Removed => (a, cs),
                Ok(cs) => (b, cs),
                Err(_) => (b, Vec::new()),
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
        let rows = newest_per_path(&hits);
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
            self.hit_row(&mut h, s, path, *n, hit);
        }
        h.push_str("</tbody></table>");
        html(200, page(base, "Search", "search", &h))
    }

    /// One path found: a link to it (a file's: to its folder), its size, the newest
    /// recovery point `s` holding it, how many hold it (`n`), and a link to its history.
    fn hit_row(&self, h: &mut String, s: &SnapInfo, path: &[u8], n: usize, hit: &Hit) {
        let base = self.base();
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
            esc(&when(self.c, hit.time)),
            history_url(base, s, &comps)
        );
    }
}

/// Each path found, with how many hits it has and its newest.
fn newest_per_path(hits: &[Hit]) -> BTreeMap<Vec<u8>, (usize, &Hit)> {
    let mut rows: BTreeMap<Vec<u8>, (usize, &Hit)> = BTreeMap::new();
    for hit in hits {
        let r = rows.entry(hit.path.clone()).or_insert((0, hit));
        r.0 += 1;
        if hit.time >= r.1.time {
            r.1 = hit;
        }
    }
    rows
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
