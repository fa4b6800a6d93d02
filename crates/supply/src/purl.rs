//! Package URLs, as the purl specification writes them
//! (<https://github.com/package-url/purl-spec>): `pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS`,
//! each part percent-encoded, qualifiers sorted by key.
use crate::{Ecosystem, Package};

/// The distribution an image says it is (`/etc/os-release`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Distro {
    /// `ID` (debian, ubuntu, alpine, fedora…).
    pub id: String,
    /// `VERSION_ID` (12, 3.19.1…), else `VERSION_CODENAME`.
    pub version: Option<String>,
}

impl Distro {
    /// Parse an os-release file.
    pub fn parse(text: &str) -> Distro {
        let mut d = Distro::default();
        let mut codename = None;
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
            match k.trim() {
                "ID" => d.id = v,
                "VERSION_ID" if !v.is_empty() => d.version = Some(v),
                "VERSION_CODENAME" if !v.is_empty() => codename = Some(v),
                _ => {}
            }
        }
        if d.version.is_none() {
            d.version = codename;
        }
        d
    }

    /// The `distro` qualifier: `debian-12`.
    fn qualifier(&self) -> Option<String> {
        if self.id.is_empty() {
            return None;
        }
        Some(match &self.version {
            Some(v) => format!("{}-{v}", self.id),
            None => self.id.clone(),
        })
    }
}

/// Percent-encode everything but the purl spec's unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Assemble a purl from its parts (namespace segments encoded one by one).
pub fn build(
    ty: &str,
    namespace: Option<&str>,
    name: &str,
    version: Option<&str>,
    qualifiers: &[(&str, String)],
) -> String {
    let mut s = format!("pkg:{ty}/");
    if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
        for seg in ns.split('/').filter(|s| !s.is_empty()) {
            s.push_str(&encode(seg));
            s.push('/');
        }
    }
    s.push_str(&encode(name));
    if let Some(v) = version.filter(|v| !v.is_empty()) {
        s.push('@');
        s.push_str(&encode(v));
    }
    let mut q: Vec<&(&str, String)> = qualifiers.iter().filter(|(_, v)| !v.is_empty()).collect();
    q.sort_by_key(|(k, _)| *k);
    for (i, (k, v)) in q.iter().enumerate() {
        s.push(if i == 0 { '?' } else { '&' });
        s.push_str(k);
        s.push('=');
        s.push_str(&encode(v));
    }
    s
}

/// The purl of `p` in an image of distribution `distro`.
pub fn of(p: &Package, distro: &Distro) -> String {
    let arch = || ("arch", p.arch.clone().unwrap_or_default());
    let dq = || ("distro", distro.qualifier().unwrap_or_default());
    let vendor = |fallback: &'static str| {
        if distro.id.is_empty() {
            fallback.to_string()
        } else {
            distro.id.clone()
        }
    };
    match p.ecosystem {
        Ecosystem::Deb => {
            let upstream = p
                .source
                .clone()
                .filter(|s| *s != p.name)
                .unwrap_or_default();
            build(
                "deb",
                Some(&vendor("debian")),
                &p.name,
                Some(&p.version),
                &[arch(), dq(), ("upstream", upstream)],
            )
        }
        Ecosystem::Apk => build(
            "apk",
            Some(&vendor("alpine")),
            &p.name,
            Some(&p.version),
            &[arch(), dq()],
        ),
        Ecosystem::Rpm => {
            let (epoch, version) = match p.version.split_once(':') {
                Some((e, v)) if e.bytes().all(|b| b.is_ascii_digit()) => (e.to_string(), v),
                _ => (String::new(), p.version.as_str()),
            };
            build(
                "rpm",
                Some(&vendor("rpm")),
                &p.name,
                Some(version),
                &[arch(), dq(), ("epoch", epoch)],
            )
        }
        Ecosystem::Python => {
            // The spec: lowercase, '_' as '-'.
            let name = p.name.to_lowercase().replace('_', "-");
            build("pypi", None, &name, Some(&p.version), &[])
        }
        Ecosystem::Npm => {
            let (scope, name) = match p.name.split_once('/') {
                Some((s, n)) if s.starts_with('@') => (Some(s), n),
                _ => (None, p.name.as_str()),
            };
            build("npm", scope, name, Some(&p.version), &[])
        }
        Ecosystem::Go => {
            let (ns, name) = match p.name.rsplit_once('/') {
                Some((ns, n)) => (Some(ns), n),
                None => (None, p.name.as_str()),
            };
            let version = Some(p.version.as_str()).filter(|v| *v != "(devel)");
            build("golang", ns, name, version, &[])
        }
        Ecosystem::Cargo => build("cargo", None, &p.name, Some(&p.version), &[]),
        Ecosystem::Maven => build("maven", p.group.as_deref(), &p.name, Some(&p.version), &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(e: Ecosystem, name: &str, version: &str) -> Package {
        Package::new(e, name, version, "/x")
    }

    #[test]
    fn purls_as_the_spec_writes_them() {
        let deb12 = Distro::parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        );
        let mut libc = pkg(Ecosystem::Deb, "libc6", "2.36-9+deb12u4");
        libc.arch = Some("amd64".into());
        libc.source = Some("glibc".into());
        assert_eq!(
            of(&libc, &deb12),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"
        );
        let mut e = pkg(Ecosystem::Deb, "bsdutils", "1:2.38.1-5+b1");
        e.arch = Some("amd64".into());
        e.source = Some("bsdutils".into());
        assert_eq!(
            of(&e, &deb12),
            "pkg:deb/debian/bsdutils@1%3A2.38.1-5%2Bb1?arch=amd64&distro=debian-12"
        );
        let alpine = Distro::parse("ID=alpine\nVERSION_ID=3.19.1\n");
        let mut musl = pkg(Ecosystem::Apk, "musl", "1.2.4_git20230717-r4");
        musl.arch = Some("x86_64".into());
        assert_eq!(
            of(&musl, &alpine),
            "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19.1"
        );
        let fedora = Distro::parse("ID=fedora\nVERSION_ID=39\n");
        let mut bash = pkg(Ecosystem::Rpm, "bash", "1:5.2.15-5.fc39");
        bash.arch = Some("x86_64".into());
        assert_eq!(
            of(&bash, &fedora),
            "pkg:rpm/fedora/bash@5.2.15-5.fc39?arch=x86_64&distro=fedora-39&epoch=1"
        );
        let none = Distro::default();
        assert_eq!(
            of(&pkg(Ecosystem::Python, "Typing_Extensions", "4.0"), &none),
            "pkg:pypi/typing-extensions@4.0"
        );
        assert_eq!(
            of(&pkg(Ecosystem::Npm, "@babel/core", "7.1.0"), &none),
            "pkg:npm/%40babel/core@7.1.0"
        );
        assert_eq!(
            of(
                &pkg(Ecosystem::Go, "github.com/pkg/errors", "v0.9.1"),
                &none
            ),
            "pkg:golang/github.com/pkg/errors@v0.9.1"
        );
        assert_eq!(
            of(&pkg(Ecosystem::Go, "example.com/hello", "(devel)"), &none),
            "pkg:golang/example.com/hello"
        );
        let mut m = pkg(Ecosystem::Maven, "commons-lang3", "3.12.0");
        m.group = Some("org.apache.commons".into());
        assert_eq!(
            of(&m, &none),
            "pkg:maven/org.apache.commons/commons-lang3@3.12.0"
        );
        assert_eq!(
            of(&pkg(Ecosystem::Cargo, "serde", "1.0.0"), &none),
            "pkg:cargo/serde@1.0.0"
        );
    }

    #[test]
    fn os_release_without_version_id_uses_the_codename() {
        let d = Distro::parse("ID=debian\nVERSION_CODENAME=trixie\n");
        assert_eq!(d.qualifier().as_deref(), Some("debian-trixie"));
    }
}
