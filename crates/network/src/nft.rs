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

/// The rules of a bridge network: outbound masquerade (unless internal),
/// no traffic between two berth bridges, and for an internal network no
/// traffic in or out of its bridge at all.
fn network_lines(id: &str, bridge: &str, subnet: &str, internal: bool) -> String {
    let c = format!("comment \"berth-net:{id}\"");
    let mut s = format!("add element ip berth bridges {{ \"{bridge}\" }}\n");
    if internal {
        s.push_str(&format!(
            "add rule ip berth forward iifname \"{bridge}\" oifname != \"{bridge}\" drop {c}\n"
        ));
        s.push_str(&format!(
            "add rule ip berth forward oifname \"{bridge}\" iifname != \"{bridge}\" drop {c}\n"
        ));
    } else {
        s.push_str(&format!(
            "add rule ip berth forward iifname \"{bridge}\" oifname != \"{bridge}\" oifname @bridges drop {c}\n"
        ));
        s.push_str(&format!(
            "add rule ip berth masq ip saddr {subnet} oifname != \"{bridge}\" masquerade {c}\n"
        ));
    }
    s
}

/// Install the rules of network `id` (see [`network_lines`]); the rules
/// it had are replaced.
pub fn network_up(id: &str, bridge: &str, subnet: &str, internal: bool) -> std::io::Result<()> {
    let old = listing()?
        .map(|l| deletions_marked(&l, &format!("comment \"berth-net:{id}\"")))
        .unwrap_or_default();
    nft(&format!(
        "{SETUP}{old}{}",
        network_lines(id, bridge, subnet, internal)
    ))?;
    Ok(())
}

/// Remove the rules of network `id`.
pub fn network_down(id: &str, bridge: &str) -> std::io::Result<()> {
    let Some(l) = listing()? else {
        return Ok(());
    };
    let mut script = deletions_marked(&l, &format!("comment \"berth-net:{id}\""));
    if l.contains(&format!("\"{bridge}\"")) {
        script.push_str(&format!(
            "delete element ip berth bridges {{ \"{bridge}\" }}\n"
        ));
    }
    if !script.is_empty() {
        nft(&script)?;
    }
    Ok(())
}

/// `nft -a list table ip berth`, None if the table does not exist.
fn listing() -> std::io::Result<Option<String>> {
    let out = Command::new("nft")
        .args(["-a", "list", "table", "ip", TABLE])
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
    Ok(listing()?.map(|l| tagged_in(&l)).unwrap_or_default())
}

fn tagged_in(listing: &str) -> Vec<crate::firewall::TaggedRule> {
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
                place: format!("nft ip {TABLE} {chain}"),
                tag,
                text: text.to_string(),
            });
        }
    }
    out
}

/// `delete rule` lines for the rules of `id` in an `nft -a list` output.
fn deletions(listing: &str, id: &str) -> String {
    deletions_marked(listing, &format!("comment \"berth:{id}\""))
}

fn deletions_marked(listing: &str, mark: &str) -> String {
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
                out.push_str(&format!("delete rule ip berth {chain} handle {h}\n"));
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
