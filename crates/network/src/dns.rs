//! The DNS responder of a user-defined network: it answers A queries for
//! the names of the network's containers and relays every other query to
//! the host's resolvers unchanged. One synchronous UDP loop, run by a
//! `berth` process per network in the host namespace on the bridge's
//! address (so the host's own resolvers, 127.0.0.53 included, are
//! reachable for it).
//!
//! Only the wire format needed is implemented (RFC 1035 §4): the header,
//! one question, A and AAAA answers with a compression pointer to the
//! question.
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

/// A parsed question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Lower-case name without the trailing dot.
    pub name: String,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// Offset just past the question.
    pub end: usize,
}

/// Parse a standard query with one question (anything else: None).
pub fn parse_query(buf: &[u8]) -> Option<Query> {
    if buf.len() < 12 {
        return None;
    }
    let flags = u16::from_be_bytes([buf[2], buf[3]]);
    let qdcount = u16::from_be_bytes([buf[4], buf[5]]);
    // A query (QR=0), standard opcode, one question.
    if flags & 0x8000 != 0 || (flags >> 11) & 0xf != 0 || qdcount != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *buf.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None; // no compression in questions
        }
        let label = buf.get(i..i + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        i += len;
        if i > 255 + 12 {
            return None;
        }
    }
    let qtype = u16::from_be_bytes([*buf.get(i)?, *buf.get(i + 1)?]);
    let qclass = u16::from_be_bytes([*buf.get(i + 2)?, *buf.get(i + 3)?]);
    Some(Query {
        name: labels.join("."),
        qtype,
        qclass,
        end: i + 4,
    })
}

/// The answer to `query` (the raw request `req`) with `ips` as A (IPv4)
/// and AAAA (IPv6) records (none: an empty NOERROR answer, e.g. for AAAA
/// of a known name without an IPv6 address).
pub fn answer(req: &[u8], query: &Query, ips: &[IpAddr], ttl: u32) -> Vec<u8> {
    let mut out = req[..query.end].to_vec();
    // QR=1, keep opcode and RD, RA=1, RCODE=0.
    let rd = req[2] & 0x01;
    out[2] = 0x80 | rd | (req[2] & 0x78);
    out[3] = 0x80;
    let n = ips.len() as u16;
    out[6..8].copy_from_slice(&n.to_be_bytes());
    out[8..10].copy_from_slice(&0u16.to_be_bytes());
    out[10..12].copy_from_slice(&0u16.to_be_bytes());
    for ip in ips {
        let (kind, data) = match ip {
            IpAddr::V4(a) => (TYPE_A, a.octets().to_vec()),
            IpAddr::V6(a) => (TYPE_AAAA, a.octets().to_vec()),
        };
        out.extend_from_slice(&[0xc0, 0x0c]); // the name in the question
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(&data);
    }
    out
}

/// A SERVFAIL answer (the upstream did not reply).
fn servfail(req: &[u8], query: &Query) -> Vec<u8> {
    let mut out = answer(req, query, &[], 0);
    out[3] = 0x82;
    out
}

/// The host's resolvers (`/etc/resolv.conf`; systemd-resolved's stub is
/// fine here, since the responder runs in the host's namespace).
pub fn host_resolvers() -> Vec<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// `/etc/resolv.conf` for a container that asks the host's resolvers
/// directly (the default bridge, as Docker): loopback nameservers cannot be
/// reached from the container's namespace, so systemd-resolved's stub
/// (127.0.0.53) is replaced by its upstream list (`resolved`, the content
/// of /run/systemd/resolve/resolv.conf) and other loopback ones dropped;
/// with none left, Docker's fallback (8.8.8.8, 8.8.4.4).
pub fn container_resolv_conf(host: &str, resolved: Option<&str>) -> String {
    let is_stub = host
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["nameserver", "127.0.0.53"]);
    let text = match (is_stub, resolved) {
        (true, Some(r)) => r,
        _ => host,
    };
    let mut out = String::new();
    let mut servers = 0;
    for l in text.lines() {
        let mut f = l.split_whitespace();
        if f.next() == Some("nameserver") {
            let loopback = f
                .next()
                .and_then(|a| a.parse::<std::net::IpAddr>().ok())
                .is_none_or(|ip| ip.is_loopback());
            if loopback {
                continue;
            }
            servers += 1;
        }
        out.push_str(l);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

/// A REFUSED answer (names we do not relay).
fn refused(req: &[u8], query: &Query) -> Vec<u8> {
    let mut out = answer(req, query, &[], 0);
    out[3] = 0x85;
    out
}

/// What the responder does with a name that is not a container's.
#[derive(Debug, Clone, Copy)]
pub enum Others<'a> {
    /// Relay to these resolvers (SERVFAIL when none answers).
    Relay(&'a [SocketAddr]),
    /// Answer REFUSED: an `--internal` network has no way out, by DNS
    /// either (moby's CVE-2024-29018 relayed them through the host).
    Refuse,
}

/// Serve on `sock` until `keep_going` says stop (asked about once a
/// second). `lookup` maps a name to addresses (None: not ours, see
/// `others`).
pub fn serve(
    sock: &UdpSocket,
    others: Others<'_>,
    mut lookup: impl FnMut(&str, SocketAddr) -> Option<Vec<IpAddr>>,
    mut keep_going: impl FnMut() -> bool,
) -> std::io::Result<()> {
    sock.set_read_timeout(Some(Duration::from_secs(1)))?;
    let relay = UdpSocket::bind("0.0.0.0:0")?;
    relay.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 4096];
    let mut rbuf = [0u8; 4096];
    loop {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                if !keep_going() {
                    return Ok(());
                }
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let req = &buf[..n];
        let Some(q) = parse_query(req) else {
            continue;
        };
        if q.qclass == CLASS_IN && (q.qtype == TYPE_A || q.qtype == TYPE_AAAA) {
            if let Some(ips) = lookup(&q.name, from) {
                let v6 = q.qtype == TYPE_AAAA;
                let ips: Vec<IpAddr> = ips.into_iter().filter(|ip| ip.is_ipv6() == v6).collect();
                let _ = sock.send_to(&answer(req, &q, &ips, 600), from);
                continue;
            }
        }
        let upstreams = match others {
            Others::Relay(u) => u,
            Others::Refuse => {
                let _ = sock.send_to(&refused(req, &q), from);
                continue;
            }
        };
        // Not ours: relay to the first upstream that answers.
        let mut replied = false;
        for up in upstreams {
            if relay.send_to(req, up).is_err() {
                continue;
            }
            if let Ok((m, _)) = relay.recv_from(&mut rbuf) {
                if m >= 2 && rbuf[..2] == req[..2] {
                    let _ = sock.send_to(&rbuf[..m], from);
                    replied = true;
                    break;
                }
            }
        }
        if !replied {
            let _ = sock.send_to(&servfail(req, &q), from);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_resolv_conf_skips_loopback() {
        let host = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n";
        let up = "nameserver 10.0.0.1\nnameserver ::1\nsearch lan\n";
        assert_eq!(
            container_resolv_conf(host, Some(up)),
            "nameserver 10.0.0.1\nsearch lan\n"
        );
        assert_eq!(
            container_resolv_conf("nameserver 127.0.0.1\n", None),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(
            container_resolv_conf("nameserver 192.168.1.1\n", None),
            "nameserver 192.168.1.1\n"
        );
    }

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q
    }

    #[test]
    fn parse_and_answer() {
        let req = query("Web.example", TYPE_A);
        let q = parse_query(&req).unwrap();
        assert_eq!(q.name, "web.example");
        assert_eq!(q.qtype, TYPE_A);
        let a = answer(&req, &q, &["10.1.2.3".parse().unwrap()], 600);
        assert_eq!(&a[..2], &[0x12, 0x34]);
        assert_eq!(a[2] & 0x80, 0x80, "QR set");
        assert_eq!(a[3] & 0x0f, 0, "NOERROR");
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 1);
        assert_eq!(&a[a.len() - 4..], &[10, 1, 2, 3]);
        assert!(parse_query(&a).is_none(), "answers are not queries");
        assert!(parse_query(&req[..10]).is_none());
        let mut bad = req.clone();
        bad[12] = 200;
        assert!(parse_query(&bad).is_none());
    }

    #[test]
    fn serves_our_names_over_udp() {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut left = 3;
            serve(
                &sock,
                Others::Relay(&[]),
                |n, _| (n == "web").then(|| vec!["10.9.9.9".parse().unwrap()]),
                move || {
                    left -= 1;
                    left > 0
                },
            )
        });
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        c.send_to(&query("web", TYPE_A), addr).unwrap();
        let mut b = [0u8; 512];
        let n = c.recv(&mut b).unwrap();
        assert_eq!(&b[n - 4..n], &[10, 9, 9, 9]);
        // Unknown, no upstream: SERVFAIL.
        c.send_to(&query("elsewhere.example", TYPE_A), addr)
            .unwrap();
        let n = c.recv(&mut b).unwrap();
        assert_eq!(b[3] & 0x0f, 2);
        assert!(n >= 12);
        server.join().unwrap().unwrap();
    }

    #[test]
    fn refuses_other_names_when_told() {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        // An upstream that would answer anything: it must never be asked.
        let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
        upstream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let server = std::thread::spawn(move || {
            let mut left = 3;
            serve(
                &sock,
                Others::Refuse,
                |n, _| (n == "web").then(|| vec!["10.9.9.9".parse().unwrap()]),
                move || {
                    left -= 1;
                    left > 0
                },
            )
        });
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut b = [0u8; 512];
        c.send_to(&query("web", TYPE_A), addr).unwrap();
        let n = c.recv(&mut b).unwrap();
        assert_eq!(&b[n - 4..n], &[10, 9, 9, 9]);
        c.send_to(&query("elsewhere.example", TYPE_A), addr)
            .unwrap();
        c.recv(&mut b).unwrap();
        assert_eq!(b[3] & 0x0f, 5, "REFUSED");
        let mut ub = [0u8; 512];
        assert!(upstream.recv(&mut ub).is_err(), "relayed upstream");
        server.join().unwrap().unwrap();
    }
}
