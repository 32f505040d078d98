//! Step 2 of an afterbackup run: the sources to archive, and warnings for those missing.

use std::path::PathBuf;

use serde_json::{Value, json};
use sitevault::job::{JobConfig, SourceKind};

use super::log::RunLog;
use crate::cli::output;

/// One thing to archive.
pub(super) struct Source {
    pub(super) kind: SourceKind,
    pub(super) path: PathBuf,
    pub(super) files: u64,
    pub(super) bytes: u64,
}

/// The sources found, and one warning for each that is missing or cannot be searched.
pub(super) struct Sources {
    pub(super) found: Vec<Source>,
    pub(super) warnings: Vec<String>,
}

impl Sources {
    /// Every source the config names, in its order: the site backup folder, the content
    /// library, package sources, SCUP databases found below the profiles, then the extras.
    pub(super) fn gather(cfg: &JobConfig, log: &mut RunLog) -> Sources {
        let mut s = Sources {
            found: Vec::new(),
            warnings: Vec::new(),
        };
        s.add(SourceKind::SiteBackup, cfg.site.backup_folder.clone());
        for p in cfg.sources.content_library.to_vec() {
            s.add(SourceKind::ContentLibrary, p);
        }
        for p in cfg.sources.package_sources.to_vec() {
            s.add(SourceKind::PackageSources, p);
        }
        for profiles in cfg.sources.scup_profiles.to_vec() {
            s.add_scup(&profiles, log);
        }
        for p in cfg.sources.extra.to_vec() {
            s.add(SourceKind::Extra, p);
        }
        s
    }

    /// Add `path` once, measured, or a warning when it does not exist.
    fn add(&mut self, kind: SourceKind, path: PathBuf) {
        if std::fs::symlink_metadata(&path).is_err() {
            self.warnings.push(format!(
                "{} source {} does not exist or cannot be examined; it is not in this recovery point",
                kind.tag(),
                path.display()
            ));
            return;
        }
        if self.found.iter().any(|s| s.path == path) {
            return;
        }
        let (files, bytes) = sitevault::job::measure(&path);
        self.found.push(Source {
            kind,
            path,
            files,
            bytes,
        });
    }

    /// Add the SCUP databases found below `profiles`; what cannot be searched is a warning.
    fn add_scup(&mut self, profiles: &std::path::Path, log: &mut RunLog) {
        match sitevault::sccm::find_scup_databases(profiles) {
            Ok(found) => {
                if found.found.is_empty() {
                    log.info(&format!(
                        "no SCUP database found below {}",
                        profiles.display()
                    ));
                }
                for p in found.found {
                    self.add(SourceKind::Scup, p);
                }
                for (p, e) in found.unreadable {
                    self.warnings.push(format!(
                        "cannot search {} for SCUP databases: {e}",
                        p.display()
                    ));
                }
            }
            Err(e) => self
                .warnings
                .push(format!("cannot search for SCUP databases: {e}")),
        }
    }

    /// Log each source, log and print each warning, and return the sources for the report.
    pub(super) fn announce(&self, log: &mut RunLog) -> Value {
        for s in &self.found {
            log.info(&format!(
                "source {}: {} ({} files, {})",
                s.kind.tag(),
                s.path.display(),
                s.files,
                output::bytes(s.bytes)
            ));
        }
        for w in &self.warnings {
            log.warn(w);
            eprintln!("warning: {w}");
        }
        json!(
            self.found
                .iter()
                .map(|s| json!({"kind": s.kind, "path": s.path.display().to_string(), "files": s.files, "bytes": s.bytes}))
                .collect::<Vec<_>>()
        )
    }

    /// Each source kind's tag once, in the order first seen.
    pub(super) fn tags(&self) -> Vec<String> {
        let mut tags: Vec<String> = Vec::new();
        for s in &self.found {
            let t = s.kind.tag().to_string();
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        tags
    }
}
