//! `backup`: archive folders into a new snapshot.

use anyhow::Result;
use sitevault::BackupOptions;

use super::args::*;
use super::context::*;
use super::exit::{EXIT_INCOMPLETE, EXIT_OK};
use super::output::{self, outln};
use super::report::*;

pub fn run(a: BackupArgs) -> Result<u8> {
    let vault = open(&a.repo)?;
    let opts = BackupOptions {
        paths: a.paths.clone(),
        host: a.host.clone().unwrap_or_else(hostname),
        label: a.label.clone(),
        tags: a.tags.clone(),
        time: a.time,
        force_reread: a.force_reread,
        missing_sources: 0,
        change_tracking_days: None,
    };
    let lock = lock(&vault, &a.lock, false, "backup")?;
    let progress = Progress::new();
    let r = sitevault::backup(&vault, &opts, &progress, Some(&lock));
    progress.finish();
    let r = r?;
    // Still under the shared lock, so no prune turns a needed object into an old version.
    let retained = sitevault::immutable::keep_retained(&vault, false)?;
    let s = &r.snapshot.summary;
    if a.json {
        let mut v = backup_json(&vault, &r);
        if let Some(k) = &retained {
            v["retention"] = serde_json::to_value(k)?;
        }
        output::json(&v);
    } else {
        print_retention(retained.as_ref());
        let state = if r.snapshot.complete {
            "complete"
        } else {
            "INCOMPLETE"
        };
        outln!("snapshot {} saved ({state})", r.id.short());
        outln!(
            "  files {} ({} unchanged, not read)  dirs {}  symlinks {}",
            s.files,
            s.files_unchanged,
            s.dirs,
            s.symlinks
        );
        outln!(
            "  read {}, added {} to the vault ({} new chunks) in {:.2} s",
            output::bytes(s.bytes_read),
            output::bytes(s.bytes_added),
            s.data_blobs_added,
            s.duration_secs
        );
        outln!("  {}", requests_line(&vault.store().requests()));
        if s.files_unreadable > 0 {
            outln!(
                "  {} entries could not be read (named above)",
                s.files_unreadable
            );
        }
        if s.files_changed > 0 {
            outln!("  {} files changed while being read", s.files_changed);
        }
    }
    Ok(if r.snapshot.complete {
        EXIT_OK
    } else {
        EXIT_INCOMPLETE
    })
}
