//! The recovery console: web pages on `sitevault serve` beside WebDAV — a calendar of recovery
//! points, browsing by original path, downloads, a file's history, comparing two recovery
//! points, search, a vault page, and (only with `--allow-restore`) restores with a preview
//! and live progress. Everything is under the URL token; pages are server-rendered, and the
//! stylesheet and script are embedded, so it works offline.
//!
//! State-changing requests are POSTs that carry a per-session CSRF token: the session is a
//! random cookie (HttpOnly, SameSite=Strict), the token a keyed hash of it.

pub mod calendar;
mod html;
mod jobs;
mod pages;

use std::sync::{Arc, Mutex};

use jiff::tz::TimeZone;

use crate::browse::http::{Handler, Request, Response};
use crate::browse::webdav::Dav;
use crate::browse::{Browser, ErrorSink, SnapInfo};
use html::{Fields, error_page, secure};

const CSS: &str = include_str!("console.css");
const JS: &str = include_str!("console.js");
const COOKIE: &str = "sitevault_session";

#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// Restores from the page (`serve --allow-restore`); off, the form is shown disabled.
    pub allow_restore: bool,
    /// The zone days and times are shown in.
    pub time_zone: TimeZone,
    /// Mark the session cookie `Secure` (serving over TLS).
    pub secure_cookie: bool,
}

/// The result of the last check run from the vault page.
#[derive(Debug, Clone)]
pub(crate) struct LastCheck {
    pub time: jiff::Timestamp,
    pub running: bool,
    pub clean: Option<bool>,
    pub summary: String,
    pub errors: Vec<String>,
}

pub struct Console {
    browser: Arc<Browser>,
    dav: Dav,
    token: String,
    /// `/<token>/`: every link starts with it.
    base: String,
    secret: [u8; 32],
    opts: ConsoleOptions,
    jobs: jobs::Jobs,
    last_check: Arc<Mutex<Option<LastCheck>>>,
}

impl Console {
    pub fn new(
        browser: Arc<Browser>,
        token: String,
        opts: ConsoleOptions,
        on_error: ErrorSink,
    ) -> crate::error::Result<Console> {
        Ok(Console {
            dav: Dav::new(Arc::clone(&browser), token.clone(), on_error),
            browser,
            base: format!("/{token}/"),
            token,
            secret: crate::format::crypto::random_array::<32>()?,
            opts,
            jobs: jobs::Jobs::default(),
            last_check: Arc::new(Mutex::new(None)),
        })
    }

    fn csrf_for(&self, session: &str) -> String {
        blake3::keyed_hash(&self.secret, session.as_bytes())
            .to_hex()
            .to_string()
    }

    /// The session named by the request's cookie, if it is one of ours (any 32-hex value).
    fn session(req: &Request) -> Option<String> {
        req.header("cookie")?.split(';').find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == COOKIE && v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| v.to_string())
        })
    }

    /// A page for a GET: its session (made now if the request has none), and its CSRF token.
    fn get_page(&self, req: &Request, f: &Fields, route: &str) -> Response {
        let (session, fresh) = match Self::session(req) {
            Some(s) => (s, false),
            None => match crate::format::crypto::random_array::<16>() {
                Ok(b) => (hex::encode(b), true),
                Err(e) => return error_page(&self.base, 500, &e.to_string()),
            },
        };
        let csrf = self.csrf_for(&session);
        let ctx = pages::Ctx {
            c: self,
            csrf: &csrf,
        };
        let r = match route {
            "" => ctx.calendar(f),
            "browse" => ctx.browse(f),
            "history" => ctx.history(f),
            "diff" => ctx.diff(f),
            "search" => ctx.search(f),
            "vault" => ctx.vault(),
            _ => match route.strip_prefix("jobs/") {
                Some(n) if n.ends_with(".json") => ctx.job_json(n.trim_end_matches(".json")),
                Some(n) => ctx.job(n),
                None => error_page(&self.base, 404, "no such page"),
            },
        };
        if fresh {
            let secure = if self.opts.secure_cookie {
                "; Secure"
            } else {
                ""
            };
            r.with_header(
                "Set-Cookie",
                format!(
                    "{COOKIE}={session}; Path={}; HttpOnly; SameSite=Strict{secure}",
                    self.base
                ),
            )
        } else {
            r
        }
    }

    /// A POST must come from one of our pages: same origin, our cookie, its CSRF token.
    fn checked_post(&self, req: &Request) -> Result<Fields, Response> {
        let refuse = |why: &str| Err(error_page(&self.base, 403, why));
        if let (Some(origin), Some(host)) = (req.header("origin"), req.header("host")) {
            let ok = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .is_some_and(|o| o.eq_ignore_ascii_case(host));
            if !ok {
                return refuse("this request came from another site and was refused");
            }
        }
        let form = req
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        if !form {
            return refuse("send the console's form (application/x-www-form-urlencoded)");
        }
        let f = Fields::parse(&String::from_utf8_lossy(&req.body));
        let Some(session) = Self::session(req) else {
            return refuse("no session: reload the page and try again");
        };
        let want = self.csrf_for(&session);
        match f.text("csrf") {
            Some(t) if crate::browse::webdav::same_secret(t.as_bytes(), want.as_bytes()) => Ok(f),
            _ => refuse(
                "the form is out of date or came from elsewhere: reload the page and try again",
            ),
        }
    }

    /// A recovery point by `id` (a unique hex prefix), else by `at` (what `restore --at`
    /// picks), else the newest.
    fn pick(&self, f: &Fields) -> Result<Arc<SnapInfo>, Response> {
        let snaps = self.browser.snapshots();
        let missing = |what: String| error_page(&self.base, 404, &what);
        if let Some(id) = f.text("id") {
            let want = id.to_ascii_lowercase();
            let hits: Vec<&Arc<SnapInfo>> = snaps
                .iter()
                .filter(|s| want.len() >= 4 && s.id.to_hex().starts_with(&want))
                .collect();
            return match hits.as_slice() {
                [one] => Ok(Arc::clone(one)),
                [] => Err(missing(format!("no recovery point has the id {id}"))),
                _ => Err(error_page(
                    &self.base,
                    400,
                    &format!("the id {id} fits several recovery points: give more digits"),
                )),
            };
        }
        if let Some(at) = f.text("at") {
            let t = crate::format::snapshot::parse_time(at, &self.opts.time_zone)
                .map_err(|e| error_page(&self.base, 400, &e))?;
            return snaps
                .iter()
                .rev()
                .find(|s| s.snapshot.time <= t)
                .cloned()
                .ok_or_else(|| missing(format!("no recovery point was taken at or before {at}")));
        }
        snaps
            .last()
            .cloned()
            .ok_or_else(|| missing("the vault holds no recovery points yet".into()))
    }
}

/// The console's own routes (anything else under the token is 404, whatever the method).
fn known(route: &str) -> bool {
    matches!(
        route,
        "" | "browse"
            | "download"
            | "history"
            | "diff"
            | "search"
            | "vault"
            | "restore"
            | "check"
            | "assets/console.css"
            | "assets/console.js"
    ) || route.starts_with("jobs/")
}

fn asset(kind: &str, body: &str) -> Response {
    secure(
        Response::new(200)
            .with_header("Content-Type", kind)
            .with_bytes(body.as_bytes().to_vec()),
    )
}

impl Handler for Console {
    fn handle(&self, req: &Request) -> Response {
        let Some(rest) = crate::browse::webdav::after_token(&self.token, &req.path) else {
            return Response::new(404);
        };
        if rest == "/dav" || rest.starts_with("/dav/") {
            return self.dav.handle(req);
        }
        if rest.is_empty() {
            return Response::new(301).with_header("Location", self.base.clone());
        }
        let route = rest.trim_start_matches('/');
        let f = Fields::parse(req.query.as_deref().unwrap_or(""));
        match (req.method.as_str(), route) {
            ("GET" | "HEAD", "assets/console.css") => asset("text/css; charset=utf-8", CSS),
            ("GET" | "HEAD", "assets/console.js") => asset("text/javascript; charset=utf-8", JS),
            ("GET" | "HEAD", "download") => pages::download(self, &f),
            ("GET" | "HEAD", r) => self.get_page(req, &f, r),
            ("POST", "restore") => match self.checked_post(req) {
                Ok(form) => pages::restore_post(self, &form),
                Err(r) => r,
            },
            ("POST", "check") => match self.checked_post(req) {
                Ok(_) => pages::check_post(self),
                Err(r) => r,
            },
            (_, r) if !known(r) => error_page(&self.base, 404, "no such page"),
            ("OPTIONS", _) => Response::new(204).with_header("Allow", "GET, HEAD, POST"),
            _ => secure(
                Response::new(405)
                    .with_header("Allow", "GET, HEAD, POST")
                    .with_header("Content-Type", "text/plain; charset=utf-8")
                    .with_bytes(b"not a request the console answers\n".to_vec()),
            ),
        }
    }
}
