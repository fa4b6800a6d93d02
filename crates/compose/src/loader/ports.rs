//! A service's `ports:` entries into [`Port`]s. Short syntax is
//! `[[HOST_IP:]PUBLISHED:]TARGET[/PROTOCOL]` as docker's `ParsePortSpec`
//! reads it (an IPv6 host address in brackets, ranges on either side);
//! long syntax is `{target, published, host_ip, protocol, mode}`.
use std::net::IpAddr;

use super::typed::{Cx, Result};
use super::yaml::{KeyPath, Node, Value};
use crate::model::Port;

const PROTOCOLS: &[&str] = &["tcp", "udp", "sctp"];

/// One `ports:` entry, as one [`Port`] per container port.
pub(crate) fn ports(cx: &Cx, n: &Node, path: &KeyPath) -> Result<Vec<Port>> {
    match &n.value {
        Value::Map(_) => Ok(vec![long(cx, n, path)?]),
        Value::Int(_) => Ok(vec![Port {
            target: port_number(cx, n, path)?,
            protocol: "tcp".into(),
            mode: "ingress".into(),
            ..Port::default()
        }]),
        _ => {
            let spec = cx.string(n, path)?;
            parse_short(&spec)
                .map_err(|e| cx.invalid(n.pos, path, format!("invalid port {spec:?}: {e}")))
        }
    }
}

fn port_number(cx: &Cx, n: &Node, path: &KeyPath) -> Result<u16> {
    let p: u16 = cx.int_in(n, path)?;
    if p == 0 {
        return Err(cx.invalid(n.pos, path, "invalid port 0"));
    }
    Ok(p)
}

/// A port or range: `80` is `(80, 80)`.
fn range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().ok()?;
    let b: u16 = b.parse().ok()?;
    (a > 0 && a <= b).then_some((a, b))
}

/// The short syntax.
pub(crate) fn parse_short(spec: &str) -> Result<Vec<Port>, String> {
    let (raw, proto) = match spec.rsplit_once('/') {
        Some((raw, proto)) => (raw, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !PROTOCOLS.contains(&proto.as_str()) {
        return Err(format!("invalid protocol {proto:?}"));
    }
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let container = parts[n - 1];
    let (ip, host) = match n {
        1 => ("".to_string(), ""),
        2 => ("".to_string(), parts[0]),
        3 => (parts[0].to_string(), parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2]),
    };
    let ip = ip
        .strip_prefix('[')
        .and_then(|i| i.strip_suffix(']'))
        .map(str::to_string)
        .unwrap_or(ip);
    if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
        return Err(format!("invalid IP address {ip:?}"));
    }
    let (c_start, c_end) =
        range(container).ok_or_else(|| format!("invalid container port {container:?}"))?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(range(host).ok_or_else(|| format!("invalid host port {host:?}"))?)
    };
    let count = c_end - c_start;
    if let Some((h_start, h_end)) = host_range {
        if count != h_end - h_start && count != 0 {
            return Err("invalid ranges specified for container and host ports".into());
        }
    }
    Ok((0..=count)
        .map(|i| Port {
            target: c_start + i,
            published: host_range.map(|(hs, he)| {
                if count == 0 && he != hs {
                    format!("{hs}-{he}")
                } else {
                    (hs + i).to_string()
                }
            }),
            host_ip: (!ip.is_empty()).then(|| ip.clone()),
            protocol: proto.clone(),
            mode: "ingress".into(),
        })
        .collect())
}

fn long(cx: &Cx, n: &Node, path: &KeyPath) -> Result<Port> {
    let o = cx.obj(
        n,
        path,
        &[
            "name",
            "mode",
            "host_ip",
            "target",
            "published",
            "protocol",
            "app_protocol",
        ],
    )?;
    let (t, tp) = o
        .get("target")
        .ok_or_else(|| cx.invalid(n.pos, path, "target is required"))?;
    let target = port_number(cx, t, &tp)?;
    let published = match o.get("published") {
        Some((p, pp)) => {
            let s = cx.string(p, &pp)?;
            if range(&s).is_none() {
                return Err(cx.invalid(p.pos, &pp, format!("invalid published port {s:?}")));
            }
            Some(s)
        }
        None => None,
    };
    let protocol = o.string(cx, "protocol")?.unwrap_or_else(|| "tcp".into());
    if !PROTOCOLS.contains(&protocol.as_str()) {
        let (pn, pp) = o.get("protocol").unwrap_or((n, path.clone()));
        return Err(cx.invalid(pn.pos, &pp, format!("invalid protocol {protocol:?}")));
    }
    let mode = o.string(cx, "mode")?.unwrap_or_else(|| "ingress".into());
    if mode != "ingress" && mode != "host" {
        let (mn, mp) = o.get("mode").unwrap_or((n, path.clone()));
        return Err(cx.invalid(
            mn.pos,
            &mp,
            format!("invalid mode {mode:?} (ingress or host)"),
        ));
    }
    let host_ip = o.string(cx, "host_ip")?;
    if let Some(ip) = &host_ip {
        if ip.parse::<IpAddr>().is_err() {
            let (hn, hp) = o.get("host_ip").unwrap_or((n, path.clone()));
            return Err(cx.invalid(hn.pos, &hp, format!("invalid IP address {ip:?}")));
        }
    }
    Ok(Port {
        target,
        published,
        host_ip,
        protocol,
        mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(target: u16, published: Option<&str>, ip: Option<&str>, proto: &str) -> Port {
        Port {
            target,
            published: published.map(String::from),
            host_ip: ip.map(String::from),
            protocol: proto.into(),
            mode: "ingress".into(),
        }
    }

    #[test]
    fn short_forms() {
        assert_eq!(parse_short("80").unwrap(), vec![p(80, None, None, "tcp")]);
        assert_eq!(
            parse_short("8080:80").unwrap(),
            vec![p(80, Some("8080"), None, "tcp")]
        );
        assert_eq!(
            parse_short("127.0.0.1:8080:80").unwrap(),
            vec![p(80, Some("8080"), Some("127.0.0.1"), "tcp")]
        );
        assert_eq!(
            parse_short("127.0.0.1::80").unwrap(),
            vec![p(80, None, Some("127.0.0.1"), "tcp")]
        );
        assert_eq!(
            parse_short("[::1]:8080:80").unwrap(),
            vec![p(80, Some("8080"), Some("::1"), "tcp")]
        );
        assert_eq!(
            parse_short("::1:8080:80").unwrap(),
            vec![p(80, Some("8080"), Some("::1"), "tcp")]
        );
        assert_eq!(
            parse_short("53/udp").unwrap(),
            vec![p(53, None, None, "udp")]
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(
            parse_short("8080-8081:80-81/udp").unwrap(),
            vec![
                p(80, Some("8080"), None, "udp"),
                p(81, Some("8081"), None, "udp")
            ]
        );
        assert_eq!(
            parse_short("3000-3001").unwrap(),
            vec![p(3000, None, None, "tcp"), p(3001, None, None, "tcp")]
        );
        assert_eq!(
            parse_short("9000-9010:80").unwrap(),
            vec![p(80, Some("9000-9010"), None, "tcp")]
        );
        assert!(parse_short("8080-8082:80-81").is_err());
    }

    #[test]
    fn bad_specs() {
        assert_eq!(
            parse_short("abc").unwrap_err(),
            "invalid container port \"abc\""
        );
        assert_eq!(parse_short("x:80").unwrap_err(), "invalid host port \"x\"");
        assert_eq!(
            parse_short("80/icmp").unwrap_err(),
            "invalid protocol \"icmp\""
        );
        assert_eq!(
            parse_short("300.0.0.1:80:80").unwrap_err(),
            "invalid IP address \"300.0.0.1\""
        );
        assert!(parse_short("70000").is_err());
        assert!(parse_short("0").is_err());
    }
}
