//! The corruption campaign: a small vault (config, key file, snapshots, index files, data and
//! tree packs) has one byte changed at a time, at thousands of positions across every kind of
//! file. Every change must be reported by a read-data check that names what it damaged, and no
//! restore may succeed with wrong bytes. 100 %, not most.
//!
//! Each position runs in memory: the vault's files are loaded once into a map-backed store and
//! the damaged object is swapped in for one check and one restore of every readable snapshot,
//! so thousands of positions take seconds. A sample then goes through the real binary on disk
//! to pin the exit code and what it prints.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use sitevault::check::{CheckOptions, CheckReport, ReadData};
use sitevault::restore::RestoreOptions;
use sitevault::store::ObjectInfo;
use sitevault::tree::NodeKind;
use sitevault::{Destination, Error, Store, Vault};

use crate::common::{PASSWORD, random_bytes, run, sv};

/// A vault held in memory; `get` of a name in `damaged` returns that version instead.
struct MemStore {
    objects: BTreeMap<String, Bytes>,
    damaged: RwLock<Option<(String, Bytes)>>,
}

impl MemStore {
    fn current(&self, name: &str) -> Option<Bytes> {
        let d = self.damaged.read().unwrap();
        match d.as_ref() {
            Some((n, b)) if n == name => Some(b.clone()),
            _ => self.objects.get(name).cloned(),
        }
    }
}

impl Store for MemStore {
    fn location(&self) -> &str {
        "campaign"
    }
    fn get(&self, name: &str) -> sitevault::Result<Option<Bytes>> {
        Ok(self.current(name))
    }
    fn get_range(&self, name: &str, range: Range<u64>) -> sitevault::Result<Bytes> {
        let missing = || Error::Store {
            object: name.to_string(),
            detail: "not found".into(),
        };
        let b = self.current(name).ok_or_else(missing)?;
        if range.start > range.end || range.end > b.len() as u64 {
            // As the real stores do: a short read is an error, never fewer bytes.
            return Err(Error::Store {
                object: name.to_string(),
                detail: format!("range {range:?} beyond its {} bytes", b.len()),
            });
        }
        Ok(b.slice(range.start as usize..range.end as usize))
    }
    fn put(&self, name: &str, _data: Bytes) -> sitevault::Result<bool> {
        panic!("the campaign never writes, yet {name} was put")
    }
    fn list(&self, prefix: &str) -> sitevault::Result<Vec<ObjectInfo>> {
        Ok(self
            .objects
            .keys()
            .filter(|n| n.starts_with(prefix))
            .map(|n| ObjectInfo {
                name: n.clone(),
                size: self.current(n).map_or(0, |b| b.len() as u64),
                modified: jiff::Timestamp::UNIX_EPOCH,
            })
            .collect())
    }
    fn delete(&self, name: &str) -> sitevault::Result<()> {
        panic!("the campaign never deletes, yet {name} was deleted")
    }
}

/// The kinds of vault file, by the folder they live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Config,
    Key,
    Snapshot,
    Index,
    DataPack,
    TreePack,
}

impl Kind {
    fn of(name: &str, bytes: &[u8]) -> Kind {
        match name.split('/').next().unwrap_or("") {
            "config" => Kind::Config,
            "keys" => Kind::Key,
            "snapshots" => Kind::Snapshot,
            "index" => Kind::Index,
            "data" => match sitevault::pack::parse_preamble(bytes).expect("a pack's preamble") {
                sitevault::pack::BlobKind::Data => Kind::DataPack,
                sitevault::pack::BlobKind::Tree => Kind::TreePack,
            },
            other => panic!("unexpected vault file {name} ({other})"),
        }
    }

    /// How many positions of this kind to try at least.
    fn quota(self) -> usize {
        match self {
            Kind::Config | Kind::Key => 300,
            Kind::Snapshot | Kind::Index => 350,
            Kind::DataPack => 900,
            Kind::TreePack => 300,
        }
    }
}

/// xorshift64*, fixed seed: the same positions every run, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as usize % n.max(1)
    }
}

/// Three nights of 40 small files in four folders, a third rewritten each night, with one
/// 200 KB file: several data packs of 64 KiB and a tree pack per night.
fn build(w: &Path) -> (PathBuf, Vec<PathBuf>) {
    let repo = w.join("vault");
    let o = run(sv()
        .args(["init", "--kdf-memory-kib", "8", "--kdf-iterations", "1"])
        .args(["--pack-size", "64KiB", "--repo"])
        .arg(&repo));
    assert_eq!(o.code, 0, "init: {}", o.stderr);
    let mut sources = Vec::new();
    for night in 1..=3u64 {
        let src = w.join(format!("night{night}"));
        for i in 0..40u64 {
            let dir = src.join(format!("site{}", i % 4));
            fs::create_dir_all(&dir).unwrap();
            let version = if i % 3 == night % 3 { night } else { 0 };
            let len = 3_000 + (i as usize * 1_237) % 5_000;
            fs::write(
                dir.join(format!("f{i:02}.dat")),
                random_bytes(i * 100 + version, len),
            )
            .unwrap();
        }
        fs::write(src.join("big.mdf"), random_bytes(7_000 + night, 200_000)).unwrap();
        let o = run(sv()
            .args([
                "backup",
                "--time",
                &format!("2026-03-0{night}T02:00:00Z"),
                "--repo",
            ])
            .arg(&repo)
            .arg(&src));
        assert_eq!(o.code, 0, "backup night {night}: {}", o.stderr);
        sources.push(src);
    }
    (repo, sources)
}

/// Every file of the vault folder by object name.
fn load(repo: &Path) -> BTreeMap<String, Bytes> {
    walkdir::WalkDir::new(repo)
        .into_iter()
        .map(|e| e.expect("walk the vault"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let name = e
                .path()
                .strip_prefix(repo)
                .unwrap()
                .to_str()
                .unwrap()
                .replace('\\', "/");
            (name, Bytes::from(fs::read(e.path()).unwrap()))
        })
        .collect()
}

/// Every regular file below `dir` by relative path, with its content.
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

/// The positions to try in one file: its first and last 48 bytes (magic, lengths, nonces,
/// tags, header-length fields), then random ones until the kind's share is reached.
fn positions(len: usize, share: usize, rng: &mut Rng) -> Vec<usize> {
    if len <= share {
        return (0..len).collect();
    }
    let mut v: Vec<usize> = (0..48.min(len))
        .chain(len.saturating_sub(48)..len)
        .collect();
    while v.len() < share {
        v.push(rng.below(len));
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// What one position must produce, given the damaged object's name and kind.
/// `in_blob`: the byte lies inside a blob (not in the pack's preamble or header), so the
/// snapshots that use that blob must be named with the files or folders it holds.
fn assert_reported(
    name: &str,
    kind: Kind,
    in_blob: bool,
    outcome: &Result<CheckReport, String>,
    at: &str,
) {
    let hex = name.rsplit('/').next().unwrap();
    let report = match outcome {
        // The vault does not open or unlock: only the config and key files can do that, and
        // the message must name them.
        Err(msg) => {
            assert!(
                matches!(kind, Kind::Config | Kind::Key),
                "{at}: the vault did not open: {msg}"
            );
            let named = match kind {
                Kind::Config => msg.contains("config"),
                _ => msg.contains(hex) || msg.contains("key file"),
            };
            assert!(
                named,
                "{at}: the error does not name the damaged file: {msg}"
            );
            return;
        }
        Ok(r) => r,
    };
    assert!(!report.errors.is_empty(), "{at}: check found nothing wrong");
    let all: String = report.errors.iter().map(|p| format!("{p}\n")).collect();
    let named = match kind {
        Kind::Config => report.errors.iter().any(|p| p.object == "config"),
        _ => all.contains(hex),
    };
    assert!(named, "{at}: check does not name {name}:\n{all}");
    match kind {
        Kind::DataPack | Kind::TreePack => {
            let id = sitevault::Id::from_hex(hex).unwrap();
            assert!(
                report.damaged_packs.contains(&id),
                "{at}: the pack is not listed as damaged:\n{all}"
            );
            // A damaged preamble or header leaves every blob readable through the index:
            // only the pack is named then.
            assert!(
                !in_blob
                    || !report.damaged_snapshots.is_empty()
                        && report
                            .damaged_snapshots
                            .iter()
                            .all(|s| !s.files.is_empty() || !s.dirs.is_empty()),
                "{at}: no snapshot, file or folder named as damaged: {:?}\n{all}",
                report.damaged_snapshots
            );
        }
        Kind::Snapshot => assert!(
            report
                .damaged_snapshots
                .iter()
                .any(|s| s.id.to_hex() == hex && s.unreadable.is_some()),
            "{at}: the snapshot is not listed as unreadable:\n{all}"
        ),
        _ => {}
    }
}

/// Open the vault as it now is and check it; `Err` when it does not open.
fn check(store: &Arc<MemStore>) -> (Option<Vault>, Result<CheckReport, String>) {
    let vault = match Vault::open(store.clone(), Some(PASSWORD.as_bytes())) {
        Ok(v) => v,
        Err(e) => return (None, Err(e.to_string())),
    };
    let report = sitevault::check::check(
        &vault,
        &CheckOptions {
            read_data: ReadData::All,
            ..CheckOptions::default()
        },
    )
    .map_err(|e| e.to_string());
    (Some(vault), report)
}

/// Which snapshots (by night, 0-based) to restore after one change, each whole (`None`) or
/// only the files of these names.
type Plan = BTreeMap<usize, Option<BTreeSet<String>>>;

/// Restore what `plan` names from every snapshot that still loads; whatever restore writes
/// must be exact, and a restore that reports no error must have written all of it. Returns
/// (restores that reported no error, restores that reported the damage or refused).
fn restore_checked(
    vault: &Vault,
    sources: &[BTreeMap<PathBuf, Vec<u8>>],
    scratch: &Path,
    plan: &Plan,
    at: &str,
) -> (u64, u64) {
    let Ok(index) = vault.load_index() else {
        return (0, 1);
    };
    let Ok(snaps) = vault.list_snapshots() else {
        return (0, 1);
    };
    let (mut clean, mut refused) = (0, 0);
    for (_, snap) in snaps {
        // Night n was backed up at 2026-03-0n.
        let night = snap.time.to_string()[8..10].parse::<usize>().unwrap() - 1;
        let Some(only) = plan.get(&night) else {
            continue;
        };
        let expected: BTreeMap<&PathBuf, &Vec<u8>> = sources[night]
            .iter()
            .filter(|(p, _)| {
                only.as_ref()
                    .is_none_or(|names| names.contains(p.file_name().unwrap().to_str().unwrap()))
            })
            .collect();
        let _ = fs::remove_dir_all(scratch);
        let mut opts = RestoreOptions::new(Destination::Target(scratch.to_path_buf()));
        if let Some(names) = only {
            let names: Vec<String> = names.iter().cloned().collect();
            opts.filter = sitevault::pattern::PathFilter::new(&names, &[]).unwrap();
        }
        match sitevault::restore(vault, &index, &snap, &opts) {
            Err(_) => refused += 1,
            Ok(plan) => {
                let root = crate::common::restored_path(scratch, Path::new(&snap.paths[0]));
                let got = if root.exists() {
                    contents(&root)
                } else {
                    BTreeMap::new()
                };
                for (path, bytes) in &got {
                    assert!(
                        expected.get(path) == Some(&bytes),
                        "{at}: restore of night {} wrote wrong bytes to {}",
                        night + 1,
                        path.display()
                    );
                }
                if plan.summary.errors.is_empty() {
                    assert_eq!(
                        got.len(),
                        expected.len(),
                        "{at}: restore of night {} reported no error but left files out",
                        night + 1
                    );
                    clean += 1;
                } else {
                    refused += 1;
                }
            }
        }
    }
    (clean, refused)
}

/// Which snapshots (nights) use each blob: data blobs with the names of the files that hold
/// them, tree blobs with `None` (a damaged tree loses everything below it).
fn blob_users(vault: &Vault) -> HashMap<sitevault::Id, Plan> {
    let index = vault.load_index().unwrap();
    let mut users: HashMap<sitevault::Id, Plan> = HashMap::new();
    for (_, snap) in vault.list_snapshots().unwrap() {
        let night = snap.time.to_string()[8..10].parse::<usize>().unwrap() - 1;
        users.entry(snap.tree).or_default().insert(night, None);
        for e in sitevault::vault::walk::entries(vault, &index, &snap.tree).unwrap() {
            match &e.node.kind {
                NodeKind::File { chunks } => {
                    let name = String::from_utf8(e.node.name.clone()).unwrap();
                    for c in chunks {
                        let plan = users.entry(*c).or_default();
                        if let Some(names) = plan.entry(night).or_insert(Some(BTreeSet::new())) {
                            names.insert(name.clone());
                        }
                    }
                }
                NodeKind::Dir { subtree } => {
                    users.entry(*subtree).or_default().insert(night, None);
                }
                _ => {}
            }
        }
    }
    users
}

#[test]
fn every_single_byte_change_is_reported_and_never_restored_wrong() {
    let work = tempfile::tempdir().unwrap();
    let (repo, source_dirs) = build(work.path());
    let sources: Vec<_> = source_dirs.iter().map(|d| contents(d)).collect();
    let objects = load(&repo);
    let store = Arc::new(MemStore {
        objects: objects.clone(),
        damaged: RwLock::new(None),
    });

    // The undamaged vault checks clean and restores exactly.
    let (vault, report) = check(&store);
    let report = report.expect("the clean vault opens");
    assert!(report.is_clean(), "clean vault: {:?}", report.errors);
    // Thousands of restores: on tmpfs when there is one, as ext4 makes re-creating just
    // deleted files slow.
    let shm = Path::new("/dev/shm");
    let scratch_dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let scratch = scratch_dir.path().join("restore");
    let vault = vault.unwrap();
    let everything: Plan = (0..3).map(|n| (n, None)).collect();
    assert_eq!(
        restore_checked(&vault, &sources, &scratch, &everything, "clean"),
        (3, 0)
    );
    let users = blob_users(&vault);

    // Share each kind's quota among its files.
    let mut by_kind: BTreeMap<Kind, Vec<&String>> = BTreeMap::new();
    for (name, bytes) in &objects {
        by_kind.entry(Kind::of(name, bytes)).or_default().push(name);
    }
    assert_eq!(
        by_kind.len(),
        6,
        "every kind of file is present: {:?}",
        by_kind.keys()
    );
    // Byte ranges of every blob, with its id, by pack file name.
    let blobs: BTreeMap<String, Vec<(Range<usize>, sitevault::Id)>> = vault
        .scan_index()
        .expect("scan the index")
        .packs()
        .into_iter()
        .map(|p| {
            let ranges = p.blobs.iter().map(|b| {
                let start = b.offset as usize;
                (start..start + b.stored_len as usize, b.id)
            });
            (sitevault::vault::pack_name(&p.id), ranges.collect())
        })
        .collect();
    // Where no blob is hit, the newest night's multi-chunk file and a small one; every 25th
    // position restores everything.
    let sample: Plan = [(
        2,
        Some(["big.mdf".to_string(), "f00.dat".to_string()].into()),
    )]
    .into();
    let mut n = 0usize;
    let mut rng = Rng(0x5EED_C0DE_2026);
    let mut tried: BTreeMap<Kind, (usize, usize)> = BTreeMap::new();
    let (mut restores_clean, mut restores_refused) = (0, 0);
    for (kind, names) in &by_kind {
        let share = kind.quota().div_ceil(names.len());
        for name in names {
            let original = &objects[*name];
            for pos in positions(original.len(), share, &mut rng) {
                let mut damaged = original.to_vec();
                // A mask that differs per position, never zero.
                damaged[pos] ^= 1u8 << (pos % 8) | 0x01;
                if damaged[pos] == original[pos] {
                    damaged[pos] ^= 0x80;
                }
                *store.damaged.write().unwrap() = Some(((*name).clone(), Bytes::from(damaged)));
                let at = format!("{name} byte {pos} of {}", original.len());
                let (damaged_vault, outcome) = check(&store);
                let hit = blobs
                    .get(*name)
                    .and_then(|r| r.iter().find(|(r, _)| r.contains(&pos)))
                    .map(|(_, id)| *id);
                assert_reported(name, *kind, hit.is_some(), &outcome, &at);
                if let Some(v) = damaged_vault {
                    n += 1;
                    let plan = match hit {
                        _ if n.is_multiple_of(25) => &everything,
                        Some(id) => users.get(&id).expect("every blob is used"),
                        None => &sample,
                    };
                    let (c, r) = restore_checked(&v, &sources, &scratch, plan, &at);
                    restores_clean += c;
                    restores_refused += r;
                }
                let t = tried.entry(*kind).or_default();
                t.0 += 1;
                t.1 += 1;
            }
        }
    }
    *store.damaged.write().unwrap() = None;
    let total: usize = tried.values().map(|t| t.0).sum();
    eprintln!(
        "corruption campaign: {total} single-byte changes, {} reported by check --read-data (100%); \
         by kind (tried, reported): {tried:?}; {restores_clean} restores exact, {restores_refused} \
         refused or partial with the damage named, 0 with wrong bytes",
        tried.values().map(|t| t.1).sum::<usize>()
    );
    assert!(total >= 2_000, "only {total} positions tried");
    for (kind, (n, _)) in &tried {
        assert!(*n >= 100, "{kind:?}: only {n} positions");
    }
}

/// A sample of the same damage through the real binary on disk: `check --read-data` exits 1
/// and names the damaged object; the vault is whole again once the byte is put back.
#[test]
fn the_binary_exits_1_and_names_each_kind_of_damage() {
    let work = tempfile::tempdir().unwrap();
    let (repo, _) = build(work.path());
    let objects = load(&repo);
    let mut picks: BTreeMap<Kind, &String> = BTreeMap::new();
    for (name, bytes) in &objects {
        picks.entry(Kind::of(name, bytes)).or_insert(name);
    }
    for (kind, name) in picks {
        let path = repo.join(name);
        let original = fs::read(&path).unwrap();
        for pos in [0, original.len() / 2, original.len() - 1] {
            let mut damaged = original.clone();
            damaged[pos] ^= 0x20;
            fs::write(&path, &damaged).unwrap();
            let o = run(sv().args(["check", "--read-data", "--repo"]).arg(&repo));
            let text = format!("{}{}", o.stdout, o.stderr);
            assert_eq!(o.code, 1, "{name} byte {pos}: check exit code:\n{text}");
            let hex = name.rsplit('/').next().unwrap();
            let named = match kind {
                Kind::Config => text.contains("config"),
                _ => text.contains(hex),
            };
            assert!(named, "{kind:?} {name} byte {pos}: not named:\n{text}");
            fs::write(&path, &original).unwrap();
        }
    }
    let o = run(sv().args(["check", "--read-data", "--repo"]).arg(&repo));
    assert_eq!(
        o.code, 0,
        "after the bytes were put back: {}{}",
        o.stdout, o.stderr
    );
}
