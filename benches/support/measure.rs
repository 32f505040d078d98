//! Peak RSS, CPU and wall time of a child process (Linux), for the end-to-end and index benches.
//!
//! Linux counts the memory of the process that calls exec into the new program's ru_maxrss:
//! a tool started directly by a bench would report at least the bench's own peak RSS. So every
//! tool is started by a small launcher, this same executable run with [`MEASURE`] first, which
//! starts the tool, reaps it with wait4 and writes what it used to a file. A bench's `main`
//! hands such a run to [`child`] before doing anything else.

use std::fs;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};

/// First argument of a bench executable when it only runs a tool and reports its rusage.
pub const MEASURE: &str = "--e2e-measure";

/// `<bench> --e2e-measure <rusage-file> <program> <args>...`: run the program with this
/// process's stdio, write "<exit code> <peak RSS KiB> <CPU secs>" to the file, exit with the
/// program's code.
pub fn child(args: &[std::ffi::OsString]) -> ! {
    let result = (|| -> Result<i32> {
        let [out, program, rest @ ..] = args else {
            bail!("usage: <bench> {MEASURE} <rusage-file> <program> <args>...");
        };
        let child = Command::new(program).args(rest).spawn()?;
        let u = wait4(child.id())?;
        fs::write(out, format!("{} {} {}", u.code, u.rss_kib, u.cpu_secs))?;
        Ok(u.code)
    })();
    match result {
        Ok(code) => std::process::exit(code.clamp(0, 255)),
        Err(e) => {
            eprintln!("{MEASURE}: {e:#}");
            std::process::exit(125)
        }
    }
}

/// What one measured run used, and what it printed on stdout.
pub struct Measured {
    pub secs: f64,
    pub cpu_secs: f64,
    pub rss_kib: u64,
    pub stdout: String,
}

/// Run `cmd` to completion through the launcher; fails when it fails.
pub fn run(cmd: Command) -> Result<Measured> {
    let desc = format!("{cmd:?}");
    let rusage = tempfile::NamedTempFile::new()?;
    let mut launcher = Command::new(std::env::current_exe()?);
    launcher.arg(MEASURE).arg(rusage.path());
    launcher.arg(cmd.get_program()).args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        launcher.current_dir(dir);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => launcher.env(k, v),
            None => launcher.env_remove(k),
        };
    }
    launcher
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = launcher
        .spawn()
        .with_context(|| format!("cannot start {desc}"))?;
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().context("stdout")?));
    let err = drain(Box::new(child.stderr.take().context("stderr")?));
    let status = child.wait()?;
    let secs = start.elapsed().as_secs_f64();
    let (Ok(stdout), Ok(err)) = (out.join(), err.join()) else {
        bail!("{desc}: a pipe reader panicked");
    };
    if !status.success() {
        bail!("{desc} failed ({status}): {}", err.trim());
    }
    let measured = fs::read_to_string(rusage.path())?;
    let field = |i| {
        measured
            .split_whitespace()
            .nth(i)
            .and_then(|v| v.parse().ok())
    };
    let (Some(rss_kib), Some(cpu_secs)) = (field(1).map(|v: f64| v as u64), field(2)) else {
        bail!("no rusage from {desc}: {measured:?}");
    };
    Ok(Measured {
        secs,
        cpu_secs,
        rss_kib,
        stdout,
    })
}

/// What wait4 tells of a child that ended.
struct Usage {
    /// Exit code, or 128 + the signal that killed it.
    code: i32,
    rss_kib: u64,
    /// User + system CPU time.
    cpu_secs: f64,
}

/// Reap `pid` and return its [`Usage`].
fn wait4(pid: u32) -> Result<Usage> {
    let mut status = 0;
    // SAFETY: rusage is plain old data; wait4 fills both out-parameters for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut ru) };
        if r == pid as libc::pid_t {
            break;
        }
        let e = std::io::Error::last_os_error();
        ensure!(e.kind() == std::io::ErrorKind::Interrupted, "wait4: {e}");
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Usage {
        code,
        rss_kib: ru.ru_maxrss as u64,
        cpu_secs: secs(ru.ru_utime) + secs(ru.ru_stime),
    })
}
