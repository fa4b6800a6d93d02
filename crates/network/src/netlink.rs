//! A synchronous rtnetlink client: the few requests a bridge network
//! needs, on one socket, no threads and no processes (the start path of a
//! container runs in its single-threaded monitor).
//!
//! Messages are built with `netlink-packet-route`'s types and sent on a
//! `netlink-sys` socket; every request asks for an ACK and a NACK becomes
//! an `io::Error` with the kernel's errno.
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// An rtnetlink socket (in the network namespace it was opened in).
pub struct Netlink {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

fn err(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

impl Netlink {
    /// Open a socket in the caller's network namespace.
    pub fn open() -> io::Result<Netlink> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink {
            sock,
            seq: 1,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Open a socket inside the network namespace `ns` (an open
    /// `/proc/PID/ns/net`): the calling thread enters it, opens the socket
    /// and comes back. The socket keeps working in that namespace.
    ///
    /// In a user namespace (rootless berth) there is no way back: the
    /// host's network namespace belongs to the host's user namespace,
    /// where this process has no capabilities. A thread of its own
    /// enters `ns` there and ends (namespaces are per thread).
    pub fn open_in(ns: &impl AsFd) -> io::Result<Netlink> {
        if sys::process::in_user_namespace() {
            let ns = ns.as_fd();
            return std::thread::scope(|s| {
                s.spawn(|| {
                    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(|e| err("entering the container's network namespace", e.into()))?;
                    Netlink::open()
                })
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the netlink thread panicked")))
            });
        }
        let own = std::fs::File::open("/proc/thread-self/ns/net")?;
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| err("entering the container's network namespace", e.into()))?;
        let res = Netlink::open();
        nix::sched::setns(&own, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| err("returning to the host network namespace", e.into()))?;
        res
    }

    /// Turn IPv6 on in the network namespace `ns` (which berth makes
    /// with it off) for `lo` and `dev`: the sysctl files under
    /// `/proc/sys/net` are the calling thread's namespace's, so this
    /// thread enters `ns` for the writes and returns.
    pub fn enable_ipv6_in(ns: &impl AsFd, dev: &str) -> io::Result<()> {
        let own = std::fs::File::open("/proc/thread-self/ns/net")?;
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| err("entering the container's network namespace", e.into()))?;
        let mut res = Ok(());
        for key in ["all", "default", "lo", dev] {
            let p = format!("/proc/sys/net/ipv6/conf/{key}/disable_ipv6");
            if let Err(e) = std::fs::write(&p, "0") {
                res = Err(io::Error::new(e.kind(), format!("{p}: {e}")));
                break;
            }
        }
        nix::sched::setns(&own, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| err("returning to the host network namespace", e.into()))?;
        res
    }

    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        nl.finalize();
        let mut out = vec![0; nl.buffer_len()];
        nl.serialize(&mut out);
        self.sock.send(&out, 0)?;
        let mut replies = Vec::new();
        loop {
            let n = self.sock.recv(&mut &mut self.buf[..], 0)?;
            let mut off = 0;
            while off < n {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..n])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = m.header.length as usize;
                if len == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "empty netlink message",
                    ));
                }
                off += (len + 3) & !3;
                if m.header.sequence_number != self.seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(replies),
                            Some(c) => Err(io::Error::from_raw_os_error(-c.get())),
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::InnerMessage(r) => replies.push(r),
                    _ => {}
                }
            }
        }
    }

    /// Index of the link named `name`, if it exists.
    pub fn link_index(&mut self, name: &str) -> io::Result<Option<u32>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(m), 0) {
            Ok(r) => Ok(r.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(err(&format!("looking up link {name}"), e)),
        }
    }

    /// Names of all links.
    pub fn link_names(&mut self) -> io::Result<Vec<String>> {
        let r = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(r.into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => l.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n),
                    _ => None,
                }),
                _ => None,
            })
            .collect())
    }

    /// Every link: name, index and the index of the bridge it is a port
    /// of.
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let r = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(r.into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => {
                    let index = l.header.index;
                    let mut name = None;
                    let mut master = None;
                    for a in l.attributes {
                        match a {
                            LinkAttribute::IfName(n) => name = Some(n),
                            LinkAttribute::Controller(m) => master = Some(m),
                            _ => {}
                        }
                    }
                    Some(Link {
                        name: name?,
                        index,
                        master,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// Create a bridge (fails with EEXIST if it exists) with a MAC address
    /// of its own (random, locally administered), as Docker does: without
    /// one the kernel gives the bridge its lowest port's address, which
    /// changes when that container leaves, and the other containers' cached
    /// gateway entry then points nowhere until it expires (their DNS and
    /// published ports stall for up to a minute).
    pub fn create_bridge(&mut self, name: &str, mtu: Option<u32>) -> io::Result<u32> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        m.attributes
            .push(LinkAttribute::Address(random_mac()?.to_vec()));
        if let Some(mtu) = mtu {
            m.attributes.push(LinkAttribute::Mtu(mtu));
        }
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
            .map_err(|e| err(&format!("creating bridge {name}"), e))?;
        self.link_index(name)?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("bridge {name} vanished"))
        })
    }

    /// Create a veth pair: `host` stays here, attached to bridge `master`
    /// and up; `peer` is created directly in the namespace `ns` (an open
    /// `/proc/PID/ns/net`) as `peer_name`.
    pub fn create_veth(
        &mut self,
        host: &str,
        master: u32,
        peer_name: &str,
        ns: &impl AsRawFd,
        mtu: Option<u32>,
        peer_mac: Option<[u8; 6]>,
    ) -> io::Result<()> {
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(peer_name.to_string()));
        peer.attributes.push(LinkAttribute::NetNsFd(ns.as_raw_fd()));
        if let Some(mtu) = mtu {
            peer.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = peer_mac {
            peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        let mut m = LinkMessage::default();
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes.push(LinkAttribute::IfName(host.to_string()));
        m.attributes.push(LinkAttribute::Controller(master));
        if let Some(mtu) = mtu {
            m.attributes.push(LinkAttribute::Mtu(mtu));
        }
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
            .map_err(|e| err(&format!("creating veth {host}"), e))?;
        Ok(())
    }

    /// Bring a link up.
    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(m), 0)
            .map_err(|e| err("bringing a link up", e))?;
        Ok(())
    }

    /// Delete a link by name; absent is fine.
    pub fn delete_link(&mut self, name: &str) -> io::Result<()> {
        let Some(index) = self.link_index(name)? else {
            return Ok(());
        };
        let mut m = LinkMessage::default();
        m.header.index = index;
        match self.request(RouteNetlinkMessage::DelLink(m), 0) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
            Err(e) => Err(err(&format!("deleting link {name}"), e)),
        }
    }

    /// Add `ip/prefix` to a link (EEXIST if it is there).
    pub fn add_address(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = prefix;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(ip.into()));
        m.attributes.push(AddressAttribute::Address(ip.into()));
        let bcast = Ipv4Addr::from(u32::from(ip) | (u32::MAX >> prefix));
        m.attributes.push(AddressAttribute::Broadcast(bcast));
        self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map_err(|e| err(&format!("adding address {ip}/{prefix}"), e))?;
        Ok(())
    }

    /// Add the IPv6 address `ip/prefix` to a link, without duplicate
    /// address detection (as Docker's: the address is usable at once, and
    /// the engine is the one handing out addresses on its bridges).
    pub fn add_address6(&mut self, index: u32, ip: Ipv6Addr, prefix: u8) -> io::Result<()> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet6;
        m.header.prefix_len = prefix;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Address(ip.into()));
        m.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
        self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map_err(|e| err(&format!("adding address {ip}/{prefix}"), e))?;
        Ok(())
    }

    /// Make `gateway` the IPv6 default route, whatever it was.
    pub fn replace_default_route6(&mut self, gateway: Ipv6Addr) -> io::Result<()> {
        let mut m = RouteMessage::default();
        m.header = RouteHeader {
            address_family: AddressFamily::Inet6,
            table: RouteHeader::RT_TABLE_MAIN,
            protocol: RouteProtocol::Boot,
            scope: RouteScope::Universe,
            kind: RouteType::Unicast,
            ..RouteHeader::default()
        };
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet6(gateway)));
        self.request(
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map_err(|e| err(&format!("adding the IPv6 default route via {gateway}"), e))?;
        Ok(())
    }

    /// Every IPv4 address of every link, up or down, with its prefix
    /// length: what the host's interfaces claim, routes or not.
    pub fn ipv4_addresses(&mut self) -> io::Result<Vec<(Ipv4Addr, u8)>> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        let r = self
            .request(RouteNetlinkMessage::GetAddress(m), NLM_F_DUMP)
            .map_err(|e| err("listing addresses", e))?;
        Ok(r.into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) if a.header.family == AddressFamily::Inet => {
                    let prefix = a.header.prefix_len;
                    a.attributes.into_iter().find_map(|at| match at {
                        AddressAttribute::Address(std::net::IpAddr::V4(ip)) => Some((ip, prefix)),
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// Add a default route via `gateway`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> io::Result<()> {
        self.default_route(gateway, NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Make `gateway` the default route, whatever it was.
    pub fn replace_default_route(&mut self, gateway: Ipv4Addr) -> io::Result<()> {
        self.default_route(gateway, NLM_F_CREATE | NLM_F_REPLACE)
    }

    fn default_route(&mut self, gateway: Ipv4Addr, flags: u16) -> io::Result<()> {
        let mut m = RouteMessage::default();
        m.header = RouteHeader {
            address_family: AddressFamily::Inet,
            table: RouteHeader::RT_TABLE_MAIN,
            protocol: RouteProtocol::Boot,
            scope: RouteScope::Universe,
            kind: RouteType::Unicast,
            ..RouteHeader::default()
        };
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.request(RouteNetlinkMessage::NewRoute(m), flags)
            .map_err(|e| err(&format!("adding the default route via {gateway}"), e))?;
        Ok(())
    }
}

/// A network interface as [`Netlink::links`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Its name.
    pub name: String,
    /// Its index.
    pub index: u32,
    /// The bridge it is a port of.
    pub master: Option<u32>,
}

/// A random unicast, locally administered MAC address.
pub fn random_mac() -> io::Result<[u8; 6]> {
    let mut mac = [0u8; 6];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut mac)?;
    mac[0] = (mac[0] & 0xfe) | 0x02;
    Ok(mac)
}
