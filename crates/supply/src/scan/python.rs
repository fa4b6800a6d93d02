//! Python distributions: the core metadata of `*.dist-info/METADATA`,
//! `*.egg-info/PKG-INFO` or an `*.egg-info` file
//! (<https://packaging.python.org/en/latest/specifications/core-metadata/>):
//! email-style headers up to the first blank line.
use crate::{Ecosystem, Package};

/// The distribution a metadata file at `location` describes.
pub fn parse_metadata(data: &[u8], location: &str) -> Result<Package, String> {
    let text = String::from_utf8_lossy(data);
    let mut name = None;
    let mut version = None;
    let mut expression = None;
    let mut license = None;
    let mut classifiers = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.to_ascii_lowercase().as_str() {
            "name" => name = Some(v.to_string()),
            "version" => version = Some(v.to_string()),
            "license-expression" if !v.is_empty() => expression = Some(v.to_string()),
            "license" if !v.is_empty() && !v.eq_ignore_ascii_case("UNKNOWN") => {
                license = Some(v.to_string())
            }
            "classifier" => {
                if let Some(l) = v.strip_prefix("License ::") {
                    let l = l.rsplit("::").next().unwrap_or("").trim();
                    if !l.is_empty() {
                        classifiers.push(l.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    let (Some(name), Some(version)) = (name, version) else {
        return Err(format!("{location}: no Name or Version: skipped"));
    };
    if name.is_empty() || version.is_empty() {
        return Err(format!("{location}: empty Name or Version: skipped"));
    }
    let mut p = Package::new(Ecosystem::Python, &name, &version, location);
    // License-Expression (metadata 2.4) is SPDX already; a one-line
    // License field names one; else the trove classifiers do.
    p.licenses = if let Some(e) = expression {
        vec![e]
    } else if let Some(l) = license.filter(|l| !l.contains('\n') && l.len() <= 100) {
        vec![l]
    } else {
        classifiers
    };
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_with_licences_in_each_form() {
        let m = "Metadata-Version: 2.1\nName: requests\nVersion: 2.28.1\nSummary: HTTP\nLicense: Apache 2.0\nClassifier: License :: OSI Approved :: Apache Software License\n\nName: not-me\n";
        let p = parse_metadata(m.as_bytes(), "/x/requests-2.28.1.dist-info/METADATA").unwrap();
        assert_eq!(
            (p.name.as_str(), p.version.as_str()),
            ("requests", "2.28.1")
        );
        assert_eq!(p.licenses, ["Apache 2.0"]);
        let m = "Metadata-Version: 2.4\nName: attrs\nVersion: 25.1\nLicense-Expression: MIT\n";
        assert_eq!(
            parse_metadata(m.as_bytes(), "/m").unwrap().licenses,
            ["MIT"]
        );
        let m = "Name: six\nVersion: 1.16.0\nLicense: UNKNOWN\nClassifier: License :: OSI Approved :: MIT License\n";
        assert_eq!(
            parse_metadata(m.as_bytes(), "/m").unwrap().licenses,
            ["MIT License"]
        );
        assert!(parse_metadata(b"Summary: nothing\n", "/m").is_err());
        assert!(parse_metadata(b"\xff\xfe\x00", "/m").is_err());
    }
}
