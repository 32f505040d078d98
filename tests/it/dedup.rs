//! Deduplication as an admin sees it: how much the vault folder grows from one backup to the next.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use filetime::FileTime;

use crate::common::{self, assert_trees_equal, dir_size, random_bytes, restored_path, sv};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

fn backup_json(repo: &Path, path: &Path) -> serde_json::Value {
    backup_json_with(repo, path, &[])
}

fn backup_json_with(repo: &Path, path: &Path, extra: &[&str]) -> serde_json::Value {
    let out = sv()
        .args(["backup", "--repo"])
        .arg(repo)
        .arg("--json")
        .args(extra)
        .arg(path)
        .assert()
        .success();
    let v: serde_json::Value =
        serde_json::from_slice(&out.get_output().stdout).expect("backup --json prints JSON");
    assert_eq!(v["complete"], true, "{v}");
    v
}

fn summary_u64(v: &serde_json::Value, field: &str) -> u64 {
    v["summary"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("summary.{field} missing in {v}"))
}

#[test]
fn unchanged_data_adds_under_one_percent() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    let mut data_size = 0u64;
    for i in 0..8u64 {
        let len = MIB + i as usize * 4_099;
        let dir = if i % 2 == 0 {
            src.clone()
        } else {
            src.join("sub")
        };
        fs::write(
            dir.join(format!("file-{i}.dat")),
            random_bytes(1_000 + i, len),
        )
        .unwrap();
        data_size += len as u64;
    }
    for i in 0..50u64 {
        let body = format!("small file {i}\n");
        fs::write(src.join(format!("small-{i}.txt")), &body).unwrap();
        data_size += body.len() as u64;
    }
    let repo = work.path().join("vault");
    common::init_vault(&repo);

    let first = backup_json(&repo, &src);
    let added_first = summary_u64(&first, "bytes_added");
    assert!(
        added_first >= data_size * 95 / 100,
        "first backup stores the (incompressible) data: {first}"
    );
    let before = dir_size(&repo);

    // Re-read everything: the dedup is then the chunk store's, not the unchanged-file skip's.
    let second = backup_json_with(&repo, &src, &["--force-reread"]);
    let grown = dir_size(&repo) - before;
    assert_eq!(summary_u64(&second, "files_unchanged"), 0, "{second}");
    let added = summary_u64(&second, "bytes_added");
    assert_eq!(summary_u64(&second, "bytes_read"), data_size, "{second}");
    assert_eq!(summary_u64(&second, "data_blobs_added"), 0, "{second}");
    assert!(
        added * 100 < data_size,
        "second backup bytes_added {added} is not < 1% of {data_size}"
    );
    assert!(
        grown * 100 < data_size,
        "vault folder grew by {grown} bytes, not < 1% of {data_size}"
    );
    let snaps = sv()
        .args(["snapshots", "--json", "--repo"])
        .arg(&repo)
        .assert()
        .success();
    let snaps: serde_json::Value = serde_json::from_slice(&snaps.get_output().stdout).unwrap();
    assert_eq!(snaps.as_array().map(|a| a.len()), Some(2));
}

/// Files whose size, mtime, ctime and inode are unchanged since the last snapshot of the same
/// host, label and paths are not read; a touched file is; `--force-reread` reads all.
#[test]
fn unchanged_files_are_not_read_again() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("contentlib");
    fs::create_dir_all(src.join("FileLib/AB12")).unwrap();
    let mut total = 0u64;
    for i in 0..20u64 {
        let body = random_bytes(50 + i, 10_000 + i as usize);
        total += body.len() as u64;
        fs::write(src.join(format!("FileLib/AB12/{i:04}")), body).unwrap();
    }
    let repo = work.path().join("vault");
    common::init_vault(&repo);
    let first = backup_json(&repo, &src);
    assert_eq!(summary_u64(&first, "files_unchanged"), 0, "{first}");
    assert_eq!(summary_u64(&first, "bytes_read"), total, "{first}");

    let second = backup_json(&repo, &src);
    assert_eq!(summary_u64(&second, "files"), 20, "{second}");
    assert_eq!(summary_u64(&second, "files_unchanged"), 20, "{second}");
    assert_eq!(summary_u64(&second, "bytes_read"), 0, "{second}");

    // Same content rewritten (new mtime and ctime): read again, stored once.
    let touched = src.join("FileLib/AB12/0003");
    let body = fs::read(&touched).unwrap();
    fs::write(&touched, &body).unwrap();
    filetime::set_file_mtime(
        &touched,
        filetime::FileTime::from_unix_time(1_700_000_000, 0),
    )
    .unwrap();
    let third = backup_json(&repo, &src);
    assert_eq!(summary_u64(&third, "files_unchanged"), 19, "{third}");
    assert_eq!(
        summary_u64(&third, "bytes_read"),
        body.len() as u64,
        "{third}"
    );
    assert_eq!(summary_u64(&third, "data_blobs_added"), 0, "{third}");

    // A different label has no parent: everything is read.
    let other = backup_json_with(&repo, &src, &["--label", "other"]);
    assert_eq!(summary_u64(&other, "files_unchanged"), 0, "{other}");

    let forced = backup_json_with(&repo, &src, &["--force-reread"]);
    assert_eq!(summary_u64(&forced, "files_unchanged"), 0, "{forced}");
    assert_eq!(summary_u64(&forced, "bytes_read"), total, "{forced}");

    // The snapshot made from reused chunk lists restores byte-identical.
    let target = work.path().join("restore");
    let reused = third["id"].as_str().unwrap();
    sv().args(["restore", "--repo"])
        .arg(&repo)
        .args([reused, "--target"])
        .arg(&target)
        .assert()
        .success();
    common::assert_trees_equal(&src, &common::restored_path(&target, &src));
}

/// A tiny deterministic generator for page picks.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Overwrite `pages` 8 KiB pages of `path` in place with new content, then move its mtime.
fn edit_pages(path: &Path, pages: &[usize]) {
    let mut f = fs::OpenOptions::new().write(true).open(path).unwrap();
    for (i, &p) in pages.iter().enumerate() {
        f.seek(SeekFrom::Start((p * 8 * KIB) as u64)).unwrap();
        f.write_all(&random_bytes(0xED17_0000 + i as u64, 8 * KIB))
            .unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    filetime::set_file_mtime(path, FileTime::from_unix_time(1_700_000_123, 456_000_000)).unwrap();
}

/// Vault growth from editing 1% of the pages of a 64 MiB file named `name`, and the restored
/// file compared with the edited one.
fn page_edit_growth(
    work: &Path,
    name: &str,
    content: &[u8],
    pages: &[usize],
    check_restore: bool,
) -> u64 {
    let src = work.join(format!("src-{name}"));
    fs::create_dir_all(&src).unwrap();
    let file = src.join(name);
    fs::write(&file, content).unwrap();
    filetime::set_file_mtime(&file, FileTime::from_unix_time(1_700_000_000, 0)).unwrap();
    let repo = work.join(format!("vault-{name}"));
    common::init_vault(&repo);
    backup_json(&repo, &src);
    let before = dir_size(&repo);

    edit_pages(&file, pages);
    let v = backup_json(&repo, &src);
    assert_eq!(summary_u64(&v, "bytes_read"), content.len() as u64, "{v}");
    let grown = dir_size(&repo) - before;

    if check_restore {
        let target = work.join(format!("restore-{name}"));
        sv().args(["restore", "--repo"])
            .arg(&repo)
            .args(["latest", "--target"])
            .arg(&target)
            .assert()
            .success();
        assert_trees_equal(&src, &restored_path(&target, &src));
    }
    grown
}

#[test]
fn database_pages_edited_in_place_grow_the_vault_little() {
    const SIZE: usize = 64 * MIB;
    const PAGE: usize = 8 * KIB;
    let n_pages = SIZE / PAGE;
    let content = random_bytes(0xDB, SIZE);
    // 1% of the pages, distinct, from a fixed seed.
    let mut rng = XorShift(0x5EED_1234_5678_9ABC);
    let mut pages = std::collections::BTreeSet::new();
    while pages.len() < n_pages / 100 {
        pages.insert((rng.next() % n_pages as u64) as usize);
    }
    let pages: Vec<usize> = pages.into_iter().collect();

    let work = tempfile::tempdir().unwrap();
    let fixed = page_edit_growth(work.path(), "site.mdf", &content, &pages, true);
    assert!(
        fixed * 100 <= SIZE as u64 * 15,
        "editing 1% of the pages of a .mdf grew the vault by {fixed} bytes, more than 15% of {SIZE}"
    );
    // The same edit on a file chunked by content: most ~1 MiB chunks hold an edited page.
    let cdc = page_edit_growth(work.path(), "site.bin", &content, &pages, false);
    assert!(
        cdc * 100 > SIZE as u64 * 15,
        "content-defined chunking grew only {cdc} bytes for the same edit: the fixed policy proves nothing"
    );
    eprintln!("growth after editing 1% of pages: fixed {fixed}, content-defined {cdc}");
    assert!(cdc > 3 * fixed, "fixed {fixed} vs content-defined {cdc}");
}

#[test]
fn identical_content_under_two_names_is_stored_once() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir_all(src.join("elsewhere")).unwrap();
    let size = 3 * MIB + 1_234;
    let data = random_bytes(77, size);
    fs::write(src.join("original.dat"), &data).unwrap();
    fs::write(src.join("elsewhere/copy-with-another-name.dat"), &data).unwrap();
    let repo = work.path().join("vault");
    common::init_vault(&repo);
    let before = dir_size(&repo);
    let v = backup_json(&repo, &src);
    let added = summary_u64(&v, "bytes_added");
    let grown = dir_size(&repo) - before;
    assert_eq!(summary_u64(&v, "bytes_read"), 2 * size as u64, "{v}");
    assert!(
        added >= size as u64 * 95 / 100,
        "one copy must be stored: {v}"
    );
    assert!(
        added < size as u64 * 115 / 100,
        "bytes_added {added} is more than one copy of {size}: {v}"
    );
    assert!(
        grown < size as u64 * 115 / 100,
        "vault grew {grown}, more than one copy of {size}"
    );

    let target = work.path().join("restore");
    sv().args(["restore", "--repo"])
        .arg(&repo)
        .args(["latest", "--target"])
        .arg(&target)
        .assert()
        .success();
    assert_trees_equal(&src, &restored_path(&target, &src));
}
