//! Docker's output conventions: aligned tables, `--format json`, and the
//! `{{.Field}}` templates scripts use.
use std::collections::BTreeMap;

/// One object to print: field name → value, in Docker's field names.
pub type Row = BTreeMap<&'static str, String>;

/// How the user asked for output.
pub enum Format<'a> {
    /// The default table with these columns (header, field).
    Table(&'a [(&'static str, &'static str)]),
    /// One JSON object per line.
    Json,
    /// A Go-style template; `table` prefix prints a header.
    Template { text: String, header: bool },
}

impl<'a> Format<'a> {
    /// Parse `--format` (None → default table).
    pub fn parse(arg: Option<&str>, default: &'a [(&'static str, &'static str)]) -> Format<'a> {
        match arg.map(str::trim) {
            None | Some("") | Some("table") => Format::Table(default),
            Some("json") | Some("{{json .}}") => Format::Json,
            Some(t) => match t.strip_prefix("table") {
                Some(rest) => Format::Template {
                    text: rest.trim_start().to_string(),
                    header: true,
                },
                None => Format::Template {
                    text: t.to_string(),
                    header: false,
                },
            },
        }
    }
}

/// Expand `{{.Field}}` (and `{{json .}}`, `{{json .Field}}`) in `text` for `row`.
pub fn render_template(text: &str, row: &Row) -> String {
    render_json_template(text, &serde_json::to_value(row).unwrap_or_default())
}

/// Expand `{{.A.B}}` / `{{json .A}}` against a JSON value.
pub fn render_json_template(text: &str, v: &serde_json::Value) -> String {
    let text = text.replace("\\t", "\t").replace("\\n", "\n");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let expr = rest[start + 2..start + end].trim();
        let (json, path) = match expr.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, expr),
        };
        let mut cur = v;
        for part in path
            .trim_start_matches('.')
            .split('.')
            .filter(|p| !p.is_empty())
        {
            cur = cur.get(part).unwrap_or(&serde_json::Value::Null);
        }
        let s = match (json, cur) {
            (true, x) => serde_json::to_string(x).unwrap_or_default(),
            (false, serde_json::Value::String(s)) => s.clone(),
            (false, serde_json::Value::Null) => "<no value>".to_string(),
            // Go's fmt prints slices as [a b c].
            (false, serde_json::Value::Array(items)) => format!(
                "[{}]",
                items
                    .iter()
                    .map(|i| i
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| i.to_string()))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            (false, x) => x.to_string(),
        };
        out.push_str(&s);
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// Header text for a template column (`{{.ID}}` → `ID`), as Docker does.
fn template_header(text: &str) -> String {
    let mut out = String::new();
    let text = text.replace("\\t", "\t");
    let mut rest = text.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let expr = rest[start + 2..start + end].trim();
        let name = expr.trim_start_matches("json ").trim_start_matches('.');
        out.push_str(&name.to_ascii_uppercase());
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// Lay out tab-separated lines as Docker's tabwriter does (3 spaces padding).
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

/// Print rows in the chosen format.
pub fn print(format: &Format<'_>, rows: &[Row]) -> String {
    match format {
        Format::Json => rows
            .iter()
            .map(|r| serde_json::to_string(r).unwrap_or_default() + "\n")
            .collect(),
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
            align(&lines)
        }
        Format::Template { text, header } => {
            let mut lines = Vec::new();
            if *header {
                lines.push(template_header(text));
            }
            for r in rows {
                lines.push(render_template(text, r));
            }
            if *header || text.contains("\\t") {
                align(&lines)
            } else {
                lines.iter().map(|l| format!("{l}\n")).collect()
            }
        }
    }
}

/// "2 minutes", "About an hour", as Docker's `units.HumanDuration`.
pub fn human_duration(d: chrono::Duration) -> String {
    let s = d.num_seconds();
    if s < 1 {
        return "Less than a second".into();
    }
    if s == 1 {
        return "1 second".into();
    }
    if s < 60 {
        return format!("{s} seconds");
    }
    let m = d.num_minutes();
    if m == 1 {
        return "About a minute".into();
    }
    if m < 60 {
        return format!("{m} minutes");
    }
    let h = (d.num_seconds() as f64 / 3600.0).round() as i64;
    if h == 1 {
        return "About an hour".into();
    }
    if h < 48 {
        return format!("{h} hours");
    }
    if h < 24 * 7 * 2 {
        return format!("{} days", h / 24);
    }
    if h < 24 * 30 * 2 {
        return format!("{} weeks", h / 24 / 7);
    }
    if h < 24 * 365 * 2 {
        return format!("{} months", h / 24 / 30);
    }
    format!("{} years", h / 24 / 365)
}

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

    #[test]
    fn templates_and_tables() {
        let mut r = Row::new();
        r.insert("ID", "abc".into());
        r.insert("Names", "web".into());
        assert_eq!(render_template("{{.ID}} {{.Names}}", &r), "abc web");
        assert_eq!(render_template("{{json .ID}}", &r), "\"abc\"");
        let out = print(
            &Format::Table(&[("CONTAINER ID", "ID"), ("NAMES", "Names")]),
            &[r.clone()],
        );
        assert_eq!(out, "CONTAINER ID   NAMES\nabc            web\n");
        let out = print(
            &Format::parse(Some("table {{.ID}}\\t{{.Names}}"), &[]),
            &[r],
        );
        assert_eq!(out, "ID    NAMES\nabc   web\n");
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
