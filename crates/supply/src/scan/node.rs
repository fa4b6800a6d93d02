//! Node packages: `node_modules/[@scope/]NAME/package.json`, and an
//! app's lock file — `package-lock.json` (lockfile versions 1–3),
//! `yarn.lock` (classic v1 and Berry's YAML), `pnpm-lock.yaml` (lockfile
//! versions 5–9) — for an app whose `node_modules` is not in the image (the installed package.json files
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

/// The packages the lock file at `location` pins (npm's, yarn's or
/// pnpm's, by its name).
pub fn parse_lock(data: &[u8], location: &str) -> Result<Vec<Package>, String> {
    let name = location.rsplit('/').next().unwrap_or(location);
    match name {
        "yarn.lock" => parse_yarn_lock(data, location),
        "pnpm-lock.yaml" => parse_pnpm_lock(data, location),
        _ => parse_npm_lock(data, location),
    }
}

/// The lock files an app may have, by name.
pub const LOCK_FILES: [&str; 3] = ["package-lock.json", "yarn.lock", "pnpm-lock.yaml"];

/// Packages without repeats, in the order first seen.
struct Found<'a> {
    out: Vec<Package>,
    location: &'a str,
}

impl Found<'_> {
    fn push(&mut self, name: &str, version: &str, license: Option<&str>) {
        if name.is_empty()
            || version.is_empty()
            || self
                .out
                .iter()
                .any(|p| p.name == name && p.version == version)
        {
            return;
        }
        let mut p = Package::new(Ecosystem::Npm, name, version, self.location);
        p.licenses.extend(license.map(str::to_string));
        self.out.push(p);
    }
}

/// `NAME@RANGE` (NAME may be `@scope/x`): NAME.
fn name_of_spec(spec: &str) -> &str {
    match spec[1.min(spec.len())..].find('@') {
        Some(i) => &spec[..i + 1],
        None => spec,
    }
}

/// yarn's lock file: classic v1 (its own format: `"a@^1", a@~1:` then
/// `  version "1.2.3"`), or Berry's YAML (`__metadata`, entries with
/// `version:` and `resolution: "a@npm:1.2.3"`; workspace, link and portal
/// entries are the app's own code, left out).
fn parse_yarn_lock(data: &[u8], location: &str) -> Result<Vec<Package>, String> {
    let text = std::str::from_utf8(data).map_err(|_| format!("{location}: not UTF-8: skipped"))?;
    let mut found = Found {
        out: Vec::new(),
        location,
    };
    if text.lines().any(|l| l.starts_with("__metadata:")) {
        let v = yaml(text, location)?;
        let Some(entries) = v.as_object() else {
            return Err(format!("{location}: not a yarn lock file: skipped"));
        };
        for (key, e) in entries {
            if key == "__metadata" {
                continue;
            }
            let resolution = e.get("resolution").and_then(|r| r.as_str()).unwrap_or(key);
            let own = ["@workspace:", "@link:", "@portal:", "@file:"];
            if own.iter().any(|o| resolution.contains(o)) {
                continue;
            }
            let version = match e.get("version") {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => continue,
            };
            let first = resolution.split(',').next().unwrap_or("").trim();
            found.push(name_of_spec(first), &version, None);
        }
        return Ok(found.out);
    }
    let mut names: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            // `"@a/b@^1", "@a/b@^1.2":` — one package, several ranges; a
            // `file:` or `link:` one is the app's own code.
            let first = line.trim_end_matches(':').split(',').next().unwrap_or("");
            let first = first.trim().trim_matches('"');
            let name = name_of_spec(first);
            let range = &first[name.len()..];
            names = if range.starts_with("@file:") || range.starts_with("@link:") {
                Vec::new()
            } else {
                vec![name.to_string()]
            };
            continue;
        }
        if let Some(v) = line.strip_prefix("  version ") {
            if let Some(name) = names.first() {
                let version = v.trim().trim_matches('"');
                if !version.starts_with("file:") && !version.starts_with("link:") {
                    found.push(name, version, None);
                }
            }
        }
    }
    Ok(found.out)
}

/// pnpm's lock file: `packages:` keyed `/name/1.0.0` (v5, peers after
/// `_`), `/name@1.0.0` (v6) or `name@1.0.0` (v9), peers in `(…)` after the
/// version; an entry's own `name`/`version` win (tarball dependencies).
fn parse_pnpm_lock(data: &[u8], location: &str) -> Result<Vec<Package>, String> {
    let text = std::str::from_utf8(data).map_err(|_| format!("{location}: not UTF-8: skipped"))?;
    let v = yaml(text, location)?;
    let mut found = Found {
        out: Vec::new(),
        location,
    };
    let Some(pkgs) = v.get("packages").and_then(|p| p.as_object()) else {
        return Ok(found.out);
    };
    let v5 = match v.get("lockfileVersion") {
        Some(serde_json::Value::Number(n)) => n.as_f64().is_some_and(|n| n < 6.0),
        Some(serde_json::Value::String(s)) => s.parse::<f64>().is_ok_and(|n| n < 6.0),
        _ => false,
    };
    for (key, e) in pkgs {
        let key = key.strip_prefix('/').unwrap_or(key);
        let key = key.split('(').next().unwrap_or(key);
        let (name, version) = if v5 {
            let key = key.split('_').next().unwrap_or(key);
            match key.rsplit_once('/') {
                Some((n, v)) => (n, v),
                None => continue,
            }
        } else {
            let n = name_of_spec(key);
            (n, key[n.len()..].trim_start_matches('@'))
        };
        let name = e.get("name").and_then(|n| n.as_str()).unwrap_or(name);
        let version = e.get("version").and_then(|n| n.as_str()).unwrap_or(version);
        if version.starts_with("link:") || version.starts_with("file:") {
            continue;
        }
        found.push(name, version, None);
    }
    Ok(found.out)
}

/// A YAML lock file as JSON values.
fn yaml(text: &str, location: &str) -> Result<serde_json::Value, String> {
    serde_saphyr::from_str::<serde_json::Value>(text)
        .map_err(|e| format!("{location}: not YAML ({e}): skipped"))
}

/// npm's `package-lock.json`: lockfile v2/v3's `packages` (`node_modules/…`
/// keys; links and the root left out), else v1's nested `dependencies`.
fn parse_npm_lock(data: &[u8], location: &str) -> Result<Vec<Package>, String> {
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

#[cfg(test)]
mod lock_tests {
    use super::*;

    fn pairs(p: &[Package]) -> Vec<(&str, &str)> {
        let mut n: Vec<_> = p
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        n.sort();
        n
    }

    #[test]
    fn yarn_classic_lock() {
        let lock = br#"# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.
# yarn lockfile v1


"@babel/code-frame@^7.0.0", "@babel/code-frame@^7.10.4":
  version "7.12.13"
  resolved "https://registry.yarnpkg.com/@babel/code-frame/-/code-frame-7.12.13.tgz#dcfc826beef65e75c50e21d3837d7d95798dd658"
  integrity sha512-HV1Cm0Q3ZrpCR93tkWOYiuYIgLxZXZFVG2VgK+MBWjUqZTundupbfx2aXarXuw5Ko5aMcjtJgbSs4vUGBS5v6g==
  dependencies:
    "@babel/highlight" "^7.12.13"

lodash@^4.17.20, lodash@^4.17.21:
  version "4.17.21"

mine@file:./mine:
  version "0.0.1"
"#;
        let p = parse_lock(lock, "/app/yarn.lock").unwrap();
        assert_eq!(
            pairs(&p),
            [("@babel/code-frame", "7.12.13"), ("lodash", "4.17.21")]
        );
        assert_eq!(p[0].locations, ["/app/yarn.lock"]);
    }

    #[test]
    fn yarn_berry_lock() {
        let lock = br#"# This file is generated by running "yarn install" inside your project.

__metadata:
  version: 8
  cacheKey: 10c0

"@types/node@npm:^20.0.0":
  version: 20.11.5
  resolution: "@types/node@npm:20.11.5"
  dependencies:
    undici-types: "npm:~5.26.4"
  languageName: node
  linkType: hard

"app@workspace:.":
  version: 0.0.0-use.local
  resolution: "app@workspace:."
  languageName: unknown
  linkType: soft

"lodash@npm:^4.17.21":
  version: 4.17.21
  resolution: "lodash@npm:4.17.21"
"#;
        let p = parse_lock(lock, "/app/yarn.lock").unwrap();
        assert_eq!(
            pairs(&p),
            [("@types/node", "20.11.5"), ("lodash", "4.17.21")]
        );
    }

    #[test]
    fn pnpm_locks_of_each_version() {
        let v9 = br#"lockfileVersion: '9.0'

importers:
  .:
    dependencies:
      react-dom:
        specifier: ^18.2.0
        version: 18.2.0(react@18.2.0)

packages:
  '@babel/core@7.1.0':
    resolution: {integrity: sha512-x}
  react-dom@18.2.0:
    resolution: {integrity: sha512-y}
    peerDependencies:
      react: ^18.2.0
  react@18.2.0:
    resolution: {integrity: sha512-z}
"#;
        let p = parse_lock(v9, "/app/pnpm-lock.yaml").unwrap();
        assert_eq!(
            pairs(&p),
            [
                ("@babel/core", "7.1.0"),
                ("react", "18.2.0"),
                ("react-dom", "18.2.0")
            ]
        );
        let v6 = b"lockfileVersion: '6.0'\npackages:\n  /left-pad@1.3.0:\n    dev: false\n  /react-dom@18.2.0(react@18.2.0):\n    dev: false\n";
        let p = parse_lock(v6, "/app/pnpm-lock.yaml").unwrap();
        assert_eq!(pairs(&p), [("left-pad", "1.3.0"), ("react-dom", "18.2.0")]);
        let v5 = b"lockfileVersion: 5.4\npackages:\n  /@babel/core/7.1.0:\n    dev: false\n  /react-dom/18.2.0_react@18.2.0:\n    dev: false\n  /tar/6.0.0:\n    name: tarball\n    version: 6.0.1\n";
        let p = parse_lock(v5, "/app/pnpm-lock.yaml").unwrap();
        assert_eq!(
            pairs(&p),
            [
                ("@babel/core", "7.1.0"),
                ("react-dom", "18.2.0"),
                ("tarball", "6.0.1")
            ]
        );
        assert!(parse_lock(b"packages: [", "/app/pnpm-lock.yaml").is_err());
    }
}
