//! Typed errors for the library. Each error carries a matchable [`ErrorKind`] so callers
//! (the CLI, tests, later the afterbackup runner) can branch without parsing text.

use std::path::PathBuf;

/// What went wrong, coarsely; stable for matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The folder or URL holds no vault.
    NotAVault,
    /// The vault was written by a newer format version than this build understands.
    UnsupportedVersion,
    /// No key file could be opened with the given password.
    WrongPassword,
    /// An encrypted vault was opened without a password.
    PasswordRequired,
    /// Stored bytes fail authentication, hashing or parsing.
    Corrupt,
    /// A snapshot reference matched nothing.
    SnapshotNotFound,
    /// A snapshot prefix matched more than one snapshot.
    AmbiguousSnapshot,
    /// Invalid argument or configuration value.
    InvalidInput,
    /// A backup path does not exist or cannot be examined.
    MissingPath,
    /// A vault already exists where `init` was asked to create one.
    AlreadyExists,
    /// Local filesystem I/O failed.
    Io,
    /// The object store failed.
    Store,
    /// Another process holds a lock that conflicts with this command.
    Locked,
    /// This process's own lock expired or was removed while it worked.
    LockLost,
    /// The Configuration Manager site backup did not complete (or cannot be shown to have).
    SiteBackupFailed,
    /// A name in a snapshot cannot be created on this platform (`a:b` on Windows).
    NameNotAllowed,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{location} is not a sitevault vault (no config object); run `sitevault init --repo {location}` to create one"
    )]
    NotAVault { location: String },
    #[error(
        "vault {location} uses format version {found}, newer than the {supported} this sitevault supports; upgrade sitevault to read it"
    )]
    UnsupportedVersion {
        location: String,
        found: u32,
        supported: u32,
    },
    #[error("wrong password for vault {location}: no key file could be opened with it")]
    WrongPassword { location: String },
    #[error(
        "vault {location} is encrypted: give the password with SITEVAULT_PASSWORD, --password-file or SITEVAULT_PASSWORD_FILE"
    )]
    PasswordRequired { location: String },
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: String, detail: String },
    #[error("no snapshot matches {0:?}; run `sitevault snapshots` to list them")]
    SnapshotNotFound(String),
    #[error("snapshot prefix {prefix:?} is ambiguous: it matches {matches}; give more hex digits")]
    AmbiguousSnapshot { prefix: String, matches: String },
    #[error("{0}")]
    InvalidInput(String),
    #[error("backup path {path} cannot be read: {cause}; no snapshot was written")]
    MissingPath {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{location} already holds a vault; refusing to overwrite it")]
    AlreadyExists { location: String },
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("storage error on {object}: {detail}")]
    Store { object: String, detail: String },
    #[error(
        "vault {location} is locked by {holder}; wait for it to finish (or raise --lock-wait), or if that process is gone, run `sitevault unlock --repo {location}`"
    )]
    Locked { location: String, holder: String },
    #[error(
        "lost the lock on vault {location}: {detail}; a prune may have run meanwhile, so nothing was committed; run the command again"
    )]
    LockLost { location: String, detail: String },
    #[error(
        "the site backup in {folder} is not verified good: {reason}; nothing was archived and no recovery point was removed"
    )]
    SiteBackupFailed { folder: PathBuf, reason: String },
    #[error(
        "name {name:?} cannot be created on {platform} ({reason}); restore it on another platform, or leave it out with --exclude"
    )]
    NameNotAllowed {
        name: String,
        platform: &'static str,
        reason: String,
    },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotAVault { .. } => ErrorKind::NotAVault,
            Error::UnsupportedVersion { .. } => ErrorKind::UnsupportedVersion,
            Error::WrongPassword { .. } => ErrorKind::WrongPassword,
            Error::PasswordRequired { .. } => ErrorKind::PasswordRequired,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::SnapshotNotFound(_) => ErrorKind::SnapshotNotFound,
            Error::AmbiguousSnapshot { .. } => ErrorKind::AmbiguousSnapshot,
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::MissingPath { .. } => ErrorKind::MissingPath,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::Io { .. } => ErrorKind::Io,
            Error::Store { .. } => ErrorKind::Store,
            Error::Locked { .. } => ErrorKind::Locked,
            Error::LockLost { .. } => ErrorKind::LockLost,
            Error::SiteBackupFailed { .. } => ErrorKind::SiteBackupFailed,
            Error::NameNotAllowed { .. } => ErrorKind::NameNotAllowed,
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            what: what.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause: source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
