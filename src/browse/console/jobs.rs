//! Restores started from the console: each runs on its own thread with the CLI's engine, and
//! the page polls its counters until it ends.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::browse::Browser;
use crate::format::id::Id;
use crate::format::snapshot::Snapshot;
use crate::ops::restore::{RestoreOptions, RestoreProgress, RestoreSummary};

/// Finished jobs kept for their pages; older ones are dropped.
const KEEP: usize = 64;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    Running,
    Done,
    Failed,
}

/// What a job page and its JSON show.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub id: u64,
    pub state: State,
    pub snapshot: String,
    /// Where it restores to, as shown.
    pub destination: String,
    pub files_total: u64,
    pub bytes_total: u64,
    pub files_done: u64,
    pub bytes_done: u64,
    /// Once done: the summary line, and each entry that could not be restored.
    pub result: Option<String>,
    pub errors: Vec<String>,
}

struct Job {
    progress: Arc<RestoreProgress>,
    snapshot: String,
    destination: String,
    outcome: Mutex<Option<Result<RestoreSummary, String>>>,
}

#[derive(Default)]
pub(crate) struct Jobs {
    jobs: Mutex<BTreeMap<u64, Arc<Job>>>,
}

impl Jobs {
    /// Start restoring `snap` with `opts` (its `progress` is set here); returns the job number.
    pub fn start(
        &self,
        browser: Arc<Browser>,
        id: Id,
        snap: Snapshot,
        mut opts: RestoreOptions,
        destination: String,
    ) -> u64 {
        let progress = Arc::new(RestoreProgress::default());
        opts.progress = Some(Arc::clone(&progress));
        let job = Arc::new(Job {
            progress,
            snapshot: id.short(),
            destination,
            outcome: Mutex::new(None),
        });
        let n = {
            let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
            let n = jobs.keys().next_back().map_or(1, |k| k + 1);
            jobs.insert(n, Arc::clone(&job));
            while jobs.len() > KEEP {
                let oldest = *jobs.keys().next().unwrap_or(&n);
                let running = jobs
                    .get(&oldest)
                    .is_some_and(|j| j.outcome.lock().map(|o| o.is_none()).unwrap_or(false));
                if running || oldest == n {
                    break;
                }
                jobs.remove(&oldest);
            }
            n
        };
        let started = std::thread::Builder::new()
            .name(format!("sitevault-restore-{n}"))
            .spawn(move || {
                let index = browser.index();
                let r = crate::ops::restore::restore(browser.vault(), &index, &snap, &opts)
                    .map(|plan| plan.summary)
                    .map_err(|e| e.to_string());
                *job.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            });
        if started.is_err() {
            // No thread, no job: it would show as running for ever.
            self.jobs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&n);
            return 0;
        }
        n
    }

    pub fn status(&self, n: u64) -> Option<Status> {
        let job = Arc::clone(
            self.jobs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&n)?,
        );
        let p = &job.progress;
        let mut s = Status {
            id: n,
            state: State::Running,
            snapshot: job.snapshot.clone(),
            destination: job.destination.clone(),
            files_total: p.files_total.load(Ordering::Relaxed),
            bytes_total: p.bytes_total.load(Ordering::Relaxed),
            files_done: p.files_done.load(Ordering::Relaxed),
            bytes_done: p.bytes_done.load(Ordering::Relaxed),
            result: None,
            errors: Vec::new(),
        };
        match &*job.outcome.lock().unwrap_or_else(|p| p.into_inner()) {
            None => {}
            Some(Ok(sum)) => {
                s.state = if sum.errors.is_empty() {
                    State::Done
                } else {
                    State::Failed
                };
                s.result = Some(summary_line(sum));
                s.errors = sum.errors.clone();
            }
            Some(Err(e)) => {
                s.state = State::Failed;
                s.result = Some(format!("restore failed: {e}"));
            }
        }
        Some(s)
    }
}

/// The CLI's summary, in words.
pub(crate) fn summary_line(s: &RestoreSummary) -> String {
    format!(
        "{} files written, {} unchanged, {} skipped, {} kept both; {} folders, {} symlinks, {}{}",
        s.files,
        s.files_unchanged,
        s.files_skipped,
        s.files_kept_both,
        s.dirs,
        s.symlinks,
        crate::size::format_bytes(s.bytes_written),
        if s.errors.is_empty() {
            String::new()
        } else {
            format!("; {} could not be restored", s.errors.len())
        }
    )
}
