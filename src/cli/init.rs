//! `init`: create a vault.

use anyhow::{Context, Result};
use sitevault::crypto::KdfParams;
use sitevault::{InitOptions, Vault};

use super::args::*;
use super::context::*;
use super::exit::EXIT_OK;
use super::output::outln;

pub fn run(a: InitArgs) -> Result<u8> {
    let password = if a.insecure_no_encryption {
        None
    } else {
        Some(password(&a.repo)?.context(
            "init needs a password for the new vault: set SITEVAULT_PASSWORD or SITEVAULT_PASSWORD_FILE, or give --password-file (or --insecure-no-encryption)",
        )?)
    };
    // Each cloud request costs a round trip and money: larger packs there.
    let cloud = a.repo.repo.contains("://")
        && !matches!(
            sitevault::store::Location::parse(&a.repo.repo)?,
            sitevault::store::Location::Folder(_)
        );
    let default_size = if cloud { 64 << 20 } else { 32 << 20 };
    let pack_size = u32::try_from(a.pack_size.unwrap_or(default_size))
        .context("--pack-size must be at most 1GiB")?;
    let opts = InitOptions {
        password,
        kdf: KdfParams {
            memory_kib: a.kdf_memory_kib,
            iterations: a.kdf_iterations,
            parallelism: 1,
        },
        pack_size,
        compression_level: a.compression_level,
        host: hostname(),
        immutable: match a.immutable_days {
            Some(days) => Some(sitevault::config::Immutable {
                days,
                mode: a.immutable_mode.parse()?,
            }),
            None => None,
        },
        ..InitOptions::default()
    };
    opts.validate()?;
    let store = open_store(&a.repo, true)?;
    let vault = Vault::init(store, opts)?;
    let enc = if a.insecure_no_encryption {
        "unencrypted"
    } else {
        "encrypted"
    };
    outln!(
        "created {enc} vault {} at {}",
        vault.config().id.short(),
        vault.location()
    );
    if let Some(i) = vault.config().immutable {
        outln!(
            "S3 Object Lock: every object is retained for at least {} days ({} mode)",
            i.days,
            i.mode.s3().to_ascii_lowercase()
        );
    }
    Ok(EXIT_OK)
}
