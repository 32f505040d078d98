//! The paths given to a backup, merged into one tree of their components.

use std::path::PathBuf;

use crate::error::Result;
use crate::paths::{self, PathStyle};

/// The paths given to `backup`, merged into one tree of their components.
#[derive(Default)]
pub(super) struct VDir {
    pub(super) children: Vec<(Vec<u8>, VNode)>,
}

pub(super) enum VNode {
    /// A path given by the user: archived whole.
    Given(PathBuf),
    /// A parent of given paths: only the given paths below it are archived.
    Parent(VDir),
}

impl VDir {
    /// The tree of the given absolute paths.
    pub(super) fn of_roots(style: PathStyle, roots: &[PathBuf]) -> Result<VDir> {
        let mut vroot = VDir::default();
        for r in roots {
            vroot.insert(style, &paths::components(r)?, r.clone());
        }
        Ok(vroot)
    }

    /// Add the path `comps` (given as `path`), unless a given path above it covers it.
    fn insert(&mut self, style: PathStyle, comps: &[Vec<u8>], path: PathBuf) {
        let Some((first, rest)) = comps.split_first() else {
            // The root itself was given (`/`): archive all of it.
            self.children.clear();
            self.children.push((Vec::new(), VNode::Given(path)));
            return;
        };
        if self
            .children
            .iter()
            .any(|(n, v)| n.is_empty() && matches!(v, VNode::Given(_)))
        {
            return;
        }
        let pos = self
            .children
            .iter()
            .position(|(n, _)| style.same_name(n, first));
        let i = match pos {
            Some(i) => i,
            None => {
                self.children
                    .push((first.clone(), VNode::Parent(VDir::default())));
                self.children.len() - 1
            }
        };
        let slot = &mut self.children[i].1;
        match slot {
            VNode::Given(_) => {} // an ancestor was given: it already covers this path
            VNode::Parent(_) if rest.is_empty() => *slot = VNode::Given(path),
            VNode::Parent(d) => d.insert(style, rest, path),
        }
    }
}
