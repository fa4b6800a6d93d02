//! Docker's output conventions: aligned tables, `--format json`, and the Go
//! templates (`crates/template`) scripts use, with Docker's `table` headers and
//! its error messages.
use std::collections::BTreeMap;
use std::sync::Arc;

use template::{FuncSet, Missing, Shape, Struct, Template, Value};

use crate::Failure;

/// One object to print: field name → value, in Docker's field names.
pub type Row = BTreeMap<&'static str, String>;

/// How the user asked for output.
pub enum Format<'a> {
    /// The default table with these columns (header, field).
    Table(&'a [(&'static str, &'static str)]),
    /// One JSON object per line (`--format json`, berth's shorthand for `{{json .}}`).
    Json,
    /// A Go template; a `table` prefix prints a header and aligns columns.
    Template {
        /// The template, without `table`.
        text: String,
        /// Whether it began with `table`.
        header: bool,
        /// The default columns, whose headers name fields in the header row.
        columns: &'a [(&'static str, &'static str)],
    },
}

impl<'a> Format<'a> {
    /// Parse `--format` (None → default table).
    pub fn parse(arg: Option<&str>, default: &'a [(&'static str, &'static str)]) -> Format<'a> {
        match arg.map(str::trim) {
            None | Some("") | Some("table") => Format::Table(default),
            Some("json") => Format::Json,
            Some(t) => match t.strip_prefix("table") {
                Some(rest) => Format::Template {
                    text: rest.to_string(),
                    header: true,
                    columns: default,
                },
                None => Format::Template {
                    text: t.to_string(),
                    header: false,
                    columns: default,
                },
            },
        }
    }
}

/// Which Docker listing rows belong to: the Go type its templates run on (named
/// in errors), how it words errors, and its header names beyond the default columns.
pub struct Listing {
    /// Go's type of a row (`*formatter.ContainerContext`).
    pub type_name: &'static str,
    /// Put before a parse error.
    pub parse_prefix: &'static str,
    /// Put before an execution error.
    pub exec_prefix: &'static str,
    /// Header names of fields not among the default columns.
    pub headers: &'static [(&'static str, &'static str)],
    /// Every field Docker's row type has (they all have a header).
    pub fields: &'static [&'static str],
    /// Whether Docker tries the template on an empty row before listing
    /// (`ps` does, so a bad template fails even with nothing to list).
    pub validate: bool,
}

const TPE: &str = "template parsing error: ";

/// `ps` (it checks the template before listing, hence other words).
pub const PS: Listing = Listing {
    type_name: "*formatter.ContainerContext",
    parse_prefix: "failed to parse template: ",
    exec_prefix: "failed to execute template: ",
    headers: &[("RunningFor", "CREATED"), ("ID", "CONTAINER ID")],
    fields: &[
        "ID",
        "Names",
        "Image",
        "Command",
        "CreatedAt",
        "RunningFor",
        "Ports",
        "State",
        "Status",
        "Size",
        "Labels",
        "Mounts",
        "Networks",
        "LocalVolumes",
    ],
    validate: true,
};
/// `compose ps` (docker compose's container summary).
pub const COMPOSE_PS: Listing = Listing {
    type_name: "api.ContainerSummary",
    parse_prefix: TPE,
    exec_prefix: "",
    headers: &[
        ("RunningFor", "CREATED"),
        ("ID", "CONTAINER ID"),
        ("Name", "NAME"),
        ("Service", "SERVICE"),
    ],
    fields: &[
        "ID",
        "Name",
        "Names",
        "Image",
        "Command",
        "Project",
        "Service",
        "CreatedAt",
        "RunningFor",
        "Ports",
        "State",
        "Status",
        "Health",
        "ExitCode",
        "Labels",
        "Mounts",
        "Networks",
        "LocalVolumes",
    ],
    validate: false,
};
/// `images`.
pub const IMAGES: Listing = Listing {
    type_name: "*formatter.imageContext",
    parse_prefix: TPE,
    exec_prefix: TPE,
    headers: &[
        ("ID", "IMAGE ID"),
        ("CreatedSince", "CREATED"),
        ("VirtualSize", "SIZE"),
    ],
    fields: &[
        "Repository",
        "Tag",
        "ID",
        "Digest",
        "CreatedSince",
        "CreatedAt",
        "Size",
        "Containers",
        "SharedSize",
        "UniqueSize",
        "VirtualSize",
    ],
    validate: false,
};
/// `network ls`.
pub const NETWORKS: Listing = Listing {
    type_name: "*network.networkContext",
    parse_prefix: TPE,
    exec_prefix: TPE,
    headers: &[("ID", "NETWORK ID"), ("IPv6", "IPV6")],
    fields: &[
        "Name",
        "Driver",
        "ID",
        "Scope",
        "IPv6",
        "Internal",
        "Labels",
        "CreatedAt",
    ],
    validate: false,
};
/// `volume ls`.
pub const VOLUMES: Listing = Listing {
    type_name: "*formatter.volumeContext",
    parse_prefix: TPE,
    exec_prefix: TPE,
    headers: &[("Name", "VOLUME NAME")],
    fields: &[
        "Name",
        "Driver",
        "Scope",
        "Mountpoint",
        "Labels",
        "Links",
        "Size",
    ],
    validate: false,
};
/// `history`.
pub const HISTORY: Listing = Listing {
    type_name: "*image.historyContext",
    parse_prefix: TPE,
    exec_prefix: TPE,
    headers: &[
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedBy", "CREATED BY"),
    ],
    fields: &[
        "ID",
        "CreatedBy",
        "CreatedSince",
        "CreatedAt",
        "Size",
        "Comment",
    ],
    validate: false,
};
/// `stats`.
pub const STATS: Listing = Listing {
    type_name: "*container.statsContext",
    parse_prefix: TPE,
    exec_prefix: TPE,
    headers: &[
        ("ID", "CONTAINER ID"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ],
    fields: &[
        "Name",
        "Container",
        "ID",
        "PIDs",
        "CPUPerc",
        "MemUsage",
        "MemPerc",
        "NetIO",
        "BlockIO",
    ],
    validate: false,
};
/// `system df`.
pub const DF: Listing = Listing {
    type_name: "*formatter.diskUsageImagesContext",
    parse_prefix: TPE,
    exec_prefix: TPE,
    headers: &[("TotalCount", "TOTAL")],
    fields: &["Type", "TotalCount", "Active", "Size", "Reclaimable"],
    validate: false,
};

/// `CreatedAt` → `CREATED AT`: Docker's header for a field it has no name for.
fn derived_header(field: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = field.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if i > 0 && c.is_uppercase() && chars[i - 1].is_lowercase() {
            out.push(' ');
        }
        out.extend(c.to_uppercase());
    }
    out
}

/// `.Label "com.example.my-key"` in a header: `my key`, as Docker's header context does.
fn header_label(args: &[Value]) -> Result<Value, String> {
    let name = args.first().and_then(Value::as_str).unwrap_or_default();
    let last = name.rsplit('.').next().unwrap_or_default();
    Ok(Value::String(last.replace(['-', '_'], " ")))
}

/// A `Labels` column (`a=b,c=d`) as a map, for `.Label "a"`.
fn label_method(labels: &str) -> template::Method {
    let map: BTreeMap<String, String> = labels
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Arc::new(move |args: &[Value]| {
        let key = args.first().and_then(Value::as_str).ok_or("a label name")?;
        Ok(Value::String(map.get(key).cloned().unwrap_or_default()))
    })
}

/// A row as the struct Docker's formatter runs templates on.
fn row_value(row: &Row, listing: &Listing) -> Value {
    let fields = row
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
        .collect();
    let mut s = Struct::new(listing.type_name, fields);
    s.json_escapes_html = true;
    if let Some(labels) = row.get("Labels") {
        s.methods.insert("Label".into(), label_method(labels));
    }
    Value::Struct(s)
}

/// The header row's data: a header for every field Docker's row type has.
fn header_value(
    rows: &[Row],
    columns: &[(&'static str, &'static str)],
    listing: &Listing,
) -> (Value, Value) {
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for f in listing.fields {
        names.insert(f.to_string(), derived_header(f));
    }
    for r in rows {
        for k in r.keys() {
            names.insert(k.to_string(), derived_header(k));
        }
    }
    for (h, f) in columns.iter().chain(listing.headers) {
        names.insert(f.to_string(), h.to_string());
    }
    let map: BTreeMap<String, Value> = names
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let mut s = Struct::new(
        "formatter.SubHeaderContext",
        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    );
    s.methods
        .insert("Label".into(), Arc::new(header_label) as template::Method);
    (Value::Struct(s), Value::Map(map))
}

/// Go's `text/tabwriter` as Docker sets it up (min width 10, padding 3, spaces):
/// every tab-terminated cell is padded to its column's width, the last is not.
pub(crate) fn tabwriter(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for cells in &lines {
        for (i, c) in cells.iter().take(cells.len().saturating_sub(1)).enumerate() {
            let w = (c.chars().count() + 3).max(10);
            if i >= widths.len() {
                widths.push(w);
            } else {
                widths[i] = widths[i].max(w);
            }
        }
    }
    let mut out = String::new();
    for cells in lines {
        let n = cells.len();
        for (i, c) in cells.into_iter().enumerate() {
            out.push_str(c);
            if i + 1 < n {
                out.push_str(&" ".repeat(widths[i] - c.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

/// Render rows with a template as Docker's formatter does: `\t`/`\n` written
/// as two characters become a tab and a newline, surrounding spaces are
/// trimmed, and a `table` template gets a header row and aligned columns.
fn print_template(
    text: &str,
    header: bool,
    columns: &[(&'static str, &'static str)],
    rows: &[Row],
    listing: &Listing,
) -> Result<String, Failure> {
    let text = text
        .trim_matches(' ')
        .replace("\\t", "\t")
        .replace("\\n", "\n");
    let tmpl = Template::parse(&text)
        .map_err(|e| Failure::msg(1, format!("{}{e}", listing.parse_prefix)))?;
    if listing.validate {
        let blank: Row = listing.fields.iter().map(|f| (*f, String::new())).collect();
        tmpl.execute(&row_value(&blank, listing))
            .map_err(|e| Failure::msg(1, format!("{}{e}", listing.exec_prefix)))?;
    }
    let mut body = String::new();
    for r in rows {
        let line = tmpl
            .execute(&row_value(r, listing))
            .map_err(|e| Failure::msg(1, format!("{}{e}", listing.exec_prefix)))?;
        body.push_str(&line);
        body.push('\n');
    }
    if !header {
        return Ok(body);
    }
    // Docker's header is a map (an unknown field heads `<no value>`) that also
    // answers `.Label "k"`: try it as a struct with the method, then as the map.
    let (with_label, map) = header_value(rows, columns, listing);
    let head = tmpl
        .execute_with(&with_label, FuncSet::Header, Missing::NoValue)
        .or_else(|_| tmpl.execute_with(&map, FuncSet::Header, Missing::NoValue))
        .unwrap_or_default();
    Ok(tabwriter(&format!("{head}\n{body}")))
}

/// Lay out tab-separated lines as berth's default tables (3 spaces padding).
fn align(lines: &[String]) -> String {
    let rows: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                line.push_str(&" ".repeat(widths[i] - c.chars().count() + 3));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Print rows in the chosen format; a template that does not parse or run is
/// an error worded as `listing`'s Docker command words it (exit status 1).
pub fn print(format: &Format<'_>, rows: &[Row], listing: &Listing) -> Result<String, Failure> {
    match format {
        Format::Json => print_template("{{json .}}", false, &[], rows, listing),
        Format::Table(cols) => {
            let mut lines = vec![cols.iter().map(|(h, _)| *h).collect::<Vec<_>>().join("\t")];
            for r in rows {
                lines.push(
                    cols.iter()
                        .map(|(_, f)| r.get(f).cloned().unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join("\t"),
                );
            }
            Ok(align(&lines))
        }
        Format::Template {
            text,
            header,
            columns,
        } => print_template(text, *header, columns, rows, listing),
    }
}

/// Which object an inspect document describes, read from its keys.
fn inspect_shape(doc: &serde_json::Value) -> (Shape<'static>, bool) {
    const HEALTH: [&str; 6] = [
        "Config.Healthcheck.Interval",
        "Config.Healthcheck.Timeout",
        "Config.Healthcheck.StartPeriod",
        "ContainerConfig.Healthcheck.Interval",
        "ContainerConfig.Healthcheck.Timeout",
        "ContainerConfig.Healthcheck.StartPeriod",
    ];
    const MAPS: [&str; 16] = [
        "Config.Labels",
        "Config.ExposedPorts",
        "Config.Volumes",
        "ContainerConfig.Labels",
        "ContainerConfig.ExposedPorts",
        "ContainerConfig.Volumes",
        "NetworkSettings.Networks",
        "NetworkSettings.Ports",
        "HostConfig.PortBindings",
        "HostConfig.LogConfig.Config",
        "HostConfig.Sysctls",
        "HostConfig.Tmpfs",
        "GraphDriver.Data",
        "Labels",
        "Options",
        "Containers",
    ];
    let has = |k: &str| doc.get(k).is_some();
    let type_name = if has("State") {
        "types.ContainerJSON"
    } else if has("RepoTags") {
        "types.ImageInspect"
    } else if has("IPAM") {
        "types.NetworkResource"
    } else {
        "types.Volume"
    };
    let shape = Shape {
        type_name,
        maps: &MAPS,
        durations: &HEALTH,
        times: if type_name == "types.NetworkResource" {
            &["Created"]
        } else {
            &["Metadata.LastTagTime"]
        },
        types: &[],
        nils: &["State.Health", "Config.Healthcheck"],
        slices: &[
            "NetworkSettings.Networks.*.Aliases",
            "NetworkSettings.Networks.*.Links",
        ],
    };
    // Docker re-runs a failed template on the raw JSON, except for volumes.
    (shape, type_name != "types.Volume")
}

/// `inspect -f`: run the template on each document as Docker does: on the typed
/// object first, then (when that fails) on the raw JSON with missing keys as
/// errors, whose message is the one reported. A parse error exits 64, a failed
/// document 1 (after the others are printed).
pub fn print_inspect(docs: &[serde_json::Value], format: &str) -> Result<(), Failure> {
    let tmpl = Template::parse(format)
        .map_err(|e| Failure::msg(64, format!("template parsing error: {e}")))?;
    let mut out = String::new();
    let mut errors = Vec::new();
    for doc in docs {
        let (shape, fallback) = inspect_shape(doc);
        let result = match tmpl.execute(&shape.apply(doc)) {
            Ok(s) => Ok(s),
            Err(_) if fallback => {
                tmpl.execute_with(&template::raw(doc), FuncSet::Data, Missing::Error)
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(s) => {
                out.push_str(&s);
                out.push('\n');
            }
            Err(e) => errors.push(format!("template parsing error: {e}")),
        }
    }
    print!("{}", if out.is_empty() { "\n" } else { &out });
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Failure::msg(1, errors.join("\nberth: ")))
    }
}

/// A template for `events --format`, checked before any event is read.
pub struct EventTemplate(Template);

/// An event's JSON (Docker's `/events` shape) as the `*events.Message` Docker's
/// templates see: Go's field names (`.Status`, `.ID`, `.Time`, `.TimeNano`).
fn event_value(e: &serde_json::Value) -> Value {
    let text = |v: Option<&serde_json::Value>| {
        Value::String(v.and_then(|v| v.as_str()).unwrap_or_default().to_string())
    };
    let int = |k: &str| Value::Int(e.get(k).and_then(serde_json::Value::as_i64).unwrap_or(0));
    let actor = e.get("Actor");
    let attributes = actor
        .and_then(|a| a.get("Attributes"))
        .and_then(serde_json::Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), text(Some(v))))
                .collect::<BTreeMap<_, _>>()
        })
        .unwrap_or_default();
    let actor = Struct::new(
        "events.Actor",
        vec![
            ("ID".into(), text(actor.and_then(|a| a.get("ID")))),
            ("Attributes".into(), Value::Map(attributes)),
        ],
    );
    Value::Struct(Struct::new(
        "*events.Message",
        vec![
            ("Status".into(), text(e.get("status"))),
            ("ID".into(), text(e.get("id"))),
            ("From".into(), text(e.get("from"))),
            ("Type".into(), text(e.get("Type"))),
            ("Action".into(), text(e.get("Action"))),
            ("Actor".into(), Value::Struct(actor)),
            ("Scope".into(), text(e.get("scope"))),
            ("Time".into(), int("time")),
            ("TimeNano".into(), int("timeNano")),
        ],
    ))
}

impl EventTemplate {
    /// Parse and try on an empty event, as Docker does before reading any:
    /// either failure is `Error parsing format: …`, exit status 64.
    pub fn parse(text: &str) -> Result<EventTemplate, Failure> {
        let t = Template::parse(text)
            .map(EventTemplate)
            .map_err(|e| Failure::msg(64, format!("Error parsing format: {e}")))?;
        t.render(&serde_json::json!({}))?;
        Ok(t)
    }

    /// Render one event (its JSON).
    pub fn render(&self, event: &serde_json::Value) -> Result<String, Failure> {
        self.0
            .execute(&event_value(event))
            .map_err(|e| Failure::msg(64, format!("Error parsing format: {e}")))
    }
}

/// "2 minutes", "About an hour", as Docker's `units.HumanDuration` (the
/// engine's, which the API's status lines use too).
pub use engine::container::summary::human_duration;

/// Docker's size display (decimal units: `4.26MB`).
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes}B")
    } else {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        let digits: String = s
            .chars()
            .take(if s.contains('.') { 4 } else { 3 })
            .collect();
        format!("{}{}", digits.trim_end_matches('.'), units[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        let mut r = Row::new();
        r.insert("ID", "abc".into());
        r.insert("Names", "web".into());
        r.insert("Labels", "a=b,com.x=1".into());
        r
    }

    #[test]
    fn templates_and_tables() {
        let out = print(
            &Format::Table(&[("CONTAINER ID", "ID"), ("NAMES", "Names")]),
            &[row()],
            &PS,
        )
        .unwrap();
        assert_eq!(out, "CONTAINER ID   NAMES\nabc            web\n");
        let cols = [("CONTAINER ID", "ID"), ("NAMES", "Names")];
        let out = print(
            &Format::parse(
                Some("table {{.ID}}\\t{{.Names}}\\t{{.Label \"com.x\"}}"),
                &cols,
            ),
            &[row()],
            &PS,
        )
        .unwrap();
        // Docker: min width 10, padding 3; `.Label "com.x"` heads its column with `x`.
        assert_eq!(
            out,
            "CONTAINER ID   NAMES     x\nabc            web       1\n"
        );
        let out = print(
            &Format::parse(Some("{{.Names}}\\t{{.ID}}"), &cols),
            &[row()],
            &PS,
        )
        .unwrap();
        assert_eq!(out, "web\tabc\n");
        let out = print(&Format::parse(Some("json"), &cols), &[row()], &PS).unwrap();
        assert_eq!(
            out,
            "{\"ID\":\"abc\",\"Labels\":\"a=b,com.x=1\",\"Names\":\"web\"}\n"
        );
        let err = print(&Format::parse(Some("{{.Nope}}"), &cols), &[row()], &PS)
            .err()
            .unwrap();
        assert_eq!(
            err.message.unwrap(),
            "failed to execute template: template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type *formatter.ContainerContext"
        );
    }

    #[test]
    fn empty_listings_and_empty_cells() {
        // docker 20.10, `ps -a --filter name=zzz --format 'table {{.Names}}'`: NAMES
        let cols = [("NAMES", "Names")];
        let out = print(
            &Format::parse(Some("table {{.Names}}\\t{{.CreatedAt}}"), &cols),
            &[],
            &PS,
        )
        .unwrap();
        assert_eq!(out, "NAMES     CREATED AT\n");
        // docker 20.10, `images --format 'table {{.Repository}}\t{{.Nope}}'` with no image.
        let out = print(
            &Format::parse(Some("table {{.Repository}}\\t{{.Nope}}"), &[]),
            &[],
            &IMAGES,
        )
        .unwrap();
        assert_eq!(out, "REPOSITORY   <no value>\n");
        // docker 20.10: ps tries the template even with no container.
        let err = print(&Format::parse(Some("{{.Nope}}"), &cols), &[], &PS)
            .err()
            .unwrap();
        assert!(err
            .message
            .unwrap()
            .starts_with("failed to execute template: "));
        // docker 20.10, `table {{.Names}}\t{{.Ports}}`: the empty last cell keeps the padding.
        let mut r = Row::new();
        r.insert("Names", "plain".into());
        r.insert("Ports", String::new());
        let out = print(
            &Format::parse(Some("table {{.Names}}\\t{{.Ports}}"), &cols),
            &[r],
            &PS,
        )
        .unwrap();
        assert_eq!(out, "NAMES     PORTS\nplain     \n");
    }

    #[test]
    fn event_templates_use_go_names() {
        let e = serde_json::json!({"Type": "volume", "Action": "create", "Actor": {"ID": "vol1", "Attributes": {"driver": "local"}}, "scope": "local", "time": 1796328681, "timeNano": 1796328681513028650i64});
        let t = EventTemplate::parse("{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Time}}")
            .unwrap();
        // docker 20.10: volume create <no value> 1796328681
        assert_eq!(t.render(&e).unwrap(), "volume create <no value> 1796328681");
        let err = EventTemplate::parse("{{.Nope}}").err().unwrap();
        assert_eq!(err.code, 64);
        assert_eq!(
            err.message.unwrap(),
            "Error parsing format: template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type *events.Message"
        );
    }

    #[test]
    fn headers_as_docker() {
        assert_eq!(derived_header("CreatedAt"), "CREATED AT");
        assert_eq!(derived_header("IPv6"), "IPV6");
        assert_eq!(derived_header("LocalVolumes"), "LOCAL VOLUMES");
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(1_000_000), "1MB");
        assert_eq!(human_duration(chrono::Duration::seconds(5)), "5 seconds");
        assert_eq!(human_duration(chrono::Duration::minutes(90)), "2 hours");
    }
}
