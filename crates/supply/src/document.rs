//! An SBOM written in the format asked for: SPDX 2.3 JSON, CycloneDX 1.6
//! JSON or a table.
use std::str::FromStr;

use crate::{cyclonedx, spdx, Sbom, SupplyError};

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// SPDX 2.3 JSON.
    SpdxJson,
    /// CycloneDX 1.6 JSON.
    CycloneDxJson,
    /// NAME VERSION TYPE, one package a line.
    Table,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "spdx-json" | "spdx" => Ok(Format::SpdxJson),
            "cyclonedx-json" | "cyclonedx" => Ok(Format::CycloneDxJson),
            "table" => Ok(Format::Table),
            _ => Err(format!(
                "unknown SBOM format {s:?}: use spdx-json, cyclonedx-json or table"
            )),
        }
    }
}

/// A random (version 4) UUID.
fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

impl Sbom {
    /// The document in `format`, ending with a newline.
    pub fn render(&self, format: Format) -> Result<String, SupplyError> {
        let created = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let mut out = match format {
            Format::SpdxJson => {
                serde_json::to_string_pretty(&spdx::document(self, &created, &uuid_v4()))?
            }
            Format::CycloneDxJson => {
                serde_json::to_string_pretty(&cyclonedx::document(self, &created, &uuid_v4()))?
            }
            Format::Table => return Ok(self.table()),
        };
        out.push('\n');
        Ok(out)
    }

    /// NAME VERSION TYPE, columns padded as Docker's tables are.
    pub fn table(&self) -> String {
        let rows: Vec<[&str; 3]> = self
            .packages
            .iter()
            .map(|p| [p.name.as_str(), p.version.as_str(), p.ecosystem.type_name()])
            .collect();
        let mut w = [4, 7];
        for r in &rows {
            w[0] = w[0].max(r[0].chars().count());
            w[1] = w[1].max(r[1].chars().count());
        }
        let mut out = format!(
            "{:<w0$}   {:<w1$}   TYPE\n",
            "NAME",
            "VERSION",
            w0 = w[0],
            w1 = w[1]
        );
        for r in rows {
            out.push_str(&format!(
                "{:<w0$}   {:<w1$}   {}\n",
                r[0],
                r[1],
                r[2],
                w0 = w[0],
                w1 = w[1]
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ecosystem, ImageInfo, Package};

    fn sbom() -> Sbom {
        let mut p = Package::new(Ecosystem::Deb, "libc6", "2.36-9", "/var/lib/dpkg/status");
        p.purl = "pkg:deb/debian/libc6@2.36-9?arch=amd64".into();
        p.layer = format!("sha256:{}", "ab".repeat(32));
        p.licenses = vec!["LGPL-2.1+".into(), "public-domain".into()];
        let mut q = Package::new(
            Ecosystem::Npm,
            "left-pad",
            "1.3.0",
            "/app/node_modules/left-pad/package.json",
        );
        q.purl = "pkg:npm/left-pad@1.3.0".into();
        Sbom {
            image: ImageInfo {
                name: "app:1".into(),
                id: format!("sha256:{}", "cd".repeat(32)),
                ..ImageInfo::default()
            },
            distro: None,
            layers: vec![p.layer.clone()],
            packages: vec![p, q],
            notes: Vec::new(),
            cached_layers: 0,
        }
    }

    #[test]
    fn the_three_formats() {
        let s = sbom();
        assert_eq!(
            s.render(Format::Table).unwrap(),
            "NAME       VERSION   TYPE\nlibc6      2.36-9    deb\nleft-pad   1.3.0     npm\n"
        );
        let spdx: serde_json::Value =
            serde_json::from_str(&s.render(Format::SpdxJson).unwrap()).unwrap();
        assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
        assert_eq!(spdx["packages"].as_array().unwrap().len(), 3);
        assert_eq!(
            spdx["packages"][1]["licenseDeclared"],
            "LGPL-2.1-or-later AND LicenseRef-public-domain"
        );
        assert_eq!(
            spdx["packages"][1]["externalRefs"][0]["referenceLocator"],
            "pkg:deb/debian/libc6@2.36-9?arch=amd64"
        );
        assert_eq!(
            spdx["hasExtractedLicensingInfos"][0]["licenseId"],
            "LicenseRef-public-domain"
        );
        assert_eq!(spdx["relationships"].as_array().unwrap().len(), 3);
        let cdx: serde_json::Value =
            serde_json::from_str(&s.render(Format::CycloneDxJson).unwrap()).unwrap();
        assert_eq!(cdx["specVersion"], "1.6");
        assert_eq!(cdx["metadata"]["component"]["type"], "container");
        assert_eq!(
            cdx["components"][0]["licenses"][0]["license"]["id"],
            "LGPL-2.1-or-later"
        );
        assert_eq!(
            cdx["components"][0]["licenses"][1]["license"]["name"],
            "public-domain"
        );
        assert_eq!(
            cdx["components"][0]["properties"][1]["value"],
            s.packages[0].layer.as_str()
        );
        assert!("nope"
            .parse::<Format>()
            .unwrap_err()
            .contains("spdx-json, cyclonedx-json or table"));
    }
}
