//! Byte sizes as people write them: on the command line (`--pack-size`) and in storage options
//! (`multipart_threshold`).

/// A memory budget: a size, or `unlimited` (`None`).
pub fn parse_budget(s: &str) -> Result<Option<u64>, String> {
    if s.trim().eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    parse_size(s)
        .map(Some)
        .map_err(|e| format!("{e}, or unlimited"))
}

/// `123`, `64KiB`, `32MiB`, `1GiB` (also K/M/G and KB/MB/GB, all binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 32MiB"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("{s:?}: unknown size unit (use KiB, MiB or GiB)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// `512 B`, `1.5 MiB`: binary units, one decimal.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size(" 5 MiB "), Ok(5 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert!(parse_size("MiB").unwrap_err().contains("not a size"));
        assert!(
            parse_size("5 TB")
                .unwrap_err()
                .contains("unknown size unit")
        );
        assert!(
            parse_size("99999999999999G")
                .unwrap_err()
                .contains("too large")
        );
    }
}
