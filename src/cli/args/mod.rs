//! The argument grammar: the command line, the argument groups several commands share, and
//! the value parsers; each family's arguments are in the files beside this one. Names here are
//! a contract with admins' batch files: do not rename.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod archive;
mod browse;
mod maintain;
mod read;
mod repair;

pub use archive::*;
pub use browse::*;
pub use maintain::*;
pub use read::*;
pub use repair::*;

#[derive(Debug, Parser)]
#[command(
    name = "sitevault",
    version,
    about = "Deduplicating, encrypted point-in-time archives of Configuration Manager sites"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new vault
    Init(InitArgs),
    /// Archive paths into one new snapshot
    Backup(BackupArgs),
    /// List snapshots
    Snapshots(SnapshotsArgs),
    /// List every entry of a snapshot by its original path
    Ls(LsArgs),
    /// Restore a snapshot under a folder or to its original paths
    Restore(RestoreArgs),
    /// Remove snapshots by retention policy or by id (then `prune` frees their data)
    Forget(ForgetArgs),
    /// Delete data no snapshot uses and repack mostly unused packs
    Prune(PruneArgs),
    /// Verify the vault's structure, and with --read-data its stored bytes
    Check(CheckArgs),
    /// Sizes, counts, and what each snapshot added
    Stats(StatsArgs),
    /// Remove stale locks left by processes that died (or, with --remove-all, every lock)
    Unlock(UnlockArgs),
    /// What changed between two snapshots: + added, - removed, M modified
    Diff(DiffArgs),
    /// Every snapshot holding a path that matches GLOB: a file's history across recovery points
    Find(FindArgs),
    /// The AfterBackup.bat job: verify the site backup, archive it and the other sources as one recovery point, apply retention
    Afterbackup(AfterbackupArgs),
    /// Copy snapshots the destination (--repo) lacks from another vault (--from), e.g. off site
    Copy(CopyArgs),
    /// Mount the recovery points as a read-only folder tree (Linux, FUSE); Ctrl-C unmounts
    Mount(MountArgs),
    /// Serve the recovery points over read-only WebDAV (Windows Explorer, rclone, davfs2)
    Serve(ServeArgs),
    /// Rebuild the index, save what survives of damaged snapshots, or heal packs from another vault
    Repair(RepairArgs),
}

#[derive(Debug, Args, Clone)]
pub struct RepoArgs {
    /// Vault location: a folder path
    #[arg(long, env = "SITEVAULT_REPOSITORY", value_name = "REPO", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub repo: String,
    /// File whose first line is the vault password (else SITEVAULT_PASSWORD)
    #[arg(long, env = "SITEVAULT_PASSWORD_FILE", value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Storage option for s3:// and az:// vaults, e.g. aws_region=eu-west-1 (repeatable;
    /// overrides the AWS_* / AZURE_* environment variables)
    #[arg(long = "option", short = 'o', value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// Read the vault as it stood at TIME, from the object versions of a versioned S3 bucket
    /// (ignoring later deletions and overwrites): for the read commands, and `copy`'s --from
    #[arg(long, value_name = "TIME", value_parser = parse_at)]
    pub vault_as_of: Option<jiff::Timestamp>,
    /// Memory the vault's index may take; a larger index is kept on disk, in the spool folder,
    /// and read one bucket per lookup (`unlimited`: always in memory)
    #[arg(long, env = "SITEVAULT_INDEX_MEMORY", value_name = "SIZE", default_value = "32MiB", value_parser = parse_index_memory)]
    pub index_memory: IndexMemory,
    /// Where index files are cached on this host, so a backup downloads only new ones (s3://
    /// and az:// vaults cache by default in the user's cache folder; a folder vault only when
    /// this is given)
    #[arg(
        long,
        env = "SITEVAULT_CACHE_DIR",
        value_name = "DIR",
        conflicts_with = "no_cache"
    )]
    pub cache_dir: Option<PathBuf>,
    /// Cache nothing on this host
    #[arg(long)]
    pub no_cache: bool,
}

/// `--index-memory`: a byte budget, or `None` for unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexMemory(pub Option<u64>);

/// The default `--index-memory`: 32 MiB is about 690,000 chunks (0.7 TB at 1 MiB chunks).
pub const DEFAULT_INDEX_MEMORY: IndexMemory = IndexMemory(Some(32 << 20));

fn parse_index_memory(s: &str) -> Result<IndexMemory, String> {
    sitevault::size::parse_budget(s).map(IndexMemory)
}

/// How long to wait for a conflicting lock (another backup, prune or check).
#[derive(Debug, Args, Clone)]
pub struct LockArgs {
    /// Wait this long for another process's conflicting lock, e.g. 0, 30s, 10m, 2h
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_wait)]
    pub lock_wait: std::time::Duration,
}

/// Readers may skip locking, e.g. on read-only media.
#[derive(Debug, Args, Clone)]
pub struct ReadLockArgs {
    #[command(flatten)]
    pub lock: LockArgs,
    /// Do not take a lock (read-only media); a prune running meanwhile can make reads fail
    #[arg(long)]
    pub no_lock: bool,
}

#[derive(Debug, Args, Clone)]
pub struct FilterArgs {
    /// Only snapshots with this label
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,
    /// Only snapshots from this host
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
}

/// `0`, `30s`, `10m` (minutes), `2h`.
fn parse_wait(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 10m or 2h"))?;
    let secs = match unit {
        "" if n == 0 => 0,
        "s" => n,
        "m" | "min" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => {
            return Err(format!(
                "{s:?}: give a number and a unit: s, m (minutes) or h"
            ));
        }
    };
    Ok(std::time::Duration::from_secs(secs))
}

/// `5%`, `5` (percent) or `unlimited`, as a fraction.
fn parse_percent(s: &str) -> Result<f64, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("unlimited") {
        return Ok(1.0);
    }
    let v: f64 = t
        .strip_suffix('%')
        .unwrap_or(t)
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a percentage like 5%"))?;
    if !(0.0..=100.0).contains(&v) {
        return Err(format!("{s:?}: give a percentage from 0% to 100%"));
    }
    Ok(v / 100.0)
}

fn parse_if_exists(s: &str) -> Result<sitevault::restore::IfExists, String> {
    s.parse().map_err(|e: sitevault::Error| e.to_string())
}

/// RFC 3339, or `YYYY-MM-DD[ HH:MM[:SS]]` in local time; a date alone is the end of that day.
pub fn parse_at(s: &str) -> Result<jiff::Timestamp, String> {
    sitevault::snapshot::parse_time(s, &jiff::tz::TimeZone::system())
}

fn parse_time(s: &str) -> Result<jiff::Timestamp, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not an RFC 3339 time like 2026-11-22T03:00:00Z"))
}
