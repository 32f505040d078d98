//! Step 5 of an afterbackup run: copy the job's recovery points to each off-site vault, then
//! apply the same retention there.

use anyhow::Result;
use serde_json::{Value, json};
use sitevault::job::JobConfig;

use super::log::RunLog;
use super::repo_args;
use super::retention::apply_retention;
use crate::cli::args::AfterbackupArgs;
use crate::cli::context::{lock, open};
use crate::cli::output;
use crate::cli::report::requests_line;

/// Copy to every `copy_to` target in turn; a failed target is logged and printed, and does
/// not stop the others. Returns each target's report and how many failed.
pub(super) fn copy_to_all(
    vault: &sitevault::Vault,
    a: &AfterbackupArgs,
    cfg: &JobConfig,
    label: &str,
    log: &mut RunLog,
) -> (Vec<Value>, u32) {
    let mut copies_failed = 0;
    let mut copies = Vec::new();
    for target in &cfg.vault.copy_to {
        match copy_to(vault, a, cfg, target, label, log) {
            Ok(v) => copies.push(v),
            Err(e) => {
                copies_failed += 1;
                let msg = output::one_line(&e);
                log.error(&format!("copy to {target} failed: {msg}"));
                eprintln!("warning: copy to {target} failed: {msg}");
                copies.push(json!({"target": target, "ok": false, "error": msg}));
            }
        }
    }
    (copies, copies_failed)
}

/// Copy this label's recovery points that `target` lacks into it, then apply retention there.
fn copy_to(
    vault: &sitevault::Vault,
    a: &AfterbackupArgs,
    cfg: &JobConfig,
    target: &str,
    label: &str,
    log: &mut RunLog,
) -> Result<Value> {
    let none = Default::default();
    let options = cfg.vault.copy_options.get(target).unwrap_or(&none);
    let repo = repo_args(cfg, target, options);
    let dst = open(&repo)?;
    let wanted: Vec<_> = vault
        .list_snapshots()?
        .into_iter()
        .filter(|(_, s)| s.label == label)
        .collect();
    let shared = lock(&dst, &a.lock, false, "afterbackup copy")?;
    let r = sitevault::copy::copy(vault, &dst, &wanted, &|| shared.check())?;
    shared.release()?;
    log.info(&format!(
        "copy to {target}: {} recovery point(s) copied, {} already there, {} new packs ({}); {}",
        r.copied.len(),
        r.already_there.len(),
        r.packs_added,
        output::bytes(r.bytes_added),
        requests_line(&dst.store().requests())
    ));
    let retention = match &cfg.retention {
        Some(ret) => Some(apply_retention(
            &dst,
            a,
            ret,
            label,
            log,
            &format!(" on {target}"),
        )?),
        None => None,
    };
    Ok(json!({
        "target": target,
        "ok": true,
        "copy": r,
        "retention": retention,
        "requests": dst.store().requests(),
    }))
}
