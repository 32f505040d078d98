//! Arguments of the commands that read a vault: `snapshots`, `ls`, `restore`, `diff`, `find`,
//! `check`, `stats`. Names here are a contract with admins' batch files: do not rename.

use std::path::PathBuf;

use clap::Args;

use super::{FilterArgs, ReadLockArgs, RepoArgs, parse_at, parse_if_exists};

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
