//! Human and JSON rendering.

use std::io::Write;

pub fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

pub fn bytes(n: u64) -> String {
    sitevault::size::format_bytes(n)
}

/// Write raw path bytes (names need not be UTF-8) followed by a newline.
pub fn raw_line(out: &mut impl Write, b: &[u8]) -> std::io::Result<()> {
    out.write_all(b)?;
    out.write_all(b"\n")
}

pub fn json(v: &serde_json::Value) {
    line(format_args!(
        "{}",
        serde_json::to_string_pretty(v).expect("JSON value serialises")
    ));
}

/// One line on stdout. A closed pipe (`| head`) is not an error worth a message: the reader
/// has what it wanted, so write errors are ignored rather than panicking like `println!`.
pub fn line(args: std::fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(args).and_then(|_| out.write_all(b"\n"));
}

/// `println!` without the panic on a closed pipe.
macro_rules! outln {
    ($($t:tt)*) => { $crate::cli::output::line(format_args!($($t)*)) };
}
pub(crate) use outln;
