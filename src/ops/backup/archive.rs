//! Turning filesystem entries into tree nodes: the walk of the given paths and their folders,
//! the parent snapshot's unchanged files reused, and files read with retries while in use.

use std::fs::{File, Metadata};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::error::Result;
use crate::format::chunker::Policy;
use crate::format::pack::BlobKind;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::paths::{self, PathStyle};

use super::chunking::ChunkError;
use super::node::{base_node, special_kind};
use super::vtree::{VDir, VNode};
use super::{Session, Warning};

/// Waits before each new attempt at a file that is in use or locked.
const LOCK_RETRIES: [Duration; 3] = [
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(3),
];

/// Whether an I/O error says "in use, try later" rather than "cannot ever be read".
fn is_transient(e: &std::io::Error) -> bool {
    match e.raw_os_error() {
        // ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION.
        Some(32 | 33) if cfg!(windows) => true,
        // EAGAIN, EBUSY, ETXTBSY.
        Some(11 | 16 | 26) if cfg!(unix) => true,
        _ => e.kind() == std::io::ErrorKind::WouldBlock,
    }
}

/// The entry called `name` in a parent snapshot's tree.
fn find<'t>(tree: Option<&'t Tree>, name: &[u8]) -> Option<&'t Node> {
    let nodes = &tree?.nodes;
    nodes
        .binary_search_by(|n| n.name.as_slice().cmp(name))
        .ok()
        .map(|i| &nodes[i])
}

impl Session<'_> {
    /// Tell the observer about `w` and keep it for the result.
    fn warn(&self, w: Warning) {
        self.observer.warning(&w);
        self.warnings.lock().expect("warnings lock").push(w);
    }

    /// The parent snapshot's tree for a directory entry, when there is one and it can be read.
    fn subtree(&self, parent: Option<&Node>) -> Option<Tree> {
        match &parent?.kind {
            NodeKind::Dir { subtree } if self.reuse => {
                self.vault.load_tree(self.index, subtree).ok()
            }
            _ => None,
        }
    }

    /// The parent snapshot's node for a file whose size, mtime and (on Unix) ctime, inode and
    /// device are unchanged, with this run's metadata: its chunks are reused without reading.
    fn unchanged(&self, parent: Option<&Node>, name: &[u8], meta: &Metadata) -> Option<Node> {
        let prev = parent.filter(|_| self.reuse)?;
        let NodeKind::File { chunks } = &prev.kind else {
            return None;
        };
        // Database files are updated in place, and on Windows a file's last-write time can
        // stay put while that happens (no ctime or inode to catch it): always read them.
        if matches!(self.vault.chunker().policy_for(name), Policy::Fixed(_)) {
            return None;
        }
        let now = base_node(
            name.to_vec(),
            NodeKind::File {
                chunks: chunks.clone(),
            },
            Some(meta),
        );
        let same = now.size == prev.size
            && now.mtime_ns == prev.mtime_ns
            && now.ctime_ns == prev.ctime_ns
            && now.inode == prev.inode
            && now.device == prev.device
            && chunks.iter().all(|c| self.index.contains(c));
        same.then_some(now)
    }

    /// Build the tree for a level of the virtual tree of given paths.
    pub(super) fn archive_virtual(
        &self,
        dir: &VDir,
        local: &Path,
        parent: Option<&Tree>,
    ) -> Result<Tree> {
        if let [(name, VNode::Given(p))] = dir.children.as_slice()
            && name.is_empty()
        {
            return Ok(self.read_dir_tree(p, parent.cloned())?.unwrap_or_default());
        }
        let nodes: Vec<Option<Node>> = dir
            .children
            .par_iter()
            .map(|(name, v)| match v {
                VNode::Given(p) => self.archive_entry(p, name.clone(), find(parent, name)),
                VNode::Parent(d) => {
                    let path = if local.as_os_str().is_empty() {
                        // Top-level component: a drive (`C:`) needs its root, `/x` needs `/`.
                        let mut p = PathBuf::from(paths::local_name(name)?);
                        if PathStyle::native() == PathStyle::Windows {
                            p.push("\\");
                        } else {
                            p = Path::new("/").join(p);
                        }
                        p
                    } else {
                        local.join(paths::local_name(name)?)
                    };
                    let sub_parent = self.subtree(find(parent, name));
                    let sub = self.archive_virtual(d, &path, sub_parent.as_ref())?;
                    let meta = std::fs::metadata(&path).ok();
                    let subtree = self.packer.add_blob(BlobKind::Tree, &sub.encode())?;
                    self.n.dirs.fetch_add(1, Ordering::Relaxed);
                    let mut node =
                        base_node(name.clone(), NodeKind::Dir { subtree }, meta.as_ref());
                    node.size = 0;
                    Ok(Some(node))
                }
            })
            .collect::<Result<_>>()?;
        let mut nodes: Vec<Node> = nodes.into_iter().flatten().collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Tree { nodes })
    }

    /// Archive one filesystem entry; `None` when it is left out (a warning says why).
    fn archive_entry(
        &self,
        path: &Path,
        name: Vec<u8>,
        parent: Option<&Node>,
    ) -> Result<Option<Node>> {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => {
                self.warn(Warning::Unreadable {
                    path: path.to_path_buf(),
                    error: e.to_string(),
                });
                return Ok(None);
            }
        };
        let ft = meta.file_type();
        if ft.is_file() {
            if let Some(node) = self.unchanged(parent, &name, &meta) {
                self.n.files.fetch_add(1, Ordering::Relaxed);
                self.n.unchanged.fetch_add(1, Ordering::Relaxed);
                self.observer.bytes_done(node.size);
                self.observer.file_done(path, node.size);
                return Ok(Some(node));
            }
            self.archive_file(path, name, &meta)
        } else if ft.is_dir() {
            let Some(tree) = self.read_dir_tree(path, self.subtree(parent))? else {
                return Ok(None);
            };
            let subtree = self.packer.add_blob(BlobKind::Tree, &tree.encode())?;
            self.n.dirs.fetch_add(1, Ordering::Relaxed);
            let mut node = base_node(name, NodeKind::Dir { subtree }, Some(&meta));
            node.size = 0;
            Ok(Some(node))
        } else if ft.is_symlink() {
            match std::fs::read_link(path) {
                Ok(t) => {
                    self.n.symlinks.fetch_add(1, Ordering::Relaxed);
                    let target = t.as_os_str().as_encoded_bytes().to_vec();
                    let mut node = base_node(name, NodeKind::Symlink { target }, Some(&meta));
                    node.size = 0;
                    Ok(Some(node))
                }
                Err(e) => {
                    self.warn(Warning::Unreadable {
                        path: path.to_path_buf(),
                        error: e.to_string(),
                    });
                    Ok(None)
                }
            }
        } else {
            self.warn(Warning::Skipped {
                path: path.to_path_buf(),
                kind: special_kind(&meta),
            });
            Ok(None)
        }
    }

    /// The tree of a directory's entries, or `None` when it cannot be listed.
    fn read_dir_tree(&self, path: &Path, parent: Option<Tree>) -> Result<Option<Tree>> {
        let listing =
            std::fs::read_dir(path).and_then(|rd| rd.collect::<std::io::Result<Vec<_>>>());
        let mut entries: Vec<(Vec<u8>, PathBuf)> = match listing {
            Ok(v) => v
                .into_iter()
                .map(|e| (e.file_name().as_encoded_bytes().to_vec(), e.path()))
                .collect(),
            Err(e) => {
                self.warn(Warning::Unreadable {
                    path: path.to_path_buf(),
                    error: e.to_string(),
                });
                return Ok(None);
            }
        };
        entries.sort();
        let nodes: Vec<Option<Node>> = entries
            .into_par_iter()
            .map(|(name, p)| {
                let prev = find(parent.as_ref(), &name);
                self.archive_entry(&p, name, prev)
            })
            .collect::<Result<_>>()?;
        Ok(Some(Tree {
            nodes: nodes.into_iter().flatten().collect(),
        }))
    }

    /// Read and chunk a file, retrying while it is in use; `None` when it cannot be read.
    fn archive_file(&self, path: &Path, name: Vec<u8>, meta: &Metadata) -> Result<Option<Node>> {
        let started = Instant::now();
        let unreadable = |e: std::io::Error, tries: usize| {
            let error = match tries {
                1 => e.to_string(),
                n => format!(
                    "{e} (still so after {n} tries over {:.1} s)",
                    started.elapsed().as_secs_f64()
                ),
            };
            self.warn(Warning::Unreadable {
                path: path.to_path_buf(),
                error,
            });
            Ok(None)
        };
        let policy = self.vault.chunker().policy_for(&name);
        // A file another process holds open or locked (a database being detached, a log
        // being rotated) is tried again a few times before it is given up as unreadable.
        let mut attempt = 0;
        let chunks = loop {
            let r = File::open(path)
                .map_err(ChunkError::Io)
                .and_then(|file| self.chunk_file(file, policy, meta.len()));
            match r {
                Ok(c) => break c,
                Err(ChunkError::Io(e)) if is_transient(&e) && attempt < LOCK_RETRIES.len() => {
                    std::thread::sleep(LOCK_RETRIES[attempt]);
                    attempt += 1;
                }
                Err(ChunkError::Io(e)) => return unreadable(e, attempt + 1),
                Err(ChunkError::Vault(e)) => return Err(e),
            }
        };
        let (ids, size) = chunks;
        self.n.files.fetch_add(1, Ordering::Relaxed);
        self.n.bytes_read.fetch_add(size, Ordering::Relaxed);
        let after = std::fs::symlink_metadata(path).ok();
        if after.is_none_or(|a| a.len() != meta.len() || a.modified().ok() != meta.modified().ok())
            || size != meta.len()
        {
            self.warn(Warning::Changed {
                path: path.to_path_buf(),
            });
        }
        self.observer.file_done(path, size);
        let mut node = base_node(name, NodeKind::File { chunks: ids }, Some(meta));
        node.size = size;
        Ok(Some(node))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn in_use_errors_are_retried_and_others_are_not() {
        use std::io::{Error, ErrorKind};
        assert!(!super::is_transient(&Error::from(
            ErrorKind::PermissionDenied
        )));
        assert!(!super::is_transient(&Error::from(ErrorKind::NotFound)));
        assert!(super::is_transient(&Error::from(ErrorKind::WouldBlock)));
        #[cfg(unix)]
        assert!(super::is_transient(&Error::from_raw_os_error(16)));
        #[cfg(windows)]
        assert!(super::is_transient(&Error::from_raw_os_error(32)));
    }
}
