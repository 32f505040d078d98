//! The `[log] file` of an afterbackup run: timestamped lines where an admin will look.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Appends timestamped lines to the configured log file (and nothing when none is set).
pub(super) struct RunLog {
    file: Option<(PathBuf, File)>,
}

impl RunLog {
    /// Open `path` for appending, or a log that writes nothing when there is none.
    pub(super) fn open(path: Option<&Path>) -> Result<RunLog> {
        let file = match path {
            Some(p) => Some((
                p.to_path_buf(),
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| {
                        format!("cannot open the log file {} ([log] file)", p.display())
                    })?,
            )),
            None => None,
        };
        Ok(RunLog { file })
    }

    /// Append one line at `level`, stamped with the local time.
    pub(super) fn line(&mut self, level: &str, msg: &str) {
        let Some((path, f)) = &mut self.file else {
            return;
        };
        let now = jiff::Zoned::now().strftime("%Y-%m-%d %H:%M:%S %:z");
        // A log that cannot be written must not stop the archive; say so once on stderr.
        if let Err(e) = writeln!(f, "{now}  {level:<5}  {msg}") {
            eprintln!("warning: cannot write the log file {}: {e}", path.display());
            self.file = None;
        }
    }

    pub(super) fn info(&mut self, msg: &str) {
        self.line("INFO", msg)
    }
    pub(super) fn warn(&mut self, msg: &str) {
        self.line("WARN", msg)
    }
    pub(super) fn error(&mut self, msg: &str) {
        self.line("ERROR", msg)
    }
}
