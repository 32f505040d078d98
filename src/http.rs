//! A small synchronous HTTP/1.1 server for `sitevault serve`: one thread per connection (bounded),
//! keep-alive, optional TLS (rustls). It knows nothing of vaults: a [`Handler`] answers requests.
//!
//! INTERFACE STUB: the implementation is being written; the types and signatures are fixed.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::Result;

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
pub const MAX_BODY: usize = 1 << 20;

/// Writes a streamed body: called once with the connection; it must write exactly the length
/// given in [`Body::Stream`]. An error closes the connection.
pub type StreamFn = Box<dyn FnOnce(&mut dyn Write) -> std::io::Result<()> + Send>;

pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// `len` bytes written by the function (sent with Content-Length, not chunked).
    Stream { len: u64, write: StreamFn },
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
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }
    pub fn with_bytes(mut self, body: Vec<u8>) -> Response {
        self.body = Body::Bytes(body);
        self
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

/// A bound listener, not yet serving.
pub struct Server {
    _private: (),
}

/// Stops a running [`Server::run`] from another thread (a signal handler).
#[derive(Clone)]
pub struct Shutdown {
    _private: (),
}

impl Server {
    /// Bind `opts.listen` (port 0 picks a free port) and load the TLS files if given.
    pub fn bind(_opts: &ServerOptions, _handler: Arc<dyn Handler>) -> Result<Server> {
        todo!("http server")
    }
    /// The bound address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        todo!("http server")
    }
    pub fn is_tls(&self) -> bool {
        todo!("http server")
    }
    pub fn shutdown_handle(&self) -> Shutdown {
        todo!("http server")
    }
    /// Serve until [`Shutdown::shutdown`] is called; returns once in-flight requests are done.
    pub fn run(self) -> Result<()> {
        todo!("http server")
    }
}

impl Shutdown {
    pub fn shutdown(&self) {
        todo!("http server")
    }
}
