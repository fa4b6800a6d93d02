//! The objects of a file that pods refer to: ConfigMaps, Secrets,
//! PersistentVolumeClaims and Services, read before any pod is planned.
use std::collections::BTreeMap;

use super::fields::Obj;
use crate::Error;

/// A Service's port as the pods' ports see it.
#[derive(Debug, Clone)]
pub(crate) struct ServicePort {
    /// `port`.
    pub port: u16,
    /// `targetPort`: a number, or a container port's name.
    pub target: Target,
    /// `nodePort`.
    pub node_port: Option<u16>,
    /// `tcp` or `udp`.
    pub proto: String,
}

/// `targetPort`.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Number(u16),
    Name(String),
}

/// A Service: which pods (by labels) and which ports.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub name: String,
    pub selector: BTreeMap<String, String>,
    pub ports: Vec<ServicePort>,
}

/// What the file holds besides workloads.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    /// ConfigMap name → key → bytes (`data` and `binaryData`).
    pub config_maps: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// Secret name → key → bytes (`data` decoded, `stringData`).
    pub secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// PersistentVolumeClaim name → labels for its volume.
    pub claims: BTreeMap<String, BTreeMap<String, String>>,
    /// Services, in file order.
    pub services: Vec<Service>,
}

impl Catalog {
    /// A ConfigMap document.
    pub fn config_map(&mut self, name: &str, doc: &Obj<'_>) -> Result<(), Error> {
        let mut data = BTreeMap::new();
        for (k, v) in doc.string_map("data")? {
            check_key(doc, "data", &k)?;
            data.insert(k, v.into_bytes());
        }
        for (k, v) in doc.string_map("binaryData")? {
            check_key(doc, "binaryData", &k)?;
            let bytes = base64_decode(&v)
                .ok_or_else(|| doc.invalid(&format!("binaryData.{k}"), "not base64"))?;
            data.insert(k, bytes);
        }
        doc.quiet("immutable");
        self.config_maps.insert(name.to_string(), data);
        Ok(())
    }

    /// A Secret document.
    pub fn secret(&mut self, name: &str, doc: &Obj<'_>) -> Result<(), Error> {
        let mut data = BTreeMap::new();
        for (k, v) in doc.string_map("data")? {
            check_key(doc, "data", &k)?;
            let bytes = base64_decode(&v).ok_or_else(|| {
                doc.invalid(
                    &format!("data.{k}"),
                    "not base64 (put plain text under stringData)",
                )
            })?;
            data.insert(k, bytes);
        }
        for (k, v) in doc.string_map("stringData")? {
            check_key(doc, "stringData", &k)?;
            data.insert(k, v.into_bytes());
        }
        match doc.str("type")?.as_deref() {
            None | Some("Opaque") => {}
            Some(t) => doc.warn(format!(
                "{}: {t}: berth keeps the data as an Opaque secret's",
                doc.at("type")
            )),
        }
        doc.quiet("immutable");
        self.secrets.insert(name.to_string(), data);
        Ok(())
    }

    /// A PersistentVolumeClaim document (its `spec`).
    pub fn claim(
        &mut self,
        name: &str,
        labels: BTreeMap<String, String>,
        spec: Option<Obj<'_>>,
    ) -> Result<(), Error> {
        if let Some(spec) = spec {
            // One host: every access mode holds.
            spec.quiet("accessModes");
            if let Some(r) = spec.obj("resources")? {
                if let Some(req) = r.obj("requests")? {
                    req.unapplied(
                        "storage",
                        "a local volume has no size (it grows on the host's filesystem)",
                    );
                }
                r.unapplied("limits", "a local volume has no size");
            }
            spec.unapplied(
                "storageClassName",
                "berth has one storage class (local volumes)",
            );
            spec.unapplied("selector", "berth binds no PersistentVolumes");
            spec.unapplied("volumeName", "berth binds no PersistentVolumes");
            match spec.str("volumeMode")?.as_deref() {
                None | Some("Filesystem") => {}
                Some(m) => {
                    return Err(spec.invalid(
                        "volumeMode",
                        format!("{m}: berth's volumes are filesystems only"),
                    ))
                }
            }
        }
        self.claims.insert(name.to_string(), labels);
        Ok(())
    }

    /// A Service document (its `spec`).
    pub fn service(&mut self, name: &str, spec: &Obj<'_>) -> Result<(), Error> {
        let selector: BTreeMap<String, String> = spec.string_map("selector")?.into_iter().collect();
        match spec.str("type")?.as_deref() {
            None | Some("ClusterIP" | "NodePort" | "LoadBalancer") => {}
            Some(t) => spec.warn(format!(
                "{}: {t}: berth publishes the ports on the host as for NodePort",
                spec.at("type")
            )),
        }
        spec.unapplied("clusterIP", "berth has no cluster network");
        spec.unapplied("clusterIPs", "berth has no cluster network");
        spec.unapplied("externalTrafficPolicy", "one host");
        spec.unapplied("sessionAffinity", "one host");
        spec.quiet("ipFamilies");
        spec.quiet("ipFamilyPolicy");
        let mut ports = Vec::new();
        for p in spec.list("ports")? {
            let port = port_number(&p, "port")?
                .ok_or_else(|| p.invalid("port", "missing (a Service port needs its port)"))?;
            let target = match p.get("targetPort") {
                None => Target::Number(port),
                Some(serde_json::Value::String(s)) => match s.parse::<u16>() {
                    Ok(n) => Target::Number(n),
                    Err(_) => Target::Name(s.clone()),
                },
                Some(_) => Target::Number(port_number(&p, "targetPort")?.unwrap_or(port)),
            };
            ports.push(ServicePort {
                port,
                target,
                node_port: port_number(&p, "nodePort")?,
                proto: protocol(&p)?,
            });
            p.quiet("name");
            p.unapplied("appProtocol", "berth forwards bytes");
        }
        self.services.push(Service {
            name: name.to_string(),
            selector,
            ports,
        });
        Ok(())
    }
}

/// A key becomes a file name in the object's volumes.
fn check_key(doc: &Obj<'_>, field: &str, key: &str) -> Result<(), Error> {
    if super::spec::key_ok(key) {
        Ok(())
    } else {
        Err(doc.invalid(
            &format!("{field}.{key}"),
            "not a valid key (letters, digits, -, _ and .; not . or ..)",
        ))
    }
}

/// A port number field.
pub(crate) fn port_number(o: &Obj<'_>, key: &str) -> Result<Option<u16>, Error> {
    match o.int(key)? {
        None => Ok(None),
        Some(n) if (1..=65535).contains(&n) => Ok(Some(n as u16)),
        Some(n) => Err(o.invalid(key, format!("{n} is not a port (1-65535)"))),
    }
}

/// `protocol`: TCP (default) or UDP, as berth's `-p` words.
pub(crate) fn protocol(o: &Obj<'_>) -> Result<String, Error> {
    match o.str("protocol")?.as_deref() {
        None | Some("TCP") => Ok("tcp".into()),
        Some("UDP") => Ok("udp".into()),
        Some(p) => Err(o.invalid(
            "protocol",
            format!("{p}: berth publishes TCP and UDP ports only"),
        )),
    }
}

/// Standard base64 (padding optional, whitespace skipped).
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for s in [&b"hello"[..], b"hi!", b"", b"\x00\xff\x10secret"] {
            assert_eq!(base64_decode(&crate::base64(s)).unwrap(), s);
        }
        assert!(base64_decode("not*base64").is_none());
    }
}
