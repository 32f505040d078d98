//! HTML building blocks for the console: escaping, URLs with query strings, the page frame,
//! and parsing of query strings and form bodies (values are bytes: names need not be UTF-8).

use std::fmt::Write as _;

use crate::browse::http::Response;
use crate::browse::webdav::{decode, encode, escape};

/// Escape text for HTML (element content and quoted attributes).
pub(crate) fn esc(s: &str) -> String {
    escape(s)
}

/// Bytes shown as text (lossy UTF-8), escaped.
pub(crate) fn esc_bytes(b: &[u8]) -> String {
    escape(&String::from_utf8_lossy(b))
}

/// Percent-encode bytes for a query value.
pub fn q(b: &[u8]) -> String {
    encode(b)
}

/// Query-string pairs: `+` is a space (HTML forms), `%XX` a byte. Bad escapes drop the pair.
pub(crate) fn parse_pairs(s: &str) -> Vec<(String, Vec<u8>)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let k = decode(&k.replace('+', " "))?;
            let v = decode(&v.replace('+', " "))?;
            Some((String::from_utf8_lossy(&k).into_owned(), v))
        })
        .collect()
}

/// Parsed query or form fields.
#[derive(Debug, Default, Clone)]
pub struct Fields(pub Vec<(String, Vec<u8>)>);

impl Fields {
    pub fn parse(s: &str) -> Fields {
        Fields(parse_pairs(s))
    }
    pub fn bytes(&self, k: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_slice())
    }
    /// A field as text; `None` when absent, empty or not UTF-8.
    pub fn text(&self, k: &str) -> Option<&str> {
        self.bytes(k)
            .and_then(|b| std::str::from_utf8(b).ok())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
    pub fn all(&self, k: &str) -> Vec<&[u8]> {
        self.0
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_slice())
            .collect()
    }
}

/// Headers every console response carries: no external anything, no framing, referrers only
/// to ourselves (the token is in every URL; `no-referrer` would make Chromium send
/// `Origin: null` on our own form posts), nothing cached.
pub(crate) fn secure(r: Response) -> Response {
    r.with_header(
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    )
    .with_header("X-Content-Type-Options", "nosniff")
    .with_header("X-Frame-Options", "DENY")
    .with_header("Referrer-Policy", "same-origin")
    .with_header("Cache-Control", "no-store")
}

/// The page frame: head with the embedded stylesheet and script, the navigation bar, `body`.
pub fn page(base: &str, title: &str, active: &str, body: &str) -> String {
    let mut h = String::with_capacity(body.len() + 2048);
    let _ = write!(
        h,
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width, initial-scale=1\">\
         <title>{} · sitevault</title>\
         <link rel=stylesheet href=\"{base}assets/console.css\">\
         <script defer src=\"{base}assets/console.js\"></script></head><body>\
         <header><a class=brand href=\"{base}\">sitevault</a><nav>",
        esc(title)
    );
    for (key, href, label) in [
        ("calendar", "", "Recovery points"),
        ("search", "search", "Search"),
        ("diff", "diff", "Compare"),
        ("vault", "vault", "Vault"),
    ] {
        let cls = if key == active { " class=active" } else { "" };
        let _ = write!(
            h,
            "<a{cls} id=\"nav-{key}\" href=\"{base}{href}\">{label}</a>"
        );
    }
    let _ = write!(
        h,
        "</nav><form class=search method=get action=\"{base}search\">\
         <input name=q type=search placeholder=\"Find a file: *.mdf, Scupdb.sdf\" aria-label=\"Find a file\">\
         </form></header><main>{body}</main></body></html>"
    );
    h
}

pub fn html(status: u16, body: String) -> Response {
    secure(
        Response::new(status)
            .with_header("Content-Type", "text/html; charset=utf-8")
            .with_bytes(body.into_bytes()),
    )
}

/// A page that says what went wrong, in one line, and where to go.
pub(crate) fn error_page(base: &str, status: u16, what: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p class=error id=error>{}</p><p><a href=\"{base}\">Back to the recovery points</a></p>",
        match status {
            400 => "Cannot do that",
            403 => "Not allowed",
            404 => "Not found",
            _ => "Something failed",
        },
        esc(what)
    );
    html(status, page(base, "Error", "", &body))
}

/// `1.5 MiB`.
pub fn size(n: u64) -> String {
    crate::size::format_bytes(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_decode_to_bytes() {
        let f = Fields::parse("path=%2Fsrv%2Fcaf%E9+x&sel=a&sel=b&empty=");
        assert_eq!(f.bytes("path"), Some(&b"/srv/caf\xe9 x"[..]));
        assert_eq!(f.all("sel"), vec![&b"a"[..], b"b"]);
        assert_eq!(f.text("empty"), None);
        assert_eq!(f.text("nope"), None);
    }
}
