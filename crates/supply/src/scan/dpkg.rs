//! Debian's package database: `/var/lib/dpkg/status` (and distroless'
//! `/var/lib/dpkg/status.d/*`, one paragraph file per package) in
//! deb822 form, and the machine-readable copyright files (DEP-5,
//! <https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/>)
//! for licences.
use crate::{Ecosystem, Package};

/// deb822 paragraphs: field names with their (continued) values. A line
/// that is neither a field nor a continuation spoils its paragraph only.
fn paragraphs(text: &str) -> (Vec<Vec<(String, String)>>, usize) {
    let mut out = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    let mut bad = false;
    let mut spoiled = 0;
    let mut flush = |cur: &mut Vec<(String, String)>, bad: &mut bool| {
        if *bad {
            spoiled += 1;
        } else if !cur.is_empty() {
            out.push(std::mem::take(cur));
        }
        cur.clear();
        *bad = false;
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            flush(&mut cur, &mut bad);
        } else if line.starts_with(' ') || line.starts_with('\t') {
            match cur.last_mut() {
                Some((_, v)) => {
                    v.push('\n');
                    v.push_str(line.trim());
                }
                None => bad = true,
            }
        } else if let Some((k, v)) = line.split_once(':') {
            if k.is_empty() || k.contains(char::is_whitespace) {
                bad = true;
            } else {
                cur.push((k.to_string(), v.trim().to_string()));
            }
        } else {
            bad = true;
        }
    }
    flush(&mut cur, &mut bad);
    (out, spoiled)
}

fn field<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The installed packages of a dpkg status file at `location`, and notes
/// on what could not be parsed (parsed as far as it can be).
pub fn parse_status(data: &[u8], location: &str) -> (Vec<Package>, Vec<String>) {
    let text = String::from_utf8_lossy(data);
    let (paras, spoiled) = paragraphs(&text);
    let mut notes = Vec::new();
    if spoiled > 0 {
        notes.push(format!(
            "{location}: {spoiled} malformed paragraph(s) skipped (lines that are neither a field nor a continuation)"
        ));
    }
    let mut pkgs = Vec::new();
    let mut incomplete = 0;
    for p in paras {
        // "install ok installed"; a package removed but for its conffiles
        // ("deinstall ok config-files") is not installed.
        if let Some(status) = field(&p, "Status") {
            if status.split_whitespace().nth(2) != Some("installed") {
                continue;
            }
        }
        let (Some(name), Some(version)) = (field(&p, "Package"), field(&p, "Version")) else {
            incomplete += 1;
            continue;
        };
        if name.is_empty() || version.is_empty() {
            incomplete += 1;
            continue;
        }
        let mut pkg = Package::new(Ecosystem::Deb, name, version, location);
        pkg.arch = field(&p, "Architecture").map(str::to_string);
        // "Source: glibc (2.36-9)": the name, without a differing version.
        pkg.source = Some(
            field(&p, "Source")
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or(name)
                .to_string(),
        );
        pkgs.push(pkg);
    }
    if incomplete > 0 {
        notes.push(format!(
            "{location}: {incomplete} paragraph(s) without Package or Version skipped"
        ));
    }
    (pkgs, notes)
}

/// The licences a DEP-5 copyright file declares (the first line of each
/// `License:` field, in order, once each); none for a free-form file.
pub fn copyright_licenses(text: &str) -> Vec<String> {
    let (paras, _) = paragraphs(text);
    let Some(header) = paras.first() else {
        return Vec::new();
    };
    if !field(header, "Format").is_some_and(|f| f.contains("copyright-format")) {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for p in &paras {
        // Stand-alone licence paragraphs (License: only) give the text of
        // a licence named elsewhere; only Files and the header name them.
        if !std::ptr::eq(p, header) && field(p, "Files").is_none() {
            continue;
        }
        if let Some(l) = field(p, "License") {
            let short = l.lines().next().unwrap_or("").trim();
            if !short.is_empty() && !out.iter().any(|o| o == short) {
                out.push(short.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "\
Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
 Contains the standard libraries.
 .
 More text.

Package: bsdutils
Status: install ok installed
Architecture: amd64
Source: util-linux (2.38.1-5)
Version: 1:2.38.1-5+b1

Package: oldpkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1
";

    #[test]
    fn installed_packages_with_source_and_arch() {
        let (p, notes) = parse_status(STATUS.as_bytes(), "/var/lib/dpkg/status");
        assert!(notes.is_empty(), "{notes:?}");
        let names: Vec<_> = p
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("libc6", "2.36-9+deb12u4"),
                ("bsdutils", "1:2.38.1-5+b1"),
                ("tzdata", "2024a-0+deb12u1")
            ]
        );
        assert_eq!(p[0].source.as_deref(), Some("glibc"));
        assert_eq!(p[1].source.as_deref(), Some("util-linux"));
        assert_eq!(p[2].source.as_deref(), Some("tzdata"));
        assert_eq!(p[0].arch.as_deref(), Some("amd64"));
        assert_eq!(p[0].locations, ["/var/lib/dpkg/status"]);
    }

    #[test]
    fn a_corrupt_status_is_parsed_as_far_as_it_goes() {
        let mut data = STATUS
            .replace(
                "Package: bsdutils",
                "\u{0}\u{1}garbage line\nPackage: bsdutils",
            )
            .into_bytes();
        data.extend_from_slice(
            b"\n\nPackage: noversion\nStatus: install ok installed\n\n\xff\xfe\x00binary\n",
        );
        let (p, notes) = parse_status(&data, "/var/lib/dpkg/status");
        let names: Vec<_> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["libc6", "tzdata"]);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].contains("2 malformed paragraph(s) skipped"),
            "{notes:?}"
        );
        assert!(
            notes[1].contains("1 paragraph(s) without Package or Version"),
            "{notes:?}"
        );
    }

    #[test]
    fn dep5_licences_and_free_form_files() {
        let dep5 = "\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: zlib
Source: https://zlib.net

Files: *
Copyright: 1995-2013 Jean-loup Gailly and Mark Adler
License: Zlib

Files: contrib/*
Copyright: someone
License: GPL-2+ or Artistic
 This program is free software.

Files: debian/*
License: Zlib

License: Artistic
 The Artistic license text.
";
        assert_eq!(copyright_licenses(dep5), ["Zlib", "GPL-2+ or Artistic"]);
        assert!(
            copyright_licenses("This is free software, see /usr/share/common-licenses/GPL.\n")
                .is_empty()
        );
        assert!(copyright_licenses("").is_empty());
    }
}
