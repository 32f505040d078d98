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

/// The first path segment after each `prefix` on the line (`crate::vault::lock` gives "vault").
fn segments<'a>(line: &'a str, prefix: &str) -> Vec<&'a str> {
    line.match_indices(prefix)
        .filter(|(i, _)| *i == 0 || !line.as_bytes()[i - 1].is_ascii_alphanumeric())
        .map(|(i, _)| {
            let rest = &line[i + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
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
    for (n, line) in text.lines().enumerate() {
        for used in segments(code(line), "crate::") {
            let ok = used == own || rank(used).is_some_and(|r| r < own_rank);
            if !ok {
                breaks.push(format!(
                    "{}:{}: `crate::{used}` from layer `{own}`: a file imports only its own layer and those below (ARCHITECTURE.md)",
                    rel.display(),
                    n + 1
                ));
            }
        }
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

fn cli_breaks(root: &Path, file: &Path, text: &str, breaks: &mut Vec<String>) {
    let rel = file.strip_prefix(root).expect("under src/");
    if rel.parent() != Some(Path::new("cli")) {
        return;
    }
    let me = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if CLI_SHARED.contains(&me) {
        return;
    }
    for (n, line) in text.lines().enumerate() {
        for used in segments(code(line), "super::") {
            if !used.is_empty()
                && used.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && !CLI_SHARED.contains(&used)
            {
                breaks.push(format!(
                    "{}:{}: `super::{used}`: a command file imports the shared cli modules ({}), never another command",
                    rel.display(),
                    n + 1,
                    CLI_SHARED.join(", ")
                ));
            }
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
    assert_eq!(breaks.len(), 3, "{breaks:#?}");
    assert!(
        breaks[0].contains("format/pack.rs:1: `crate::vault`"),
        "{}",
        breaks[0]
    );
    assert!(breaks[1].contains("`std::fs` in format/"), "{}", breaks[1]);
    assert!(
        breaks[2].contains("cli/backup.rs:1: `super::restore`"),
        "{}",
        breaks[2]
    );
}
