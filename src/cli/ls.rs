//! `ls`: list the files of a snapshot.

use std::io::Write;

use anyhow::Result;
use serde_json::json;
use sitevault::tree::NodeKind;

use super::args::*;
use super::context::*;
use super::exit::EXIT_OK;
use super::output::{self};

pub fn run(a: LsArgs) -> Result<u8> {
    let vault = open(&a.repo)?;
    let _lock = read_lock(&vault, &a.lock, "ls")?;
    let (_, snap) = find(&vault, &a.snapshot, &a.filter)?;
    let index = vault.load_index()?;
    let entries = sitevault::vault::walk::entries(&vault, &index, &snap.tree)?;
    if a.json {
        let arr: Vec<_> = entries
            .iter()
            .map(|e| {
                let path = snap.path_style.join(&e.comps());
                let kind = match &e.node.kind {
                    NodeKind::File { .. } => "file",
                    NodeKind::Dir { .. } => "dir",
                    NodeKind::Symlink { .. } => "symlink",
                };
                let mut v = json!({
                    "path": String::from_utf8_lossy(&path),
                    "type": kind,
                    "size": e.node.size,
                    "mtime_ns": e.node.mtime_ns,
                });
                if std::str::from_utf8(&path).is_err() {
                    v["path_hex"] = json!(hex::encode(&path));
                }
                if let Some(u) = e.node.unix {
                    v["mode"] = json!(u.mode);
                }
                v
            })
            .collect();
        output::json(&serde_json::Value::Array(arr));
        return Ok(EXIT_OK);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // A closed pipe (`ls | head`) ends the listing quietly.
    let written = entries
        .iter()
        .try_for_each(|e| output::raw_line(&mut out, &snap.path_style.join(&e.comps())))
        .and_then(|_| out.flush());
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    Ok(EXIT_OK)
}
