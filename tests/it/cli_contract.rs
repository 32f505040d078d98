//! The CLI contract admins' scripts depend on: flags, environment variables, snapshot
//! references, `--json` shapes and what `ls` prints.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde_json::Value;

use crate::common::{Out, PASSWORD, init_vault, run, sv};

#[track_caller]
fn ok(out: Out) -> Out {
    assert_eq!(out.code, 0, "expected success; stderr:\n{}", out.stderr);
    out
}

/// Exit 1 and one `error:` line holding every needle.
#[track_caller]
fn assert_error(out: &Out, needles: &[&str]) {
    assert_eq!(out.code, 1, "exit code; stderr:\n{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "want exactly one stderr line, got:\n{}",
        out.stderr
    );
    assert!(lines[0].starts_with("error: "), "{:?}", lines[0]);
    for n in needles {
        assert!(
            lines[0].contains(n),
            "{n:?} is not named in the error {:?}",
            lines[0]
        );
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// `backup --json` with extra flags; returns its JSON summary.
fn backup(repo: &Path, extra: &[&str], paths: &[&Path]) -> Value {
    let out = ok(run(sv()
        .args(["backup", "--json", "--repo"])
        .arg(repo)
        .args(extra)
        .args(paths)));
    json(&out.stdout)
}

/// Full id of a new snapshot of `paths`.
fn backup_id(repo: &Path, extra: &[&str], paths: &[&Path]) -> String {
    backup(repo, extra, paths)["id"]
        .as_str()
        .expect("backup --json has a string id")
        .to_string()
}

fn snapshots(repo: &Path, extra: &[&str]) -> Vec<Value> {
    let out = ok(run(sv()
        .args(["snapshots", "--json", "--repo"])
        .arg(repo)
        .args(extra)));
    json(&out.stdout)
        .as_array()
        .expect("snapshots --json prints an array")
        .clone()
}

fn ids(snaps: &[Value]) -> BTreeSet<String> {
    snaps
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

fn ls(repo: &Path, reference: &str, extra: &[&str]) -> Vec<String> {
    let out = ok(run(sv()
        .args(["ls", "--repo"])
        .arg(repo)
        .arg(reference)
        .args(extra)));
    out.stdout.lines().map(String::from).collect()
}

fn touch(p: &Path, content: &str) -> PathBuf {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
    p.to_path_buf()
}

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn is_rfc3339(t: &str) -> bool {
    let b = t.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() < 20
        || !(digits(0..4)
            && digits(5..7)
            && digits(8..10)
            && digits(11..13)
            && digits(14..16)
            && digits(17..19))
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

fn is_full_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

#[test]
fn snapshots_json_has_the_contract_fields() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault(&repo);
    let src = touch(&dir.path().join("site/inboxes/a.txt"), "a")
        .parent()
        .unwrap()
        .to_path_buf();
    let time = "2026-11-22T03:00:00Z";
    let id = backup_id(
        &repo,
        &[
            "--label",
            "sccm-CEN",
            "--tag",
            "daily",
            "--tag",
            "pre-upgrade",
            "--host",
            "SRV-01",
            "--time",
            time,
        ],
        &[&src],
    );
    let plain_id = backup_id(&repo, &[], &[&src]);

    let snaps = snapshots(&repo, &[]);
    assert_eq!(snaps.len(), 2);
    for v in &snaps {
        let id = v["id"].as_str().expect("id is a string");
        assert!(is_full_id(id), "id is 64 lowercase hex digits: {id:?}");
        assert!(
            repo.join("snapshots").join(id).is_file(),
            "id names the snapshot object"
        );
        let t = v["time"].as_str().expect("time is a string");
        assert!(is_rfc3339(t), "time is RFC 3339: {t:?}");
        t.parse::<Timestamp>().expect("time parses");
        assert!(v["host"].is_string() && v["label"].is_string(), "{v}");
        assert!(
            v["tags"].is_array() && v["paths"].is_array() && v["complete"].is_boolean(),
            "{v}"
        );
    }
    let tagged = snaps
        .iter()
        .find(|v| v["id"] == id.as_str())
        .expect("the tagged snapshot is listed");
    assert_eq!(
        tagged["time"]
            .as_str()
            .unwrap()
            .parse::<Timestamp>()
            .unwrap(),
        time.parse::<Timestamp>().unwrap()
    );
    assert_eq!(tagged["host"], "SRV-01");
    assert_eq!(tagged["label"], "sccm-CEN");
    assert_eq!(tagged["tags"], serde_json::json!(["daily", "pre-upgrade"]));
    assert_eq!(tagged["paths"], serde_json::json!([s(&src)]));
    assert_eq!(tagged["complete"], Value::Bool(true));

    let plain = snaps
        .iter()
        .find(|v| v["id"] == plain_id.as_str())
        .expect("the plain snapshot is listed");
    assert_eq!(plain["label"], "");
    assert_eq!(plain["tags"], serde_json::json!([]));
    assert!(
        !plain["host"].as_str().unwrap().is_empty(),
        "the host defaults to this machine's name"
    );
    assert_eq!(plain["paths"], serde_json::json!([s(&src)]));
    assert_eq!(plain["complete"], Value::Bool(true));
    let age = Timestamp::now().duration_since(
        plain["time"]
            .as_str()
            .unwrap()
            .parse::<Timestamp>()
            .unwrap(),
    );
    assert!(
        age.as_secs() >= 0 && age.as_secs() < 600,
        "without --time the time is now: {age:?}"
    );
}

#[test]
fn time_is_honoured_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault(&repo);
    let src = touch(&dir.path().join("f.txt"), "x");
    for given in [
        "2021-02-03T04:05:06Z",
        "2021-02-03T04:05:06.123456789Z",
        "2021-02-03T04:05:06.5+02:00",
        "1999-12-31T23:59:59-05:30",
    ] {
        let want: Timestamp = given.parse().unwrap();
        let b = backup(&repo, &["--time", given], &[&src]);
        let snap = snapshots(&repo, &[])
            .into_iter()
            .find(|v| v["id"] == b["id"])
            .expect("listed");
        let got: Timestamp = snap["time"].as_str().unwrap().parse().unwrap();
        assert_eq!(got, want, "--time {given} shown as {}", snap["time"]);
        assert!(
            is_rfc3339(snap["time"].as_str().unwrap()),
            "{}",
            snap["time"]
        );
    }
}

#[test]
fn latest_is_the_newest_by_time_not_by_creation_order() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault(&repo);
    let f1 = touch(&dir.path().join("d/t1.txt"), "1");
    let f2 = touch(&dir.path().join("d/t2.txt"), "2");
    let f3 = touch(&dir.path().join("d/t3.txt"), "3");
    // Created in the order t2, t3, t1; newest by time is t3.
    backup(&repo, &["--time", "2026-02-01T00:00:00Z"], &[&f2]);
    let newest = backup_id(&repo, &["--time", "2026-03-01T00:00:00Z"], &[&f3]);
    backup(&repo, &["--time", "2026-01-01T00:00:00Z"], &[&f1]);

    let lines = ls(&repo, "latest", &[]);
    assert!(lines.contains(&s(&f3).to_string()), "{lines:?}");
    assert!(
        !lines.contains(&s(&f1).to_string()) && !lines.contains(&s(&f2).to_string()),
        "{lines:?}"
    );
    assert_eq!(lines, ls(&repo, &newest, &[]));

    let target = dir.path().join("restored");
    ok(run(sv()
        .args(["restore", "--repo"])
        .arg(&repo)
        .args(["latest", "--target"])
        .arg(&target)));
    assert!(crate::common::restored_path(&target, &f3).is_file());
    assert!(!crate::common::restored_path(&target, &f1).exists());
}

#[test]
fn latest_honours_label_and_host() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault(&repo);
    let a1 = touch(&dir.path().join("d/a1.txt"), "a1");
    let a2 = touch(&dir.path().join("d/a2.txt"), "a2");
    let b1 = touch(&dir.path().join("d/b1.txt"), "b1");
    let b2 = touch(&dir.path().join("d/b2.txt"), "b2");
    backup(
        &repo,
        &[
            "--label",
            "A",
            "--host",
            "h1",
            "--time",
            "2026-01-01T00:00:00Z",
        ],
        &[&a1],
    );
    backup(
        &repo,
        &[
            "--label",
            "A",
            "--host",
            "h2",
            "--time",
            "2026-01-04T00:00:00Z",
        ],
        &[&a2],
    );
    backup(
        &repo,
        &[
            "--label",
            "B",
            "--host",
            "h1",
            "--time",
            "2026-01-03T00:00:00Z",
        ],
        &[&b1],
    );
    backup(
        &repo,
        &[
            "--label",
            "B",
            "--host",
            "h2",
            "--time",
            "2026-01-02T00:00:00Z",
        ],
        &[&b2],
    );

    let latest_file = |extra: &[&str]| -> PathBuf {
        let lines = ls(&repo, "latest", extra);
        let hits: Vec<&PathBuf> = [&a1, &a2, &b1, &b2]
            .into_iter()
            .filter(|f| lines.contains(&s(f).to_string()))
            .collect();
        assert_eq!(hits.len(), 1, "one of the files per snapshot: {lines:?}");
        hits[0].clone()
    };
    assert_eq!(latest_file(&[]), a2);
    assert_eq!(latest_file(&["--label", "A"]), a2);
    assert_eq!(latest_file(&["--label", "B"]), b1);
    assert_eq!(latest_file(&["--host", "h1"]), b1);
    assert_eq!(latest_file(&["--host", "h2"]), a2);
    assert_eq!(latest_file(&["--label", "A", "--host", "h1"]), a1);
    assert_eq!(latest_file(&["--label", "B", "--host", "h2"]), b2);

    let out = run(sv()
        .args(["ls", "--repo"])
        .arg(&repo)
        .args(["latest", "--label", "C"]));
    assert_error(&out, &["latest"]);

    let target = dir.path().join("restored");
    ok(run(sv()
        .args(["restore", "--repo"])
        .arg(&repo)
        .args(["latest", "--label", "B", "--target"])
        .arg(&target)));
    assert!(crate::common::restored_path(&target, &b1).is_file());
    assert!(!crate::common::restored_path(&target, &a2).exists());
}

#[test]
fn ls_accepts_full_id_unique_prefix_and_latest() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault(&repo);
    let f1 = touch(&dir.path().join("d/one.txt"), "1");
    let f2 = touch(&dir.path().join("d/two.txt"), "2");
    let other = backup_id(&repo, &["--time", "2026-01-01T00:00:00Z"], &[&f1]);
    let id = backup_id(&repo, &["--time", "2026-01-02T00:00:00Z"], &[&f2]);
    // The shortest prefix of at least 4 digits that only `id` has (4 unless they collide).
    let n = (4..=64).find(|&n| id[..n] != other[..n]).unwrap();

    let want = ls(&repo, "latest", &[]);
    assert!(want.contains(&s(&f2).to_string()), "{want:?}");
    for reference in [
        id.clone(),
        id[..n].to_string(),
        id[..n + 2].to_string(),
        id[..32].to_string(),
    ] {
        assert_eq!(ls(&repo, &reference, &[]), want, "ls {reference}");
    }
    let first = ls(&repo, &other, &[]);
    assert!(
        first.contains(&s(&f1).to_string()) && !first.contains(&s(&f2).to_string()),
        "{first:?}"
    );
}

#[test]
fn prefix_under_4_digits_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault(&repo);
    let f = touch(&dir.path().join("f.txt"), "x");
    let id = backup_id(&repo, &[], &[&f]);
    for reference in [&id[..3], &id[..1], "xyzw"] {
        let out = run(sv().args(["ls", "--repo"]).arg(&repo).arg(reference));
        assert_error(&out, &[reference, "4"]);
        let target = dir.path().join("t");
        let out = run(sv()
            .args(["restore", "--repo"])
            .arg(&repo)
            .arg(reference)
            .arg("--target")
            .arg(&target));
        assert_error(&out, &[reference]);
        assert!(!target.exists());
    }
}

#[test]
fn repository_from_sitevault_repository() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    let f = touch(&dir.path().join("d/f.txt"), "from env");
    let with_env = || {
        let mut c = sv();
        c.env("SITEVAULT_REPOSITORY", &repo);
        c
    };
    ok(run(with_env().args([
        "init",
        "--kdf-memory-kib",
        "1024",
        "--kdf-iterations",
        "1",
    ])));
    assert!(
        repo.join("config").is_file(),
        "init used SITEVAULT_REPOSITORY"
    );
    let b = json(
        &ok(run(with_env()
            .args(["backup", "--json", "--label", "env"])
            .arg(&f)))
        .stdout,
    );
    let listed = json(&ok(run(with_env().args(["snapshots", "--json"]))).stdout);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], b["id"]);
    let lines = ok(run(with_env().args(["ls", "latest"]))).stdout;
    assert!(lines.lines().any(|l| l == s(&f)), "{lines}");
    let target = dir.path().join("restored");
    ok(run(with_env()
        .args(["restore", "latest", "--target"])
        .arg(&target)));
    assert_eq!(
        fs::read_to_string(crate::common::restored_path(&target, &f)).unwrap(),
        "from env"
    );

    // --repo wins over the variable.
    let elsewhere = dir.path().join("not-a-vault");
    let out = ok(run(sv()
        .env("SITEVAULT_REPOSITORY", &elsewhere)
        .args(["snapshots", "--json", "--repo"])
        .arg(&repo)));
    assert_eq!(json(&out.stdout).as_array().unwrap().len(), 1);
    let out = run(sv()
        .env("SITEVAULT_REPOSITORY", &elsewhere)
        .args(["snapshots"]));
    assert_error(&out, &[s(&elsewhere)]);
}

#[test]
fn password_file_flag_and_variable() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    let right = dir.path().join("right.txt");
    let right_crlf = dir.path().join("right-crlf.txt");
    let wrong = dir.path().join("wrong.txt");
    fs::write(&right, format!("{PASSWORD}\n")).unwrap();
    fs::write(&right_crlf, format!("{PASSWORD}\r\nignored second line\n")).unwrap();
    fs::write(&wrong, "not the password\n").unwrap();

    // init from a password file alone; the same password then works from SITEVAULT_PASSWORD.
    ok(run(sv()
        .env_remove("SITEVAULT_PASSWORD")
        .args([
            "init",
            "--kdf-memory-kib",
            "1024",
            "--kdf-iterations",
            "1",
            "--repo",
        ])
        .arg(&repo)
        .arg("--password-file")
        .arg(&right)));
    ok(run(sv().args(["snapshots", "--repo"]).arg(&repo)));

    let snapshots_with =
        |file_flag: Option<&Path>, file_env: Option<&Path>, pw_env: Option<&str>| {
            let mut c = sv();
            c.args(["snapshots", "--repo"]).arg(&repo);
            match pw_env {
                Some(p) => c.env("SITEVAULT_PASSWORD", p),
                None => c.env_remove("SITEVAULT_PASSWORD"),
            };
            if let Some(f) = file_flag {
                c.arg("--password-file").arg(f);
            }
            if let Some(f) = file_env {
                c.env("SITEVAULT_PASSWORD_FILE", f);
            }
            run(&mut c)
        };
    // Each source alone.
    ok(snapshots_with(Some(&right), None, None));
    ok(snapshots_with(Some(&right_crlf), None, None));
    ok(snapshots_with(None, Some(&right), None));
    // A password file (flag or variable) takes precedence over SITEVAULT_PASSWORD ...
    ok(snapshots_with(Some(&right), None, Some("not the password")));
    ok(snapshots_with(None, Some(&right), Some("not the password")));
    // ... even when it is the wrong one: there is no fallback.
    assert_error(
        &snapshots_with(Some(&wrong), None, Some(PASSWORD)),
        &["wrong password"],
    );
    assert_error(
        &snapshots_with(None, Some(&wrong), Some(PASSWORD)),
        &["wrong password"],
    );
    // --password-file wins over SITEVAULT_PASSWORD_FILE.
    ok(snapshots_with(Some(&right), Some(&wrong), None));
    assert_error(
        &snapshots_with(Some(&wrong), Some(&right), None),
        &["wrong password"],
    );
    // A password file that cannot be read is named.
    let missing = dir.path().join("missing.txt");
    assert_error(
        &snapshots_with(Some(&missing), None, Some(PASSWORD)),
        &[s(&missing)],
    );
}

#[test]
fn snapshots_filter_by_label_and_host() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault(&repo);
    let f = touch(&dir.path().join("f.txt"), "x");
    let a_h1 = backup_id(&repo, &["--label", "A", "--host", "h1"], &[&f]);
    let a_h2 = backup_id(&repo, &["--label", "A", "--host", "h2"], &[&f]);
    let b_h1 = backup_id(&repo, &["--label", "B", "--host", "h1"], &[&f]);
    let set = |v: &[&String]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();

    assert_eq!(ids(&snapshots(&repo, &[])), set(&[&a_h1, &a_h2, &b_h1]));
    assert_eq!(
        ids(&snapshots(&repo, &["--label", "A"])),
        set(&[&a_h1, &a_h2])
    );
    assert_eq!(ids(&snapshots(&repo, &["--label", "B"])), set(&[&b_h1]));
    assert_eq!(
        ids(&snapshots(&repo, &["--host", "h1"])),
        set(&[&a_h1, &b_h1])
    );
    assert_eq!(
        ids(&snapshots(&repo, &["--label", "A", "--host", "h2"])),
        set(&[&a_h2])
    );
    assert!(
        snapshots(&repo, &["--label", "C"]).is_empty(),
        "no match is an empty array, not an error"
    );
    for v in snapshots(&repo, &["--label", "A"]) {
        assert_eq!(v["label"], "A");
    }
    // The table form filters too.
    let out = ok(run(sv()
        .args(["snapshots", "--label", "B", "--repo"])
        .arg(&repo)));
    assert!(
        out.stdout.contains(&b_h1[..8]) && !out.stdout.contains(&a_h1[..8]),
        "{}",
        out.stdout
    );
}

#[test]
fn ls_prints_original_absolute_paths_with_their_parents() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault(&repo);
    let root = dir.path();
    touch(&root.join("data/a.txt"), "a");
    touch(&root.join("data/sub/b.txt"), "b");
    touch(&root.join("data/sub/deeper/c.txt"), "c");
    let x = touch(&root.join("other/x.txt"), "x");
    touch(&root.join("other/not-given.txt"), "n");
    let data = root.join("data");
    let b = backup(&repo, &[], &[&data, &x]);
    let snaps = snapshots(&repo, &[]);
    assert_eq!(snaps.len(), 1, "one snapshot holds every path");
    assert_eq!(snaps[0]["paths"], serde_json::json!([s(&data), s(&x)]));
    assert_eq!(snaps[0]["id"], b["id"]);

    let lines = ls(&repo, "latest", &[]);
    let mut want: BTreeSet<String> = root
        .ancestors()
        .filter(|p| *p != Path::new("/"))
        .map(|p| s(p).to_string())
        .collect();
    for rel in [
        "data",
        "data/a.txt",
        "data/sub",
        "data/sub/b.txt",
        "data/sub/deeper",
        "data/sub/deeper/c.txt",
        "other",
        "other/x.txt",
    ] {
        want.insert(s(&root.join(rel)).to_string());
    }
    let got: BTreeSet<String> = lines.iter().cloned().collect();
    assert_eq!(got.len(), lines.len(), "each entry once: {lines:?}");
    assert_eq!(got, want);
    // Parents come before their children.
    for (i, l) in lines.iter().enumerate() {
        let parent = s(Path::new(l).parent().unwrap()).to_string();
        if parent != "/" {
            assert!(
                lines[..i].contains(&parent),
                "{l} is listed before its parent {parent}"
            );
        }
    }
}

#[test]
fn ls_json_is_valid_json_with_one_element_per_entry() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault(&repo);
    touch(&dir.path().join("data/a.txt"), "a");
    touch(&dir.path().join("data/sub/b.txt"), "bb");
    std::os::unix::fs::symlink("a.txt", dir.path().join("data/link")).unwrap();
    backup(&repo, &[], &[&dir.path().join("data")]);

    let lines = ls(&repo, "latest", &[]);
    let out = ok(run(sv()
        .args(["ls", "--json", "--repo"])
        .arg(&repo)
        .arg("latest")));
    let v = json(&out.stdout);
    let arr = v.as_array().expect("ls --json prints an array");
    assert_eq!(arr.len(), lines.len(), "one element per entry");
    for (e, line) in arr.iter().zip(&lines) {
        let obj = e.as_object().expect("each entry is an object");
        assert!(
            obj.values().any(|x| x == line.as_str()),
            "entry {e} does not hold its path {line}"
        );
    }
}

#[test]
fn backup_json_matches_snapshots_json() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault(&repo);
    let f = touch(&dir.path().join("d/f.txt"), "x");
    let b = backup(
        &repo,
        &[
            "--label",
            "L",
            "--tag",
            "t",
            "--host",
            "H",
            "--time",
            "2026-05-05T05:05:05Z",
        ],
        &[&f],
    );
    assert!(is_full_id(b["id"].as_str().expect("id")), "{b}");
    let snaps = snapshots(&repo, &[]);
    assert_eq!(snaps.len(), 1);
    for key in ["id", "time", "host", "label", "tags", "paths", "complete"] {
        assert_eq!(
            b[key], snaps[0][key],
            "{key} differs between backup --json and snapshots --json"
        );
    }
}

/// The shipped AfterBackup.bat: CRLF line endings (cmd.exe mis-parses labels and `goto` in LF
/// files), one afterbackup call with --config, and the exit code passed on to Configuration
/// Manager. `.gitattributes` keeps the CRLF through git on every platform.
#[test]
fn the_example_afterbackup_bat_keeps_crlf_and_calls_afterbackup() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/AfterBackup.bat");
    let bytes = fs::read(&path).expect("examples/AfterBackup.bat exists");
    let lf = bytes.iter().filter(|b| **b == b'\n').count();
    let crlf = bytes.windows(2).filter(|w| w == b"\r\n").count();
    assert!(lf > 5, "the batch file has lines");
    assert_eq!(lf, crlf, "every line of AfterBackup.bat ends in CRLF");
    let text = String::from_utf8(bytes).expect("ASCII batch file");
    assert!(text.contains("afterbackup --config"), "{text}");
    assert!(text.contains("exit /b %RESULT%"), "{text}");
    let attrs = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".gitattributes"))
        .expect(".gitattributes exists");
    assert!(attrs.contains("*.bat text eol=crlf"), "{attrs}");
}

/// `afterbackup` is a subcommand with exactly the flags the issue pins.
#[test]
fn afterbackup_help_lists_its_flags() {
    let o = ok(run(sv().args(["afterbackup", "--help"])));
    for flag in ["--config", "--dry-run", "--json"] {
        assert!(o.stdout.contains(flag), "{flag} in:\n{}", o.stdout);
    }
}
