//! A fault-injecting store that wraps any store (to be written).
