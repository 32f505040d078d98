//! sitevault: a deduplicating, encrypted, crash-safe vault of point-in-time archives.
//!
//! The byte formats are specified in `formats/`; this crate is their reference implementation.
//! ARCHITECTURE.md maps the layers below; each imports only from those listed before it.
//! This file is the API the binary, the benches and the tests use: the layers' modules are
//! re-exported here by their domain names, and what is not re-exported stays inside the crate.

// Used by every layer.
pub mod error;
pub mod paths;
pub mod pattern;
pub mod size;

// The bytes, as pure codecs (no I/O).
mod format;
pub use format::{chunker, config, crypto, id, index, pack, snapshot, tree};

// Where bytes live: the `Store` trait, folder and cloud backends, their wrappers.
pub mod store;

// An open vault over a store: objects, the index, locks, packs being written, tree walks.
pub mod vault;

// What commands do to a vault.
mod ops;
pub use ops::{
    backup, check, copy, forget, history, immutable, prune, repair, restore, retention, stats,
};

// Configuration Manager.
mod site;
pub use site::{job, sccm};

// The recovery points as folders: the shared view, FUSE mount, WebDAV, the web console.
pub mod browse;

#[doc(hidden)]
pub mod testing;

pub use error::{Error, ErrorKind, Result};
pub use format::id::Id;
pub use format::snapshot::{Snapshot, SnapshotFilter, Summary};
pub use ops::backup::{BackupObserver, BackupOptions, BackupResult, Warning, backup};
pub use ops::restore::{Destination, RestoreSummary, restore};
pub use store::{Store, open_store};
pub use vault::{InitOptions, Vault};
