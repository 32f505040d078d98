//! Browsing a recovery point by original path: a folder's entries (with the restore form), a
//! file's page, and downloads.

use std::fmt::Write as _;
use std::sync::Arc;

use super::{Ctx, browse_url, download_url, history_url, shown, snap_bar, when_ns};
use crate::browse::console::Console;
use crate::browse::console::html::{
    Fields, error_page, esc, esc_bytes, html, page, q, secure, size,
};
use crate::browse::http::{Body, Response};
use crate::browse::{Attr, Entry, Kind, SnapInfo};
use crate::paths::{PathStyle, parse_original};

/// A folder's entry as listed: its name, the entry, and its attributes.
type Row = (Vec<u8>, Entry, Attr);

impl Ctx<'_> {
    pub fn browse(&self, f: &Fields) -> Response {
        let c = self.c;
        let base = self.base();
        let s = match c.pick(f) {
            Ok(s) => s,
            Err(r) => return r,
        };
        let comps = match parse_original(s.snapshot.path_style, f.bytes("path").unwrap_or_default())
        {
            Ok(x) => x,
            Err(e) => return error_page(base, 400, &e.to_string()),
        };
        let list = match self.folder_entries(&s, &comps) {
            Ok(l) => l,
            Err(r) => return r,
        };
        let rows = self.sorted_rows(list);

        let mut h = String::new();
        let _ = write!(h, "<h1>Browse</h1>{}", snap_bar(c, &s));
        crumbs(&mut h, base, &s, &comps);
        self.folder_form_start(&mut h, &s, &comps);
        h.push_str("<table id=entries class=list><thead><tr><th><input type=checkbox id=select-all aria-label=\"Select all\"></th><th>Name</th><th class=num>Size</th><th>Modified</th><th></th></tr></thead><tbody>");
        for (name, _, a) in &rows {
            self.entry_row(&mut h, &s, &comps, name, a);
        }
        h.push_str("</tbody></table>");
        if rows.is_empty() {
            h.push_str("<p id=empty-folder>This folder is empty.</p>");
        }
        h.push_str(&self.restore_fieldset(&s));
        h.push_str("</form>");
        html(200, page(base, "Browse", "calendar", &h))
    }

    /// The entries of the folder at `comps` (the root: the backed-up paths), or the response
    /// to send instead: the file's page when `comps` names a file, else an error.
    fn folder_entries(
        &self,
        s: &Arc<SnapInfo>,
        comps: &[Vec<u8>],
    ) -> Result<Vec<(Vec<u8>, Entry)>, Response> {
        let c = self.c;
        let base = self.base();
        let listing = if comps.is_empty() {
            c.browser.root_entries(s)
        } else {
            match c.browser.at_path(s, comps) {
                Ok(Some(e)) if c.browser.attr(&e).kind == Kind::Dir => c.browser.list(&e),
                Ok(Some(e)) => return Err(self.file_page(s, comps, &e)),
                Ok(None) => {
                    return Err(error_page(
                        base,
                        404,
                        &format!(
                            "recovery point {} holds nothing at {}",
                            s.id.short(),
                            String::from_utf8_lossy(&shown(s.snapshot.path_style, comps))
                        ),
                    ));
                }
                Err(e) => Err(e),
            }
        };
        listing.map_err(|e| error_page(base, 500, &e.to_string()))
    }

    /// The entries with their attributes, folders first, each group by name.
    fn sorted_rows(&self, list: Vec<(Vec<u8>, Entry)>) -> Vec<Row> {
        let mut rows: Vec<Row> = list
            .into_iter()
            .map(|(n, e)| {
                let a = self.c.browser.attr(&e);
                (n, e, a)
            })
            .collect();
        rows.sort_by(|a, b| (a.2.kind != Kind::Dir, &a.0).cmp(&(b.2.kind != Kind::Dir, &b.0)));
        rows
    }

    /// The folder's path (with a link to its history), and the start of the restore form.
    fn folder_form_start(&self, h: &mut String, s: &SnapInfo, comps: &[Vec<u8>]) {
        let base = self.base();
        let shown_path = shown(s.snapshot.path_style, comps);
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
                    history_url(base, s, comps)
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
    }

    /// One entry of the folder at `comps`: a box to select it, a link to open or download
    /// it, its size and time, and a link to its history.
    fn entry_row(&self, h: &mut String, s: &SnapInfo, comps: &[Vec<u8>], name: &[u8], a: &Attr) {
        let base = self.base();
        let style = s.snapshot.path_style;
        let mut child = comps.to_vec();
        child.push(name.to_vec());
        let path_q = q(&shown(style, &child));
        let shown_name = if comps.is_empty() {
            shown(style, &child)
        } else {
            name.to_vec()
        };
        let link = match a.kind {
            Kind::Dir => format!(
                "<a class=folder href=\"{}\">{}</a>",
                browse_url(base, s, &child),
                esc_bytes(&shown_name)
            ),
            _ => format!(
                "<a class=download href=\"{}\" download>{}</a>",
                download_url(base, s, &child),
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
            esc(&when_ns(self.c, a.mtime_ns)),
            history_url(base, s, &child)
        );
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
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Dir => "dir",
        Kind::File => "file",
        Kind::Symlink => "symlink",
    }
}

/// The breadcrumbs: a link to each ancestor folder of `comps`.
fn crumbs(h: &mut String, base: &str, s: &SnapInfo, comps: &[Vec<u8>]) {
    let _ = write!(
        h,
        "<nav class=crumbs id=crumbs><a href=\"{}\">all paths</a>",
        browse_url(base, s, &[])
    );
    for i in 1..=comps.len() {
        let _ = write!(
            h,
            " <span>›</span> <a href=\"{}\">{}</a>",
            browse_url(base, s, &comps[..i]),
            esc_bytes(&comps[i - 1])
        );
    }
    h.push_str("</nav>");
}

/// Stream a file of a recovery point, byte for byte.
pub(crate) fn download(c: &Console, f: &Fields) -> Response {
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
    let ascii = ascii_name(&name);
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

/// The file name for browsers that ignore `filename*`: printable ASCII, others as `_`.
fn ascii_name(name: &[u8]) -> String {
    String::from_utf8_lossy(name)
        .chars()
        .map(|ch| {
            if ch.is_ascii_graphic() && ch != '"' && ch != '\\' {
                ch
            } else {
                '_'
            }
        })
        .collect()
}
