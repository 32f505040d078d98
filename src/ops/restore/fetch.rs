//! Fetching and writing the files a restore writes: small files by pack group, big files run by
//! run, both at once in the download pool.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::error::Result;
use crate::format::tree::{Node, NodeKind};
use crate::store::in_download_pool;
use crate::vault::pack_name;

use super::disk::write_file;
use super::runs::{PackGroup, Run, check_size, group_by_pack, plan_runs, write_run};
use super::{Action, Restorer};

/// A file whose blobs lie in one stretch of one pack.
type Single<'a> = (&'a Path, &'a Node, Run);
/// A file that needs several range reads.
type Multi<'a> = (&'a Path, &'a Node, Vec<Run>);

/// Files written, their bytes, and the paths written without error.
#[derive(Default)]
pub(super) struct Written {
    pub(super) files: AtomicU64,
    pub(super) bytes: AtomicU64,
    pub(super) ok: Mutex<Vec<PathBuf>>,
}

impl Restorer<'_> {
    /// Fetch and write every file in `to_write`; failures go to the errors.
    pub(super) fn write_files(&self, to_write: &[(PathBuf, &Node, Action)]) -> Written {
        // Files whose blobs lie in one stretch of one pack (small files, the common case) are
        // grouped with their neighbours in the pack, so a pack is fetched once for many files;
        // larger files fetch their own runs, in parallel.
        let (single, multi) = self.plan_fetches(to_write);
        self.set_totals(&single, &multi);
        let written = Written::default();
        let groups = group_by_pack(single);
        let small = || self.write_small(&groups, &written);
        let large = || self.write_large(&multi, &written);
        // Small and big files are fetched at the same time, so neither waits for the other's tail.
        in_download_pool(self.vault.store().downloads(), || rayon::join(small, large));
        written
    }

    /// Each file's range reads, split into single-run files and the rest.
    fn plan_fetches<'w>(
        &self,
        to_write: &'w [(PathBuf, &'w Node, Action)],
    ) -> (Vec<Single<'w>>, Vec<Multi<'w>>) {
        let mut single: Vec<Single> = Vec::new();
        let mut multi: Vec<Multi> = Vec::new();
        for (path, node, _) in to_write {
            if let NodeKind::File { chunks } = &node.kind {
                match plan_runs(self.index, chunks)
                    .and_then(|(runs, total)| check_size(path, node, total).map(|_| runs))
                {
                    Ok(mut runs) if runs.len() == 1 => single.push((path, node, runs.remove(0))),
                    Ok(runs) => multi.push((path, node, runs)),
                    Err(err) => self.fail(path, &err),
                }
            }
        }
        (single, multi)
    }

    /// Tell the progress watcher, if any, how many files and bytes are to be written.
    fn set_totals(&self, single: &[Single], multi: &[Multi]) {
        if let Some(p) = &self.opts.progress {
            let files_total = (single.len() + multi.len()) as u64;
            let bytes_total: u64 = single.iter().map(|f| f.1.size).sum::<u64>()
                + multi.iter().map(|f| f.1.size).sum::<u64>();
            p.files_total.store(files_total, Ordering::Relaxed);
            p.bytes_total.store(bytes_total, Ordering::Relaxed);
        }
    }

    /// Write the single-run files, one range read per pack group.
    fn write_small(&self, groups: &[PackGroup], written: &Written) {
        groups.par_iter().for_each(|group| {
            let name = pack_name(&group.pack);
            match self
                .vault
                .store()
                .get_range_exact(&name, group.start..group.end)
            {
                Ok(buf) => group.files.iter().for_each(|(path, node, run)| {
                    let r = write_file(path, node, |f, tmp| {
                        write_run(
                            self.vault,
                            &buf[(run.start - group.start) as usize..],
                            run,
                            f,
                            tmp,
                        )
                    });
                    self.done(written, path, node, r);
                }),
                Err(err) => group
                    .files
                    .iter()
                    .for_each(|(path, _, _)| self.fail(path, &err)),
            }
        });
    }

    /// Write the multi-run files, each fetching its runs in parallel.
    fn write_large(&self, multi: &[Multi], written: &Written) {
        multi.par_iter().for_each(|(path, node, runs)| {
            let r = write_file(path, node, |f, tmp| {
                runs.par_iter().try_for_each(|run| {
                    let buf = self
                        .vault
                        .store()
                        .get_range_exact(&pack_name(&run.pack), run.start..run.end)?;
                    write_run(self.vault, &buf, run, f, tmp)
                })
            });
            self.done(written, path, node, r);
        });
    }

    /// Count a file written, or record why it was not.
    fn done(&self, written: &Written, path: &Path, node: &Node, r: Result<()>) {
        match r {
            Ok(()) => {
                written.files.fetch_add(1, Ordering::Relaxed);
                written.bytes.fetch_add(node.size, Ordering::Relaxed);
                if let Some(p) = &self.opts.progress {
                    p.files_done.fetch_add(1, Ordering::Relaxed);
                    p.bytes_done.fetch_add(node.size, Ordering::Relaxed);
                }
                written
                    .ok
                    .lock()
                    .expect("written lock")
                    .push(path.to_path_buf());
            }
            Err(err) => self.fail(path, &err),
        }
    }
}
