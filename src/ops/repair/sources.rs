//! `repair packs --from`: where the other vault holds the content of this vault's lost blobs,
//! and rebuilding them from it, verified against their ids.

use std::collections::{HashMap, HashSet};

use crate::error::Result;
use crate::format::id::Id;
use crate::format::pack::BlobKind;
use crate::format::snapshot::Snapshot;
use crate::format::tree::NodeKind;
use crate::vault::Vault;
use crate::vault::index::Index;

/// Where the other vault keeps the content of this vault's blobs, learned by walking snapshots
/// both hold (same time, host, label and paths) side by side.
pub(super) struct Sources<'a> {
    other: &'a Vault,
    other_index: &'a Index,
    same_ids: bool,
    /// Our blob id → the other vault's id for the same content.
    pub(super) ids: HashMap<Id, (Id, BlobKind)>,
}

impl<'a> Sources<'a> {
    /// Pair each of `snaps` with its twin in `other`, when it has one, and map their trees.
    pub(super) fn learn(
        ours: &Vault,
        index: &Index,
        other: &'a Vault,
        other_index: &'a Index,
        snaps: &[(Id, Snapshot)],
    ) -> Result<Sources<'a>> {
        let probe = b"sitevault repair: do the vaults share a chunk-id key?";
        let same_ids = ours.blob_id(BlobKind::Data, probe) == other.blob_id(BlobKind::Data, probe);
        let mut s = Sources {
            other,
            other_index,
            same_ids,
            ids: HashMap::new(),
        };
        let theirs = other.scan_snapshots()?.readable;
        let mut seen = HashSet::new();
        for (_, a) in snaps {
            let twin = theirs.iter().find(|(_, b)| {
                a.time == b.time && a.host == b.host && a.label == b.label && a.paths == b.paths
            });
            if let Some((_, b)) = twin {
                s.pair(ours, index, a.tree, b.tree, &mut seen);
            }
        }
        Ok(s)
    }

    /// Map tree `a` (ours) to `b` (theirs) and, where both are readable, everything below.
    fn pair(&mut self, ours: &Vault, index: &Index, a: Id, b: Id, seen: &mut HashSet<Id>) {
        self.ids.insert(a, (b, BlobKind::Tree));
        if !seen.insert(a) {
            return;
        }
        let (Ok(ta), Ok(tb)) = (
            ours.load_tree(index, &a),
            self.other.load_tree(self.other_index, &b),
        ) else {
            return;
        };
        for na in &ta.nodes {
            let Some(nb) = tb.nodes.iter().find(|n| n.name == na.name) else {
                continue;
            };
            match (&na.kind, &nb.kind) {
                (NodeKind::File { chunks: ca }, NodeKind::File { chunks: cb })
                    if ca.len() == cb.len() && na.size == nb.size =>
                {
                    for (x, y) in ca.iter().zip(cb) {
                        self.ids.insert(*x, (*y, BlobKind::Data));
                    }
                }
                (NodeKind::Dir { subtree: sa }, NodeKind::Dir { subtree: sb }) => {
                    self.pair(ours, index, *sa, *sb, seen)
                }
                _ => {}
            }
        }
    }

    /// The content of our data blob `id`, from the other vault, verified against `id`.
    fn data(&self, ours: &Vault, id: &Id) -> Option<Vec<u8>> {
        let mut candidates = Vec::new();
        if let Some((theirs, BlobKind::Data)) = self.ids.get(id) {
            candidates.push(*theirs);
        }
        if self.same_ids {
            candidates.push(*id);
        }
        candidates.into_iter().find_map(|theirs| {
            let data = self
                .other
                .read_blob(self.other_index, &theirs, BlobKind::Data)
                .ok()?;
            (ours.blob_id(BlobKind::Data, &data) == *id).then_some(data)
        })
    }

    /// Our tree for the other vault's tree `theirs`: its ids translated back to ours, with
    /// every blob below it we lack put in `out`. Returns our id for it.
    fn tree(
        &self,
        ours: &Vault,
        back: &HashMap<Id, Id>,
        have: &dyn Fn(&Id) -> bool,
        theirs: &Id,
        out: &mut Vec<(Id, BlobKind, Vec<u8>)>,
    ) -> Option<Id> {
        let mut t = self.other.load_tree(self.other_index, theirs).ok()?;
        for n in &mut t.nodes {
            match &mut n.kind {
                NodeKind::File { chunks } => {
                    for c in chunks.iter_mut() {
                        let known = if self.same_ids {
                            Some(*c)
                        } else {
                            back.get(c).copied()
                        };
                        if let Some(o) = known.filter(|o| have(o)) {
                            *c = o;
                            continue;
                        }
                        // Lost or unknown here: the content gives its id in our vault.
                        let data = self
                            .other
                            .read_blob(self.other_index, c, BlobKind::Data)
                            .ok()?;
                        *c = ours.blob_id(BlobKind::Data, &data);
                        out.push((*c, BlobKind::Data, data));
                    }
                }
                NodeKind::Dir { subtree } => {
                    let known = if self.same_ids {
                        Some(*subtree)
                    } else {
                        back.get(subtree).copied()
                    };
                    *subtree = match known.filter(|o| have(o)) {
                        Some(o) => o,
                        None => self.tree(ours, back, have, subtree, out)?,
                    };
                }
                NodeKind::Symlink { .. } => {}
            }
        }
        let bytes = t.encode();
        let id = ours.blob_id(BlobKind::Tree, &bytes);
        out.push((id, BlobKind::Tree, bytes));
        Some(id)
    }

    /// Everything needed to restore our lost blob `id` (and, for a tree, what is lost below
    /// it), verified: a data blob must hash to `id`, a rebuilt tree must encode to `id`.
    pub(super) fn heal(
        &self,
        ours: &Vault,
        back: &HashMap<Id, Id>,
        have: &dyn Fn(&Id) -> bool,
        id: &Id,
    ) -> Option<Vec<(Id, BlobKind, Vec<u8>)>> {
        match self.ids.get(id) {
            Some((theirs, BlobKind::Tree)) => {
                let mut out = Vec::new();
                (self.tree(ours, back, have, theirs, &mut out)? == *id).then_some(out)
            }
            _ if self.same_ids
                && self
                    .other_index
                    .get(id)
                    .is_some_and(|l| l.kind == BlobKind::Tree) =>
            {
                let mut out = Vec::new();
                (self.tree(ours, back, have, id, &mut out)? == *id).then_some(out)
            }
            _ => self.data(ours, id).map(|d| vec![(*id, BlobKind::Data, d)]),
        }
    }
}
