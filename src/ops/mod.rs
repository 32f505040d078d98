//! What commands do to a vault: each file is one operation over an open [`crate::vault::Vault`].
//! Only `prune` and `forget` delete objects, in the order of formats/ §12.

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
