//! `repair index`, `repair snapshots` and `repair packs --from` on really damaged vaults: after
//! each, `check --read-data` and byte-identical restores say whether the repair worked.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sitevault::pack::BlobKind;
use sitevault::tree::NodeKind;

use crate::common::{Out, PASSWORD, init_vault_with, random_bytes, restored_path, run, sv};

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    repo: PathBuf,
    src: PathBuf,
    /// Each night's source tree as it was backed up, by snapshot id.
    nights: Vec<(String, PathBuf)>,
}

fn write_night(src: &Path, night: u64) {
    for d in ["a", "b/deep"] {
        fs::create_dir_all(src.join(d)).unwrap();
    }
    // Files whose content stays are not rewritten, so b/deep keeps its listing between nights.
    let put = |p: PathBuf, bytes: Vec<u8>| {
        if fs::read(&p).ok().as_ref() != Some(&bytes) {
            fs::write(p, bytes).unwrap();
        }
    };
    for i in 0..24u64 {
        // Most files stay; a few change each night.
        let seed = if i % 8 == 0 { 1000 * night + i } else { i };
        put(src.join(format!("a/f{i:02}")), random_bytes(seed, 12_000));
    }
    for i in 0..6u64 {
        put(
            src.join(format!("b/deep/g{i}")),
            random_bytes(500 + i, 30_000),
        );
    }
    put(
        src.join("b/night.txt"),
        format!("night {night}\n").into_bytes(),
    );
}

fn backup(repo: &Path, src: &Path, time: &str) -> String {
    let o = run(sv()
        .args(["backup", "--json", "--time", time, "--repo"])
        .arg(repo)
        .arg(src));
    assert_eq!(o.code, 0, "backup: {}", o.stderr);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// Two nights in a vault with small packs (so damage hits one pack among many).
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let repo = root.join("vault");
    init_vault_with(&repo, &["--pack-size", "64KiB"]);
    let src = root.join("src");
    let mut nights = Vec::new();
    for n in 1..=2u64 {
        write_night(&src, n);
        let id = backup(&repo, &src, &format!("2026-11-0{n}T03:00:00Z"));
        let keep = root.join(format!("night-{n}"));
        crate::common::copy_tree(&src, &keep);
        nights.push((id, keep));
    }
    Fixture {
        _dir: dir,
        root,
        repo,
        src,
        nights,
    }
}

fn check(repo: &Path) -> Out {
    run(sv().args(["check", "--read-data", "--repo"]).arg(repo))
}

fn assert_clean(repo: &Path, when: &str) {
    let o = check(repo);
    assert_eq!(o.code, 0, "check {when}:\n{}{}", o.stdout, o.stderr);
}

fn json(o: &Out) -> Value {
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", o.stdout, o.stderr))
}

/// Restore `id` and require it to equal `expected` (the night's source).
fn assert_restores(f: &Fixture, repo: &Path, id: &str, expected: &Path, when: &str) {
    let target = f.root.join(format!("restore-{id}-{}", rand_suffix()));
    let o = run(sv()
        .args(["restore", id, "--target"])
        .arg(&target)
        .arg("--repo")
        .arg(repo));
    assert_eq!(o.code, 0, "restore {id} {when}: {}", o.stderr);
    // Contents and names (the kept copies of each night do not carry the original mtimes).
    assert_eq!(
        contents(&restored_path(&target, &f.src)),
        contents(expected),
        "restore {id} {when}"
    );
    fs::remove_dir_all(&target).unwrap();
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Every file below `dir` by relative path, with its bytes.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .map(|(p, b)| (p.strip_prefix(dir).unwrap().to_path_buf(), b))
        .collect()
}

fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().to_path_buf(), fs::read(e.path()).unwrap()))
        .collect()
}

fn open(repo: &Path) -> sitevault::Vault {
    let store = sitevault::open_store(repo.to_str().unwrap(), false, &Default::default()).unwrap();
    sitevault::Vault::open(store, Some(PASSWORD.as_bytes())).unwrap()
}

/// The pack holding the first chunk of `file` (an original path) in snapshot `id`, and the
/// chunk's offset in it.
fn pack_of(repo: &Path, id: &str, file: &Path) -> (PathBuf, u64) {
    let vault = open(repo);
    let index = vault.load_index().unwrap();
    let (_, snap) = vault
        .list_snapshots()
        .unwrap()
        .into_iter()
        .find(|(i, _)| i.to_hex() == id)
        .unwrap();
    let want: Vec<&[u8]> = file.iter().skip(1).map(|c| c.as_encoded_bytes()).collect();
    let entry = sitevault::vault::walk::entries(&vault, &index, &snap.tree)
        .unwrap()
        .into_iter()
        .find(|e| e.comps() == want)
        .unwrap_or_else(|| panic!("{} is in the snapshot", file.display()));
    let NodeKind::File { chunks } = &entry.node.kind else {
        panic!("{} is a file", file.display())
    };
    let loc = index.get(&chunks[0]).unwrap();
    assert_eq!(loc.kind, BlobKind::Data);
    let hex = loc.pack.to_hex();
    (
        repo.join("data").join(&hex[..2]).join(&hex),
        loc.offset as u64 + 30,
    )
}

fn flip(p: &Path, at: u64) {
    let mut b = fs::read(p).unwrap();
    b[at as usize] ^= 0x20;
    fs::write(p, b).unwrap();
}

/// Packs whose preamble says they hold tree blobs.
fn tree_packs(repo: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(repo.join("data"))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file() && e.file_name().len() == 64)
        .filter(|e| fs::read(e.path()).unwrap()[10] == 1)
        .map(|e| e.into_path())
        .collect()
}

#[test]
fn repair_index_after_every_index_file_is_deleted_makes_check_and_restore_work() {
    let f = fixture();
    for e in fs::read_dir(f.repo.join("index")).unwrap() {
        fs::remove_file(e.unwrap().path()).unwrap();
    }
    let o = check(&f.repo);
    assert_eq!(o.code, 1, "check without any index file:\n{}", o.stdout);
    let target = f.root.join("broken");
    let o = run(sv()
        .args(["restore", "latest", "--target"])
        .arg(&target)
        .arg("--repo")
        .arg(&f.repo));
    assert_ne!(o.code, 0, "restore without an index cannot succeed");

    let before = files_under(&f.repo);
    let o = run(sv()
        .args(["repair", "index", "--dry-run", "--json", "--repo"])
        .arg(&f.repo));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(files_under(&f.repo), before, "a dry run changes nothing");
    let packs = walkdir::WalkDir::new(f.repo.join("data"))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .count();
    assert_eq!(
        json(&o)["packs"],
        packs as u64,
        "every pack is indexed from its header"
    );

    let o = run(sv().args(["repair", "index", "--repo"]).arg(&f.repo));
    assert_eq!(o.code, 0, "repair index: {}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains(&format!("{packs} packs")), "{}", o.stdout);
    assert_clean(&f.repo, "after repair index");
    for (id, night) in &f.nights {
        assert_restores(&f, &f.repo, id, night, "after repair index");
    }
    // And the vault is usable as before: the next backup and a prune work.
    write_night(&f.src, 3);
    backup(&f.repo, &f.src, "2026-11-03T03:00:00Z");
    let o = run(sv().args(["prune", "--repo"]).arg(&f.repo));
    assert_eq!(o.code, 0, "prune after repair index: {}", o.stderr);
    assert_clean(&f.repo, "after the next backup and prune");
}

#[test]
fn repair_index_replaces_a_damaged_index_file_and_supersedes_the_rest() {
    let f = fixture();
    let files: Vec<PathBuf> = fs::read_dir(f.repo.join("index"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(files.len() >= 2, "the fixture has several index files");
    flip(&files[0], 40);
    assert_eq!(check(&f.repo).code, 1, "a damaged index file is found");
    let o = run(sv()
        .args(["repair", "index", "--json", "--repo"])
        .arg(&f.repo));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r = json(&o);
    assert_eq!(r["index_files_replaced"], files.len() as u64, "{r}");
    for old in &files {
        assert!(!old.exists(), "old index file {} is deleted", old.display());
    }
    assert_clean(&f.repo, "after repair index");
    assert_restores(
        &f,
        &f.repo,
        &f.nights[1].0,
        &f.nights[1].1,
        "after repair index",
    );
}

#[test]
fn repair_snapshots_leaves_out_damaged_files_names_them_and_keeps_originals() {
    let f = fixture();
    // f03 is the same in both nights: damage to its chunk hurts both snapshots.
    let victim = f.src.join("a/f03");
    let (pack, at) = pack_of(&f.repo, &f.nights[1].0, &victim);
    flip(&pack, at);

    // Without --read-data only missing data is looked for: nothing is written.
    let o = run(sv()
        .args(["repair", "snapshots", "--json", "--repo"])
        .arg(&f.repo));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(json(&o)["repaired"].as_array().unwrap().len(), 0);

    let before = files_under(&f.repo);
    let o = run(sv()
        .args(["repair", "snapshots", "--read-data", "--dry-run", "--repo"])
        .arg(&f.repo));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.contains(&victim.display().to_string()),
        "{}",
        o.stdout
    );
    assert_eq!(files_under(&f.repo), before, "a dry run writes nothing");

    let o = run(sv()
        .args(["repair", "snapshots", "--read-data", "--json", "--repo"])
        .arg(&f.repo));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r = json(&o);
    let repaired = r["repaired"].as_array().unwrap();
    assert_eq!(
        repaired.len(),
        2,
        "both snapshots used the damaged chunk: {r}"
    );
    let victim_s = victim.display().to_string();
    for s in repaired {
        assert_eq!(s["files_removed"], serde_json::json!([victim_s]), "{r}");
        assert_eq!(s["forgotten"], false);
    }
    // Originals stay; the repaired ones are tagged and restore everything but the victim.
    let o = run(sv().args(["snapshots", "--json", "--repo"]).arg(&f.repo));
    let list = json(&o);
    assert_eq!(list.as_array().unwrap().len(), 4, "{list}");
    for (s, (_, night)) in repaired.iter().zip(&f.nights) {
        let id = s["repaired"].as_str().unwrap();
        let entry = list
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .unwrap();
        assert_eq!(entry["tags"], serde_json::json!(["repaired"]));
        assert_eq!(
            entry["time"],
            list.as_array()
                .unwrap()
                .iter()
                .find(|e| e["id"] == s["original"])
                .unwrap()["time"]
        );
        let expected = f.root.join(format!("expected-{id}"));
        crate::common::copy_tree(night, &expected);
        fs::remove_file(expected.join("a/f03")).unwrap();
        assert_restores(&f, &f.repo, id, &expected, "repaired snapshot");
    }

    // Running it again writes nothing new; with --forget the originals go.
    let o = run(sv()
        .args([
            "repair",
            "snapshots",
            "--read-data",
            "--forget",
            "--json",
            "--repo",
        ])
        .arg(&f.repo));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let list = json(&run(sv()
        .args(["snapshots", "--json", "--repo"])
        .arg(&f.repo)));
    assert_eq!(
        list.as_array().unwrap().len(),
        2,
        "only the repaired snapshots remain: {list}"
    );
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|e| e["tags"] == serde_json::json!(["repaired"]))
    );
    // The damaged chunk is now unused: a full prune repacks it away and check is clean.
    let o = run(sv()
        .args(["prune", "--max-unused", "0%", "--repo"])
        .arg(&f.repo));
    assert_eq!(o.code, 0, "prune: {}", o.stderr);
    assert_clean(&f.repo, "after repair snapshots --forget and prune");
}

/// The pack holding snapshot `id`'s root tree.
fn root_tree_pack(repo: &Path, id: &str) -> PathBuf {
    let vault = open(repo);
    let index = vault.load_index().unwrap();
    let (_, snap) = vault
        .list_snapshots()
        .unwrap()
        .into_iter()
        .find(|(i, _)| i.to_hex() == id)
        .unwrap();
    let hex = index.get(&snap.tree).unwrap().pack.to_hex();
    repo.join("data").join(&hex[..2]).join(&hex)
}

#[test]
fn repair_snapshots_drops_a_folder_whose_listing_is_lost_and_names_it() {
    let f = fixture();
    // The first night's tree pack holds every listing of night 1, and b/deep's for both nights
    // (it did not change); night 2 stored only its changed listings (root, src, a, b).
    let pack = root_tree_pack(&f.repo, &f.nights[0].0);
    assert_ne!(pack, root_tree_pack(&f.repo, &f.nights[1].0));
    fs::remove_file(&pack).unwrap();
    let o = run(sv()
        .args(["repair", "snapshots", "--json", "--repo"])
        .arg(&f.repo));
    assert_eq!(
        o.code, 3,
        "night 1 cannot be saved at all: {}{}",
        o.stdout, o.stderr
    );
    let r = json(&o);
    assert_eq!(r["unrepairable"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["unrepairable"][0]["id"], f.nights[0].0.as_str(), "{r}");
    assert!(
        r["unrepairable"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("root folder"),
        "{r}"
    );
    let fixed = &r["repaired"][0];
    assert_eq!(fixed["original"], f.nights[1].0.as_str(), "{r}");
    assert_eq!(
        fixed["dirs_removed"],
        serde_json::json!([f.src.join("b/deep").display().to_string()]),
        "{r}"
    );
    assert_eq!(fixed["files_removed"], serde_json::json!([]), "{r}");
    let expected = f.root.join("expected");
    crate::common::copy_tree(&f.nights[1].1, &expected);
    fs::remove_dir_all(expected.join("b/deep")).unwrap();
    assert_restores(
        &f,
        &f.repo,
        fixed["repaired"].as_str().unwrap(),
        &expected,
        "repaired night 2",
    );
}

#[test]
fn repair_packs_heals_missing_and_damaged_packs_from_a_copy_with_other_keys() {
    let f = fixture();
    let copy = f.root.join("offsite");
    // The off-site copy has its own password, so every id differs between the two vaults.
    sv().env("SITEVAULT_PASSWORD", "another password")
        .args([
            "init",
            "--kdf-memory-kib",
            "8",
            "--kdf-iterations",
            "1",
            "--pack-size",
            "64KiB",
            "--repo",
        ])
        .arg(&copy)
        .assert()
        .success();
    let o = run(sv()
        .env("SITEVAULT_PASSWORD", "another password")
        .env("SITEVAULT_FROM_PASSWORD", PASSWORD)
        .args(["copy", "--from"])
        .arg(&f.repo)
        .arg("--repo")
        .arg(&copy));
    assert_eq!(o.code, 0, "copy: {}", o.stderr);

    // Damage: one data pack deleted, a byte flipped in another, and every tree pack gone.
    let (gone, _) = pack_of(&f.repo, &f.nights[0].0, &f.src.join("a/f01"));
    fs::remove_file(&gone).unwrap();
    let (hurt, at) = pack_of(&f.repo, &f.nights[1].0, &f.src.join("b/deep/g2"));
    assert_ne!(hurt, gone, "two different packs");
    flip(&hurt, at);
    for p in tree_packs(&f.repo) {
        fs::remove_file(p).unwrap();
    }
    assert_eq!(check(&f.repo).code, 1);

    let heal = |extra: &[&str]| {
        run(sv()
            .env("SITEVAULT_FROM_PASSWORD", "another password")
            .args(["repair", "packs", "--json", "--from"])
            .arg(&copy)
            .args(extra)
            .arg("--repo")
            .arg(&f.repo))
    };
    let before = files_under(&f.repo);
    let o = heal(&["--dry-run"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(files_under(&f.repo), before, "a dry run changes nothing");
    assert!(
        json(&o)["damaged_packs"].as_array().unwrap().len() >= 3,
        "{}",
        o.stdout
    );

    let o = heal(&[]);
    assert_eq!(o.code, 0, "repair packs: {}{}", o.stdout, o.stderr);
    let r = json(&o);
    assert_eq!(r["blobs_unhealed"], serde_json::json!([]), "{r}");
    // The two root listings, every listing below them, and the chunks of the two data packs.
    assert!(r["blobs_healed"].as_u64().unwrap() >= 8, "{r}");
    assert!(!hurt.exists(), "the damaged pack is replaced and deleted");
    assert_clean(&f.repo, "after repair packs");
    for (id, night) in &f.nights {
        assert_restores(&f, &f.repo, id, night, "after repair packs");
    }
    // A second run finds nothing to do.
    let o = heal(&[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(json(&o)["damaged_packs"], serde_json::json!([]));
}

#[test]
fn repair_packs_names_what_the_other_vault_cannot_supply() {
    let f = fixture();
    let copy = f.root.join("offsite");
    init_vault_with(&copy, &["--pack-size", "64KiB"]);
    // Only the first night was copied; the second night's changed file is nowhere else.
    let o = run(sv()
        .args(["copy", "--from"])
        .arg(&f.repo)
        .arg("--repo")
        .arg(&copy)
        .arg(&f.nights[0].0));
    assert_eq!(o.code, 0, "copy: {}", o.stderr);
    let (pack, _) = pack_of(&f.repo, &f.nights[1].0, &f.src.join("b/night.txt"));
    fs::remove_file(&pack).unwrap();
    let o = run(sv()
        .args(["repair", "packs", "--from"])
        .arg(&copy)
        .arg("--repo")
        .arg(&f.repo));
    assert_eq!(
        o.code, 3,
        "not everything could be healed: {}{}",
        o.stdout, o.stderr
    );
    assert!(o.stdout.contains("not found intact in"), "{}", o.stdout);
    // The first night is whole again; repair snapshots saves the rest of the second.
    assert_restores(
        &f,
        &f.repo,
        &f.nights[0].0,
        &f.nights[0].1,
        "after a partial heal",
    );
    let o = run(sv()
        .args(["repair", "snapshots", "--forget", "--json", "--repo"])
        .arg(&f.repo));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r = json(&o);
    assert_eq!(r["repaired"].as_array().unwrap().len(), 1, "{r}");
    assert!(
        r["repaired"][0]["files_removed"]
            .as_array()
            .unwrap()
            .contains(&Value::String(
                f.src.join("b/night.txt").display().to_string()
            )),
        "{r}"
    );
    assert_clean(
        &f.repo,
        "after repair packs, then repair snapshots --forget",
    );
}
