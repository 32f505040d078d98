//! The exit codes batch files test.

pub const EXIT_OK: u8 = 0;
pub const EXIT_ERROR: u8 = 1;
pub const EXIT_INCOMPLETE: u8 = 3;
