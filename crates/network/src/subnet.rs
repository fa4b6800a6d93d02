//! IPv4 and IPv6 subnets: parsing, membership, host addresses, and
//! picking a free one for a new network.
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 network, `addr/prefix` with the host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// `addr/prefix`; host bits of `addr` must be zero.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Subnet, String> {
        if !(8..=30).contains(&prefix) {
            return Err(format!(
                "prefix /{prefix} is not usable for a bridge network: use /8 to /30"
            ));
        }
        let s = Subnet { addr, prefix };
        if u32::from(addr) & !s.mask() != 0 {
            return Err(format!(
                "{addr}/{prefix} has host bits set: did you mean {}/{prefix}?",
                Ipv4Addr::from(u32::from(addr) & s.mask())
            ));
        }
        Ok(s)
    }

    /// The network address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    /// Number of addresses, network and broadcast included.
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix)
    }

    /// Is `ip` inside?
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    /// Do the two overlap?
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// The `n`th address (0 = the network address).
    pub fn nth(&self, n: u64) -> Option<Ipv4Addr> {
        (n < self.size()).then(|| Ipv4Addr::from(u32::from(self.addr) + n as u32))
    }

    /// The first host address (the default gateway, as Docker picks).
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + 1)
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }
}

impl FromStr for Subnet {
    type Err = String;
    fn from_str(s: &str) -> Result<Subnet, String> {
        let (a, p) = s.split_once('/').ok_or_else(|| {
            format!("invalid subnet {s:?}: expected CIDR notation such as 10.89.0.0/24")
        })?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("invalid subnet {s:?}: {a:?} is not an IPv4 address"))?;
        let prefix: u8 = p
            .parse()
            .map_err(|_| format!("invalid subnet {s:?}: {p:?} is not a prefix length"))?;
        Subnet::new(addr, prefix).map_err(|e| format!("invalid subnet {s:?}: {e}"))
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The pools new networks take their subnet from, as Docker's defaults:
/// 172.17–31.0.0/16, then 192.168.0–240.0/20 — we start at 172.18 so that
/// a host running Docker (docker0 on 172.17) never clashes, then 10.89+.
pub fn default_candidates() -> impl Iterator<Item = Subnet> {
    let a = (18..=31).map(|b| Subnet {
        addr: Ipv4Addr::new(172, b, 0, 0),
        prefix: 16,
    });
    let b = (0..=15).map(|i| Subnet {
        addr: Ipv4Addr::new(192, 168, i * 16, 0),
        prefix: 20,
    });
    let c = (89..=120).map(|i| Subnet {
        addr: Ipv4Addr::new(10, i, 0, 0),
        prefix: 16,
    });
    a.chain(b).chain(c)
}

/// The first candidate that overlaps none of `taken` (routes of the host,
/// subnets of other networks).
pub fn pick(taken: &[Subnet]) -> Option<Subnet> {
    default_candidates().find(|c| !taken.iter().any(|t| t.overlaps(c)))
}

/// What the host has taken already: its IPv4 routes and the networks of
/// its interfaces' addresses, links that are down included (a bridge
/// another berth root or engine has just made, before its route shows).
pub fn host_taken() -> Vec<Subnet> {
    let mut all = host_routes();
    if let Ok(mut nl) = crate::netlink::Netlink::open() {
        if let Ok(addrs) = nl.ipv4_addresses() {
            for (ip, prefix) in addrs {
                if prefix == 0 || prefix > 32 {
                    continue;
                }
                all.push(Subnet {
                    addr: masked(ip, prefix),
                    prefix,
                });
            }
        }
    }
    all
}

fn masked(ip: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(ip) & (u32::MAX << (32 - u32::from(prefix))))
}

/// The IPv4 routes of the host (`/proc/net/route`), as subnets; the
/// default route is left out.
pub fn host_routes() -> Vec<Subnet> {
    let Ok(text) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    parse_proc_route(&text)
}

fn parse_proc_route(text: &str) -> Vec<Subnet> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            // The kernel prints the network-order bytes as a host
            // (little-endian) u32.
            let dest = u32::from(Ipv4Addr::from(dest.to_le_bytes()));
            let mask = u32::from(Ipv4Addr::from(mask.to_le_bytes()));
            let prefix = mask.count_ones() as u8;
            if prefix == 0 {
                return None;
            }
            Some(Subnet {
                addr: Ipv4Addr::from(dest & mask),
                prefix,
            })
        })
        .collect()
}

/// The next free address of `subnet` for a container: neither the
/// network address, the broadcast address, the gateway nor one of
/// `used`, the lowest first and inside `range` if given (from its first
/// address, as Docker's IPAM).
pub fn next_free(
    subnet: &Subnet,
    range: Option<&Subnet>,
    gateway: Ipv4Addr,
    used: &std::collections::HashSet<Ipv4Addr>,
) -> Option<Ipv4Addr> {
    let scope = range.unwrap_or(subnet);
    (0..scope.size()).filter_map(|n| scope.nth(n)).find(|ip| {
        *ip != gateway
            && *ip != subnet.addr()
            && *ip != subnet.broadcast()
            && subnet.contains(*ip)
            && !used.contains(ip)
    })
}

/// An IPv6 network, `addr/prefix` with the host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet6 {
    addr: Ipv6Addr,
    prefix: u8,
}

impl Subnet6 {
    fn mask(&self) -> u128 {
        u128::MAX
            .checked_shl(128 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    /// The network address.
    pub fn addr(&self) -> Ipv6Addr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Is `ip` inside?
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & self.mask() == u128::from(self.addr)
    }

    /// Do the two overlap?
    pub fn overlaps(&self, other: &Subnet6) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// The `n`th address (0 = the network address).
    pub fn nth(&self, n: u128) -> Option<Ipv6Addr> {
        let size_bits = 128 - u32::from(self.prefix);
        if size_bits < 128 && n >> size_bits != 0 {
            return None;
        }
        Some(Ipv6Addr::from(u128::from(self.addr) + n))
    }

    /// The first host address (the gateway Docker gives a network made
    /// with an IPv6 subnet and no `--gateway`).
    pub fn first_host(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.addr) + 1)
    }
}

impl FromStr for Subnet6 {
    type Err = String;
    fn from_str(s: &str) -> Result<Subnet6, String> {
        let (a, p) = s.split_once('/').ok_or_else(|| {
            format!("invalid subnet {s:?}: expected CIDR notation such as fd00:1::/64")
        })?;
        let addr: Ipv6Addr = a
            .parse()
            .map_err(|_| format!("invalid subnet {s:?}: {a:?} is not an IPv6 address"))?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| (1..=126).contains(p))
            .ok_or_else(|| format!("invalid subnet {s:?}: {p:?} is not a prefix length (1-126)"))?;
        let sub = Subnet6 { addr, prefix };
        let net = Ipv6Addr::from(u128::from(addr) & sub.mask());
        if net != addr {
            return Err(format!(
                "invalid subnet {s:?}: host bits set: did you mean {net}/{prefix}?"
            ));
        }
        Ok(sub)
    }
}

impl std::fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The next free IPv6 address of `subnet`: not the network address
/// (the subnet-router anycast), the gateway or one of `used`, the lowest
/// first, inside `range` if given (from its first address, as Docker's
/// IPAM).
pub fn next_free6(
    subnet: &Subnet6,
    range: Option<&Subnet6>,
    gateway: Ipv6Addr,
    used: &std::collections::HashSet<Ipv6Addr>,
) -> Option<Ipv6Addr> {
    let scope = range.unwrap_or(subnet);
    // Enough to find a free one among the few thousand a bridge can hold.
    (0u128..1 << 20).map_while(|n| scope.nth(n)).find(|ip| {
        *ip != gateway && *ip != subnet.addr() && subnet.contains(*ip) && !used.contains(ip)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn parse_and_members() {
        let s: Subnet = "10.89.0.0/24".parse().unwrap();
        assert!(s.contains("10.89.0.200".parse().unwrap()));
        assert!(!s.contains("10.89.1.1".parse().unwrap()));
        assert_eq!(s.first_host(), Ipv4Addr::new(10, 89, 0, 1));
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 89, 0, 255));
        assert!("10.89.0.1/24"
            .parse::<Subnet>()
            .unwrap_err()
            .contains("host bits"));
        assert!("10.89.0.0".parse::<Subnet>().is_err());
        assert!("10.89.0.0/31".parse::<Subnet>().is_err());
        assert!("x/24".parse::<Subnet>().is_err());
        let big: Subnet = "10.0.0.0/8".parse().unwrap();
        assert!(big.overlaps(&s) && s.overlaps(&big));
    }

    #[test]
    fn picks_around_taken_subnets() {
        let taken: Vec<Subnet> = vec![
            "172.18.0.0/16".parse().unwrap(),
            "172.19.5.0/24".parse().unwrap(),
        ];
        assert_eq!(pick(&taken).unwrap().to_string(), "172.20.0.0/16");
        assert_eq!(pick(&[]).unwrap().to_string(), "172.18.0.0/16");
    }

    #[test]
    fn proc_route_parsing() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    eth0\t0000000A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
                    docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let r = parse_proc_route(text);
        assert_eq!(
            r.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            ["10.0.0.0/16", "172.17.0.0/16"]
        );
    }

    #[test]
    fn addresses_are_never_handed_out_twice() {
        let s: Subnet = "10.89.0.0/29".parse().unwrap();
        let gw = s.first_host();
        let mut used = HashSet::new();
        let mut got = Vec::new();
        while let Some(ip) = next_free(&s, None, gw, &used) {
            used.insert(ip);
            got.push(ip.to_string());
        }
        assert_eq!(
            got,
            [
                "10.89.0.2",
                "10.89.0.3",
                "10.89.0.4",
                "10.89.0.5",
                "10.89.0.6"
            ]
        );
        // Docker's IPAM starts at the range's first address.
        let range: Subnet = "10.89.0.4/30".parse().unwrap();
        assert_eq!(
            next_free(&s, Some(&range), gw, &HashSet::new())
                .unwrap()
                .to_string(),
            "10.89.0.4"
        );
        // The network address is never handed out, even in a range.
        let range: Subnet = "10.89.0.0/30".parse().unwrap();
        assert_eq!(
            next_free(&s, Some(&range), gw, &HashSet::new())
                .unwrap()
                .to_string(),
            "10.89.0.2"
        );
    }

    #[test]
    fn ipv6_subnets_and_addresses() {
        let s: Subnet6 = "fd19:10::/64".parse().unwrap();
        assert!(s.contains("fd19:10::1:5".parse().unwrap()));
        assert!(!s.contains("fd19:11::1".parse().unwrap()));
        assert_eq!(s.first_host().to_string(), "fd19:10::1");
        assert!("fd19:10::1/64"
            .parse::<Subnet6>()
            .unwrap_err()
            .contains("host bits"));
        assert!("10.0.0.0/8".parse::<Subnet6>().is_err());
        let gw = s.first_host();
        let mut used = HashSet::new();
        let a = next_free6(&s, None, gw, &used).unwrap();
        assert_eq!(a.to_string(), "fd19:10::2");
        used.insert(a);
        assert_eq!(
            next_free6(&s, None, gw, &used).unwrap().to_string(),
            "fd19:10::3"
        );
        let r: Subnet6 = "fd19:10::100/120".parse().unwrap();
        assert_eq!(
            next_free6(&s, Some(&r), "fd19:10::fe".parse().unwrap(), &used)
                .unwrap()
                .to_string(),
            "fd19:10::100"
        );
        let big: Subnet6 = "fd19::/16".parse().unwrap();
        assert!(big.overlaps(&s) && s.overlaps(&big));
    }
}
