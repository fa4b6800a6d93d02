//! The data a template runs on, with the little type information Go's printing
//! needs: structs (a missing field is an error) versus maps (a missing key is
//! `<no value>`), durations (`30s`), times, and methods such as `.Label "x"`.
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A method callable as `{{.Name arg…}}` on a struct (Docker's `.Label "k"`).
pub type Method = Arc<dyn Fn(&[Value]) -> Result<Value, String> + Send + Sync>;

/// A struct: Go type name (for error messages), fields in declaration order.
#[derive(Clone)]
pub struct Struct {
    /// Go's name for the type, as error messages show it (`*formatter.ContainerContext`).
    pub type_name: String,
    /// Fields in the order `json` prints them.
    pub fields: Vec<(String, Value)>,
    /// Methods taking arguments; looked up after fields.
    pub methods: BTreeMap<String, Method>,
    /// Whether `json` escapes `<`, `>`, `&` for this value: Docker's list rows
    /// marshal themselves with Go's `json.Marshal`, which does.
    pub json_escapes_html: bool,
    /// Fields `json` leaves out (nil pointers tagged `omitempty`, which the
    /// JSON document did not have).
    pub json_omitted: Vec<String>,
    /// Fields `json` writes as `null` (nil maps: `map[]` in text, `null` in
    /// Go's JSON).
    pub json_null: Vec<String>,
}

impl Struct {
    /// A struct with a type name and fields, no methods.
    pub fn new(type_name: impl Into<String>, fields: Vec<(String, Value)>) -> Self {
        Struct {
            type_name: type_name.into(),
            fields,
            methods: BTreeMap::new(),
            json_escapes_html: false,
            json_omitted: Vec::new(),
            json_null: Vec::new(),
        }
    }

    /// The field called `name`, if the struct has one.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// A template value, typed as far as Go's output depends on the type.
#[derive(Clone, Default)]
pub enum Value {
    /// Go's nil (a nil pointer or interface): prints `<nil>`.
    #[default]
    Nil,
    /// No value at all (Go's invalid `reflect.Value`): a missing map key. Prints `<no value>`.
    NoValue,
    /// `true` / `false`.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer (JSON numbers above `i64::MAX`).
    Uint(u64),
    /// A float64, printed as Go's `%v` does.
    Float(f64),
    /// A string.
    String(String),
    /// A `time.Duration` in nanoseconds: prints `30s`, marshals as a number.
    Duration(i64),
    /// A `time.Time`: prints `2006-01-02 15:04:05.999999999 -0700 MST`.
    Time(chrono::DateTime<chrono::FixedOffset>),
    /// A slice: prints `[a b]`.
    List(Vec<Value>),
    /// A `map[string]T`: prints `map[a:1 b:2]`, a missing key is `<no value>`.
    Map(BTreeMap<String, Value>),
    /// A struct: prints `{1 2}`, a missing field is an execution error.
    Struct(Struct),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json(false))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl Value {
    /// Go's truth: false, 0, nil, and empty strings, slices and maps are false.
    pub fn truth(&self) -> bool {
        match self {
            Value::Nil | Value::NoValue => false,
            Value::Bool(b) => *b,
            Value::Int(n) | Value::Duration(n) => *n != 0,
            Value::Uint(n) => *n != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Time(_) | Value::Struct(_) => true,
        }
    }

    /// Go's type name, for `printf "%T"` and error messages.
    pub fn type_name(&self) -> String {
        match self {
            Value::Nil | Value::NoValue => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Uint(_) => "uint64".into(),
            Value::Float(_) => "float64".into(),
            Value::String(_) => "string".into(),
            Value::Duration(_) => "time.Duration".into(),
            Value::Time(_) => "time.Time".into(),
            Value::List(_) => "[]interface {}".into(),
            Value::Map(_) => "map[string]interface {}".into(),
            Value::Struct(s) => s.type_name.clone(),
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer inside (Int, Uint that fits, Duration).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) | Value::Duration(n) => Some(*n),
            Value::Uint(n) => i64::try_from(*n).ok(),
            _ => None,
        }
    }

    /// Go's `fmt.Sprint(v)` (what `{{.}}` and `%v` print).
    pub fn go_string(&self) -> String {
        let mut out = String::new();
        self.write_go(&mut out, true);
        out
    }

    fn write_go(&self, out: &mut String, top: bool) {
        match self {
            Value::Nil => out.push_str("<nil>"),
            Value::NoValue => out.push_str("<no value>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(n) => out.push_str(&n.to_string()),
            Value::Uint(n) => out.push_str(&n.to_string()),
            Value::Float(f) => out.push_str(&go_float(*f)),
            Value::String(s) => out.push_str(s),
            Value::Duration(d) => out.push_str(&go_duration(*d)),
            Value::Time(t) => out.push_str(&go_time(t)),
            Value::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write_go(out, false);
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push_str("map[");
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write_go(out, false);
                }
                out.push(']');
            }
            Value::Struct(s) => {
                // Go prints a nested struct pointer as an address; at the top it
                // dereferences. Print the fields in both cases: more useful.
                let _ = top;
                out.push('{');
                for (i, (_, v)) in s.fields.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write_go(out, false);
                }
                out.push('}');
            }
        }
    }

    /// Compact JSON as Go's encoder writes it; `escape_html` as `json.Marshal`.
    pub fn to_json(&self, escape_html: bool) -> String {
        let mut out = String::new();
        self.write_json(&mut out, escape_html);
        out
    }

    fn write_json(&self, out: &mut String, escape_html: bool) {
        match self {
            Value::Nil | Value::NoValue => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(n) | Value::Duration(n) => out.push_str(&n.to_string()),
            Value::Uint(n) => out.push_str(&n.to_string()),
            Value::Float(f) => out.push_str(&json_float(*f)),
            Value::String(s) => json_string(out, s, escape_html),
            Value::Time(t) => json_string(
                out,
                &t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                escape_html,
            ),
            Value::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out, escape_html);
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_string(out, k, escape_html);
                    out.push(':');
                    v.write_json(out, escape_html);
                }
                out.push('}');
            }
            Value::Struct(s) => {
                let escape_html = escape_html || s.json_escapes_html;
                out.push('{');
                let mut first = true;
                for (k, v) in &s.fields {
                    if s.json_omitted.contains(k) {
                        continue;
                    }
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    json_string(out, k, escape_html);
                    out.push(':');
                    if s.json_null.contains(k) {
                        out.push_str("null");
                    } else {
                        v.write_json(out, escape_html);
                    }
                }
                out.push('}');
            }
        }
    }
}

/// Go's `encoding/json` string escaping.
fn json_string(out: &mut String, s: &str, escape_html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' if escape_html => out.push_str(&format!("\\u{:04x}", c as u32)),
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's JSON float: shortest representation, exponent outside 1e-6..1e21.
fn json_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        return format!("{f:.0}");
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        return fix_exponent(&s, false);
    }
    format!("{f}")
}

/// Go's `%v` for a float64: `%g` with the shortest digits, exponent when < -4 or >= 6.
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let exp = f.abs().log10().floor() as i32;
    if !(-4..6).contains(&exp) {
        return fix_exponent(&format!("{f:e}"), true);
    }
    format!("{f}")
}

/// Rust's `1e6` / `1.5e-7` → Go's `1e+06` / `1.5e-07`.
fn fix_exponent(s: &str, two_digits: bool) -> String {
    let Some((mant, exp)) = s.split_once('e') else {
        return s.to_string();
    };
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    if two_digits && digits.len() < 2 {
        format!("{mant}e{sign}0{digits}")
    } else {
        format!("{mant}e{sign}{digits}")
    }
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `30s`, `1.5ms`, `0s`.
pub fn go_duration(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let neg = d < 0;
    let u = d.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (unit, div) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&frac(u, div));
        out.push_str(unit);
    } else {
        let secs = u / 1_000_000_000;
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&frac(s * 1_000_000_000 + u % 1_000_000_000, 1_000_000_000));
        out.push('s');
    }
    if neg {
        format!("-{out}")
    } else {
        out
    }
}

/// `n / div` with the fraction's trailing zeros dropped (`1.5`, `30`).
fn frac(n: u64, div: u64) -> String {
    let whole = n / div;
    let rest = n % div;
    if rest == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let f = format!("{rest:0width$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

/// Go's `time.Time.String()`.
pub fn go_time(t: &chrono::DateTime<chrono::FixedOffset>) -> String {
    let base = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    let off = t.format("%z").to_string();
    let zone = if t.offset().local_minus_utc() == 0 {
        "UTC".to_string()
    } else {
        off.clone()
    };
    format!("{base}{frac} {off} {zone}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go() {
        assert_eq!(go_duration(30_000_000_000), "30s");
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(1_500_000), "1.5ms");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(-2_000_000_000), "-2s");
        assert_eq!(go_duration(999), "999ns");
    }

    #[test]
    fn floats_print_as_go() {
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(1_000_000.0), "1e+06");
        assert_eq!(go_float(3.0), "3");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(json_float(1_000_000.0), "1000000");
        assert_eq!(json_float(2.5), "2.5");
    }

    #[test]
    fn times_print_as_go() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-12-03T20:11:20.129957174Z").unwrap();
        assert_eq!(go_time(&t), "2026-12-03 20:11:20.129957174 +0000 UTC");
        let t = chrono::DateTime::parse_from_rfc3339("2026-12-03T20:11:20+01:00").unwrap();
        assert_eq!(go_time(&t), "2026-12-03 20:11:20 +0100 +0100");
    }

    #[test]
    fn composite_values_print_as_go() {
        let mut m = BTreeMap::new();
        m.insert("b".to_string(), Value::Int(2));
        m.insert("a".to_string(), Value::from("x"));
        assert_eq!(Value::Map(m).go_string(), "map[a:x b:2]");
        let l = Value::List(vec![Value::from("a"), Value::Bool(true), Value::Nil]);
        assert_eq!(l.go_string(), "[a true <nil>]");
        assert_eq!(Value::from("<a&b>").to_json(false), "\"<a&b>\"");
        assert_eq!(
            Value::from("<a&b>").to_json(true),
            "\"\\u003ca\\u0026b\\u003e\""
        );
    }
}
