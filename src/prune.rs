//! Prune: delete what no snapshot uses, and repack packs that are mostly unused.
//!
//! Ordering (formats/ §12.6): new packs first, then the index files that describe the vault
//! after prune (the last of them supersedes every old index file), and only then deletions.
//! A crash at any point leaves a vault whose every snapshot still resolves. The caller holds an
//! exclusive lock; `fence` re-checks it before the first write that removes anything.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::index::{Index, IndexFile, IndexPack};
use crate::pack::{BlobKind, PackWriter, PackedBlob};
use crate::snapshot::Snapshot;
use crate::tree::NodeKind;
use crate::vault::{DATA, INDEX, SNAPSHOTS, Vault, pack_name};

/// Index files written by prune list at most this many blobs each (about 2 MiB).
const BLOBS_PER_INDEX_FILE: usize = 50_000;

#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Compute and report, change nothing.
    pub dry_run: bool,
    /// Repack partly used packs until unused bytes are at most this fraction of what stays.
    pub max_unused: f64,
    /// Snapshots to treat as already forgotten (only with `dry_run`: `forget --dry-run --prune`
    /// previews what forgetting them would free).
    pub assume_forgotten: HashSet<Id>,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            dry_run: false,
            max_unused: 0.05,
            assume_forgotten: HashSet::new(),
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
}

/// One pack and how much of it is used.
struct PackUse {
    pack: IndexPack,
    size: u64,
    used: Vec<PackedBlob>,
    used_bytes: u64,
    unused_bytes: u64,
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

    // Everything the vault holds: readable index files, then pack headers for packs no index
    // names (interrupted backups, or an index file that is damaged).
    let scan = vault.scan_index()?;
    let stored: HashMap<Id, u64> = vault.list_ids(DATA)?.into_iter().collect();
    report.packs_before = stored.len();
    report.bytes_before = stored.values().sum();
    let mut packs: Vec<IndexPack> = Vec::new();
    for p in scan.packs() {
        if stored.contains_key(&p.id) {
            packs.push(p);
        } else {
            report.packs_missing += 1;
        }
    }
    let listed: HashSet<Id> = packs.iter().map(|p| p.id).collect();
    let mut orphans: Vec<(Id, u64)> = stored
        .iter()
        .filter(|(id, _)| !listed.contains(id))
        .map(|(id, size)| (*id, *size))
        .collect();
    orphans.sort();
    let headers: Vec<(Id, Result<IndexPack>)> = orphans
        .par_iter()
        .map(|(id, size)| (*id, vault.read_pack_header(id, *size)))
        .collect();
    for (id, h) in headers {
        match h {
            Ok(p) => {
                report.packs_unindexed += 1;
                packs.push(p);
            }
            // Damaged rather than unreachable, and no unreadable index file might name it.
            Err(e) if e.kind() == ErrorKind::Corrupt && scan.unreadable.is_empty() => {
                report.packs_damaged_deleted.push(id)
            }
            Err(_) => report.packs_unreadable.push(id),
        }
    }
    let mut index = Index::new();
    for p in &packs {
        index.add_pack(p.id, p.kind, &p.blobs);
    }
    index.finish();

    // What the snapshots use. Prune must see every snapshot whole, or it could delete what an
    // unreadable one needs.
    let mut snaps = vault.scan_snapshots()?;
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
    let used = used_blobs(vault, &index, &snaps.readable)?;
    report.blobs_used = used.len();

    // Where each used blob is kept: the location the index gives (other copies are unused).
    let mut uses: Vec<PackUse> = packs
        .into_iter()
        .map(|pack| {
            let size = stored.get(&pack.id).copied().unwrap_or(0);
            let mut u = PackUse {
                size,
                used: Vec::new(),
                used_bytes: 0,
                unused_bytes: 0,
                pack,
            };
            for b in &u.pack.blobs {
                let here =
                    used.contains(&b.id) && index.get(&b.id).is_some_and(|l| l.pack == u.pack.id);
                if here {
                    u.used.push(*b);
                    u.used_bytes += b.stored_len as u64;
                } else {
                    u.unused_bytes += b.stored_len as u64;
                }
            }
            u
        })
        .collect();
    uses.sort_by_key(|u| u.pack.id);

    // Decide: packs with nothing used go; then the most wasteful partly used packs are
    // repacked until what stays unused is within the limit.
    let (mut delete, mut keep): (Vec<PackUse>, Vec<PackUse>) =
        uses.into_iter().partition(|u| u.used.is_empty());
    keep.sort_by(|a, b| {
        b.unused_bytes
            .cmp(&a.unused_bytes)
            .then(a.pack.id.cmp(&b.pack.id))
    });
    let used_total: u64 = keep.iter().map(|u| u.used_bytes).sum();
    let mut unused_total: u64 = keep.iter().map(|u| u.unused_bytes).sum();
    let mut repack = Vec::new();
    let mut rest = Vec::new();
    for u in keep {
        let over = unused_total as f64 > opts.max_unused * (used_total + unused_total) as f64;
        if over && u.unused_bytes > 0 {
            unused_total -= u.unused_bytes;
            repack.push(u);
        } else {
            rest.push(u);
        }
    }
    report.packs_deleted = delete.len();
    report.packs_repacked = repack.len();
    report.bytes_rewritten = repack.iter().map(|u| u.used_bytes).sum();
    report.bytes_unused_after = unused_total;
    let removed_bytes: u64 = delete.iter().chain(&repack).map(|u| u.size).sum();
    report.forget_records_damaged_deleted =
        crate::forget::scan_forgets(vault)?.damaged_confirmed(vault);
    let nothing_to_do = delete.is_empty()
        && report.forget_records_damaged_deleted.is_empty()
        && repack.is_empty()
        && report.packs_unindexed == 0
        && report.packs_missing == 0
        && report.packs_damaged_deleted.is_empty()
        && scan.unreadable.is_empty();

    if !opts.dry_run {
        // Under the exclusive lock no writer of this vault is running: every spool file in
        // the vault's own folder was left by one that was killed.
        fence()?;
        report.spool_files_removed = vault.clear_own_spool()?;
    }
    if opts.dry_run || nothing_to_do {
        report.packs_after = rest.len() + usize::from(!repack.is_empty());
        report.bytes_after = report.bytes_before - removed_bytes + report.bytes_rewritten;
        report.bytes_freed = removed_bytes.saturating_sub(report.bytes_rewritten);
        return Ok(report);
    }

    // 1. New packs with the used blobs of the packs being repacked, each blob checked first:
    // prune must never copy damage into a new pack and then delete the last good copy.
    let written = repack_packs(vault, &repack)?;
    report.packs_written = written.len();
    let written_bytes: u64 = written.iter().map(|(_, size)| *size).sum();

    // A listing can miss an object (an eventually consistent store, a flaky proxy). Deleting
    // on one listing could then drop the data of a snapshot, or keep an index file that still
    // names deleted packs: look again before anything is superseded, and stop on a stranger.
    let seen_snaps: HashSet<Id> = snaps
        .readable
        .iter()
        .map(|(id, _)| *id)
        .chain(snaps.unreadable.iter().map(|(id, _)| *id))
        .collect();
    let seen_index: HashSet<Id> = scan.all.iter().copied().collect();
    for (prefix, seen) in [(SNAPSHOTS, &seen_snaps), (INDEX, &seen_index)] {
        if let Some((id, _)) = vault
            .list_ids(prefix)?
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

    // 2. Index files for everything that stays; the last supersedes every old index file.
    let mut after: Vec<IndexPack> = rest.iter().map(|u| u.pack.clone()).collect();
    after.extend(written.into_iter().map(|(p, _)| p));
    fence()?;
    report.index_files_written = write_index(vault, after.clone(), &scan.all)?;
    report.index_files_replaced = scan.all.len();

    // 3. Deletions, now that no index names what goes.
    fence()?;
    for id in &scan.all {
        vault.store().delete(&format!("{INDEX}/{}", id.to_hex()))?;
    }
    delete.append(&mut repack);
    for u in &delete {
        vault.store().delete(&pack_name(&u.pack.id))?;
    }
    for id in &report.packs_damaged_deleted {
        vault.store().delete(&pack_name(id))?;
    }
    for id in &report.forget_records_damaged_deleted {
        vault
            .store()
            .delete(&format!("{}/{}", crate::forget::FORGETS, id.to_hex()))?;
    }
    report.packs_after = after.len();
    report.bytes_after = report.bytes_before - removed_bytes + written_bytes;
    report.bytes_freed = removed_bytes.saturating_sub(written_bytes);
    Ok(report)
}

/// Every blob (data and tree) reachable from `snaps`. Fails if a tree cannot be read or a
/// used blob is in no pack: the vault is damaged and prune must not guess.
pub fn used_blobs(vault: &Vault, index: &Index, snaps: &[(Id, Snapshot)]) -> Result<HashSet<Id>> {
    // Trees are visited and dropped: only the ids stay in memory (issue 18).
    let found: std::sync::Mutex<(HashSet<Id>, Vec<Id>)> = Default::default();
    let failed =
        crate::walk::visit_trees(vault, index, snaps.iter().map(|(_, s)| s.tree), &|id, t| {
            let mut g = found.lock().unwrap_or_else(|p| p.into_inner());
            let (used, missing) = &mut *g;
            used.insert(id);
            for n in &t.nodes {
                if let NodeKind::File { chunks } = &n.kind {
                    for c in chunks {
                        if used.insert(*c) && !index.contains(c) {
                            missing.push(*c);
                        }
                    }
                }
            }
        });
    if let Some((tid, e)) = failed.iter().min_by_key(|(t, _)| **t) {
        return Err(Error::InvalidInput(format!(
            "tree {} cannot be read ({e}); prune stops rather than guess what is used: run `sitevault check`",
            tid.short()
        )));
    }
    let (used, missing) = found.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(first) = missing.iter().min() {
        return Err(Error::InvalidInput(format!(
            "{} blob(s) that snapshots use are in no pack (first: {}); prune stops rather than make it worse: run `sitevault check`",
            missing.len(),
            first.short()
        )));
    }
    Ok(used)
}

/// Copy the used blobs of `packs` into new packs; returns them with their sizes.
fn repack_packs(vault: &Vault, packs: &[PackUse]) -> Result<Vec<(IndexPack, u64)>> {
    let target = vault.config().pack_size as usize;
    let mut out = Vec::new();
    for kind in [BlobKind::Data, BlobKind::Tree] {
        let mut writer = vault.pack_writer(kind)?;
        for u in packs.iter().filter(|u| u.pack.kind == kind) {
            let name = pack_name(&u.pack.id);
            let bytes = vault
                .store()
                .get(&name)?
                .ok_or_else(|| Error::corrupt(&name, "pack vanished during prune"))?;
            for b in &u.used {
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
