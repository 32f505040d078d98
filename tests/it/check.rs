//! Check: a clean vault checks clean; a flipped byte, a lost pack, a damaged index file and an
//! unreadable snapshot are each found and attributed to exactly the packs, snapshots and file
//! paths they affect; restore leaves a damaged file out and restores everything else exactly.
//! Also `--read-data-subset` and `stats`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sitevault::pack::BlobKind;

use crate::common::{
    Out, assert_trees_equal, init_vault_with, pack_files, random_bytes, restored_path, run, sv,
};

const HOST: &str = "checkhost";
const BIG: &str = "big.bin";
const BIG_LEN: usize = 400_000;

/// Everything a run printed, for assertion messages.
fn show(o: &Out) -> String {
    format!(
        "exit code {}\n--- stdout:\n{}\n--- stderr:\n{}",
        o.code, o.stdout, o.stderr
    )
}

fn hex_name(p: &Path) -> String {
    p.file_name().unwrap().to_str().unwrap().to_string()
}

/// Every file below `dir` (relative path) with its content.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(dir).unwrap().to_path_buf(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Files directly in `repo/<sub>` (index/ or snapshots/).
fn files_in(repo: &Path, sub: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(repo.join(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn len_of(p: &Path) -> u64 {
    fs::metadata(p).unwrap().len()
}

/// The largest data pack: with one 400 kB random file and only small others (chunks are at
/// least 256 KiB, packs close past 64 KiB) it holds a chunk of that big file.
fn biggest_data_pack(repo: &Path) -> PathBuf {
    let packs: Vec<PathBuf> = pack_files(repo)
        .into_iter()
        .filter(|p| {
            sitevault::pack::parse_preamble(&fs::read(p).unwrap()).ok() == Some(BlobKind::Data)
        })
        .collect();
    assert!(!packs.is_empty(), "no data packs in {}", repo.display());
    let big = packs.iter().max_by_key(|p| len_of(p)).unwrap().clone();
    // Sanity: it is much larger than any pack of small files could be.
    assert!(
        len_of(&big) > 200_000,
        "the biggest data pack {} is only {} bytes",
        big.display(),
        len_of(&big)
    );
    big
}

fn flip_middle_byte(p: &Path) {
    let mut b = fs::read(p).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x40;
    fs::write(p, b).unwrap();
}

fn truncate_to_half(p: &Path) {
    let len = len_of(p);
    fs::OpenOptions::new()
        .write(true)
        .open(p)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
}

fn backup(repo: &Path, src: &Path, time: &str) -> String {
    let o = run(sv()
        .args(["backup", "--json", "--host", HOST, "--time", time, "--repo"])
        .arg(repo)
        .arg(src));
    assert_eq!(o.code, 0, "backup failed:\n{}", show(&o));
    let v: Value = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("backup --json: {e}\n{}", show(&o)));
    v["id"].as_str().expect("id").to_string()
}

fn check(repo: &Path, extra: &[&str]) -> Out {
    run(sv()
        .arg("check")
        .args(extra)
        .args(["--lock-wait", "0", "--repo"])
        .arg(repo))
}

fn check_json(repo: &Path, extra: &[&str]) -> (Out, Value) {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let o = check(repo, &args);
    let v: Value = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("check --json prints JSON ({e}):\n{}", show(&o)));
    (o, v)
}

fn restore(repo: &Path, id: &str, target: &Path) -> Out {
    run(sv()
        .args(["restore", &id[..12], "--target"])
        .arg(target)
        .arg("--repo")
        .arg(repo))
}

/// One snapshot to test against: its id and the files it holds (relative to `src`).
struct Night {
    id: String,
    files: BTreeMap<PathBuf, Vec<u8>>,
}

/// A vault with two nights of one source folder: one 400 kB random file and small files
/// (some in a subfolder); night 2 changes one small file.
struct Fixture {
    dir: tempfile::TempDir,
    repo: PathBuf,
    src: PathBuf,
    nights: Vec<Night>,
}

impl Fixture {
    fn big(&self) -> PathBuf {
        self.src.join(BIG)
    }
}

fn write_small_files(src: &Path, night: u64) {
    fs::create_dir_all(src.join("docs/deep")).unwrap();
    for i in 0..6u64 {
        let len = 2_000 + (i as usize * 3_001) % 18_000;
        let version = if i == 2 { night } else { 0 };
        let dir = match i % 3 {
            0 => src.to_path_buf(),
            1 => src.join("docs"),
            _ => src.join("docs/deep"),
        };
        fs::write(
            dir.join(format!("small{i}.dat")),
            random_bytes(100 + i * 1_000 + version, len),
        )
        .unwrap();
    }
    fs::write(
        src.join("docs/readme.txt"),
        b"small and compressible\n".repeat(200),
    )
    .unwrap();
}

fn fixture(nights: u64) -> Fixture {
    fixture_with(nights, false)
}

/// With `big_alone`, a first snapshot (night 0) holds only the big file, so its chunks are in
/// packs of their own (packs hold the blobs of one backup): losing such a pack loses that file
/// and nothing else. Later nights add the small files and reuse the big file's chunks.
fn fixture_with(nights: u64, big_alone: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault_with(&repo, &["--pack-size", "64KiB"]);
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join(BIG), random_bytes(4242, BIG_LEN)).unwrap();
    let mut out = Vec::new();
    if big_alone {
        let id = backup(&repo, &src, "2025-12-31T03:00:00Z");
        out.push(Night {
            id,
            files: contents(&src),
        });
    }
    for night in 1..=nights {
        write_small_files(&src, night);
        let id = backup(&repo, &src, &format!("2026-01-0{night}T03:00:00Z"));
        out.push(Night {
            id,
            files: contents(&src),
        });
    }
    Fixture {
        dir,
        repo,
        src,
        nights: out,
    }
}

/// Restored files under `target` are exactly `want` (content and presence), except that
/// `missing` (relative to src) must be absent.
#[track_caller]
fn assert_restored(
    target: &Path,
    src: &Path,
    want: &BTreeMap<PathBuf, Vec<u8>>,
    missing: Option<&Path>,
    ctx: &str,
) {
    let root = restored_path(target, src);
    let got = contents(&root);
    let mut want = want.clone();
    if let Some(m) = missing {
        assert!(
            want.remove(m).is_some(),
            "{} is in the snapshot",
            m.display()
        );
        assert!(
            !root.join(m).exists(),
            "{ctx}: damaged file {} was restored anyway",
            m.display()
        );
    }
    let got_names: Vec<&PathBuf> = got.keys().collect();
    let want_names: Vec<&PathBuf> = want.keys().collect();
    assert_eq!(got_names, want_names, "{ctx}: restored files differ");
    for (rel, bytes) in &want {
        assert!(
            got[rel] == *bytes,
            "{ctx}: content of {} differs after restore",
            rel.display()
        );
    }
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().expect("string").to_string())
        .collect()
}

#[test]
fn clean_vault_checks_clean_with_and_without_reading_data() {
    let f = fixture(2);
    let packs = pack_files(&f.repo).len();
    assert!(packs >= 3, "a few packs expected, got {packs}");

    for extra in [&[][..], &["--read-data"][..]] {
        let o = check(&f.repo, extra);
        assert_eq!(o.code, 0, "check {extra:?} on a clean vault:\n{}", show(&o));
        assert!(
            o.stdout.contains("no damage found"),
            "check {extra:?}:\n{}",
            show(&o)
        );
        assert!(
            !o.stdout.contains("error:"),
            "check {extra:?}:\n{}",
            show(&o)
        );
        assert!(
            !o.stderr.contains("error"),
            "check {extra:?}:\n{}",
            show(&o)
        );

        let (o, v) = check_json(&f.repo, extra);
        assert_eq!(o.code, 0, "check --json {extra:?}:\n{}", show(&o));
        assert_eq!(v["clean"], Value::Bool(true), "{}", show(&o));
        assert_eq!(
            v["errors"].as_array().map(Vec::len),
            Some(0),
            "{}",
            show(&o)
        );
        assert_eq!(
            v["damaged_packs"].as_array().map(Vec::len),
            Some(0),
            "{}",
            show(&o)
        );
        assert_eq!(
            v["damaged_snapshots"].as_array().map(Vec::len),
            Some(0),
            "{}",
            show(&o)
        );
        assert_eq!(v["snapshots"], 2, "{}", show(&o));
        assert_eq!(v["packs"].as_u64(), Some(packs as u64), "{}", show(&o));
        assert_eq!(
            v["index_files"].as_u64(),
            Some(files_in(&f.repo, "index").len() as u64),
            "{}",
            show(&o)
        );
        assert!(v["trees"].as_u64().unwrap() >= 3, "{}", show(&o));
        assert!(v["data_blobs"].as_u64().unwrap() >= 8, "{}", show(&o));
        if extra.is_empty() {
            assert_eq!(v["packs_read"], 0, "{}", show(&o));
            assert_eq!(v["bytes_read"], 0, "{}", show(&o));
        } else {
            assert_eq!(v["packs_read"].as_u64(), Some(packs as u64), "{}", show(&o));
            let on_disk: u64 = pack_files(&f.repo).iter().map(|p| len_of(p)).sum();
            assert_eq!(v["bytes_read"].as_u64(), Some(on_disk), "{}", show(&o));
            assert!(v["blobs_read"].as_u64().unwrap() >= 8, "{}", show(&o));
        }
    }
}

#[test]
fn flipped_byte_in_a_pack_is_found_attributed_and_left_out_of_restore() {
    let f = fixture(2);
    let pack = biggest_data_pack(&f.repo);
    let hex = hex_name(&pack);
    flip_middle_byte(&pack);
    let big = f.big().to_str().unwrap().to_string();

    // Without --read-data the header may or may not show it: only make sure it runs.
    let _ = check(&f.repo, &[]);

    let o = check(&f.repo, &["--read-data"]);
    assert_eq!(
        o.code,
        1,
        "check --read-data on a damaged pack:\n{}",
        show(&o)
    );
    assert!(!o.stdout.contains("no damage found"), "{}", show(&o));
    assert!(
        o.stdout
            .lines()
            .any(|l| l.starts_with(&format!("error: pack {hex}: "))),
        "the damaged pack is named in an error line:\n{}",
        show(&o)
    );
    let lines: Vec<&str> = o.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == "damaged packs:")
        .unwrap_or_else(|| panic!("no `damaged packs:` section:\n{}", show(&o)));
    assert_eq!(
        lines.get(at + 1),
        Some(&&*format!("  {hex}")),
        "{}",
        show(&o)
    );
    for n in &f.nights {
        let head = format!("snapshot {} (", &n.id[..8]);
        let i = lines
            .iter()
            .position(|l| l.starts_with(&head))
            .unwrap_or_else(|| panic!("snapshot {} not reported:\n{}", &n.id[..8], show(&o)));
        assert!(
            lines[i].contains(&format!("host {HOST}"))
                && lines[i].ends_with("1 files and 0 folders cannot be restored:"),
            "{}",
            show(&o)
        );
        assert_eq!(
            lines.get(i + 1),
            Some(&&*format!("  {big}")),
            "{}",
            show(&o)
        );
    }
    let err: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: vault "))
        .collect();
    assert_eq!(
        err.len(),
        1,
        "one `error: vault ... is damaged` line:\n{}",
        show(&o)
    );
    assert!(err[0].contains("is damaged"), "{}", show(&o));

    let (o, v) = check_json(&f.repo, &["--read-data"]);
    assert_eq!(o.code, 1, "{}", show(&o));
    assert_eq!(v["clean"], Value::Bool(false), "{}", show(&o));
    assert_eq!(strs(&v["damaged_packs"]), vec![hex.clone()], "{}", show(&o));
    assert!(
        v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["object"] == format!("pack {hex}")),
        "{}",
        show(&o)
    );
    let damaged = v["damaged_snapshots"].as_array().unwrap();
    assert_eq!(
        damaged.len(),
        f.nights.len(),
        "every snapshot uses the big file:\n{}",
        show(&o)
    );
    for (d, n) in damaged.iter().zip(&f.nights) {
        assert_eq!(
            d["id"].as_str(),
            Some(n.id.as_str()),
            "oldest first:\n{}",
            show(&o)
        );
        assert_eq!(d["host"], HOST, "{}", show(&o));
        assert!(d["unreadable"].is_null(), "{}", show(&o));
        assert_eq!(strs(&d["files"]), vec![big.clone()], "{}", show(&o));
        assert_eq!(strs(&d["dirs"]), Vec::<String>::new(), "{}", show(&o));
    }
    assert_eq!(damaged[0]["time"], "2026-01-01T03:00:00Z", "{}", show(&o));

    for n in &f.nights {
        let target = f.dir.path().join(format!("restore-{}", &n.id[..8]));
        let o = restore(&f.repo, &n.id, &target);
        assert_eq!(o.code, 1, "restore with a damaged file:\n{}", show(&o));
        assert!(
            o.stderr.contains(&big),
            "restore names the damaged file:\n{}",
            show(&o)
        );
        assert_restored(
            &target,
            &f.src,
            &n.files,
            Some(Path::new(BIG)),
            &format!("restore {}:\n{}", &n.id[..8], show(&o)),
        );
    }
}

#[test]
fn deleted_pack_is_found_without_reading_data() {
    let f = fixture_with(2, true);
    let pack = biggest_data_pack(&f.repo);
    let hex = hex_name(&pack);
    fs::remove_file(&pack).unwrap();
    let big = f.big().to_str().unwrap().to_string();

    let o = check(&f.repo, &[]);
    assert_eq!(o.code, 1, "check with a pack deleted:\n{}", show(&o));
    assert!(
        o.stdout
            .lines()
            .any(|l| l.starts_with(&format!("error: pack {hex}: "))),
        "{}",
        show(&o)
    );
    assert!(
        o.stdout.contains(&format!("damaged packs:\n  {hex}\n")),
        "{}",
        show(&o)
    );
    assert!(
        o.stdout.lines().any(|l| l == format!("  {big}")),
        "the big file's path is listed:\n{}",
        show(&o)
    );
    assert!(
        o.stderr
            .lines()
            .any(|l| l.starts_with("error: vault ") && l.contains("is damaged")),
        "{}",
        show(&o)
    );

    let (o, v) = check_json(&f.repo, &[]);
    assert_eq!(o.code, 1, "{}", show(&o));
    assert_eq!(v["clean"], Value::Bool(false), "{}", show(&o));
    assert_eq!(strs(&v["damaged_packs"]), vec![hex.clone()], "{}", show(&o));
    let damaged = v["damaged_snapshots"].as_array().unwrap();
    assert_eq!(
        damaged.len(),
        f.nights.len(),
        "every snapshot uses the big file:\n{}",
        show(&o)
    );
    for (d, n) in damaged.iter().zip(&f.nights) {
        assert_eq!(d["id"].as_str(), Some(n.id.as_str()), "{}", show(&o));
        assert_eq!(strs(&d["files"]), vec![big.clone()], "{}", show(&o));
        assert_eq!(strs(&d["dirs"]), Vec::<String>::new(), "{}", show(&o));
    }

    for n in &f.nights {
        let target = f.dir.path().join(format!("restore-{}", &n.id[..8]));
        let o = restore(&f.repo, &n.id, &target);
        assert_eq!(o.code, 1, "restore with a lost pack:\n{}", show(&o));
        assert!(o.stderr.contains(&big), "{}", show(&o));
        assert_restored(
            &target,
            &f.src,
            &n.files,
            Some(Path::new(BIG)),
            &format!("restore {}:\n{}", &n.id[..8], show(&o)),
        );
    }
}

#[test]
fn truncated_index_file_is_named_and_prune_rebuilds_it() {
    let f = fixture(2);
    let indexes = files_in(&f.repo, "index");
    assert!(!indexes.is_empty());
    // The biggest index file lists the first night's packs.
    let idx = indexes.iter().max_by_key(|p| len_of(p)).unwrap().clone();
    let hex = hex_name(&idx);
    truncate_to_half(&idx);

    let o = check(&f.repo, &[]);
    assert_eq!(
        o.code,
        1,
        "check with a truncated index file:\n{}",
        show(&o)
    );
    assert!(
        o.stdout
            .lines()
            .any(|l| l.starts_with(&format!("error: index/{hex}"))),
        "{}",
        show(&o)
    );
    assert!(
        o.stdout.contains("sitevault prune"),
        "the hint names prune:\n{}",
        show(&o)
    );
    let (o, v) = check_json(&f.repo, &[]);
    assert_eq!(o.code, 1, "{}", show(&o));
    assert_eq!(v["clean"], Value::Bool(false), "{}", show(&o));
    assert!(
        v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["object"] == format!("index/{hex}")),
        "{}",
        show(&o)
    );

    let o = run(sv()
        .args(["prune", "--lock-wait", "0", "--repo"])
        .arg(&f.repo));
    assert_eq!(o.code, 0, "prune rebuilds the index:\n{}", show(&o));
    let o = check(&f.repo, &["--read-data"]);
    assert_eq!(o.code, 0, "check --read-data after prune:\n{}", show(&o));
    assert!(o.stdout.contains("no damage found"), "{}", show(&o));

    for n in &f.nights {
        let target = f.dir.path().join(format!("restore-{}", &n.id[..8]));
        let o = restore(&f.repo, &n.id, &target);
        assert_eq!(o.code, 0, "restore after prune:\n{}", show(&o));
        assert_restored(
            &target,
            &f.src,
            &n.files,
            None,
            &format!("after prune:\n{}", show(&o)),
        );
    }
    // The latest snapshot is the source as it is now: modes and mtimes too.
    let target = f
        .dir
        .path()
        .join(format!("restore-{}", &f.nights[1].id[..8]));
    assert_trees_equal(&restored_path(&target, &f.src), &f.src);
}

#[test]
fn unreadable_snapshot_file_is_named_and_does_not_hide_the_other() {
    let f = fixture(2);
    let bad = &f.nights[0].id;
    let good = &f.nights[1].id;
    let path = f.repo.join("snapshots").join(bad);
    assert!(path.is_file(), "snapshot file {} exists", path.display());
    fs::write(&path, random_bytes(99, 300)).unwrap();

    let o = check(&f.repo, &[]);
    assert_eq!(
        o.code,
        1,
        "check with a garbage snapshot file:\n{}",
        show(&o)
    );
    assert!(
        o.stdout
            .lines()
            .any(|l| l.starts_with(&format!("error: snapshot {bad}: "))),
        "{}",
        show(&o)
    );
    assert!(
        !o.stdout.contains(&good[..8]),
        "the good snapshot is not named:\n{}",
        show(&o)
    );
    assert!(
        o.stderr
            .lines()
            .any(|l| l.starts_with("error: vault ") && l.contains("is damaged")),
        "{}",
        show(&o)
    );

    let (o, v) = check_json(&f.repo, &[]);
    assert_eq!(o.code, 1, "{}", show(&o));
    assert_eq!(v["clean"], Value::Bool(false), "{}", show(&o));
    assert_eq!(v["snapshots"], 2, "{}", show(&o));
    let damaged = v["damaged_snapshots"].as_array().unwrap();
    let ids: Vec<&str> = damaged.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        vec![bad.as_str()],
        "only the garbage snapshot is damaged:\n{}",
        show(&o)
    );
    assert!(damaged[0]["unreadable"].is_string(), "{}", show(&o));
    assert_eq!(
        strs(&v["damaged_packs"]),
        Vec::<String>::new(),
        "{}",
        show(&o)
    );

    // The good one still restores exactly.
    let target = f.dir.path().join("restored");
    let o = restore(&f.repo, good, &target);
    assert_eq!(o.code, 0, "{}", show(&o));
    assert_trees_equal(&restored_path(&target, &f.src), &f.src);
}

#[test]
fn read_data_subsets_cover_every_pack_and_bad_values_are_refused() {
    let f = fixture(2);
    let packs = pack_files(&f.repo).len() as u64;
    assert!(packs >= 3, "{packs} packs");

    let mut sum = 0;
    for part in ["1/2", "2/2"] {
        let (o, v) = check_json(&f.repo, &["--read-data-subset", part]);
        assert_eq!(o.code, 0, "--read-data-subset {part}:\n{}", show(&o));
        assert_eq!(v["clean"], Value::Bool(true), "{}", show(&o));
        sum += v["packs_read"].as_u64().unwrap();
    }
    assert_eq!(sum, packs, "1/2 and 2/2 together read every pack once");

    // Parts are stable: the same part reads the same number of packs again.
    let (_, a) = check_json(&f.repo, &["--read-data-subset", "1/3"]);
    let (_, b) = check_json(&f.repo, &["--read-data-subset", "1/3"]);
    assert_eq!(a["packs_read"], b["packs_read"]);

    let (o, v) = check_json(&f.repo, &["--read-data-subset", "100%"]);
    assert_eq!(o.code, 0, "{}", show(&o));
    assert_eq!(
        v["packs_read"].as_u64(),
        Some(packs),
        "100% reads all:\n{}",
        show(&o)
    );
    let o = check(&f.repo, &["--read-data-subset", "100%"]);
    assert_eq!(o.code, 0, "{}", show(&o));
    assert!(
        o.stdout.contains(&format!("read {packs} packs")),
        "{}",
        show(&o)
    );
    assert!(o.stdout.contains("no damage found"), "{}", show(&o));

    for bad in ["0%", "101%", "4/3", "0/3", "1/0", "half", "x%"] {
        let o = check(&f.repo, &["--read-data-subset", bad]);
        assert_ne!(
            o.code,
            0,
            "--read-data-subset {bad} accepted:\n{}",
            show(&o)
        );
        assert!(
            o.stderr.contains("--read-data-subset"),
            "--read-data-subset {bad}:\n{}",
            show(&o)
        );
        assert!(!o.stdout.contains("no damage found"), "{}", show(&o));
    }
}

#[test]
fn stats_counts_snapshots_dedup_and_what_each_added() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault_with(&repo, &["--pack-size", "64KiB"]);
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    const N: u64 = 8;
    const LEN: usize = 30_000;
    let write = |changed_version: u64| {
        for i in 0..N {
            let version = if i == 3 { changed_version } else { 0 };
            let d = if i % 2 == 0 {
                src.clone()
            } else {
                src.join("sub")
            };
            fs::write(
                d.join(format!("f{i}.bin")),
                random_bytes(500 + i * 10 + version * 7777, LEN),
            )
            .unwrap();
        }
    };
    write(0);
    let id1 = backup(&repo, &src, "2026-02-01T03:00:00Z");
    write(1);
    let id2 = backup(&repo, &src, "2026-02-02T03:00:00Z");
    let source_size = N * LEN as u64;

    let o = run(sv().args(["stats", "--json", "--repo"]).arg(&repo));
    assert_eq!(o.code, 0, "{}", show(&o));
    let s: Value = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("stats --json ({e}):\n{}", show(&o)));
    let per = s["per_snapshot"].as_array().unwrap();
    assert_eq!(per.len(), 2, "{}", show(&o));
    assert_eq!(s["snapshots"], 2, "{}", show(&o));
    assert_eq!(
        per[0]["id"].as_str(),
        Some(id1.as_str()),
        "oldest first:\n{}",
        show(&o)
    );
    assert_eq!(
        per[1]["id"].as_str(),
        Some(id2.as_str()),
        "oldest first:\n{}",
        show(&o)
    );
    assert_eq!(per[0]["time"], "2026-02-01T03:00:00Z", "{}", show(&o));
    assert_eq!(per[0]["host"], HOST, "{}", show(&o));
    for p in per {
        assert_eq!(p["files"].as_u64(), Some(N), "{}", show(&o));
        assert_eq!(
            p["logical_bytes"].as_u64(),
            Some(source_size),
            "{}",
            show(&o)
        );
    }
    let added: Vec<u64> = per
        .iter()
        .map(|p| p["added_bytes"].as_u64().unwrap())
        .collect();
    assert!(
        added[0] >= source_size,
        "night 1 added everything:\n{}",
        show(&o)
    );
    assert!(
        added[1] * 4 < added[0],
        "night 2 changed one file in {N}, so it added much less:\n{}",
        show(&o)
    );
    assert!(
        added[1] >= LEN as u64,
        "night 2 added the changed file:\n{}",
        show(&o)
    );
    assert_eq!(per[0]["added_chunks"].as_u64(), Some(N), "{}", show(&o));
    assert_eq!(per[1]["added_chunks"].as_u64(), Some(1), "{}", show(&o));

    let logical = s["logical_bytes"].as_u64().unwrap();
    let sum: u64 = per
        .iter()
        .map(|p| p["logical_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(logical, sum, "{}", show(&o));
    assert_eq!(logical, 2 * source_size, "{}", show(&o));
    assert_eq!(
        s["unique_bytes"].as_u64(),
        Some((N + 1) * LEN as u64),
        "{}",
        show(&o)
    );
    assert_eq!(s["chunks"].as_u64(), Some(N + 1), "{}", show(&o));
    assert!(s["tree_blobs"].as_u64().unwrap() >= 2, "{}", show(&o));
    assert_eq!(
        s["packs"].as_u64(),
        Some(pack_files(&repo).len() as u64),
        "{}",
        show(&o)
    );
    assert_eq!(
        s["index_files"].as_u64(),
        Some(files_in(&repo, "index").len() as u64),
        "{}",
        show(&o)
    );
    let ratio = s["ratio"].as_f64().unwrap();
    assert!(ratio > 1.5, "ratio {ratio}:\n{}", show(&o));
    let stored = s["stored_bytes"].as_u64().unwrap();
    assert!(
        stored >= (N + 1) * LEN as u64,
        "random data does not shrink:\n{}",
        show(&o)
    );
    assert!(s["vault_bytes"].as_u64().unwrap() >= stored, "{}", show(&o));
    assert!(s["dedup_ratio"].as_f64().unwrap() > 1.5, "{}", show(&o));
}

/// README: `unused_bytes` is what the next prune frees. With nothing forgotten no blob is
/// unused, and a prune (even `--max-unused 0%`) frees nothing, so stats must say 0.
#[test]
fn stats_unused_bytes_is_what_the_next_prune_frees() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault_with(&repo, &["--pack-size", "64KiB"]);
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..8u64 {
        fs::write(src.join(format!("f{i}.bin")), random_bytes(900 + i, 30_000)).unwrap();
    }
    backup(&repo, &src, "2026-03-01T03:00:00Z");

    let stats = run(sv().args(["stats", "--json", "--repo"]).arg(&repo));
    assert_eq!(stats.code, 0, "{}", show(&stats));
    let s: Value = serde_json::from_str(&stats.stdout).expect("stats --json");
    let prune = run(sv()
        .args(["prune", "--json", "--max-unused", "0%", "--repo"])
        .arg(&repo));
    assert_eq!(prune.code, 0, "{}", show(&prune));
    let p: Value = serde_json::from_str(&prune.stdout).expect("prune --json");
    assert_eq!(p["bytes_freed"], 0, "nothing to free:\n{}", show(&prune));
    assert_eq!(
        s["unused_bytes"],
        p["bytes_freed"],
        "stats reports unused bytes (freed by the next prune) but the next prune frees nothing;\nstats:\n{}\nprune:\n{}",
        show(&stats),
        show(&prune)
    );
}

/// An index entry that disagrees with its pack (a wrong offset): check reports the pack, and
/// `--read-data` opens the blob where the index says, as restore would, so it names the file
/// that restore cannot read (opening it by the pack's own header would find nothing wrong).
#[test]
fn read_data_names_the_file_an_index_entry_that_disagrees_with_its_pack_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("vault");
    init_vault_with(&repo, &["--pack-size", "64KiB"]);
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("only.bin"), random_bytes(91, 20_000)).unwrap();
    let o = run(sv().args(["backup", "--repo"]).arg(&repo).arg(&src));
    assert_eq!(o.code, 0, "{}", show(&o));

    // Rewrite the index file naming the data pack with its first blob one byte further on.
    let store = sitevault::open_store(repo.to_str().unwrap(), false, &Default::default()).unwrap();
    let vault =
        sitevault::Vault::open(store.clone(), Some(crate::common::PASSWORD.as_bytes())).unwrap();
    let scan = vault.scan_index().unwrap();
    let (old, mut file) = scan
        .readable
        .into_iter()
        .find(|(_, f)| f.packs.iter().any(|p| p.kind == BlobKind::Data))
        .expect("an index file naming a data pack");
    let pack = file
        .packs
        .iter_mut()
        .find(|p| p.kind == BlobKind::Data)
        .unwrap();
    pack.blobs[0].offset += 1;
    vault.save_index(&file).unwrap();
    store.delete(&format!("index/{}", old.to_hex())).unwrap();

    let o = run(sv()
        .args(["check", "--read-data", "--json", "--repo"])
        .arg(&repo));
    assert_eq!(o.code, 1, "{}", show(&o));
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    let errors = v["errors"].to_string();
    assert!(errors.contains("disagrees with the index"), "{v}");
    let files = &v["damaged_snapshots"][0]["files"];
    assert!(
        files.to_string().contains("only.bin"),
        "the file restore cannot read is named: {v}"
    );
}
