//! A small synchronous HTTP/1.1 server for `sitevault serve`: one thread per connection (bounded),
//! keep-alive, optional TLS (rustls). It knows nothing of vaults: a [`Handler`] answers requests.
//!
//! Connections beyond `max_connections` are not accepted until a slot frees: they wait in
//! the listen backlog. On shutdown, idle connections close within a poll interval and
//! in-flight requests get up to 5 s to finish.

use std::io::{self, BufWriter, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

/// One parsed request. The body is read completely before the handler runs (bounded by
/// [`MAX_BODY`]; larger requests are answered 413 without calling the handler).
#[derive(Debug, Clone)]
pub struct Request {
    /// Upper case as sent: `GET`, `PROPFIND`, ...
    pub method: String,
    /// The request target's path, still percent-encoded, without the query (`/tok/dav/a%20b`).
    pub path: String,
    /// The part after `?`, if any, still percent-encoded.
    pub query: Option<String>,
    /// Header names lower-cased, values trimmed, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The peer's address.
    pub peer: SocketAddr,
}

impl Request {
    /// The first header named `name` (give it lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Largest request body read (PROPFIND bodies are small XML).
pub(crate) const MAX_BODY: usize = 1 << 20;

/// Writes a streamed body: called once with the connection; it must write exactly the length
/// given in [`Body::Stream`]. An error closes the connection.
pub(crate) type StreamFn = Box<dyn FnOnce(&mut dyn Write) -> std::io::Result<()> + Send>;

pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// `len` bytes written by the function (sent with Content-Length, not chunked).
    Stream {
        len: u64,
        write: StreamFn,
    },
}

pub struct Response {
    pub status: u16,
    /// Headers besides Content-Length, Connection and Date, which the server adds.
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }
    pub(crate) fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }
    pub(crate) fn with_bytes(mut self, body: Vec<u8>) -> Response {
        self.body = Body::Bytes(body);
        self
    }
    /// A `text/plain` response.
    pub fn text(status: u16, text: impl Into<String>) -> Response {
        Response::new(status)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_bytes(text.into().into_bytes())
    }
}

pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: &Request) -> Response;
}

/// PEM files for TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

/// Largest request head (request line and headers); larger gets 431.
const MAX_HEAD: usize = 64 * 1024;
/// A connection with no bytes arriving for this long is closed.
const IDLE: Duration = Duration::from_secs(60);
/// Socket reads wake this often so idle connections notice a shutdown.
const POLL: Duration = Duration::from_millis(200);
/// How long `run` waits for in-flight requests after a shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// State shared by the accept loop, connection threads and [`Shutdown`] handles.
struct Shared {
    stop: AtomicBool,
    /// Connections being served; guarded so the accept loop can wait for a free slot.
    active: Mutex<usize>,
    changed: Condvar,
}

impl Shared {
    fn active(&self) -> MutexGuard<'_, usize> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// Frees a connection slot when the connection thread ends (even by panic).
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        *self.0.active() -= 1;
        self.0.changed.notify_all();
    }
}

/// A bound listener, not yet serving.
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    tls: Option<Arc<ServerConfig>>,
    handler: Arc<dyn Handler>,
    max: usize,
    shared: Arc<Shared>,
}

/// Stops a running [`Server::run`] from another thread (a signal handler).
#[derive(Clone)]
pub struct Shutdown {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl Server {
    /// Bind `opts.listen` (port 0 picks a free port) and load the TLS files if given.
    pub fn bind(opts: &ServerOptions, handler: Arc<dyn Handler>) -> Result<Server> {
        let tls = match &opts.tls {
            Some(files) => Some(Arc::new(load_tls(files)?)),
            None => None,
        };
        let listen = opts.listen;
        let bind_error = |e: io::Error| {
            let why = match e.kind() {
                io::ErrorKind::AddrInUse => {
                    "address already in use; give another --listen port".into()
                }
                io::ErrorKind::PermissionDenied => {
                    "permission denied; give a --listen port above 1023".into()
                }
                io::ErrorKind::AddrNotAvailable => {
                    "no such address on this machine; give one of its addresses in --listen".into()
                }
                _ => format!("{e}; give another --listen address"),
            };
            Error::InvalidInput(format!("cannot listen on {listen}: {why}"))
        };
        let listener = TcpListener::bind(listen).map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        Ok(Server {
            listener,
            addr,
            tls,
            handler,
            max: opts.max_connections.max(1),
            shared: Arc::new(Shared {
                stop: AtomicBool::new(false),
                active: Mutex::new(0),
                changed: Condvar::new(),
            }),
        })
    }
    /// The bound address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
    pub fn shutdown_handle(&self) -> Shutdown {
        Shutdown {
            shared: self.shared.clone(),
            addr: self.addr,
        }
    }
    /// Serve until [`Shutdown::shutdown`] is called; returns once in-flight requests are done.
    pub fn run(self) -> Result<()> {
        let shared = &self.shared;
        let mut count = 0u64;
        loop {
            // Accept only with a free slot: extra clients wait in the listen backlog.
            let mut active = shared.active();
            while *active >= self.max && !shared.stopped() {
                active = shared
                    .changed
                    .wait(active)
                    .unwrap_or_else(|p| p.into_inner());
            }
            drop(active);
            if shared.stopped() {
                break;
            }
            let (sock, peer) = match self.listener.accept() {
                Ok(conn) => conn,
                Err(_) => {
                    // EMFILE, ECONNABORTED, ...: pause so a lasting error does not spin.
                    thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            if shared.stopped() {
                break;
            }
            count += 1;
            *shared.active() += 1;
            let slot = Slot(shared.clone());
            let (tls, handler) = (self.tls.clone(), self.handler.clone());
            // If the spawn fails the closure is dropped: the socket closes, the slot frees.
            let _ = thread::Builder::new()
                .name(format!("sitevault-http-{count}"))
                .spawn(move || {
                    serve_socket(sock, peer, tls, &*handler, &slot.0.stop);
                    drop(slot);
                });
        }
        drop(self.listener);
        let deadline = Instant::now() + DRAIN;
        let mut active = shared.active();
        while *active > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            active = shared
                .changed
                .wait_timeout(active, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        Ok(())
    }
}

impl Shutdown {
    pub fn shutdown(&self) {
        {
            // Under the lock, so the accept loop cannot miss the wake-up between check and wait.
            let _active = self.shared.active();
            self.shared.stop.store(true, Ordering::SeqCst);
            self.shared.changed.notify_all();
        }
        // Wake a blocking `accept` with a throwaway connection.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
    }
}

fn load_tls(files: &TlsFiles) -> Result<ServerConfig> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|items| items.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(&files.cert, "certificate", e))?;
    if certs.is_empty() {
        return Err(pem_error(
            &files.cert,
            "certificate",
            pem::Error::NoItemsFound,
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| pem_error(&files.key, "private key", e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InvalidInput(format!("cannot set up TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            Error::InvalidInput(format!(
                "TLS certificate {} cannot be used with key {}: {e}; give the private key that belongs to the certificate",
                files.cert.display(),
                files.key.display()
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn pem_error(path: &Path, what: &str, e: pem::Error) -> Error {
    let why = match e {
        pem::Error::Io(e) => format!("cannot be read: {e}"),
        pem::Error::NoItemsFound => format!("holds no PEM {what}"),
        e => format!("is not valid PEM: {e}"),
    };
    Error::InvalidInput(format!(
        "TLS {what} file {} {why}; give a PEM file with the {what}",
        path.display()
    ))
}

/// A request that cannot be served: just close, or answer with a status and close.
enum Fail {
    Close,
    Status(u16),
}

impl From<io::Error> for Fail {
    fn from(_: io::Error) -> Fail {
        Fail::Close
    }
}

/// One connection: reads go to the stream under the writer, buffered in `buf`.
struct Conn<'a, S: Read + Write> {
    io: BufWriter<S>,
    buf: Vec<u8>,
    stop: &'a AtomicBool,
}

fn serve_socket(
    sock: TcpStream,
    peer: SocketAddr,
    tls: Option<Arc<ServerConfig>>,
    handler: &dyn Handler,
    stop: &AtomicBool,
) {
    let _ = sock.set_nodelay(true);
    let Ok(raw) = sock.try_clone() else { return };
    if sock.set_read_timeout(Some(POLL)).is_err() || sock.set_write_timeout(Some(IDLE)).is_err() {
        return;
    }
    let linger = match tls {
        None => serve(&mut Conn::new(sock, stop), peer, handler),
        Some(config) => {
            let Ok(tls) = ServerConnection::new(config) else {
                return;
            };
            let mut conn = Conn::new(StreamOwned::new(tls, sock), stop);
            let linger = serve(&mut conn, peer, handler);
            let stream = conn.io.get_mut();
            stream.conn.send_close_notify();
            let _ = stream.flush();
            linger
        }
    };
    if linger {
        // After an error response the client may still be sending; closing with unread
        // data would reset the connection and could destroy the response before it is read.
        let _ = raw.shutdown(std::net::Shutdown::Write);
        let (start, mut scratch, mut total) = (Instant::now(), [0u8; 8192], 0);
        while start.elapsed() < Duration::from_secs(2) && total < 4 * MAX_BODY {
            match (&raw).read(&mut scratch) {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) if timed_out(&e) => {}
                Err(_) => break,
            }
        }
    }
}

/// A socket read timeout (`WouldBlock` on Unix, `TimedOut` on Windows).
fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Serves requests until the connection closes; true if it ended with an error response.
fn serve<S: Read + Write>(conn: &mut Conn<S>, peer: SocketAddr, handler: &dyn Handler) -> bool {
    loop {
        let (req, keep, http10) = match read_request(conn, peer) {
            Ok(Some(r)) => r,
            Ok(None) | Err(Fail::Close) => return false,
            Err(Fail::Status(code)) => {
                let resp = Response::text(code, format!("{code} {}\n", reason(code)));
                send(&mut conn.io, resp, false, false, false);
                return true;
            }
        };
        let resp = catch_unwind(AssertUnwindSafe(|| handler.handle(&req)))
            .unwrap_or_else(|_| Response::text(500, "500 Internal Server Error\n"));
        let keep = keep && !conn.stop.load(Ordering::SeqCst);
        if !send(&mut conn.io, resp, req.method == "HEAD", keep, http10) {
            return false;
        }
    }
}

impl<'a, S: Read + Write> Conn<'a, S> {
    fn new(stream: S, stop: &'a AtomicBool) -> Self {
        let io = BufWriter::with_capacity(256 * 1024, stream);
        Conn {
            io,
            buf: Vec::new(),
            stop,
        }
    }

    /// Reads more into `buf`; false at EOF, or between requests once shut down.
    fn fill(&mut self, between_requests: bool) -> io::Result<bool> {
        let since = Instant::now();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.io.get_mut().read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if timed_out(&e) => {
                    if between_requests && self.buf.is_empty() && self.stop.load(Ordering::SeqCst) {
                        return Ok(false);
                    }
                    if since.elapsed() >= IDLE {
                        return Err(e);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn take(&mut self, n: usize) -> Result<Vec<u8>, Fail> {
        while self.buf.len() < n {
            if !self.fill(false)? {
                return Err(Fail::Close);
            }
        }
        let rest = self.buf.split_off(n);
        Ok(std::mem::replace(&mut self.buf, rest))
    }

    /// One line of a chunked body, without its line end.
    fn line(&mut self) -> Result<Vec<u8>, Fail> {
        loop {
            let window = &self.buf[..self.buf.len().min(4096)];
            if let Some(i) = window.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if window.len() >= 4096 {
                return Err(Fail::Status(400));
            }
            if !self.fill(false)? {
                return Err(Fail::Close);
            }
        }
    }
}

/// The request line and headers, owned.
struct Head {
    method: String,
    target: String,
    version: u8,
    headers: Vec<(String, String)>,
}

fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, Fail> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD => Ok(Some((
            Head {
                method: req.method.unwrap_or_default().to_string(),
                target: req.path.unwrap_or_default().to_string(),
                version: req.version.unwrap_or(1),
                headers: (req.headers.iter())
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value).trim().to_string();
                        (h.name.to_ascii_lowercase(), value)
                    })
                    .collect(),
            },
            n,
        ))),
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => Ok(None),
        Ok(_) | Err(httparse::Error::TooManyHeaders) => Err(Fail::Status(431)),
        Err(_) => Err(Fail::Status(400)),
    }
}

/// Reads one request: `None` when the client closed (or shutdown) between requests.
/// Also says whether the connection may stay open and whether it is HTTP/1.0.
fn read_request<S: Read + Write>(
    conn: &mut Conn<S>,
    peer: SocketAddr,
) -> Result<Option<(Request, bool, bool)>, Fail> {
    let (head, len) = loop {
        if let Some(parsed) = parse_head(&conn.buf)? {
            break parsed;
        }
        if !conn.fill(true)? {
            return if conn.buf.is_empty() {
                Ok(None)
            } else {
                Err(Fail::Close)
            };
        }
    };
    conn.buf.drain(..len);
    let (path, query) = split_target(&head.target);
    let mut req = Request {
        method: head.method,
        path,
        query,
        headers: head.headers,
        body: Vec::new(),
        peer,
    };
    let has = |name: &str, token: &str| {
        req.header(name)
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    let keep = match head.version {
        1 => !has("connection", "close"),
        _ => has("connection", "keep-alive"),
    };
    let expect = head.version == 1 && has("expect", "100-continue");
    let lengths: Vec<&str> = (req.headers.iter())
        .filter(|(k, _)| k == "content-length")
        .map(|(_, v)| v.as_str())
        .collect();
    let body_len = match lengths.first() {
        _ if lengths.windows(2).any(|w| w[0] != w[1]) => return Err(Fail::Status(400)),
        Some(v) if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(Fail::Status(400));
        }
        Some(v) => Some(v.parse::<u64>().map_err(|_| Fail::Status(413))?),
        None => None,
    };
    let chunked = match req.header("transfer-encoding") {
        // Both framings at once is a request-smuggling vector: refuse.
        Some(_) if body_len.is_some() => return Err(Fail::Status(400)),
        Some(te) if te.eq_ignore_ascii_case("chunked") => true,
        Some(_) => return Err(Fail::Status(501)),
        None => false,
    };
    if body_len.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(Fail::Status(413));
    }
    let body_len = body_len.unwrap_or(0) as usize;
    if expect && (chunked || body_len > 0) {
        conn.io.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        conn.io.flush()?;
    }
    req.body = if chunked {
        read_chunked(conn)?
    } else {
        conn.take(body_len)?
    };
    Ok(Some((req, keep, head.version == 0)))
}

fn read_chunked<S: Read + Write>(conn: &mut Conn<S>) -> Result<Vec<u8>, Fail> {
    let mut body = Vec::new();
    loop {
        let line = conn.line()?;
        let size = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size)
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or(Fail::Status(400))?;
        if size == 0 {
            // Trailer fields are read and ignored, up to the blank line.
            for _ in 0..128 {
                if conn.line()?.is_empty() {
                    return Ok(body);
                }
            }
            return Err(Fail::Status(431));
        }
        if size > MAX_BODY - body.len() {
            return Err(Fail::Status(413));
        }
        body.extend(conn.take(size)?);
        if !conn.line()?.is_empty() {
            return Err(Fail::Status(400));
        }
    }
}

/// Splits a request target into path and query; absolute-form keeps only the path.
fn split_target(target: &str) -> (String, Option<String>) {
    let mut t = target;
    if !t.starts_with('/')
        && let Some(i) = t.find("://")
    {
        let rest = &t[i + 3..];
        t = rest.find(['/', '?']).map_or("", |j| &rest[j..]);
    }
    let (path, query) = match t.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (t, None),
    };
    (if path.is_empty() { "/" } else { path }.to_string(), query)
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        423 => "Locked",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

/// Counts what a stream body writes and refuses to go past its declared length.
struct Counted<'a> {
    inner: &'a mut dyn Write,
    written: u64,
    len: u64,
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.len {
            return Err(io::Error::other(
                "stream body longer than its declared length",
            ));
        }
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a response; returns whether the connection may serve another request.
fn send<S: Write>(
    w: &mut BufWriter<S>,
    resp: Response,
    head_only: bool,
    keep: bool,
    http10: bool,
) -> bool {
    let status = resp.status;
    let len = match &resp.body {
        Body::Empty => 0,
        Body::Bytes(b) => b.len() as u64,
        Body::Stream { len, .. } => *len,
    };
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in &resp.headers {
        let ours = ["content-length", "connection", "date", "transfer-encoding"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n));
        // Skip what the server sets itself, and anything that would break the framing.
        if !ours && !name.contains(['\r', '\n', ':']) && !value.contains(['\r', '\n']) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let printer = jiff::fmt::rfc2822::DateTimePrinter::new();
    if let Ok(date) = printer.timestamp_to_rfc9110_string(&jiff::Timestamp::now()) {
        head.push_str(&format!("Date: {date}\r\n"));
    }
    // RFC 9110 forbids Content-Length on 1xx and 204.
    if status >= 200 && status != 204 {
        head.push_str(&format!("Content-Length: {len}\r\n"));
    }
    match (keep, http10) {
        (false, _) => head.push_str("Connection: close\r\n"),
        (true, true) => head.push_str("Connection: keep-alive\r\n"),
        (true, false) => {}
    }
    head.push_str("\r\n");
    let no_body = head_only || status < 200 || status == 204 || status == 304;
    let result = (|| {
        w.write_all(head.as_bytes())?;
        let mut complete = true;
        match resp.body {
            _ if no_body => {}
            Body::Empty => {}
            Body::Bytes(b) => w.write_all(&b)?,
            Body::Stream { len, write } => {
                let mut out = Counted {
                    inner: w,
                    written: 0,
                    len,
                };
                let ok = catch_unwind(AssertUnwindSafe(|| write(&mut out)));
                complete = matches!(ok, Ok(Ok(()))) && out.written == len;
            }
        }
        w.flush()?;
        Ok::<_, io::Error>(complete)
    })();
    keep && result.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::Command;
    use std::sync::mpsc;

    type Reply = (u16, Vec<(String, String)>, Vec<u8>);
    const STREAM_LEN: usize = 300_000;

    fn stream_bytes() -> Vec<u8> {
        (0..STREAM_LEN).map(|i| (i * 7 % 251) as u8).collect()
    }

    struct Test;

    impl Handler for Test {
        fn handle(&self, req: &Request) -> Response {
            match req.path.as_str() {
                "/panic" => panic!("test handler panics"),
                "/echo" => Response::new(200).with_bytes(req.body.clone()),
                "/stream" => Response {
                    status: 200,
                    headers: Vec::new(),
                    body: Body::Stream {
                        len: STREAM_LEN as u64,
                        write: Box::new(|w| w.write_all(&stream_bytes())),
                    },
                },
                p => Response::text(200, format!("{p} {:?}", req.query)),
            }
        }
    }

    fn options(tls: Option<TlsFiles>) -> ServerOptions {
        let listen = "127.0.0.1:0".parse().unwrap();
        ServerOptions {
            listen,
            tls,
            max_connections: 4,
        }
    }

    /// Starts a server; the receiver gets `run`'s result.
    fn start(tls: Option<TlsFiles>) -> (SocketAddr, Shutdown, mpsc::Receiver<Result<()>>) {
        let server = Server::bind(&options(tls), Arc::new(Test)).unwrap();
        let (addr, stop) = (server.local_addr(), server.shutdown_handle());
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || tx.send(server.run()));
        (addr, stop, rx)
    }

    fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
        let sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        BufReader::new(sock)
    }

    /// Sends `req` (if not empty) and reads one response; `head`: expect no body.
    fn ask(c: &mut BufReader<TcpStream>, req: &str, head: bool) -> Reply {
        c.get_mut().write_all(req.as_bytes()).unwrap();
        let mut line = String::new();
        c.read_line(&mut line).unwrap();
        let status = line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            line.clear();
            c.read_line(&mut line).unwrap();
            let Some((k, v)) = line.trim_end().split_once(": ") else {
                break;
            };
            headers.push((k.to_ascii_lowercase(), v.to_string()));
        }
        let len = header(&headers, "content-length").map_or(0, |v| v.parse().unwrap());
        let mut body = vec![0; if head { 0 } else { len }];
        c.read_exact(&mut body).unwrap();
        (status, headers, body)
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn closed(c: &mut BufReader<TcpStream>) -> bool {
        matches!(c.read(&mut [0; 1]), Ok(0) | Err(_))
    }

    #[test]
    fn keep_alive_serves_two_requests() {
        let mut c = connect(start(None).0);
        let (status, headers, body) = ask(&mut c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", false);
        assert_eq!((status, body.as_slice()), (200, &b"/a None"[..]));
        assert!(header(&headers, "date").is_some_and(|d| d.ends_with(" GMT")));
        let (_, _, body) = ask(&mut c, "GET http://x/b%20c?q=1 HTTP/1.1\r\n\r\n", false);
        assert_eq!(body, b"/b%20c Some(\"q=1\")");
    }

    #[test]
    fn head_has_length_but_no_body() {
        let mut c = connect(start(None).0);
        let (status, headers, _) = ask(&mut c, "HEAD /stream HTTP/1.1\r\n\r\n", true);
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "content-length"), Some("300000"));
        // The next bytes are the next response, so no body was sent.
        assert_eq!(ask(&mut c, "GET /a HTTP/1.1\r\n\r\n", false).2, b"/a None");
    }

    #[test]
    fn chunked_body_is_decoded() {
        let mut c = connect(start(None).0);
        let req = "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                   5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: y\r\n\r\n";
        assert_eq!(ask(&mut c, req, false).2, b"hello world");
    }

    #[test]
    fn oversized_body_gets_413_without_continue() {
        let mut c = connect(start(None).0);
        let len = MAX_BODY + 1;
        let req =
            format!("PUT /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {len}\r\n\r\n");
        let (status, headers, _) = ask(&mut c, &req, false);
        assert_eq!(
            (status, header(&headers, "connection")),
            (413, Some("close"))
        );
        assert!(closed(&mut c));
    }

    #[test]
    fn expect_continue_then_body() {
        let mut c = connect(start(None).0);
        let req = "PUT /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(ask(&mut c, req, false).0, 100);
        assert_eq!(ask(&mut c, "abc", false).2, b"abc");
    }

    #[test]
    fn stream_body_is_identical() {
        let mut c = connect(start(None).0);
        assert!(ask(&mut c, "GET /stream HTTP/1.1\r\n\r\n", false).2 == stream_bytes());
    }

    #[test]
    fn connection_close_closes() {
        let mut c = connect(start(None).0);
        let (status, headers, _) = ask(
            &mut c,
            "GET /a HTTP/1.1\r\nConnection: close\r\n\r\n",
            false,
        );
        assert_eq!(
            (status, header(&headers, "connection")),
            (200, Some("close"))
        );
        assert!(closed(&mut c));
        // HTTP/1.0 closes unless asked not to.
        let mut c = connect(c.get_ref().peer_addr().unwrap());
        ask(&mut c, "GET /a HTTP/1.0\r\n\r\n", false);
        assert!(closed(&mut c));
    }

    #[test]
    fn malformed_request_gets_400() {
        let mut c = connect(start(None).0);
        assert_eq!(ask(&mut c, "GET /a HTTP/9\0\r\n\r\n", false).0, 400);
        assert!(closed(&mut c));
    }

    #[test]
    fn panicking_handler_gives_500() {
        let mut c = connect(start(None).0);
        assert_eq!(ask(&mut c, "GET /panic HTTP/1.1\r\n\r\n", false).0, 500);
        assert_eq!(ask(&mut c, "GET /a HTTP/1.1\r\n\r\n", false).0, 200);
    }

    #[test]
    fn shutdown_is_prompt_with_a_connection_open() {
        let (addr, stop, done) = start(None);
        let mut c = connect(addr);
        assert_eq!(ask(&mut c, "GET /a HTTP/1.1\r\n\r\n", false).0, 200);
        let t = Instant::now();
        stop.shutdown();
        done.recv_timeout(Duration::from_secs(3)).unwrap().unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "took {:?}",
            t.elapsed()
        );
        assert!(closed(&mut c));
    }

    #[test]
    fn missing_cert_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("nope-cert.pem");
        let tls = TlsFiles {
            cert: cert.clone(),
            key: dir.path().join("key.pem"),
        };
        let err = Server::bind(&options(Some(tls)), Arc::new(Test))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains(&cert.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn tls_serves_curl() {
        let dir = tempfile::tempdir().unwrap();
        let keygen = |key: &str, cert: &str| {
            Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                ])
                .args([
                    "-nodes",
                    "-subj",
                    "/CN=localhost",
                    "-days",
                    "2",
                    "-keyout",
                    key,
                    "-out",
                    cert,
                ])
                .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
                .current_dir(dir.path())
                .output()
        };
        match keygen("key.pem", "cert.pem") {
            Ok(out) => assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(_) => return println!("openssl not installed: skipping the TLS test"),
        }
        let tls = TlsFiles {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        let port = start(Some(tls.clone())).0.port();
        let out = Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "10", "--cacert"])
            .arg(&tls.cert)
            .arg(format!("https://127.0.0.1:{port}/x?y"))
            .arg(format!("https://127.0.0.1:{port}/stream"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut want = b"/x Some(\"y\")".to_vec();
        want.extend(stream_bytes());
        assert!(out.stdout == want, "curl got {} bytes", out.stdout.len());

        // A key that does not belong to the certificate is refused, naming it.
        assert!(
            keygen("other-key.pem", "other-cert.pem")
                .unwrap()
                .status
                .success()
        );
        let tls = TlsFiles {
            key: dir.path().join("other-key.pem"),
            ..tls
        };
        let err = Server::bind(&options(Some(tls)), Arc::new(Test))
            .err()
            .unwrap();
        assert!(err.to_string().contains("other-key.pem"), "{err}");
    }
}
