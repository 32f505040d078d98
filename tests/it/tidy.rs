//! The layers kept (ARCHITECTURE.md): every `crate::…` path in `src/` names its own layer or one
//! below it, nothing in `format/` does I/O, and no command file in `cli/` imports another.

use std::fs;
use std::path::{Path, PathBuf};

/// Layers from the bottom up; a file may use its own layer and those with a lower rank.
/// The bottom files (`error`, `paths`, `size`, `pattern`) are ranked among themselves too.
/// `site` and `browse` share a rank: neither may use the other.
const LAYERS: [(&str, u32); 11] = [
    ("error", 0),
    ("paths", 1),
    ("size", 1),
    ("pattern", 2),
    ("format", 3),
    ("store", 4),
    ("vault", 5),
    ("ops", 6),
    ("site", 7),
    ("browse", 7),
    ("testing", 8),
];

/// Shared modules of `cli/`; every other file there is a command.
const CLI_SHARED: [&str; 7] = [
    "mod",
    "args",
    "context",
    "exit",
    "failpoint",
    "output",
    "report",
];

fn rank(layer: &str) -> Option<u32> {
    LAYERS.iter().find(|(n, _)| *n == layer).map(|&(_, r)| r)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).expect("src/ is readable") {
        let p = e.expect("a readable entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a line, without a `//` comment.
fn code(line: &str) -> &str {
    line.split("//").next().unwrap_or("")
}

/// The first path segment after each `prefix` in `text`, with its 1-based line: `crate::vault::lock`
/// gives "vault", and a group `crate::{error::Error, vault::Vault}` (even over several lines) gives
/// "error" and "vault", each with its own line. A prefix that continues a longer path (`super::`
/// in `super::super::x`) does not count.
fn segments(text: &str, prefix: &str) -> Vec<(usize, String)> {
    let code: String = text.lines().map(|l| format!("{}\n", code(l))).collect();
    let line_of = |i: usize| code[..i].matches('\n').count() + 1;
    let mut out = Vec::new();
    for (i, _) in code.match_indices(prefix) {
        if i > 0
            && matches!(code.as_bytes()[i - 1], b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b':')
        {
            continue;
        }
        let rest = &code[i + prefix.len()..];
        let at = i + prefix.len() + 1;
        // The line of a group entry: where its name starts.
        let entry_line =
            |from: usize, part: &str| line_of(at + from + (part.len() - part.trim_start().len()));
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut start = 0;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        let part = &group[start..j];
                        out.push((entry_line(start, part), first_segment(part)));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        let part = &group[start..j];
                        out.push((entry_line(start, part), first_segment(part)));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.push((line_of(i), first_segment(rest)));
        }
    }
    out.retain(|(_, s)| !s.is_empty());
    out
}

/// `vault` for " vault::lock::Lock"; empty when the path does not start with a name.
fn first_segment(path: &str) -> String {
    let path = path.trim_start();
    let end = path
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(path.len());
    path[..end].to_string()
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn library_breaks(root: &Path, file: &Path, text: &str, breaks: &mut Vec<String>) {
    let rel = file.strip_prefix(root).expect("under src/");
    let first = rel.iter().next().and_then(|c| c.to_str()).unwrap_or("");
    let own = first.trim_end_matches(".rs");
    if matches!(own, "lib" | "main" | "cli") {
        return;
    }
    let Some(own_rank) = rank(own) else {
        breaks.push(format!(
            "{}: in no layer (add it to ARCHITECTURE.md and this test)",
            rel.display()
        ));
        return;
    };
    for (n, used) in segments(text, "crate::") {
        let ok = used == own || rank(&used).is_some_and(|r| r < own_rank);
        if !ok {
            breaks.push(format!(
                "{}:{n}: `crate::{used}` from layer `{own}`: a file imports only its own layer and those below (ARCHITECTURE.md)",
                rel.display(),
            ));
        }
    }
    for (n, line) in text.lines().enumerate() {
        if own == "format" {
            for io in [
                "std::fs",
                "std::net",
                "std::process",
                "tokio::",
                "object_store",
            ] {
                if code(line).contains(io) {
                    breaks.push(format!(
                        "{}:{}: `{io}` in format/: nothing in format/ does I/O",
                        rel.display(),
                        n + 1
                    ));
                }
            }
        }
    }
}

/// The command a file of `cli/` belongs to (`cli/backup.rs` and `cli/afterbackup/log.rs` give
/// "backup" and "afterbackup"), or `None` for a shared module and files outside `cli/`.
fn cli_command(rel: &Path) -> Option<String> {
    let mut parts = rel.iter().filter_map(|c| c.to_str());
    if parts.next() != Some("cli") {
        return None;
    }
    let name = parts.next()?.trim_end_matches(".rs").to_string();
    (!CLI_SHARED.contains(&name.as_str())).then_some(name)
}

fn cli_breaks(root: &Path, file: &Path, text: &str, breaks: &mut Vec<String>) {
    let rel = file.strip_prefix(root).expect("under src/");
    let Some(me) = cli_command(rel) else {
        return;
    };
    // The `super::` chain that reaches cli/ itself: one from `cli/x.rs` or `cli/x/mod.rs`, two
    // from `cli/x/y.rs`. Shorter chains stay inside the command's own folder.
    let below_cli = rel.components().count() - 1 - usize::from(rel.ends_with("mod.rs"));
    let mut used: Vec<(usize, String)> = segments(text, "crate::cli::");
    used.extend(segments(text, &"super::".repeat(below_cli)));
    for (n, module) in used {
        let lower = module
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase());
        if lower && module != me && !CLI_SHARED.contains(&module.as_str()) {
            breaks.push(format!(
                "{}:{n}: `{module}`: a command imports the shared cli modules ({}), never another command",
                rel.display(),
                CLI_SHARED.join(", ")
            ));
        }
    }
}

#[test]
fn every_import_respects_the_layers() {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    let mut breaks = Vec::new();
    for f in &files {
        let text = fs::read_to_string(f).expect("a readable source file");
        library_breaks(&root, f, &text, &mut breaks);
        cli_breaks(&root, f, &text, &mut breaks);
    }
    assert!(
        files.len() > 50,
        "found only {} files under src/",
        files.len()
    );
    assert!(
        breaks.is_empty(),
        "layer rules broken:\n{}",
        breaks.join("\n")
    );
}

#[test]
fn the_rules_catch_an_upward_import_and_a_sibling_command() {
    let root = src();
    let mut breaks = Vec::new();
    let f = root.join("format/pack.rs");
    library_breaks(
        &root,
        &f,
        "use crate::vault::Vault;\nuse std::fs::File;",
        &mut breaks,
    );
    let c = root.join("cli/backup.rs");
    cli_breaks(
        &root,
        &c,
        "use super::restore::run;\nuse super::context::open;",
        &mut breaks,
    );
    let sub = root.join("cli/afterbackup/copies.rs");
    cli_breaks(
        &root,
        &sub,
        "use super::log::RunLog;\nuse crate::cli::{\n    context::lock,\n    maintain::forget,\n};\nuse super::super::{output, restore};",
        &mut breaks,
    );
    let sub_mod = root.join("cli/afterbackup/mod.rs");
    cli_breaks(
        &root,
        &sub_mod,
        "use super::args::AfterbackupArgs;\nuse super::copy::run;",
        &mut breaks,
    );
    library_breaks(
        &root,
        &root.join("store/cache.rs"),
        "use crate::{error::Error, ops::prune};",
        &mut breaks,
    );
    assert_eq!(breaks.len(), 7, "{breaks:#?}");
    assert!(
        breaks[0].contains("format/pack.rs:1: `crate::vault`"),
        "{}",
        breaks[0]
    );
    assert!(breaks[1].contains("`std::fs` in format/"), "{}", breaks[1]);
    assert!(
        breaks[2].contains("cli/backup.rs:1: `restore`"),
        "{}",
        breaks[2]
    );
    assert!(
        breaks[3].contains("cli/afterbackup/copies.rs:4: `maintain`"),
        "{}",
        breaks[3]
    );
    assert!(
        breaks[4].contains("cli/afterbackup/copies.rs:6: `restore`"),
        "{}",
        breaks[4]
    );
    assert!(
        breaks[5].contains("cli/afterbackup/mod.rs:2: `copy`"),
        "{}",
        breaks[5]
    );
    assert!(
        breaks[6].contains("store/cache.rs:1: `crate::ops` from layer `store`"),
        "{}",
        breaks[6]
    );
}
