//! Go's `fmt.Sprintf` for template values: the verbs `v s d q f e g t x X o b c T %`,
//! the flags `- + # 0 space`, width and precision, and Go's `%!verb(type=value)`
//! markers for mismatches.
use crate::value::{go_duration, go_float, Value};

struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    sharp: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Format `args` with Go's `fmt.Sprintf(format, args…)`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut next_arg = 0usize;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec {
            minus: false,
            plus: false,
            zero: false,
            space: false,
            sharp: false,
            width: None,
            prec: None,
        };
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            chars.next();
        }
        spec.width = number(&mut chars, args, &mut next_arg);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = Some(number(&mut chars, args, &mut next_arg).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next_arg) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next_arg += 1;
        out.push_str(&format_one(verb, &spec, arg));
    }
    if next_arg < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[next_arg..]
            .iter()
            .map(|a| format!("{}={}", a.type_name(), a.go_string()))
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

fn number(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    args: &[Value],
    next_arg: &mut usize,
) -> Option<usize> {
    if chars.peek() == Some(&'*') {
        chars.next();
        let v = args.get(*next_arg).and_then(Value::as_int);
        *next_arg += 1;
        return v.and_then(|n| usize::try_from(n).ok());
    }
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        n = Some(n.unwrap_or(0) * 10 + d as usize);
        chars.next();
    }
    n
}

fn bad(verb: char, arg: &Value) -> String {
    format!("%!{verb}({}={})", arg.type_name(), arg.go_string())
}

fn format_one(verb: char, spec: &Spec, arg: &Value) -> String {
    let body = match (verb, arg) {
        ('T', a) => return pad(spec, a.type_name(), false),
        ('v', Value::Float(f)) | ('g', Value::Float(f)) if spec.prec.is_none() => {
            return pad_num(spec, go_float(*f))
        }
        ('v', a) => a.go_string(),
        ('s', Value::String(s)) => s.clone(),
        ('s', Value::Duration(d)) => go_duration(*d),
        ('s', Value::Time(_)) => arg.go_string(),
        ('s', Value::List(_) | Value::Map(_) | Value::Struct(_)) => arg.go_string(),
        ('q', Value::String(s)) => go_quote(s),
        ('t', Value::Bool(b)) => b.to_string(),
        ('d', Value::Int(n) | Value::Duration(n)) => return pad_num(spec, signed(spec, *n)),
        ('d', Value::Uint(n)) => return pad_num(spec, plus(spec, n.to_string())),
        ('x' | 'X' | 'o' | 'b', Value::Int(_) | Value::Uint(_) | Value::Duration(_)) => {
            let n = match arg {
                Value::Uint(u) => i128::from(*u),
                _ => i128::from(arg.as_int().unwrap_or(0)),
            };
            let (neg, m) = (n < 0, n.unsigned_abs());
            let mut s = match verb {
                'x' => format!("{m:x}"),
                'X' => format!("{m:X}"),
                'o' => format!("{m:o}"),
                _ => format!("{m:b}"),
            };
            if spec.sharp {
                s = match verb {
                    'x' => format!("0x{s}"),
                    'X' => format!("0X{s}"),
                    'o' => format!("0{s}"),
                    _ => s,
                };
            }
            return pad_num(spec, if neg { format!("-{s}") } else { plus(spec, s) });
        }
        ('x' | 'X', Value::String(s)) => {
            let h: String = s.bytes().map(|b| format!("{b:02x}")).collect();
            if verb == 'X' {
                h.to_uppercase()
            } else {
                h
            }
        }
        ('c', Value::Int(n)) => u32::try_from(*n)
            .ok()
            .and_then(char::from_u32)
            .unwrap_or('\u{FFFD}')
            .to_string(),
        ('f' | 'F' | 'e' | 'g', Value::Float(_) | Value::Int(_))
            if matches!(arg, Value::Float(_)) =>
        {
            let Value::Float(f) = arg else {
                return bad(verb, arg);
            };
            let p = spec.prec.unwrap_or(6);
            let s = match verb {
                'e' => fix_exp(&format!("{f:.p$e}")),
                'g' => go_float_prec(*f, p),
                _ => format!("{f:.p$}"),
            };
            return pad_num(spec, plus(spec, s));
        }
        _ => return bad(verb, arg),
    };
    let body = match (verb, spec.prec) {
        ('s' | 'v', Some(p)) => body.chars().take(p).collect(),
        _ => body,
    };
    pad(spec, body, false)
}

fn signed(spec: &Spec, n: i64) -> String {
    if n < 0 {
        n.to_string()
    } else {
        plus(spec, n.to_string())
    }
}

fn plus(spec: &Spec, s: String) -> String {
    if s.starts_with('-') {
        s
    } else if spec.plus {
        format!("+{s}")
    } else if spec.space {
        format!(" {s}")
    } else {
        s
    }
}

fn fix_exp(s: &str) -> String {
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, d) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{d:0>2}")
        }
        None => s.to_string(),
    }
}

fn go_float_prec(f: f64, p: usize) -> String {
    let p = p.max(1);
    if f == 0.0 {
        return "0".into();
    }
    let exp = f.abs().log10().floor() as i64;
    if exp < -4 || exp >= p as i64 {
        let s = format!("{f:.prec$e}", prec = p - 1);
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = if m.contains('.') {
            m.trim_end_matches('0').trim_end_matches('.')
        } else {
            m
        };
        return fix_exp(&format!("{m}e{e}"));
    }
    let decimals = usize::try_from(p as i64 - 1 - exp).unwrap_or(0);
    let s = format!("{f:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn pad_num(spec: &Spec, s: String) -> String {
    pad(spec, s, true)
}

fn pad(spec: &Spec, s: String, numeric: bool) -> String {
    let Some(w) = spec.width else {
        return s;
    };
    let len = s.chars().count();
    if len >= w {
        return s;
    }
    let fill = w - len;
    if spec.minus {
        format!("{s}{}", " ".repeat(fill))
    } else if spec.zero && numeric {
        let (sign, digits) = match s.chars().next() {
            Some(c @ ('-' | '+' | ' ')) => (c.to_string(), s[1..].to_string()),
            _ => (String::new(), s),
        };
        format!("{sign}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_as_go() {
        // Recorded from docker 20.10: {{printf "%q %x %5s|%-5s|%05d %t %v %v %v %6.2f|%s" "a\"b" 255 "ab" "ab" 42 true 1.5 1000000.0 3 2.5 1}}
        let args = [
            Value::from("a\"b"),
            Value::Int(255),
            Value::from("ab"),
            Value::from("ab"),
            Value::Int(42),
            Value::Bool(true),
            Value::Float(1.5),
            Value::Float(1_000_000.0),
            Value::Int(3),
            Value::Float(2.5),
            Value::Int(1),
        ];
        assert_eq!(
            sprintf("%q %x %5s|%-5s|%05d %t %v %v %v %6.2f|%s", &args),
            "\"a\\\"b\" ff    ab|ab   |00042 true 1.5 1e+06 3   2.50|%!s(int=1)"
        );
        assert_eq!(sprintf("%5.2f", &[Value::Float(2.5678)]), " 2.57");
        assert_eq!(
            sprintf(
                "%d %v",
                &[
                    Value::Duration(30_000_000_000),
                    Value::Duration(30_000_000_000)
                ]
            ),
            "30000000000 30s"
        );
        assert_eq!(sprintf("%d", &[]), "%!d(MISSING)");
        assert_eq!(sprintf("x", &[Value::Int(1)]), "x%!(EXTRA int=1)");
        assert_eq!(
            sprintf("%T %T", &[Value::Int(1), Value::from("a")]),
            "int string"
        );
        assert_eq!(
            sprintf(
                "%.3s|%e|%g",
                &[
                    Value::from("abcdef"),
                    Value::Float(1234.5),
                    Value::Float(0.00001234)
                ]
            ),
            "abc|1.234500e+03|1.234e-05"
        );
    }
}
