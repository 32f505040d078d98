//! Browsing recovery points: a real FUSE mount (`sitevault mount`) read with ordinary file
//! calls, and the WebDAV server (`sitevault serve`) read with curl and rclone. `.ci/run`
//! installs fuse3 and rclone and sets `SITEVAULT_TEST_REQUIRE_FUSE`, so CI cannot skip them.

use std::fs;
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{PASSWORD, assert_trees_equal, init_vault, random_bytes, run, sv};

/// Whether FUSE mounts can run here; CI requires them (a missing fusermount3 fails there).
fn fuse_available(test: &str) -> bool {
    let ok = Path::new("/dev/fuse").exists()
        && Command::new("fusermount3")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("SITEVAULT_TEST_REQUIRE_FUSE").is_none(),
            "{test}: FUSE is required here but /dev/fuse or fusermount3 is missing"
        );
        eprintln!("SKIPPED: {test}: no /dev/fuse or fusermount3 (`bash .ci/run` installs fuse3)");
    }
    ok
}

fn tool_available(test: &str, tool: &str) -> bool {
    let arg = if tool == "openssl" {
        "version"
    } else {
        "--version"
    };
    let ok = Command::new(tool)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("SITEVAULT_TEST_REQUIRE_FUSE").is_none(),
            "{test}: {tool} is required here but missing"
        );
        eprintln!("SKIPPED: {test}: {tool} is not installed (`bash .ci/run` installs it)");
    }
    ok
}

/// A source tree with what browsing must show exactly: several chunks per file, fixed-size
/// database chunks, an empty file and folder, a symlink, modes, and a name that is not UTF-8.
fn make_source(src: &Path) {
    fs::create_dir_all(src.join("SiteDBServer")).unwrap();
    fs::create_dir_all(src.join("lib/deep/er")).unwrap();
    fs::create_dir_all(src.join("empty")).unwrap();
    fs::write(src.join("big.bin"), random_bytes(1, 5 << 20)).unwrap();
    fs::write(
        src.join("SiteDBServer/CM_CEN.mdf"),
        random_bytes(2, 700 << 10),
    )
    .unwrap();
    fs::write(src.join("lib/deep/er/small.txt"), b"hello\n").unwrap();
    fs::write(src.join("lib/zero"), b"").unwrap();
    fs::write(
        src.join(std::ffi::OsStr::from_bytes(b"caf\xff.log")),
        b"not utf-8\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("lib/deep/er/small.txt", src.join("link")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(src.join("lib/zero"), fs::Permissions::from_mode(0o640)).unwrap();
}

fn short_ids(repo: &Path) -> Vec<String> {
    let o = run(sv().args(["snapshots", "--json", "--repo"]).arg(repo));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["short_id"].as_str().unwrap().to_string())
        .collect()
}

fn backup(repo: &Path, src: &Path, time: &str) {
    let o = run(sv()
        .args(["backup", "--time", time, "--repo"])
        .arg(repo)
        .arg(src));
    assert_eq!(o.code, 0, "{}", o.stderr);
}

/// A vault with two recovery points of `src`: the second after `big.bin` changed.
fn two_nights(dir: &Path) -> (PathBuf, PathBuf, Vec<String>) {
    let (repo, src) = (dir.join("vault"), dir.join("src"));
    init_vault(&repo);
    make_source(&src);
    backup(&repo, &src, "2026-11-20T03:00:00Z");
    fs::write(src.join("big.bin"), random_bytes(3, (5 << 20) + 12345)).unwrap();
    backup(&repo, &src, "2026-11-21T03:05:00Z");
    let ids = short_ids(&repo);
    assert_eq!(ids.len(), 2);
    (repo, src, ids)
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

fn wait_exit(child: &mut Child, what: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st
                .code()
                .unwrap_or_else(|| panic!("{what} died by a signal: {st:?}"));
        }
        assert!(Instant::now() < deadline, "{what} did not exit within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn is_mounted(mp: &Path) -> bool {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mp = fs::canonicalize(mp).unwrap_or(mp.to_path_buf());
    mounts
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(mp.to_str().unwrap()))
}

/// `sitevault mount` running in the background; unmounted (SIGTERM) on drop.
struct Mount {
    child: Child,
    mp: PathBuf,
}

impl Mount {
    fn start(repo: &Path, mp: &Path, extra: &[&str]) -> Mount {
        fs::create_dir_all(mp).unwrap();
        let child = Command::new(assert_cmd::cargo::cargo_bin("sitevault"))
            .env("SITEVAULT_PASSWORD", PASSWORD)
            .env("TZ", "UTC")
            .arg("mount")
            .arg("--repo")
            .arg(repo)
            .args(extra)
            .arg(mp)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut m = Mount {
            child,
            mp: mp.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !m.mp.join("ids").exists() {
            if let Some(st) = m.child.try_wait().unwrap() {
                let mut err = String::new();
                let _ = m.child.stderr.take().unwrap().read_to_string(&mut err);
                panic!("mount exited ({st:?}) before mounting:\n{err}");
            }
            assert!(Instant::now() < deadline, "mount did not come up in 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        m
    }

    fn stop(&mut self, sig: i32) -> i32 {
        signal(&self.child, sig);
        wait_exit(&mut self.child, "mount")
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if is_mounted(&self.mp) {
            let _ = Command::new("fusermount3")
                .arg("-uz")
                .arg(&self.mp)
                .status();
        }
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_fuse_mount_shows_every_recovery_point_byte_identical_and_read_only() {
    if !fuse_available("mount") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (repo, src, ids) = two_nights(dir.path());
    let restored = dir.path().join("restored");
    let o = run(sv()
        .args(["restore", &ids[0], "--target"])
        .arg(&restored)
        .arg("--repo")
        .arg(&repo));
    assert_eq!(o.code, 0, "{}", o.stderr);

    let mp = dir.path().join("mnt");
    let mut m = Mount::start(&repo, &mp, &[]);
    assert_eq!(names(&mp), ["dates", "ids", "latest"]);
    let mut want_ids = ids.clone();
    want_ids.sort();
    assert_eq!(names(&mp.join("ids")), want_ids);
    assert_eq!(
        fs::read_link(mp.join("latest")).unwrap(),
        Path::new(&format!("ids/{}", ids[1]))
    );
    assert_eq!(names(&mp.join("dates")), ["2026-11-20", "2026-11-21"]);
    assert_eq!(
        names(&mp.join("dates/2026-11-21")),
        [format!("0305_{}", ids[1])]
    );
    // The holding lock: one shared lock while mounted.
    assert_eq!(fs::read_dir(repo.join("locks")).unwrap().count(), 1);

    // The older recovery point, walked and compared with what restore writes: entries, types,
    // symlink targets, modes, mtimes and contents.
    let src_in = |root: &Path| root.join(src.strip_prefix("/").unwrap());
    assert_trees_equal(&src_in(&restored), &src_in(&mp.join("ids").join(&ids[0])));
    // The newer one through `latest` and `dates/`, against the source itself.
    assert_trees_equal(&src, &src_in(&mp.join("latest")));
    assert_trees_equal(
        &src,
        &src_in(&mp.join("dates/2026-11-21").join(format!("0305_{}", ids[1]))),
    );
    let non_utf8 = src_in(&mp.join("latest")).join(std::ffi::OsStr::from_bytes(b"caf\xff.log"));
    assert_eq!(fs::read(non_utf8).unwrap(), b"not utf-8\n");

    // Seek and read at seeded offsets, across chunk boundaries, against the source bytes.
    let want = fs::read(src.join("big.bin")).unwrap();
    let mut f = fs::File::open(src_in(&mp.join("latest")).join("big.bin")).unwrap();
    let mut x = 0x9e3779b97f4a7c15u64;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = x % want.len() as u64;
        let len = (x >> 40) as usize % (3 << 20);
        let mut buf = vec![0u8; len];
        f.seek(SeekFrom::Start(at)).unwrap();
        let mut got = 0;
        while got < len {
            match f.read(&mut buf[got..]).unwrap() {
                0 => break,
                n => got += n,
            }
        }
        let end = (at as usize + len).min(want.len());
        assert_eq!(got, end - at as usize, "read length at {at}");
        assert!(buf[..got] == want[at as usize..end], "bytes at {at}+{len}");
    }

    // Read-only: writes, creates, removals and new folders fail with EROFS.
    let file = src_in(&mp.join("latest")).join("lib/zero");
    let erofs = |r: std::io::Result<()>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{what}: {e}");
    };
    erofs(
        fs::OpenOptions::new().write(true).open(&file).map(|_| ()),
        "open for writing",
    );
    erofs(
        fs::File::create(file.with_file_name("new")).map(|_| ()),
        "create",
    );
    erofs(fs::remove_file(&file), "unlink");
    erofs(fs::create_dir(mp.join("ids/new")), "mkdir");
    erofs(fs::rename(&file, file.with_file_name("moved")), "rename");

    // SIGTERM unmounts, releases the lock and exits 0.
    assert_eq!(m.stop(libc::SIGTERM), 0);
    assert!(!is_mounted(&mp), "still mounted after SIGTERM");
    let left: Vec<_> = fs::read_dir(repo.join("locks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let mut err = String::new();
    let _ = m.child.stderr.take().unwrap().read_to_string(&mut err);
    assert!(left.is_empty(), "locks left: {left:?}\n{err}");
}

#[test]
fn an_unmount_from_outside_ends_mount_with_exit_0_and_sigint_does_too() {
    if !fuse_available("mount unmount") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (repo, _src, _ids) = two_nights(dir.path());
    let mp = dir.path().join("mnt");
    let mut m = Mount::start(&repo, &mp, &[]);
    let st = Command::new("fusermount3")
        .arg("-u")
        .arg(&mp)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(wait_exit(&mut m.child, "mount"), 0);
    drop(m);

    let mut m = Mount::start(&repo, &mp, &["--label", "no-such-label"]);
    // A filter that matches nothing shows empty folders and no `latest`.
    assert_eq!(names(&mp), ["dates", "ids"]);
    assert!(names(&mp.join("ids")).is_empty());
    assert_eq!(m.stop(libc::SIGINT), 0);
    assert!(!is_mounted(&mp));
}

#[test]
fn mount_names_a_bad_mount_point() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault(&repo);
    let o = run(sv()
        .args(["mount", "--repo"])
        .arg(&repo)
        .arg(dir.path().join("missing")));
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("missing") && o.stderr.starts_with("error: "),
        "{}",
        o.stderr
    );
    assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
}

/// `sitevault serve` in the background; its first stdout line is the base URL.
pub struct Served {
    pub child: Child,
    pub base: String,
}

impl Served {
    pub fn start(cmd: &mut Command) -> Served {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut base = String::new();
        out.read_line(&mut base).unwrap();
        if base.is_empty() {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("serve printed no URL:\n{err}");
        }
        Served {
            child,
            base: base.trim().to_string(),
        }
    }

    pub fn stop(&mut self) -> i32 {
        signal(&self.child, libc::SIGTERM);
        wait_exit(&mut self.child, "serve")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn serve_cmd(repo: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("sitevault"));
    c.env("SITEVAULT_PASSWORD", PASSWORD)
        .env("TZ", "UTC")
        .args(["serve", "--listen", "127.0.0.1:0", "--repo", repo])
        .args(extra);
    c
}

/// curl: status code, headers and body.
pub fn curl(args: &[&str]) -> (u16, String, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "-D", "/dev/stderr", "-o", "-"])
        .args(args)
        .output()
        .expect("curl runs");
    let headers = String::from_utf8_lossy(&out.stderr).into_owned();
    let status = headers
        .lines()
        .rev()
        .find(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status from curl {args:?}: {headers}"));
    (status, headers, out.stdout)
}

fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn webdav_serves_every_recovery_point_to_curl_with_ranges_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, src, ids) = two_nights(dir.path());
    let mut s = Served::start(&mut serve_cmd(repo.to_str().unwrap(), &[]));
    assert!(
        s.base.starts_with("http://127.0.0.1:") && s.base.ends_with('/'),
        "{}",
        s.base
    );
    let dav = format!("{}dav/", s.base);
    let src_rel = src.strip_prefix("/").unwrap().to_str().unwrap().to_string();

    // PROPFIND Depth 1 of the root and of ids/.
    let (code, _, body) = curl(&["-X", "PROPFIND", "-H", "Depth: 1", &dav]);
    assert_eq!(code, 207);
    let xml = String::from_utf8(body).unwrap();
    for n in ["dates/", "ids/", "latest/"] {
        assert!(
            xml.contains(&format!("<D:href>{}{n}</D:href>", dav_path(&dav))),
            "{n}: {xml}"
        );
    }
    let (code, _, body) = curl(&["-X", "PROPFIND", "-H", "Depth: 1", &format!("{dav}ids/")]);
    assert_eq!(code, 207);
    let xml = String::from_utf8(body).unwrap();
    assert!(
        ids.iter()
            .all(|id| xml.contains(&format!("ids/{id}/</D:href>"))),
        "{xml}"
    );
    // Depth 0 describes only the resource itself; infinity is refused.
    let file_url = format!("{dav}latest/{src_rel}/big.bin");
    let (code, _, body) = curl(&["-X", "PROPFIND", "-H", "Depth: 0", &file_url]);
    assert_eq!(code, 207);
    let xml = String::from_utf8(body).unwrap();
    let want = fs::read(src.join("big.bin")).unwrap();
    assert_eq!(xml.matches("<D:response>").count(), 1);
    assert!(xml.contains(&format!(
        "<D:getcontentlength>{}</D:getcontentlength>",
        want.len()
    )));
    let (code, _, _) = curl(&["-X", "PROPFIND", "-H", "Depth: infinity", &dav]);
    assert_eq!(code, 403);

    // GET is byte-identical; HEAD gives the length and no body.
    let (code, h, body) = curl(&[&file_url]);
    assert_eq!(code, 200);
    assert!(body == want, "GET differs from the source");
    assert_eq!(header(&h, "accept-ranges"), Some("bytes"));
    // (curl -I prints the headers where the body would go: no file bytes follow them.)
    let (code, h, body) = curl(&["-I", &file_url]);
    assert_eq!(code, 200);
    assert!(
        body.len() < 1024 && body.starts_with(b"HTTP/1.1 200"),
        "HEAD sent a body"
    );
    assert_eq!(
        header(&h, "content-length"),
        Some(want.len().to_string().as_str())
    );

    // Ranges: inside one chunk, across chunks, a suffix, and one past the end.
    for (range, from, to) in [
        ("bytes=10-19", 10, 20),
        ("bytes=1000000-3200000", 1_000_000, 3_200_001),
        ("bytes=-100", want.len() - 100, want.len()),
    ] {
        let (code, h, body) = curl(&["-H", &format!("Range: {range}"), &file_url]);
        assert_eq!(code, 206, "{range}");
        assert_eq!(
            header(&h, "content-range"),
            Some(format!("bytes {from}-{}/{}", to - 1, want.len()).as_str())
        );
        assert!(body == want[from..to], "{range}");
    }
    let (code, h, body) = curl(&["-H", &format!("Range: bytes={}-", want.len()), &file_url]);
    assert_eq!(code, 416);
    assert!(body.is_empty());
    assert_eq!(
        header(&h, "content-range"),
        Some(format!("bytes */{}", want.len()).as_str())
    );

    // The older recovery point by id and by date holds the older bytes.
    let old = format!("{dav}dates/2026-11-20/0300_{}/{src_rel}/big.bin", ids[0]);
    let (code, _, body) = curl(&[&old]);
    assert_eq!(code, 200);
    assert!(body == random_bytes(1, 5 << 20));

    // Writes are refused and change nothing.
    for m in ["PUT", "DELETE", "MKCOL", "MOVE", "COPY", "PROPPATCH"] {
        let (code, _, _) = curl(&[
            "-X",
            m,
            "-H",
            "Destination: /x",
            "--data-binary",
            "x",
            &file_url,
        ]);
        assert_eq!(code, 405, "{m}");
    }
    let (code, _, body) = curl(&[&file_url]);
    assert_eq!(code, 200);
    assert!(body == want);

    // No token, a wrong one, or a path outside dav/: 404 and no content.
    let port_base = s.base.rsplitn(3, '/').nth(2).unwrap().to_string();
    for url in [
        format!("{port_base}/"),
        format!("{port_base}/dav/ids/"),
        format!("{port_base}/0123456789abcdef0123456789abcdef/dav/ids/"),
    ] {
        let (code, _, body) = curl(&[&url]);
        assert_eq!(code, 404, "{url}");
        assert!(body.is_empty(), "{url}");
        let (code, _, body) = curl(&["-X", "PROPFIND", "-H", "Depth: 1", &url]);
        assert_eq!(code, 404, "{url}");
        assert!(body.is_empty(), "{url}");
    }
    // With the token, a path that is neither dav/ nor a console page: 404 (the console's page).
    let elsewhere = format!("{}elsewhere", s.base);
    for method in ["GET", "PROPFIND", "POST"] {
        let (code, _, _) = curl(&["-X", method, &elsewhere]);
        assert_eq!(code, 404, "{method} {elsewhere}");
    }
    assert_eq!(fs::read_dir(repo.join("locks")).unwrap().count(), 1);
    assert_eq!(s.stop(), 0);
    assert_eq!(fs::read_dir(repo.join("locks")).unwrap().count(), 0);
}

/// The path part of a URL.
fn dav_path(url: &str) -> String {
    let after = url.split_once("://").unwrap().1;
    after[after.find('/').unwrap()..].to_string()
}

#[test]
fn rclone_copies_a_recovery_point_over_webdav_byte_identical() {
    if !tool_available("rclone over WebDAV", "rclone") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (repo, src, ids) = two_nights(dir.path());
    let token_file = dir.path().join("token");
    fs::write(&token_file, "rclone-test-token-0123456789\n").unwrap();
    let mut s = Served::start(&mut serve_cmd(
        repo.to_str().unwrap(),
        &["--token-file", token_file.to_str().unwrap()],
    ));
    assert!(
        s.base.ends_with("/rclone-test-token-0123456789/"),
        "{}",
        s.base
    );
    let out = dir.path().join("copied");
    let st = Command::new("rclone")
        .args(["copy", "--links", "--webdav-url"])
        .arg(format!("{}dav/", s.base))
        .arg(format!(":webdav:ids/{}", ids[1]))
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    // rclone keeps contents and mtimes (to the second), not modes; a symlink is shown as a file
    // holding its target, as WebDAV has no symlinks.
    let copied = out.join(src.strip_prefix("/").unwrap());
    for rel in [
        "big.bin",
        "SiteDBServer/CM_CEN.mdf",
        "lib/deep/er/small.txt",
        "lib/zero",
    ] {
        assert!(
            fs::read(src.join(rel)).unwrap() == fs::read(copied.join(rel)).unwrap(),
            "{rel}"
        );
        let t = |p: &Path| fs::metadata(p).unwrap().modified().unwrap();
        let secs =
            |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(
            secs(t(&src.join(rel))),
            secs(t(&copied.join(rel))),
            "mtime of {rel}"
        );
    }
    assert_eq!(
        fs::read(copied.join(std::ffi::OsStr::from_bytes(b"caf\xff.log"))).ok(),
        Some(b"not utf-8\n".to_vec())
    );
    assert_eq!(
        fs::read(copied.join("link")).unwrap(),
        b"lib/deep/er/small.txt"
    );
    assert_eq!(s.stop(), 0);
}

#[test]
fn serve_refuses_non_loopback_without_tls_and_serves_it_with_tls() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault(&repo);
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.txt"), b"over tls\n").unwrap();
    backup(&repo, &src, "2026-11-20T03:00:00Z");

    let o = run(sv()
        .args(["serve", "--listen", "0.0.0.0:0", "--repo"])
        .arg(&repo));
    assert_eq!(o.code, 1);
    assert!(o.stdout.is_empty(), "{}", o.stdout);
    assert!(
        o.stderr.contains("refusing to serve on 0.0.0.0") && o.stderr.contains("--tls-cert"),
        "{}",
        o.stderr
    );
    // Only one of the pair is a usage error.
    let o = run(sv()
        .args(["serve", "--tls-cert", "c.pem", "--repo"])
        .arg(&repo));
    assert_eq!(o.code, 2, "{}", o.stderr);
    // A bad token file is named.
    let bad = dir.path().join("token");
    fs::write(&bad, "short\n").unwrap();
    let o = run(sv()
        .args(["serve", "--listen", "127.0.0.1:0", "--token-file"])
        .arg(&bad)
        .arg("--repo")
        .arg(&repo));
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("token file") && o.stderr.contains("16 to 128"),
        "{}",
        o.stderr
    );

    if !tool_available("serve with TLS", "openssl") {
        return;
    }
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-subj", "/CN=localhost", "-days", "2"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("sitevault"));
    c.env("SITEVAULT_PASSWORD", PASSWORD)
        .args(["serve", "--listen", "0.0.0.0:0", "--repo"])
        .arg(&repo)
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key);
    let mut s = Served::start(&mut c);
    assert!(s.base.starts_with("https://0.0.0.0:"), "{}", s.base);
    let url = s.base.replace("0.0.0.0", "127.0.0.1");
    let path = format!(
        "{url}dav/latest/{}/a.txt",
        src.strip_prefix("/").unwrap().display()
    );
    let (code, _, body) = curl(&["--cacert", cert.to_str().unwrap(), &path]);
    assert_eq!(code, 200);
    assert_eq!(body, b"over tls\n");
    // Plain HTTP to the TLS port gets nothing.
    let plain = path.replace("https://", "http://");
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", &plain])
        .output()
        .unwrap();
    assert!(!out.status.success() || out.stdout.is_empty());
    assert_eq!(s.stop(), 0);
}

/// The browse view of a folder vault, through the library.
fn open_browser(repo: &Path, opts: sitevault::browse::BrowseOptions) -> sitevault::browse::Browser {
    let store = sitevault::open_store(
        repo.to_str().unwrap(),
        false,
        &sitevault::store::StoreOptions::default(),
    )
    .unwrap();
    let vault = sitevault::Vault::open(store, Some(PASSWORD.as_bytes())).unwrap();
    sitevault::browse::Browser::new(std::sync::Arc::new(vault), opts).unwrap()
}

/// A byte range read through the browse view fetches exactly the chunks that cover it.
#[test]
fn a_range_read_fetches_only_the_chunks_covering_it() {
    use sitevault::browse::BrowseOptions;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault(&repo);
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    // 64 KiB database chunks: offsets say exactly which chunks a range covers.
    let data = random_bytes(9, 40 << 16);
    fs::write(src.join("db.mdf"), &data).unwrap();
    backup(&repo, &src, "2026-11-20T03:00:00Z");

    let b = open_browser(&repo, BrowseOptions::default());
    let snap = b.snapshots()[0].name.clone();
    let mut names: Vec<Vec<u8>> = vec![b"ids".to_vec(), snap.into_bytes()];
    names.extend(
        src.components()
            .skip(1)
            .map(|c| c.as_os_str().as_bytes().to_vec()),
    );
    names.push(b"db.mdf".to_vec());
    let refs: Vec<&[u8]> = names.iter().map(|n| n.as_slice()).collect();
    let e = b.resolve(&refs).unwrap().expect("db.mdf is in the view");
    let f = b.open(&e).unwrap();
    assert_eq!(f.chunk_count(), 40);
    // Each read starts below the one before: random access, so nothing is read ahead.
    for (at, len, chunks) in [
        ((39 << 16) + 5, 1 << 20, 1),
        (20 << 16, 3 << 16, 3),
        ((7 << 16) - 10, 20, 2),
        (5 << 16, 100, 1),
    ] {
        let before = b.vault().store().requests().range_gets;
        let got = b.read(&f, at, len).unwrap();
        let end = (at as usize + len).min(data.len());
        assert!(got == data[at as usize..end], "bytes at {at}");
        assert_eq!(
            b.vault().store().requests().range_gets - before,
            chunks,
            "range {at}+{len}"
        );
    }
    // Read again: from the cache, no request.
    let before = b.vault().store().requests().range_gets;
    b.read(&f, (39 << 16) + 5, 100).unwrap();
    assert_eq!(b.vault().store().requests().range_gets, before);
}

/// The same views on S3 (moto) and Azure Blob (Azurite) vaults: chunks come from range GETs.
#[test]
fn serve_and_mount_read_cloud_vaults_byte_identical() {
    let Some((az, s3)) = crate::cloud::azure_and_s3("serve and mount on cloud vaults") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_source(&src);
    let want = fs::read(src.join("big.bin")).unwrap();
    let src_rel = src.strip_prefix("/").unwrap().to_str().unwrap().to_string();
    for (name, base) in [("azure", az), ("s3", s3)] {
        let repo = crate::cloud::fresh(&base, "browse");
        let o = run(sv()
            .args(["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"])
            .args(["--pack-size", "1MiB", "--repo", &repo]));
        assert_eq!(o.code, 0, "{name}: {}", o.stderr);
        let o = run(sv()
            .args(["backup", "--time", "2026-11-20T03:00:00Z", "--repo", &repo])
            .arg(&src));
        assert_eq!(o.code, 0, "{name}: {}", o.stderr);

        let mut s = Served::start(&mut serve_cmd(&repo, &[]));
        let url = format!("{}dav/latest/{src_rel}/big.bin", s.base);
        let (code, _, body) = curl(&[&url]);
        assert_eq!(code, 200, "{name}");
        assert!(body == want, "{name}: GET differs");
        let (code, _, body) = curl(&["-H", "Range: bytes=2000000-2100000", &url]);
        assert_eq!(code, 206, "{name}");
        assert!(body == want[2_000_000..2_100_001], "{name}: range differs");
        assert_eq!(s.stop(), 0, "{name}");

        if fuse_available("mount on a cloud vault") {
            let mp = dir.path().join(format!("mnt-{name}"));
            let mut m = Mount::start(Path::new(&repo), &mp, &[]);
            assert_trees_equal(&src, &mp.join("latest").join(&src_rel));
            assert_eq!(m.stop(libc::SIGTERM), 0, "{name}");
        }
    }
}

/// The Windows build serves WebDAV under Wine; curl on Linux reads a recovery point through it.
#[test]
fn the_windows_build_serves_webdav_under_wine() {
    let Some(w) = crate::wine::Wine::get("serve under Wine") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (repo, src, ids) = two_nights(dir.path());
    let repo_win = format!("Z:{}", repo.to_str().unwrap().replace('/', "\\"));
    let mut c = w.command(w.exe.to_str().unwrap());
    c.args(["serve", "--listen", "127.0.0.1:0", "--repo", &repo_win]);
    let mut s = Served::start(&mut c);
    assert!(s.base.starts_with("http://127.0.0.1:"), "{}", s.base);
    // A Linux snapshot's paths appear as they were; the bytes are the source's.
    let src_rel = src.strip_prefix("/").unwrap().to_str().unwrap().to_string();
    let url = format!("{}dav/ids/{}/{src_rel}/big.bin", s.base, ids[1]);
    let (code, _, body) = curl(&[&url]);
    assert_eq!(code, 200);
    assert!(
        body == fs::read(src.join("big.bin")).unwrap(),
        "GET under Wine differs"
    );
    let (code, _, body) = curl(&["-H", "Range: bytes=100-199", &url]);
    assert_eq!(code, 206);
    assert!(body == fs::read(src.join("big.bin")).unwrap()[100..200]);
    let (code, _, body) = curl(&[
        "-X",
        "PROPFIND",
        "-H",
        "Depth: 1",
        &format!("{}dav/ids/", s.base),
    ]);
    assert_eq!(code, 207);
    let xml = String::from_utf8(body).unwrap();
    assert!(
        ids.iter()
            .all(|id| xml.contains(&format!("ids/{id}/</D:href>"))),
        "{xml}"
    );
    let no_token = s.base.rsplitn(3, '/').nth(2).unwrap().to_string();
    let (code, _, body) = curl(&[&format!("{no_token}/dav/ids/")]);
    assert_eq!(code, 404);
    assert!(body.is_empty());
    let _ = s.child.kill();
    let _ = s.child.wait();
}

/// Many readers at once, through both views: every one gets its own bytes exactly.
#[test]
fn many_concurrent_readers_get_byte_identical_data() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, src, _ids) = two_nights(dir.path());
    let want = std::sync::Arc::new(fs::read(src.join("big.bin")).unwrap());
    let src_rel = src.strip_prefix("/").unwrap().to_str().unwrap().to_string();
    let mut s = Served::start(&mut serve_cmd(
        repo.to_str().unwrap(),
        &["--cache-size", "16MiB"],
    ));
    let url = format!("{}dav/latest/{src_rel}/big.bin", s.base);
    let readers: Vec<_> = (0..12u64)
        .map(|i| {
            let (url, want) = (url.clone(), std::sync::Arc::clone(&want));
            std::thread::spawn(move || {
                let from = (i as usize * 397_123) % (want.len() / 2);
                let to = (from + 1_500_000 + i as usize * 100_000).min(want.len());
                let (code, _, body) =
                    curl(&["-H", &format!("Range: bytes={from}-{}", to - 1), &url]);
                assert_eq!(code, 206, "reader {i}");
                assert!(body == want[from..to], "reader {i}: bytes differ");
            })
        })
        .collect();
    for r in readers {
        r.join().expect("reader");
    }
    assert_eq!(s.stop(), 0);

    if !fuse_available("concurrent mount readers") {
        return;
    }
    let mp = dir.path().join("mnt");
    let mut m = Mount::start(&repo, &mp, &["--cache-size", "16MiB"]);
    let path = mp.join("latest").join(&src_rel).join("big.bin");
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (path, want) = (path.clone(), std::sync::Arc::clone(&want));
            std::thread::spawn(move || assert!(fs::read(&path).unwrap() == *want))
        })
        .collect();
    for r in readers {
        r.join().expect("mount reader");
    }
    assert_eq!(m.stop(libc::SIGTERM), 0);
}

/// A recovery point written while the view is open appears in it, with `latest` moved to it.
#[test]
fn a_recovery_point_written_while_browsing_appears() {
    use sitevault::browse::{BrowseOptions, Entry};
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault(&repo);
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.txt"), b"night 1\n").unwrap();
    backup(&repo, &src, "2026-11-20T03:00:00Z");
    let opts = BrowseOptions {
        refresh: Duration::ZERO,
        ..BrowseOptions::default()
    };
    let b = open_browser(&repo, opts);
    let first = b.latest_target().unwrap();
    assert_eq!(b.list(&Entry::Ids).unwrap().len(), 1);

    fs::write(src.join("a.txt"), b"night 2\n").unwrap();
    backup(&repo, &src, "2026-11-21T03:00:00Z");
    assert_eq!(b.list(&Entry::Ids).unwrap().len(), 2);
    let second = b.latest_target().unwrap();
    assert_ne!(first, second);
    // The new recovery point's file reads back through the reloaded index.
    let mut names: Vec<Vec<u8>> = vec![b"latest".to_vec()];
    names.extend(
        src.components()
            .skip(1)
            .map(|c| c.as_os_str().as_bytes().to_vec()),
    );
    names.push(b"a.txt".to_vec());
    let refs: Vec<&[u8]> = names.iter().map(|n| n.as_slice()).collect();
    let e = b.resolve(&refs).unwrap().expect("a.txt in latest");
    let f = b.open(&e).unwrap();
    assert_eq!(b.read(&f, 0, 100).unwrap(), b"night 2\n");
    let days: Vec<Vec<u8>> = b
        .list(&Entry::Dates)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(days, [b"2026-11-20".to_vec(), b"2026-11-21".to_vec()]);
}
