//! The recovery console (`sitevault serve`'s web pages) driven in real headless Chromium
//! through WebDriver: the calendar marks the right days, navigation reaches a folder, a
//! download equals the original, history/compare/search find the right entries, a keep-both
//! restore writes the copy beside the original, and restores are refused without
//! `--allow-restore` (and without the page's CSRF token). `.ci/run` installs chromium and
//! chromium-driver and sets `SITEVAULT_TEST_REQUIRE_CHROMIUM`, so CI cannot skip these.
//!
//! `SITEVAULT_WRITE_SCREENSHOTS=1 cargo test --test it console` rewrites docs/console-*.png.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::browse::{Served, curl};
use crate::common::{PASSWORD, init_vault, random_bytes, run, sv};
use crate::webdriver::Browser;

const WAIT: Duration = Duration::from_secs(20);

/// A vault with four recovery points: 28 Oct and 19 Nov (same content), 20 Nov 03:00 after
/// `a.txt` changed, and 20 Nov 05:00 from another host.
struct Fx {
    dir: tempfile::TempDir,
    repo: PathBuf,
    src: PathBuf,
    /// Short ids, oldest first.
    ids: Vec<String>,
    full: Vec<String>,
    big: Vec<u8>,
}

fn backup(repo: &Path, src: &Path, time: &str, host: &str) {
    let o = run(sv()
        .args(["backup", "--host", host, "--time", time, "--repo"])
        .arg(repo)
        .arg(src));
    assert_eq!(o.code, 0, "{}", o.stderr);
}

impl Fx {
    fn new() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("vault");
        let src = dir.path().join("site");
        init_vault(&repo);
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::create_dir_all(src.join("db")).unwrap();
        fs::write(src.join("a.txt"), b"first version\n").unwrap();
        let big = random_bytes(17, 300_000);
        fs::write(src.join("sub").join("big.bin"), &big).unwrap();
        fs::write(src.join("db").join("CM_CEN.mdf"), random_bytes(5, 40_000)).unwrap();
        backup(&repo, &src, "2026-10-28T03:00:00Z", "SCCM01");
        backup(&repo, &src, "2026-11-19T03:00:00Z", "SCCM01");
        fs::write(src.join("a.txt"), b"second version, longer\n").unwrap();
        backup(&repo, &src, "2026-11-20T03:00:00Z", "SCCM01");
        backup(&repo, &src, "2026-11-20T05:00:00Z", "SCCM02");
        let o = run(sv().args(["snapshots", "--json", "--repo"]).arg(&repo));
        let v: Value = serde_json::from_str(&o.stdout).unwrap();
        let col = |k: &str| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|s| s[k].as_str().unwrap().to_string())
                .collect()
        };
        Fx {
            ids: col("short_id"),
            full: col("id"),
            dir,
            repo,
            src,
            big,
        }
    }

    fn serve(&self, extra: &[&str]) -> Served {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("sitevault"));
        c.env("SITEVAULT_PASSWORD", PASSWORD)
            .env("TZ", "UTC")
            .args(["serve", "--listen", "127.0.0.1:0", "--repo"])
            .arg(&self.repo)
            .args(extra);
        Served::start(&mut c)
    }

    fn src_q(&self, tail: &str) -> String {
        pct(&format!("{}{tail}", self.src.display()))
    }
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn attrs(b: &Browser, css: &str, attr: &str) -> Vec<String> {
    b.find_all(css)
        .iter()
        .map(|e| e.attr(attr).unwrap_or_default())
        .collect()
}

/// With `SITEVAULT_WRITE_SCREENSHOTS` set, the page as docs/console-<name>.png.
fn screenshot(b: &Browser, name: &str) {
    let png = b.screenshot_png();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    if std::env::var_os("SITEVAULT_WRITE_SCREENSHOTS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
        fs::create_dir_all(&docs).unwrap();
        fs::write(docs.join(format!("console-{name}.png")), png).unwrap();
    }
}

#[test]
fn the_calendar_marks_the_days_with_recovery_points_and_reaches_any_month() {
    let Some(b) = Browser::start() else { return };
    let fx = Fx::new();
    let s = fx.serve(&[]);
    b.goto(&s.base);
    // The month of the newest recovery point, its days marked, the newest day listed.
    let cal = b.wait_for("#calendar", WAIT);
    assert_eq!(cal.attr("data-month").as_deref(), Some("2026-11"));
    assert_eq!(b.find("#month-title").text(), "November 2026");
    assert_eq!(
        attrs(&b, "#calendar td.has-points", "data-date"),
        vec!["2026-11-19", "2026-11-20"]
    );
    assert_eq!(
        attrs(&b, "#calendar td[data-date='2026-11-20']", "data-points"),
        vec!["2"]
    );
    assert_eq!(
        b.find_all("#calendar td.day").len(),
        30,
        "every day of November"
    );
    assert_eq!(
        attrs(&b, "#points tbody tr", "data-id"),
        fx.ids[2..].to_vec()
    );
    let row = b.find(&format!("#points tr[data-id='{}']", fx.ids[3]));
    let text = row.text();
    assert!(
        text.contains("2026-11-20 05:00:00") && text.contains("SCCM02"),
        "{text}"
    );
    screenshot(&b, "calendar");

    // Another day of the month, then the month before by its arrow, then any month.
    b.find("#calendar td[data-date='2026-11-19'] a").click();
    b.wait_until(WAIT, "19 November selected", || {
        attrs(&b, "#points tbody tr", "data-id") == vec![fx.ids[1].clone()]
    });
    b.find("#prev-month").click();
    b.wait_until(WAIT, "October shown", || {
        b.find("#calendar").attr("data-month").as_deref() == Some("2026-10")
    });
    assert_eq!(
        attrs(&b, "#calendar td.has-points", "data-date"),
        vec!["2026-10-28"]
    );
    assert_eq!(
        attrs(&b, "#points tbody tr", "data-id"),
        vec![fx.ids[0].clone()]
    );
    b.goto(&format!("{}?month=2025-01", s.base));
    assert_eq!(b.find("#month-title").text(), "January 2025");
    assert!(b.find_all("#calendar td.has-points").is_empty());
    b.goto(&format!("{}?month=2025-13", s.base));
    assert!(b.find("#error").text().contains("not a month"));
}

#[test]
fn browse_reaches_a_folder_and_a_download_equals_the_original() {
    let Some(b) = Browser::start() else { return };
    let fx = Fx::new();
    let s = fx.serve(&[]);
    // The pinned form: what `restore --at` picks (20 Nov 04:00 -> the 03:00 one), at a folder.
    b.goto(&format!(
        "{}browse?at=2026-11-20T04:00:00Z&path={}",
        s.base,
        fx.src_q("")
    ));
    assert_eq!(b.wait_for("#snapshot-id", WAIT).text(), fx.ids[2]);
    assert_eq!(
        attrs(&b, "#entries tbody tr", "data-name"),
        vec!["db", "sub", "a.txt"]
    );
    let a = b.find("#entries tr[data-name='a.txt']").text();
    assert!(a.contains("23 B"), "size of the second version: {a}");
    screenshot(&b, "browse");

    // Into a folder by its link, then download a file by its link.
    b.find("#entries tr[data-name='sub'] a.folder").click();
    b.wait_until(WAIT, "the sub folder", || {
        b.find("#path").text().ends_with("/site/sub")
    });
    assert_eq!(b.find("#snapshot-id").text(), fx.ids[2]);
    b.find("#entries tr[data-name='big.bin'] a.download")
        .click();
    let got = b.wait_for_download("big.bin", WAIT);
    assert_eq!(
        fs::read(&got).unwrap(),
        fx.big,
        "the download is byte-identical"
    );

    // From the top: the calendar's link to a recovery point, then the breadcrumbs.
    b.goto(&s.base);
    b.find(&format!("#points tr[data-id='{}'] a.open", fx.ids[2]))
        .click();
    b.wait_until(WAIT, "the recovery point's paths", || {
        b.try_find("#entries").is_some()
    });
    assert_eq!(b.find("#snapshot-id").text(), fx.ids[2]);
    let first = fx.src.components().nth(1).unwrap();
    assert_eq!(
        attrs(&b, "#entries tbody tr", "data-name"),
        vec![first.as_os_str().to_string_lossy().to_string()]
    );
    // A path the recovery point does not hold, and one that climbs.
    b.goto(&format!(
        "{}browse?id={}&path={}",
        s.base,
        fx.ids[0],
        fx.src_q("/nope")
    ));
    assert!(b.find("#error").text().contains("holds nothing at"));
    b.goto(&format!(
        "{}browse?id={}&path={}",
        s.base,
        fx.ids[0],
        fx.src_q("/../..")
    ));
    assert!(b.find("#error").text().contains(". or .."));
}

#[test]
fn history_compare_and_search_find_the_right_entries() {
    let Some(b) = Browser::start() else { return };
    let fx = Fx::new();
    let s = fx.serve(&[]);
    b.goto(&format!("{}history?path={}", s.base, fx.src_q("/a.txt")));
    assert_eq!(attrs(&b, "#history tbody tr", "data-id"), fx.ids);
    // Per host: SCCM01 first, same, changed; SCCM02's first.
    assert_eq!(
        attrs(&b, "#history tbody tr", "data-change"),
        vec!["first", "unchanged", "changed", "first"]
    );
    screenshot(&b, "history");

    b.goto(&format!("{}diff?a={}&b={}", s.base, fx.ids[1], fx.ids[2]));
    assert_eq!(attrs(&b, "#diff tbody tr", "data-change"), vec!["Modified"]);
    assert!(
        b.find("#diff tbody tr").text().contains("/site/a.txt"),
        "{}",
        b.find("#diff").text()
    );
    assert!(b.find("#diff-summary").text().contains("1 modified"));
    screenshot(&b, "compare");

    b.goto(&format!("{}search", s.base));
    b.find("#q").send_keys("*.mdf");
    b.find("#search-form button").click();
    b.wait_until(WAIT, "search results", || b.try_find("#hits").is_some());
    assert_eq!(
        attrs(&b, "#hits tbody tr", "data-path"),
        vec![format!("{}/db/CM_CEN.mdf", fx.src.display())]
    );
    assert!(b.find("#hits tbody tr").text().contains(&fx.ids[3]));
    screenshot(&b, "search");
}

#[test]
fn a_keep_both_restore_from_the_page_writes_the_copy_beside_the_original() {
    let Some(b) = Browser::start() else { return };
    let fx = Fx::new();
    let s = fx.serve(&["--allow-restore"]);
    let target = fx.dir.path().join("restored");
    // Something different is already where a.txt goes.
    let placed = target.join(fx.src.strip_prefix("/").unwrap()).join("a.txt");
    fs::create_dir_all(placed.parent().unwrap()).unwrap();
    fs::write(&placed, b"edited since\n").unwrap();

    b.goto(&format!(
        "{}browse?id={}&path={}",
        s.base,
        fx.ids[2],
        fx.src_q("")
    ));
    b.wait_for("#entries tr[data-name='a.txt'] input[name=sel]", WAIT)
        .click();
    b.find("input[name=dest][value=target]").click();
    b.find("#target").send_keys(target.to_str().unwrap());
    b.find("#if-exists option[value=keep-both]").click();
    b.find("#preview").click();
    b.wait_until(WAIT, "the preview", || b.try_find("#plan").is_some());
    assert_eq!(
        attrs(&b, "#plan tbody tr", "data-action"),
        vec!["keep-both"]
    );
    assert!(
        b.find("#plan-summary")
            .text()
            .contains("Nothing has been written"),
        "{}",
        b.find("#plan-summary").text()
    );
    assert_eq!(
        fs::read(&placed).unwrap(),
        b"edited since\n",
        "a preview writes nothing"
    );
    screenshot(&b, "restore-preview");

    b.find("#confirm").click();
    b.wait_until(WAIT, "the restore to finish", || {
        b.try_find("#job")
            .and_then(|j| j.attr("data-state"))
            .is_some_and(|st| st != "running")
    });
    assert_eq!(b.find("#job").attr("data-state").as_deref(), Some("done"));
    let result = b.find("#job-result").text();
    assert!(result.contains("1 kept both"), "{result}");
    assert_eq!(
        fs::read(&placed).unwrap(),
        b"edited since\n",
        "the original is kept"
    );
    let copy = placed
        .parent()
        .unwrap()
        .join("a (restored 2026-11-20 0300).txt");
    assert_eq!(fs::read(&copy).unwrap(), b"second version, longer\n");
    screenshot(&b, "restore-done");
}

#[test]
fn restore_is_refused_without_allow_restore_and_without_the_page_token() {
    let Some(b) = Browser::start() else { return };
    let fx = Fx::new();
    let s = fx.serve(&[]);
    let target = fx.dir.path().join("nowhere");
    b.goto(&format!(
        "{}browse?id={}&path={}",
        s.base,
        fx.ids[2],
        fx.src_q("")
    ));
    let fs_el = b.wait_for("#restore", WAIT);
    assert!(
        fs_el.attr("disabled").is_some(),
        "the restore controls are disabled"
    );
    assert!(!b.find("#restore-now").is_enabled());
    assert!(
        b.find("#restore-disabled")
            .text()
            .contains("--allow-restore")
    );
    // Forcing the form open in the page does not get past the server.
    b.execute(
        "document.getElementById('restore').disabled = false;\
         document.querySelector('input[name=dest][value=target]').checked = true;\
         document.getElementById('target').value = arguments[0];\
         document.getElementById('restore-now').click();",
        vec![Value::String(target.to_string_lossy().into_owned())],
    );
    b.wait_until(WAIT, "the refusal", || b.try_find("#error").is_some());
    assert!(b.find("#error").text().contains("--allow-restore"));
    assert!(!target.exists(), "nothing was written");

    // The vault page: groups, a bar per night, and a check run from the page.
    b.goto(&format!("{}vault", s.base));
    assert_eq!(attrs(&b, "#groups tbody tr", "data-count"), vec!["3", "1"]);
    assert_eq!(
        attrs(&b, "#added-chart rect.bar", "data-day"),
        vec!["2026-10-28", "2026-11-19", "2026-11-20"]
    );
    b.find("#check-now").click();
    // A loaded CI machine can take a while: wait for any result, then say which it was.
    b.wait_until(Duration::from_secs(90), "the check result", || {
        std::thread::sleep(Duration::from_millis(250));
        b.refresh();
        b.try_find("#check-result")
            .and_then(|r| r.attr("data-state"))
            .is_some_and(|st| st != "running" && st != "none")
    });
    let result = b.find("#check-result");
    assert_eq!(
        result.attr("data-state").as_deref(),
        Some("clean"),
        "{}",
        b.find("main").text()
    );
    screenshot(&b, "vault");

    // With restores allowed, a POST still needs the session's CSRF token.
    let s2 = fx.serve(&["--allow-restore"]);
    let form = format!(
        "id={}&dest=target&target={}&action=restore",
        fx.full[2],
        pct(target.to_str().unwrap())
    );
    let (code, _, body) = curl(&[
        "-X",
        "POST",
        "--data",
        &form,
        &format!("{}restore", s2.base),
    ]);
    assert_eq!(code, 403);
    assert!(String::from_utf8_lossy(&body).contains("no session"));
    let (code, _, _) = curl(&[
        "-X",
        "POST",
        "-H",
        "Cookie: sitevault_session=0123456789abcdef0123456789abcdef",
        "--data",
        &format!("{form}&csrf=00"),
        &format!("{}restore", s2.base),
    ]);
    assert_eq!(code, 403);
    assert!(!target.exists(), "nothing was written");
    // And every page needs the token.
    let wrong = format!("{}x/", s2.base.trim_end_matches('/'));
    let (code, _, _) = curl(&[&wrong]);
    assert_eq!(code, 404, "{wrong}");
}
