//! Tree blobs: one directory's entries in a compact binary encoding. Names are raw bytes so
//! names that are not UTF-8 survive; each entry is length-prefixed so newer writers can append
//! fields that older readers skip.

use crate::error::Result;
use crate::format::codec::{Reader, put_bytes, put_i64, put_u8, put_u32, put_u64};
use crate::format::id::Id;

pub(crate) const TREE_VERSION: u8 = 1;

/// The shortest encoded entry with its length prefix: prefix (4), type and flags (2), a
/// one-byte name (4 + 1), the five 8-byte fields (40), the four u32 fields (16) and the shortest
/// tail, an empty chunk list or symlink target (4). Bounds the entry count against the bytes left,
/// so a corrupt count cannot reserve far more memory than the tree's own size.
const MIN_ENTRY_LEN: usize = 4 + 2 + 4 + 1 + 40 + 16 + 4;

const FLAG_UNIX: u8 = 1;
const FLAG_WINDOWS: u8 = 2;

/// Unix ownership and permission bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnixMeta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    File { chunks: Vec<Id> },
    Dir { subtree: Id },
    Symlink { target: Vec<u8> },
}

impl NodeKind {
    fn code(&self) -> u8 {
        match self {
            NodeKind::File { .. } => 1,
            NodeKind::Dir { .. } => 2,
            NodeKind::Symlink { .. } => 3,
        }
    }
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: Vec<u8>,
    pub kind: NodeKind,
    /// File length in bytes (0 for directories and symlinks).
    pub size: u64,
    /// Nanoseconds since the Unix epoch, UTC.
    pub mtime_ns: i64,
    /// Inode change time (Unix) in nanoseconds since the epoch, or 0.
    pub ctime_ns: i64,
    pub inode: u64,
    pub device: u64,
    pub unix: Option<UnixMeta>,
    /// Windows FILE_ATTRIBUTE_* bits.
    pub win_attrs: Option<u32>,
}

impl Node {
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, NodeKind::Dir { .. })
    }
}

/// A directory listing, entries sorted by name bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_u8(&mut out, TREE_VERSION);
        put_u32(&mut out, self.nodes.len() as u32);
        let mut entry = Vec::new();
        for n in &self.nodes {
            entry.clear();
            put_u8(&mut entry, n.kind.code());
            let flags = if n.unix.is_some() { FLAG_UNIX } else { 0 }
                | if n.win_attrs.is_some() {
                    FLAG_WINDOWS
                } else {
                    0
                };
            put_u8(&mut entry, flags);
            put_bytes(&mut entry, &n.name);
            put_u64(&mut entry, n.size);
            put_i64(&mut entry, n.mtime_ns);
            put_i64(&mut entry, n.ctime_ns);
            put_u64(&mut entry, n.inode);
            put_u64(&mut entry, n.device);
            let u = n.unix.unwrap_or_default();
            put_u32(&mut entry, u.mode);
            put_u32(&mut entry, u.uid);
            put_u32(&mut entry, u.gid);
            put_u32(&mut entry, n.win_attrs.unwrap_or(0));
            match &n.kind {
                NodeKind::File { chunks } => {
                    put_u32(&mut entry, chunks.len() as u32);
                    for c in chunks {
                        entry.extend_from_slice(&c.0);
                    }
                }
                NodeKind::Dir { subtree } => entry.extend_from_slice(&subtree.0),
                NodeKind::Symlink { target } => put_bytes(&mut entry, target),
            }
            put_bytes(&mut out, &entry);
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Tree> {
        let mut r = Reader::new(bytes, "tree");
        let v = r.u8()?;
        if v != TREE_VERSION {
            return Err(r.error(format!(
                "tree version {v} is not supported; upgrade sitevault"
            )));
        }
        let n = r.count(MIN_ENTRY_LEN)?;
        let mut nodes = Vec::with_capacity(n);
        let mut prev: Option<Vec<u8>> = None;
        for _ in 0..n {
            let mut e = Reader::new(r.bytes()?, "tree entry");
            let code = e.u8()?;
            let flags = e.u8()?;
            let name = e.bytes()?.to_vec();
            if !valid_name(&name) {
                return Err(e.error(format!(
                    "invalid entry name {:?}",
                    String::from_utf8_lossy(&name)
                )));
            }
            if prev.as_ref().is_some_and(|p| p >= &name) {
                return Err(e.error("entries not sorted by name or duplicated"));
            }
            let size = e.u64()?;
            let mtime_ns = e.i64()?;
            let ctime_ns = e.i64()?;
            let inode = e.u64()?;
            let device = e.u64()?;
            let u = UnixMeta {
                mode: e.u32()?,
                uid: e.u32()?,
                gid: e.u32()?,
            };
            let attrs = e.u32()?;
            let kind = match code {
                1 => {
                    let c = e.count(32)?;
                    NodeKind::File {
                        chunks: (0..c).map(|_| e.id()).collect::<Result<_>>()?,
                    }
                }
                2 => NodeKind::Dir { subtree: e.id()? },
                3 => NodeKind::Symlink {
                    target: e.bytes()?.to_vec(),
                },
                other => return Err(e.error(format!("unknown entry type {other}"))),
            };
            // Bytes left in `e` are fields from a newer minor revision: skipped on purpose.
            prev = Some(name.clone());
            nodes.push(Node {
                name,
                kind,
                size,
                mtime_ns,
                ctime_ns,
                inode,
                device,
                unix: (flags & FLAG_UNIX != 0).then_some(u),
                win_attrs: (flags & FLAG_WINDOWS != 0).then_some(attrs),
            });
        }
        if !r.is_empty() {
            return Err(r.error("trailing bytes"));
        }
        Ok(Tree { nodes })
    }
}

/// A name may not be empty, `.`, `..`, or contain `/` or NUL; anything else is kept as is.
pub(crate) fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_node() -> impl Strategy<Value = Node> {
        let name =
            proptest::collection::vec(1u8..=255, 1..40).prop_filter("valid", |n| valid_name(n));
        let kind = prop_oneof![
            proptest::collection::vec(any::<[u8; 32]>(), 0..5).prop_map(|v| NodeKind::File {
                chunks: v.into_iter().map(Id).collect()
            }),
            any::<[u8; 32]>().prop_map(|b| NodeKind::Dir { subtree: Id(b) }),
            proptest::collection::vec(any::<u8>(), 0..50)
                .prop_map(|t| NodeKind::Symlink { target: t }),
        ];
        (
            name,
            kind,
            any::<u64>(),
            any::<i64>(),
            any::<i64>(),
            any::<u64>(),
            any::<u64>(),
            proptest::option::of(any::<(u32, u32, u32)>()),
            proptest::option::of(any::<u32>()),
        )
            .prop_map(
                |(name, kind, size, mtime_ns, ctime_ns, inode, device, unix, win_attrs)| Node {
                    name,
                    kind,
                    size,
                    mtime_ns,
                    ctime_ns,
                    inode,
                    device,
                    unix: unix.map(|(mode, uid, gid)| UnixMeta { mode, uid, gid }),
                    win_attrs,
                },
            )
    }

    proptest! {
        #[test]
        fn tree_round_trips(nodes in proptest::collection::vec(arb_node(), 0..20)) {
            let mut nodes = nodes;
            nodes.sort_by(|a, b| a.name.cmp(&b.name));
            nodes.dedup_by(|a, b| a.name == b.name);
            let t = Tree { nodes };
            prop_assert_eq!(Tree::decode(&t.encode()).unwrap(), t);
        }

        #[test]
        fn truncated_trees_are_errors_not_panics(nodes in proptest::collection::vec(arb_node(), 1..5), cut in any::<prop::sample::Index>()) {
            let mut nodes = nodes;
            nodes.sort_by(|a, b| a.name.cmp(&b.name));
            nodes.dedup_by(|a, b| a.name == b.name);
            let bytes = Tree { nodes }.encode();
            let at = cut.index(bytes.len());
            prop_assert!(Tree::decode(&bytes[..at]).is_err());
        }
    }

    #[test]
    fn appended_entry_fields_are_skipped() {
        let node = Node {
            name: b"a".to_vec(),
            kind: NodeKind::Symlink {
                target: b"t".to_vec(),
            },
            size: 0,
            mtime_ns: 1,
            ctime_ns: 2,
            inode: 3,
            device: 4,
            unix: None,
            win_attrs: Some(0x21),
        };
        let t = Tree { nodes: vec![node] };
        let mut bytes = t.encode();
        // Grow the entry's length prefix by 3 and append 3 unknown bytes.
        let len = u32::from_le_bytes(bytes[5..9].try_into().unwrap()) + 3;
        bytes[5..9].copy_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&[9, 9, 9]);
        assert_eq!(Tree::decode(&bytes).unwrap(), t);
    }

    #[test]
    fn unsorted_or_bad_names_are_corrupt() {
        let mk = |n: &[u8]| Node {
            name: n.to_vec(),
            kind: NodeKind::Dir {
                subtree: Id::default(),
            },
            size: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            inode: 0,
            device: 0,
            unix: None,
            win_attrs: None,
        };
        assert!(
            Tree::decode(
                &Tree {
                    nodes: vec![mk(b"b"), mk(b"a")]
                }
                .encode()
            )
            .is_err()
        );
        assert!(
            Tree::decode(
                &Tree {
                    nodes: vec![mk(b"..")]
                }
                .encode()
            )
            .is_err()
        );
        assert!(
            Tree::decode(
                &Tree {
                    nodes: vec![mk(b"a/b")]
                }
                .encode()
            )
            .is_err()
        );
    }
}
