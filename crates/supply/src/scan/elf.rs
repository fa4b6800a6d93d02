//! Just enough ELF to find a section by name and read it, or read the
//! bytes at a virtual address (Go's pointer-based build info). Every size
//! and offset comes from the file, so every one is checked against the
//! file's length and a cap before anything is read.
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Section headers read at most.
const MAX_SECTIONS: usize = 4096;
/// The section-name table read at most.
const MAX_SHSTRTAB: u64 = 1 << 20;

/// One section header.
#[derive(Debug, Clone)]
pub struct Section {
    /// Its name.
    pub name: String,
    /// Its virtual address.
    pub addr: u64,
    /// Its offset in the file.
    pub offset: u64,
    /// Its size.
    pub size: u64,
    /// SHT_NOBITS: no bytes in the file (.bss).
    pub nobits: bool,
}

/// An ELF file opened for reading sections.
#[derive(Debug)]
pub struct Elf {
    file: File,
    len: u64,
    /// 64-bit class.
    pub class64: bool,
    /// Big-endian data.
    pub big_endian: bool,
    sections: Vec<Section>,
}

impl Elf {
    /// Open `path`: `Ok(None)` if it is not an ELF file, `Err` if it is
    /// one whose headers do not hold together.
    pub fn open(path: &Path) -> Result<Option<Elf>, String> {
        let Ok(Some((file, len))) = crate::fsview::open_regular(path) else {
            return Ok(None);
        };
        let mut ident = [0u8; 64];
        if len < 52 || file.read_exact_at(&mut ident[..52], 0).is_err() {
            return Ok(None);
        }
        if &ident[..4] != b"\x7fELF" {
            return Ok(None);
        }
        let class64 = match ident[4] {
            1 => false,
            2 => true,
            c => return Err(format!("ELF class {c} unknown")),
        };
        let big_endian = match ident[5] {
            1 => false,
            2 => true,
            d => return Err(format!("ELF data encoding {d} unknown")),
        };
        if class64 && (len < 64 || file.read_exact_at(&mut ident, 0).is_err()) {
            return Err("truncated ELF header".into());
        }
        let mut elf = Elf {
            file,
            len,
            class64,
            big_endian,
            sections: Vec::new(),
        };
        let (shoff, shentsize, shnum, shstrndx) = if class64 {
            (
                elf.u64(&ident[0x28..]),
                elf.u16(&ident[0x3a..]) as u64,
                elf.u16(&ident[0x3c..]) as usize,
                elf.u16(&ident[0x3e..]) as usize,
            )
        } else {
            (
                elf.u32(&ident[0x20..]) as u64,
                elf.u16(&ident[0x2e..]) as u64,
                elf.u16(&ident[0x30..]) as usize,
                elf.u16(&ident[0x32..]) as usize,
            )
        };
        if shnum == 0 || shoff == 0 {
            return Ok(Some(elf));
        }
        let want = if class64 { 64 } else { 40 };
        if shnum > MAX_SECTIONS || shentsize < want || shstrndx >= shnum {
            return Err(format!(
                "section headers do not hold together ({shnum} of {shentsize} bytes, names in {shstrndx})"
            ));
        }
        let table = elf.read_at(shoff, shentsize * shnum as u64, u64::MAX)?;
        let mut raw = Vec::with_capacity(shnum);
        for i in 0..shnum {
            let h = &table[(i as u64 * shentsize) as usize..];
            let (name, ty, addr, offset, size) = if class64 {
                (
                    elf.u32(h),
                    elf.u32(&h[4..]),
                    elf.u64(&h[16..]),
                    elf.u64(&h[24..]),
                    elf.u64(&h[32..]),
                )
            } else {
                (
                    elf.u32(h),
                    elf.u32(&h[4..]),
                    elf.u32(&h[12..]) as u64,
                    elf.u32(&h[16..]) as u64,
                    elf.u32(&h[20..]) as u64,
                )
            };
            raw.push((name, ty, addr, offset, size));
        }
        let (_, _, _, str_off, str_size) = raw[shstrndx];
        let names = elf.read_at(str_off, str_size, MAX_SHSTRTAB)?;
        for (name, ty, addr, offset, size) in raw {
            let name = names
                .get(name as usize..)
                .map(|s| {
                    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
                    String::from_utf8_lossy(&s[..end]).into_owned()
                })
                .unwrap_or_default();
            elf.sections.push(Section {
                name,
                addr,
                offset,
                size,
                nobits: ty == 8,
            });
        }
        Ok(Some(elf))
    }

    /// The section called `name`.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// `len` bytes at file offset `off`, refused past the file's end or
    /// past `cap`.
    pub fn read_at(&self, off: u64, len: u64, cap: u64) -> Result<Vec<u8>, String> {
        if len > cap {
            return Err(format!("{len} bytes asked for, more than the {cap} read"));
        }
        let end = off
            .checked_add(len)
            .filter(|e| *e <= self.len)
            .ok_or_else(|| {
                format!(
                    "{len} bytes at offset {off} past the file's {} bytes",
                    self.len
                )
            })?;
        let mut buf = vec![0u8; (end - off) as usize];
        self.file
            .read_exact_at(&mut buf, off)
            .map_err(|e| format!("reading {len} bytes at {off}: {e}"))?;
        Ok(buf)
    }

    /// A whole section, at most `cap` bytes.
    pub fn read_section(&self, s: &Section, cap: u64) -> Result<Vec<u8>, String> {
        if s.nobits {
            return Err(format!("section {} has no bytes in the file", s.name));
        }
        self.read_at(s.offset, s.size, cap)
    }

    /// `len` bytes at virtual address `addr`, from the section holding
    /// them all, at most `cap`.
    pub fn read_addr(&self, addr: u64, len: u64, cap: u64) -> Result<Vec<u8>, String> {
        let s = self
            .sections
            .iter()
            .find(|s| {
                !s.nobits
                    && s.addr != 0
                    && addr >= s.addr
                    && addr
                        .checked_add(len)
                        .is_some_and(|e| e <= s.addr.saturating_add(s.size))
            })
            .ok_or_else(|| format!("address {addr:#x} (+{len}) is in no section of the file"))?;
        self.read_at(s.offset + (addr - s.addr), len, cap)
    }

    /// Read an unsigned integer of the file's byte order.
    pub fn u16(&self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        if self.big_endian {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }
    }

    /// Read an unsigned integer of the file's byte order.
    pub fn u32(&self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if self.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }

    /// Read an unsigned integer of the file's byte order.
    pub fn u64(&self, b: &[u8]) -> u64 {
        let a = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
        if self.big_endian {
            u64::from_be_bytes(a)
        } else {
            u64::from_le_bytes(a)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A little-endian ELF64 file with these (name, address, bytes)
    /// sections (address 0: not loaded).
    pub(crate) fn elf64(sections: &[(&str, u64, &[u8])]) -> Vec<u8> {
        let mut out = vec![0u8; 64];
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = 2;
        out[5] = 1;
        out[6] = 1;
        let mut names = vec![0u8];
        let mut placed = Vec::new();
        for (name, addr, data) in sections {
            let n = names.len() as u32;
            names.extend_from_slice(name.as_bytes());
            names.push(0);
            let off = out.len() as u64;
            out.extend_from_slice(data);
            placed.push((n, *addr, off, data.len() as u64));
        }
        let shstr_name = names.len() as u32;
        names.extend_from_slice(b".shstrtab\0");
        let shstr_off = out.len() as u64;
        out.extend_from_slice(&names);
        placed.push((shstr_name, 0, shstr_off, names.len() as u64));
        while !out.len().is_multiple_of(8) {
            out.push(0);
        }
        let shoff = out.len() as u64;
        out.extend_from_slice(&[0u8; 64]); // the null section
        for (name, addr, off, size) in &placed {
            let mut h = [0u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&1u32.to_le_bytes());
            h[16..24].copy_from_slice(&addr.to_le_bytes());
            h[24..32].copy_from_slice(&off.to_le_bytes());
            h[32..40].copy_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&h);
        }
        out[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        out[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        out[0x3c..0x3e].copy_from_slice(&((placed.len() + 1) as u16).to_le_bytes());
        out[0x3e..0x40].copy_from_slice(&(placed.len() as u16).to_le_bytes());
        out
    }

    #[test]
    fn sections_by_name_and_address_and_hostile_headers() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("bin");
        let img = elf64(&[(".data", 0x1000, b"0123456789"), (".other", 0, b"xyz")]);
        std::fs::write(&p, &img).unwrap();
        let e = Elf::open(&p).unwrap().unwrap();
        let s = e.section(".other").unwrap().clone();
        assert_eq!(e.read_section(&s, 100).unwrap(), b"xyz");
        assert_eq!(e.read_addr(0x1002, 3, 100).unwrap(), b"234");
        assert!(e.read_addr(0x1008, 3, 100).is_err());
        assert!(e.read_section(&s, 2).is_err());
        std::fs::write(&p, b"#!/bin/sh\necho hi\n".repeat(10)).unwrap();
        assert!(Elf::open(&p).unwrap().is_none());
        // Every truncation and every flipped byte of the headers: an
        // error or a file, never a panic.
        for n in 0..img.len() {
            std::fs::write(&p, &img[..n]).unwrap();
            let _ = Elf::open(&p);
        }
        for i in 0..img.len() {
            let mut b = img.clone();
            b[i] ^= 0xff;
            std::fs::write(&p, &b).unwrap();
            if let Ok(Some(e)) = Elf::open(&p) {
                for s in e.sections.clone() {
                    let _ = e.read_section(&s, 1 << 20);
                }
            }
        }
    }
}
