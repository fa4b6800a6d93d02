//! Functions: Go's builtins (`eq`, `index`, `printf`, …) and Docker's
//! (`json`, `join`, `split`, `title`, `lower`, `upper`, `pad`, `truncate`).
//! `and`/`or` are evaluated lazily by the executor and are not here.
use std::collections::{BTreeMap, BTreeSet};

use crate::printf::sprintf;
use crate::value::Value;

/// Why a function call failed.
#[derive(Debug)]
pub enum FuncError {
    /// The arguments do not fit the function (Go reports these without "error calling").
    Args(String),
    /// The function ran and failed: reported as `error calling NAME: …`.
    Call(String),
}

/// A template function.
pub type Func = fn(&[Value]) -> Result<Value, FuncError>;

/// Which functions the template sees: Docker's as they behave on rows, or the
/// header variants Docker uses to print a `table` header (they return their first
/// argument, so `{{upper .Names}}` heads its column with `NAMES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FuncSet {
    /// For data.
    Data,
    /// For the header row.
    Header,
}

/// Names the parser accepts.
pub fn names() -> BTreeSet<&'static str> {
    let mut s: BTreeSet<&'static str> = table(FuncSet::Data).keys().copied().collect();
    s.insert("and");
    s.insert("or");
    s
}

/// The function table for `set`.
pub fn table(set: FuncSet) -> BTreeMap<&'static str, Func> {
    let mut m: BTreeMap<&'static str, Func> = BTreeMap::new();
    m.insert("not", |a| {
        arity("not", a, 1)?;
        Ok(Value::Bool(!a[0].truth()))
    });
    m.insert("len", len);
    m.insert("index", index);
    m.insert("slice", slice);
    m.insert("print", |a| Ok(Value::String(sprint(a))));
    m.insert("println", |a| {
        let s: Vec<String> = a.iter().map(Value::go_string).collect();
        Ok(Value::String(s.join(" ") + "\n"))
    });
    m.insert("printf", |a| {
        let Some(Value::String(f)) = a.first() else {
            return Err(wrong_type("string", a.first()));
        };
        Ok(Value::String(sprintf(f, &a[1..])))
    });
    m.insert("eq", eq);
    m.insert("ne", |a| {
        arity("ne", a, 2)?;
        Ok(Value::Bool(!eq(a)?.truth()))
    });
    m.insert("lt", |a| cmp("lt", a, |o| o.is_lt()));
    m.insert("le", |a| cmp("le", a, |o| o.is_le()));
    m.insert("gt", |a| cmp("gt", a, |o| o.is_gt()));
    m.insert("ge", |a| cmp("ge", a, |o| o.is_ge()));
    m.insert("html", |a| Ok(Value::String(html_escape(&sprint(a)))));
    m.insert("urlquery", |a| Ok(Value::String(url_escape(&sprint(a)))));
    m.insert("js", |a| Ok(Value::String(js_escape(&sprint(a)))));
    match set {
        FuncSet::Data => {
            m.insert("json", |a| {
                arity("json", a, 1)?;
                Ok(Value::String(a[0].to_json(false)))
            });
            m.insert("join", |a| {
                arity("join", a, 2)?;
                let sep = want_str(&a[1])?;
                let items = want_strings(&a[0])?;
                Ok(Value::String(items.join(sep)))
            });
            m.insert("split", |a| {
                arity("split", a, 2)?;
                let (s, sep) = (want_str(&a[0])?, want_str(&a[1])?);
                let parts: Vec<Value> = if sep.is_empty() {
                    s.chars().map(|c| Value::String(c.to_string())).collect()
                } else {
                    s.split(sep).map(Value::from).collect()
                };
                Ok(Value::List(parts))
            });
            m.insert("title", |a| {
                arity("title", a, 1)?;
                Ok(Value::String(title(want_str(&a[0])?)))
            });
            m.insert("lower", |a| {
                arity("lower", a, 1)?;
                Ok(Value::String(want_str(&a[0])?.to_lowercase()))
            });
            m.insert("upper", |a| {
                arity("upper", a, 1)?;
                Ok(Value::String(want_str(&a[0])?.to_uppercase()))
            });
            m.insert("pad", |a| {
                arity("pad", a, 3)?;
                let s = want_str(&a[0])?;
                let (pre, post) = (want_int(&a[1])?, want_int(&a[2])?);
                if s.is_empty() {
                    return Ok(Value::from(""));
                }
                let sp = |n: i64| " ".repeat(usize::try_from(n).unwrap_or(0));
                Ok(Value::String(format!("{}{s}{}", sp(pre), sp(post))))
            });
            m.insert("truncate", |a| {
                arity("truncate", a, 2)?;
                let s = want_str(&a[0])?;
                let n = usize::try_from(want_int(&a[1])?).unwrap_or(0);
                if s.len() < n {
                    return Ok(Value::from(s));
                }
                let mut end = n;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                Ok(Value::from(&s[..end]))
            });
        }
        FuncSet::Header => {
            m.insert("json", first);
            m.insert("join", first);
            m.insert("split", first);
            m.insert("title", first);
            m.insert("lower", first);
            m.insert("upper", first);
            m.insert("pad", first);
            m.insert("truncate", first);
        }
    }
    m
}

fn first(a: &[Value]) -> Result<Value, FuncError> {
    Ok(a.first().cloned().unwrap_or(Value::NoValue))
}

fn arity(name: &str, a: &[Value], want: usize) -> Result<(), FuncError> {
    if a.len() != want {
        return Err(FuncError::Args(format!(
            "wrong number of args for {name}: want {want} got {}",
            a.len()
        )));
    }
    Ok(())
}

fn wrong_type(want: &str, v: Option<&Value>) -> FuncError {
    let got = v.map_or("<nil>".to_string(), Value::type_name);
    FuncError::Args(format!("wrong type for value; expected {want}; got {got}"))
}

fn want_str(v: &Value) -> Result<&str, FuncError> {
    v.as_str().ok_or_else(|| wrong_type("string", Some(v)))
}

fn want_int(v: &Value) -> Result<i64, FuncError> {
    v.as_int().ok_or_else(|| wrong_type("int", Some(v)))
}

fn want_strings(v: &Value) -> Result<Vec<String>, FuncError> {
    match v {
        Value::List(items) => Ok(items.iter().map(Value::go_string).collect()),
        Value::Nil | Value::NoValue => Ok(Vec::new()),
        other => Err(wrong_type("[]string", Some(other))),
    }
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
pub fn sprint(a: &[Value]) -> String {
    let mut out = String::new();
    for (i, v) in a.iter().enumerate() {
        if i > 0 && !matches!(v, Value::String(_)) && !matches!(a[i - 1], Value::String(_)) {
            out.push(' ');
        }
        out.push_str(&v.go_string());
    }
    out
}

/// Go's `strings.Title`: upper-case the first letter of every word.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_');
    }
    out
}

fn len(a: &[Value]) -> Result<Value, FuncError> {
    arity("len", a, 1)?;
    let n = match &a[0] {
        Value::String(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.len(),
        Value::Nil => return Err(FuncError::Call("len of nil pointer".into())),
        Value::NoValue => return Err(FuncError::Call("len of untyped nil".into())),
        other => {
            return Err(FuncError::Call(format!(
                "len of type {}",
                other.type_name()
            )))
        }
    };
    Ok(Value::Int(n as i64))
}

fn int_index(v: &Value) -> Result<i64, FuncError> {
    v.as_int().ok_or_else(|| {
        FuncError::Call(format!(
            "cannot index slice/array with type {}",
            v.type_name()
        ))
    })
}

fn index(a: &[Value]) -> Result<Value, FuncError> {
    let Some((item, idxs)) = a.split_first() else {
        return Err(FuncError::Args(
            "wrong number of args for index: want at least 1 got 0".into(),
        ));
    };
    let mut cur = item.clone();
    for idx in idxs {
        cur = match &cur {
            Value::List(l) => {
                let i = int_index(idx)?;
                usize::try_from(i)
                    .ok()
                    .and_then(|u| l.get(u))
                    .cloned()
                    .ok_or_else(|| FuncError::Call(format!("index out of range: {i}")))?
            }
            Value::String(s) => {
                let i = int_index(idx)?;
                usize::try_from(i)
                    .ok()
                    .and_then(|u| s.as_bytes().get(u))
                    .map(|b| Value::Int(i64::from(*b)))
                    .ok_or_else(|| FuncError::Call(format!("index out of range: {i}")))?
            }
            Value::Map(m) => {
                let Value::String(k) = idx else {
                    return Err(FuncError::Call(format!(
                        "value has type {}; should be string",
                        idx.type_name()
                    )));
                };
                match m.get(k) {
                    Some(v) => v.clone(),
                    // The zero value of the map's element type.
                    None if m.values().all(|v| matches!(v, Value::String(_))) => Value::from(""),
                    None => Value::NoValue,
                }
            }
            Value::Nil => return Err(FuncError::Call("index of nil pointer".into())),
            Value::NoValue => return Err(FuncError::Call("index of untyped nil".into())),
            other => {
                return Err(FuncError::Call(format!(
                    "can't index item of type {}",
                    other.type_name()
                )))
            }
        };
    }
    Ok(cur)
}

fn slice(a: &[Value]) -> Result<Value, FuncError> {
    let Some((item, idxs)) = a.split_first() else {
        return Err(FuncError::Args(
            "wrong number of args for slice: want at least 1 got 0".into(),
        ));
    };
    let len = match item {
        Value::String(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Nil | Value::NoValue => return Err(FuncError::Call("slice of untyped nil".into())),
        other => {
            return Err(FuncError::Call(format!(
                "can't slice item of type {}",
                other.type_name()
            )))
        }
    };
    if idxs.len() > 3 || (idxs.len() == 3 && matches!(item, Value::String(_))) {
        return Err(FuncError::Call(format!(
            "too many slice indexes: {}",
            idxs.len()
        )));
    }
    let mut bounds = [0usize, len, len];
    for (i, idx) in idxs.iter().enumerate() {
        let n = int_index(idx)?;
        let u = usize::try_from(n)
            .ok()
            .filter(|u| *u <= len)
            .ok_or_else(|| FuncError::Call(format!("index out of range: {n}")))?;
        bounds[i] = u;
    }
    if bounds[0] > bounds[1] {
        return Err(FuncError::Call(format!(
            "invalid slice index: {} > {}",
            bounds[0], bounds[1]
        )));
    }
    Ok(match item {
        Value::String(s) => Value::from(
            s.get(bounds[0]..bounds[1])
                .ok_or_else(|| FuncError::Call(format!("index out of range: {}", bounds[1])))?,
        ),
        Value::List(l) => Value::List(l[bounds[0]..bounds[1]].to_vec()),
        _ => Value::NoValue,
    })
}

/// Go's basic kinds, for comparisons.
#[derive(PartialEq)]
enum Kind {
    Bool,
    Int,
    Uint,
    Float,
    Str,
    Other,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::Duration(_) => Kind::Int,
        Value::Uint(_) => Kind::Uint,
        Value::Float(_) => Kind::Float,
        Value::String(_) => Kind::Str,
        _ => Kind::Other,
    }
}

fn is_nil(v: &Value) -> bool {
    matches!(v, Value::Nil | Value::NoValue)
}

/// Order two values of basic kind, or say why they cannot be compared.
fn order(a: &Value, b: &Value) -> Result<std::cmp::Ordering, FuncError> {
    let bad = || FuncError::Call("incompatible types for comparison".into());
    let (ka, kb) = (kind(a), kind(b));
    if ka == Kind::Other || kb == Kind::Other || ka == Kind::Bool || kb == Kind::Bool {
        return Err(FuncError::Call("invalid type for comparison".into()));
    }
    Ok(match (a, b) {
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y).ok_or_else(bad)?,
        (Value::Uint(x), Value::Uint(y)) => x.cmp(y),
        _ if ka == Kind::Float || kb == Kind::Float || ka == Kind::Str || kb == Kind::Str => {
            return Err(bad())
        }
        (Value::Uint(x), _) => i128::from(*x).cmp(&i128::from(b.as_int().unwrap_or(0))),
        (_, Value::Uint(y)) => i128::from(a.as_int().unwrap_or(0)).cmp(&i128::from(*y)),
        _ => a.as_int().unwrap_or(0).cmp(&b.as_int().unwrap_or(0)),
    })
}

fn eq(a: &[Value]) -> Result<Value, FuncError> {
    let Some((first, rest)) = a.split_first() else {
        return Err(FuncError::Args(
            "wrong number of args for eq: want at least 1 got 0".into(),
        ));
    };
    if rest.is_empty() {
        return Err(FuncError::Call("missing argument for comparison".into()));
    }
    for b in rest {
        let truth = match (kind(first), kind(b)) {
            (Kind::Other, _) | (_, Kind::Other) => {
                if is_nil(first) || is_nil(b) {
                    is_nil(first) && is_nil(b)
                } else if matches!(first, Value::List(_) | Value::Map(_))
                    || matches!(b, Value::List(_) | Value::Map(_))
                {
                    return Err(FuncError::Call(format!(
                        "non-comparable type {}: {}",
                        first.go_string(),
                        first.type_name()
                    )));
                } else {
                    first.to_json(false) == b.to_json(false)
                }
            }
            (Kind::Bool, Kind::Bool) => first.truth() == b.truth(),
            (Kind::Bool, _) | (_, Kind::Bool) => {
                return Err(FuncError::Call("incompatible types for comparison".into()))
            }
            _ => order(first, b)?.is_eq(),
        };
        if truth {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn cmp(name: &str, a: &[Value], f: fn(std::cmp::Ordering) -> bool) -> Result<Value, FuncError> {
    arity(name, a, 2)?;
    Ok(Value::Bool(f(order(&a[0], &a[1])?)))
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn url_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
