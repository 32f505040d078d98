//! `sitevault serve`: the browse view ([`crate::browse`]) over read-only WebDAV (RFC 4918 class
//! 1: PROPFIND with Depth 0 or 1, GET and HEAD with single byte ranges, OPTIONS) at
//! `/<token>/dav/`, for Windows Explorer, rclone and davfs2. Every path must start with the
//! token; anything else is answered 404 with no content.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::Arc;

use crate::browse::http::{Body, Handler, Request, Response};
use crate::browse::{Attr, Browser, Entry, ErrorSink, Kind, OpenFile};

/// Bytes read from the vault per write to the connection.
const PIECE: usize = 1 << 20;

pub(crate) struct Dav {
    browser: Arc<Browser>,
    token: String,
    on_error: ErrorSink,
}

const ALLOW: &str = "OPTIONS, GET, HEAD, PROPFIND, LOCK, UNLOCK";

impl Dav {
    /// `token` must be URL-safe (see [`valid_token`]).
    pub fn new(browser: Arc<Browser>, token: String, on_error: ErrorSink) -> Dav {
        Dav {
            browser,
            token,
            on_error,
        }
    }

    /// The part of `path` after `/<token>`, if it starts with the token (compared in constant
    /// time, so response timing does not reveal it).
    fn after_token<'a>(&self, path: &'a str) -> Option<&'a str> {
        after_token(&self.token, path)
    }

    fn dav(&self, req: &Request, rest: &str) -> Response {
        let Some(names) = decode_path(rest) else {
            return Response::new(400);
        };
        let refs: Vec<&[u8]> = names.iter().map(|n| n.as_slice()).collect();
        let entry = match self.browser.resolve(&refs) {
            Ok(Some(e)) => e,
            Ok(None) => return Response::new(404),
            Err(e) => return self.failed(req, &e),
        };
        match req.method.as_str() {
            "OPTIONS" => options(),
            "PROPFIND" => self.propfind(req, &entry),
            "GET" | "HEAD" => self.get(req, &entry),
            "LOCK" => fake_lock(req),
            "UNLOCK" => Response::new(204),
            _ => read_only(),
        }
    }

    fn failed(&self, req: &Request, e: &crate::error::Error) -> Response {
        (self.on_error)(&format!("{} {}: {e}", req.method, req.path));
        Response::new(500)
    }

    fn propfind(&self, req: &Request, entry: &Entry) -> Response {
        // No Depth header means infinity (RFC 4918 §9.1), which no client needs and which
        // would walk a whole vault: clients get Depth 1, an explicit infinity is refused.
        let depth = req.header("depth").unwrap_or("1");
        let children = match depth {
            "0" => false,
            "1" => true,
            _ => {
                return Response::new(403)
                    .with_header("Content-Type", "application/xml; charset=utf-8")
                    .with_bytes(
                        br#"<?xml version="1.0" encoding="utf-8"?><D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>"#
                            .to_vec(),
                    );
            }
        };
        let base = collection_href(&req.path, &self.browser.attr(entry));
        let mut xml = String::with_capacity(4096);
        xml.push_str(r#"<?xml version="1.0" encoding="utf-8"?>"#);
        xml.push_str(r#"<D:multistatus xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:">"#);
        let name = last_name(&req.path);
        prop_response(&mut xml, &base, &name, &self.browser.attr(entry));
        if children && self.browser.attr(entry).kind == Kind::Dir {
            let list = match self.browser.list(entry) {
                Ok(l) => l,
                Err(e) => return self.failed(req, &e),
            };
            for (name, e) in &list {
                let a = self.shown_attr(e);
                let mut href = base.clone();
                href.push_str(&encode(name));
                if a.kind == Kind::Dir {
                    href.push('/');
                }
                prop_response(&mut xml, &href, &String::from_utf8_lossy(name), &a);
            }
        }
        xml.push_str("</D:multistatus>");
        Response::new(207)
            .with_header("Content-Type", "application/xml; charset=utf-8")
            .with_bytes(xml.into_bytes())
    }

    /// `latest` is shown as the folder it stands for.
    fn shown_attr(&self, e: &Entry) -> Attr {
        match e {
            Entry::Latest => self
                .browser
                .latest()
                .map_or_else(|| self.browser.attr(e), |l| self.browser.attr(&l)),
            _ => self.browser.attr(e),
        }
    }

    fn get(&self, req: &Request, entry: &Entry) -> Response {
        let a = self.browser.attr(entry);
        if a.kind == Kind::Dir {
            if !req.path.ends_with('/') {
                return Response::new(301).with_header("Location", format!("{}/", req.path));
            }
            return match self.browser.list(entry) {
                Ok(list) => html_listing(&req.path, &list, |e| self.shown_attr(e)),
                Err(e) => self.failed(req, &e),
            };
        }
        let file = match self.browser.open(entry) {
            Ok(f) => Arc::new(f),
            Err(e) => return self.failed(req, &e),
        };
        let size = file.size();
        let etag = format!("\"{}\"", file.etag());
        let modified = http_date(a.mtime_ns);
        let mut range = req.header("range").map(|r| parse_range(r, size));
        // A range is served only while the client's copy is still this version.
        if let Some(ir) = req.header("if-range")
            && ir != etag
            && ir != modified
        {
            range = None;
        }
        let (status, start, end) = match range {
            None | Some(Range::Ignore) => (200, 0, size),
            Some(Range::Bytes(s, e)) => (206, s, e),
            Some(Range::Unsatisfiable) => {
                return Response::new(416).with_header("Content-Range", format!("bytes */{size}"));
            }
        };
        let mut resp = Response::new(status)
            .with_header("Content-Type", "application/octet-stream")
            .with_header("Accept-Ranges", "bytes")
            .with_header("ETag", etag)
            .with_header("Last-Modified", modified);
        if status == 206 {
            resp = resp.with_header("Content-Range", format!("bytes {start}-{}/{size}", end - 1));
        }
        let browser = Arc::clone(&self.browser);
        let what = format!("GET {}", req.path);
        resp.body = Body::Stream {
            len: end - start,
            write: Box::new(move |w: &mut dyn Write| stream(&browser, &file, start, end, w, &what)),
        };
        resp
    }
}

/// Write bytes `start..end` of `file`, a piece at a time (reads ahead within the range only).
pub(crate) fn stream(
    browser: &Browser,
    file: &OpenFile,
    start: u64,
    end: u64,
    w: &mut dyn Write,
    what: &str,
) -> std::io::Result<()> {
    file.limit_read_ahead(end);
    let mut pos = start;
    while pos < end {
        let n = PIECE.min((end - pos) as usize);
        let data = browser
            .read(file, pos, n)
            .map_err(|e| std::io::Error::other(format!("{what}: {e}")))?;
        if data.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        w.write_all(&data)?;
        pos += data.len() as u64;
    }
    Ok(())
}

impl Handler for Dav {
    fn handle(&self, req: &Request) -> Response {
        let Some(rest) = self.after_token(&req.path) else {
            return Response::new(404);
        };
        if rest.is_empty() || rest == "/" {
            return match req.method.as_str() {
                "GET" | "HEAD" => base_page(&self.token),
                "OPTIONS" => options(),
                _ => read_only(),
            };
        }
        match rest.strip_prefix("/dav") {
            Some(tail) if tail.is_empty() || tail.starts_with('/') => {
                if tail.is_empty() && req.method != "OPTIONS" {
                    return Response::new(301).with_header("Location", format!("{}/", req.path));
                }
                self.dav(req, tail)
            }
            _ => Response::new(404),
        }
    }
}

/// The part of `path` after `/<token>`, if it starts with `token` (compared in constant time,
/// so response timing does not reveal it). Shared with the console.
pub(crate) fn after_token<'a>(token: &str, path: &'a str) -> Option<&'a str> {
    let rest = path.strip_prefix('/')?;
    let (tok, rest) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    same_secret(tok.as_bytes(), token.as_bytes()).then_some(rest)
}

/// Equal in constant time (URL tokens, CSRF tokens).
pub(crate) fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a token can sit in a URL path unescaped and is long enough not to be guessed.
pub fn valid_token(t: &str) -> bool {
    t.len() >= 16
        && t.len() <= 128
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn options() -> Response {
    Response::new(200)
        // Class 2 because Windows' WebClient will not map a drive without it; see fake_lock.
        .with_header("DAV", "1, 2")
        .with_header("Allow", ALLOW)
        .with_header("MS-Author-Via", "DAV")
        .with_header("Accept-Ranges", "bytes")
}

/// Windows and Office lock a file before opening it: grant a lock that guards nothing, since
/// nothing here can be written (every write is refused anyway).
fn fake_lock(req: &Request) -> Response {
    let token = format!(
        "opaquelocktoken:sitevault-{}",
        hex::encode(&blake3::hash(req.path.as_bytes()).as_bytes()[..8])
    );
    let xml = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><D:prop xmlns:D="DAV:"><D:lockdiscovery><D:activelock><D:locktype><D:write/></D:locktype><D:lockscope><D:exclusive/></D:lockscope><D:depth>0</D:depth><D:timeout>Second-3600</D:timeout><D:locktoken><D:href>{token}</D:href></D:locktoken></D:activelock></D:lockdiscovery></D:prop>"#
    );
    Response::new(200)
        .with_header("Lock-Token", format!("<{token}>"))
        .with_header("Content-Type", "application/xml; charset=utf-8")
        .with_bytes(xml.into_bytes())
}

fn read_only() -> Response {
    Response::new(405)
        .with_header("Allow", ALLOW)
        .with_header("Content-Type", "text/plain; charset=utf-8")
        .with_bytes(b"read-only: recovery points cannot be changed\n".to_vec())
}

fn base_page(token: &str) -> Response {
    let html = format!(
        "<!doctype html><meta charset=utf-8><title>sitevault</title>\
         <p>Recovery points over WebDAV: <a href=\"/{token}/dav/\">dav/</a></p>"
    );
    Response::new(200)
        .with_header("Content-Type", "text/html; charset=utf-8")
        .with_bytes(html.into_bytes())
}

/// The request path as the href of itself, with a trailing `/` for a folder.
fn collection_href(path: &str, a: &Attr) -> String {
    let mut p = path.to_string();
    if a.kind == Kind::Dir && !p.ends_with('/') {
        p.push('/');
    }
    p
}

fn last_name(path: &str) -> String {
    let seg = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    decode(seg).map_or_else(String::new, |b| String::from_utf8_lossy(&b).into_owned())
}

fn prop_response(xml: &mut String, href: &str, name: &str, a: &Attr) {
    xml.push_str("<D:response><D:href>");
    xml.push_str(&escape(href));
    xml.push_str("</D:href><D:propstat><D:prop><D:displayname>");
    xml.push_str(&escape(name));
    xml.push_str("</D:displayname>");
    if a.kind == Kind::Dir {
        xml.push_str("<D:resourcetype><D:collection/></D:resourcetype>");
    } else {
        let _ = write!(
            xml,
            "<D:resourcetype/><D:getcontentlength>{}</D:getcontentlength>\
             <D:getcontenttype>application/octet-stream</D:getcontenttype>",
            a.size
        );
    }
    let _ = write!(
        xml,
        "<D:getlastmodified>{}</D:getlastmodified><D:creationdate>{}</D:creationdate>",
        http_date(a.mtime_ns),
        rfc3339(a.mtime_ns)
    );
    if let Some(w) = a.win_attrs {
        let _ = write!(
            xml,
            "<Z:Win32FileAttributes>{w:08X}</Z:Win32FileAttributes>"
        );
    }
    xml.push_str(
        "<D:supportedlock/></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>",
    );
}

fn html_listing(path: &str, list: &[(Vec<u8>, Entry)], attr: impl Fn(&Entry) -> Attr) -> Response {
    let mut h = String::from("<!doctype html><meta charset=utf-8><title>");
    h.push_str(&escape(&last_name(path)));
    h.push_str("</title><pre><a href=\"../\">../</a>\n");
    for (name, e) in list {
        let a = attr(e);
        let slash = if a.kind == Kind::Dir { "/" } else { "" };
        let _ = writeln!(
            h,
            "<a href=\"{}{slash}\">{}{slash}</a>  {}  {}",
            escape(&encode(name)),
            escape(&String::from_utf8_lossy(name)),
            rfc3339(a.mtime_ns),
            if a.kind == Kind::Dir {
                String::new()
            } else {
                a.size.to_string()
            }
        );
    }
    h.push_str("</pre>");
    Response::new(200)
        .with_header("Content-Type", "text/html; charset=utf-8")
        .with_bytes(h.into_bytes())
}

enum Range {
    /// Not a form served (several ranges, other units): the whole file goes out.
    Ignore,
    Bytes(u64, u64),
    Unsatisfiable,
}

/// One `bytes=a-b`, `a-` or `-n` range as `start..end`.
fn parse_range(h: &str, size: u64) -> Range {
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Range::Ignore;
    };
    if spec.contains(',') {
        return Range::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Range::Ignore;
    };
    let (a, b) = (a.trim(), b.trim());
    let r = if a.is_empty() {
        match b.parse::<u64>() {
            Ok(0) => return Range::Unsatisfiable,
            Ok(n) => (size.saturating_sub(n), size),
            Err(_) => return Range::Ignore,
        }
    } else {
        let Ok(s) = a.parse::<u64>() else {
            return Range::Ignore;
        };
        let e = if b.is_empty() {
            size
        } else {
            match b.parse::<u64>() {
                Ok(e) if e >= s => e.saturating_add(1).min(size),
                _ => return Range::Ignore,
            }
        };
        (s, e)
    };
    if r.0 >= size {
        Range::Unsatisfiable
    } else {
        Range::Bytes(r.0, r.1)
    }
}

/// Path segments after `/dav`, percent-decoded; `None` for `.`/`..` or bad escapes.
fn decode_path(rest: &str) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for seg in rest.split('/').filter(|s| !s.is_empty()) {
        let b = decode(seg)?;
        if b == b"." || b == b".." || b.contains(&b'/') || b.contains(&0) {
            return None;
        }
        out.push(b);
    }
    Some(out)
}

pub(crate) fn decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Percent-encode a name's bytes for a URL path segment (names need not be UTF-8).
pub(crate) fn encode(name: &[u8]) -> String {
    let mut s = String::with_capacity(name.len());
    for &b in name {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            s.push(b as char);
        } else {
            let _ = write!(s, "%{b:02X}");
        }
    }
    s
}

/// Escape for XML and HTML text. Control characters XML 1.0 cannot carry at all (a legal Unix
/// file name may hold them) become U+FFFD, so one odd name does not break a whole listing.
pub(crate) fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => '\u{fffd}',
            c => c,
        })
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(crate) fn timestamp(ns: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_nanosecond(ns as i128).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// RFC 1123 (`Thu, 03 Dec 2026 10:19:51 GMT`), as HTTP and WebDAV want it.
fn http_date(ns: i64) -> String {
    timestamp(ns)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

fn rfc3339(ns: i64) -> String {
    timestamp(ns).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |h: &str| match parse_range(h, 100) {
            Range::Bytes(a, b) => format!("{a}..{b}"),
            Range::Ignore => "ignore".into(),
            Range::Unsatisfiable => "416".into(),
        };
        assert_eq!(r("bytes=0-9"), "0..10");
        assert_eq!(r("bytes=90-"), "90..100");
        assert_eq!(r("bytes=-10"), "90..100");
        assert_eq!(r("bytes=-1000"), "0..100");
        assert_eq!(r("bytes=50-1000"), "50..100");
        assert_eq!(r("bytes=100-"), "416");
        assert_eq!(r("bytes=-0"), "416");
        assert_eq!(r("bytes=5-1"), "ignore");
        assert_eq!(r("bytes=10-18446744073709551615"), "10..100");
        assert_eq!(r("bytes=0-1,5-6"), "ignore");
        assert_eq!(r("items=0-1"), "ignore");
    }

    #[test]
    fn names_round_trip_through_urls() {
        for name in [
            &b"a b"[..],
            b"caf\xc3\xa9",
            b"\xff\xfe",
            b"100%",
            b"x?y#z",
            b"E",
        ] {
            assert_eq!(decode(&encode(name)).unwrap(), name);
        }
        assert_eq!(decode_path("/a/%2e%2e/b"), None);
        assert!(decode_path("/a/..").is_none());
        assert_eq!(decode_path("/a%2Fb"), None);
        assert_eq!(decode_path("/x/%zz"), None);
        assert_eq!(
            decode_path("//ids//ab%20c/"),
            Some(vec![b"ids".to_vec(), b"ab c".to_vec()])
        );
    }

    #[test]
    fn control_characters_cannot_break_the_xml() {
        assert_eq!(escape("a\u{1b}b<&>\""), "a\u{fffd}b&lt;&amp;&gt;&quot;");
    }

    #[test]
    fn tokens() {
        assert!(valid_token("0123456789abcdefABCDEF-_"));
        assert!(!valid_token("short"));
        assert!(!valid_token("0123456789abcdef/x"));
        assert!(!valid_token("0123456789abcdef%2F"));
    }

    #[test]
    fn dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(rfc3339(1_000_000_000), "1970-01-01T00:00:01Z");
    }
}
