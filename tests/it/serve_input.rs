//! `serve` answers bad input with a clear status and keeps serving: malformed request lines,
//! bad ranges, huge headers and bodies, a body on GET, `..` (also percent-encoded), a missing or
//! wrong token, a foreign `Origin` on POST and an HTTP/2 preface on the plaintext port. Sent as raw
//! bytes over TCP, so nothing in between tidies them up.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::browse::Served;
use crate::common::{PASSWORD, init_vault, random_bytes, run, sv};

/// The status code of the first response to `request`, or `None` when the server closed the
/// connection without one.
fn status_of(addr: &str, request: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(addr).expect("serve accepts");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // A refused request may be answered before the server has read all of it.
    let _ = s.write_all(request);
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(2).any(|w| w == b"\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next()?;
    assert!(line.starts_with("HTTP/1.1 "), "not a status line: {line:?}");
    line.split(' ').nth(1)?.parse().ok()
}

#[test]
fn bad_requests_get_a_clear_status_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, src) = (dir.path().join("vault"), dir.path().join("src"));
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a.bin"), random_bytes(7, 300_000)).unwrap();
    init_vault(&repo);
    let o = run(sv().args(["backup", "--repo"]).arg(&repo).arg(&src));
    assert_eq!(o.code, 0, "{}", o.stderr);

    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("sitevault"));
    cmd.env("SITEVAULT_PASSWORD", PASSWORD)
        .args(["serve", "--listen", "127.0.0.1:0", "--repo"])
        .arg(&repo);
    let mut served = Served::start(&mut cmd);
    // http://127.0.0.1:PORT/TOKEN/
    let rest = served.base.strip_prefix("http://").expect("plain http");
    let (addr, base) = rest.split_at(rest.find('/').expect("a path"));
    let file = format!(
        "{base}dav/latest{}/a.bin",
        src.to_str().expect("a UTF-8 temp path")
    );
    let get = |target: &str, extra: &str| {
        format!("GET {target} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").into_bytes()
    };

    let big_header = format!("X-Big: {}\r\n", "a".repeat(100_000));
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        ("a request line that is not HTTP", b"GARBAGE\r\n\r\n".to_vec(), &[400]),
        ("an unknown HTTP version", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n".to_vec(), &[400, 505]),
        ("an HTTP/2 preface on the plaintext port", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(), &[400, 505]),
        ("a range past the end", get(&file, "Range: bytes=999999999-\r\n"), &[416]),
        // Unparsable ranges may be ignored (RFC 9110 §14.2): the whole file.
        ("a range that does not parse", get(&file, "Range: bytes=zz\r\n"), &[200]),
        ("a reversed range", get(&file, "Range: bytes=9-0\r\n"), &[200]),
        ("a valid range", get(&file, "Range: bytes=0-9\r\n"), &[206]),
        ("a 100 KB header", get(&format!("{base}dav/"), &big_header), &[431]),
        ("a body on GET", format!("GET {base}dav/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello").into_bytes(), &[200]),
        ("a 1 TB body", format!("PUT {base}dav/x HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n").into_bytes(), &[413]),
        ("`..` in the path", get(&format!("{base}dav/../../etc/passwd"), ""), &[400]),
        ("`%2e%2e` in the path", get(&format!("{base}dav/%2e%2e/%2e%2e/etc/passwd"), ""), &[400]),
        ("no token", get("/dav/", ""), &[404]),
        ("a wrong token", get("/0123456789abcdef0123456789abcdef/dav/", ""), &[404]),
        ("a POST from a foreign Origin", format!("POST {base}restore HTTP/1.1\r\nHost: x\r\nOrigin: http://evil.example\r\nContent-Length: 0\r\n\r\n").into_bytes(), &[403]),
    ];
    for (what, request, want) in &cases {
        let got = status_of(addr, request);
        assert!(
            got.is_some_and(|c| want.contains(&c)),
            "{what}: status {got:?}, want one of {want:?}"
        );
    }

    // Still serving, and the file itself is intact.
    assert_eq!(status_of(addr, &get(&file, "")), Some(200));
    assert_eq!(served.stop(), 0, "serve exits 0 on SIGTERM");
    let mut err = String::new();
    served
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("panicked"), "serve panicked:\n{err}");
}
