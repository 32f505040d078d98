//! WebDAV clients beyond curl and rclone against `sitevault serve`: `cadaver` (Debian's
//! command-line WebDAV client, on neon) lists a recovery point, downloads a file byte for byte
//! and is refused a delete. `.ci/browse.sh` installs it.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::browse::Served;
use crate::common::{PASSWORD, init_vault, random_bytes, run, sv};

/// Whether `cadaver` is installed (its `--version` exits 255, so only the start is checked).
fn cadaver_available(test: &str) -> bool {
    let ok = Command::new("cadaver").arg("--version").output().is_ok();
    if !ok {
        assert!(
            std::env::var_os("SITEVAULT_TEST_REQUIRE_FUSE").is_none(),
            "{test}: cadaver is required here but missing"
        );
        eprintln!("SKIPPED: {test}: cadaver is not installed (`bash .ci/run` installs it)");
    }
    ok
}

/// Run cadaver on `url` with `commands` on stdin (one per line); its output.
fn cadaver(url: &str, home: &std::path::Path, commands: &str) -> String {
    let mut child = Command::new("cadaver")
        .arg(url)
        // A fresh HOME: no ~/.cadaverrc or ~/.netrc of the machine's user.
        .env("HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cadaver starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{commands}\nquit\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("cadaver ends");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn cadaver_lists_downloads_byte_identical_and_is_refused_a_delete() {
    let test = "cadaver_lists_downloads_byte_identical_and_is_refused_a_delete";
    if !cadaver_available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (repo, src, home) = (
        dir.path().join("vault"),
        dir.path().join("src"),
        dir.path().join("home"),
    );
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::create_dir(&home).unwrap();
    let big = random_bytes(11, 1_500_000);
    std::fs::write(src.join("big.bin"), &big).unwrap();
    std::fs::write(src.join("sub/small.txt"), b"small\n").unwrap();
    init_vault(&repo);
    let o = run(sv().args(["backup", "--repo"]).arg(&repo).arg(&src));
    assert_eq!(o.code, 0, "{}", o.stderr);

    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("sitevault"));
    cmd.env("SITEVAULT_PASSWORD", PASSWORD)
        .args(["serve", "--listen", "127.0.0.1:0", "--repo"])
        .arg(&repo);
    let mut served = Served::start(&mut cmd);
    let url = format!(
        "{}dav/latest{}/",
        served.base,
        src.to_str().expect("a UTF-8 temp path")
    );
    let got = dir.path().join("got.bin");
    let out = cadaver(
        &url,
        &home,
        &format!("ls\nget big.bin {}\nrm big.bin\ncd sub\nls", got.display()),
    );

    // Two listings and the download.
    assert_eq!(out.matches("succeeded").count(), 3, "{out}");
    let listed = |name: &str, size: &str| {
        out.lines()
            .any(|l| l.split_whitespace().take(2).eq([name, size]))
    };
    assert!(
        listed("big.bin", "1500000"),
        "big.bin and its size listed:\n{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("Coll:") && l.contains("sub")),
        "the folder listed:\n{out}"
    );
    assert!(listed("small.txt", "6"), "small.txt listed in sub/:\n{out}");
    assert!(
        std::fs::read(&got).unwrap() == big,
        "downloaded bytes differ"
    );
    assert!(
        out.contains("Deleting `big.bin': failed"),
        "the delete is refused:\n{out}"
    );
    assert_eq!(served.stop(), 0, "serve exits 0 on SIGTERM");
}
