//! What a repository string names, and the options that configure a cloud store.

use crate::error::{Error, Result};

/// Settings for cloud backends: `object_store` configuration keys and values (`aws_region`,
/// `azure_storage_account_key`, ...). Keys from the environment that the backend does not
/// know are ignored (other tools' variables); explicit ones must be known.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// `AWS_*` / `AZURE_*` environment variables, lower-cased.
    pub environment: Vec<(String, String)>,
    /// `--option key=value` or a config file's `[vault.options]`; these win.
    pub explicit: Vec<(String, String)>,
}

/// What a repository string names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Folder(std::path::PathBuf),
    S3 { bucket: String, prefix: String },
    Azure { container: String, prefix: String },
}

impl Location {
    pub fn parse(repo: &str) -> Result<Location> {
        let Some((scheme, rest)) = repo.split_once("://") else {
            return Ok(Location::Folder(repo.into()));
        };
        // `C:\x` has no `://`; a one-letter scheme would be a drive, so it stays a folder.
        if scheme.len() == 1 {
            return Ok(Location::Folder(repo.into()));
        }
        let (first, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_matches('/').to_string();
        if first.is_empty() {
            return Err(Error::InvalidInput(format!(
                "repository {repo:?} names no bucket or container: write {scheme}://<name>/<prefix>"
            )));
        }
        match scheme.to_ascii_lowercase().as_str() {
            "s3" => Ok(Location::S3 {
                bucket: first.into(),
                prefix,
            }),
            "az" | "azure" => Ok(Location::Azure {
                container: first.into(),
                prefix,
            }),
            _ => Err(Error::InvalidInput(format!(
                "repository {repo:?}: unknown scheme {scheme}://; give a folder, s3://bucket/prefix or az://container/prefix"
            ))),
        }
    }
}
