//! A minimal W3C WebDriver client for Debian's headless Chromium through `chromedriver`, for
//! browser tests in other modules. Plain HTTP/1.1 over `TcpStream`, so it needs no new crates.
//! Tests skip when Chromium is missing unless `SITEVAULT_TEST_REQUIRE_CHROMIUM` is set.

#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// The W3C web element identifier (the spec's key; note the `a52e-4f73...` spelling).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One request to chromedriver: (status, JSON body). `Err` only if it cannot be reached.
fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    // Generous: creating a session starts Chromium, which is slow on a loaded CI machine.
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    // chromedriver echoes `Connection: close` yet keeps the socket open: stop once complete.
    let (mut raw, mut buf) = (Vec::new(), [0u8; 16 * 1024]);
    let (status, body) = loop {
        if let Some(r) = parse_response(&raw, false) {
            break r;
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            let r = parse_response(&raw, true);
            break r.unwrap_or_else(|| panic!("truncated HTTP response: {:?}", raw.escape_ascii()));
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "chromedriver {method} {path}: bad JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        })
    };
    Ok((status, json))
}

/// Status and body once `raw` holds a whole response (chunked, by Content-Length, or at `eof`).
fn parse_response(raw: &[u8], eof: bool) -> Option<(u16, Vec<u8>)> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let h = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = text(&raw[..h]);
    let body = &raw[h + 4..];
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok());
    let status = status.unwrap_or_else(|| panic!("bad HTTP status line in {head:?}"));
    let header = |name: &str| {
        let mut lines = head.lines().skip(1).filter_map(|l| l.split_once(':'));
        lines
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let (mut out, mut rest) = (Vec::new(), body);
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n")?;
            let size = text(&rest[..eol]).split(';').next()?.trim().to_string();
            let size = usize::from_str_radix(&size, 16).ok()?;
            if size == 0 {
                return Some((status, out));
            }
            out.extend_from_slice(rest.get(eol + 2..eol + 2 + size)?);
            rest = rest.get(eol + 4 + size..)?;
        }
    }
    match header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(n) => Some((status, body.get(..n)?.to_vec())),
        None => eof.then(|| (status, body.to_vec())),
    }
}

/// Whether `cond` turns true within `timeout`, trying every 100 ms.
fn poll(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

/// A string result (`""` for anything else).
fn text(v: Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// Headless Chromium under its own chromedriver, with a fresh profile and download folder.
/// Dropping it ends the session (which quits Chromium) and kills chromedriver.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    downloads: PathBuf,
    /// Profile, downloads and the chromedriver log; removed after the processes are gone.
    _dir: tempfile::TempDir,
}

/// One element of the current page, as a WebDriver reference.
#[derive(Clone)]
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    /// Start chromedriver and a session, or `None` (after a SKIPPED line) when Chromium or
    /// chromedriver is missing. With `SITEVAULT_TEST_REQUIRE_CHROMIUM` set, missing tools panic.
    pub fn start() -> Option<Browser> {
        let chromium =
            std::env::var("SITEVAULT_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let driver = Command::new("chromedriver").arg("--version").output();
        let have_driver = driver.is_ok_and(|o| o.status.success());
        let missing = if !have_driver {
            "chromedriver".to_string()
        } else if !Path::new(&chromium).is_file() {
            format!("Chromium ({chromium})")
        } else {
            return Some(Self::launch(&chromium));
        };
        assert!(
            std::env::var_os("SITEVAULT_TEST_REQUIRE_CHROMIUM").is_none(),
            "browser tests require Chromium here but {missing} is missing"
        );
        eprintln!(
            "SKIPPED: {missing} is not installed (bash .ci/run installs chromium and chromium-driver)"
        );
        None
    }

    fn launch(chromium: &str) -> Browser {
        let dir = tempfile::tempdir().expect("temp dir for the browser");
        let downloads = dir.path().join("downloads");
        let profile = dir.path().join("profile");
        fs::create_dir_all(&downloads).unwrap();
        let log_path = dir.path().join("chromedriver.log");
        let log = fs::File::create(&log_path).unwrap();
        // A free port: bind to 0 and let it go (a race with other processes is very unlikely).
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let port = port.port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn chromedriver");
        let mut b = Browser {
            driver,
            port,
            session: String::new(),
            downloads,
            _dir: dir,
        };
        let log_text = || fs::read_to_string(&log_path).unwrap_or_default();
        let ready = poll(
            Duration::from_secs(20),
            || matches!(http(port, "GET", "/status", None), Ok((200, v)) if v["value"]["ready"] == true),
        );
        let log = log_text();
        assert!(
            ready,
            "chromedriver on port {port} not ready within 20 s; its log:\n{log}"
        );
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900", format!("--user-data-dir={}", profile.display())],
            "prefs": {
                "download.default_directory": b.downloads.to_str().expect("UTF-8 temp path"),
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
                "safebrowsing.enabled": false,
            },
        }}}});
        let v = match http(port, "POST", "/session", Some(&caps)) {
            Ok((200, v)) => v,
            other => panic!(
                "WebDriver new session failed: {other:?}; chromedriver log:\n{}",
                log_text()
            ),
        };
        b.session = text(v["value"]["sessionId"].clone());
        assert!(!b.session.is_empty(), "no sessionId in {v}");
        b
    }

    /// A command on this session (`path` is relative to `/session/{id}`): its `value`, or the
    /// WebDriver error object. Transport failures panic.
    fn try_cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let full = format!("/session/{}{path}", self.session);
        let (status, v) = http(self.port, method, &full, body.as_ref())
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if status == 200 && value.get("error").is_none() {
            Ok(value)
        } else {
            Err(v)
        }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_cmd(method, path, body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path} failed: {e}"))
    }

    fn get(&self, path: &str) -> Value {
        self.cmd("GET", path, None)
    }

    fn post(&self, path: &str, body: Value) -> Value {
        self.cmd("POST", path, Some(body))
    }

    fn element(&self, v: &Value) -> Element<'_> {
        let id = v[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("not an element: {v}"));
        Element {
            browser: self,
            id: id.to_string(),
        }
    }

    fn elements(&self, v: &Value) -> Vec<Element<'_>> {
        v.as_array()
            .expect("element list")
            .iter()
            .map(|e| self.element(e))
            .collect()
    }

    fn by_css(css: &str) -> Value {
        json!({"using": "css selector", "value": css})
    }

    pub fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url }));
    }

    pub fn url(&self) -> String {
        text(self.get("/url"))
    }

    pub fn title(&self) -> String {
        text(self.get("/title"))
    }

    /// The first element matching `css`; panics (with the WebDriver error) if there is none.
    pub fn find(&self, css: &str) -> Element<'_> {
        let v = self.post("/element", Self::by_css(css));
        self.element(&v)
    }

    pub fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let v = self.post("/elements", Self::by_css(css));
        self.elements(&v)
    }

    /// The first match, or `None` only for "no such element" (other errors still panic).
    pub fn try_find(&self, css: &str) -> Option<Element<'_>> {
        match self.try_cmd("POST", "/element", Some(Self::by_css(css))) {
            Ok(v) => Some(self.element(&v)),
            Err(e) if e["value"]["error"] == "no such element" => None,
            Err(e) => panic!("WebDriver find {css:?} failed: {e}"),
        }
    }

    /// Poll every 100 ms until `css` matches (pages built by scripts appear late).
    pub fn wait_for(&self, css: &str, timeout: Duration) -> Element<'_> {
        let mut found = None;
        let what = format!("an element matching {css:?} on {}", self.url());
        self.wait_until(timeout, &what, || {
            found = self.try_find(css);
            found.is_some()
        });
        found.unwrap()
    }

    /// Poll `cond` every 100 ms; panic naming `what` if it stays false past `timeout`.
    pub fn wait_until(&self, timeout: Duration, what: &str, cond: impl FnMut() -> bool) {
        assert!(
            poll(timeout, cond),
            "timed out after {timeout:?} waiting for {what}"
        );
    }

    /// Run a synchronous script (`return ...;` gives the result); pass elements via `Element::arg`.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
    }

    pub fn screenshot_png(&self) -> Vec<u8> {
        let b64 = self.get("/screenshot");
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("screenshot is base64 text"))
            .expect("screenshot decodes")
    }

    pub fn page_source(&self) -> String {
        text(self.get("/source"))
    }

    /// Where Chromium saves downloads, without asking.
    pub fn download_dir(&self) -> &Path {
        &self.downloads
    }

    /// Wait until `name` is in the download folder and no `.crdownload` remains: Chromium
    /// writes into a `.crdownload` file first, so the final name alone may not mean "done".
    pub fn wait_for_download(&self, name: &str, timeout: Duration) -> PathBuf {
        let path = self.downloads.join(name);
        self.wait_until(
            timeout,
            &format!("download {name} in {}", self.downloads.display()),
            || {
                let partial = fs::read_dir(&self.downloads).unwrap().any(|e| {
                    e.unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".crdownload")
                });
                path.is_file() && !partial
            },
        );
        path
    }

    pub fn back(&self) {
        self.post("/back", json!({}));
    }

    pub fn refresh(&self) {
        self.post("/refresh", json!({}));
    }
}

impl Drop for Browser {
    /// Ending the session quits Chromium; chromedriver itself must be killed. Never panics.
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = http(self.port, "DELETE", &path, None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Element<'_> {
    fn get(&self, what: &str) -> Value {
        self.browser.get(&format!("/element/{}/{what}", self.id))
    }

    fn post(&self, what: &str, body: Value) -> Value {
        self.browser
            .post(&format!("/element/{}/{what}", self.id), body)
    }

    /// This element as a script argument for `Browser::execute`.
    pub fn arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    /// The rendered (visible) text.
    pub fn text(&self) -> String {
        text(self.get("text"))
    }

    /// The HTML attribute as written in the markup, `None` if absent.
    pub fn attr(&self, name: &str) -> Option<String> {
        self.get(&format!("attribute/{name}"))
            .as_str()
            .map(str::to_string)
    }

    /// The live DOM property (e.g. an input's current `value`); non-strings as JSON text.
    pub fn prop(&self, name: &str) -> Option<String> {
        match self.get(&format!("property/{name}")) {
            Value::Null => None,
            Value::String(s) => Some(s),
            v => Some(v.to_string()),
        }
    }

    pub fn click(&self) {
        self.post("click", json!({}));
    }

    pub fn send_keys(&self, text: &str) {
        self.post("value", json!({ "text": text }));
    }

    pub fn clear(&self) {
        self.post("clear", json!({}));
    }

    pub fn find(&self, css: &str) -> Element<'_> {
        let v = self.post("element", Browser::by_css(css));
        self.browser.element(&v)
    }

    pub fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let v = self.post("elements", Browser::by_css(css));
        self.browser.elements(&v)
    }

    pub fn is_enabled(&self) -> bool {
        self.get("enabled").as_bool().unwrap_or(false)
    }

    pub fn is_selected(&self) -> bool {
        self.get("selected").as_bool().unwrap_or(false)
    }

    /// The tag name, lower case for HTML.
    pub fn tag(&self) -> String {
        text(self.get("name"))
    }
}

/// Serve `/` (a page with a download link) and `/file.bin` from a thread; returns the base URL.
fn serve(file: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut req = Vec::new();
            let mut b = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&b[..n]),
                }
            }
            let req = String::from_utf8_lossy(&req);
            let path = req.split_whitespace().nth(1).unwrap_or("");
            let page = b"<!doctype html><title>t</title><h1>Hello vault</h1>\
                         <a id=dl download href=/file.bin>get</a>";
            let (status, head, body): (&str, &str, &[u8]) = match path {
                "/" => ("200 OK", "Content-Type: text/html; charset=utf-8", page),
                "/file.bin" => (
                    "200 OK",
                    "Content-Type: application/octet-stream\r\n\
                     Content-Disposition: attachment; filename=\"file.bin\"",
                    &file,
                ),
                _ => ("404 Not Found", "Content-Type: text/plain", b"not found"),
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\n{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).and_then(|_| s.write_all(body));
        }
    });
    base
}

#[test]
fn chromium_renders_a_local_page() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let file = crate::common::random_bytes(6066, 100_000);
    let base = serve(file.clone());
    browser.goto(&format!("{base}/"));
    assert_eq!(browser.find("h1").text(), "Hello vault");
    assert_eq!(browser.title(), "t");
    assert_eq!(browser.find("#dl").attr("download").as_deref(), Some(""));
    let png = browser.screenshot_png();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "screenshot is not a PNG"
    );
    browser.find("#dl").click();
    let got = browser.wait_for_download("file.bin", Duration::from_secs(30));
    assert_eq!(
        fs::read(&got).unwrap(),
        file,
        "downloaded bytes differ from the served ones"
    );
}
