//! End-to-end benchmark: 7 nights of a Configuration Manager site server backed up with the real
//! `sitevault` binary, the last night restored and checked byte for byte, then what the nightly
//! job does after a backup (a structure `check`, `forget --keep-last 3 --prune`), next to the machine's
//! limits measured on the same data (BLAKE3, chunk + BLAKE3, zstd, zstd -d + verify, sealing,
//! page-cache reads and writes, serial vs parallel chunking) and, when `restic` is on PATH,
//! restic on the same nights.
//!
//! `cargo bench --bench e2e` runs it; the README's "End-to-end benchmark" section lists the
//! environment variables (`SITEVAULT_BENCH_SCALE`, `_DIR`, `_WRAP`). The results are printed as
//! a table and written to `target/e2e-bench.json`. Without `--bench` (`cargo test
//! --all-targets`) it runs a smoke version: 2 tiny nights, no restic, no JSON.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};

/// Peak RSS of a child process, measured through a small launcher.
#[path = "support/measure.rs"]
mod measure;
use rayon::prelude::*;
use serde_json::{Value, json};
use sitevault::chunker::{Chunker, ChunkerParams, Policy};
use sitevault::crypto::Sealer;

const MIB: u64 = 1 << 20;
const HOST: &str = "SITESRV01";
const LABEL: &str = "sccm-CEN";
const PASSWORD: &str = "e2e-bench-password";
/// The vault's default compression level (`init --compression-level`).
const ZSTD_LEVEL: i32 = 3;
const SCUP_USERS: [&str; 4] = ["alice.admin", "bob.sccm", "carol.ops", "dave.patch"];

// Keys of the deterministic generators, one per kind of file.
const DB: u64 = 1;
const LDF: u64 = 2;
const LOG: u64 = 3;
const SMALL: u64 = 4;
const SCUP: u64 = 5;
const LIB: u64 = 6;
const CHANGES: u64 = 7;
/// Snapshots the closing `forget --prune` phase keeps.
const KEEP: u32 = 3;

fn main() -> Result<()> {
    let args: Vec<_> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == measure::MEASURE) {
        measure::child(&args[2..]);
    }
    let cfg = Config::from_env()?;
    let load_start = load_average();
    println!(
        "sitevault e2e benchmark: {} mode, scale {}, {} nights, {} cores; {load_start}",
        if cfg.bench { "bench" } else { "smoke" },
        cfg.scale,
        cfg.nights,
        rayon::current_num_threads()
    );
    let mut report = run_all(&cfg)?;
    report.load_end = load_average();
    print_report(&cfg, &report);
    if cfg.bench {
        let path = json_path();
        fs::write(&path, serde_json::to_string_pretty(&report.json(&cfg))?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("results written to {}", path.display());
    }
    ensure!(report.restored_ok, "a restore differed from the data set");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Configuration

struct Config {
    /// Full benchmark (`cargo bench`); otherwise a quick smoke run.
    bench: bool,
    scale: f64,
    nights: u32,
    restic: bool,
    parent: PathBuf,
    /// A command prefix for every sitevault command (a profiler), `{phase}` replaced by the
    /// phase's name.
    wrap: Option<String>,
}

impl Config {
    fn from_env() -> Result<Config> {
        let bench = std::env::args().skip(1).any(|a| a == "--bench");
        let scale = match std::env::var("SITEVAULT_BENCH_SCALE") {
            Ok(s) if bench => s
                .parse::<f64>()
                .with_context(|| format!("SITEVAULT_BENCH_SCALE={s} is not a number"))?,
            _ if bench => 1.0,
            _ => 0.004,
        };
        ensure!(
            scale.is_finite() && scale > 0.0,
            "SITEVAULT_BENCH_SCALE must be positive"
        );
        let parent = std::env::var_os("SITEVAULT_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        Ok(Config {
            bench,
            scale,
            nights: if bench { 7 } else { 2 },
            restic: bench && restic_version().is_some(),
            parent,
            wrap: std::env::var("SITEVAULT_BENCH_WRAP").ok(),
        })
    }
}

fn restic_version() -> Option<String> {
    let out = Command::new("restic").arg("version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn load_average() -> String {
    Command::new("uptime")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .or_else(|| fs::read_to_string("/proc/loadavg").ok())
        .unwrap_or_else(|| "load average unknown".into())
}

/// `<target>/e2e-bench.json`, from this executable's path `<target>/release/deps/e2e-…`.
fn json_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.ancestors().nth(3)?.to_path_buf())
        })
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("e2e-bench.json")
}

// ---------------------------------------------------------------------------------------------
// Deterministic generators

fn seed(parts: &[u64]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(&p.to_le_bytes());
    }
    *h.finalize().as_bytes()
}

/// Incompressible bytes keyed by `parts` (BLAKE3 XOF).
fn random_fill(parts: &[u64], buf: &mut [u8]) {
    blake3::Hasher::new_keyed(&seed(parts))
        .finalize_xof()
        .fill(buf);
}

/// SplitMix64, seeded from `parts`.
struct Rng(u64);

impl Rng {
    fn new(parts: &[u64]) -> Rng {
        Rng(u64::from_le_bytes(seed(parts)[..8].try_into().unwrap()))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const COMPONENTS: [&str; 8] = [
    "SMS_SITE_BACKUP",
    "SMS_SITE_COMPONENT_MANAGER",
    "SMS_HIERARCHY_MANAGER",
    "SMS_DISTRIBUTION_MANAGER",
    "SMS_STATUS_MANAGER",
    "SMS_INVENTORY_DATA_LOADER",
    "SMS_POLICY_PROVIDER",
    "SMS_WSUS_SYNC_MANAGER",
];
const WORDS: [&str; 32] = [
    "Info:",
    "Starting",
    "backup",
    "of",
    "the",
    "site",
    "database",
    "CM_CEN",
    "completed",
    "Copying",
    "file",
    "to",
    "SiteServer",
    "inboxes",
    "STATMSG:",
    "ID=5035",
    "SEV=I",
    "VSS",
    "writer",
    "snapshot",
    "SQL",
    "Server",
    "successfully",
    "package",
    "CEN00012",
    "content",
    "library",
    "updated",
    "policy",
    "for",
    "client",
    "\\\\SITESRV01\\SMS_CEN",
];

/// One CMTrace-format line, like those of smsbkup.log and the site server's components.
fn log_line(rng: &mut Rng, out: &mut Vec<u8>) {
    out.extend_from_slice(b"<![LOG[");
    for i in 0..3 + rng.below(10) {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(rng.pick(&WORDS).as_bytes());
    }
    if rng.below(4) == 0 {
        write!(out, " 0x{:08X}", rng.next() as u32).unwrap();
    }
    let ms = rng.below(86_400_000);
    write!(
        out,
        "]LOG]!><time=\"{:02}:{:02}:{:02}.{:03}+000\" date=\"01-{:02}-2025\" component=\"{}\" \
         context=\"\" type=\"{}\" thread=\"{}\" file=\"{}.cpp:{}\">\r\n",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000,
        1 + rng.below(28),
        rng.pick(&COMPONENTS),
        1 + rng.below(3),
        1000 + rng.below(9000),
        rng.pick(&["smsbkup", "sitecomp", "distmgr", "statmgr"]),
        rng.below(5000),
    )
    .unwrap();
}

/// `len` bytes of log-like text.
fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 512);
    while out.len() < len {
        log_line(rng, &mut out);
    }
    out.truncate(len);
    out
}

/// A database page: the 96-byte header, rows (small integers, a datetime, a GUID, a short
/// binary column and UTF-16 text) filling 75-95% of it, free space (zeros), and the slot array
/// growing back from the end. zstd gets it to about a third, as real SQL Server pages.
fn fill_page(p: &mut [u8], tag: u64, no: u64, version: u32) {
    p.fill(0);
    p[0] = 1;
    p[1] = tag as u8;
    p[4..12].copy_from_slice(&no.to_le_bytes());
    p[12..16].copy_from_slice(&version.to_le_bytes());
    p[16..24].copy_from_slice(&(no / 128).to_le_bytes());
    let mut rng = Rng::new(&[tag, no, version as u64]);
    let used = p.len() * (75 + rng.below(21) as usize) / 100;
    let (mut at, mut slots, mut row) = (96, 0, Vec::with_capacity(256));
    loop {
        row.clear();
        page_row(&mut rng, &mut row);
        if at + row.len() + 2 * (slots + 1) > used {
            break;
        }
        p[at..at + row.len()].copy_from_slice(&row);
        let slot = p.len() - 2 * (slots + 1);
        p[slot..slot + 2].copy_from_slice(&(at as u16).to_le_bytes());
        (at, slots) = (at + row.len(), slots + 1);
    }
    p[24..26].copy_from_slice(&(slots as u16).to_le_bytes());
}

fn page_row(rng: &mut Rng, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x30, 0x00]);
    out.extend_from_slice(&(rng.below(1 << 20) as u32).to_le_bytes());
    out.extend_from_slice(&(rng.below(16) as u32).to_le_bytes());
    out.extend_from_slice(&(1_735_000_000 + rng.below(3_000_000)).to_le_bytes());
    for _ in 0..2 + rng.below(4) {
        out.extend_from_slice(&rng.next().to_le_bytes()); // GUID, SID, hash
    }
    for i in 0..2 + rng.below(7) {
        if i > 0 {
            out.extend_from_slice(&[b' ', 0]);
        }
        for c in rng.pick(&WORDS).bytes() {
            out.extend_from_slice(&[c, 0]); // nvarchar
        }
    }
}

/// Night on which each of `n` items last changed: `rate` of them, picked afresh, change on every
/// night after the first.
fn scattered_versions(tag: u64, n: u64, rate: f64, night: u32) -> Vec<u32> {
    let mut v = vec![1; n as usize];
    for k in 2..=night {
        let mut rng = Rng::new(&[CHANGES, tag, k as u64]);
        for _ in 0..((n as f64 * rate).round() as u64).max(1) {
            v[rng.below(n) as usize] = k;
        }
    }
    v
}

/// A circular transaction log: each night after the first rewrites the next quarter of its
/// 256 KiB blocks (virtual log files).
fn circular_versions(pages: u64, pages_per_block: u64, night: u32) -> Vec<u32> {
    let blocks = pages.div_ceil(pages_per_block);
    let per_night = (blocks / 4).max(1);
    let mut v = vec![1; blocks as usize];
    for k in 2..=night {
        for j in 0..per_night {
            v[((k as u64 - 2) * per_night + j) as usize % blocks as usize] = k;
        }
    }
    (0..pages)
        .map(|p| v[(p / pages_per_block) as usize])
        .collect()
}

/// Write `pages` pages; those without a version (unallocated) are zeros.
fn write_pages(path: &Path, tag: u64, page: usize, pages: u64, versions: &[u32]) -> Result<()> {
    let mut out = create(path)?;
    let per_batch = ((16 * MIB) as usize / page) as u64;
    let mut buf = vec![0u8; per_batch as usize * page];
    for first in (0..pages).step_by(per_batch as usize) {
        let n = per_batch.min(pages - first) as usize;
        let batch = &mut buf[..n * page];
        batch.par_chunks_mut(page).enumerate().for_each(|(i, p)| {
            match versions.get(first as usize + i) {
                Some(&v) => fill_page(p, tag, first + i as u64, v),
                None => p.fill(0),
            }
        });
        out.write_all(batch)?;
    }
    Ok(())
}

fn create(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    File::create(path).with_context(|| format!("cannot create {}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// The data set

/// Sizes of one night's data set; scale 1.0 is about 1.5 GiB.
struct Shape {
    db_pages: u64,
    db_allocated: u64,
    ldf_pages: u64,
    log_lines: u64,
    small_files: u64,
    scup_pages: u64,
    lib_initial: u64,
    lib_nightly: u64,
    lib_max_file: u64,
}

impl Shape {
    fn new(scale: f64) -> Shape {
        let n = |x: f64, min: u64| ((x * scale).round() as u64).max(min);
        let db_pages = n(640.0 * 128.0, 64); // 640 MiB of 8 KiB pages
        let lib_initial = n(780.0 * MIB as f64, 4 * MIB);
        Shape {
            db_pages,
            db_allocated: db_pages * 95 / 100,
            ldf_pages: n(64.0 * 128.0, 32),
            log_lines: n(4.0 * MIB as f64 / 220.0, 50),
            small_files: n(3000.0, 20),
            scup_pages: n(8.0 * 256.0, 16), // 8 MiB of 4 KiB pages
            lib_initial,
            lib_nightly: n(8.0 * MIB as f64, 64 * 1024),
            lib_max_file: (lib_initial / 16).clamp(64 * 1024, 32 * MIB),
        }
    }
}

/// The files of one night, relative to the data root, sorted, with their sizes.
struct DataSet {
    files: Vec<(PathBuf, u64)>,
    bytes: u64,
}

/// Rewrite everything but the content library (new files, new mtimes), as the site backup task
/// does, and add the night's new content-library files.
fn generate_night(root: &Path, shape: &Shape, night: u32) -> Result<DataSet> {
    for dir in ["CENBackup", "Users"] {
        let dir = root.join(dir);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
    }
    let db = root.join("CENBackup/SiteDBServer");
    let versions = scattered_versions(DB, shape.db_allocated, 0.02, night);
    write_pages(&db.join("CM_CEN.mdf"), DB, 8192, shape.db_pages, &versions)?;
    let versions = circular_versions(shape.ldf_pages, 32, night);
    write_pages(
        &db.join("CM_CEN_log.ldf"),
        LDF,
        8192,
        shape.ldf_pages,
        &versions,
    )?;
    write_backup_log(&root.join("CENBackup/smsbkup.log"), shape, night)?;
    write_small_files(&root.join("CENBackup/SiteServer"), shape, night)?;
    write_scup(root, shape, night)?;
    write_library(root, shape, night)?;
    sync();
    scan(root)
}

/// A sliding window of log lines: each night drops the oldest 5% and appends as many new.
fn write_backup_log(path: &Path, shape: &Shape, night: u32) -> Result<()> {
    let first = (night as u64 - 1) * (shape.log_lines / 20).max(1);
    let mut out = Vec::new();
    for i in first..first + shape.log_lines {
        log_line(&mut Rng::new(&[LOG, i]), &mut out);
    }
    create(path)?.write_all(&out)?;
    Ok(())
}

const SITE_DIRS: [&str; 12] = [
    "inboxes/auth/ddm.box",
    "inboxes/statmgr.box/statmsgs",
    "inboxes/hman.box",
    "inboxes/distmgr.box",
    "inboxes/policypv.box/policy",
    "inboxes/colleval.box",
    "data/hinvarchive",
    "data/swdarchive",
    "install/configs",
    "Logs",
    "bin/x64/00000409",
    "OSD/boot",
];
const SITE_EXTS: [&str; 8] = ["SMX", "MIF", "INI", "XML", "SQL", "CFG", "SVF", "OFR"];

/// A few thousand text files of 1–8 KiB; 1% change each night.
fn write_small_files(dir: &Path, shape: &Shape, night: u32) -> Result<()> {
    let versions = scattered_versions(SMALL, shape.small_files, 0.01, night);
    (0..shape.small_files).into_par_iter().try_for_each(|i| {
        let mut rng = Rng::new(&[SMALL, i]);
        let name = format!(
            "{}/{:08X}.{}",
            rng.pick(&SITE_DIRS),
            (i as u32).wrapping_mul(0x9E37_79B1),
            rng.pick(&SITE_EXTS)
        );
        let len = 1024 + rng.below(7 * 1024) as usize;
        let body = text(&mut Rng::new(&[SMALL, i, versions[i as usize] as u64]), len);
        create(&dir.join(name))?.write_all(&body)?;
        Ok(())
    })
}

/// Per-user SCUP databases of 4 KiB pages; 1% of the pages change each night.
fn write_scup(root: &Path, shape: &Shape, night: u32) -> Result<()> {
    for (u, user) in SCUP_USERS.iter().enumerate() {
        let path = root.join(format!(
            "Users/{user}/AppData/Local/Microsoft/System Center Updates Publisher 2011/\
             5.00.1727.0000/Scupdb.sdf"
        ));
        let tag = SCUP + 16 * (u as u64 + 1);
        let versions = scattered_versions(tag, shape.scup_pages, 0.01, night);
        write_pages(&path, tag, 4096, shape.scup_pages, &versions)?;
    }
    Ok(())
}

/// Content-library file `j` added on `night`: its key, its path (named by a hash, under a
/// 4-digit prefix) and its size (log-uniform from 4 KiB to `max`).
fn library_file(night: u32, j: u64, max: u64) -> ([u64; 3], PathBuf, u64) {
    let key = [LIB, night as u64, j];
    let name = hex::encode_upper(seed(&key));
    let u = (Rng::new(&key).next() >> 11) as f64 / (1u64 << 53) as f64;
    let (lo, hi) = ((4096f64).ln(), (max.max(8192) as f64).ln());
    let size = (lo + u * (hi - lo)).exp() as u64;
    let path = format!("SCCMContentLib/FileLib/{}/{name}", &name[..4]);
    (key, PathBuf::from(path), size)
}

/// Immutable, incompressible files: `lib_initial` bytes on night 1, then about `lib_nightly`
/// more each night. Files already there are left alone.
fn write_library(root: &Path, shape: &Shape, night: u32) -> Result<()> {
    let mut files = Vec::new();
    for n in 1..=night {
        let (goal, max) = match n {
            1 => (shape.lib_initial, shape.lib_max_file),
            _ => (shape.lib_nightly, shape.lib_nightly / 2),
        };
        let mut total = 0;
        for j in 0.. {
            if total >= goal {
                break;
            }
            let (key, path, size) = library_file(n, j, max);
            total += size;
            files.push((key, root.join(path), size));
        }
    }
    files.par_iter().try_for_each(|(key, path, size)| {
        if fs::metadata(path).is_ok_and(|m| m.len() == *size) {
            return Ok(());
        }
        let mut out = create(path)?;
        let mut buf = vec![0u8; MIB as usize];
        for (k, at) in (0..*size).step_by(MIB as usize).enumerate() {
            let piece = &mut buf[..(size - at).min(MIB) as usize];
            random_fill(&[key[0], key[1], key[2], k as u64], piece);
            out.write_all(piece)?;
        }
        Ok(())
    })
}

/// Every regular file under `root`, relative, sorted, with its size.
fn scan(root: &Path) -> Result<DataSet> {
    let mut files = Vec::new();
    for e in walkdir::WalkDir::new(root).sort_by_file_name() {
        let e = e?;
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(root)?.to_path_buf();
            files.push((rel, e.metadata()?.len()));
        }
    }
    let bytes = files.iter().map(|f| f.1).sum();
    Ok(DataSet { files, bytes })
}

/// Bytes of all files under `dir`.
fn dir_size(dir: &Path) -> Result<u64> {
    Ok(scan(dir)?.bytes)
}

fn sync() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// BLAKE3 of each file of `set`, read under `base`, on all cores.
fn hashes(base: &Path, set: &DataSet) -> Result<Vec<blake3::Hash>> {
    set.files
        .par_iter()
        .map(|(rel, _)| {
            let mut h = blake3::Hasher::new();
            h.update_reader(File::open(base.join(rel))?)?;
            Ok(h.finalize())
        })
        .collect()
}

/// The restore of `root` under `target` holds exactly the files of `set`, byte for byte.
fn verify(root: &Path, set: &DataSet, want: &[blake3::Hash], target: &Path) -> Result<()> {
    let restored = target.join(root.strip_prefix("/")?);
    let got = scan(&restored)?;
    ensure!(
        got.files == set.files,
        "restored file list or sizes differ ({} files restored, {} expected)",
        got.files.len(),
        set.files.len()
    );
    let hashes = hashes(&restored, &got)?;
    if let Some(i) = (0..hashes.len()).find(|&i| hashes[i] != want[i]) {
        bail!("restored {} differs", set.files[i].0.display());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Running the tools

/// A backup program driven through its command line.
trait Tool {
    fn name(&self) -> &'static str;
    fn repo(&self) -> &Path;
    fn init(&self) -> Command;
    fn backup(&self, root: &Path, night: u32) -> Command;
    fn restore(&self, target: &Path) -> Command;
    /// A structure check (no data read).
    fn check(&self) -> Command;
    /// Forget all but the last `keep` snapshots and prune.
    fn prune(&self, keep: u32) -> Command;
}

struct Sitevault {
    repo: PathBuf,
    wrap: Option<String>,
}

impl Sitevault {
    /// The command for `sub`, behind the wrapper (`SITEVAULT_BENCH_WRAP`) if there is one.
    fn cmd(&self, sub: &str, phase: &str) -> Command {
        let bin = env!("CARGO_BIN_EXE_sitevault");
        let wrap = self
            .wrap
            .as_deref()
            .unwrap_or_default()
            .replace("{phase}", phase);
        let mut words = wrap.split_whitespace();
        let mut c = match words.next() {
            Some(program) => {
                let mut c = Command::new(program);
                c.args(words).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        c.arg(sub).arg("--repo").arg(&self.repo);
        c.env("SITEVAULT_PASSWORD", PASSWORD);
        c.env_remove("SITEVAULT_PASSWORD_FILE");
        c
    }
}

impl Tool for Sitevault {
    fn name(&self) -> &'static str {
        "sitevault"
    }
    fn repo(&self) -> &Path {
        &self.repo
    }
    fn init(&self) -> Command {
        self.cmd("init", "init")
    }
    fn backup(&self, root: &Path, night: u32) -> Command {
        let mut c = self.cmd("backup", &format!("night{night}"));
        let time = format!("2025-01-{night:02}T02:00:00Z");
        c.args(["--label", LABEL, "--host", HOST, "--time", &time, "--json"]);
        c.arg(root);
        c
    }
    fn restore(&self, target: &Path) -> Command {
        let mut c = self.cmd("restore", "restore");
        c.args(["latest", "--json", "--target"]).arg(target);
        c
    }
    fn check(&self) -> Command {
        let mut c = self.cmd("check", "check");
        c.arg("--json");
        c
    }
    fn prune(&self, keep: u32) -> Command {
        let mut c = self.cmd("forget", "prune");
        c.args(["--keep-last", &keep.to_string(), "--prune", "--json"]);
        c
    }
}

struct Restic {
    repo: PathBuf,
    cache: PathBuf,
}

impl Restic {
    fn cmd(&self, sub: &str) -> Command {
        let mut c = Command::new("restic");
        c.arg(sub);
        c.env("RESTIC_REPOSITORY", &self.repo);
        c.env("RESTIC_PASSWORD", PASSWORD);
        c.env("RESTIC_CACHE_DIR", &self.cache);
        c.env_remove("RESTIC_PASSWORD_FILE");
        c.env_remove("RESTIC_PASSWORD_COMMAND");
        c
    }
}

impl Tool for Restic {
    fn name(&self) -> &'static str {
        "restic"
    }
    fn repo(&self) -> &Path {
        &self.repo
    }
    fn init(&self) -> Command {
        self.cmd("init")
    }
    fn backup(&self, root: &Path, night: u32) -> Command {
        let mut c = self.cmd("backup");
        let time = format!("2025-01-{night:02} 02:00:00");
        c.args(["--host", HOST, "--tag", LABEL, "--time", &time]);
        c.arg(root);
        c
    }
    fn restore(&self, target: &Path) -> Command {
        let mut c = self.cmd("restore");
        c.args(["latest", "--target"]).arg(target);
        c
    }
    fn check(&self) -> Command {
        self.cmd("check")
    }
    fn prune(&self, keep: u32) -> Command {
        let mut c = self.cmd("forget");
        c.args(["--keep-last", &keep.to_string(), "--prune"]);
        c
    }
}

/// Wall time, CPU time and peak RSS of one command.
#[derive(Debug, Clone, Copy, Default)]
struct Phase {
    bytes: u64,
    secs: f64,
    cpu_secs: f64,
    rss_kib: u64,
}

impl Phase {
    fn mbps(&self) -> f64 {
        self.bytes as f64 / self.secs / 1e6
    }
    fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }
    /// Cores kept busy on average: CPU time (user + system) over wall time.
    fn cores(&self) -> f64 {
        self.cpu_secs / self.secs
    }
    /// Several phases as one: total bytes over total time, the highest peak RSS.
    fn combine(phases: &[Phase]) -> Phase {
        Phase {
            bytes: phases.iter().map(|p| p.bytes).sum(),
            secs: phases.iter().map(|p| p.secs).sum(),
            cpu_secs: phases.iter().map(|p| p.cpu_secs).sum(),
            rss_kib: phases.iter().map(|p| p.rss_kib).max().unwrap_or(0),
        }
    }
    fn json(&self) -> Value {
        json!({"bytes": self.bytes, "secs": self.secs, "mb_per_s": self.mbps(),
               "cpu_secs": self.cpu_secs, "peak_rss_mib": self.rss_mib()})
    }
}

/// Run `cmd` to completion; measure its wall time and peak RSS (see `support/measure.rs`).
fn run(cmd: Command, bytes: u64) -> Result<(Phase, String)> {
    let m = measure::run(cmd)?;
    Ok((
        Phase {
            bytes,
            secs: m.secs,
            cpu_secs: m.cpu_secs,
            rss_kib: m.rss_kib,
        },
        m.stdout,
    ))
}

/// One tool's measurements.
#[derive(Default)]
struct ToolRun {
    name: &'static str,
    init: Phase,
    nights: Vec<Phase>,
    vault_after: Vec<u64>,
    restore: Phase,
    check: Phase,
    /// `forget --keep-last KEEP --prune`.
    prune: Phase,
    summaries: Vec<Value>,
}

impl ToolRun {
    fn later(&self) -> Phase {
        Phase::combine(&self.nights[1..])
    }
    fn vault_bytes(&self) -> u64 {
        self.vault_after.last().copied().unwrap_or(0)
    }
    fn json(&self) -> Value {
        json!({
            "init": self.init.json(),
            "nights": self.nights.iter().zip(&self.vault_after).map(|(p, v)| {
                let mut j = p.json();
                j["vault_bytes_after"] = json!(v);
                j
            }).collect::<Vec<_>>(),
            "night_1": self.nights[0].json(),
            "later_nights": self.later().json(),
            "restore": self.restore.json(),
            "check": self.check.json(),
            "forget_prune": self.prune.json(),
            "vault_bytes": self.vault_bytes(),
            "summaries": self.summaries,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The run

struct Report {
    data_bytes: Vec<u64>,
    files: usize,
    tools: Vec<ToolRun>,
    limits: Limits,
    restored_ok: bool,
    restic: Option<String>,
    load_end: String,
}

fn run_all(cfg: &Config) -> Result<Report> {
    let tmp = tempfile::Builder::new()
        .prefix("sitevault-e2e-")
        .tempdir_in(&cfg.parent)?;
    let base = tmp.path().canonicalize()?;
    let root = base.join("data");
    fs::create_dir_all(&root)?;
    let mut tools: Vec<Box<dyn Tool>> = vec![Box::new(Sitevault {
        repo: base.join("vault"),
        wrap: cfg.wrap.clone(),
    })];
    if cfg.restic {
        tools.push(Box::new(Restic {
            repo: base.join("restic-repo"),
            cache: base.join("restic-cache"),
        }));
    }
    let mut runs: Vec<ToolRun> = tools
        .iter()
        .map(|t| {
            let (init, _) = run(t.init(), 0)?;
            Ok(ToolRun {
                name: t.name(),
                init,
                ..ToolRun::default()
            })
        })
        .collect::<Result<_>>()?;

    let shape = Shape::new(cfg.scale);
    let mut data_bytes = Vec::new();
    let mut set = None;
    for night in 1..=cfg.nights {
        let s = generate_night(&root, &shape, night)?;
        print!(
            "night {night}: {:.1} MiB in {} files",
            s.bytes as f64 / MIB as f64,
            s.files.len()
        );
        for (tool, r) in tools.iter().zip(&mut runs) {
            let (phase, out) = run(tool.backup(&root, night), s.bytes)?;
            sync();
            r.nights.push(phase);
            r.vault_after.push(dir_size(tool.repo())?);
            print!(
                "; {} {:.2} s ({:.0} MB/s, {:.1} cores, {:.0} MiB RSS",
                r.name,
                phase.secs,
                phase.mbps(),
                phase.cores(),
                phase.rss_mib()
            );
            if tool.name() == "sitevault" {
                let summary: Value = serde_json::from_str(&out)?;
                let read = summary["summary"]["bytes_read"].as_u64().unwrap_or(0);
                print!(", read {:.0} MiB", mib(read));
                r.summaries.push(summary);
            }
            print!(")");
        }
        println!();
        data_bytes.push(s.bytes);
        set = Some(s);
    }
    let set = set.context("no nights")?;

    println!(
        "measuring the machine's limits on night {}'s data",
        cfg.nights
    );
    let files: Vec<PathBuf> = set.files.iter().map(|(p, _)| root.join(p)).collect();
    let limits = measure_limits(&files, &base.join("write-test"))?;
    let want = hashes(&root, &set)?;

    let mut restored_ok = true;
    for (tool, r) in tools.iter().zip(&mut runs) {
        let target = base.join(format!("restore-{}", tool.name()));
        let (phase, _) = run(tool.restore(&target), set.bytes)?;
        sync();
        r.restore = phase;
        match verify(&root, &set, &want, &target) {
            Ok(()) => println!(
                "{} restore: {:.2} s, verified byte-identical",
                r.name, phase.secs
            ),
            Err(e) => {
                println!(
                    "{} restore: {:.2} s, VERIFY FAILED: {e:#}",
                    r.name, phase.secs
                );
                restored_ok = false;
            }
        }
        fs::remove_dir_all(&target)?;
    }
    // What the nightly job does after its backup: a structure check, then retention with prune.
    for (tool, r) in tools.iter().zip(&mut runs) {
        let (check, _) = run(tool.check(), 0)?;
        let (prune, _) = run(tool.prune(KEEP), 0)?;
        r.check = check;
        r.prune = prune;
        println!(
            "{} check: {:.2} s, {:.0} MiB RSS; forget --keep-last {KEEP} --prune: {:.2} s, {:.0} MiB RSS, vault {:.1} MiB after",
            r.name,
            check.secs,
            check.rss_mib(),
            prune.secs,
            prune.rss_mib(),
            mib(dir_size(tool.repo())?)
        );
    }
    Ok(Report {
        data_bytes,
        files: set.files.len(),
        tools: runs,
        limits,
        restored_ok,
        restic: if cfg.restic { restic_version() } else { None },
        load_end: String::new(),
    })
}

// ---------------------------------------------------------------------------------------------
// The machine's limits

/// Throughputs in MB/s of original data: in-memory work on all cores (the data is read first,
/// untimed), and reading and writing files in the page cache.
#[derive(Debug, Default)]
struct Limits {
    blake3: f64,
    chunk_blake3: f64,
    zstd: f64,
    unzstd_verify: f64,
    read: f64,
    write: f64,
    /// XChaCha20-Poly1305 sealing and opening of what zstd left (sitevault's own `Sealer`).
    seal: f64,
    open: f64,
    chunk_serial: f64,
    chunk_parallel: f64,
    chunk_identical: bool,
    /// Stored / original bytes when every 1 MiB piece is compressed, or kept as is if that is
    /// smaller.
    zstd_ratio: f64,
}

/// A piece of a file, chunked with its file's policy.
struct Region {
    file: usize,
    offset: u64,
    len: usize,
    policy: Policy,
}

fn regions(files: &[PathBuf], chunker: &Chunker, size: u64) -> Result<Vec<Region>> {
    let mut out = Vec::new();
    for (file, path) in files.iter().enumerate() {
        let len = fs::metadata(path)?.len();
        let name = path.file_name().unwrap_or_default().as_encoded_bytes();
        let policy = chunker.policy_for(name);
        for offset in (0..len).step_by(size as usize) {
            let len = (len - offset).min(size) as usize;
            out.push(Region {
                file,
                offset,
                len,
                policy,
            });
        }
    }
    Ok(out)
}

fn read_region(files: &[PathBuf], r: &Region) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; r.len];
    File::open(&files[r.file])?.read_exact_at(&mut buf, r.offset)?;
    Ok(buf)
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let t = f();
    (t, start.elapsed().as_secs_f64())
}

fn measure_limits(files: &[PathBuf], scratch: &Path) -> Result<Limits> {
    let chunker = Chunker::new(ChunkerParams::default(), 0x5EED)?;
    let regions = regions(files, &chunker, 64 * MIB)?;
    let key = seed(&[0]);
    let sealer = Sealer::encrypted(&key);
    let (mut bytes, mut stored, mut t) = (0u64, 0u64, [0f64; 6]);
    // Batches of up to 256 MiB: read (untimed), then each computation on all cores.
    let mut batches = vec![Vec::new()];
    let mut in_batch = 0;
    for r in &regions {
        if in_batch + r.len > (256 * MIB) as usize {
            batches.push(Vec::new());
            in_batch = 0;
        }
        in_batch += r.len;
        batches.last_mut().unwrap().push(r);
    }
    for batch in batches {
        let bufs: Vec<Vec<u8>> = batch
            .par_iter()
            .map(|r| read_region(files, r))
            .collect::<Result<_>>()?;
        let pieces: Vec<&[u8]> = bufs.iter().flat_map(|b| b.chunks(MIB as usize)).collect();
        bytes += pieces.iter().map(|p| p.len() as u64).sum::<u64>();

        let (sums, secs) = timed(|| {
            pieces
                .par_iter()
                .map(|p| blake3::hash(p))
                .collect::<Vec<_>>()
        });
        t[0] += secs;
        let (_, secs) = timed(|| {
            bufs.par_iter()
                .zip(&batch)
                .map(|(b, r)| chunk_and_hash(&chunker, r.policy, b, &key))
                .sum::<usize>()
        });
        t[1] += secs;
        let (packed, secs) = timed(|| {
            pieces
                .par_iter()
                .map(|p| {
                    zstd::bulk::compress(p, ZSTD_LEVEL).map(|c| (c.len() < p.len()).then_some(c))
                })
                .collect::<std::io::Result<Vec<_>>>()
        });
        let packed = packed?;
        t[2] += secs;
        stored += (packed.iter().zip(&pieces))
            .map(|(c, p)| c.as_ref().map_or(p.len(), |c| c.len()) as u64)
            .sum::<u64>();
        let (ok, secs) = timed(|| {
            packed
                .par_iter()
                .zip(&pieces)
                .zip(&sums)
                .all(|((c, p), sum)| unpack_and_verify(c.as_deref(), p, sum))
        });
        ensure!(ok, "zstd round trip failed");
        t[3] += secs;
        let (sealed, secs) = timed(|| {
            (packed.par_iter().zip(&pieces))
                .map(|(c, p)| sealer.seal(c.as_deref().unwrap_or(p), None))
                .collect::<sitevault::Result<Vec<_>>>()
        });
        let sealed = sealed?;
        t[4] += secs;
        let (ok, secs) = timed(|| {
            (sealed.par_iter().zip(&packed).zip(&pieces)).all(|((s, c), p)| {
                let len = c.as_ref().map_or(p.len(), |c| c.len());
                sealer
                    .open(s, Some(len), "bench")
                    .is_ok_and(|o| o.len() == len)
            })
        });
        ensure!(ok, "XChaCha20-Poly1305 round trip failed");
        t[5] += secs;
    }
    let (serial, parallel, identical) = chunker_speedup(files, &chunker)?;
    let mb = |secs: f64| bytes as f64 / secs / 1e6;
    Ok(Limits {
        blake3: mb(t[0]),
        chunk_blake3: mb(t[1]),
        zstd: mb(t[2]),
        unzstd_verify: mb(t[3]),
        seal: mb(t[4]),
        open: mb(t[5]),
        read: page_cache_read(files)?,
        write: page_cache_write(files, scratch)?,
        chunk_serial: serial,
        chunk_parallel: parallel,
        chunk_identical: identical,
        zstd_ratio: stored as f64 / bytes as f64,
    })
}

/// Cut `buf` as the vault would and hash every chunk with a keyed BLAKE3.
fn chunk_and_hash(chunker: &Chunker, policy: Policy, buf: &[u8], key: &[u8; 32]) -> usize {
    let mut start = 0;
    let mut n = 0;
    for end in chunker.boundaries(policy, buf, true) {
        n += blake3::keyed_hash(key, &buf[start..end]).as_bytes()[0] as usize;
        start = end;
    }
    n
}

/// What restore does per blob, minus decryption: decompress (if stored compressed) and re-hash.
fn unpack_and_verify(packed: Option<&[u8]>, plain: &[u8], sum: &blake3::Hash) -> bool {
    match packed {
        Some(c) => zstd::bulk::decompress(c, plain.len()).is_ok_and(|d| blake3::hash(&d) == *sum),
        None => blake3::hash(plain) == *sum,
    }
}

/// Serial and parallel (16 MiB segments, as backup uses) content-defined chunking of up to
/// 64 MiB of the largest content-defined files, in MB/s (best of 5), and whether they agree.
fn chunker_speedup(files: &[PathBuf], chunker: &Chunker) -> Result<(f64, f64, bool)> {
    let mut cdc: Vec<(u64, &PathBuf)> = files
        .iter()
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().as_encoded_bytes();
            chunker.policy_for(name) == Policy::ContentDefined
        })
        .map(|p| Ok((fs::metadata(p)?.len(), p)))
        .collect::<Result<_>>()?;
    cdc.sort_by_key(|c| std::cmp::Reverse(c.0));
    let mut buf = Vec::new();
    for (_, p) in cdc {
        if buf.len() >= (64 * MIB) as usize {
            break;
        }
        File::open(p)?.read_to_end(&mut buf)?;
    }
    buf.truncate((64 * MIB) as usize);
    let best = |f: &dyn Fn() -> Vec<usize>| {
        (0..5)
            .map(|_| timed(f))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap()
    };
    let (serial, ts) = best(&|| chunker.boundaries(Policy::ContentDefined, &buf, true));
    let (parallel, tp) = best(&|| {
        chunker.boundaries_parallel(Policy::ContentDefined, &buf, true, (16 * MIB) as usize)
    });
    let mb = |secs: f64| buf.len() as f64 / secs / 1e6;
    Ok((mb(ts), mb(tp), serial == parallel))
}

/// Read every file with a 1 MiB buffer, files in parallel; the second pass is timed.
fn page_cache_read(files: &[PathBuf]) -> Result<f64> {
    let pass = || -> Result<u64> {
        files
            .par_iter()
            .map(|p| {
                let mut f = File::open(p)?;
                let mut buf = vec![0u8; MIB as usize];
                let mut n = 0;
                loop {
                    match f.read(&mut buf)? {
                        0 => return Ok(n),
                        k => n += k as u64,
                    }
                }
            })
            .sum()
    };
    pass()?;
    let (bytes, secs) = timed(pass);
    Ok(bytes? as f64 / secs / 1e6)
}

/// Write files of the same sizes under `scratch` (new files, 1 MiB writes, files in parallel,
/// no fsync, as a restore does), in MB/s.
fn page_cache_write(files: &[PathBuf], scratch: &Path) -> Result<f64> {
    fs::create_dir_all(scratch)?;
    sync();
    let buf = vec![0x5Au8; MIB as usize];
    let (bytes, secs) = timed(|| -> Result<u64> {
        (files.par_iter().enumerate())
            .map(|(i, p)| {
                let len = fs::metadata(p)?.len();
                let mut out = File::create(scratch.join(i.to_string()))?;
                for at in (0..len).step_by(MIB as usize) {
                    out.write_all(&buf[..(len - at).min(MIB) as usize])?;
                }
                Ok(len)
            })
            .sum()
    });
    let bytes = bytes?;
    fs::remove_dir_all(scratch)?;
    sync();
    Ok(bytes as f64 / secs / 1e6)
}

// ---------------------------------------------------------------------------------------------
// Reporting

/// A goal from issue 3, met or not.
struct Target {
    what: String,
    value: f64,
    goal: f64,
    /// The value must be at most the goal (sizes, memory) rather than at least.
    at_most: bool,
}

impl Target {
    fn met(&self) -> bool {
        if self.at_most {
            self.value <= self.goal
        } else {
            self.value >= self.goal
        }
    }
}

impl Limits {
    /// Night 1 if its stages ran back to back on all cores with no overhead: read, chunk +
    /// hash, compress, seal, write the packs.
    fn night1_stages(&self) -> f64 {
        1.0 / (1.0 / self.read
            + 1.0 / self.chunk_blake3
            + 1.0 / self.zstd
            + 1.0 / self.seal
            + self.zstd_ratio / self.write)
    }
    /// The same for a restore: read the packs, open, decompress + verify, write the files.
    fn restore_stages(&self) -> f64 {
        1.0 / (self.zstd_ratio / self.read
            + 1.0 / self.open
            + 1.0 / self.unzstd_verify
            + 1.0 / self.write)
    }
}

impl Report {
    fn sitevault(&self) -> &ToolRun {
        &self.tools[0]
    }
    fn restic(&self) -> Option<&ToolRun> {
        self.tools.get(1)
    }

    fn ratios(&self) -> [(&'static str, f64); 3] {
        let (sv, l) = (self.sitevault(), &self.limits);
        [
            (
                "night 1 / min(BLAKE3, zstd)",
                sv.nights[0].mbps() / l.blake3.min(l.zstd),
            ),
            (
                "nights 2+ / chunk + BLAKE3",
                sv.later().mbps() / l.chunk_blake3,
            ),
            (
                "restore / zstd -d + verify",
                sv.restore.mbps() / l.unzstd_verify,
            ),
        ]
    }

    fn targets(&self) -> Vec<Target> {
        let l = &self.limits;
        let r = self.ratios();
        let t = |what: String, value, goal, at_most| Target {
            what,
            value,
            goal,
            at_most,
        };
        let mut out = vec![
            t(
                format!(
                    "parallel chunker / serial (identical: {})",
                    if l.chunk_identical { "yes" } else { "NO" }
                ),
                if l.chunk_identical {
                    l.chunk_parallel / l.chunk_serial
                } else {
                    0.0
                },
                1.7,
                false,
            ),
            t(r[1].0.into(), r[1].1, 0.8, false),
            t(r[0].0.into(), r[0].1, 0.8, false),
            t(r[2].0.into(), r[2].1, 0.7, false),
        ];
        if let Some(rs) = self.restic() {
            let sv = self.sitevault();
            out.push(t(
                "night 1 speed / restic".into(),
                rs.nights[0].secs / sv.nights[0].secs,
                3.0,
                false,
            ));
            out.push(t(
                "nights 2+ speed / restic".into(),
                rs.later().secs / sv.later().secs,
                4.0,
                false,
            ));
            out.push(t(
                "restore speed / restic".into(),
                rs.restore.secs / sv.restore.secs,
                3.0,
                false,
            ));
            out.push(t(
                "vault size / restic".into(),
                sv.vault_bytes() as f64 / rs.vault_bytes() as f64,
                0.55,
                true,
            ));
            for (what, a, b) in rss_phases(sv, rs) {
                out.push(t(format!("peak RSS / restic, {what}"), a / b, 1.0, true));
            }
        }
        out
    }

    fn json(&self, cfg: &Config) -> Value {
        let l = &self.limits;
        json!({
            "scale": cfg.scale,
            "nights": cfg.nights,
            "cores": rayon::current_num_threads(),
            "data_bytes_per_night": self.data_bytes,
            "files": self.files,
            "restic_version": self.restic,
            "restores_verified": self.restored_ok,
            "tools": self.tools.iter().map(|t| (t.name.to_string(), t.json())).collect::<serde_json::Map<_, _>>(),
            "limits_mb_per_s": {
                "blake3": l.blake3, "chunk_blake3": l.chunk_blake3, "zstd": l.zstd,
                "unzstd_verify": l.unzstd_verify, "page_cache_read": l.read, "page_cache_write": l.write,
                "seal": l.seal, "open": l.open,
                "night1_stages": l.night1_stages(), "restore_stages": l.restore_stages(),
                "chunker_serial": l.chunk_serial, "chunker_parallel": l.chunk_parallel,
            },
            "chunker_parallel_identical": l.chunk_identical,
            "zstd_ratio": l.zstd_ratio,
            "ratios": self.ratios().iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "targets": self.targets().iter().map(|t| json!({
                "what": t.what, "value": t.value, "goal": t.goal,
                "at_most": t.at_most, "met": t.met(),
            })).collect::<Vec<_>>(),
        })
    }
}

fn rss_phases(sv: &ToolRun, rs: &ToolRun) -> [(&'static str, f64, f64); 6] {
    [
        ("init", sv.init.rss_mib(), rs.init.rss_mib()),
        ("night 1", sv.nights[0].rss_mib(), rs.nights[0].rss_mib()),
        ("nights 2+", sv.later().rss_mib(), rs.later().rss_mib()),
        ("restore", sv.restore.rss_mib(), rs.restore.rss_mib()),
        ("check", sv.check.rss_mib(), rs.check.rss_mib()),
        ("forget --prune", sv.prune.rss_mib(), rs.prune.rss_mib()),
    ]
}

fn mib(b: u64) -> f64 {
    b as f64 / MIB as f64
}

fn print_report(cfg: &Config, r: &Report) {
    let sv = r.sitevault();
    let rs = r.restic();
    println!();
    println!(
        "== sitevault end-to-end: scale {}, {} nights, {:.1} MiB/night (last), {} files ==",
        cfg.scale,
        cfg.nights,
        mib(*r.data_bytes.last().unwrap()),
        r.files
    );
    let head = format!(
        "{:>7} {:>7} {:>5} {:>7} {:>9}",
        "MB/s", "secs", "cores", "RSS MiB", "vault MiB"
    );
    println!("{:<16} {head} | {head} | speedup  RSS x", "phase");
    let row = |name: &str, p: &dyn Fn(&ToolRun) -> (Phase, Option<u64>)| {
        let cell = |t: &ToolRun| {
            let (ph, v) = p(t);
            let rate = match ph.bytes {
                0 => "-".into(),
                _ => format!("{:.0}", ph.mbps()),
            };
            let vault = v.map_or("-".into(), |v| format!("{:.1}", mib(v)));
            format!(
                "{rate:>7} {:>7.2} {:>5.1} {:>7.1} {vault:>9}",
                ph.secs,
                ph.cores(),
                ph.rss_mib()
            )
        };
        let (other, ratio) = match rs {
            Some(rs) => {
                let (a, b) = (p(sv).0, p(rs).0);
                let ratio = format!(
                    "{:>7.2} {:>6.2}",
                    b.secs / a.secs,
                    a.rss_mib() / b.rss_mib()
                );
                (cell(rs), ratio)
            }
            None => (format!("{:<39}", "(no restic)"), String::new()),
        };
        println!("{name:<16} {} | {other} | {ratio}", cell(sv));
    };
    row("init", &|t| (t.init, None));
    for n in 0..cfg.nights as usize {
        row(&format!("backup night {}", n + 1), &|t| {
            (t.nights[n], Some(t.vault_after[n]))
        });
    }
    row(&format!("nights 2-{}", cfg.nights), &|t| {
        (t.later(), Some(t.vault_bytes()))
    });
    row("restore", &|t| (t.restore, None));
    row("check", &|t| (t.check, None));
    row("forget --prune", &|t| (t.prune, None));
    if rs.is_none() && !cfg.bench {
        println!("(smoke run: restic skipped, numbers too small to mean anything)");
    } else if rs.is_none() {
        println!("restic not found on PATH: install it (apt-get install restic) to compare");
    } else if let Some(v) = &r.restic {
        println!(
            "(sitevault | {v} | speedup = restic secs / sitevault secs, RSS x = sitevault / restic)"
        );
    }
    let l = &r.limits;
    println!();
    println!(
        "machine limits on night {}'s data, MB/s of original bytes on all cores \
         (a-d, g, h: data already in memory):",
        cfg.nights
    );
    let zstd = format!("(c) zstd -{ZSTD_LEVEL}, 1 MiB pieces");
    for (what, v) in [
        ("(a) BLAKE3, 1 MiB pieces", l.blake3),
        ("(b) chunk + keyed BLAKE3, 64 MiB", l.chunk_blake3),
        (&zstd, l.zstd),
        ("(d) zstd -d + BLAKE3 verify", l.unzstd_verify),
        ("(e) page-cache read, 1 MiB buffer", l.read),
        ("(f) page-cache write, new files", l.write),
        ("(g) XChaCha20-Poly1305 seal", l.seal),
        ("(h) XChaCha20-Poly1305 open", l.open),
        ("night 1 stages, e+b+c+g+f", l.night1_stages()),
        ("restore stages, e+h+d+f", l.restore_stages()),
    ] {
        println!("  {what:<36} {v:>8.0} MB/s");
    }
    println!(
        "  zstd -{ZSTD_LEVEL} ratio of the data set: {:.3}",
        l.zstd_ratio
    );
    println!(
        "  CDC serial {:.0} MB/s, parallel {:.0} MB/s ({:.2}x, identical boundaries: {})",
        l.chunk_serial,
        l.chunk_parallel,
        l.chunk_parallel / l.chunk_serial,
        l.chunk_identical
    );
    println!();
    println!("sitevault vs limits:");
    for (what, v) in r.ratios() {
        println!("  {what:<34} {v:>6.2}");
    }
    for (what, v) in [
        ("night 1 / (e) read", sv.nights[0].mbps() / l.read),
        ("nights 2+ / (e) read", sv.later().mbps() / l.read),
        ("restore / (f) write", sv.restore.mbps() / l.write),
        (
            "night 1 / its stages",
            sv.nights[0].mbps() / l.night1_stages(),
        ),
        (
            "restore / its stages",
            sv.restore.mbps() / l.restore_stages(),
        ),
    ] {
        println!("  {what:<34} {v:>6.2}");
    }
    println!();
    println!("targets (issue 3):");
    if !cfg.bench {
        println!("  not judged on a smoke run");
    }
    for t in r.targets().into_iter().filter(|_| cfg.bench) {
        let op = if t.at_most { "<=" } else { ">=" };
        let mark = if t.met() { "met " } else { "MISS" };
        println!(
            "  [{mark}] {:<46} {:>6.2} (goal {op} {})",
            t.what, t.value, t.goal
        );
    }
    println!();
    println!("restores verified byte-identical: {}", r.restored_ok);
    println!("load at end: {}", r.load_end);
}
