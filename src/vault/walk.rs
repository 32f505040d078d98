//! Depth-first walk of a snapshot's trees, in name order, yielding each entry with its path
//! components from the root. Shared by `ls` and `restore`.

use crate::error::Result;
use crate::format::id::Id;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::vault::Vault;
use crate::vault::index::Index;

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

/// Every tree reachable from some roots, each loaded once: snapshots share most of their
/// trees, so `check` and `stats` work per distinct tree, not per snapshot.
#[derive(Debug, Default)]
pub(crate) struct Reachable {
    pub trees: std::collections::HashMap<Id, Tree>,
}

/// Load every tree below `roots`, one level at a time, each level in parallel, and keep them.
/// Trees that cannot be read are left out, and so is everything below them.
pub(crate) fn reachable(
    vault: &Vault,
    index: &Index,
    roots: impl IntoIterator<Item = Id>,
) -> Reachable {
    let trees = std::sync::Mutex::new(std::collections::HashMap::new());
    visit_trees(vault, index, roots, &|id, t| {
        trees
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, t);
    });
    Reachable {
        trees: trees.into_inner().unwrap_or_else(|p| p.into_inner()),
    }
}

/// Call `visit` once for every distinct tree below `roots` (a level at a time, each level in
/// parallel) without keeping the trees: memory follows the number of distinct tree ids, not
/// what the trees hold, so prune need not hold a vault's metadata. Returns the trees that could
/// not be read; nothing below them is visited.
pub(crate) fn visit_trees(
    vault: &Vault,
    index: &Index,
    roots: impl IntoIterator<Item = Id>,
    visit: &(dyn Fn(Id, Tree) + Sync),
) -> std::collections::HashMap<Id, crate::error::Error> {
    use rayon::prelude::*;
    let mut failed = std::collections::HashMap::new();
    let mut seen: std::collections::HashSet<Id> = std::collections::HashSet::new();
    let mut frontier: Vec<Id> = roots.into_iter().filter(|r| seen.insert(*r)).collect();
    while !frontier.is_empty() {
        let loaded: Vec<(Id, Result<Vec<Id>>)> = frontier
            .par_iter()
            .map(|id| {
                let subtrees = vault.load_tree(index, id).map(|t| {
                    let subtrees: Vec<Id> = t
                        .nodes
                        .iter()
                        .filter_map(|n| match n.kind {
                            NodeKind::Dir { subtree } => Some(subtree),
                            _ => None,
                        })
                        .collect();
                    visit(*id, t);
                    subtrees
                });
                (*id, subtrees)
            })
            .collect();
        frontier = Vec::new();
        for (id, r) in loaded {
            match r {
                Ok(subtrees) => frontier.extend(subtrees.into_iter().filter(|s| seen.insert(*s))),
                Err(e) => {
                    failed.insert(id, e);
                }
            }
        }
    }
    failed
}
