//! A tree node from a filesystem entry's metadata, as this platform has it.

use std::fs::Metadata;

use crate::format::tree::{Node, NodeKind};

/// What kind of special file (socket, FIFO, device) `meta` describes, for the warning.
pub(super) fn special_kind(meta: &Metadata) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let ft = meta.file_type();
        if ft.is_socket() {
            return "socket".into();
        }
        if ft.is_fifo() {
            return "FIFO".into();
        }
        if ft.is_block_device() || ft.is_char_device() {
            return "device".into();
        }
    }
    let _ = meta;
    "special file".into()
}

/// A node with the metadata this platform has; `meta` is `None` when the entry could not be
/// examined (a parent directory of a given path).
pub(super) fn base_node(name: Vec<u8>, kind: NodeKind, meta: Option<&Metadata>) -> Node {
    let mut n = Node {
        name,
        kind,
        size: 0,
        mtime_ns: 0,
        ctime_ns: 0,
        inode: 0,
        device: 0,
        unix: None,
        win_attrs: None,
    };
    let Some(m) = meta else { return n };
    n.size = m.len();
    #[cfg(unix)]
    {
        use crate::format::tree::UnixMeta;
        use std::os::unix::fs::MetadataExt;
        n.mtime_ns = m
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(m.mtime_nsec());
        n.ctime_ns = m
            .ctime()
            .saturating_mul(1_000_000_000)
            .saturating_add(m.ctime_nsec());
        n.inode = m.ino();
        n.device = m.dev();
        n.unix = Some(UnixMeta {
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
        });
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::MetadataExt;
        // FILETIME counts 100 ns ticks since 1601-01-01.
        const EPOCH_DIFF_TICKS: i64 = 116_444_736_000_000_000;
        n.mtime_ns = (m.last_write_time() as i64 - EPOCH_DIFF_TICKS).saturating_mul(100);
        n.win_attrs = Some(m.file_attributes());
    }
    n
}
