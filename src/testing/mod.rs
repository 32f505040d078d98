//! Test tooling, not part of the product: a store that injects faults, for the fault campaign
//! in `tests/it/faults.rs`.

pub mod fault;
