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
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Store everything unencrypted (integrity is still checked)
    #[arg(long)]
    pub insecure_no_encryption: bool,
    /// Target pack size, e.g. 32MiB (64KiB..1GiB)
    #[arg(long, value_name = "SIZE", default_value = "32MiB", value_parser = parse_size)]
    pub pack_size: u64,
    /// zstd level for blobs (1..=22)
    #[arg(long, value_name = "LEVEL", default_value_t = 3)]
    pub compression_level: i32,
    /// Argon2id memory cost in KiB for the key file
    #[arg(long, value_name = "KIB", default_value_t = 65536)]
    pub kdf_memory_kib: u32,
    /// Argon2id iterations for the key file
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub kdf_iterations: u32,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
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
    /// Print a JSON array
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
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
pub struct RestoreArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Snapshot id, unique prefix (4+ hex digits) or `latest`
    pub snapshot: String,
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

/// `123`, `64KiB`, `32MiB`, `1GiB` (also K/M/G and KB/MB/GB as binary units).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 32MiB"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("{s:?}: unknown size unit (use KiB, MiB or GiB)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

fn parse_time(s: &str) -> Result<jiff::Timestamp, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not an RFC 3339 time like 2026-11-22T03:00:00Z"))
}
