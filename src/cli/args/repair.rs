//! Arguments of `repair index|snapshots|packs`.
//! Names here are a contract with admins' batch files: do not rename.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{FilterArgs, LockArgs, RepoArgs};

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
