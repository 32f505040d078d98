//! Which range reads a restore makes: a file's chunks grouped into runs of one pack, and small
//! files' runs grouped by pack, so one read serves many files.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::pack::BlobKind;
use crate::format::tree::Node;
use crate::vault::index::{BlobLocation, Index, check_blob_kind};
use crate::vault::{Vault, pack_name};

use super::disk::write_sparse;

/// An error unless the chunks add up to the size the tree records for the file.
pub(super) fn check_size(path: &Path, node: &Node, total: u64) -> Result<()> {
    if total == node.size {
        return Ok(());
    }
    Err(Error::corrupt(
        format!("file {}", path.display()),
        format!(
            "chunks hold {total} bytes but the tree records {}",
            node.size
        ),
    ))
}

/// Open and verify the blobs of `run` from `buf` (which starts at `run.start`) and write them
/// at their file offsets.
pub(super) fn write_run(vault: &Vault, buf: &[u8], run: &Run, f: &File, tmp: &Path) -> Result<()> {
    let name = pack_name(&run.pack);
    for b in &run.blobs {
        let at = (b.loc.offset as u64 - run.start) as usize;
        let sealed = &buf[at..at + b.loc.stored_len as usize];
        let data = vault.open_blob(sealed, &b.id, BlobKind::Data, b.loc.raw_len, &name)?;
        write_sparse(f, &data, b.file_offset).map_err(|e| Error::io(tmp, e))?;
    }
    Ok(())
}

/// Single-run files of one pack whose runs are close together, fetched with one range read.
pub(super) struct PackGroup<'a> {
    pub(super) pack: Id,
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) files: Vec<(&'a Path, &'a Node, Run)>,
}

/// Bytes of other blobs a group may read across to join two files' runs.
const MAX_GAP: u64 = 256 * 1024;

/// Gather single-run files into groups of one pack each fetched with one range read.
pub(super) fn group_by_pack<'a>(mut files: Vec<(&'a Path, &'a Node, Run)>) -> Vec<PackGroup<'a>> {
    files.sort_by_key(|a| (a.2.pack, a.2.start));
    let mut groups: Vec<PackGroup<'a>> = Vec::new();
    for f in files {
        let (pack, start, end) = (f.2.pack, f.2.start, f.2.end);
        match groups.last_mut() {
            Some(g)
                if g.pack == pack
                    && start <= g.end + MAX_GAP
                    && end.max(g.end) - g.start <= MAX_RUN =>
            {
                g.end = g.end.max(end);
                g.files.push(f);
            }
            _ => groups.push(PackGroup {
                pack,
                start,
                end,
                files: vec![f],
            }),
        }
    }
    groups
}

/// Blobs that lie back to back in one pack, fetched with one range read.
pub(super) struct Run {
    pub(super) pack: Id,
    pub(super) start: u64,
    pub(super) end: u64,
    blobs: Vec<RunBlob>,
}

struct RunBlob {
    id: Id,
    loc: BlobLocation,
    file_offset: u64,
}

/// Largest range read; bounds memory per restore thread.
const MAX_RUN: u64 = 16 << 20;

/// Group a file's chunks into range reads: chunks of one pack that lie close together share one
/// request, even when other files' blobs sit between them (parallel backups interleave files in a
/// pack) or the file's own chunks alternate between packs (deduplicated runs). Returns the runs
/// and the file size the chunks add up to.
pub(super) fn plan_runs(index: &Index, chunks: &[Id]) -> Result<(Vec<Run>, u64)> {
    let mut runs: Vec<Run> = Vec::new();
    // The run each pack's next chunk may join.
    let mut open: HashMap<Id, usize> = HashMap::new();
    let mut offset = 0u64;
    for id in chunks {
        let loc = index
            .get(id)
            .ok_or_else(|| Error::corrupt(format!("blob {id}"), "not in any index"))?;
        check_blob_kind(loc.kind, BlobKind::Data, id)?;
        let (start, end) = (loc.offset as u64, loc.offset as u64 + loc.stored_len as u64);
        let blob = RunBlob {
            id: *id,
            loc,
            file_offset: offset,
        };
        offset += loc.raw_len as u64;
        if let Some(r) = open.get(&loc.pack).map(|&i| &mut runs[i]) {
            let (s, e) = (r.start.min(start), r.end.max(end));
            if start <= r.end + MAX_GAP && end + MAX_GAP >= r.start && e - s <= MAX_RUN {
                (r.start, r.end) = (s, e);
                r.blobs.push(blob);
                continue;
            }
        }
        open.insert(loc.pack, runs.len());
        runs.push(Run {
            pack: loc.pack,
            start,
            end,
            blobs: vec![blob],
        });
    }
    Ok((runs, offset))
}
