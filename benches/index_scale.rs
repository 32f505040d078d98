//! Index at scale: synthesizes vaults whose index files name 1 M, 10 M (and, on request,
//! 100 M) chunks, written as a backup writes them (sealed, 8 packs of 500 blobs per index file,
//! in a local-folder vault), then measures what every backup pays before it reads a byte: the
//! load time (`Vault::load_index`: list, read, open, decode, sort), the heap it keeps (a
//! counting allocator), and the lookup rate for known and unknown ids on one core and on all;
//! then a real `sitevault backup` and `sitevault prune --dry-run` of the vault, each with its
//! index in memory and on disk, timed and their peak RSS measured.
//!
//! `cargo bench --bench index_scale` (sizes: `SITEVAULT_BENCH_INDEX_SIZES=1M,10M,100M`; the
//! default is `1M,10M`; 100 M needs about 10 GB of RAM and 5 GB of disk). Results are printed
//! and written to `target/index-bench.json`. Without `--bench` (`cargo test --all-targets`) it
//! runs a 20,000-chunk smoke version.

use std::sync::atomic::Ordering;
use std::time::Instant;

use rayon::prelude::*;
use serde_json::json;
use sitevault::Id;
use sitevault::index::{IndexFile, IndexPack};
use sitevault::pack::{BlobKind, PackedBlob};
use sitevault::vault::{InitOptions, Vault};

/// Counts live heap bytes (`LIVE`) so the bench can report real memory costs.
#[path = "support/counting.rs"]
mod counting;
use counting::LIVE;

/// Peak RSS of the `sitevault backup` runs, measured through a small launcher.
#[path = "support/measure.rs"]
mod measure;

const PER_PACK: usize = 500;
const PACKS_PER_FILE: usize = 8;
const PER_FILE: usize = PER_PACK * PACKS_PER_FILE;

/// The ids of index file `f`: deterministic, so lookups can regenerate known ids.
fn ids_of_file(f: usize, n: usize) -> Vec<Id> {
    let mut bytes = vec![0u8; n * 32];
    let mut key = [7u8; 32];
    key[..8].copy_from_slice(&(f as u64).to_le_bytes());
    blake3::Hasher::new_keyed(&key)
        .finalize_xof()
        .fill(&mut bytes);
    bytes
        .chunks_exact(32)
        .map(|c| Id(c.try_into().expect("32 bytes")))
        .collect()
}

fn index_file(f: usize, n: usize) -> IndexFile {
    let ids = ids_of_file(f, n);
    IndexFile {
        supersedes: vec![],
        packs: ids
            .chunks(PER_PACK)
            .enumerate()
            .map(|(p, blobs)| {
                let mut pid = [0u8; 32];
                pid[..8].copy_from_slice(&((f * PACKS_PER_FILE + p) as u64).to_le_bytes());
                IndexPack {
                    id: Id(pid),
                    kind: BlobKind::Data,
                    blobs: blobs
                        .iter()
                        .enumerate()
                        .map(|(j, id)| PackedBlob {
                            id: *id,
                            offset: j as u32 * 65_536,
                            stored_len: 65_000,
                            raw_len: 65_536,
                        })
                        .collect(),
                }
            })
            .collect(),
    }
}

fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

/// Peak RSS since the last [`reset_peak`].
fn peak_mib() -> f64 {
    status_mib("VmHWM:")
}

/// Reset the kernel's peak-RSS mark (Linux: writing 5 to clear_refs).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn parse_count(s: &str) -> usize {
    let s = s.trim().to_ascii_uppercase();
    let (num, mult) = match s.strip_suffix('M') {
        Some(n) => (n, 1_000_000),
        None => match s.strip_suffix('K') {
            Some(n) => (n, 1_000),
            None => (s.as_str(), 1),
        },
    };
    num.parse::<usize>().expect("a size like 1M or 250K") * mult
}

fn run(n: usize, dir: &std::path::Path) -> serde_json::Value {
    let store = sitevault::open_store(
        dir.to_str().expect("utf-8 temp dir"),
        true,
        &Default::default(),
    )
    .expect("local store");
    let opts = InitOptions {
        password: Some(b"index bench".to_vec()),
        kdf: sitevault::crypto::KdfParams {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        },
        ..InitOptions::default()
    };
    let vault = Vault::init(store, opts).expect("init");
    let files = n.div_ceil(PER_FILE);
    let t = Instant::now();
    (0..files).into_par_iter().for_each(|f| {
        let count = PER_FILE.min(n - f * PER_FILE);
        let file = index_file(f, count);
        vault.save_index(&file).expect("save index");
        // Empty stand-ins for the packs, so a backup's listing of data/ names them all (it
        // reads nothing from packs its index already knows).
        for p in &file.packs {
            let hex = p.id.to_hex();
            let sub = dir.join("data").join(&hex[..2]);
            std::fs::create_dir_all(&sub).expect("data folder");
            std::fs::File::create(sub.join(&hex)).expect("pack stand-in");
        }
    });
    let write_secs = t.elapsed().as_secs_f64();
    let stored: u64 = vault
        .list_ids("index")
        .expect("list")
        .iter()
        .map(|(_, s)| s)
        .sum();

    let mut vault = vault;
    let mut modes = Vec::new();
    for (mode, budget) in [("memory", None), ("disk", Some(32u64 << 20))] {
        vault.set_index_budget(budget);
        modes.push(measure(&vault, n, files, stored, write_secs, mode));
    }
    let backups: Vec<_> = ["32MiB", "unlimited"]
        .iter()
        .map(|budget| backup(dir, n, budget))
        .collect();
    // Prune's analysis over the same vault (a dry run: every synthetic pack is unused, so a
    // real prune would only delete them). `SITEVAULT_BENCH_COMPARE_BIN` runs another build
    // of sitevault the same way, for before/after figures.
    let mut bins = vec![(
        "this build".to_string(),
        env!("CARGO_BIN_EXE_sitevault").to_string(),
    )];
    if let Ok(other) = std::env::var("SITEVAULT_BENCH_COMPARE_BIN") {
        bins.push((other.clone(), other));
    }
    let mut prunes = Vec::new();
    for (label, bin) in &bins {
        for budget in ["32MiB", "unlimited"] {
            prunes.push(prune(dir, n, bin, label, budget));
        }
    }
    json!({"chunks": n, "index_files": files, "stored_bytes": stored, "write_secs": write_secs, "modes": modes, "backups": backups, "prunes": prunes})
}

/// `sitevault prune --dry-run` with `--index-memory budget`, by the binary `bin`.
fn prune(
    dir: &std::path::Path,
    n: usize,
    bin: &str,
    label: &str,
    budget: &str,
) -> serde_json::Value {
    let mut cmd = std::process::Command::new(bin);
    cmd.env("SITEVAULT_PASSWORD", "index bench")
        .args([
            "prune",
            "--dry-run",
            "--json",
            "--index-memory",
            budget,
            "--repo",
        ])
        .arg(dir);
    let m = measure::run(cmd).expect("sitevault prune");
    let v: serde_json::Value = serde_json::from_str(&m.stdout).expect("prune --json");
    println!(
        "{n:>11} chunks, prune --dry-run with --index-memory {budget} ({label}): {:.2} s, peak RSS {:.0} MiB (index on disk: {}, {} packs would go)",
        m.secs,
        m.rss_kib as f64 / 1024.0,
        v["index_on_disk"],
        v["packs_deleted"]
    );
    json!({"binary": label, "index_memory": budget, "secs": m.secs, "cpu_secs": m.cpu_secs, "peak_rss_mib": m.rss_kib as f64 / 1024.0, "index_on_disk": v["index_on_disk"], "packs_deleted": v["packs_deleted"]})
}

/// A real `sitevault backup` of a small folder into the vault, with `--index-memory budget`:
/// what a nightly backup of a vault this size costs in time and peak RSS.
fn backup(dir: &std::path::Path, n: usize, budget: &str) -> serde_json::Value {
    let src = tempfile::tempdir().expect("source dir");
    for i in 0..16u8 {
        let bytes: Vec<u8> = (0..256 * 1024u32).map(|j| (j as u8) ^ i).collect();
        std::fs::write(src.path().join(format!("file{i}")), bytes).expect("source file");
    }
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sitevault"));
    cmd.env("SITEVAULT_PASSWORD", "index bench")
        .args(["backup", "--json", "--index-memory", budget, "--repo"])
        .arg(dir)
        .arg(src.path());
    let m = measure::run(cmd).expect("sitevault backup");
    let v: serde_json::Value = serde_json::from_str(&m.stdout).expect("backup --json");
    let index = &v["index"];
    println!(
        "{n:>11} chunks, backup with --index-memory {budget}: {:.2} s, peak RSS {:.0} MiB (index {} blobs, on disk: {}, {:.1} MiB in memory)",
        m.secs,
        m.rss_kib as f64 / 1024.0,
        index["blobs"],
        index["on_disk"],
        index["memory_bytes"].as_f64().unwrap_or(0.0) / 1048576.0
    );
    json!({"index_memory": budget, "secs": m.secs, "cpu_secs": m.cpu_secs, "peak_rss_mib": m.rss_kib as f64 / 1024.0, "index": index})
}

/// Load the index (in memory, or on disk past a 32 MiB budget) and look ids up in it.
fn measure(
    vault: &Vault,
    n: usize,
    files: usize,
    stored: u64,
    write_secs: f64,
    mode: &str,
) -> serde_json::Value {
    let heap_before = LIVE.load(Ordering::Relaxed);
    let rss_before = rss_mib();
    reset_peak();
    let t = Instant::now();
    let index = vault.load_index().expect("load index");
    let load_secs = t.elapsed().as_secs_f64();
    let heap = LIVE.load(Ordering::Relaxed).saturating_sub(heap_before);
    let rss_after = rss_mib();
    let peak = peak_mib();
    assert_eq!(index.len(), n, "every chunk indexed");
    assert_eq!(index.is_on_disk(), mode == "disk" && n * 48 > 32 << 20);

    // Known ids from across the vault, and ids it has never seen.
    // Every id of up to 250 index files spread over the vault (about 1 M), shuffled by a
    // stride so consecutive probes land far apart.
    let step = (files / 250).max(1);
    let mut known: Vec<Id> = (0..files)
        .step_by(step)
        .collect::<Vec<_>>()
        .into_par_iter()
        .flat_map_iter(|f| ids_of_file(f, PER_FILE.min(n - f * PER_FILE)))
        .collect();
    let len = known.len();
    known = (0..len).map(|i| known[(i * 7919) % len]).collect();
    let probes = known.len();
    let unknown = ids_of_file(usize::MAX, probes);
    let rate = |ids: &[Id], par: bool| {
        let t = Instant::now();
        let hits = if par {
            ids.par_iter().filter(|id| index.contains(id)).count()
        } else {
            ids.iter().filter(|id| index.contains(id)).count()
        };
        (hits, ids.len() as f64 / t.elapsed().as_secs_f64())
    };
    let (hits, hit1) = rate(&known, false);
    assert_eq!(hits, probes, "every known id is found");
    let (misses, miss1) = rate(&unknown, false);
    assert_eq!(misses, 0, "no unknown id is found");
    let (_, hit_all) = rate(&known, true);
    let (_, miss_all) = rate(&unknown, true);
    println!(
        "{n:>11} chunks, {mode:>6}: {files} index files, {:.0} MiB stored ({:.1} B/chunk); load {load_secs:.2} s ({:.2} M chunks/s); heap {:.0} MiB = {:.1} B/chunk (RSS +{:.0} MiB, peak while loading {peak:.0} MiB); lookups/s one core {:.1} M hit, {:.1} M miss; all cores {:.1} M hit, {:.1} M miss; written in {write_secs:.1} s",
        stored as f64 / 1048576.0,
        stored as f64 / n as f64,
        n as f64 / load_secs / 1e6,
        heap as f64 / 1048576.0,
        heap as f64 / n as f64,
        rss_after - rss_before,
        hit1 / 1e6,
        miss1 / 1e6,
        hit_all / 1e6,
        miss_all / 1e6,
    );
    json!({
        "mode": mode,
        "load_secs": load_secs, "peak_rss_mib": peak, "heap_bytes": heap, "heap_bytes_per_chunk": heap as f64 / n as f64,
        "rss_growth_mib": rss_after - rss_before,
        "lookups_per_sec": {"one_core_hit": hit1, "one_core_miss": miss1, "all_cores_hit": hit_all, "all_cores_miss": miss_all},
    })
}

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == measure::MEASURE) {
        measure::child(&args[2..]);
    }
    let bench = std::env::args().skip(1).any(|a| a == "--bench");
    let sizes: Vec<usize> = if bench {
        std::env::var("SITEVAULT_BENCH_INDEX_SIZES")
            .unwrap_or_else(|_| "1M,10M".into())
            .split(',')
            .map(parse_count)
            .collect()
    } else {
        vec![20_000]
    };
    println!(
        "index at scale: {} cores; {PER_PACK} blobs per pack, {PACKS_PER_FILE} packs per index file, sealed and compressed as a backup writes them",
        rayon::current_num_threads()
    );
    let mut out = Vec::new();
    for n in sizes {
        let dir = tempfile::tempdir().expect("temp dir");
        out.push(run(n, dir.path()));
    }
    if bench {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/index-bench.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&out).expect("json")).expect("write json");
        println!("results in {}", path.display());
    }
}
