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

pub fn run() -> ExitCode {
    let cli = args::Cli::parse();
    match commands::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", output::one_line(&e));
            ExitCode::from(EXIT_ERROR)
        }
    }
}
