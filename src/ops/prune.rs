//! Prune: delete what no snapshot uses, and repack packs that are mostly unused.
//!
//! Ordering (formats/ §12.6): new packs first, then the index files that replace the old ones
//! naming what goes (the last of them supersedes those), and only then deletions. A crash at
//! any point leaves a vault whose every snapshot still resolves. The caller holds an exclusive
//! lock; `fence` re-checks it before the first write that removes anything.
//!
//! Memory and work (issue 18): the index is never held decoded. Index files are read a batch
//! at a time into an index built like a backup's (on disk past the memory budget); prune keeps
//! per pack only its sizes and fate, and the used set is one bit per blob. Only index files
//! that name something that goes are rewritten (small ones merged along the way), so what
//! prune writes follows what changed, not the size of the vault.

use std::collections::HashSet;

use rayon::prelude::*;

use crate::error::{Error, ErrorKind, Result};
use crate::format::id::Id;
use crate::format::index::{IndexFile, IndexPack};
use crate::format::pack::{BlobKind, PackedBlob};
use crate::vault::pack_writer::PackWriter;
use crate::vault::{DATA, INDEX, SNAPSHOTS, Vault, pack_name};

/// Index files written by prune list at most this many blobs each (about 2 MiB).
const BLOBS_PER_INDEX_FILE: usize = 50_000;
/// Listings of `snapshots/` and `index/` taken together, before the work and again before the
/// commit: an object must be missed by all four to be missed.
const LISTINGS: usize = 2;
/// Index files fetched at once (in parallel); each batch is taken in and dropped.
const INDEX_BATCH: usize = 32;

#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Compute and report, change nothing.
    pub dry_run: bool,
    /// Repack partly used packs until unused bytes are at most this fraction of what stays.
    pub max_unused: f64,
    /// Snapshots to treat as already forgotten (only with `dry_run`: `forget --dry-run --prune`
    /// previews what forgetting them would free).
    pub assume_forgotten: HashSet<Id>,
    /// Index files prune writes list at most this many blobs; files in force listing fewer
    /// than half as many are merged when prune writes index files anyway.
    pub index_file_blobs: usize,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            dry_run: false,
            max_unused: 0.05,
            assume_forgotten: HashSet::new(),
            index_file_blobs: BLOBS_PER_INDEX_FILE,
        }
    }
}

/// What prune found and did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    pub snapshots: usize,
    pub packs_before: usize,
    pub bytes_before: u64,
    /// Distinct blobs the snapshots use.
    pub blobs_used: usize,
    /// Packs holding nothing used: deleted.
    pub packs_deleted: usize,
    /// Partly used packs whose used blobs were copied into new packs, then deleted.
    pub packs_repacked: usize,
    pub packs_written: usize,
    /// Stored bytes copied into new packs.
    pub bytes_rewritten: u64,
    /// Stored bytes removed (deleted and repacked packs) minus the bytes of new packs.
    pub bytes_freed: u64,
    pub packs_after: usize,
    pub bytes_after: u64,
    /// Unused stored bytes that remain in packs kept as they are.
    pub bytes_unused_after: u64,
    /// Packs that no index file listed (left by interrupted backups); indexed or deleted now.
    pub packs_unindexed: usize,
    /// Packs no index lists and whose header cannot be read: left alone for `check` to report.
    pub packs_unreadable: Vec<Id>,
    /// Packs no index lists whose bytes are damaged (a torn upload), found while every index
    /// file was readable: nothing can refer to them, so they are deleted.
    pub packs_damaged_deleted: Vec<Id>,
    /// Index entries for packs that no longer exist: dropped (no snapshot needed them).
    pub packs_missing: usize,
    pub index_files_replaced: usize,
    pub index_files_written: usize,
    /// Forget records whose bytes are damaged (torn uploads of forgets that deleted nothing):
    /// deleted (formats/ §9.3).
    pub forget_records_damaged_deleted: Vec<Id>,
    /// Spool files in a vault folder's `tmp/` left by killed backups (formats/ §2): removed.
    pub spool_files_removed: usize,
    /// Whether prune kept its index in a working file (past `--index-memory`, formats/ §7.4).
    pub index_on_disk: bool,
}

/// One pack as an index file (or its own header) lists it.
struct Listing {
    pack: Id,
    kind: BlobKind,
    bytes: u64,
}

/// One index file as listed.
struct FileInfo {
    id: Id,
    readable: bool,
    blobs: usize,
    supersedes: Vec<Id>,
    listings: std::ops::Range<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Keep,
    Delete,
    Repack,
}

/// One stored pack that an index file in force (or its own header) lists.
struct PackState {
    id: Id,
    kind: BlobKind,
    size: u64,
    /// Stored bytes of its blobs, from its first listing.
    blob_bytes: u64,
    used_blobs: u32,
    used_bytes: u64,
    fate: Fate,
    /// Listed by an index file that stays: new index files need not name it.
    in_kept_file: bool,
    /// Already named by a new index file.
    emitted: bool,
}

impl PackState {
    fn unused_bytes(&self) -> u64 {
        self.blob_bytes.saturating_sub(self.used_bytes)
    }
}

fn find(states: &[PackState], id: &Id) -> Option<usize> {
    states.binary_search_by(|s| s.id.cmp(id)).ok()
}

pub fn prune(
    vault: &Vault,
    opts: &PruneOptions,
    fence: &dyn Fn() -> Result<()>,
) -> Result<PruneReport> {
    let mut report = PruneReport {
        dry_run: opts.dry_run,
        ..PruneReport::default()
    };
    if !opts.dry_run && !opts.assume_forgotten.is_empty() {
        return Err(Error::InvalidInput(
            "prune can only assume snapshots forgotten in a dry run".into(),
        ));
    }
    if !(0.0..=1.0).contains(&opts.max_unused) {
        return Err(Error::InvalidInput(
            "--max-unused must be between 0% and 100%".into(),
        ));
    }

    // 1. Everything the vault holds: every index file, a batch at a time, into an index of the
    // packs that still exist; then the headers of packs no index file in force names
    // (interrupted backups, or an index file that is damaged).
    let mut stored = vault.list_ids(DATA)?;
    stored.sort_unstable();
    report.packs_before = stored.len();
    report.bytes_before = stored.iter().map(|(_, s)| s).sum();
    let is_stored = |id: &Id| stored.binary_search_by(|(s, _)| s.cmp(id)).is_ok();
    let index_ids = vault.list_ids_union(INDEX, LISTINGS)?;
    // Index files store about 33 bytes per blob (formats/ §7.3).
    let expected = index_ids.iter().map(|(_, s)| *s).sum::<u64>() / 30;
    let mut builder = vault.index_builder(expected)?;
    let mut files: Vec<FileInfo> = Vec::new();
    let mut listings: Vec<Listing> = Vec::new();
    // The listing behind each pack number of the index.
    let mut numbered: Vec<u32> = Vec::new();
    let mut unreadable_files = 0;
    for batch in index_ids.chunks(INDEX_BATCH) {
        let loaded: Vec<(Id, Result<IndexFile>)> = batch
            .par_iter()
            .map(|(id, _)| (*id, vault.read_index_file(id)))
            .collect();
        for (id, r) in loaded {
            let start = listings.len();
            let Ok(f) = r else {
                unreadable_files += 1;
                files.push(FileInfo {
                    id,
                    readable: false,
                    blobs: 0,
                    supersedes: vec![],
                    listings: start..start,
                });
                continue;
            };
            let from = builder.pack_count();
            for p in &f.packs {
                listings.push(Listing {
                    pack: p.id,
                    kind: p.kind,
                    bytes: p.blobs.iter().map(|b| b.stored_len as u64).sum(),
                });
                // A blob must resolve to a copy that still exists.
                if is_stored(&p.id) {
                    builder.add_pack(p.id, p.kind, &p.blobs)?;
                    numbered.push((listings.len() - 1) as u32);
                }
            }
            builder.end_file(id, from, &f.supersedes);
            files.push(FileInfo {
                id,
                readable: true,
                blobs: f.packs.iter().map(|p| p.blobs.len()).sum(),
                supersedes: f.supersedes,
                listings: start..listings.len(),
            });
        }
    }
    let superseded: HashSet<Id> = files
        .iter()
        .flat_map(|f| f.supersedes.iter().copied())
        .collect();
    let in_force = |f: &FileInfo| f.readable && !superseded.contains(&f.id);

    // Each stored pack an index file in force names, from its first listing (files ascend).
    let mut first: Vec<(Id, u32)> = Vec::new();
    let mut missing: Vec<Id> = Vec::new();
    for f in files.iter().filter(|f| in_force(f)) {
        for li in f.listings.clone() {
            let l = &listings[li];
            if is_stored(&l.pack) {
                first.push((l.pack, li as u32));
            } else {
                missing.push(l.pack);
            }
        }
    }
    first.sort_unstable();
    first.dedup_by_key(|(id, _)| *id);
    missing.sort_unstable();
    missing.dedup();
    report.packs_missing = missing.len();
    let size_of = |id: &Id| {
        stored
            .binary_search_by(|(s, _)| s.cmp(id))
            .map_or(0, |i| stored[i].1)
    };
    let state = |id: Id, kind: BlobKind, blob_bytes: u64| PackState {
        id,
        kind,
        size: size_of(&id),
        blob_bytes,
        used_blobs: 0,
        used_bytes: 0,
        fate: Fate::Keep,
        in_kept_file: false,
        emitted: false,
    };
    let mut states: Vec<PackState> = first
        .iter()
        .map(|&(id, li)| {
            let l = &listings[li as usize];
            state(id, l.kind, l.bytes)
        })
        .collect();
    drop(first);

    let orphans: Vec<(Id, u64)> = stored
        .iter()
        .filter(|(id, _)| find(&states, id).is_none())
        .copied()
        .collect();
    // Unindexed packs that read: kept whole, to be named by a new index file.
    let mut unindexed: Vec<IndexPack> = Vec::new();
    vault.each_pack_header(&orphans, &mut |id, h| {
        match h {
            Ok(p) => {
                builder.add_pack(p.id, p.kind, &p.blobs)?;
                listings.push(Listing {
                    pack: p.id,
                    kind: p.kind,
                    bytes: p.blobs.iter().map(|b| b.stored_len as u64).sum(),
                });
                numbered.push((listings.len() - 1) as u32);
                unindexed.push(p);
            }
            // Damaged rather than unreachable, and no unreadable index file might name it.
            Err(e) if e.kind() == ErrorKind::Corrupt && unreadable_files == 0 => {
                report.packs_damaged_deleted.push(id)
            }
            Err(_) => report.packs_unreadable.push(id),
        }
        Ok(())
    })?;
    report.packs_unindexed = unindexed.len();
    states.extend(unindexed.iter().map(|p| {
        state(
            p.id,
            p.kind,
            p.blobs.iter().map(|b| b.stored_len as u64).sum(),
        )
    }));
    states.sort_unstable_by_key(|s| s.id);
    let index = builder.finish()?;
    report.index_on_disk = index.is_on_disk();
    // Pack number → state (entries of superseded files were dropped, so never looked up).
    let slot_of: Vec<u32> = numbered
        .iter()
        .map(|&li| find(&states, &listings[li as usize].pack).map_or(u32::MAX, |s| s as u32))
        .collect();
    drop(numbered);

    // 2. What the snapshots use. Prune must see every snapshot whole, or it could delete what an
    // unreadable one needs.
    let mut snaps = vault.scan_snapshots_listed(LISTINGS)?;
    snaps
        .readable
        .retain(|(id, _)| !opts.assume_forgotten.contains(id));
    snaps
        .unreadable
        .retain(|(id, _)| !opts.assume_forgotten.contains(id));
    if let Some((id, e)) = snaps.unreadable.first() {
        return Err(Error::InvalidInput(format!(
            "snapshot {} cannot be read ({e}); prune needs every snapshot intact to know what is used: run `sitevault check`, and `sitevault forget` the damaged snapshot if it cannot be repaired",
            id.short()
        )));
    }
    report.snapshots = snaps.readable.len();
    let used = crate::vault::used::used_set(vault, &index, &snaps.readable)?;
    report.blobs_used = used.count();

    // 3. How much of each pack is used: a used blob counts in the pack the index resolves it
    // to (its other copies are unused).
    index.for_each_entry(&mut |pos, n, b| {
        if used.contains(pos)
            && let Some(s) = slot_of
                .get(n as usize)
                .and_then(|&s| states.get_mut(s as usize))
        {
            s.used_blobs += 1;
            s.used_bytes += b.stored_len as u64;
        }
    })?;

    // Decide: packs with nothing used go; then the most wasteful partly used packs are
    // repacked until what stays unused is within the limit.
    let mut keep: Vec<usize> = Vec::new();
    for (i, s) in states.iter_mut().enumerate() {
        if s.used_blobs == 0 {
            s.fate = Fate::Delete;
        } else {
            keep.push(i);
        }
    }
    keep.sort_by(|&a, &b| {
        let (a, b) = (&states[a], &states[b]);
        b.unused_bytes()
            .cmp(&a.unused_bytes())
            .then(a.id.cmp(&b.id))
    });
    let used_total: u64 = keep.iter().map(|&i| states[i].used_bytes).sum();
    let mut unused_total: u64 = keep.iter().map(|&i| states[i].unused_bytes()).sum();
    let limit = opts.max_unused * (used_total + unused_total) as f64;
    for &i in &keep {
        let unused = states[i].unused_bytes();
        if unused_total as f64 > limit && unused > 0 {
            unused_total -= unused;
            states[i].fate = Fate::Repack;
        }
    }
    let count = |fate: Fate| states.iter().filter(|s| s.fate == fate).count();
    let goes = |s: &&PackState| s.fate != Fate::Keep;
    report.packs_deleted = count(Fate::Delete);
    report.packs_repacked = count(Fate::Repack);
    report.bytes_rewritten = states
        .iter()
        .filter(|s| s.fate == Fate::Repack)
        .map(|s| s.used_bytes)
        .sum();
    report.bytes_unused_after = unused_total;
    let removed_bytes: u64 = states.iter().filter(goes).map(|s| s.size).sum();
    let kept = count(Fate::Keep);
    report.forget_records_damaged_deleted =
        crate::ops::forget::scan_forgets(vault)?.damaged_confirmed(vault);
    let stale: Vec<Id> = files
        .iter()
        .filter(|f| superseded.contains(&f.id))
        .map(|f| f.id)
        .collect();
    let nothing_to_do = report.packs_deleted == 0
        && report.packs_repacked == 0
        && report.forget_records_damaged_deleted.is_empty()
        && report.packs_unindexed == 0
        && report.packs_missing == 0
        && report.packs_damaged_deleted.is_empty()
        && unreadable_files == 0
        && stale.is_empty();

    if !opts.dry_run {
        // Under the exclusive lock no writer of this vault is running: every spool file in
        // the vault's own folder was left by one that was killed.
        fence()?;
        report.spool_files_removed = vault.clear_own_spool()?;
    }
    if opts.dry_run || nothing_to_do {
        report.packs_after = kept + usize::from(report.packs_repacked > 0);
        report.bytes_after = report.bytes_before - removed_bytes + report.bytes_rewritten;
        report.bytes_freed = removed_bytes.saturating_sub(report.bytes_rewritten);
        return Ok(report);
    }

    // 4. New packs with the used blobs of the packs being repacked, each blob checked first:
    // prune must never copy damage into a new pack and then delete the last good copy.
    let mut moving: Vec<(u32, PackedBlob)> = Vec::new();
    if report.packs_repacked > 0 {
        index.for_each_entry(&mut |pos, n, b| {
            if let Some(&s) = slot_of.get(n as usize)
                && states
                    .get(s as usize)
                    .is_some_and(|s| s.fate == Fate::Repack)
                && used.contains(pos)
            {
                moving.push((s, *b));
            }
        })?;
    }
    drop(index);
    moving.sort_unstable_by_key(|(s, b)| (*s, b.offset));
    let written = repack_packs(vault, &states, &moving)?;
    drop(moving);
    report.packs_written = written.len();
    let written_bytes: u64 = written.iter().map(|(_, size)| *size).sum();

    // A listing can miss an object (an eventually consistent store, a flaky proxy). Deleting
    // on one listing could then drop the data of a snapshot, or keep an index file that still
    // names deleted packs: what was read came from two listings, and two more now must show
    // nothing else before anything is superseded (the fault campaign saw the same snapshot
    // missed by two listings in a row).
    let seen_snaps: HashSet<Id> = snaps
        .readable
        .iter()
        .map(|(id, _)| *id)
        .chain(snaps.unreadable.iter().map(|(id, _)| *id))
        .collect();
    let seen_index: HashSet<Id> = files.iter().map(|f| f.id).collect();
    for (prefix, seen) in [(SNAPSHOTS, &seen_snaps), (INDEX, &seen_index)] {
        if let Some((id, _)) = vault
            .list_ids_union(prefix, LISTINGS)?
            .into_iter()
            .find(|(id, _)| !seen.contains(id))
        {
            return Err(Error::Store {
                object: format!("{}/{prefix}/{}", vault.location(), id.to_hex()),
                detail: format!(
                    "it was not in this prune's first listing of {prefix}/ (the storage listed it late, or a writer ignored the lock); nothing was deleted: run prune again"
                ),
            });
        }
    }

    // 5. Which index files are replaced: those that cannot be read or name a pack that goes
    // (or is gone), and, when index files are being written anyway, the small ones.
    let stays = |l: &Listing| find(&states, &l.pack).is_some_and(|s| states[s].fate == Fate::Keep);
    let mut replace: Vec<bool> = files
        .iter()
        .map(|f| {
            !superseded.contains(&f.id)
                && (!f.readable || !listings[f.listings.clone()].iter().all(stays))
        })
        .collect();
    // When prune writes index files anyway it merges the small ones (a backup writes a few
    // small files per run), so they do not pile up.
    let small_file = opts.index_file_blobs / 2;
    let small: Vec<usize> = (0..files.len())
        .filter(|&i| !replace[i] && in_force(&files[i]) && files[i].blobs < small_file)
        .collect();
    let names_unindexed = unindexed
        .iter()
        .any(|p| find(&states, &p.id).is_some_and(|s| states[s].fate == Fate::Keep));
    let writes = replace.iter().any(|r| *r) || names_unindexed || !written.is_empty();
    if writes && small.len() > 1 {
        small.iter().for_each(|&i| replace[i] = true);
    }
    for (i, f) in files.iter().enumerate() {
        if in_force(f) && !replace[i] {
            for l in &listings[f.listings.clone()] {
                if let Some(s) = find(&states, &l.pack) {
                    states[s].in_kept_file = true;
                }
            }
        }
    }
    drop(listings);
    // Superseded in one atomic write by the last new index file, then deleted.
    let old: Vec<Id> = files
        .iter()
        .enumerate()
        .filter(|(i, f)| replace[*i] || superseded.contains(&f.id))
        .map(|(_, f)| f.id)
        .collect();

    // 6. Index files for every kept pack no staying file names, and the new packs; the last
    // supersedes the replaced files. The replaced files are read again one at a time for their
    // kept packs' entries (checked against their names, so they are the bytes read above).
    fence()?;
    let mut out = IndexOut::new(vault, opts.index_file_blobs.max(1));
    let mut take = |p: IndexPack, out: &mut IndexOut| -> Result<()> {
        if let Some(s) = find(&states, &p.id) {
            let st = &mut states[s];
            if st.fate == Fate::Keep && !st.in_kept_file && !st.emitted {
                st.emitted = true;
                out.push(p)?;
            }
        }
        Ok(())
    };
    for (i, f) in files.iter().enumerate() {
        if replace[i] && f.readable {
            for p in vault.read_index_file(&f.id)?.packs {
                take(p, &mut out)?;
            }
        }
    }
    for p in unindexed {
        take(p, &mut out)?;
    }
    for (p, _) in written {
        out.push(p)?;
    }
    // The lock is checked again right before the commit: reading the replaced files again
    // and storing the earlier files can take a while.
    report.index_files_written = out.finish(&old, fence)?;
    report.index_files_replaced = old.len();

    // 7. Deletions, now that no index in force names what goes.
    fence()?;
    for id in &old {
        vault.store().delete(&format!("{INDEX}/{}", id.to_hex()))?;
    }
    for s in states.iter().filter(goes) {
        vault.store().delete(&pack_name(&s.id))?;
    }
    for id in &report.packs_damaged_deleted {
        vault.store().delete(&pack_name(id))?;
    }
    for id in &report.forget_records_damaged_deleted {
        vault
            .store()
            .delete(&format!("{}/{}", crate::ops::forget::FORGETS, id.to_hex()))?;
    }
    report.packs_after = kept + report.packs_written;
    report.bytes_after = report.bytes_before - removed_bytes + written_bytes;
    report.bytes_freed = removed_bytes.saturating_sub(written_bytes);
    Ok(report)
}

/// Index files being written, each stored once it holds `max` blobs.
struct IndexOut<'a> {
    vault: &'a Vault,
    max: usize,
    cur: IndexFile,
    blobs: usize,
    written: usize,
}

impl<'a> IndexOut<'a> {
    fn new(vault: &'a Vault, max: usize) -> IndexOut<'a> {
        IndexOut {
            vault,
            max,
            cur: IndexFile::default(),
            blobs: 0,
            written: 0,
        }
    }

    fn push(&mut self, p: IndexPack) -> Result<()> {
        if self.blobs > 0 && self.blobs + p.blobs.len() > self.max {
            // Files before the last only repeat what old files say (harmless duplicates).
            self.vault.save_index(&std::mem::take(&mut self.cur))?;
            self.written += 1;
            self.blobs = 0;
        }
        self.blobs += p.blobs.len();
        self.cur.packs.push(p);
        Ok(())
    }

    /// Store the last file, superseding `old` in one atomic write after `fence` (none is needed
    /// when nothing is superseded or left to name). Returns how many files were written.
    fn finish(mut self, old: &[Id], fence: &dyn Fn() -> Result<()>) -> Result<usize> {
        // Already superseded files are listed again even when nothing else is: deleting them
        // in any order must not bring one back into force (§7.2 counts supersedes lists of
        // superseded files too).
        if !old.is_empty() || !self.cur.packs.is_empty() {
            fence()?;
            self.cur.supersedes = old.to_vec();
            self.vault.save_index(&self.cur)?;
            self.written += 1;
        }
        Ok(self.written)
    }
}

/// Copy the `moving` blobs (state, blob; sorted by state) into new packs; returns them with
/// their sizes.
fn repack_packs(
    vault: &Vault,
    states: &[PackState],
    moving: &[(u32, PackedBlob)],
) -> Result<Vec<(IndexPack, u64)>> {
    let target = vault.config().pack_size as usize;
    let mut out = Vec::new();
    for kind in [BlobKind::Data, BlobKind::Tree] {
        let mut writer = vault.pack_writer(kind)?;
        for group in moving.chunk_by(|a, b| a.0 == b.0) {
            let pack = &states[group[0].0 as usize];
            if pack.kind != kind {
                continue;
            }
            let name = pack_name(&pack.id);
            let bytes = vault
                .store()
                .get(&name)?
                .ok_or_else(|| Error::corrupt(&name, "pack vanished during prune"))?;
            for (_, b) in group {
                let range = b.offset as usize..b.offset as usize + b.stored_len as usize;
                let sealed = bytes.get(range).ok_or_else(|| {
                    Error::corrupt(&name, "a blob the index names lies beyond the pack's end")
                })?;
                vault.open_blob(sealed, &b.id, kind, b.raw_len, &name)?;
                writer.add(b.id, sealed, b.raw_len as usize);
                if writer.len() >= target {
                    let full = std::mem::replace(&mut writer, vault.pack_writer(kind)?);
                    out.push(store_pack(vault, full)?);
                }
            }
        }
        if !writer.is_empty() {
            out.push(store_pack(vault, writer)?);
        }
    }
    Ok(out)
}

fn store_pack(vault: &Vault, writer: PackWriter) -> Result<(IndexPack, u64)> {
    let kind = writer.kind();
    let (bytes, id, blobs) = writer.finish(vault.sealer())?;
    let size = bytes.len();
    vault.save_pack(&id, bytes)?;
    Ok((IndexPack { id, kind, blobs }, size))
}

/// Store index files for `packs`; the last one supersedes `old`. Returns how many were written.
pub(crate) fn write_index(vault: &Vault, packs: Vec<IndexPack>, old: &[Id]) -> Result<usize> {
    let mut files: Vec<IndexFile> = Vec::new();
    let mut cur = IndexFile::default();
    let mut blobs = 0;
    for p in packs {
        if blobs > 0 && blobs + p.blobs.len() > BLOBS_PER_INDEX_FILE {
            files.push(std::mem::take(&mut cur));
            blobs = 0;
        }
        blobs += p.blobs.len();
        cur.packs.push(p);
    }
    files.push(cur);
    // Files before the last only repeat what old files say (harmless duplicates); the last
    // one makes the switch in one atomic write.
    if let Some(last) = files.last_mut() {
        last.supersedes = old.to_vec();
    }
    let n = files.len();
    for f in &files {
        vault.save_index(f)?;
    }
    Ok(n)
}
