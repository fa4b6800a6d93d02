//! Networks and address leases. A lease is taken in the same write
//! transaction that reads the taken addresses, so two concurrent `run`s
//! never get the same address; it is released when the container stops.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::{Store, StoreError};

/// A network as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// 64 hex digits.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// `bridge`.
    pub driver: String,
    /// `a.b.c.d/n`.
    pub subnet: String,
    /// The bridge's address.
    pub gateway: String,
    /// Addresses for containers come from here (`--ip-range`).
    #[serde(default)]
    pub ip_range: Option<String>,
    /// The Linux bridge.
    pub bridge: String,
    /// No outbound route.
    #[serde(default)]
    pub internal: bool,
    /// `--label`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `-o` driver options.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// The IPv4 gateway was picked, not given with the `--subnet` it
    /// belongs to (Docker's IPAM config lists no gateway then).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gateway_picked: bool,
    /// `--ipv6`: containers get an IPv6 address from `subnet6`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enable_ipv6: bool,
    /// The IPv6 subnet (`--subnet` with an IPv6 prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet6: Option<String>,
    /// The IPv6 gateway as given (`--gateway`); none: the subnet's first
    /// address is the bridge's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<String>,
    /// `--ip-range` of the IPv6 subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range6: Option<String>,
    /// `--aux-address name=ip` (both families): never handed out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aux_addresses: BTreeMap<String, String>,
    /// `--ipam-opt`: `None` when the request had no options at all (the
    /// API's `IPAM.Options` absent or null: dockerd shows `null` then, and
    /// `{}` for an empty map, which the docker CLI always sends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam_options: Option<BTreeMap<String, String>>,
    /// `--attachable`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attachable: bool,
}

impl NetworkRecord {
    /// The IPv6 gateway: the one given, else the subnet's first address.
    pub fn ipv6_gateway(&self) -> Option<String> {
        self.gateway6.clone().or_else(|| {
            let s = self.subnet6.as_deref()?;
            let (a, _) = s.split_once('/')?;
            let a: std::net::Ipv6Addr = a.parse().ok()?;
            Some(std::net::Ipv6Addr::from(u128::from(a) + 1).to_string())
        })
    }
}

enum Family {
    V4,
    V6,
}

/// A container's address on a network (one per address family).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Network id.
    pub network: String,
    /// The address.
    pub ip: String,
    /// Container id.
    pub container: String,
}

impl Lease {
    /// An IPv6 lease (a dual-stack network's second address).
    pub fn is_v6(&self) -> bool {
        self.ip.contains(':')
    }
}

impl Store {
    /// Create a network: `make` sees the existing ones (to pick a free
    /// subnet and bridge name) inside the write transaction.
    pub fn create_network(
        &self,
        make: impl FnOnce(&[NetworkRecord]) -> Result<NetworkRecord, StoreError>,
    ) -> Result<NetworkRecord, StoreError> {
        let tx = self.write_tx()?;
        let existing = networks_in(&tx)?;
        let rec = make(&existing)?;
        if existing.iter().any(|n| n.name == rec.name) {
            return Err(StoreError::Conflict(format!(
                "network with name {} already exists",
                rec.name
            )));
        }
        tx.execute(
            "INSERT INTO networks (id, name, config) VALUES (?1, ?2, ?3)",
            params![
                rec.id,
                rec.name,
                serde_json::to_string(&rec).unwrap_or_default()
            ],
        )?;
        tx.commit()?;
        Ok(rec)
    }

    /// All networks, by name.
    pub fn networks(&self) -> Result<Vec<NetworkRecord>, StoreError> {
        let mut v = networks_in(self.conn())?;
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    /// A network by name, full id or unique id prefix.
    pub fn network(&self, key: &str) -> Result<NetworkRecord, StoreError> {
        let all = networks_in(self.conn())?;
        if let Some(n) = all.iter().find(|n| n.name == key || n.id == key) {
            return Ok(n.clone());
        }
        let by_prefix: Vec<&NetworkRecord> = all
            .iter()
            .filter(|n| !key.is_empty() && n.id.starts_with(key))
            .collect();
        match by_prefix.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(StoreError::NotFound {
                kind: "network",
                what: key.to_string(),
                hint: ": list networks with berth network ls",
            }),
            _ => Err(StoreError::Ambiguous {
                kind: "network",
                prefix: key.to_string(),
            }),
        }
    }

    /// Remove a network that has no leases.
    pub fn remove_network(&self, id: &str) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        let users: Vec<String> = {
            let mut st = tx.prepare("SELECT container FROM leases WHERE network = ?1")?;
            let rows = st.query_map([id], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<_, _>>()?
        };
        if !users.is_empty() {
            return Err(StoreError::Conflict(format!(
                "network has active endpoints ({}): stop those containers or disconnect them first",
                users
                    .iter()
                    .map(|u| &u[..12.min(u.len())])
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        tx.execute("DELETE FROM networks WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    /// Lease an IPv4 address on `network` for `container`: `pick` gets the
    /// addresses taken and returns a free one (or None: the network is
    /// full).
    pub fn lease(
        &self,
        network: &str,
        container: &str,
        pick: impl FnOnce(&[String]) -> Result<String, String>,
    ) -> Result<String, StoreError> {
        self.lease_family(network, container, Family::V4, pick)
    }

    /// Lease an IPv6 address, as [`Store::lease`] does an IPv4 one: a
    /// container on a dual-stack network holds one of each.
    pub fn lease6(
        &self,
        network: &str,
        container: &str,
        pick: impl FnOnce(&[String]) -> Result<String, String>,
    ) -> Result<String, StoreError> {
        self.lease_family(network, container, Family::V6, pick)
    }

    fn lease_family(
        &self,
        network: &str,
        container: &str,
        family: Family,
        pick: impl FnOnce(&[String]) -> Result<String, String>,
    ) -> Result<String, StoreError> {
        let v6 = matches!(family, Family::V6);
        let tx = self.write_tx()?;
        let existing: Option<String> = tx
            .query_row(
                "SELECT ip FROM leases WHERE network = ?1 AND container = ?2
                 AND (instr(ip, ':') > 0) = ?3",
                params![network, container, v6],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(ip) = existing {
            return Ok(ip);
        }
        let taken: Vec<String> = {
            let mut st = tx.prepare("SELECT ip FROM leases WHERE network = ?1")?;
            let rows = st.query_map([network], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let ip = pick(&taken).map_err(StoreError::Conflict)?;
        tx.execute(
            "INSERT INTO leases (network, ip, container) VALUES (?1, ?2, ?3)",
            params![network, ip, container],
        )?;
        tx.commit()?;
        Ok(ip)
    }

    /// Release every lease of `container`.
    pub fn release_leases(&self, container: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM leases WHERE container = ?1", [container])?;
        Ok(())
    }

    /// Release the lease of `container` on `network`.
    pub fn release_lease(&self, container: &str, network: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "DELETE FROM leases WHERE container = ?1 AND network = ?2",
            params![container, network],
        )?;
        Ok(())
    }

    /// Ids of the containers created with `--network container:<id>`.
    pub fn containers_joining(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let mut st = self.conn().prepare(
            "SELECT id FROM containers WHERE json_extract(config, '$.network_mode.container') = ?1",
        )?;
        let rows = st.query_map([id], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Leases of a network (or all).
    pub fn leases(&self, network: Option<&str>) -> Result<Vec<Lease>, StoreError> {
        let mut st = self.conn().prepare(
            "SELECT network, ip, container FROM leases WHERE ?1 IS NULL OR network = ?1 ORDER BY ip",
        )?;
        let rows = st.query_map([network], |r| {
            Ok(Lease {
                network: r.get(0)?,
                ip: r.get(1)?,
                container: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn networks_in(conn: &rusqlite::Connection) -> Result<Vec<NetworkRecord>, StoreError> {
    let mut st = conn.prepare("SELECT config FROM networks")?;
    let rows = st.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for r in rows {
        let text = r?;
        out.push(
            serde_json::from_str(&text)
                .map_err(|e| StoreError::corrupt("network record", e.to_string()))?,
        );
    }
    Ok(out)
}
