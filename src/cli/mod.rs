//! Command-line front end: argument parsing, environment, printing and exit codes. The only
//! place (with `main.rs`) that talks to the user.

mod afterbackup;
mod args;
mod browse;
mod commands;
mod copy;
mod failpoint;
mod history;
mod inspect;
mod maintain;
mod output;
mod repair;

use std::process::ExitCode;

use clap::Parser;

/// Exit codes that batch files test.
pub const EXIT_OK: u8 = 0;
pub const EXIT_ERROR: u8 = 1;
pub const EXIT_INCOMPLETE: u8 = 3;

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
    match commands::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", output::one_line(&e));
            ExitCode::from(EXIT_ERROR)
        }
    }
}
