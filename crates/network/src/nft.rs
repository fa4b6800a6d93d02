//! Published ports in berth's own nftables table (`ip berth`): DNAT from
//! the host's addresses (prerouting for other hosts, output for the host
//! itself), and masquerade for connections from 127.0.0.0/8 so that the
//! container can answer them. Every rule carries the comment
//! `berth:<container id>` and is removed by it. No other table or chain is
//! read or written.
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// The table.
pub const TABLE: &str = "berth";

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    /// Host address to match (None: every local address).
    pub host_ip: Option<Ipv4Addr>,
    /// Host port.
    pub host_port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
    /// The container's address.
    pub container_ip: Ipv4Addr,
    /// The container's port.
    pub container_port: u16,
}

fn nft(script: &str) -> std::io::Result<String> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("running nft (apt-get install nftables): {e}"),
            )
        })?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "nft: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

const SETUP: &str = "add table ip berth
add chain ip berth prerouting { type nat hook prerouting priority dstnat; policy accept; }
add chain ip berth output { type nat hook output priority -100; policy accept; }
add chain ip berth postrouting { type nat hook postrouting priority srcnat; policy accept; }
add chain ip berth forward { type filter hook forward priority filter; policy accept; }
add chain ip berth ports
add chain ip berth masq
add set ip berth bridges { type ifname; }
flush chain ip berth prerouting
flush chain ip berth output
flush chain ip berth postrouting
add rule ip berth prerouting fib daddr type local jump ports
add rule ip berth output fib daddr type local jump ports
add rule ip berth postrouting jump masq
";

/// The rules of a bridge network: outbound masquerade (unless internal or
/// `enable_ip_masquerade=false`), no traffic between two berth bridges,
/// and for an internal network no traffic in or out of its bridge at all;
/// with IPv6 the same isolation in `ip6 berth`; with `enable_icc=false`
/// no frames between the bridge's ports (`bridge berth`, whatever the
/// protocol and without needing `br_netfilter`).
fn network_lines(r: &crate::firewall::NetworkRules<'_>) -> String {
    let (id, bridge, subnet) = (r.id, r.bridge, r.subnet);
    let c = format!("comment \"berth-net:{id}\"");
    let mut s = String::new();
    let mut families = vec!["ip"];
    if r.ipv6 {
        s.push_str(SETUP6);
        families.push("ip6");
    }
    for f in families {
        s.push_str(&format!(
            "add element {f} berth bridges {{ \"{bridge}\" }}\n"
        ));
        if r.internal {
            s.push_str(&format!(
                "add rule {f} berth forward iifname \"{bridge}\" oifname != \"{bridge}\" drop {c}\n"
            ));
            s.push_str(&format!(
                "add rule {f} berth forward oifname \"{bridge}\" iifname != \"{bridge}\" drop {c}\n"
            ));
        } else {
            s.push_str(&format!(
                "add rule {f} berth forward iifname \"{bridge}\" oifname != \"{bridge}\" oifname @bridges drop {c}\n"
            ));
        }
    }
    if !r.internal && r.masquerade {
        s.push_str(&format!(
            "add rule ip berth masq ip saddr {subnet} oifname != \"{bridge}\" masquerade {c}\n"
        ));
    }
    if !r.icc {
        s.push_str(SETUP_BRIDGE);
        s.push_str(&format!(
            "add rule bridge berth forward ibrname \"{bridge}\" drop {c}\n"
        ));
    }
    s
}

/// `ip6 berth`: isolation of berth's IPv6 bridges (no NAT: Docker does
/// none for IPv6 either).
const SETUP6: &str = "add table ip6 berth
add chain ip6 berth forward { type filter hook forward priority filter; policy accept; }
add set ip6 berth bridges { type ifname; }
";

/// `bridge berth`: frames between ports of a bridge (`enable_icc=false`).
const SETUP_BRIDGE: &str = "add table bridge berth
add chain bridge berth forward { type filter hook forward priority filter; policy accept; }
";

/// The families of berth's tables.
const FAMILIES: [&str; 3] = ["ip", "ip6", "bridge"];

/// Install the rules of network `r.id` (see [`network_lines`]); the rules
/// it had are replaced.
pub fn network_up(r: &crate::firewall::NetworkRules<'_>) -> std::io::Result<()> {
    let mut old = String::new();
    for f in FAMILIES {
        if let Some(l) = listing_of(f)? {
            old.push_str(&deletions_marked(
                f,
                &l,
                &format!("comment \"berth-net:{}\"", r.id),
            ));
        }
    }
    nft(&format!("{SETUP}{old}{}", network_lines(r)))?;
    Ok(())
}

/// Remove the rules of network `id`.
pub fn network_down(id: &str, bridge: &str) -> std::io::Result<()> {
    let mut script = String::new();
    for f in FAMILIES {
        let Some(l) = listing_of(f)? else {
            continue;
        };
        script.push_str(&deletions_marked(
            f,
            &l,
            &format!("comment \"berth-net:{id}\""),
        ));
        if f != "bridge" && l.contains(&format!("\"{bridge}\"")) {
            script.push_str(&format!(
                "delete element {f} berth bridges {{ \"{bridge}\" }}\n"
            ));
        }
    }
    if !script.is_empty() {
        nft(&script)?;
    }
    Ok(())
}

/// `nft -a list table ip berth`, None if the table does not exist.
fn listing() -> std::io::Result<Option<String>> {
    listing_of("ip")
}

/// `nft -a list table FAMILY berth`, None if the table does not exist.
fn listing_of(family: &str) -> std::io::Result<Option<String>> {
    let out = Command::new("nft")
        .args(["-a", "list", "table", family, TABLE])
        .stderr(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn rule_lines(id: &str, rules: &[PortRule]) -> String {
    let mut s = String::new();
    for r in rules {
        let daddr = r
            .host_ip
            .map(|ip| format!("ip daddr {ip} "))
            .unwrap_or_default();
        s.push_str(&format!(
            "add rule ip berth ports {daddr}{p} dport {hp} dnat to {cip}:{cp} comment \"berth:{id}\"\n",
            p = r.proto,
            hp = r.host_port,
            cip = r.container_ip,
            cp = r.container_port,
        ));
        s.push_str(&format!(
            "add rule ip berth masq ip saddr 127.0.0.0/8 ip daddr {cip} {p} dport {cp} masquerade comment \"berth:{id}\"\n",
            p = r.proto,
            cip = r.container_ip,
            cp = r.container_port,
        ));
    }
    s
}

/// Publish `rules` for container `id` (one atomic nft transaction, the
/// table and its base chains made or refreshed first).
pub fn publish(id: &str, rules: &[PortRule]) -> std::io::Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    nft(&format!("{SETUP}{}", rule_lines(id, rules)))?;
    Ok(())
}

/// Remove every rule of container `id`. Absent table: nothing to do.
pub fn unpublish(id: &str) -> std::io::Result<()> {
    let Some(l) = listing()? else {
        return Ok(());
    };
    let script = deletions(&l, id);
    if script.is_empty() {
        return Ok(());
    }
    nft(&script)?;
    Ok(())
}

/// The tagged rules of berth's table (none if it does not exist).
pub fn tagged_rules() -> std::io::Result<Vec<crate::firewall::TaggedRule>> {
    let mut out = Vec::new();
    for f in FAMILIES {
        if let Some(l) = listing_of(f)? {
            out.extend(tagged_in_family(f, &l));
        }
    }
    Ok(out)
}

#[cfg(test)]
fn tagged_in(listing: &str) -> Vec<crate::firewall::TaggedRule> {
    tagged_in_family("ip", listing)
}

fn tagged_in_family(family: &str, listing: &str) -> Vec<crate::firewall::TaggedRule> {
    let mut chain = "";
    let mut out = Vec::new();
    for line in listing.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("chain ") {
            chain = rest.split_whitespace().next().unwrap_or("");
            continue;
        }
        if let Some(tag) = crate::firewall::RuleTag::find(t) {
            let text = t.rsplit_once(" # handle ").map_or(t, |(r, _)| r);
            out.push(crate::firewall::TaggedRule {
                place: format!("nft {family} {TABLE} {chain}"),
                tag,
                text: text.to_string(),
            });
        }
    }
    out
}

/// `delete rule` lines for the rules of `id` in an `nft -a list` output.
fn deletions(listing: &str, id: &str) -> String {
    deletions_marked("ip", listing, &format!("comment \"berth:{id}\""))
}

fn deletions_marked(family: &str, listing: &str, mark: &str) -> String {
    let mut chain = "";
    let mut out = String::new();
    for line in listing.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("chain ") {
            chain = rest.split_whitespace().next().unwrap_or("");
            continue;
        }
        if t.contains(mark) {
            if let Some(h) = t.rsplit_once("# handle ").map(|(_, h)| h.trim()) {
                out.push_str(&format!("delete rule {family} berth {chain} handle {h}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_and_deletions() {
        let r = PortRule {
            host_ip: Some("127.0.0.1".parse().unwrap()),
            host_port: 8080,
            proto: "tcp".into(),
            container_ip: "10.1.0.2".parse().unwrap(),
            container_port: 80,
        };
        let s = rule_lines("abc", &[r]);
        assert!(s.contains(
            "add rule ip berth ports ip daddr 127.0.0.1 tcp dport 8080 dnat to 10.1.0.2:80 comment \"berth:abc\""
        ));
        let listing = "table ip berth { # handle 7
\tchain ports { # handle 4
\t\ttcp dport 8080 dnat to 10.1.0.2:80 comment \"berth:abc\" # handle 9
\t\ttcp dport 8081 dnat to 10.1.0.3:80 comment \"berth:xyz\" # handle 10
\t}
\tchain masq { # handle 5
\t\tip saddr 127.0.0.0/8 ip daddr 10.1.0.2 tcp dport 80 masquerade comment \"berth:abc\" # handle 11
\t}
}
";
        assert_eq!(
            deletions(listing, "abc"),
            "delete rule ip berth ports handle 9\ndelete rule ip berth masq handle 11\n"
        );
        // Tags are hex ids: `berth:xyz` is nobody's.
        let tagged = tagged_in(listing);
        assert_eq!(tagged.len(), 2);
        assert_eq!(tagged[0].place, "nft ip berth ports");
        assert_eq!(
            tagged[0].tag,
            crate::firewall::RuleTag::Container("abc".into())
        );
        assert_eq!(
            tagged[0].text,
            "tcp dport 8080 dnat to 10.1.0.2:80 comment \"berth:abc\""
        );
        assert_eq!(tagged[1].place, "nft ip berth masq");
    }
}
