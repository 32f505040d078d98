//! What the folder view shows: entries (the fixed folders, snapshots, nodes) and their attributes.

use std::sync::Arc;

use crate::format::id::Id;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, UnixMeta};

/// One recovery point as the view shows it.
#[derive(Debug)]
pub struct SnapInfo {
    pub id: Id,
    /// Its folder name under `ids/`: the short id, longer where two would clash.
    pub name: String,
    /// `YYYY-MM-DD` and `HHMM_<name>`: where it appears under `dates/`.
    pub day: String,
    pub day_name: String,
    pub snapshot: Snapshot,
}

/// One place in the view. Cheap to clone; a value stays valid after the view refreshes.
#[derive(Debug, Clone)]
pub enum Entry {
    Root,
    Ids,
    Dates,
    Day(String),
    /// `latest`: a symlink to `ids/<name>` in the mount, the same folder in WebDAV.
    Latest,
    /// A recovery point's top folder.
    Snap(Arc<SnapInfo>),
    /// A folder the layout adds (`UNC`, `UNC/server` of a Windows share).
    Folder {
        snap: Arc<SnapInfo>,
        children: Arc<Vec<(Vec<u8>, Entry)>>,
    },
    /// An archived file, folder or symlink.
    Node {
        snap: Arc<SnapInfo>,
        node: Arc<Node>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
}

/// What `stat` shows of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub kind: Kind,
    /// File length; a symlink's is its target's length.
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    /// As recorded; `None` for Windows entries and for the folders the layout adds.
    pub unix: Option<UnixMeta>,
    pub win_attrs: Option<u32>,
}

impl Entry {
    pub fn snapshot(&self) -> Option<&Arc<SnapInfo>> {
        match self {
            Entry::Snap(s) | Entry::Folder { snap: s, .. } | Entry::Node { snap: s, .. } => Some(s),
            _ => None,
        }
    }
}
