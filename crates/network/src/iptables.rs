//! The iptables fallback for hosts without `nft`: the same rules as
//! [`crate::nft`], in berth's own chains (`BERTH-PORTS`, `BERTH-MASQ` in
//! `nat`, `BERTH-FORWARD` in `filter`). iptables has no tables of ours, so
//! one jump rule per built-in chain leads into them (as Docker's chains);
//! nothing else outside our chains is ever added or removed. Every rule is
//! tagged with a comment (`berth:<container>` or `berth-net:<network>`).
use std::process::{Command, Stdio};

use crate::nft::PortRule;

/// iptables through one binary (`iptables`, `iptables-legacy`, …).
#[derive(Debug, Clone)]
pub struct Iptables {
    bin: String,
}

/// Jumps from built-in chains into ours: (table, chain, rule).
const JUMPS: &[(&str, &str, &str)] = &[
    (
        "nat",
        "PREROUTING",
        "-m addrtype --dst-type LOCAL -j BERTH-PORTS",
    ),
    (
        "nat",
        "OUTPUT",
        "-m addrtype --dst-type LOCAL -j BERTH-PORTS",
    ),
    ("nat", "POSTROUTING", "-j BERTH-MASQ"),
    ("filter", "FORWARD", "-j BERTH-FORWARD"),
];

const CHAINS: &[(&str, &str)] = &[
    ("nat", "BERTH-PORTS"),
    ("nat", "BERTH-MASQ"),
    ("filter", "BERTH-FORWARD"),
];

impl Iptables {
    /// Use `bin` (a name on PATH or a path).
    pub fn new(bin: impl Into<String>) -> Iptables {
        Iptables { bin: bin.into() }
    }

    fn run(&self, args: &[&str]) -> std::io::Result<String> {
        let out = Command::new(&self.bin)
            .arg("-w")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| std::io::Error::new(e.kind(), format!("running {}: {e}", self.bin)))?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "{} {}: {}",
                self.bin,
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn ok(&self, args: &[&str]) -> bool {
        self.run(args).is_ok()
    }

    /// Our chains and the jumps into them.
    fn setup(&self) -> std::io::Result<()> {
        for (table, chain) in CHAINS {
            if !self.ok(&["-t", table, "-S", chain]) {
                self.run(&["-t", table, "-N", chain])?;
            }
        }
        for (table, chain, rule) in JUMPS {
            let r: Vec<&str> = rule.split(' ').collect();
            let mut check = vec!["-t", table, "-C", chain];
            check.extend(&r);
            if !self.ok(&check) {
                let mut add = vec!["-t", table, "-I", chain, "1"];
                add.extend(&r);
                self.run(&add)?;
            }
        }
        Ok(())
    }

    fn add(&self, table: &str, chain: &str, rule: &[String], comment: &str) -> std::io::Result<()> {
        let mut args: Vec<&str> = vec!["-t", table, "-A", chain];
        args.extend(rule.iter().map(String::as_str));
        args.extend(["-m", "comment", "--comment", comment]);
        self.run(&args).map(|_| ())
    }

    /// Delete every rule of our chains whose comment is `comment`.
    fn delete_marked(&self, comment: &str) -> std::io::Result<()> {
        for (table, chain) in CHAINS {
            let Ok(listing) = self.run(&["-t", table, "-S", chain]) else {
                continue;
            };
            for line in listing.lines() {
                if !(line.contains(&format!("--comment {comment} "))
                    || line.ends_with(&format!("--comment {comment}"))
                    || line.contains(&format!("--comment \"{comment}\"")))
                {
                    continue;
                }
                let Some(rest) = line.strip_prefix(&format!("-A {chain} ")) else {
                    continue;
                };
                let mut args = vec![
                    "-t".to_string(),
                    table.to_string(),
                    "-D".into(),
                    chain.to_string(),
                ];
                args.extend(split_args(rest));
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                self.run(&refs)?;
            }
        }
        Ok(())
    }

    /// The tagged rules of berth's chains.
    pub fn tagged_rules(&self) -> Vec<crate::firewall::TaggedRule> {
        let mut out = Vec::new();
        for (table, chain) in CHAINS {
            let Ok(listing) = self.run(&["-t", table, "-S", chain]) else {
                continue;
            };
            for line in listing.lines() {
                if let Some(tag) = crate::firewall::RuleTag::find(line) {
                    out.push(crate::firewall::TaggedRule {
                        place: format!("{} {table} {chain}", self.bin),
                        tag,
                        text: line.to_string(),
                    });
                }
            }
        }
        out
    }

    /// See [`crate::nft::network_up`].
    /// IPv6 networks are isolated by `nft` only (no `ip6tables` chains).
    pub fn network_up(&self, r: &crate::firewall::NetworkRules<'_>) -> std::io::Result<()> {
        let (id, bridge, subnet, internal) = (r.id, r.bridge, r.subnet, r.internal);
        self.setup()?;
        let c = format!("berth-net:{id}");
        self.delete_marked(&c)?;
        let v = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        if internal {
            self.add(
                "filter",
                "BERTH-FORWARD",
                &v(&format!("-i {bridge} ! -o {bridge} -j DROP")),
                &c,
            )?;
            self.add(
                "filter",
                "BERTH-FORWARD",
                &v(&format!("-o {bridge} ! -i {bridge} -j DROP")),
                &c,
            )?;
        } else {
            // Not to other berth bridges (the default ones and br-<id>),
            // within its own bridge yes (unless enable_icc=false).
            let within = if r.icc { "ACCEPT" } else { "DROP" };
            self.add(
                "filter",
                "BERTH-FORWARD",
                &v(&format!("-i {bridge} -o {bridge} -j {within}")),
                &c,
            )?;
            for other in ["br-+", "berth+"] {
                self.add(
                    "filter",
                    "BERTH-FORWARD",
                    &v(&format!("-i {bridge} -o {other} -j DROP")),
                    &c,
                )?;
            }
            if r.masquerade {
                self.add(
                    "nat",
                    "BERTH-MASQ",
                    &v(&format!("-s {subnet} ! -o {bridge} -j MASQUERADE")),
                    &c,
                )?;
            }
        }
        Ok(())
    }

    /// See [`crate::nft::network_down`].
    pub fn network_down(&self, id: &str) -> std::io::Result<()> {
        self.delete_marked(&format!("berth-net:{id}"))
    }

    /// See [`crate::nft::publish`].
    pub fn publish(&self, id: &str, rules: &[PortRule]) -> std::io::Result<()> {
        if rules.is_empty() {
            return Ok(());
        }
        self.setup()?;
        let c = format!("berth:{id}");
        for r in rules {
            let mut dnat = Vec::new();
            if let Some(ip) = r.host_ip {
                dnat.extend(["-d".to_string(), ip.to_string()]);
            }
            dnat.extend(
                format!(
                    "-p {p} --dport {hp} -j DNAT --to-destination {cip}:{cp}",
                    p = r.proto,
                    hp = r.host_port,
                    cip = r.container_ip,
                    cp = r.container_port
                )
                .split(' ')
                .map(String::from),
            );
            self.add("nat", "BERTH-PORTS", &dnat, &c)?;
            let masq: Vec<String> = format!(
                "-s 127.0.0.0/8 -d {cip} -p {p} --dport {cp} -j MASQUERADE",
                p = r.proto,
                cip = r.container_ip,
                cp = r.container_port
            )
            .split(' ')
            .map(String::from)
            .collect();
            self.add("nat", "BERTH-MASQ", &masq, &c)?;
        }
        Ok(())
    }

    /// See [`crate::nft::unpublish`].
    pub fn unpublish(&self, id: &str) -> std::io::Result<()> {
        self.delete_marked(&format!("berth:{id}"))
    }
}

/// Split an `iptables -S` rule into arguments (quotes of comments kept
/// apart).
pub(crate) fn split_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in s.chars() {
        match ch {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_rules() {
        assert_eq!(
            split_args("-p tcp -m comment --comment \"berth:ab c\" -j DNAT"),
            vec![
                "-p",
                "tcp",
                "-m",
                "comment",
                "--comment",
                "berth:ab c",
                "-j",
                "DNAT"
            ]
        );
    }
}
