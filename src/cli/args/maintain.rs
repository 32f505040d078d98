//! Arguments of the commands that remove things: `forget` (with its retention policy),
//! `prune`, `unlock`. Names here are a contract with admins' batch files: do not rename.

use clap::Args;

use super::{FilterArgs, LockArgs, RepoArgs, parse_percent};

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
pub struct UnlockArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Remove every lock, not only stale ones (only when no sitevault process uses the vault)
    #[arg(long)]
    pub remove_all: bool,
}
