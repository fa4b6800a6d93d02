//! NAT, published ports and isolation through nftables (berth's own table)
//! or, where `nft` is missing, iptables (berth's own chains).
use crate::forward;
use crate::iptables::Iptables;
use crate::nft::{self, PortRule};

/// What a network's rules are made from.
#[derive(Debug, Clone, Copy)]
pub struct NetworkRules<'a> {
    /// Network id (the rules' tag).
    pub id: &'a str,
    /// Its Linux bridge.
    pub bridge: &'a str,
    /// Its IPv4 subnet.
    pub subnet: &'a str,
    /// `--internal`: no way in or out.
    pub internal: bool,
    /// `com.docker.network.bridge.enable_icc`: containers of the network
    /// reach each other.
    pub icc: bool,
    /// `com.docker.network.bridge.enable_ip_masquerade`: outbound NAT.
    pub masquerade: bool,
    /// The network has IPv6 (isolated in `ip6 berth` too).
    pub ipv6: bool,
}

/// The firewall backend.
#[derive(Debug, Clone)]
pub enum Firewall {
    /// `nft`, table `ip berth`.
    Nft,
    /// iptables through the named binary.
    Iptables(Iptables),
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

impl Firewall {
    /// `choice`: `auto` (nftables when `nft` is installed, else iptables),
    /// `nftables` or `iptables`; `iptables` names the binary to use.
    pub fn choose(choice: &str, iptables: &str) -> Result<Firewall, String> {
        match choice {
            "nftables" | "nft" => Ok(Firewall::Nft),
            "iptables" => Ok(Firewall::Iptables(Iptables::new(iptables))),
            "auto" | "" => Ok(if on_path("nft") {
                Firewall::Nft
            } else {
                Firewall::Iptables(Iptables::new(iptables))
            }),
            other => Err(format!(
                "firewall {other:?}: use auto, nftables or iptables"
            )),
        }
    }

    /// Rules of a network (masquerade, isolation), replacing older ones,
    /// and its accept rules in Docker's `FORWARD` path where that drops
    /// ([`crate::forward`]).
    pub fn network_up(&self, r: &NetworkRules<'_>) -> std::io::Result<()> {
        match self {
            Firewall::Nft => nft::network_up(r)?,
            Firewall::Iptables(i) => i.network_up(r)?,
        }
        forward::open(&forward::Bridge {
            id: r.id,
            name: r.bridge,
            internal: r.internal,
        })
    }

    /// Put the accept rules of a network whose bridge exists into Docker's
    /// `FORWARD` path again if they are missing (dockerd started after the
    /// bridge came up); a listing per iptables backend when nothing is to
    /// be done.
    pub fn network_recheck(&self, id: &str, bridge: &str, internal: bool) -> std::io::Result<()> {
        forward::open(&forward::Bridge {
            id,
            name: bridge,
            internal,
        })
    }

    /// Remove the rules of a network, in Docker's path and berth's own
    /// (both tried, errors collected).
    pub fn network_down(&self, id: &str, bridge: &str) -> std::io::Result<()> {
        let path = forward::close(id);
        let own = match self {
            Firewall::Nft => nft::network_down(id, bridge),
            Firewall::Iptables(i) => i.network_down(id),
        };
        match (path, own) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
            (Err(a), Err(b)) => Err(std::io::Error::other(format!("{a}; {b}"))),
        }
    }

    /// Publish a container's ports.
    pub fn publish(&self, id: &str, rules: &[PortRule]) -> std::io::Result<()> {
        match self {
            Firewall::Nft => nft::publish(id, rules),
            Firewall::Iptables(i) => i.publish(id, rules),
        }
    }

    /// Remove a container's published ports.
    pub fn unpublish(&self, id: &str) -> std::io::Result<()> {
        match self {
            Firewall::Nft => nft::unpublish(id),
            Firewall::Iptables(i) => i.unpublish(id),
        }
    }
}

/// What one of berth's rules is for, from its comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleTag {
    /// `berth:<container id>`: a published port.
    Container(String),
    /// `berth-net:<network id>`: a network's NAT, isolation or accept rule.
    Network(String),
}

impl RuleTag {
    /// The tag in a rule's text, if it has one of berth's.
    pub fn find(text: &str) -> Option<RuleTag> {
        let id_after = |mark: &str| {
            let at = text.find(mark)? + mark.len();
            let id: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_hexdigit())
                .collect();
            (!id.is_empty()).then_some(id)
        };
        id_after("berth-net:")
            .map(RuleTag::Network)
            .or_else(|| id_after("berth:").map(RuleTag::Container))
    }
}

/// One rule of berth's as the firewall lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedRule {
    /// Where it is (`nft ip berth ports`, `iptables nat BERTH-PORTS`,
    /// `iptables-nft filter DOCKER-USER`).
    pub place: String,
    /// Whose it is.
    pub tag: RuleTag,
    /// The rule as listed.
    pub text: String,
}

impl Firewall {
    /// Every rule carrying one of berth's tags: in berth's own table or
    /// chains, and its accept rules in Docker's `FORWARD` path.
    pub fn tagged_rules(&self) -> std::io::Result<Vec<TaggedRule>> {
        let mut out = match self {
            Firewall::Nft => nft::tagged_rules()?,
            Firewall::Iptables(i) => i.tagged_rules(),
        };
        out.extend(forward::tagged_rules());
        Ok(out)
    }
}

/// Per-interface settings of one of berth's bridges: it forwards, and the
/// host reaches published ports on 127.0.0.1 through it.
pub fn prepare_bridge(bridge: &str) -> std::io::Result<()> {
    for key in ["route_localnet", "forwarding"] {
        let p = format!("/proc/sys/net/ipv4/conf/{bridge}/{key}");
        std::fs::write(&p, "1").map_err(|e| std::io::Error::new(e.kind(), format!("{p}: {e}")))?;
    }
    Ok(())
}

/// Whether the host forwards IPv4 (`net.ipv4.ip_forward`).
pub fn ip_forward() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}

/// Turn on `net.ipv4.ip_forward`, as Docker and Podman do for bridge
/// networks (without it, answers to a container's outbound connections
/// are not forwarded back from the host's uplink).
pub fn enable_ip_forward() -> std::io::Result<()> {
    if ip_forward() {
        return Ok(());
    }
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_read_from_comments() {
        assert_eq!(
            RuleTag::find("tcp dport 80 dnat to 10.0.0.2:80 comment \"berth:ab12\""),
            Some(RuleTag::Container("ab12".into()))
        );
        assert_eq!(
            RuleTag::find("-A DOCKER-USER -i br-1 -m comment --comment berth-net:cd34 -j ACCEPT"),
            Some(RuleTag::Network("cd34".into()))
        );
        assert_eq!(RuleTag::find("jump ports"), None);
        assert_eq!(RuleTag::find("comment \"berth:\""), None);
    }
}
