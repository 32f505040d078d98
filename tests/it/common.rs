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

/// Fill `dir` (made when missing) with `files` files `f00.bin`… of `len` random bytes each,
/// the content of file `i` fixed by `seed` and `i`.
pub fn random_files(dir: &Path, files: u64, seed: u64, len: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..files {
        let name = dir.join(format!("f{i:02}.bin"));
        std::fs::write(name, random_bytes(seed * 1_000 + i, len)).unwrap();
    }
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

/// A `sitevault` process started with `SITEVAULT_TEST_STOP_AFTER_WRITES=n`: it stops right after
/// its nth write to the vault and waits, so a test can kill it there or let it go on.
pub struct Paused {
    pub child: std::process::Child,
    /// The write it stopped after (`put data/..`), or `None` if it ended before write n.
    pub at: Option<String>,
    stderr: std::io::BufReader<std::process::ChildStderr>,
}

impl Paused {
    /// Start `args` (after `sitevault`) and wait until it stops or ends.
    pub fn start(args: &[&std::ffi::OsStr], n: u64) -> Paused {
        use std::io::BufRead;
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("sitevault"))
            .env_remove("SITEVAULT_REPOSITORY")
            .env_remove("SITEVAULT_PASSWORD_FILE")
            .env("SITEVAULT_PASSWORD", PASSWORD)
            .env("SITEVAULT_TEST_STOP_AFTER_WRITES", n.to_string())
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn sitevault");
        let mut stderr = std::io::BufReader::new(child.stderr.take().expect("piped stderr"));
        let mut at = None;
        let mut line = String::new();
        while stderr.read_line(&mut line).expect("read stderr") > 0 {
            if let Some(rest) = line.trim_end().strip_prefix("sitevault-test-stop: ") {
                // `write N: put data/..` → `put data/..`
                at = Some(rest.split_once(": ").map_or(rest, |(_, op)| op).to_string());
                break;
            }
            line.clear();
        }
        Paused { child, at, stderr }
    }

    /// SIGKILL it where it stands.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL sitevault");
        self.child.wait().expect("reap sitevault");
    }

    /// Let it go on; returns its exit code and the rest of its stderr.
    pub fn resume(mut self) -> (i32, String) {
        use std::io::{Read, Write};
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let mut rest = String::new();
        let _ = self.stderr.read_to_string(&mut rest);
        let status = self.child.wait().expect("wait for sitevault");
        (status.code().expect("exited normally"), rest)
    }
}

/// Copy a folder tree (a vault) so each crash scenario starts from the same state.
pub fn copy_tree(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.expect("walk");
        let dest = to.join(e.path().strip_prefix(from).expect("prefix"));
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

/// A running `sitevault` whose stderr lines arrive on a channel as they are printed.
pub struct Watched {
    pub child: std::process::Child,
    pub lines: std::sync::mpsc::Receiver<String>,
}

impl Watched {
    pub fn start(args: &[&std::ffi::OsStr]) -> Watched {
        use std::io::BufRead;
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("sitevault"))
            .env_remove("SITEVAULT_REPOSITORY")
            .env_remove("SITEVAULT_PASSWORD_FILE")
            .env("SITEVAULT_PASSWORD", PASSWORD)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn sitevault");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Watched { child, lines }
    }

    /// Wait (up to a minute) for a stderr line containing `text`; returns it.
    pub fn wait_for(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(text) => return l,
                Ok(l) => seen.push(l),
                Err(_) => break,
            }
        }
        panic!("sitevault never printed {text:?}; stderr so far: {seen:?}");
    }

    /// Wait for it to end; returns the exit code and stdout.
    pub fn finish(self) -> (i32, String) {
        let out = self.child.wait_with_output().expect("wait for sitevault");
        (
            out.status.code().expect("exited normally"),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

/// All pack files under `repo/data/` (`data/<2hex>/<64hex>`; spool files are not packs), sorted.
pub fn pack_files(repo: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(repo.join("data"))
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file() && e.file_name().len() == 64)
        .map(|e| e.into_path())
        .collect();
    v.sort();
    v
}
