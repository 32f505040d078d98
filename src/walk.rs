//! Depth-first walk of a snapshot's trees, in name order, yielding each entry with its path
//! components from the root. Shared by `ls` and `restore`.

use crate::error::Result;
use crate::id::Id;
use crate::index::Index;
use crate::tree::{Node, NodeKind};
use crate::vault::Vault;

/// One entry of a snapshot with its components from the root tree.
#[derive(Debug, Clone)]
pub struct Entry {
    pub components: Vec<Vec<u8>>,
    pub node: Node,
}

impl Entry {
    pub fn comps(&self) -> Vec<&[u8]> {
        self.components.iter().map(|c| c.as_slice()).collect()
    }
}

/// Every entry below `root`, parents before children.
pub fn entries(vault: &Vault, index: &Index, root: &Id) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    walk(vault, index, root, &mut Vec::new(), &mut |e| out.push(e))?;
    Ok(out)
}

fn walk(
    vault: &Vault,
    index: &Index,
    tree: &Id,
    prefix: &mut Vec<Vec<u8>>,
    f: &mut dyn FnMut(Entry),
) -> Result<()> {
    let t = vault.load_tree(index, tree)?;
    for node in t.nodes {
        prefix.push(node.name.clone());
        let sub = match &node.kind {
            NodeKind::Dir { subtree } => Some(*subtree),
            _ => None,
        };
        f(Entry {
            components: prefix.clone(),
            node,
        });
        if let Some(s) = sub {
            walk(vault, index, &s, prefix, f)?;
        }
        prefix.pop();
    }
    Ok(())
}
