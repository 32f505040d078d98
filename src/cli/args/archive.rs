//! Arguments of the commands that make recovery points: `init`, `backup`, `afterbackup`, `copy`.
//! Names here are a contract with admins' batch files: do not rename.

use std::path::PathBuf;

use clap::Args;

use super::{FilterArgs, LockArgs, RepoArgs, parse_time};

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
