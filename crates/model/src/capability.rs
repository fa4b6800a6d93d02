use crate::ParseError;

/// Every capability Linux knows, by number (capabilities(7)).
pub const ALL: &[(&str, u8)] = &[
    ("CHOWN", 0),
    ("DAC_OVERRIDE", 1),
    ("DAC_READ_SEARCH", 2),
    ("FOWNER", 3),
    ("FSETID", 4),
    ("KILL", 5),
    ("SETGID", 6),
    ("SETUID", 7),
    ("SETPCAP", 8),
    ("LINUX_IMMUTABLE", 9),
    ("NET_BIND_SERVICE", 10),
    ("NET_BROADCAST", 11),
    ("NET_ADMIN", 12),
    ("NET_RAW", 13),
    ("IPC_LOCK", 14),
    ("IPC_OWNER", 15),
    ("SYS_MODULE", 16),
    ("SYS_RAWIO", 17),
    ("SYS_CHROOT", 18),
    ("SYS_PTRACE", 19),
    ("SYS_PACCT", 20),
    ("SYS_ADMIN", 21),
    ("SYS_BOOT", 22),
    ("SYS_NICE", 23),
    ("SYS_RESOURCE", 24),
    ("SYS_TIME", 25),
    ("SYS_TTY_CONFIG", 26),
    ("MKNOD", 27),
    ("LEASE", 28),
    ("AUDIT_WRITE", 29),
    ("AUDIT_CONTROL", 30),
    ("SETFCAP", 31),
    ("MAC_OVERRIDE", 32),
    ("MAC_ADMIN", 33),
    ("SYSLOG", 34),
    ("WAKE_ALARM", 35),
    ("BLOCK_SUSPEND", 36),
    ("AUDIT_READ", 37),
    ("PERFMON", 38),
    ("BPF", 39),
    ("CHECKPOINT_RESTORE", 40),
];

/// Docker's default capability set (moby `oci/caps/defaults.go`): root in a
/// container has exactly these; `CapEff` reads `00000000a80425fb`.
pub const DOCKER_DEFAULT: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// A capability argument as `--cap-add`/`--cap-drop` take it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CapArg {
    All,
    One(u8),
}

/// Parses `NET_ADMIN`, `cap_net_admin`, `CAP_NET_ADMIN` or `ALL`.
pub fn parse(name: &str) -> Result<CapArg, ParseError> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if bare == "ALL" {
        return Ok(CapArg::All);
    }
    ALL.iter()
        .find(|(n, _)| *n == bare)
        .map(|(_, v)| CapArg::One(*v))
        .ok_or_else(|| ParseError::Capability(name.to_string()))
}

/// The kernel-facing name, `CAP_NET_ADMIN`, of capability `n`.
pub fn name_of(n: u8) -> Option<String> {
    ALL.iter()
        .find(|(_, v)| *v == n)
        .map(|(name, _)| format!("CAP_{name}"))
}

/// Bit mask of Docker's default set.
pub fn docker_default_mask() -> u64 {
    DOCKER_DEFAULT
        .iter()
        .map(|n| match parse(n) {
            Ok(CapArg::One(b)) => 1u64 << b,
            _ => 0,
        })
        .fold(0, |a, b| a | b)
}

/// Applies Docker's rules for the effective set: start from the default set
/// (or all, when privileged), add `adds`, then remove `drops`; `ALL` in
/// drops empties the set first, `ALL` in adds fills it.
pub fn resolve(privileged: bool, adds: &[CapArg], drops: &[CapArg]) -> u64 {
    let all_mask: u64 = ALL.iter().map(|(_, b)| 1u64 << b).fold(0, |a, b| a | b);
    if privileged {
        return all_mask;
    }
    let mut set = docker_default_mask();
    if drops.contains(&CapArg::All) {
        set = 0;
    }
    for a in adds {
        match a {
            CapArg::All => set = all_mask,
            CapArg::One(b) => set |= 1 << b,
        }
    }
    for d in drops {
        if let CapArg::One(b) = d {
            if !adds.contains(d) {
                set &= !(1 << b);
            }
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_default_matches_capeff() {
        assert_eq!(docker_default_mask(), 0xa80425fb);
    }

    #[test]
    fn parses_forms() {
        assert_eq!(parse("net_admin").unwrap(), CapArg::One(12));
        assert_eq!(parse("CAP_NET_ADMIN").unwrap(), CapArg::One(12));
        assert_eq!(parse("all").unwrap(), CapArg::All);
        assert!(parse("CAP_FLY").is_err());
    }

    #[test]
    fn resolves() {
        let base = docker_default_mask();
        assert_eq!(resolve(false, &[CapArg::One(12)], &[]), base | (1 << 12));
        assert_eq!(resolve(false, &[], &[CapArg::All]), 0);
        assert_eq!(resolve(false, &[CapArg::One(13)], &[CapArg::All]), 1 << 13);
        assert_eq!(resolve(false, &[], &[CapArg::One(0)]), base & !1);
        assert_eq!(resolve(true, &[], &[CapArg::All]).count_ones(), 41);
    }
}
