//! `copy`: bring a vault's snapshots into another one (the nightly off-site push).

use anyhow::Result;

use super::args::*;
use super::context::*;
use super::exit::EXIT_OK;
use super::output::{self, outln};

pub fn copy(a: CopyArgs) -> Result<u8> {
    let src = open_other(&a.repo, &a.from, &a.from_password_file, &a.from_options)?;
    let dst = open(&RepoArgs {
        vault_as_of: None,
        ..a.repo.clone()
    })?;
    if src.config().id == dst.config().id {
        anyhow::bail!(
            "--from and --repo are the same vault ({}); give two different vaults",
            dst.location()
        );
    }
    let _src_lock = lock(&src, &a.lock, false, "copy (source)")?;
    let dst_lock = lock(&dst, &a.lock, false, "copy")?;
    let f = filter(&a.filter);
    let candidates = matching_snapshots(&src, &f, "is not copied")?;
    let wanted = if a.snapshots.is_empty() {
        candidates
    } else {
        let mut w = Vec::new();
        for r in &a.snapshots {
            w.push(sitevault::snapshot::select(&candidates, r, &f)?.clone());
        }
        w
    };
    let r = sitevault::copy::copy(&src, &dst, &wanted, &|| dst_lock.check())?;
    dst_lock.release()?;
    if a.json {
        let mut v = serde_json::to_value(&r)?;
        v["requests_source"] = serde_json::to_value(src.store().requests())?;
        v["requests_destination"] = serde_json::to_value(dst.store().requests())?;
        output::json(&v);
        return Ok(EXIT_OK);
    }
    for c in &r.copied {
        outln!("copied {} -> {} ({})", c.from.short(), c.to.short(), c.time);
    }
    outln!(
        "{} snapshots copied, {} already there; {} read from {}, {} new packs ({}) in {}",
        r.copied.len(),
        r.already_there.len(),
        output::bytes(r.bytes_read),
        src.location(),
        r.packs_added,
        output::bytes(r.bytes_added),
        dst.location()
    );
    outln!(
        "source: {}",
        super::report::requests_line(&src.store().requests())
    );
    outln!(
        "destination: {}",
        super::report::requests_line(&dst.store().requests())
    );
    Ok(EXIT_OK)
}
