//! One integration-test binary (faster to link than one per file). Each module owns one area.

mod common;
