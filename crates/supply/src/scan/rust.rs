//! `cargo auditable` data in Rust binaries: the `.dep-v0` section holds
//! zlib-compressed JSON `{"packages": [{"name", "version", "source",
//! "kind", "dependencies", "root"}]}`
//! (<https://github.com/rust-secure-code/cargo-auditable/blob/master/PARAMETERS.md>).
//! Both the compressed and the decompressed sizes are capped.
use std::io::Read;

use serde::Deserialize;

use super::elf::Elf;
use crate::{Ecosystem, Package};

/// The section read at most.
const MAX_COMPRESSED: u64 = 8 << 20;
/// Its JSON decompressed at most (the crate's own limit is 8 MiB).
const MAX_JSON: u64 = 8 << 20;

#[derive(Deserialize)]
struct Deps {
    packages: Vec<Dep>,
}

#[derive(Deserialize)]
struct Dep {
    name: String,
    version: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    kind: String,
}

/// The crates compiled into the binary `elf` at `location` (build-time
/// dependencies left out, as they are not in the binary).
pub fn read(elf: &Elf, location: &str) -> Result<Vec<Package>, String> {
    let s = elf.section(".dep-v0").ok_or("no .dep-v0 section")?;
    let z = elf.read_section(s, MAX_COMPRESSED)?;
    parse(&z, location)
}

/// Decompress and parse the section's bytes.
pub fn parse(z: &[u8], location: &str) -> Result<Vec<Package>, String> {
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(z)
        .take(MAX_JSON + 1)
        .read_to_end(&mut json)
        .map_err(|e| format!("not zlib data: {e}"))?;
    if json.len() as u64 > MAX_JSON {
        return Err(format!("more than {MAX_JSON} bytes decompressed"));
    }
    let deps: Deps = serde_json::from_slice(&json).map_err(|e| format!("not its JSON: {e}"))?;
    Ok(deps
        .packages
        .into_iter()
        .filter(|d| d.kind != "build" && !d.name.is_empty() && !d.version.is_empty())
        .map(|d| {
            let mut p = Package::new(Ecosystem::Cargo, &d.name, &d.version, location);
            if !d.source.is_empty() {
                p.source = Some(d.source);
            }
            p
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::elf::tests::elf64;
    use super::*;
    use std::io::Write;

    fn zlib(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn crates_of_an_auditable_binary() {
        let json = br#"{"packages":[{"name":"hello","version":"0.1.0","source":"local","root":true,"dependencies":[1]},{"name":"serde","version":"1.0.200","source":"crates.io"},{"name":"cc","version":"1.0.0","source":"crates.io","kind":"build"}]}"#;
        let bin = elf64(&[(".dep-v0", 0, &zlib(json))]);
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("hello");
        std::fs::write(&path, bin).unwrap();
        let elf = Elf::open(&path).unwrap().unwrap();
        let p = read(&elf, "/usr/bin/hello").unwrap();
        let n: Vec<_> = p
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(n, [("hello", "0.1.0"), ("serde", "1.0.200")]);
    }

    #[test]
    fn bombs_and_garbage_are_refused() {
        let bomb = zlib(&vec![b' '; (MAX_JSON + 10) as usize]);
        assert!(parse(&bomb, "/x").unwrap_err().contains("decompressed"));
        assert!(parse(b"not zlib", "/x").is_err());
        assert!(parse(&zlib(b"{\"packages\": 3}"), "/x").is_err());
    }
}
