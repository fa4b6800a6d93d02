//! Merging one Compose tree over another (`-f a -f b`, the override file,
//! `extends`), by the rules of the Compose Specification's
//! [merge](https://github.com/compose-spec/compose-spec/blob/main/13-merge.md)
//! as compose-go applies them: mappings merge key by key, the later scalar
//! wins, a null changes nothing, sequences append; with these exceptions
//! under `services.*`:
//!
//! - `command`, `entrypoint`, `healthcheck.test` and each `ulimits.*` are
//!   replaced;
//! - `environment`, `labels`, `sysctls`, `annotations`, `build.args`,
//!   `build.labels`, `deploy.labels` (and the top-level objects' `labels`)
//!   merge by name, list form and map form alike;
//! - `depends_on` and `networks` merge by name (list form first turned
//!   into a map);
//! - `build` as a string is `{context: ...}` first;
//! - `logging` merges only when the drivers agree, otherwise is replaced;
//! - `extra_hosts`, `dns`, `dns_opt`, `dns_search`, `tmpfs`, `env_file`
//!   accept a single string and append.
//!
//! `!reset` on a value removes it (and what earlier files set there);
//! `!override` replaces the earlier value instead of merging with it.
//!
//! Then [`unique`] drops the repeated entries of the sequences that must be
//! unique (ports, expose, volumes and secrets/configs by target...), the
//! later definition taking the earlier one's place.
use super::typed::{invalid, Result};
use super::volumes;
use super::yaml::{Entry, KeyPath, Map, MergeTag, Node, Sources, Value};

/// `over` merged onto `base`; `path` says where (patterns match on it).
pub(crate) fn merge(sources: &Sources, base: Node, over: Node, path: &KeyPath) -> Result<Node> {
    match over.tag {
        Some(MergeTag::Override) => {
            let mut over = over;
            drop_resets(&mut over);
            return Ok(over);
        }
        // The enclosing mapping drops the key.
        Some(MergeTag::Reset) => return Ok(Node::new(Value::Null, over.pos)),
        None => {}
    }
    let svc = |k: &[&str]| -> bool {
        let mut p = vec!["services", "*"];
        p.extend_from_slice(k);
        path.matches(&p)
    };
    if svc(&["command"])
        || svc(&["entrypoint"])
        || svc(&["healthcheck", "test"])
        || svc(&["ulimits", "*"])
    {
        return Ok(over);
    }
    let dict_paths: &[&[&str]] = &[
        &["services", "*", "environment"],
        &["services", "*", "labels"],
        &["services", "*", "sysctls"],
        &["services", "*", "annotations"],
        &["services", "*", "build", "args"],
        &["services", "*", "build", "labels"],
        &["services", "*", "deploy", "labels"],
        &["networks", "*", "labels"],
        &["volumes", "*", "labels"],
        &["secrets", "*", "labels"],
        &["configs", "*", "labels"],
    ];
    if dict_paths.iter().any(|p| path.matches(p)) {
        return Ok(merge_dicts(base, over));
    }
    if svc(&["extra_hosts"]) || svc(&["build", "extra_hosts"]) {
        let mut items = host_entries(base);
        for e in host_entries(over) {
            if !items.iter().any(|i| i.same(&e)) {
                items.push(e);
            }
        }
        let pos = items.first().map(|n| n.pos).unwrap_or_default();
        return Ok(Node::new(Value::Seq(items), pos));
    }
    if [
        "dns",
        "dns_opt",
        "dns_search",
        "tmpfs",
        "env_file",
        "label_file",
    ]
    .iter()
    .any(|k| svc(&[k]))
    {
        let pos = base.pos;
        let mut items = into_seq(base);
        items.extend(into_seq(over));
        return Ok(Node::new(Value::Seq(items), pos));
    }
    if svc(&["depends_on"]) || svc(&["networks"]) {
        let defaults = svc(&["depends_on"]);
        let base = into_map(base, defaults);
        let over = into_map(over, defaults);
        return merge_maps(sources, base, over, path);
    }
    if svc(&["build"]) {
        return merge_maps(sources, build_map(base), build_map(over), path);
    }
    if svc(&["logging"]) {
        let driver = |n: &Node| n.as_map().and_then(|m| m.get("driver")).cloned();
        if let (Some(a), Some(b)) = (driver(&base), driver(&over)) {
            if !a.same(&b) {
                return Ok(over);
            }
        }
    }
    if over.is_null() {
        return Ok(base);
    }
    match (base.value, over.value) {
        (Value::Map(a), Value::Map(b)) => merge_maps(
            sources,
            Node::new(Value::Map(a), base.pos),
            Node::new(Value::Map(b), over.pos),
            path,
        ),
        (Value::Seq(mut a), Value::Seq(b)) => {
            a.extend(b);
            Ok(Node::new(Value::Seq(a), base.pos))
        }
        (Value::Map(_), v) | (Value::Seq(_), v) => {
            let over = Node::new(v, over.pos);
            Err(invalid(
                sources,
                over.pos,
                path,
                format!("cannot override {path} with {}", over.kind()),
            ))
        }
        (_, v) => Ok(Node::new(v, over.pos)),
    }
}

fn merge_maps(sources: &Sources, base: Node, over: Node, path: &KeyPath) -> Result<Node> {
    let pos = base.pos;
    let (Value::Map(mut a), Value::Map(b)) = (base.value, over.value) else {
        // Only reached through the special cases, which build mappings.
        return Ok(Node::new(Value::Null, pos));
    };
    for Entry {
        key,
        key_pos,
        mut value,
    } in b.entries
    {
        if value.tag == Some(MergeTag::Reset) {
            a.remove(&key);
            continue;
        }
        match a.remove_keep_slot(&key) {
            Some((slot, old)) => {
                let merged = merge(sources, old, value, &path.key(&key))?;
                a.entries[slot].value = merged;
            }
            None => {
                drop_resets(&mut value);
                a.entries.push(Entry {
                    key,
                    key_pos,
                    value,
                })
            }
        }
    }
    Ok(Node::new(Value::Map(a), pos))
}

/// Remove what `!reset` marks and forget `!override` marks, in a tree
/// that is not merged onto anything.
pub(crate) fn drop_resets(n: &mut Node) {
    n.tag = None;
    match &mut n.value {
        Value::Map(m) => {
            m.entries.retain(|e| e.value.tag != Some(MergeTag::Reset));
            for e in &mut m.entries {
                drop_resets(&mut e.value);
            }
        }
        Value::Seq(items) => {
            items.retain(|i| i.tag != Some(MergeTag::Reset));
            items.iter_mut().for_each(drop_resets);
        }
        _ => {}
    }
}

impl Map {
    /// Take the value of `key` out, leaving its slot (with a null) to put
    /// the merged value back in place.
    fn remove_keep_slot(&mut self, key: &str) -> Option<(usize, Node)> {
        let slot = self.entries.iter().position(|e| e.key == key)?;
        let pos = self.entries[slot].value.pos;
        let old = std::mem::replace(&mut self.entries[slot].value, Node::new(Value::Null, pos));
        Some((slot, old))
    }
}

/// A `list_or_dict` as a mapping: `A=1` becomes `A: "1"`, `A` becomes `A: null`.
pub(crate) fn dict_to_map(n: Node) -> Map {
    let mut map = Map::default();
    match n.value {
        Value::Map(m) => map = m,
        Value::Seq(items) => {
            for item in items {
                let Some(text) = item.scalar_text() else {
                    continue;
                };
                let (k, v) = match text.split_once('=') {
                    Some((k, v)) => (k.to_string(), Node::str(v, item.pos)),
                    None => (text, Node::new(Value::Null, item.pos)),
                };
                map.insert(k, item.pos, v);
            }
        }
        _ => {}
    }
    map
}

fn merge_dicts(base: Node, over: Node) -> Node {
    let pos = base.pos;
    // A wrong kind is left for the typed stage to report.
    if !matches!(base.value, Value::Map(_) | Value::Seq(_)) {
        return over;
    }
    if !matches!(over.value, Value::Map(_) | Value::Seq(_)) {
        return base;
    }
    let mut map = dict_to_map(base);
    for e in dict_to_map(over).entries {
        if e.value.tag == Some(MergeTag::Reset) {
            map.remove(&e.key);
        } else {
            map.insert(e.key, e.key_pos, e.value);
        }
    }
    Node::new(Value::Map(map), pos)
}

/// A string or list as a list.
fn into_seq(n: Node) -> Vec<Node> {
    match n.value {
        Value::Seq(items) => items,
        Value::Null => Vec::new(),
        _ => vec![n],
    }
}

/// `extra_hosts` entries as a list: `{host: ip}` becomes `host=ip` (one
/// entry per address when a host has several).
fn host_entries(n: Node) -> Vec<Node> {
    match n.value {
        Value::Map(m) => {
            let mut out = Vec::new();
            for e in m.entries {
                match e.value.value {
                    Value::Seq(ips) => {
                        for ip in ips {
                            if let Some(t) = ip.scalar_text() {
                                out.push(Node::str(format!("{}={t}", e.key), ip.pos));
                            }
                        }
                    }
                    ref v => {
                        let text = Node::new(v.clone(), e.value.pos)
                            .scalar_text()
                            .unwrap_or_default();
                        out.push(Node::str(format!("{}={text}", e.key), e.key_pos));
                    }
                }
            }
            out
        }
        _ => into_seq(n),
    }
}

/// `depends_on`/`networks` list form as a mapping (`depends_on` entries get
/// the short syntax's meaning).
fn into_map(n: Node, dependency_defaults: bool) -> Node {
    let pos = n.pos;
    let Value::Seq(items) = n.value else {
        return n;
    };
    let mut map = Map::default();
    for item in items {
        let Some(name) = item.scalar_text() else {
            continue;
        };
        let value = if dependency_defaults {
            let mut d = Map::default();
            d.insert(
                "condition".into(),
                item.pos,
                Node::str("service_started", item.pos),
            );
            d.insert(
                "required".into(),
                item.pos,
                Node::new(Value::Bool(true), item.pos),
            );
            Node::new(Value::Map(d), item.pos)
        } else {
            Node::new(Value::Null, item.pos)
        };
        map.insert(name, item.pos, value);
    }
    Node::new(Value::Map(map), pos)
}

/// `build: ./dir` as `build: {context: ./dir}`.
pub(crate) fn build_map(n: Node) -> Node {
    match n.value {
        Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
            let pos = n.pos;
            let mut m = Map::default();
            m.insert("context".into(), pos, n);
            Node::new(Value::Map(m), pos)
        }
        _ => n,
    }
}

/// Drop repeated entries of the service sequences that must be unique; the
/// later entry replaces the earlier one in its place.
pub(crate) fn unique(model: &mut Node) {
    let Some(services) = model.as_map_mut().and_then(|m| m.get_mut("services")) else {
        return;
    };
    let Some(services) = services.as_map_mut() else {
        return;
    };
    for svc in &mut services.entries {
        let Some(s) = svc.value.as_map_mut() else {
            continue;
        };
        for e in &mut s.entries {
            let index: fn(&Node) -> Option<String> = match e.key.as_str() {
                "ports" => port_index,
                "volumes" => volume_index,
                "secrets" => |n| mount_index(n, "/run/secrets/"),
                "configs" => |n| mount_index(n, "/"),
                "env_file" | "label_file" => env_file_index,
                "expose" | "dns" | "dns_opt" | "dns_search" | "tmpfs" | "cap_add" | "cap_drop"
                | "profiles" | "links" | "extra_hosts" | "devices" => |n| n.scalar_text(),
                _ => continue,
            };
            dedupe(&mut e.value, index);
        }
        if let Some(nets) = s.get_mut("networks").and_then(Node::as_map_mut) {
            for net in &mut nets.entries {
                if let Some(aliases) = net.value.as_map_mut().and_then(|m| m.get_mut("aliases")) {
                    dedupe(aliases, |n| n.scalar_text());
                }
            }
        }
    }
}

fn dedupe(n: &mut Node, index: fn(&Node) -> Option<String>) {
    let Value::Seq(items) = &mut n.value else {
        return;
    };
    let mut out: Vec<Node> = Vec::with_capacity(items.len());
    let mut keys: Vec<Option<String>> = Vec::with_capacity(items.len());
    for item in items.drain(..) {
        let key = index(&item);
        match key
            .as_ref()
            .and_then(|k| keys.iter().position(|x| x.as_ref() == Some(k)))
        {
            Some(i) => out[i] = item,
            None => {
                keys.push(key);
                out.push(item);
            }
        }
    }
    *items = out;
}

fn field(n: &Node, key: &str) -> Option<String> {
    n.as_map()?.get(key)?.scalar_text()
}

fn port_index(n: &Node) -> Option<String> {
    match &n.value {
        Value::Map(_) => Some(format!(
            "{}:{}:{}/{}",
            field(n, "host_ip").unwrap_or_else(|| "0.0.0.0".into()),
            field(n, "published").unwrap_or_default(),
            field(n, "target")?,
            field(n, "protocol").unwrap_or_else(|| "tcp".into())
        )),
        _ => n.scalar_text(),
    }
}

fn volume_index(n: &Node) -> Option<String> {
    match &n.value {
        Value::Map(_) => field(n, "target"),
        Value::Str(s) => volumes::parse_short(s).ok().map(|v| v.target),
        _ => None,
    }
}

fn mount_index(n: &Node, default_dir: &str) -> Option<String> {
    match &n.value {
        Value::Map(_) => {
            field(n, "target").or_else(|| Some(format!("{default_dir}{}", field(n, "source")?)))
        }
        _ => Some(format!("{default_dir}{}", n.scalar_text()?)),
    }
}

fn env_file_index(n: &Node) -> Option<String> {
    match &n.value {
        Value::Map(_) => field(n, "path"),
        _ => n.scalar_text(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::yaml::parse;

    fn sources() -> Sources {
        Sources::default()
    }

    fn merged(a: &str, b: &str) -> Node {
        let a = parse(a, 0).unwrap();
        let b = parse(b, 0).unwrap();
        let mut m = merge(&sources(), a, b, &KeyPath::root()).unwrap();
        unique(&mut m);
        m
    }

    fn at<'a>(n: &'a Node, path: &[&str]) -> &'a Node {
        path.iter()
            .fold(n, |n, k| n.as_map().unwrap().get(k).unwrap())
    }

    fn texts(n: &Node) -> Vec<String> {
        match &n.value {
            Value::Seq(items) => items.iter().map(|i| i.scalar_text().unwrap()).collect(),
            _ => panic!("not a list: {n:?}"),
        }
    }

    #[test]
    fn scalars_later_wins_and_null_keeps() {
        let m = merged(
            "services: {web: {image: a, user: root, hostname: h}}",
            "services: {web: {image: b, user: null}}",
        );
        assert_eq!(at(&m, &["services", "web", "image"]).as_str(), Some("b"));
        assert_eq!(at(&m, &["services", "web", "user"]).as_str(), Some("root"));
        assert_eq!(at(&m, &["services", "web", "hostname"]).as_str(), Some("h"));
    }

    #[test]
    fn command_entrypoint_and_healthcheck_test_are_replaced() {
        let m = merged(
            "services: {web: {command: [a, b], entrypoint: [x], healthcheck: {test: [CMD, a], retries: 3}}}",
            "services: {web: {command: [c], entrypoint: sh, healthcheck: {test: [CMD, b]}}}",
        );
        let web = at(&m, &["services", "web"]);
        assert_eq!(texts(at(web, &["command"])), vec!["c"]);
        assert_eq!(at(web, &["entrypoint"]).as_str(), Some("sh"));
        assert_eq!(texts(at(web, &["healthcheck", "test"])), vec!["CMD", "b"]);
        assert_eq!(at(web, &["healthcheck", "retries"]).value, Value::Int(3));
    }

    #[test]
    fn environment_and_labels_merge_by_name_across_forms() {
        let m = merged(
            "services: {web: {environment: [A=1, B=2, C], labels: {a: x}}}",
            "services: {web: {environment: {B: 3, D: 4}, labels: [b=y, a=z]}}",
        );
        let env = at(&m, &["services", "web", "environment"])
            .as_map()
            .unwrap();
        let got: Vec<(String, Option<String>)> = env
            .entries
            .iter()
            .map(|e| (e.key.clone(), e.value.scalar_text()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("A".into(), Some("1".into())),
                ("B".into(), Some("3".into())),
                ("C".into(), None),
                ("D".into(), Some("4".into()))
            ]
        );
        let labels = at(&m, &["services", "web", "labels"]);
        assert_eq!(at(labels, &["a"]).as_str(), Some("z"));
        assert_eq!(at(labels, &["b"]).as_str(), Some("y"));
    }

    #[test]
    fn ports_expose_dns_append_unique() {
        let m = merged(
            "services: {web: {ports: ['80:80', '443:443'], expose: [80], dns: 8.8.8.8, tmpfs: /run}}",
            "services: {web: {ports: ['443:443', '8080:8080'], expose: [80, 81], dns: [1.1.1.1, 8.8.8.8], tmpfs: [/tmp]}}",
        );
        let web = at(&m, &["services", "web"]);
        assert_eq!(
            texts(at(web, &["ports"])),
            vec!["80:80", "443:443", "8080:8080"]
        );
        assert_eq!(texts(at(web, &["expose"])), vec!["80", "81"]);
        assert_eq!(texts(at(web, &["dns"])), vec!["8.8.8.8", "1.1.1.1"]);
        assert_eq!(texts(at(web, &["tmpfs"])), vec!["/run", "/tmp"]);
    }

    #[test]
    fn volumes_and_secrets_merge_by_target() {
        let m = merged(
            "services: {web: {volumes: ['data:/data', './a:/a'], secrets: [s1, {source: s2, target: /x}]}}",
            "services: {web: {volumes: ['other:/data:ro', {type: bind, source: ./b, target: /b}], secrets: [{source: s3, target: /run/secrets/s1}, s4]}}",
        );
        let web = at(&m, &["services", "web"]);
        let vols = match &at(web, &["volumes"]).value {
            Value::Seq(v) => v.clone(),
            _ => unreachable!(),
        };
        assert_eq!(vols.len(), 3);
        assert_eq!(vols[0].as_str(), Some("other:/data:ro"));
        assert_eq!(vols[1].as_str(), Some("./a:/a"));
        assert_eq!(field(&vols[2], "target").as_deref(), Some("/b"));
        let secrets = match &at(web, &["secrets"]).value {
            Value::Seq(v) => v.clone(),
            _ => unreachable!(),
        };
        assert_eq!(secrets.len(), 3);
        assert_eq!(field(&secrets[0], "source").as_deref(), Some("s3"));
        assert_eq!(field(&secrets[1], "source").as_deref(), Some("s2"));
        assert_eq!(secrets[2].as_str(), Some("s4"));
    }

    #[test]
    fn depends_on_and_networks_merge_by_name() {
        let m = merged(
            "services: {web: {depends_on: [db], networks: [front]}}",
            "services: {web: {depends_on: {cache: {condition: service_healthy}}, networks: {back: {aliases: [b]}, front: null}}}",
        );
        let web = at(&m, &["services", "web"]);
        let deps = at(web, &["depends_on"]);
        assert_eq!(
            at(deps, &["db", "condition"]).as_str(),
            Some("service_started")
        );
        assert_eq!(
            at(deps, &["cache", "condition"]).as_str(),
            Some("service_healthy")
        );
        let nets = at(web, &["networks"]).as_map().unwrap();
        assert_eq!(nets.keys().collect::<Vec<_>>(), vec!["front", "back"]);
    }

    #[test]
    fn build_string_merges_with_mapping() {
        let m = merged(
            "services: {web: {build: ./app}}",
            "services: {web: {build: {dockerfile: Dev.Dockerfile, args: [A=1]}}}",
        );
        let b = at(&m, &["services", "web", "build"]);
        assert_eq!(at(b, &["context"]).as_str(), Some("./app"));
        assert_eq!(at(b, &["dockerfile"]).as_str(), Some("Dev.Dockerfile"));
    }

    #[test]
    fn extra_hosts_sysctls_ulimits_logging() {
        let m = merged(
            "services: {web: {extra_hosts: ['a:1.1.1.1'], sysctls: {x: 1}, ulimits: {nofile: {soft: 1, hard: 2}}, logging: {driver: syslog, options: {a: 1}}}}",
            "services: {web: {extra_hosts: {b: 2.2.2.2}, sysctls: [y=2], ulimits: {nofile: 5}, logging: {driver: json-file, options: {b: 2}}}}",
        );
        let web = at(&m, &["services", "web"]);
        assert_eq!(
            texts(at(web, &["extra_hosts"])),
            vec!["a:1.1.1.1", "b=2.2.2.2"]
        );
        assert_eq!(at(web, &["sysctls", "x"]).value, Value::Int(1));
        assert_eq!(at(web, &["sysctls", "y"]).as_str(), Some("2"));
        assert_eq!(at(web, &["ulimits", "nofile"]).value, Value::Int(5));
        assert!(at(web, &["logging", "options"])
            .as_map()
            .unwrap()
            .get("a")
            .is_none());
        let m = merged(
            "services: {web: {logging: {driver: syslog, options: {a: 1}}}}",
            "services: {web: {logging: {options: {b: 2}}}}",
        );
        let opts = at(&m, &["services", "web", "logging", "options"])
            .as_map()
            .unwrap();
        assert_eq!(opts.keys().collect::<Vec<_>>(), vec!["a", "b"]);
    }

    #[test]
    fn reset_and_override_tags() {
        let m = merged(
            "services: {web: {image: a, ports: ['80:80'], environment: {A: '1', B: '2'}, labels: {x: '1'}}}",
            "services:\n  web:\n    image: !reset null\n    ports: !override ['81:81']\n    environment:\n      B: !reset\n      C: '3'\n    labels: !reset {}\n",
        );
        let web = at(&m, &["services", "web"]).as_map().unwrap();
        assert!(web.get("image").is_none());
        assert!(web.get("labels").is_none());
        assert_eq!(texts(web.get("ports").unwrap()), vec!["81:81"]);
        let env = web.get("environment").unwrap().as_map().unwrap();
        assert_eq!(env.keys().collect::<Vec<_>>(), vec!["A", "C"]);
        let mut single = parse("services: {web: {image: a, dns: !reset [x]}}", 0).unwrap();
        drop_resets(&mut single);
        assert!(at(&single, &["services", "web"])
            .as_map()
            .unwrap()
            .get("dns")
            .is_none());
    }

    #[test]
    fn kind_mismatch_is_an_error() {
        let a = parse("services: {web: {ports: [80]}}", 0).unwrap();
        let b = parse("services: {web: {ports: {a: 1}}}", 0).unwrap();
        let e = merge(&sources(), a, b, &KeyPath::root()).unwrap_err();
        assert!(
            e.to_string().contains("cannot override services.web.ports"),
            "{e}"
        );
    }
}
