//! RPM's database in its sqlite form (`rpmdb.sqlite`, RPM ≥ 4.16: Fedora,
//! RHEL 9, openSUSE): table `Packages(hnum, blob)`, each blob an RPM header
//! without its magic — `il` index entries and `dl` bytes of data, both
//! big-endian (<https://rpm-software-management.github.io/rpm/manual/format_header.html>).
//! The header parser checks every offset and count against the blob.
use std::path::Path;

use crate::{Ecosystem, Package};

const TAG_NAME: i32 = 1000;
const TAG_VERSION: i32 = 1001;
const TAG_RELEASE: i32 = 1002;
const TAG_EPOCH: i32 = 1003;
const TAG_LICENSE: i32 = 1014;
const TAG_ARCH: i32 = 1022;
const TAG_SOURCERPM: i32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_I18NSTRING: u32 = 9;

/// rpm's own bounds on a header (`hdrchkTags`, `hdrchkData`).
const MAX_TAGS: usize = 0xffff;
const MAX_DATA: usize = 256 << 20;

/// The fields of one header that make a package.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// NAME.
    pub name: Option<String>,
    /// VERSION.
    pub version: Option<String>,
    /// RELEASE.
    pub release: Option<String>,
    /// EPOCH.
    pub epoch: Option<u32>,
    /// ARCH.
    pub arch: Option<String>,
    /// LICENSE.
    pub license: Option<String>,
    /// SOURCERPM.
    pub source_rpm: Option<String>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Parse a header blob as rpmdb stores it. `Err` says what is wrong.
pub fn parse_header(blob: &[u8]) -> Result<Header, String> {
    let il = be32(blob, 0).ok_or("shorter than its 8-byte preamble")? as usize;
    let dl = be32(blob, 4).ok_or("shorter than its 8-byte preamble")? as usize;
    if il == 0 || il > MAX_TAGS {
        return Err(format!("{il} index entries"));
    }
    if dl > MAX_DATA {
        return Err(format!("{dl} bytes of data"));
    }
    let data_start = 8 + il * 16;
    let data = blob.get(data_start..data_start + dl).ok_or_else(|| {
        format!(
            "{} bytes, shorter than its {il} entries and {dl} bytes of data",
            blob.len()
        )
    })?;
    let string_at = |off: usize| -> Result<String, String> {
        let rest = data.get(off..).ok_or("a string offset past the data")?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or("a string without its terminating NUL")?;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    };
    let mut h = Header::default();
    for i in 0..il {
        let e = 8 + i * 16;
        let tag = be32(blob, e).unwrap_or(0) as i32;
        let ty = be32(blob, e + 4).unwrap_or(0);
        let off = be32(blob, e + 8).unwrap_or(u32::MAX) as usize;
        let count = be32(blob, e + 12).unwrap_or(0);
        if off >= dl {
            return Err(format!(
                "tag {tag}: offset {off} past the {dl} bytes of data"
            ));
        }
        let text = || -> Result<Option<String>, String> {
            match ty {
                TYPE_STRING | TYPE_I18NSTRING => string_at(off).map(Some),
                _ => Ok(None),
            }
        };
        match tag {
            TAG_NAME => h.name = text()?,
            TAG_VERSION => h.version = text()?,
            TAG_RELEASE => h.release = text()?,
            TAG_ARCH => h.arch = text()?,
            TAG_LICENSE => h.license = text()?,
            TAG_SOURCERPM => h.source_rpm = text()?,
            TAG_EPOCH if ty == TYPE_INT32 && count >= 1 => {
                h.epoch = Some(be32(data, off).ok_or("EPOCH past the data")?);
            }
            _ => {}
        }
    }
    Ok(h)
}

impl Header {
    /// The package it describes, if it names one.
    pub fn package(self, location: &str) -> Option<Package> {
        let name = self.name.filter(|n| !n.is_empty())?;
        let mut version = self.version.filter(|v| !v.is_empty())?;
        if let Some(r) = self.release.filter(|r| !r.is_empty()) {
            version = format!("{version}-{r}");
        }
        if let Some(e) = self.epoch {
            version = format!("{e}:{version}");
        }
        let mut p = Package::new(Ecosystem::Rpm, &name, &version, location);
        p.arch = self.arch;
        p.source = self.source_rpm;
        p.licenses = self.license.into_iter().filter(|l| !l.is_empty()).collect();
        Some(p)
    }
}

/// The packages of the sqlite rpmdb at `path` (shown as `location`),
/// opened read-only and immutable: nothing is written beside it.
pub fn read_db(path: &Path, location: &str) -> (Vec<Package>, Vec<String>) {
    let mut notes = Vec::new();
    let uri = format!(
        "file:{}?immutable=1",
        crate::purl::encode(&path.to_string_lossy()).replace("%2F", "/")
    );
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
        | rusqlite::OpenFlags::SQLITE_OPEN_URI
        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match rusqlite::Connection::open_with_flags(&uri, flags) {
        Ok(c) => c,
        Err(e) => return (Vec::new(), vec![format!("{location}: cannot open it: {e}")]),
    };
    let mut pkgs = Vec::new();
    let rows: Result<Vec<Vec<u8>>, rusqlite::Error> = (|| {
        let mut st = conn.prepare("SELECT blob FROM Packages")?;
        let rows = st.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        rows.collect()
    })();
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return (Vec::new(), vec![format!("{location}: not an rpmdb: {e}")]),
    };
    let mut bad = 0;
    let mut first_err = None;
    for blob in rows {
        match parse_header(&blob) {
            Ok(h) => match h.package(location) {
                // gpg-pubkey entries are keys, not packages.
                Some(p) if p.name != "gpg-pubkey" => pkgs.push(p),
                Some(_) => {}
                None => bad += 1,
            },
            Err(e) => {
                bad += 1;
                first_err.get_or_insert(e);
            }
        }
    }
    if bad > 0 {
        notes.push(format!(
            "{location}: {bad} header(s) skipped{}",
            first_err
                .map(|e| format!(" (the first: {e})"))
                .unwrap_or_default()
        ));
    }
    (pkgs, notes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A header blob with these (tag, type, value) entries.
    pub(crate) fn header(entries: &[(i32, u32, &[u8])]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, ty, val) in entries {
            if *ty == TYPE_INT32 {
                while !data.len().is_multiple_of(4) {
                    data.push(0);
                }
            }
            index.extend_from_slice(&tag.to_be_bytes());
            index.extend_from_slice(&ty.to_be_bytes());
            index.extend_from_slice(&(data.len() as u32).to_be_bytes());
            index.extend_from_slice(&1u32.to_be_bytes());
            data.extend_from_slice(val);
            if *ty != TYPE_INT32 {
                data.push(0);
            }
        }
        let mut b = Vec::new();
        b.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        b.extend_from_slice(&(data.len() as u32).to_be_bytes());
        b.extend_from_slice(&index);
        b.extend_from_slice(&data);
        b
    }

    pub(crate) fn bash() -> Vec<u8> {
        header(&[
            (TAG_NAME, TYPE_STRING, b"bash"),
            (TAG_VERSION, TYPE_STRING, b"5.2.15"),
            (TAG_RELEASE, TYPE_STRING, b"5.fc39"),
            (TAG_EPOCH, TYPE_INT32, &1u32.to_be_bytes()),
            (TAG_LICENSE, TYPE_STRING, b"GPL-3.0-or-later"),
            (TAG_ARCH, TYPE_STRING, b"x86_64"),
            (TAG_SOURCERPM, TYPE_STRING, b"bash-5.2.15-5.fc39.src.rpm"),
        ])
    }

    #[test]
    fn a_header_gives_name_epoch_version_release_arch_licence() {
        let p = parse_header(&bash()).unwrap().package("/db").unwrap();
        assert_eq!(p.name, "bash");
        assert_eq!(p.version, "1:5.2.15-5.fc39");
        assert_eq!(p.arch.as_deref(), Some("x86_64"));
        assert_eq!(p.licenses, ["GPL-3.0-or-later"]);
        assert_eq!(p.source.as_deref(), Some("bash-5.2.15-5.fc39.src.rpm"));
    }

    #[test]
    fn hostile_headers_are_refused_without_reading_out_of_bounds() {
        let good = bash();
        // Every truncation.
        for n in 0..good.len() {
            let _ = parse_header(&good[..n]);
        }
        assert!(parse_header(&good[..good.len() - 1]).is_err());
        // Offsets pointing past the data, huge counts, no NUL.
        let mut b = good.clone();
        b[8 + 8..8 + 12].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        assert!(parse_header(&b).unwrap_err().contains("past"));
        let mut b = good.clone();
        b[0..4].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
        assert!(parse_header(&b).is_err());
        let nonul = header(&[(TAG_NAME, TYPE_STRING, b"x")]);
        let mut b = nonul.clone();
        let last = b.len() - 1;
        b[last] = b'y';
        assert!(parse_header(&b).unwrap_err().contains("NUL"));
        // Flipping any byte never panics.
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0xff;
            let _ = parse_header(&b);
        }
    }

    #[test]
    fn an_rpmdb_sqlite_read_immutably() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("rpmdb.sqlite");
        {
            let c = rusqlite::Connection::open(&db).unwrap();
            c.execute_batch("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);").unwrap();
            let key = header(&[
                (TAG_NAME, TYPE_STRING, b"gpg-pubkey"),
                (TAG_VERSION, TYPE_STRING, b"abc"),
            ]);
            for b in [bash(), key, b"\x00\x00".to_vec()] {
                c.execute("INSERT INTO Packages (blob) VALUES (?1)", [b])
                    .unwrap();
            }
        }
        let before: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let (p, notes) = read_db(&db, "/var/lib/rpm/rpmdb.sqlite");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].name, "bash");
        assert_eq!(notes.len(), 1, "{notes:?}");
        let after: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(before, after, "nothing written beside the database");
        let junk = d.path().join("junk.sqlite");
        std::fs::write(&junk, b"not sqlite at all").unwrap();
        let (p, notes) = read_db(&junk, "/junk");
        assert!(p.is_empty());
        assert_eq!(notes.len(), 1);
    }
}
