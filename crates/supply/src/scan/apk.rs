//! Alpine's package database, `/lib/apk/db/installed`: one paragraph per
//! package, lines `X:value` (P name, V version, A arch, L licence, o
//! origin), <https://wiki.alpinelinux.org/wiki/Apk_spec>.
use crate::{Ecosystem, Package};

/// The packages of an apk `installed` file at `location`.
pub fn parse_installed(data: &[u8], location: &str) -> (Vec<Package>, Vec<String>) {
    let text = String::from_utf8_lossy(data);
    let mut pkgs = Vec::new();
    let mut incomplete = 0;
    let mut flush = |fields: &mut Vec<(char, String)>| {
        if fields.is_empty() {
            return;
        }
        let get = |k: char| fields.iter().find(|(c, _)| *c == k).map(|(_, v)| v.clone());
        match (get('P'), get('V')) {
            (Some(n), Some(v)) if !n.is_empty() && !v.is_empty() => {
                let mut p = Package::new(Ecosystem::Apk, &n, &v, location);
                p.arch = get('A');
                p.source = get('o');
                if let Some(l) = get('L').filter(|l| !l.is_empty()) {
                    p.licenses = vec![l];
                }
                pkgs.push(p);
            }
            _ => incomplete += 1,
        }
        fields.clear();
    };
    let mut fields: Vec<(char, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            flush(&mut fields);
            continue;
        }
        let mut chars = line.chars();
        if let (Some(k), Some(':')) = (chars.next(), chars.next()) {
            // Files (R:, F:, Z:…) are many; only the header fields matter.
            if matches!(k, 'P' | 'V' | 'A' | 'L' | 'o') {
                fields.push((k, chars.as_str().to_string()));
            }
        }
    }
    flush(&mut fields);
    let notes = if incomplete > 0 {
        vec![format!(
            "{location}: {incomplete} entr(ies) without P: or V: skipped"
        )]
    } else {
        Vec::new()
    };
    (pkgs, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_with_licence_and_origin() {
        let db = "C:Q1abc=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nS:383152\nT:the musl c library\nL:MIT\no:musl\nF:lib\nR:libc.musl-x86_64.so.1\n\nP:busybox-binsh\nV:1.36.1-r15\nA:x86_64\nL:GPL-2.0-only\no:busybox\n\nP:broken\n";
        let (p, notes) = parse_installed(db.as_bytes(), "/lib/apk/db/installed");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "musl");
        assert_eq!(p[0].version, "1.2.4_git20230717-r4");
        assert_eq!(p[0].arch.as_deref(), Some("x86_64"));
        assert_eq!(p[0].licenses, ["MIT"]);
        assert_eq!(p[1].source.as_deref(), Some("busybox"));
        assert_eq!(notes.len(), 1);
    }
}
