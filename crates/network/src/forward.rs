//! berth's bridges in another engine's filter `FORWARD` path.
//!
//! dockerd sets the policy of iptables' `filter FORWARD` chain to `DROP`
//! (when it turns `ip_forward` on itself) and, with `br_netfilter` loaded,
//! even frames between two ports of one bridge pass that chain. A packet
//! must be accepted by every base chain on the forward hook: berth's own
//! table accepting it is not enough, so berth's traffic is dropped by
//! Docker's chain. As netavark and LXD do, berth then puts a few accept
//! rules for its own bridges into that path: in `DOCKER-USER` (dockerd's
//! chain for the user, jumped to first from `FORWARD`, kept across
//! dockerd restarts) when it exists, else at the top of `FORWARD` when its
//! policy is `DROP`. Nothing is added on a host whose `FORWARD` accepts.
//!
//! Only traffic in or out of the bridge is accepted, never Docker's own:
//! within the bridge; from the bridge to the outside (but not into
//! Docker's bridges `docker0`/`br-*`, which go on through Docker's
//! chains, where its isolation drops them); replies and published ports
//! (DNAT'd connections) into the bridge. An `--internal` network only
//! gets the first. berth's isolation between its networks stays in its
//! own table (a separate base chain, whose drop is final) or, with the
//! iptables backend in the same table, is jumped to first.
//!
//! Both iptables backends are looked at: `iptables-nft`, and
//! `iptables-legacy` only when the legacy `filter` table already exists
//! (listing it would create it). Every rule carries the comment
//! `berth-net:<network id>` and goes with [`close`].
use std::io::Write;
use std::process::{Command, Stdio};

use crate::iptables::split_args;

/// One iptables backend: its binary and its `-restore`.
struct Backend {
    bin: &'static str,
    restore: &'static str,
}

const NFT: Backend = Backend {
    bin: "iptables-nft",
    restore: "iptables-nft-restore",
};
const LEGACY: Backend = Backend {
    bin: "iptables-legacy",
    restore: "iptables-legacy-restore",
};

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// The backends whose `filter` table may hold another engine's chains.
fn backends() -> Vec<&'static Backend> {
    let mut out = Vec::new();
    if on_path(NFT.bin) {
        out.push(&NFT);
    }
    let legacy_filter = std::fs::read_to_string("/proc/net/ip_tables_names")
        .map(|s| s.lines().any(|l| l.trim() == "filter"))
        .unwrap_or(false);
    if legacy_filter && on_path(LEGACY.bin) {
        out.push(&LEGACY);
    }
    out
}

impl Backend {
    /// `-S` of the `filter` table; None where it cannot be read.
    fn listing(&self) -> Option<String> {
        let out = Command::new(self.bin)
            .args(["-w", "-t", "filter", "-S"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Apply a `filter` script atomically (`-restore --noflush`).
    fn apply(&self, script: &str) -> std::io::Result<()> {
        let mut child = Command::new(self.restore)
            .args(["-w", "--noflush"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("running {}: {e}", self.restore)))?;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(script.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "{}: {}",
                self.restore,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }
}

/// One network's bridge, as seen by [`open`].
#[derive(Debug, Clone, Copy)]
pub struct Bridge<'a> {
    /// berth's network id (the rules' comment).
    pub id: &'a str,
    /// The Linux bridge.
    pub name: &'a str,
    /// `--internal`: nothing in or out.
    pub internal: bool,
}

fn mark(id: &str) -> String {
    format!("berth-net:{id}")
}

/// Whether `line` of a listing is one of our rules for network `id` in
/// Docker's path (not in berth's own chains, which carry the same tag).
fn marked(line: &str, id: &str) -> bool {
    let m = mark(id);
    let path = ["-A DOCKER-USER ", "-A FORWARD "]
        .iter()
        .any(|c| line.starts_with(c));
    path && (line.contains(&format!("--comment {m} "))
        || line.ends_with(&format!("--comment {m}"))
        || line.contains(&format!("--comment \"{m}\"")))
}

/// The rules of `b`, in order, without chain (`-i … -j ACCEPT`).
fn rules(b: &Bridge<'_>, own_chain: bool) -> Vec<String> {
    let br = b.name;
    let c = format!("-m comment --comment \"{}\"", mark(b.id));
    let mut r = Vec::new();
    if own_chain {
        // berth's iptables backend in this very table: its isolation first.
        r.push(format!("-i {br} {c} -j BERTH-FORWARD"));
        r.push(format!("-o {br} {c} -j BERTH-FORWARD"));
    }
    r.push(format!("-i {br} -o {br} {c} -j ACCEPT"));
    if !b.internal {
        // Docker's bridges (and berth's other ones, its own name being
        // accepted above): Docker's chains decide.
        for docker in ["docker0", "br-+"] {
            r.push(format!("-i {br} -o {docker} {c} -j RETURN"));
        }
        r.push(format!("-i {br} {c} -j ACCEPT"));
        r.push(format!(
            "-o {br} -m conntrack --ctstate RELATED,ESTABLISHED {c} -j ACCEPT"
        ));
        r.push(format!("-o {br} -m conntrack --ctstate DNAT {c} -j ACCEPT"));
    }
    r
}

/// The `iptables-restore --noflush` script that puts `b`'s rules into
/// the path of a `filter` table listed as `listing` (`-S`), or None when
/// nothing is to be done: the table's `FORWARD` accepts and has no
/// `DOCKER-USER`, or the rules are in place.
fn plan(listing: &str, b: &Bridge<'_>) -> Option<String> {
    let has = |l: &str| listing.lines().any(|x| x.trim() == l);
    let target = if has("-N DOCKER-USER") {
        "DOCKER-USER"
    } else if has("-P FORWARD DROP") {
        "FORWARD"
    } else {
        return None;
    };
    let ours: Vec<&str> = listing.lines().filter(|l| marked(l, b.id)).collect();
    let in_place = ours.iter().any(|l| l.starts_with(&format!("-A {target} ")));
    if in_place {
        return None;
    }
    let mut s = String::from("*filter\n");
    s.push_str(&deletions(&ours));
    for rule in rules(b, has("-N BERTH-FORWARD")).iter().rev() {
        s.push_str(&format!("-I {target} 1 {rule}\n"));
    }
    s.push_str("COMMIT\n");
    Some(s)
}

/// `-D` lines for `-A` lines of a listing, quoted as restore reads them.
fn deletions(lines: &[&str]) -> String {
    let mut s = String::new();
    for l in lines {
        let Some(rest) = l.strip_prefix("-A ") else {
            continue;
        };
        let args: Vec<String> = split_args(rest)
            .into_iter()
            .map(|a| {
                if a.contains(' ') || a.is_empty() {
                    format!("\"{a}\"")
                } else {
                    a
                }
            })
            .collect();
        s.push_str(&format!("-D {}\n", args.join(" ")));
    }
    s
}

/// Put `b`'s accept rules into the forward path of every iptables
/// backend that drops forwarded traffic (see the module); a no-op when
/// they are there already, so it is cheap to call again (a listing per
/// backend).
pub fn open(b: &Bridge<'_>) -> std::io::Result<()> {
    let mut errors = Vec::new();
    for be in backends() {
        let Some(listing) = be.listing() else {
            continue;
        };
        if let Some(script) = plan(&listing, b) {
            if let Err(e) = be.apply(&script) {
                errors.push(e.to_string());
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(std::io::Error::other(errors.join("; ")))
    }
}

/// berth's accept rules in Docker's path, in every backend.
pub fn tagged_rules() -> Vec<crate::firewall::TaggedRule> {
    let mut out = Vec::new();
    for be in backends() {
        let Some(listing) = be.listing() else {
            continue;
        };
        for line in listing.lines() {
            let Some(crate::firewall::RuleTag::Network(id)) = crate::firewall::RuleTag::find(line)
            else {
                continue;
            };
            if !marked(line, &id) {
                continue;
            }
            let tag = crate::firewall::RuleTag::Network(id);
            let chain = line.split_whitespace().nth(1).unwrap_or("");
            out.push(crate::firewall::TaggedRule {
                place: format!("{} filter {chain}", be.bin),
                tag,
                text: line.to_string(),
            });
        }
    }
    out
}

/// Remove the rules of network `id` from every backend (best effort: all
/// are tried, the errors collected).
pub fn close(id: &str) -> std::io::Result<()> {
    let mut errors = Vec::new();
    for be in backends() {
        let Some(listing) = be.listing() else {
            continue;
        };
        let ours: Vec<&str> = listing.lines().filter(|l| marked(l, id)).collect();
        if ours.is_empty() {
            continue;
        }
        if let Err(e) = be.apply(&format!("*filter\n{}COMMIT\n", deletions(&ours))) {
            errors.push(e.to_string());
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(std::io::Error::other(errors.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER: &str = "-P INPUT ACCEPT
-P FORWARD DROP
-P OUTPUT ACCEPT
-N DOCKER
-N DOCKER-ISOLATION-STAGE-1
-N DOCKER-USER
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A DOCKER-USER -j RETURN
";

    fn net(internal: bool) -> Bridge<'static> {
        Bridge {
            id: "abc",
            name: "br-abc",
            internal,
        }
    }

    #[test]
    fn goes_into_docker_user_first_in_order() {
        let s = plan(DOCKER, &net(false)).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "*filter");
        assert_eq!(*lines.last().unwrap(), "COMMIT");
        // Inserted at 1 in reverse: the first rule ends up first.
        assert_eq!(
            lines[lines.len() - 2],
            "-I DOCKER-USER 1 -i br-abc -o br-abc -m comment --comment \"berth-net:abc\" -j ACCEPT"
        );
        assert!(s.contains("-I DOCKER-USER 1 -i br-abc -o docker0 -m comment --comment \"berth-net:abc\" -j RETURN"));
        assert!(s.contains("-o br-+ -m comment --comment \"berth-net:abc\" -j RETURN"));
        assert!(s.contains("--ctstate DNAT"));
        assert!(!s.contains("BERTH-FORWARD"));
    }

    #[test]
    fn nothing_where_forward_accepts_or_rules_are_there() {
        assert!(plan("-P INPUT ACCEPT\n-P FORWARD ACCEPT\n", &net(false)).is_none());
        let with = format!(
            "{DOCKER}-A DOCKER-USER -i br-abc -o br-abc -m comment --comment berth-net:abc -j ACCEPT\n"
        );
        assert!(plan(&with, &net(false)).is_none());
        // Another network's rules do not count.
        let other = format!(
            "{DOCKER}-A DOCKER-USER -i br-abd -m comment --comment berth-net:abd -j ACCEPT\n"
        );
        assert!(plan(&other, &net(false)).is_some());
    }

    #[test]
    fn top_of_forward_without_docker_user_and_moves_when_it_appears() {
        let ufw = "-P FORWARD DROP\n-N BERTH-FORWARD\n";
        let s = plan(ufw, &net(true)).unwrap();
        assert_eq!(
            s,
            "*filter
-I FORWARD 1 -i br-abc -o br-abc -m comment --comment \"berth-net:abc\" -j ACCEPT
-I FORWARD 1 -o br-abc -m comment --comment \"berth-net:abc\" -j BERTH-FORWARD
-I FORWARD 1 -i br-abc -m comment --comment \"berth-net:abc\" -j BERTH-FORWARD
COMMIT
"
        );
        // berth's own chain carries the same tag: not touched.
        let own = format!(
            "{DOCKER}-N BERTH-FORWARD\n-A BERTH-FORWARD -i br-abc -o br-+ -m comment --comment berth-net:abc -j DROP\n"
        );
        assert!(!plan(&own, &net(false)).unwrap().contains("-D "));
        let stale = format!(
            "{DOCKER}-A FORWARD -i br-abc -o br-abc -m comment --comment berth-net:abc -j ACCEPT\n"
        );
        let s = plan(&stale, &net(true)).unwrap();
        assert!(s.starts_with(
            "*filter\n-D FORWARD -i br-abc -o br-abc -m comment --comment berth-net:abc -j ACCEPT\n-I DOCKER-USER 1 "
        ));
    }
}
