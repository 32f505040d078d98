//! What commands do to a vault: each file (or folder) is one operation over an open
//! [`crate::vault::Vault`]. Only `prune`, `forget` and `repair` delete snapshots, packs and index
//! files, in the orders of formats/ §12.

pub mod backup;
pub mod check;
pub mod copy;
pub mod forget;
pub mod history;
pub mod immutable;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod retention;
pub mod stats;
