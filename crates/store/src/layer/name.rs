//! What a tar entry's name means: a path inside the layer (never `..`,
//! a leading `/` is dropped), and whether its last component is an OCI
//! whiteout or opaque marker.
//!
//! See the OCI image spec, "Representing Changes: Whiteouts":
//! <https://github.com/opencontainers/image-spec/blob/main/layer.md#whiteouts>
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// Prefix of a whiteout file: `dir/.wh.name` hides `dir/name`.
const WHITEOUT: &[u8] = b".wh.";
/// Prefix of whiteout metadata (aufs `.wh..wh.plnk`, `.wh..wh.aufs`).
const WHITEOUT_META: &[u8] = b".wh..wh.";
/// The opaque marker: `dir/.wh..wh..opq` hides everything below `dir` in
/// lower layers.
const OPAQUE: &[u8] = b".wh..wh..opq";

/// What an entry asks for, by its name.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Role<'a> {
    /// The layer root itself (`.`, `./`, `/`, or an empty name).
    Root,
    /// An ordinary entry named `name` in the parent directory.
    Plain(&'a OsStr),
    /// A whiteout hiding `name` of the parent directory in lower layers.
    Whiteout(&'a OsStr),
    /// An opaque marker for the parent directory.
    Opaque,
    /// aufs bookkeeping (`.wh..wh.*` other than the opaque marker, or
    /// anything below such a directory): not part of the image.
    Meta,
}

/// An entry name split into the components of its parent directory and the
/// role of its last component.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct EntryName<'a> {
    pub parent: Vec<&'a OsStr>,
    pub role: Role<'a>,
}

/// The normal components of `raw`: empty and `.` components are dropped
/// (so a leading `/` makes no difference); `..` is refused.
pub(super) fn components(raw: &[u8]) -> Result<Vec<&OsStr>, &'static str> {
    let mut out = Vec::with_capacity(8);
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("its path contains \"..\""),
            c => out.push(OsStr::from_bytes(c)),
        }
    }
    Ok(out)
}

/// Parse an entry's name.
pub(super) fn parse(raw: &[u8]) -> Result<EntryName<'_>, &'static str> {
    let mut parent = components(raw)?;
    let Some(last) = parent.pop() else {
        return Ok(EntryName {
            parent,
            role: Role::Root,
        });
    };
    let last_bytes = last.as_bytes();
    let role = if parent
        .iter()
        .any(|c| c.as_bytes().starts_with(WHITEOUT_META))
    {
        Role::Meta
    } else if last_bytes == OPAQUE {
        Role::Opaque
    } else if last_bytes.starts_with(WHITEOUT_META) {
        Role::Meta
    } else if let Some(hidden) = last_bytes.strip_prefix(WHITEOUT) {
        if matches!(hidden, b"" | b"." | b"..") {
            return Err("malformed whiteout name");
        }
        Role::Whiteout(OsStr::from_bytes(hidden))
    } else {
        Role::Plain(last)
    };
    Ok(EntryName { parent, role })
}

/// Parse an entry's name with no whiteout conventions: every name is an
/// ordinary file (a plain tar, not a layer).
pub(super) fn parse_plain(raw: &[u8]) -> Result<EntryName<'_>, &'static str> {
    let mut parent = components(raw)?;
    let role = match parent.pop() {
        Some(last) => Role::Plain(last),
        None => Role::Root,
    };
    Ok(EntryName { parent, role })
}

/// Parse a hardlink target: a path inside the layer naming an entry (not
/// the root).
pub(super) fn link_target(raw: &[u8]) -> Result<(Vec<&OsStr>, &OsStr), &'static str> {
    let mut parent = components(raw)?;
    match parent.pop() {
        Some(name) => Ok((parent, name)),
        None => Err("hardlink target is the layer root"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    #[test]
    fn plain_paths_are_normalised() {
        for raw in [
            "usr/bin/env",
            "/usr/bin/env",
            "./usr//bin/./env",
            "usr/bin/env/",
        ] {
            assert_eq!(
                parse(raw.as_bytes()).unwrap(),
                EntryName {
                    parent: vec![os("usr"), os("bin")],
                    role: Role::Plain(os("env"))
                },
                "{raw}"
            );
        }
    }

    #[test]
    fn root_names() {
        for raw in ["", ".", "./", "/", "//./"] {
            assert_eq!(parse(raw.as_bytes()).unwrap().role, Role::Root, "{raw}");
        }
    }

    #[test]
    fn dotdot_is_refused_anywhere() {
        for raw in [
            "..",
            "../x",
            "a/../b",
            "a/..",
            "/../etc/passwd",
            "a/b/../../..",
        ] {
            assert!(parse(raw.as_bytes()).is_err(), "{raw}");
            assert!(link_target(raw.as_bytes()).is_err(), "{raw}");
        }
        // Names that merely start with dots are ordinary.
        assert_eq!(parse(b"...").unwrap().role, Role::Plain(os("...")));
        assert_eq!(parse(b"..a").unwrap().role, Role::Plain(os("..a")));
    }

    #[test]
    fn whiteouts() {
        assert_eq!(
            parse(b"etc/.wh.passwd").unwrap(),
            EntryName {
                parent: vec![os("etc")],
                role: Role::Whiteout(os("passwd"))
            }
        );
        assert_eq!(parse(b"etc/.wh..wh..opq").unwrap().role, Role::Opaque);
        assert_eq!(parse(b".wh..wh..opq").unwrap().parent, Vec::<&OsStr>::new());
        assert_eq!(parse(b".wh..wh.plnk").unwrap().role, Role::Meta);
        assert_eq!(parse(b".wh..wh.plnk/123.456").unwrap().role, Role::Meta);
        // A whiteout-looking directory name is an ordinary directory.
        assert_eq!(
            parse(b".wh.etc/somefile").unwrap().role,
            Role::Plain(os("somefile"))
        );
        assert_eq!(parse(b".wh....").unwrap().role, Role::Whiteout(os("...")));
        for bad in [".wh.", ".wh..", ".wh...", "etc/.wh..", "etc/.wh..."] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn link_targets() {
        assert_eq!(
            link_target(b"/bin/tool").unwrap(),
            (vec![os("bin")], os("tool"))
        );
        assert!(link_target(b"./").is_err());
    }
}
