//! Which of a snapshot's entries a restore writes, and where each one goes.

use std::collections::HashSet;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::paths::{self, PathStyle};
use crate::vault::walk;

use super::{Destination, RestoreOptions};

/// One entry to restore, at its destination path.
pub(super) struct Item<'a> {
    pub(super) path: PathBuf,
    pub(super) entry: &'a walk::Entry,
    /// An ancestor directory of a selected entry, not selected itself: created, nothing more.
    pub(super) only_parent: bool,
}

/// The entries to restore, in snapshot order, and the ones this platform cannot place.
pub(super) struct Placed<'a> {
    pub(super) items: Vec<Item<'a>>,
    /// Entries whose name this platform cannot hold (a Linux name like `a:b` on Windows): each is
    /// reported with everything below it, and the rest is restored.
    pub(super) unplaceable: Vec<String>,
}

/// Which entries the filter selects; an error when a filter was given and selects nothing.
pub(super) fn select(
    entries: &[walk::Entry],
    style: PathStyle,
    opts: &RestoreOptions,
) -> Result<Vec<bool>> {
    let selected: Vec<bool> = entries
        .iter()
        .map(|e| opts.filter.selects(style, &e.comps()))
        .collect();
    if !opts.filter.is_empty() && !selected.iter().any(|s| *s) {
        return Err(Error::InvalidInput(format!(
            "nothing in the snapshot matches {}; run `sitevault ls` to see its paths",
            opts.filter.describe()
        )));
    }
    Ok(selected)
}

/// The selected entries and the parent directories they need, each with its destination path.
pub(super) fn place<'a>(
    entries: &'a [walk::Entry],
    selected: &[bool],
    style: PathStyle,
    dest: &Destination,
) -> Result<Placed<'a>> {
    // Parents of selected entries must exist for them to be written.
    let parents: HashSet<&[Vec<u8>]> = entries
        .iter()
        .zip(selected)
        .filter(|(_, s)| **s)
        .flat_map(|(e, _)| (1..e.components.len()).map(move |n| &e.components[..n]))
        .collect();
    let mut items: Vec<Item> = Vec::with_capacity(entries.len());
    let mut unplaceable: Vec<String> = Vec::new();
    let mut skipped: Vec<&[Vec<u8>]> = Vec::new();
    for (e, sel) in entries.iter().zip(selected) {
        let only_parent = !sel && e.node.is_dir() && parents.contains(e.components.as_slice());
        if !sel && !only_parent {
            continue;
        }
        if skipped.iter().any(|p| e.components.starts_with(p)) {
            continue;
        }
        let path = match dest {
            Destination::Target(dir) => paths::under_target(dir, style, &e.comps()),
            Destination::Original => paths::original(style, &e.comps()),
        };
        let path = match path {
            Ok(p) => p,
            Err(why @ Error::NameNotAllowed { .. }) => {
                unplaceable.push(unplaceable_message(e, style, &why));
                skipped.push(&e.components);
                continue;
            }
            Err(err) => return Err(err),
        };
        items.push(Item {
            path,
            entry: e,
            only_parent,
        });
    }
    Ok(Placed { items, unplaceable })
}

/// The error line for an entry whose name this platform cannot hold.
fn unplaceable_message(e: &walk::Entry, style: PathStyle, why: &Error) -> String {
    let shown = String::from_utf8_lossy(&style.join(&e.comps())).into_owned();
    let below = if e.node.is_dir() {
        " (and everything below it)"
    } else {
        ""
    };
    format!("{shown}{below}: {why}")
}
