//! One integration-test binary (faster to link than one per file). Each module owns one area.

mod afterbackup;
mod browse;
mod campaign;
mod check;
mod cli_contract;
mod cloud;
mod common;
mod copy;
mod crash;
mod dedup;
mod diskfull;
mod errors;
mod faults;
mod forget;
mod fuzz;
mod history;
mod immutable;
mod kill;
mod prune;
mod repair;
mod restore_options;
mod roundtrip;
mod tamper;
mod vectors;
mod wine;
mod wine_cross;
