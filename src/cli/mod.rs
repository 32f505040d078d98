//! Command-line front end: argument parsing, environment, printing and exit codes. The only
//! place (with `main.rs`) that talks to the user.

// Shared by the commands: arguments, opening a vault, printing.
mod args;
mod context;
mod exit;
mod failpoint;
mod output;
mod report;

// One file per command or small family; they never import each other.
mod afterbackup;
mod backup;
mod browse;
mod copy;
mod history;
mod init;
mod inspect;
mod ls;
mod maintain;
mod repair;
mod restore;
mod snapshots;

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Parser;

use args::{Cli, Command};

use exit::EXIT_ERROR;

/// Chunk and read buffers of several MiB are allocated and freed by many threads. glibc raises
/// its mmap threshold after the first such free and then keeps them in per-thread heaps: night 1
/// of 1.5 GiB peaked at 150-160 MiB RSS. Two heaps and a fixed 4 MiB threshold (big buffers
/// always mapped, so returned when freed): 80-88 MiB at the same speed (1 MiB: 77 MiB, 10% slower).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation policy; called before threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

pub fn run() -> ExitCode {
    tune_allocator();
    let cli = args::Cli::parse();
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", output::one_line(&e));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Refuse what cannot run, then hand the arguments to their command.
fn dispatch(cli: Cli) -> Result<u8> {
    // A vault read as of a past time is read-only: refuse the commands that write before they
    // take a lock or read anything.
    let writes = match &cli.command {
        Command::Init(a) => Some(("init", &a.repo)),
        Command::Backup(a) => Some(("backup", &a.repo)),
        Command::Forget(a) => Some(("forget", &a.repo)),
        Command::Prune(a) => Some(("prune", &a.repo)),
        Command::Unlock(a) => Some(("unlock", &a.repo)),
        Command::Repair(a) => Some(("repair", a.repo())),
        _ => None,
    };
    if let Some((name, repo)) = writes
        && repo.vault_as_of.is_some()
    {
        bail!(
            "{name} writes to the vault, so it cannot read it --vault-as-of a past time; restore or `copy --vault-as-of` from it instead"
        );
    }
    match cli.command {
        Command::Init(a) => init::run(a),
        Command::Backup(a) => backup::run(a),
        Command::Snapshots(a) => snapshots::run(a),
        Command::Ls(a) => ls::run(a),
        Command::Restore(a) => restore::run(a),
        Command::Forget(a) => maintain::forget(a),
        Command::Prune(a) => maintain::prune(a),
        Command::Unlock(a) => maintain::unlock(a),
        Command::Check(a) => inspect::check(a),
        Command::Stats(a) => inspect::stats(a),
        Command::Diff(a) => history::diff(a),
        Command::Find(a) => history::find(a),
        Command::Copy(a) => copy::copy(a),
        Command::Afterbackup(a) => afterbackup::afterbackup(a),
        Command::Mount(a) => browse::mount(a),
        Command::Serve(a) => browse::serve(a),
        Command::Repair(a) => repair::repair(a),
    }
}
