//! The argument grammar. Names here are a contract with admins' batch files: do not rename.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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

#[derive(Debug, Args)]
pub struct RepairArgs {
    #[command(subcommand)]
    pub what: RepairCommand,
}

impl RepairArgs {
    pub fn repo(&self) -> &RepoArgs {
        match &self.what {
            RepairCommand::Index(a) => &a.repo,
            RepairCommand::Snapshots(a) => &a.repo,
            RepairCommand::Packs(a) => &a.repo,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum RepairCommand {
    /// Rebuild every index file from the pack headers
    Index(RepairIndexArgs),
    /// Write a repaired copy of each damaged snapshot, without the files that are lost
    Snapshots(RepairSnapshotsArgs),
    /// Heal lost or damaged data from another vault holding the same snapshots (e.g. a copy)
    Packs(RepairPacksArgs),
}

#[derive(Debug, Args)]
pub struct RepairIndexArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Show what the new index would hold; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RepairSnapshotsArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub lock: LockArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Remove each damaged original once its repaired snapshot is stored
    #[arg(long)]
    pub forget: bool,
    /// Also read and verify every chunk (finds damaged content, not only missing content)
    #[arg(long)]
    pub read_data: bool,
    /// Show what would be left out; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// Snapshots to repair (id, prefix or `latest`); all of them when none is given
    pub snapshots: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RepairPacksArgs {
    /// The vault to heal
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The vault to take good data from: a folder, s3://bucket/prefix or az://container/prefix
    #[arg(long, value_name = "REPO")]
    pub from: String,
    /// File whose first line is the --from vault's password (else SITEVAULT_FROM_PASSWORD,
    /// else the vault's own password)
    #[arg(long, env = "SITEVAULT_FROM_PASSWORD_FILE", value_name = "FILE")]
    pub from_password_file: Option<PathBuf>,
    /// Storage option for the --from vault (repeatable)
    #[arg(long = "from-option", value_name = "KEY=VALUE")]
    pub from_options: Vec<String>,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Show what is damaged and what could be healed; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// What `mount` and `serve` show and how much memory they may keep.
#[derive(Debug, Args)]
pub struct BrowseArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub lock: ReadLockArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Memory for file contents and folder listings read from the vault, e.g. 64MiB, 1GiB
    #[arg(long, value_name = "SIZE", default_value = "128MiB", value_parser = sitevault::size::parse_size)]
    pub cache_size: u64,
}

#[derive(Debug, Args)]
pub struct MountArgs {
    #[command(flatten)]
    pub browse: BrowseArgs,
    /// Let other users read the mount (needs user_allow_other in /etc/fuse.conf unless root)
    #[arg(long)]
    pub allow_other: bool,
    /// An empty folder to mount on
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: PathBuf,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("tls").multiple(true).args(["tls_cert", "tls_key"]))]
pub struct ServeArgs {
    #[command(flatten)]
    pub browse: BrowseArgs,
    /// Address and port to listen on; one off loopback needs --tls-cert and --tls-key
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8455")]
    pub listen: String,
    /// File whose first line is the URL token (16-128 of A-Z a-z 0-9 - _); default: random per run
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// TLS certificate chain (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Let the web console restore files on this machine (off: browsing and downloads only)
    #[arg(long)]
    pub allow_restore: bool,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The destination vault
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The source vault: a folder, s3://bucket/prefix or az://container/prefix
    #[arg(long, value_name = "REPO")]
    pub from: String,
    /// File whose first line is the source vault's password (else SITEVAULT_FROM_PASSWORD,
    /// else the destination's password)
    #[arg(long, env = "SITEVAULT_FROM_PASSWORD_FILE", value_name = "FILE")]
    pub from_password_file: Option<PathBuf>,
    /// Storage option for the source vault (repeatable)
    #[arg(long = "from-option", value_name = "KEY=VALUE")]
    pub from_options: Vec<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Source snapshots to copy (id, prefix or `latest`); all of them when none is given
    pub snapshots: Vec<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AfterbackupArgs {
    /// The job's TOML config file (see examples/sitevault.toml)
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Verify the site backup and list the sources; archive and remove nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print a JSON summary
    #[arg(long)]
    pub json: bool,
    /// Snapshot time instead of now (RFC 3339): imports and tests
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub time: Option<jiff::Timestamp>,
    /// Host name recorded in the snapshot (default: this machine's)
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub lock: ReadLockArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// The older snapshot: id, unique prefix or `latest`
    pub snapshot1: String,
    /// The newer snapshot
    pub snapshot2: String,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FindArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub lock: ReadLockArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// A name (`Scupdb.sdf`, `*.mdf`) matched at any depth, or a path pattern (`E:\Sources\App*`)
    pub pattern: String,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
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

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Keep the N newest snapshots
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the last N hours that have one
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<u32>,
    /// Keep the newest snapshot of each of the last N days that have one
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the last N ISO weeks that have one
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the last N months that have one
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
    /// Keep the newest snapshot of each of the last N years that have one
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<u32>,
    /// Keep every snapshot within DURATION of the group's newest: 12h, 5d, 2w, 6m (months), 1y, 1y6m
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<String>,
    /// Keep every snapshot with this tag (repeatable)
    #[arg(long = "keep-tag", value_name = "TAG")]
    pub keep_tags: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub lock: LockArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Show what would be kept and removed; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Prune afterwards, under the same lock
    #[arg(long)]
    pub prune: bool,
    /// With --prune: see `prune --max-unused`
    #[arg(long, value_name = "PERCENT", default_value = "5%", value_parser = parse_percent)]
    pub max_unused: f64,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// Forget exactly these snapshots (ids or unique prefixes) instead of applying a policy
    #[arg(value_name = "SNAPSHOT")]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Show what would be deleted and repacked; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Repack partly used packs until unused space is at most PERCENT of the vault
    #[arg(long, value_name = "PERCENT", default_value = "5%", value_parser = parse_percent)]
    pub max_unused: f64,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub lock: ReadLockArgs,
    /// Also download, decrypt, decompress and re-hash every blob
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,
    /// Like --read-data for a part of the packs: N% (random) or n/t (the n-th of t parts)
    #[arg(long, value_name = "N%|n/t")]
    pub read_data_subset: Option<String>,
    /// Read every pack header, also those this host verified before (with a cache folder,
    /// check reads only the headers of new packs and of packs whose index entry changed)
    #[arg(long)]
    pub all_headers: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub lock: ReadLockArgs,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Remove every lock, not only stale ones (only when no sitevault process uses the vault)
    #[arg(long)]
    pub remove_all: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Store everything unencrypted (integrity is still checked)
    #[arg(long)]
    pub insecure_no_encryption: bool,
    /// Target pack size, e.g. 32MiB (64KiB..1GiB); default 32MiB for a folder, 64MiB for
    /// s3:// and az:// vaults (fewer, larger requests)
    #[arg(long, value_name = "SIZE", value_parser = sitevault::size::parse_size)]
    pub pack_size: Option<u64>,
    /// zstd level for blobs (1..=22)
    #[arg(long, value_name = "LEVEL", default_value_t = 3)]
    pub compression_level: i32,
    /// Argon2id memory cost in KiB for the key file
    #[arg(long, value_name = "KIB", default_value_t = 65536)]
    pub kdf_memory_kib: u32,
    /// Argon2id iterations for the key file
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub kdf_iterations: u32,
    /// S3 Object Lock: retain every object a kept snapshot needs for at least N days
    /// (s3:// vaults in a bucket created with Object Lock)
    #[arg(long, value_name = "N")]
    pub immutable_days: Option<u32>,
    /// Object Lock mode: governance (a user with s3:BypassGovernanceRetention can still
    /// delete) or compliance (nobody can, the account root included)
    #[arg(
        long,
        value_name = "MODE",
        requires = "immutable_days",
        default_value = "governance"
    )]
    pub immutable_mode: String,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Snapshot label, e.g. sccm-CEN
    #[arg(long, value_name = "NAME", default_value = "")]
    pub label: String,
    /// Tag the snapshot (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Host name recorded in the snapshot (default: this machine's)
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Snapshot time instead of now, RFC 3339 (for imports and tests)
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub time: Option<jiff::Timestamp>,
    /// Print a JSON summary on stdout
    #[arg(long)]
    pub json: bool,
    /// Read every file, even those unchanged (size, mtime, ctime, inode) since the last
    /// snapshot of the same host, label and paths
    #[arg(long)]
    pub force_reread: bool,
    /// Files and folders to archive
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
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

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Show only the snapshot `restore --at TIME` would pick
    #[arg(long, value_name = "TIME", value_parser = parse_at)]
    pub at: Option<jiff::Timestamp>,
    /// Print a JSON array
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub lock: ReadLockArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Snapshot id, unique prefix (4+ hex digits) or `latest`
    pub snapshot: String,
    /// Print a JSON array of entries
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("dest").required(true).args(["target", "original"]))]
#[command(group = clap::ArgGroup::new("which").required(true).args(["snapshot", "at"]))]
pub struct RestoreArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub lock: ReadLockArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Snapshot id, unique prefix (4+ hex digits) or `latest`
    pub snapshot: Option<String>,
    /// Restore the newest snapshot taken at or before TIME: RFC 3339, or local
    /// `YYYY-MM-DD[ HH:MM[:SS]]` (a date alone means the end of that day)
    #[arg(long, value_name = "TIME", value_parser = parse_at)]
    pub at: Option<jiff::Timestamp>,
    /// Restore only entries matching GLOB (repeatable): a name at any depth (`*.mdf`) or an
    /// original path (`E:\Sources\App1`); a directory brings its subtree
    #[arg(long = "include", value_name = "GLOB")]
    pub includes: Vec<String>,
    /// Leave out entries matching GLOB (repeatable), same rules as --include
    #[arg(long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// For files already at the destination: overwrite (when different), skip, or keep-both
    #[arg(long, value_name = "POLICY", default_value = "overwrite", value_parser = parse_if_exists)]
    pub if_exists: sitevault::restore::IfExists,
    /// List what would be written, skipped or kept both; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Re-read every restored file and check it against the snapshot
    #[arg(long)]
    pub verify: bool,
    /// Restore under DIR: /srv/a becomes DIR/srv/a, E:\x becomes DIR\E\x
    #[arg(long, value_name = "DIR")]
    pub target: Option<PathBuf>,
    /// Restore every entry to its original absolute path
    #[arg(long)]
    pub original: bool,
    /// Print a JSON summary
    #[arg(long)]
    pub json: bool,
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
