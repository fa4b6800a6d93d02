//! Go binaries' embedded build info (what `go version -m` prints), read as
//! Go's `debug/buildinfo` reads it: the `.go.buildinfo` section starts
//! with the 14-byte magic `\xff Go buildinf:`, a pointer size and a flags
//! byte. Go ≥ 1.18 (flags bit 2) writes the version and module strings
//! inline, varint-length-prefixed, after a 32-byte header; older ones
//! write two pointers to Go string headers elsewhere in the binary. The
//! module info is wrapped in 16 sentinel bytes each side; its lines are
//! `path`, `mod`, `dep` and `=>` (replacement), tab-separated.
use super::elf::Elf;
use crate::{Ecosystem, Package};

const MAGIC: &[u8] = b"\xff Go buildinf:";
/// Build info strings read at most (module lists of large programs are a
/// few tens of KB).
const MAX_STRING: u64 = 4 << 20;

/// The modules of the Go binary `elf` at `location`: the main module, its
/// dependencies (replacements applied) and the standard library.
pub fn read(elf: &Elf, location: &str) -> Result<Vec<Package>, String> {
    let s = elf
        .section(".go.buildinfo")
        .ok_or("no .go.buildinfo section")?;
    let head = elf.read_at(s.offset, 32.min(s.size), 32)?;
    if head.len() < 32 || !head.starts_with(MAGIC) {
        return Err("the section does not start with Go's build info magic".into());
    }
    let ptr_size = head[14] as u64;
    let flags = head[15];
    let (version, modinfo) = if flags & 2 != 0 {
        let body = elf.read_section(s, MAX_STRING + 64)?;
        let mut rest = &body[32..];
        let v = varint_string(&mut rest)?;
        let m = varint_string(&mut rest)?;
        (v, m)
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return Err(format!("pointer size {ptr_size}"));
        }
        let big = flags & 1 != 0;
        let ptr = |b: &[u8]| -> u64 {
            match (ptr_size, big) {
                (4, false) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64,
                (4, true) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64,
                (_, false) => u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8])),
                (_, true) => u64::from_be_bytes(b[..8].try_into().unwrap_or([0; 8])),
            }
        };
        let hdr = elf.read_at(s.offset, 16 + 2 * ptr_size, 32)?;
        let string = |addr: u64| -> Result<Vec<u8>, String> {
            let sh = elf.read_addr(addr, 2 * ptr_size, 16)?;
            let data = ptr(&sh);
            let len = ptr(&sh[ptr_size as usize..]);
            elf.read_addr(data, len, MAX_STRING)
        };
        let v = string(ptr(&hdr[16..]))?;
        let m = string(ptr(&hdr[16 + ptr_size as usize..]))?;
        (v, m)
    };
    let version = String::from_utf8_lossy(&version).into_owned();
    if !version.starts_with("go") {
        return Err(format!("Go version {version:?} does not start with go"));
    }
    let modinfo = if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        String::from_utf8_lossy(&modinfo[16..modinfo.len() - 16]).into_owned()
    } else {
        String::new()
    };
    let mut pkgs = parse_modinfo(&modinfo, location);
    pkgs.push(Package::new(Ecosystem::Go, "stdlib", &version, location));
    Ok(pkgs)
}

fn varint_string(rest: &mut &[u8]) -> Result<Vec<u8>, String> {
    let mut len: u64 = 0;
    let mut shift = 0;
    let mut i = 0;
    loop {
        let b = *rest.get(i).ok_or("truncated length")?;
        i += 1;
        if shift >= 64 {
            return Err("length overflows".into());
        }
        len |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    if len > MAX_STRING {
        return Err(format!("a {len}-byte string"));
    }
    let end = i + len as usize;
    let s = rest
        .get(i..end)
        .ok_or_else(|| format!("a {len}-byte string past the section's end"))?
        .to_vec();
    *rest = &rest[end..];
    Ok(s)
}

/// The `mod` and `dep` lines of a module info text, each `=>` line
/// replacing the module before it.
pub fn parse_modinfo(text: &str, location: &str) -> Vec<Package> {
    let mut out: Vec<Package> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["mod" | "dep", path, version, ..] if !path.is_empty() => {
                out.push(Package::new(Ecosystem::Go, path, version, location));
            }
            ["=>", path, version, ..] if !path.is_empty() => {
                if let Some(last) = out.last_mut() {
                    last.name = path.to_string();
                    last.version = version.to_string();
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::elf::tests::elf64;
    use super::*;

    const SENTINEL_START: &[u8] = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6";
    const SENTINEL_END: &[u8] = b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2";

    fn modinfo() -> Vec<u8> {
        let mut m = SENTINEL_START.to_vec();
        m.extend_from_slice(
            b"path\texample.com/hello\nmod\texample.com/hello\t(devel)\t\ndep\tgithub.com/pkg/errors\tv0.9.1\th1:abc=\ndep\tgolang.org/x/text\tv0.3.0\t\n=>\tgolang.org/x/text\tv0.3.8\th1:def=\nbuild\t-compiler=gc\n",
        );
        m.extend_from_slice(SENTINEL_END);
        m
    }

    fn varint(mut n: usize, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    fn inline_section() -> Vec<u8> {
        let mut s = MAGIC.to_vec();
        s.push(8);
        s.push(2);
        s.resize(32, 0);
        varint(8, &mut s);
        s.extend_from_slice(b"go1.19.8");
        let m = modinfo();
        varint(m.len(), &mut s);
        s.extend_from_slice(&m);
        s
    }

    fn read_file(bytes: &[u8]) -> Result<Vec<Package>, String> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("bin");
        std::fs::write(&p, bytes).unwrap();
        let e = Elf::open(&p)?.ok_or("not ELF")?;
        read(&e, "/app/hello")
    }

    fn names(p: &[Package]) -> Vec<(String, String)> {
        p.iter()
            .map(|p| (p.name.clone(), p.version.clone()))
            .collect()
    }

    fn expected() -> Vec<(String, String)> {
        [
            ("example.com/hello", "(devel)"),
            ("github.com/pkg/errors", "v0.9.1"),
            ("golang.org/x/text", "v0.3.8"),
            ("stdlib", "go1.19.8"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
    }

    #[test]
    fn inline_build_info_of_go_1_18_and_later() {
        let bin = elf64(&[(".go.buildinfo", 0x5000, &inline_section())]);
        assert_eq!(names(&read_file(&bin).unwrap()), expected());
    }

    #[test]
    fn pointer_build_info_of_older_go() {
        // .data at 0x9000: two string headers, then the strings.
        let version = b"go1.17.13";
        let m = modinfo();
        let base = 0x9000u64;
        let vstr = base + 32;
        let mstr = vstr + version.len() as u64;
        let mut data = Vec::new();
        data.extend_from_slice(&vstr.to_le_bytes());
        data.extend_from_slice(&(version.len() as u64).to_le_bytes());
        data.extend_from_slice(&mstr.to_le_bytes());
        data.extend_from_slice(&(m.len() as u64).to_le_bytes());
        data.extend_from_slice(version);
        data.extend_from_slice(&m);
        let mut s = MAGIC.to_vec();
        s.push(8);
        s.push(0);
        s.extend_from_slice(&base.to_le_bytes());
        s.extend_from_slice(&(base + 16).to_le_bytes());
        s.resize(32, 0);
        let bin = elf64(&[(".go.buildinfo", 0x5000, &s), (".data", base, &data)]);
        let p = read_file(&bin).unwrap();
        assert_eq!(p.last().unwrap().version, "go1.17.13");
        assert_eq!(names(&p)[..3], expected()[..3]);
    }

    #[test]
    fn forged_build_info_is_skipped_never_read_out_of_bounds() {
        let good = inline_section();
        // Lengths pointing far past the section.
        let mut forged = good.clone();
        forged.truncate(32);
        forged.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        forged.extend_from_slice(b"go1");
        let err = read_file(&elf64(&[(".go.buildinfo", 0x5000, &forged)])).unwrap_err();
        assert!(err.contains("string"), "{err}");
        // Varint that never ends.
        let mut forged = good[..32].to_vec();
        forged.extend_from_slice(&[0x80; 40]);
        assert!(read_file(&elf64(&[(".go.buildinfo", 0x5000, &forged)])).is_err());
        // Pointers to nowhere.
        let mut s = MAGIC.to_vec();
        s.extend_from_slice(&[8, 0]);
        s.extend_from_slice(&u64::MAX.to_le_bytes());
        s.extend_from_slice(&0x10u64.to_le_bytes());
        s.resize(32, 0);
        assert!(read_file(&elf64(&[(".go.buildinfo", 0x5000, &s)])).is_err());
        // Every truncation and byte flip of the section.
        for n in 0..good.len() {
            let _ = read_file(&elf64(&[(".go.buildinfo", 0x5000, &good[..n])]));
        }
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0xa5;
            let _ = read_file(&elf64(&[(".go.buildinfo", 0x5000, &b)]));
        }
    }
}
