//! Node packages: `node_modules/[@scope/]NAME/package.json`. The walk
//! bounds how many are read and how big each may be; here one file is
//! parsed.
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
}
