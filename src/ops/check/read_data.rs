//! `--read-data`: download the selected packs whole, re-hash each against its name, and open
//! every blob in it.

use std::collections::{BTreeSet, HashMap};

use rayon::prelude::*;

use super::packs::Packs;
use super::{CheckReport, Damage, ReadData, pack_label, problem};
use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::index::IndexPack;
use crate::format::pack::{BlobKind, PackedBlob};
use crate::vault::{Vault, pack_name};

/// What reading one pack found.
struct PackRead {
    id: Id,
    bytes: u64,
    blobs: usize,
    hash_ok: bool,
    bad: Vec<(Id, String)>,
    fetch: Option<String>,
}

/// Download the selected packs whole, re-hash each against its name, and open every blob.
pub(super) fn read_data(
    vault: &Vault,
    which: ReadData,
    packs: &Packs,
    report: &mut CheckReport,
    damage: &mut Damage,
) -> Result<()> {
    let seed: [u8; 32] = crate::format::crypto::random_array()?;
    let reader = PackReader {
        vault,
        packs,
        spare: packs.unindexed.iter().map(|p| (p.id, p)).collect(),
        // Packs whose header disagrees with the index (or does not read): their blobs are
        // opened where the index says, as restore would read them, so the files they hit are
        // named.
        disputed: damage.packs.clone(),
    };
    let selected = select(&packs.stored, which, &seed);
    // Whole packs are held in memory here, so no more at once than uploads hold.
    let threads = vault.store().downloads().min(vault.store().connections());
    let results: Vec<PackRead> = crate::store::in_download_pool(threads, || {
        selected.par_iter().map(|id| reader.read(id)).collect()
    });
    for r in results {
        record_read(r, packs, report, damage);
    }
    Ok(())
}

/// The stored packs (listed in id order) that `which` reads.
fn select(stored: &[(Id, u64)], which: ReadData, seed: &[u8; 32]) -> Vec<Id> {
    stored
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| match which {
            ReadData::None => false,
            ReadData::All => true,
            ReadData::Subset(s) => s.selects(id, seed),
        })
        .collect()
}

/// What reading a pack needs to know besides its bytes.
struct PackReader<'a> {
    vault: &'a Vault,
    packs: &'a Packs,
    /// The headers of packs no index lists, by pack id.
    spare: HashMap<Id, &'a IndexPack>,
    /// Packs whose header disagrees with the index or does not read.
    disputed: BTreeSet<Id>,
}

impl PackReader<'_> {
    /// Download pack `id`, re-hash it and open its blobs.
    fn read(&self, id: &Id) -> PackRead {
        let mut r = PackRead {
            id: *id,
            bytes: 0,
            blobs: 0,
            hash_ok: true,
            bad: vec![],
            fetch: None,
        };
        let name = pack_name(id);
        let bytes = match self.vault.store().get(&name) {
            Ok(Some(b)) => b,
            Ok(None) => {
                r.fetch = Some("vanished while check ran".into());
                return r;
            }
            Err(e) => {
                r.fetch = Some(e.to_string());
                return r;
            }
        };
        let (kind, blobs) = match self.blobs_to_open(id, &bytes) {
            Ok(kb) => kb,
            Err(why) => {
                r.fetch = Some(why);
                return r;
            }
        };
        r.bytes = bytes.len() as u64;
        r.hash_ok = Id::of_object(&bytes) == *id;
        self.open_blobs(&name, &bytes, kind, &blobs, &mut r);
        r
    }

    /// The blobs to open in the downloaded pack `id`, or why they cannot be known.
    fn blobs_to_open(
        &self,
        id: &Id,
        bytes: &[u8],
    ) -> std::result::Result<(BlobKind, Vec<PackedBlob>), String> {
        // The blobs to open: a listed pack's own header (already compared with the
        // index), or, when the download's header does not parse, the index file's
        // listing read again; an unindexed pack's header as read before.
        let own = || {
            let kind = crate::format::pack::parse_preamble(bytes)?;
            let blobs =
                crate::format::pack::parse_header(self.vault.sealer(), bytes, bytes.len() as u64)?;
            Ok::<_, Error>((kind, blobs))
        };
        let from_index = |file: &Id| -> Result<Option<(BlobKind, Vec<PackedBlob>)>> {
            let f = self.vault.read_index_file(file)?;
            Ok(f.packs
                .into_iter()
                .find(|p| p.id == *id)
                .map(|p| (p.kind, p.blobs)))
        };
        Ok(match (self.spare.get(id), self.packs.listed_in(id)) {
            (Some(p), _) => (p.kind, p.blobs.clone()),
            (None, Some(file)) if self.disputed.contains(id) => match from_index(&file) {
                Ok(Some(kb)) => kb,
                Ok(None) | Err(_) => own().unwrap_or((BlobKind::Data, vec![])),
            },
            (None, Some(file)) => match own() {
                Ok(kb) => kb,
                Err(_) => match from_index(&file) {
                    Ok(Some(kb)) => kb,
                    Ok(None) => (BlobKind::Data, vec![]),
                    Err(e) => {
                        return Err(format!(
                            "its header does not parse and index/{} cannot be read again: {e}",
                            file.to_hex()
                        ));
                    }
                },
            },
            (None, None) => (BlobKind::Data, vec![]),
        })
    }

    /// Decrypt, decompress and re-hash each of `blobs` in the pack's `bytes`.
    fn open_blobs(
        &self,
        name: &str,
        bytes: &[u8],
        kind: BlobKind,
        blobs: &[PackedBlob],
        r: &mut PackRead,
    ) {
        for b in blobs {
            r.blobs += 1;
            let range = b.offset as usize..b.offset as usize + b.stored_len as usize;
            let opened = match bytes.get(range) {
                Some(sealed) => self
                    .vault
                    .open_blob(sealed, &b.id, kind, b.raw_len, name)
                    .map(|_| ()),
                None => Err(Error::corrupt(name, "blob lies beyond the pack's end")),
            };
            if let Err(e) = opened {
                r.bad.push((b.id, e.to_string()));
            }
        }
    }
}

/// Count one pack read and report what was wrong with it.
fn record_read(r: PackRead, packs: &Packs, report: &mut CheckReport, damage: &mut Damage) {
    report.packs_read += 1;
    report.bytes_read += r.bytes;
    report.blobs_read += r.blobs;
    let label = pack_label(&r.id);
    if let Some(e) = r.fetch {
        report
            .errors
            .push(problem(&label, format!("cannot be downloaded: {e}")));
        damage.packs.insert(r.id);
        return;
    }
    let mut what = Vec::new();
    if !r.hash_ok {
        what.push("its content does not match its name (hash mismatch)".to_string());
    }
    if let Some((first, e)) = r.bad.first() {
        what.push(format!(
            "{} of {} blobs fail to decrypt, decompress or re-hash (first: blob {}: {e})",
            r.bad.len(),
            r.blobs,
            first.short()
        ));
    }
    if what.is_empty() {
        return;
    }
    damage.packs.insert(r.id);
    if packs.listed_in(&r.id).is_some() {
        report.errors.push(problem(&label, what.join("; ")));
    } else {
        report.warnings.push(problem(
            &label,
            format!("in no index and damaged: {}", what.join("; ")),
        ));
    }
    for (b, _) in r.bad {
        damage.blobs.insert((r.id, b));
    }
}
