//! `mount` and `serve`: browse recovery points as folders, until Ctrl-C or SIGTERM.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use sitevault::browse::{BrowseOptions, Browser};

use super::args::{BrowseArgs, MountArgs, ServeArgs};
use super::context::*;
use super::exit::EXIT_OK;
use super::output::outln;

/// Open the vault, take the shared lock, and read the snapshot list and index.
fn browser(
    a: &BrowseArgs,
    command: &str,
) -> Result<(Arc<Browser>, Option<sitevault::vault::lock::VaultLock>)> {
    let vault = Arc::new(open(&a.repo)?);
    let lock = read_lock(&vault, &a.lock, command)?;
    let opts = BrowseOptions {
        filter: filter(&a.filter),
        cache_bytes: a.cache_size,
        time_zone: jiff::tz::TimeZone::system(),
        ..BrowseOptions::default()
    };
    let b = Browser::new(vault, opts)?;
    for (id, why) in b.unreadable() {
        eprintln!(
            "warning: snapshot {} cannot be read and is not shown: {why}",
            id.short()
        );
    }
    Ok((Arc::new(b), lock))
}

fn error_sink() -> sitevault::browse::ErrorSink {
    Box::new(|msg: &str| eprintln!("error: {msg}"))
}

/// Ctrl-C and SIGTERM call `f` (once per signal).
fn on_signal(f: impl Fn() + Send + 'static) -> Result<()> {
    ctrlc::set_handler(f).context("cannot install the Ctrl-C / SIGTERM handler")
}

#[cfg(target_os = "linux")]
pub fn mount(a: MountArgs) -> Result<u8> {
    use sitevault::browse::mount::{MountOptions, mount};
    let (b, lock) = browser(&a.browse, "mount")?;
    let n = b.snapshots().len();
    let (tx, rx) = std::sync::mpsc::channel::<bool>();
    let signalled = tx.clone();
    on_signal(move || {
        let _ = signalled.send(true);
    })?;
    let opts = MountOptions {
        allow_other: a.allow_other,
        threads: 8,
        on_error: error_sink(),
    };
    let unmounted = tx;
    let mounted = mount(
        Arc::clone(&b),
        &a.mountpoint,
        opts,
        Box::new(move || {
            let _ = unmounted.send(false);
        }),
    )?;
    eprintln!(
        "mounted {n} recovery points of {} at {} (read-only); Ctrl-C or `fusermount3 -u {}` unmounts",
        b.vault().location(),
        a.mountpoint.display(),
        a.mountpoint.display()
    );
    // A signal unmounts here; an unmount from outside has already happened.
    let signal = rx.recv().unwrap_or(true);
    if signal {
        if mounted.unmount()? {
            eprintln!(
                "warning: files under {} were still open: unmounted lazily; reads of them now fail",
                a.mountpoint.display()
            );
        }
    } else {
        drop(mounted);
    }
    if let Some(l) = lock {
        l.release()?;
    }
    Ok(EXIT_OK)
}

#[cfg(not(target_os = "linux"))]
pub fn mount(_a: MountArgs) -> Result<u8> {
    bail!(
        "mount needs Linux with FUSE; on Windows run `sitevault serve` and map its WebDAV URL as a network drive"
    )
}

pub fn serve(a: ServeArgs) -> Result<u8> {
    use sitevault::browse::http::{Server, ServerOptions, TlsFiles};
    let listen = resolve_listen(&a.listen)?;
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    if tls.is_none() && !listen.ip().is_loopback() {
        bail!(
            "refusing to serve on {listen} without TLS: anyone on that network could read the recovery points and the URL token; give --tls-cert and --tls-key, or listen on 127.0.0.1"
        );
    }
    let token = match &a.token_file {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read token file {}", f.display()))?;
            let t = text.lines().next().unwrap_or_default().trim().to_string();
            if !sitevault::browse::webdav::valid_token(&t) {
                bail!(
                    "token file {}: the token must be 16 to 128 characters of A-Z, a-z, 0-9, - and _",
                    f.display()
                );
            }
            t
        }
        None => hex::encode(sitevault::crypto::random_array::<16>()?),
    };
    let (b, lock) = browser(&a.browse, "serve")?;
    let console = sitevault::browse::console::Console::new(
        Arc::clone(&b),
        token.clone(),
        sitevault::browse::console::ConsoleOptions {
            allow_restore: a.allow_restore,
            time_zone: jiff::tz::TimeZone::system(),
            secure_cookie: tls.is_some(),
        },
        error_sink(),
    )?;
    let opts = ServerOptions {
        listen,
        tls,
        max_connections: 64,
    };
    let server = Server::bind(&opts, Arc::new(console))?;
    let scheme = if server.is_tls() { "https" } else { "http" };
    let base = format!("{scheme}://{}/{token}/", server.local_addr());
    // The first line is the contract: scripts read the URL from it.
    outln!("{base}");
    eprintln!(
        "serving {} recovery points of {}: the recovery console at {base} ({}), WebDAV at {base}dav/ (read-only); Ctrl-C stops",
        b.snapshots().len(),
        b.vault().location(),
        if a.allow_restore {
            "restores allowed"
        } else {
            "browse and download; --allow-restore lets it restore"
        }
    );
    let stop = server.shutdown_handle();
    on_signal(move || stop.shutdown())?;
    server.run()?;
    if let Some(l) = lock {
        l.release()?;
    }
    Ok(EXIT_OK)
}

/// `127.0.0.1:8455`, `[::1]:8455` or `localhost:8455`.
fn resolve_listen(s: &str) -> Result<std::net::SocketAddr> {
    use std::net::ToSocketAddrs;
    let mut addrs = s
        .to_socket_addrs()
        .with_context(|| format!("--listen {s:?}: give ADDRESS:PORT, e.g. 127.0.0.1:8455"))?;
    addrs
        .next()
        .with_context(|| format!("--listen {s:?} names no address"))
}
