//! Licence names as packages write them (`GPL-2+`, `Expat`, `MIT License`,
//! `GPL-2+ or Artistic`) turned into SPDX license expressions
//! (<https://spdx.github.io/spdx-spec/v2.3/SPDX-license-expressions/>)
//! where every part is a known SPDX identifier, so the documents name
//! licences validators know; anything else stays the package's own words
//! (SPDX: a `LicenseRef-`, CycloneDX: a licence `name`).

/// SPDX license identifiers this crate emits (each one on the SPDX list).
const IDS: &[&str] = &[
    "0BSD",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "Apache-1.1",
    "Apache-2.0",
    "Artistic-1.0",
    "Artistic-1.0-Perl",
    "Artistic-2.0",
    "BSD-1-Clause",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSD-4-Clause",
    "BSL-1.0",
    "bzip2-1.0.6",
    "CC-BY-3.0",
    "CC-BY-4.0",
    "CC-BY-SA-3.0",
    "CC-BY-SA-4.0",
    "CC0-1.0",
    "curl",
    "EPL-1.0",
    "EPL-2.0",
    "FTL",
    "GFDL-1.2-or-later",
    "GFDL-1.3-or-later",
    "GPL-1.0-only",
    "GPL-1.0-or-later",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "ISC",
    "LGPL-2.0-only",
    "LGPL-2.0-or-later",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "Libpng",
    "MIT",
    "MIT-0",
    "MPL-1.1",
    "MPL-2.0",
    "NCSA",
    "OFL-1.1",
    "OpenSSL",
    "PSF-2.0",
    "Python-2.0",
    "Ruby",
    "Sleepycat",
    "Unicode-DFS-2016",
    "Unlicense",
    "Vim",
    "W3C",
    "WTFPL",
    "X11",
    "Zlib",
    "ZPL-2.1",
];

/// SPDX license exceptions (after `WITH`).
const EXCEPTIONS: &[&str] = &[
    "Autoconf-exception-2.0",
    "Autoconf-exception-3.0",
    "Bison-exception-2.2",
    "Classpath-exception-2.0",
    "Font-exception-2.0",
    "GCC-exception-2.0",
    "GCC-exception-3.1",
    "LLVM-exception",
];

/// Other spellings: Debian's DEP-5 short names, deprecated SPDX ids,
/// Python's trove classifiers.
const ALIASES: &[(&str, &str)] = &[
    ("Expat", "MIT"),
    ("MIT License", "MIT"),
    ("GPL-1", "GPL-1.0-only"),
    ("GPL-1+", "GPL-1.0-or-later"),
    ("GPL-2", "GPL-2.0-only"),
    ("GPL-2+", "GPL-2.0-or-later"),
    ("GPL-2.0", "GPL-2.0-only"),
    ("GPL-2.0+", "GPL-2.0-or-later"),
    ("GPL-3", "GPL-3.0-only"),
    ("GPL-3+", "GPL-3.0-or-later"),
    ("GPL-3.0", "GPL-3.0-only"),
    ("GPL-3.0+", "GPL-3.0-or-later"),
    ("LGPL-2", "LGPL-2.0-only"),
    ("LGPL-2+", "LGPL-2.0-or-later"),
    ("LGPL-2.0", "LGPL-2.0-only"),
    ("LGPL-2.0+", "LGPL-2.0-or-later"),
    ("LGPL-2.1", "LGPL-2.1-only"),
    ("LGPL-2.1+", "LGPL-2.1-or-later"),
    ("LGPL-3", "LGPL-3.0-only"),
    ("LGPL-3+", "LGPL-3.0-or-later"),
    ("LGPL-3.0", "LGPL-3.0-only"),
    ("LGPL-3.0+", "LGPL-3.0-or-later"),
    ("AGPL-3", "AGPL-3.0-only"),
    ("AGPL-3+", "AGPL-3.0-or-later"),
    ("Apache-2", "Apache-2.0"),
    ("Apache 2.0", "Apache-2.0"),
    ("Apache License 2.0", "Apache-2.0"),
    ("Apache License, Version 2.0", "Apache-2.0"),
    ("Apache Software License", "Apache-2.0"),
    ("MPL-2", "MPL-2.0"),
    ("Mozilla Public License 2.0 (MPL 2.0)", "MPL-2.0"),
    ("ISC License (ISCL)", "ISC"),
    ("Python Software Foundation License", "PSF-2.0"),
    ("CC0", "CC0-1.0"),
    ("BSL", "BSL-1.0"),
];

/// The SPDX identifier `s` names (exactly, in another case or by alias).
pub fn spdx_id(s: &str) -> Option<&'static str> {
    let s = s.trim();
    IDS.iter()
        .find(|id| id.eq_ignore_ascii_case(s))
        .copied()
        .or_else(|| {
            ALIASES
                .iter()
                .find(|(a, _)| a.eq_ignore_ascii_case(s))
                .map(|(_, id)| *id)
        })
}

fn exception(s: &str) -> Option<&'static str> {
    EXCEPTIONS
        .iter()
        .find(|e| e.eq_ignore_ascii_case(s))
        .copied()
}

/// `s` as an SPDX license expression, if every part of it is known.
pub fn expression(s: &str) -> Option<String> {
    if let Some(id) = spdx_id(s) {
        return Some(id.to_string());
    }
    let spaced = s.replace('(', " ( ").replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut pos = 0;
    let e = parse_or(&tokens, &mut pos, 0)?;
    (pos == tokens.len()).then_some(e)
}

fn parse_or(t: &[&str], pos: &mut usize, depth: usize) -> Option<String> {
    let mut out = parse_and(t, pos, depth)?;
    while t.get(*pos).is_some_and(|w| w.eq_ignore_ascii_case("or")) {
        *pos += 1;
        out = format!("{out} OR {}", parse_and(t, pos, depth)?);
    }
    Some(out)
}

fn parse_and(t: &[&str], pos: &mut usize, depth: usize) -> Option<String> {
    let mut out = parse_term(t, pos, depth)?;
    while t.get(*pos).is_some_and(|w| w.eq_ignore_ascii_case("and")) {
        *pos += 1;
        out = format!("{out} AND {}", parse_term(t, pos, depth)?);
    }
    Some(out)
}

fn parse_term(t: &[&str], pos: &mut usize, depth: usize) -> Option<String> {
    if depth > 16 {
        return None;
    }
    let w = *t.get(*pos)?;
    *pos += 1;
    if w == "(" {
        let inner = parse_or(t, pos, depth + 1)?;
        if t.get(*pos) != Some(&")") {
            return None;
        }
        *pos += 1;
        return Some(format!("({inner})"));
    }
    let id = spdx_id(w)?;
    if t.get(*pos).is_some_and(|w| w.eq_ignore_ascii_case("with")) {
        let exc = exception(t.get(*pos + 1)?)?;
        *pos += 2;
        return Some(format!("{id} WITH {exc}"));
    }
    Some(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_spdx_expressions_when_known() {
        assert_eq!(expression("GPL-2+").as_deref(), Some("GPL-2.0-or-later"));
        assert_eq!(expression("Expat").as_deref(), Some("MIT"));
        assert_eq!(expression("mit").as_deref(), Some("MIT"));
        assert_eq!(expression("MIT License").as_deref(), Some("MIT"));
        assert_eq!(
            expression("GPL-2+ or LGPL-2.1+").as_deref(),
            Some("GPL-2.0-or-later OR LGPL-2.1-or-later")
        );
        assert_eq!(
            expression("(MIT OR Apache-2.0) AND Zlib").as_deref(),
            Some("(MIT OR Apache-2.0) AND Zlib")
        );
        assert_eq!(
            expression("GPL-3+ with GCC-exception-3.1").as_deref(),
            Some("GPL-3.0-or-later WITH GCC-exception-3.1")
        );
        assert_eq!(expression("public-domain"), None);
        assert_eq!(expression("GPL-2+ or Artistic"), None);
        assert_eq!(expression("(MIT"), None);
        assert_eq!(expression("MIT OR"), None);
        assert_eq!(expression(""), None);
        assert_eq!(expression(&"(".repeat(100)), None);
    }
}
