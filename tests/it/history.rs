//! `sitevault diff` and `sitevault find` end to end over a generated four-night history of one
//! source folder: exact change lines, JSON summaries that agree with them, snapshot references
//! (`latest`, short prefixes), a file's history across snapshots, host filters, and errors.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::common::{Out, init_vault, random_bytes, run, sv};

const HOST: &str = "web01";

/// A vault holding four nightly snapshots of `src` (canonical absolute path).
struct History {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    /// The source folder as it appears in snapshots.
    src: PathBuf,
    /// Snapshot ids, night 1 first.
    ids: Vec<String>,
    /// Size of `scup/User1/Scupdb.sdf` in each night's snapshot.
    sdf_sizes: Vec<u64>,
    /// Sizes of files removed/added between nights, for byte checks.
    x_log_size: u64,
    n_txt_size: u64,
    a_txt_size: u64,
    inner_size: u64,
}

fn show(o: &Out) -> String {
    format!(
        "exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.code, o.stdout, o.stderr
    )
}

fn backup(repo: &Path, src: &Path, night: u32) -> String {
    let o = run(sv()
        .args(["backup", "--json", "--host", HOST, "--time"])
        .arg(format!("2026-01-0{night}T03:00:00Z"))
        .arg("--repo")
        .arg(repo)
        .arg(src));
    assert_eq!(o.code, 0, "backup night {night} failed:\n{}", show(&o));
    let v: Value = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("backup --json is not JSON ({e}):\n{}", show(&o)));
    let id = v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("backup --json has no id:\n{}", show(&o)))
        .to_string();
    assert_eq!(id.len(), 64, "snapshot id is 64 hex:\n{}", show(&o));
    id
}

fn set_mtime(path: &Path, secs: u64) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

fn history() -> History {
    let dir = tempfile::tempdir().unwrap();
    let base = fs::canonicalize(dir.path()).unwrap();
    let repo = base.join("vault");
    init_vault(&repo);
    let src = base.join("src");
    let mut ids = Vec::new();
    let mut sdf_sizes = Vec::new();
    let sdf = src.join("scup/User1/Scupdb.sdf");

    // Night 1: the initial site.
    fs::create_dir_all(src.join("logs")).unwrap();
    fs::create_dir_all(src.join("scup/User1")).unwrap();
    let a_txt = b"site=CEN\nrole=primary\n".to_vec();
    fs::write(src.join("a.txt"), &a_txt).unwrap();
    fs::write(src.join("b.bin"), random_bytes(1, 50_000)).unwrap();
    let x_log = b"2026-01-01 backup started\n2026-01-01 backup done\n".to_vec();
    fs::write(src.join("logs/x.log"), &x_log).unwrap();
    fs::write(&sdf, random_bytes(10, 20_000)).unwrap();
    set_mtime(&src.join("a.txt"), 1_767_000_000);
    set_mtime(&src.join("b.bin"), 1_767_000_000);
    set_mtime(&sdf, 1_767_000_000);
    ids.push(backup(&repo, &src, 1));
    sdf_sizes.push(20_000);

    // Night 2: b.bin gets new content (same size), new/deep/n.txt appears, logs/x.log goes.
    fs::write(src.join("b.bin"), random_bytes(2, 50_000)).unwrap();
    set_mtime(&src.join("b.bin"), 1_767_100_000);
    fs::create_dir_all(src.join("new/deep")).unwrap();
    let n_txt = b"new in night two\n".to_vec();
    fs::write(src.join("new/deep/n.txt"), &n_txt).unwrap();
    fs::remove_file(src.join("logs/x.log")).unwrap();
    ids.push(backup(&repo, &src, 2));
    sdf_sizes.push(20_000);

    // Night 3: a.txt rewritten with the same bytes and a new mtime; nothing else.
    let same = fs::read(src.join("a.txt")).unwrap();
    fs::write(src.join("a.txt"), &same).unwrap();
    set_mtime(&src.join("a.txt"), 1_767_200_000);
    ids.push(backup(&repo, &src, 3));
    sdf_sizes.push(20_000);

    // Night 4: the file a.txt becomes a directory a.txt/ with one file; Scupdb.sdf grows.
    fs::remove_file(src.join("a.txt")).unwrap();
    fs::create_dir(src.join("a.txt")).unwrap();
    let inner = b"now a directory\n".to_vec();
    fs::write(src.join("a.txt/inner"), &inner).unwrap();
    let mut grown = fs::read(&sdf).unwrap();
    grown.extend_from_slice(&random_bytes(11, 15_000));
    fs::write(&sdf, &grown).unwrap();
    set_mtime(&sdf, 1_767_300_000);
    ids.push(backup(&repo, &src, 4));
    sdf_sizes.push(35_000);

    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 4, "four distinct snapshots: {ids:?}");
    History {
        _dir: dir,
        repo,
        src,
        ids,
        sdf_sizes,
        x_log_size: x_log.len() as u64,
        n_txt_size: n_txt.len() as u64,
        a_txt_size: a_txt.len() as u64,
        inner_size: inner.len() as u64,
    }
}

impl History {
    /// `<src>/<rel>` as a display string.
    fn p(&self, rel: &str) -> String {
        format!("{}/{}", self.src.display(), rel)
    }

    fn diff(&self, a: &str, b: &str, extra: &[&str]) -> Out {
        run(sv()
            .args(["diff", "--repo"])
            .arg(&self.repo)
            .args(extra)
            .args([a, b]))
    }

    fn find(&self, pattern: &str, extra: &[&str]) -> Out {
        run(sv()
            .args(["find", "--repo"])
            .arg(&self.repo)
            .args(extra)
            .arg(pattern))
    }

    /// Text diff that must succeed: (change lines, summary line).
    fn diff_text(&self, a: &str, b: &str) -> (Vec<String>, String, Out) {
        let o = self.diff(a, b, &[]);
        assert_eq!(o.code, 0, "diff {a} {b} failed:\n{}", show(&o));
        let mut lines: Vec<String> = o.stdout.lines().map(str::to_string).collect();
        let summary = lines
            .pop()
            .unwrap_or_else(|| panic!("diff {a} {b} printed nothing:\n{}", show(&o)));
        (lines, summary, o)
    }

    fn diff_json(&self, a: &str, b: &str) -> (Value, Out) {
        let o = self.diff(a, b, &["--json"]);
        assert_eq!(o.code, 0, "diff --json {a} {b} failed:\n{}", show(&o));
        let v: Value = serde_json::from_str(&o.stdout)
            .unwrap_or_else(|e| panic!("diff --json is not JSON ({e}):\n{}", show(&o)));
        (v, o)
    }

    fn find_json(&self, pattern: &str, extra: &[&str]) -> (Vec<Value>, Out) {
        let mut args = vec!["--json"];
        args.extend_from_slice(extra);
        let o = self.find(pattern, &args);
        assert_eq!(o.code, 0, "find --json {pattern} failed:\n{}", show(&o));
        let v: Value = serde_json::from_str(&o.stdout)
            .unwrap_or_else(|e| panic!("find --json is not JSON ({e}):\n{}", show(&o)));
        let arr = v
            .as_array()
            .unwrap_or_else(|| panic!("find --json is not an array:\n{}", show(&o)))
            .clone();
        (arr, o)
    }
}

/// The summary numbers as printed: "A added, R removed, M modified, K with only new metadata".
fn summary_counts(summary: &str) -> [u64; 4] {
    let grab = |word: &str| -> u64 {
        let end = summary
            .find(word)
            .unwrap_or_else(|| panic!("summary has no {word:?}: {summary}"));
        let before = summary[..end].trim_end();
        let start = before
            .rfind(|c: char| !c.is_ascii_digit())
            .map_or(0, |i| i + 1);
        before[start..]
            .parse()
            .unwrap_or_else(|e| panic!("no number before {word:?} ({e}): {summary}"))
    };
    [
        grab(" added"),
        grab(" removed"),
        grab(" modified"),
        grab(" with only new metadata"),
    ]
}

/// Checks shared by every diff: the summary line names both snapshots, its counts match the
/// change lines, and the JSON form agrees with the text form line for line.
fn check_consistent(h: &History, a: &str, b: &str, id_a: &str, id_b: &str) -> (Vec<String>, Value) {
    let (lines, summary, o) = h.diff_text(a, b);
    let ctx = show(&o);
    assert!(
        summary.starts_with(&format!("{} (", &id_a[..8]))
            && summary.contains(&format!(") -> {} (", &id_b[..8])),
        "summary line names {} -> {}: {summary}\n{ctx}",
        &id_a[..8],
        &id_b[..8]
    );
    let count = |mark: &str| lines.iter().filter(|l| l.starts_with(mark)).count() as u64;
    let (plus, minus, m) = (count("+ "), count("- "), count("M "));
    assert_eq!(
        plus + minus + m,
        lines.len() as u64,
        "every change line starts with '+ ', '- ' or 'M ':\n{ctx}"
    );
    let [added, removed, modified, meta] = summary_counts(&summary);
    assert_eq!(
        (added, removed, modified),
        (plus, minus, m),
        "text summary counts vs change lines:\n{ctx}"
    );

    let (v, jo) = h.diff_json(a, b);
    let jctx = format!("{}\n(text form:)\n{ctx}", show(&jo));
    assert_eq!(v["snapshot1"], id_a, "snapshot1:\n{jctx}");
    assert_eq!(v["snapshot2"], id_b, "snapshot2:\n{jctx}");
    let changes = v["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("changes is an array:\n{jctx}"));
    let s = &v["summary"];
    let jcount = |c: &str| changes.iter().filter(|x| x["change"] == c).count() as u64;
    assert_eq!(
        (
            s["added"].as_u64(),
            s["removed"].as_u64(),
            s["modified"].as_u64(),
            s["metadata_only"].as_u64()
        ),
        (Some(added), Some(removed), Some(modified), Some(meta)),
        "JSON summary vs text summary:\n{jctx}"
    );
    assert_eq!(
        (jcount("added"), jcount("removed"), jcount("modified")),
        (plus, minus, m),
        "JSON summary counts vs JSON change entries:\n{jctx}"
    );
    assert!(
        s["bytes_added"].is_u64() && s["bytes_removed"].is_u64(),
        "byte counts present:\n{jctx}"
    );
    // The JSON changes say the same as the text lines, in the same order.
    let from_json: Vec<String> = changes
        .iter()
        .map(|c| {
            let mark = match c["change"].as_str() {
                Some("added") => "+",
                Some("removed") => "-",
                Some("modified") => "M",
                other => panic!("unknown change {other:?}:\n{jctx}"),
            };
            let path = c["path"].as_str().expect("path is a string");
            let slash = if c["type"] == "dir" && !path.ends_with('/') {
                "/"
            } else {
                ""
            };
            format!("{mark} {path}{slash}")
        })
        .collect();
    assert_eq!(from_json, lines, "JSON changes vs text lines:\n{jctx}");
    (lines, v)
}

fn change<'a>(v: &'a Value, mark: &str, path: &str, kind: &str) -> &'a Value {
    v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["change"] == mark && c["path"] == path && c["type"] == kind)
        .unwrap_or_else(|| panic!("no {mark} {kind} change for {path} in {v:#}"))
}

#[test]
fn diff_across_four_nights() {
    let h = history();
    let id = &h.ids;

    // 1 -> 2: b.bin modified, new/ added with everything below it, logs/x.log removed.
    let (lines, v) = check_consistent(&h, &id[0], &id[1], &id[0], &id[1]);
    let want = vec![
        format!("M {}", h.p("b.bin")),
        format!("- {}", h.p("logs/x.log")),
        format!("+ {}", h.p("new/")),
        format!("+ {}", h.p("new/deep/")),
        format!("+ {}", h.p("new/deep/n.txt")),
    ];
    assert_eq!(
        lines.iter().collect::<BTreeSet<_>>(),
        want.iter().collect::<BTreeSet<_>>(),
        "diff night1 night2 change lines:\n{v:#}"
    );
    assert_eq!(
        lines, want,
        "diff night1 night2 lines in path order:\n{v:#}"
    );
    assert_eq!(
        v["summary"]["metadata_only"], 0,
        "1->2 metadata_only:\n{v:#}"
    );
    let b = change(&v, "modified", &h.p("b.bin"), "file");
    assert_eq!(
        (b["size_before"].as_u64(), b["size_after"].as_u64()),
        (Some(50_000), Some(50_000)),
        "b.bin sizes:\n{v:#}"
    );
    let x = change(&v, "removed", &h.p("logs/x.log"), "file");
    assert_eq!(
        x["size_before"].as_u64(),
        Some(h.x_log_size),
        "x.log size:\n{v:#}"
    );
    let n = change(&v, "added", &h.p("new/deep/n.txt"), "file");
    assert_eq!(
        n["size_after"].as_u64(),
        Some(h.n_txt_size),
        "n.txt size:\n{v:#}"
    );
    change(&v, "added", &h.p("new"), "dir");
    change(&v, "added", &h.p("new/deep"), "dir");
    assert!(
        v["summary"]["bytes_added"].as_u64().unwrap() >= h.n_txt_size
            && v["summary"]["bytes_removed"].as_u64().unwrap() >= h.x_log_size,
        "1->2 byte counts cover the added and removed files:\n{v:#}"
    );

    // 2 -> 3: only a.txt's mtime changed: no lines, one file with only new metadata.
    let (lines, v) = check_consistent(&h, &id[1], &id[2], &id[1], &id[2]);
    let (_, summary, o) = h.diff_text(&id[1], &id[2]);
    assert!(
        lines.is_empty(),
        "diff night2 night3 lists nothing:\n{}",
        show(&o)
    );
    assert!(
        summary.contains("0 added, 0 removed, 0 modified, 1 with only new metadata"),
        "2->3 summary:\n{}",
        show(&o)
    );
    assert_eq!(v["summary"]["metadata_only"], 1, "2->3 JSON:\n{v:#}");
    assert_eq!(
        (
            v["summary"]["bytes_added"].as_u64(),
            v["summary"]["bytes_removed"].as_u64()
        ),
        (Some(0), Some(0)),
        "2->3 moves no bytes:\n{v:#}"
    );

    // 3 -> 4: the file a.txt becomes a directory (removed, then added with its content), and
    // Scupdb.sdf grew.
    let (lines, v) = check_consistent(&h, &id[2], &id[3], &id[2], &id[3]);
    let sdf = h.p("scup/User1/Scupdb.sdf");
    let want = vec![
        format!("- {}", h.p("a.txt")),
        format!("+ {}", h.p("a.txt/")),
        format!("+ {}", h.p("a.txt/inner")),
        format!("M {sdf}"),
    ];
    assert_eq!(
        lines.iter().collect::<BTreeSet<_>>(),
        want.iter().collect::<BTreeSet<_>>(),
        "diff night3 night4 change lines:\n{v:#}"
    );
    assert_eq!(lines, want, "diff night3 night4 lines in order:\n{v:#}");
    let a = change(&v, "removed", &h.p("a.txt"), "file");
    assert_eq!(
        a["size_before"].as_u64(),
        Some(h.a_txt_size),
        "a.txt size:\n{v:#}"
    );
    change(&v, "added", &h.p("a.txt"), "dir");
    let inner = change(&v, "added", &h.p("a.txt/inner"), "file");
    assert_eq!(
        inner["size_after"].as_u64(),
        Some(h.inner_size),
        "inner size:\n{v:#}"
    );
    let s = change(&v, "modified", &sdf, "file");
    assert_eq!(
        (s["size_before"].as_u64(), s["size_after"].as_u64()),
        (Some(h.sdf_sizes[2]), Some(h.sdf_sizes[3])),
        "Scupdb.sdf sizes:\n{v:#}"
    );
    assert_eq!(
        v["summary"]["metadata_only"], 0,
        "3->4 metadata_only:\n{v:#}"
    );

    // A snapshot against itself: nothing.
    for x in id {
        let (lines, summary, o) = h.diff_text(x, x);
        assert!(
            lines.is_empty(),
            "diff {x} {x} lists nothing:\n{}",
            show(&o)
        );
        assert!(
            summary.contains("0 added, 0 removed, 0 modified, 0 with only new metadata"),
            "diff {x} {x} summary:\n{}",
            show(&o)
        );
        let (v, o) = h.diff_json(x, x);
        assert_eq!(
            v["changes"].as_array().map(Vec::len),
            Some(0),
            "diff --json {x} {x}:\n{}",
            show(&o)
        );
    }

    // `latest` and short prefixes name the same snapshots as full ids.
    let (full_lines, full_json) = check_consistent(&h, &id[2], &id[3], &id[2], &id[3]);
    let (l, j) = check_consistent(&h, &id[2][..8], "latest", &id[2], &id[3]);
    assert_eq!(l, full_lines, "prefix/latest text vs full ids");
    assert_eq!(j, full_json, "prefix/latest JSON vs full ids");
    // The shortest unique prefix of at least 4 hex digits of night 1's id.
    let short = (4..=64)
        .map(|n| &id[0][..n])
        .find(|p| id.iter().filter(|x| x.starts_with(p)).count() == 1)
        .unwrap();
    let upper = id[1][..10].to_ascii_uppercase();
    let (l, j) = check_consistent(&h, short, &upper, &id[0], &id[1]);
    let (full_lines, full_json) = check_consistent(&h, &id[0], &id[1], &id[0], &id[1]);
    assert_eq!(l, full_lines, "prefix {short} / {upper} text vs full ids");
    assert_eq!(j, full_json, "prefix {short} / {upper} JSON vs full ids");
    // `latest` on both sides, and under a host filter that holds it.
    let (l, _) = check_consistent(&h, "latest", "latest", &id[3], &id[3]);
    assert!(l.is_empty(), "diff latest latest: {l:?}");
    let o = h.diff("latest", &id[0], &["--json", "--host", HOST]);
    assert_eq!(o.code, 0, "diff --host {HOST} latest ..:\n{}", show(&o));
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(
        v["snapshot1"],
        id[3].as_str(),
        "latest under --host:\n{}",
        show(&o)
    );
    // Backwards (4 -> 1) is the mirror image: what was added is now removed.
    let (l, v) = check_consistent(&h, &id[3], &id[0], &id[3], &id[0]);
    assert!(
        l.contains(&format!("- {}", h.p("new/deep/n.txt")))
            && l.contains(&format!("+ {}", h.p("logs/x.log")))
            && l.contains(&format!("M {}", h.p("b.bin")))
            && l.contains(&format!("M {sdf}")),
        "diff night4 night1: {l:#?}\n{v:#}"
    );
}

#[test]
fn find_a_path_across_snapshots() {
    let h = history();
    let id = &h.ids;
    let sdf = h.p("scup/User1/Scupdb.sdf");

    // A name matches at any depth: one hit per snapshot, oldest first, with that night's size.
    let (hits, o) = h.find_json("Scupdb.sdf", &[]);
    let ctx = show(&o);
    assert_eq!(hits.len(), 4, "Scupdb.sdf in every snapshot:\n{ctx}");
    for (i, hit) in hits.iter().enumerate() {
        assert_eq!(hit["snapshot"], id[i].as_str(), "hit {i} snapshot:\n{ctx}");
        assert_eq!(hit["path"], sdf.as_str(), "hit {i} path:\n{ctx}");
        assert_eq!(hit["type"], "file", "hit {i} type:\n{ctx}");
        assert_eq!(
            hit["size"].as_u64(),
            Some(h.sdf_sizes[i]),
            "hit {i} size:\n{ctx}"
        );
        assert_eq!(hit["host"], HOST, "hit {i} host:\n{ctx}");
        assert!(hit["label"].is_string(), "hit {i} label:\n{ctx}");
        assert!(hit["mtime"].is_string(), "hit {i} mtime:\n{ctx}");
        let t: jiff::Timestamp = hit["time"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("hit {i} time is a timestamp:\n{ctx}"));
        let want: jiff::Timestamp = format!("2026-01-0{}T03:00:00Z", i + 1).parse().unwrap();
        assert_eq!(t, want, "hit {i} time:\n{ctx}");
    }
    let mtimes: Vec<jiff::Timestamp> = hits
        .iter()
        .map(|x| x["mtime"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        mtimes[3],
        jiff::Timestamp::from_second(1_767_300_000).unwrap(),
        "night 4 mtime of the grown file:\n{ctx}"
    );
    assert_eq!(
        mtimes[0],
        jiff::Timestamp::from_second(1_767_000_000).unwrap(),
        "night 1 mtime:\n{ctx}"
    );

    // Names with a wildcard: the log only existed on night 1 (the `logs` folder is no match).
    let (hits, o) = h.find_json("*.log", &[]);
    let got: Vec<(&str, &str)> = hits
        .iter()
        .map(|x| (x["snapshot"].as_str().unwrap(), x["path"].as_str().unwrap()))
        .collect();
    let x_log = h.p("logs/x.log");
    assert_eq!(
        got,
        vec![(id[0].as_str(), x_log.as_str())],
        "*.log only in night 1:\n{}",
        show(&o)
    );

    // A path pattern: new/** exists from night 2 on.
    let pat = format!("{}/new/**", h.src.display());
    let (hits, o) = h.find_json(&pat, &[]);
    let ctx = show(&o);
    assert!(!hits.is_empty(), "{pat} matches:\n{ctx}");
    let snaps: Vec<&str> = hits
        .iter()
        .map(|x| x["snapshot"].as_str().unwrap())
        .collect();
    let mut dedup = snaps.clone();
    dedup.dedup();
    assert_eq!(
        dedup,
        vec![id[1].as_str(), id[2].as_str(), id[3].as_str()],
        "{pat} hits nights 2-4 only, oldest first:\n{ctx}"
    );
    let n_txt = h.p("new/deep/n.txt");
    let deep = h.p("new/deep");
    for (night, night_id) in id.iter().enumerate().skip(1) {
        let paths: Vec<&str> = hits
            .iter()
            .filter(|x| x["snapshot"] == night_id.as_str())
            .map(|x| x["path"].as_str().unwrap())
            .collect();
        assert!(
            paths.contains(&n_txt.as_str()) && paths.contains(&deep.as_str()),
            "night {} holds new/deep and new/deep/n.txt:\n{ctx}",
            night + 1
        );
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(
            paths,
            sorted,
            "path order within night {}:\n{ctx}",
            night + 1
        );
        assert!(
            paths.iter().all(|p| p.starts_with(&h.p("new/"))),
            "only paths below new/:\n{ctx}"
        );
    }
    // `*` stays within one component: new/* is new/deep only, not new/deep/n.txt.
    let pat1 = format!("{}/new/*", h.src.display());
    let (hits, o) = h.find_json(&pat1, &[]);
    let paths: BTreeSet<&str> = hits.iter().map(|x| x["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        BTreeSet::from([deep.as_str()]),
        "{pat1}:\n{}",
        show(&o)
    );
    assert_eq!(
        hits.len(),
        3,
        "{pat1} once in each of nights 2-4:\n{}",
        show(&o)
    );

    // Host filters: a host with no snapshots finds nothing; ours finds everything.
    let (hits, o) = h.find_json("Scupdb.sdf", &["--host", "other"]);
    assert!(hits.is_empty(), "--host other finds nothing:\n{}", show(&o));
    let o = h.find("Scupdb.sdf", &["--host", "other"]);
    assert_eq!(o.code, 0, "find --host other exits 0:\n{}", show(&o));
    assert!(
        o.stdout.contains("no path matching"),
        "find --host other says so:\n{}",
        show(&o)
    );
    let (hits, o) = h.find_json("Scupdb.sdf", &["--host", HOST]);
    assert_eq!(hits.len(), 4, "--host {HOST}:\n{}", show(&o));

    // Text form: a header, one line per hit with the short id and path, then the tally.
    let o = h.find("Scupdb.sdf", &[]);
    let ctx = show(&o);
    assert_eq!(o.code, 0, "find Scupdb.sdf:\n{ctx}");
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "header, 4 hits, tally:\n{ctx}");
    assert!(lines[0].starts_with("SNAPSHOT"), "header:\n{ctx}");
    for i in 0..4 {
        let l = lines[i + 1];
        assert!(
            l.starts_with(&id[i][..8]) && l.contains(&sdf),
            "line {} is night {}'s hit:\n{ctx}",
            i + 1,
            i + 1
        );
    }
    assert_eq!(lines[5], "4 matches in 4 of 4 snapshots", "tally:\n{ctx}");
    let o = h.find("*.log", &[]);
    assert!(
        o.stdout.lines().last() == Some("1 matches in 1 of 4 snapshots")
            || o.stdout.lines().last() == Some("1 match in 1 of 4 snapshots"),
        "*.log tally:\n{}",
        show(&o)
    );

    // No match at all: exit 0 and say so.
    let o = h.find("no-such-file.xyz", &[]);
    assert_eq!(o.code, 0, "no match exits 0:\n{}", show(&o));
    assert!(
        o.stdout.contains("no path matching"),
        "no match message:\n{}",
        show(&o)
    );
    let (hits, o) = h.find_json("no-such-file.xyz", &[]);
    assert!(hits.is_empty(), "no match JSON is []:\n{}", show(&o));
}

#[test]
fn history_errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let base = fs::canonicalize(dir.path()).unwrap();
    let repo = base.join("vault");
    init_vault(&repo);
    let src = base.join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f.txt"), b"x").unwrap();
    let id = backup(&repo, &src, 1);

    // A full id that is not in the vault.
    let unknown: String = id
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    for (a, b, missing) in [
        (id.as_str(), unknown.as_str(), unknown.as_str()),
        (unknown.as_str(), id.as_str(), unknown.as_str()),
        (id.as_str(), &unknown[..9], &unknown[..9]),
    ] {
        for json in [false, true] {
            let mut cmd = sv();
            cmd.args(["diff", "--repo"]).arg(&repo);
            if json {
                cmd.arg("--json");
            }
            let o = run(cmd.args([a, b]));
            assert_ne!(
                o.code,
                0,
                "diff {a} {b} with an unknown snapshot fails:\n{}",
                show(&o)
            );
            assert!(
                o.stderr.contains(missing),
                "stderr names the unknown snapshot {missing}:\n{}",
                show(&o)
            );
            if json {
                assert!(
                    o.stdout.trim().is_empty(),
                    "no JSON on failure:\n{}",
                    show(&o)
                );
            }
        }
    }
    // `latest` under a host that has no snapshot.
    let o = run(sv()
        .args(["diff", "--repo"])
        .arg(&repo)
        .args(["--host", "other", "latest", &id]));
    assert_ne!(
        o.code,
        0,
        "latest of a host with no snapshots:\n{}",
        show(&o)
    );
    assert!(
        o.stderr.contains("latest"),
        "stderr names `latest`:\n{}",
        show(&o)
    );

    // An invalid glob is refused, and named.
    for pattern in ["[", "/srv/[a-"] {
        let o = run(sv().args(["find", "--repo"]).arg(&repo).arg(pattern));
        assert_ne!(o.code, 0, "find {pattern:?} fails:\n{}", show(&o));
        assert!(
            o.stderr.contains(&format!("{pattern:?}"))
                || o.stderr.contains(&format!("'{pattern}'"))
                || o.stderr.contains(&format!("`{pattern}`")),
            "stderr names the pattern {pattern:?}:\n{}",
            show(&o)
        );
        assert!(o.stdout.is_empty(), "nothing on stdout:\n{}", show(&o));
    }
}
