//! Paths in the folder view: listing folders, looking names up, resolving a path to its entry.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::id::Id;
use crate::format::tree::NodeKind;
use crate::paths::PathStyle;

use super::{Attr, Browser, Entry, Kind, SnapInfo};

pub(super) fn not_a_folder(what: &str) -> Error {
    Error::InvalidInput(format!("{what} is not a folder"))
}

impl Browser {
    pub fn attr(&self, e: &Entry) -> Attr {
        let dir = |mtime_ns: i64| Attr {
            kind: Kind::Dir,
            size: 0,
            mtime_ns,
            ctime_ns: mtime_ns,
            unix: None,
            win_attrs: None,
        };
        let ns = |s: &SnapInfo| s.snapshot.time.as_nanosecond() as i64;
        match e {
            Entry::Root | Entry::Ids | Entry::Dates => {
                dir(self.current().layout.snaps.last().map_or(0, |s| ns(s)))
            }
            Entry::Day(d) => {
                let st = self.current();
                let newest = st
                    .layout
                    .days
                    .get(d)
                    .and_then(|m| m.values().map(|&i| ns(&st.layout.snaps[i])).max());
                dir(newest.unwrap_or(0))
            }
            Entry::Latest => {
                let st = self.current();
                let newest = st.layout.snaps.last();
                Attr {
                    kind: Kind::Symlink,
                    size: newest.map_or(0, |s| s.name.len() as u64 + 4),
                    ..dir(newest.map_or(0, |s| ns(s)))
                }
            }
            Entry::Snap(s) | Entry::Folder { snap: s, .. } => dir(ns(s)),
            Entry::Node { node, .. } => Attr {
                kind: match node.kind {
                    NodeKind::File { .. } => Kind::File,
                    NodeKind::Dir { .. } => Kind::Dir,
                    NodeKind::Symlink { .. } => Kind::Symlink,
                },
                size: match &node.kind {
                    NodeKind::Symlink { target } => target.len() as u64,
                    NodeKind::File { .. } => node.size,
                    NodeKind::Dir { .. } => 0,
                },
                mtime_ns: node.mtime_ns,
                ctime_ns: if node.ctime_ns != 0 {
                    node.ctime_ns
                } else {
                    node.mtime_ns
                },
                unix: node.unix,
                win_attrs: node.win_attrs,
            },
        }
    }

    /// The entries of a folder, in name order. `Err` for what is not a folder.
    pub fn list(&self, dir: &Entry) -> Result<Vec<(Vec<u8>, Entry)>> {
        Ok(match dir {
            Entry::Root => {
                let st = self.fresh();
                let mut v = vec![
                    (b"dates".to_vec(), Entry::Dates),
                    (b"ids".to_vec(), Entry::Ids),
                ];
                if !st.layout.snaps.is_empty() {
                    v.push((b"latest".to_vec(), Entry::Latest));
                }
                v
            }
            Entry::Ids => {
                let st = self.fresh();
                let mut v: Vec<_> = st
                    .layout
                    .snaps
                    .iter()
                    .map(|s| (s.name.clone().into_bytes(), Entry::Snap(Arc::clone(s))))
                    .collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v
            }
            Entry::Dates => self
                .fresh()
                .layout
                .days
                .keys()
                .map(|d| (d.clone().into_bytes(), Entry::Day(d.clone())))
                .collect(),
            Entry::Day(d) => {
                let st = self.fresh();
                st.layout.days.get(d).map_or_else(Vec::new, |m| {
                    m.iter()
                        .map(|(n, &i)| {
                            (
                                n.clone().into_bytes(),
                                Entry::Snap(Arc::clone(&st.layout.snaps[i])),
                            )
                        })
                        .collect()
                })
            }
            Entry::Latest => match self.latest() {
                Some(e) => return self.list(&e),
                None => return Err(not_a_folder("latest")),
            },
            Entry::Snap(s) => self.snap_root(s)?,
            Entry::Folder { children, .. } => children.as_ref().clone(),
            Entry::Node { snap, node } => match &node.kind {
                NodeKind::Dir { subtree } => self.entries_of(snap, subtree)?,
                _ => return Err(not_a_folder(&String::from_utf8_lossy(&node.name))),
            },
        })
    }

    /// One entry of a folder by name; `Ok(None)` when there is none. In Windows recovery
    /// points a name also matches without regard to case, as on Windows.
    pub fn lookup(&self, dir: &Entry, name: &[u8]) -> Result<Option<Entry>> {
        match dir {
            Entry::Node { snap, node } => {
                let NodeKind::Dir { subtree } = &node.kind else {
                    return Ok(None);
                };
                let t = self.tree(subtree)?;
                let nodes = &t.tree.nodes;
                let hit = match nodes.binary_search_by(|n| n.name.as_slice().cmp(name)) {
                    Ok(i) => Some(&nodes[i]),
                    Err(_) if snap.snapshot.path_style == PathStyle::Windows => nodes
                        .iter()
                        .find(|n| PathStyle::Windows.same_name(&n.name, name)),
                    Err(_) => None,
                };
                Ok(hit.map(|n| Entry::Node {
                    snap: Arc::clone(snap),
                    node: Arc::new(n.clone()),
                }))
            }
            Entry::Ids => {
                let st = self.fresh();
                let name = String::from_utf8_lossy(name);
                Ok(st
                    .layout
                    .by_name
                    .get(name.as_ref())
                    .map(|&i| Entry::Snap(Arc::clone(&st.layout.snaps[i]))))
            }
            Entry::Day(d) => {
                let st = self.fresh();
                let name = String::from_utf8_lossy(name);
                Ok(st
                    .layout
                    .days
                    .get(d)
                    .and_then(|m| m.get(name.as_ref()))
                    .map(|&i| Entry::Snap(Arc::clone(&st.layout.snaps[i]))))
            }
            _ => {
                let style = dir.snapshot().map(|s| s.snapshot.path_style);
                Ok(self.list(dir)?.into_iter().find_map(|(n, e)| {
                    let same = n == name
                        || style == Some(PathStyle::Windows)
                            && PathStyle::Windows.same_name(&n, name);
                    same.then_some(e)
                }))
            }
        }
    }

    /// The entry at a path of names below the root; `latest` is followed when it is crossed
    /// or named (WebDAV shows it as the folder itself).
    pub fn resolve(&self, names: &[&[u8]]) -> Result<Option<Entry>> {
        let mut e = Entry::Root;
        for n in names {
            if matches!(e, Entry::Latest) {
                e = match self.latest() {
                    Some(l) => l,
                    None => return Ok(None),
                };
            }
            match self.lookup(&e, n)? {
                Some(next) => e = next,
                None => return Ok(None),
            }
        }
        if matches!(e, Entry::Latest) {
            return Ok(self.latest());
        }
        Ok(Some(e))
    }

    /// The root tree's entries (the first components of the backed-up paths: `srv`, `E:`),
    /// as original paths are built from them.
    pub(crate) fn root_entries(&self, snap: &Arc<SnapInfo>) -> Result<Vec<(Vec<u8>, Entry)>> {
        self.entries_of(snap, &snap.snapshot.tree)
    }

    /// The nodes of tree `id` of `snap`, by name.
    pub(super) fn entries_of(
        &self,
        snap: &Arc<SnapInfo>,
        id: &Id,
    ) -> Result<Vec<(Vec<u8>, Entry)>> {
        Ok(self
            .tree(id)?
            .tree
            .nodes
            .iter()
            .map(|n| {
                (
                    n.name.clone(),
                    Entry::Node {
                        snap: Arc::clone(snap),
                        node: Arc::new(n.clone()),
                    },
                )
            })
            .collect())
    }

    /// The entry at root-tree components `comps` (see [`crate::paths::parse_original`]);
    /// `Ok(None)` when the recovery point has nothing there. Needs at least one component.
    pub(crate) fn at_path(&self, snap: &Arc<SnapInfo>, comps: &[Vec<u8>]) -> Result<Option<Entry>> {
        let Some((first, rest)) = comps.split_first() else {
            return Ok(None);
        };
        let style = snap.snapshot.path_style;
        let mut e = match self
            .root_entries(snap)?
            .into_iter()
            .find(|(n, _)| style.same_name(n, first))
        {
            Some((_, e)) => e,
            None => return Ok(None),
        };
        for name in rest {
            match self.lookup(&e, name)? {
                Some(next) => e = next,
                None => return Ok(None),
            }
        }
        Ok(Some(e))
    }
}
