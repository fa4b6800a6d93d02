use crate::ParseError;

/// Parses a byte size as Docker's `--memory`/`--shm-size` do: a decimal
/// number with an optional unit `b`, `k`, `m`, `g` (binary multiples,
/// case-insensitive, optional trailing `b` as in `512mb`).
pub fn parse_bytes(input: &str) -> Result<u64, ParseError> {
    let err = || ParseError::Size(input.to_string());
    let s = input.trim().to_ascii_lowercase();
    let s = s
        .strip_suffix('b')
        .filter(|r| r.ends_with(['k', 'm', 'g', 't']))
        .unwrap_or(&s);
    let (num, mult) = match s.as_bytes().last() {
        Some(b'b') => (&s[..s.len() - 1], 1u64),
        Some(b'k') => (&s[..s.len() - 1], 1 << 10),
        Some(b'm') => (&s[..s.len() - 1], 1 << 20),
        Some(b'g') => (&s[..s.len() - 1], 1 << 30),
        Some(b't') => (&s[..s.len() - 1], 1 << 40),
        Some(_) => (s, 1),
        None => return Err(err()),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(err());
    }
    let value: f64 = num.parse().map_err(|_| err())?;
    let bytes = value * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(err());
    }
    Ok(bytes as u64)
}

/// docker's `units.RAMInBytes`: `^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$`,
/// binary multiples; `None` where docker says the size is invalid.
pub fn ram_in_bytes(s: &str) -> Option<u64> {
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(num_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.contains("..") {
        return None;
    }
    let value: f64 = num.parse().ok()?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let mut rest = unit.as_str();
    let mult: u64 = match rest.chars().next() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            rest = &rest[1..];
            1u64 << (10 * ("kmgtp".find(c)? as u32 + 1))
        }
        _ => 1,
    };
    let rest = rest.strip_prefix('i').unwrap_or(rest);
    let rest = rest.strip_prefix('b').unwrap_or(rest);
    if !rest.is_empty() {
        return None;
    }
    let bytes = value * mult as f64;
    (bytes.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// Formats a size the way `docker images` does (decimal units: `4.26MB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    // Docker prints up to 4 significant digits: 4.26MB, 12.9MB, 123MB.
    let s = format!("{v:.4}");
    let digits: String = {
        let mut out = String::new();
        let mut sig = 0;
        let mut seen_nonzero = false;
        for c in s.chars() {
            if c == '.' {
                if sig >= 3 {
                    break;
                }
                out.push(c);
                continue;
            }
            if c != '0' || seen_nonzero {
                seen_nonzero = true;
                sig += 1;
            }
            out.push(c);
            if sig >= 3 && out.contains('.') {
                break;
            }
        }
        out
    };
    let trimmed = if digits.contains('.') {
        digits
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        digits
    };
    format!("{trimmed}{}", UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_sizes() {
        assert_eq!(parse_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("512MB").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("100").unwrap(), 100);
        assert_eq!(parse_bytes("4k").unwrap(), 4096);
        assert_eq!(parse_bytes("1.5k").unwrap(), 1536);
        for bad in ["", "m", "-1m", "12x", "1..2m", "abc"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(12_900_000), "12.9MB");
        assert_eq!(human_size(123_000_000), "123MB");
    }
}
