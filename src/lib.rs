//! sitevault: a deduplicating, encrypted, crash-safe vault of point-in-time archives.
//!
//! The byte formats are specified in `formats/`; this crate is their reference implementation.

pub mod asof;
pub mod backup;
pub mod browse;
pub mod cache;
pub mod check;
pub mod checked;
pub mod chunker;
pub(crate) mod codec;
pub mod config;
pub mod console;
pub mod copy;
pub mod crypto;
pub mod disk_index;
pub mod error;
pub mod fault;
pub mod forget;
pub mod history;
pub mod http;
pub mod id;
pub mod immutable;
pub mod index;
pub mod index_build;
pub mod job;
pub mod lock;
#[cfg(target_os = "linux")]
pub mod mount;
pub mod pack;
pub(crate) mod packer;
pub mod paths;
pub mod pattern;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod retention;
pub mod s3lock;
pub mod sccm;
pub mod size;
pub mod snapshot;
pub mod spool;
pub mod stats;
pub mod store;
pub mod tree;
pub mod used;
pub mod vault;
pub mod walk;
pub mod webdav;

pub use backup::{BackupObserver, BackupOptions, BackupResult, Warning, backup};
pub use error::{Error, ErrorKind, Result};
pub use id::Id;
pub use restore::{Destination, RestoreSummary, restore};
pub use snapshot::{Snapshot, SnapshotFilter, Summary};
pub use store::{Store, open_store};
pub use vault::{InitOptions, Vault};
