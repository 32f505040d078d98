//! Shared helpers for integration tests: a real `sitevault` binary, real temp folders.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub const PASSWORD: &str = "correct horse battery staple";

/// A `sitevault` command with a test password and no inherited vault settings.
pub fn sv() -> Command {
    let mut c = Command::cargo_bin("sitevault").expect("sitevault binary is built");
    c.env_remove("SITEVAULT_REPOSITORY")
        .env_remove("SITEVAULT_PASSWORD_FILE")
        .env("SITEVAULT_PASSWORD", PASSWORD);
    c
}

/// What one run of the binary printed.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run, and fail at once on a panic or a death by signal.
pub fn run(cmd: &mut Command) -> Out {
    let o = cmd.output().expect("sitevault runs");
    let out = Out {
        code: o
            .status
            .code()
            .expect("sitevault exited normally, not by a signal"),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    assert!(
        !out.stderr.contains("panicked"),
        "sitevault panicked:\n{}",
        out.stderr
    );
    out
}

/// Initialise an encrypted vault with cheap Argon2id parameters (tests run many commands).
pub fn init_vault(repo: &Path) {
    sv().args(["init", "--repo"])
        .arg(repo)
        .args(["--kdf-memory-kib", "1024", "--kdf-iterations", "1"])
        .assert()
        .success();
}

/// Same, with a small pack size so small data sets span several packs.
pub fn init_vault_with(repo: &Path, extra: &[&str]) {
    sv().args(["init", "--repo"])
        .arg(repo)
        .args(["--kdf-memory-kib", "1024", "--kdf-iterations", "1"])
        .args(extra)
        .assert()
        .success();
}

/// Total bytes of all files below `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Where `restore --target T` puts the original absolute path `p` (Unix): T + p without root.
pub fn restored_path(target: &Path, original: &Path) -> PathBuf {
    target.join(original.strip_prefix("/").expect("absolute path"))
}

/// Assert two trees hold the same entries, contents, symlink targets, modes and mtimes.
pub fn assert_trees_equal(a: &Path, b: &Path) {
    use std::os::unix::fs::MetadataExt;
    let list = |root: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = walkdir::WalkDir::new(root)
            .into_iter()
            .map(|e| {
                e.expect("walk")
                    .path()
                    .strip_prefix(root)
                    .expect("prefix")
                    .to_path_buf()
            })
            .collect();
        v.sort();
        v
    };
    let la = list(a);
    let lb = list(b);
    assert_eq!(
        la,
        lb,
        "entry lists differ between {} and {}",
        a.display(),
        b.display()
    );
    for rel in &la {
        let pa = a.join(rel);
        let pb = b.join(rel);
        let ma = std::fs::symlink_metadata(&pa).expect("stat a");
        let mb = std::fs::symlink_metadata(&pb).expect("stat b");
        assert_eq!(ma.file_type(), mb.file_type(), "type of {}", rel.display());
        if ma.file_type().is_symlink() {
            assert_eq!(
                std::fs::read_link(&pa).unwrap(),
                std::fs::read_link(&pb).unwrap(),
                "link {}",
                rel.display()
            );
            continue;
        }
        assert_eq!(ma.mode(), mb.mode(), "mode of {}", rel.display());
        if !rel.as_os_str().is_empty() {
            assert_eq!(
                (ma.mtime(), ma.mtime_nsec()),
                (mb.mtime(), mb.mtime_nsec()),
                "mtime of {}",
                rel.display()
            );
        }
        if ma.is_file() {
            assert!(
                std::fs::read(&pa).unwrap() == std::fs::read(&pb).unwrap(),
                "content of {}",
                rel.display()
            );
        }
    }
}
