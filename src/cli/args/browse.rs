//! Arguments of `mount` and `serve`: the recovery points as folders.
//! Names here are a contract with admins' batch files: do not rename.

use std::path::PathBuf;

use clap::Args;

use super::{FilterArgs, ReadLockArgs, RepoArgs};

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
