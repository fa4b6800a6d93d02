//! Node packages: `node_modules/[@scope/]NAME/package.json`, and an
//! app's `package-lock.json` (lockfile versions 1–3) for an app whose
//! `node_modules` is not in the image (the installed package.json files
//! win where both are: see [`crate::image`]). The walk bounds how many
//! files are read and how big each may be; here one file is parsed.
use crate::{Ecosystem, Package};

/// The package a `package.json` at `location` describes (`None`: it names
/// no package, e.g. a nested helper file without a version).
pub fn parse_package_json(data: &[u8], location: &str) -> Result<Option<Package>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| format!("{location}: not JSON ({e}): skipped"))?;
    let (Some(name), Some(version)) = (
        v.get("name").and_then(|n| n.as_str()),
        v.get("version").and_then(|n| n.as_str()),
    ) else {
        return Ok(None);
    };
    if name.is_empty() || version.is_empty() {
        return Ok(None);
    }
    let mut p = Package::new(Ecosystem::Npm, name, version, location);
    // "license": "MIT" | {"type": "MIT"}; the old "licenses": [{"type"}].
    let one = |l: &serde_json::Value| {
        l.as_str()
            .or_else(|| l.get("type").and_then(|t| t.as_str()))
            .map(str::to_string)
    };
    if let Some(l) = v.get("license").and_then(one) {
        p.licenses.push(l);
    } else if let Some(ls) = v.get("licenses").and_then(|l| l.as_array()) {
        p.licenses.extend(ls.iter().filter_map(one));
    }
    Ok(Some(p))
}

/// The packages a `package-lock.json` at `location` pins: lockfile v2/v3's
/// `packages` (`node_modules/…` keys; links and the root left out), else
/// v1's nested `dependencies`.
pub fn parse_lock(data: &[u8], location: &str) -> Result<Vec<Package>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| format!("{location}: not JSON ({e}): skipped"))?;
    let mut out: Vec<Package> = Vec::new();
    let mut push = |name: &str, version: &str, license: Option<&str>| {
        if name.is_empty()
            || version.is_empty()
            || out.iter().any(|p| p.name == name && p.version == version)
        {
            return;
        }
        let mut p = Package::new(Ecosystem::Npm, name, version, location);
        p.licenses.extend(license.map(str::to_string));
        out.push(p);
    };
    if let Some(pkgs) = v.get("packages").and_then(|p| p.as_object()) {
        for (key, e) in pkgs {
            let Some((_, tail)) = key.rsplit_once("node_modules/") else {
                continue;
            };
            if e.get("link").and_then(|l| l.as_bool()) == Some(true) {
                continue;
            }
            let name = e.get("name").and_then(|n| n.as_str()).unwrap_or(tail);
            if let Some(version) = e.get("version").and_then(|v| v.as_str()) {
                push(name, version, e.get("license").and_then(|l| l.as_str()));
            }
        }
    } else if let Some(deps) = v.get("dependencies").and_then(|d| d.as_object()) {
        let mut stack: Vec<(&serde_json::Map<String, serde_json::Value>, usize)> = vec![(deps, 0)];
        while let Some((deps, depth)) = stack.pop() {
            for (name, e) in deps {
                if let Some(version) = e.get("version").and_then(|v| v.as_str()) {
                    // v1 writes links as "file:…" versions.
                    if !version.starts_with("file:") {
                        push(name, version, None);
                    }
                }
                if depth < 64 {
                    if let Some(d) = e.get("dependencies").and_then(|d| d.as_object()) {
                        stack.push((d, depth + 1));
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_json_in_its_forms() {
        let p = parse_package_json(
            br#"{"name":"@babel/core","version":"7.1.0","license":"MIT"}"#,
            "/l",
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.name, "@babel/core");
        assert_eq!(p.licenses, ["MIT"]);
        let p = parse_package_json(
            br#"{"name":"old","version":"0.1.0","licenses":[{"type":"BSD"},{"type":"MIT"}]}"#,
            "/l",
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.licenses, ["BSD", "MIT"]);
        let p = parse_package_json(
            br#"{"name":"x","version":"1.0.0","license":{"type":"ISC"}}"#,
            "/l",
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.licenses, ["ISC"]);
        assert_eq!(
            parse_package_json(br#"{"private":true}"#, "/l").unwrap(),
            None
        );
        assert!(parse_package_json(b"{\"name\":", "/l").is_err());
    }

    #[test]
    fn lock_files_of_each_version() {
        let v3 = br#"{"name":"app","lockfileVersion":3,"packages":{
            "":{"name":"app","version":"1.0.0"},
            "node_modules/left-pad":{"version":"1.3.0","license":"WTFPL"},
            "node_modules/@babel/core":{"version":"7.1.0","license":"MIT"},
            "node_modules/a/node_modules/left-pad":{"version":"1.1.0"},
            "node_modules/mine":{"resolved":"packages/mine","link":true},
            "packages/mine":{"name":"mine","version":"0.0.1"}}}"#;
        let p = parse_lock(v3, "/app/package-lock.json").unwrap();
        let n: Vec<_> = p
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            n,
            [
                ("left-pad", "1.3.0"),
                ("@babel/core", "7.1.0"),
                ("left-pad", "1.1.0")
            ]
        );
        assert_eq!(p[0].licenses, ["WTFPL"]);
        let v1 = br#"{"name":"app","lockfileVersion":1,"dependencies":{
            "a":{"version":"1.0.0","dependencies":{"b":{"version":"2.0.0"}}},
            "local":{"version":"file:../local"}}}"#;
        let p = parse_lock(v1, "/app/package-lock.json").unwrap();
        let mut n: Vec<_> = p
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        n.sort();
        assert_eq!(n, [("a", "1.0.0"), ("b", "2.0.0")]);
        assert!(parse_lock(b"{", "/l").is_err());
    }
}
