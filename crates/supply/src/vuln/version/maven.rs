//! Maven's version order (ComparableVersion, Maven 3): the version is
//! split at `.`, at `-` and where digits and letters meet into numbers,
//! qualifiers and nested lists (after `-` or a letter/digit change);
//! trailing zeros and empty qualifiers do not count (`1.0 == 1`), a number
//! beats a qualifier, and qualifiers order `alpha < beta < milestone < rc
//! = cr < snapshot < "" = ga = final = release < sp`, unknown ones after
//! `sp` alphabetically.
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Int(Vec<u8>),
    Str(String),
    List(Vec<Item>),
}

const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
const RELEASE: usize = 5;

fn qualifier_key(q: &str) -> (usize, &str) {
    match QUALIFIERS.iter().position(|x| *x == q) {
        Some(i) => (i, ""),
        None => (QUALIFIERS.len(), q),
    }
}

fn string_item(s: &str, followed_by_digit: bool) -> Item {
    let s = if followed_by_digit && s.len() == 1 {
        match s {
            "a" => "alpha",
            "b" => "beta",
            "m" => "milestone",
            other => other,
        }
    } else {
        s
    };
    let s = match s {
        "ga" | "final" | "release" => "",
        "cr" => "rc",
        other => other,
    };
    Item::Str(s.to_string())
}

fn parse_item(digit: bool, s: &str) -> Item {
    if digit {
        let t = s.trim_start_matches('0');
        Item::Int(t.as_bytes().to_vec())
    } else {
        string_item(s, false)
    }
}

impl Item {
    fn is_null(&self) -> bool {
        match self {
            Item::Int(d) => d.is_empty(),
            Item::Str(s) => s.is_empty(),
            Item::List(l) => l.is_empty(),
        }
    }

    /// `self` against an absent item (the other version is shorter).
    fn cmp_null(&self) -> Ordering {
        match self {
            Item::Int(d) => {
                if d.is_empty() {
                    Ordering::Equal
                } else {
                    Ordering::Greater
                }
            }
            Item::Str(s) => qualifier_key(s).cmp(&(RELEASE, "")),
            Item::List(l) => l.first().map_or(Ordering::Equal, Item::cmp_null),
        }
    }

    fn cmp_item(&self, other: &Item) -> Ordering {
        match (self, other) {
            (Item::Int(a), Item::Int(b)) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
            (Item::Int(_), _) => Ordering::Greater,
            (Item::Str(_), Item::Int(_)) => Ordering::Less,
            (Item::Str(a), Item::Str(b)) => qualifier_key(a).cmp(&qualifier_key(b)),
            (Item::Str(_), Item::List(_)) => Ordering::Less,
            (Item::List(_), Item::Int(_)) => Ordering::Less,
            (Item::List(_), Item::Str(_)) => Ordering::Greater,
            (Item::List(a), Item::List(b)) => {
                for i in 0..a.len().max(b.len()) {
                    let o = match (a.get(i), b.get(i)) {
                        (Some(x), Some(y)) => x.cmp_item(y),
                        (Some(x), None) => x.cmp_null(),
                        (None, Some(y)) => y.cmp_null().reverse(),
                        (None, None) => Ordering::Equal,
                    };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                Ordering::Equal
            }
        }
    }
}

/// Remove null items (zeros, release qualifiers, empty lists) from the
/// end of a list, looking past non-null lists, up to the last other item.
fn normalize(list: &mut Vec<Item>) {
    for item in list.iter_mut() {
        if let Item::List(l) = item {
            normalize(l);
        }
    }
    let mut i = list.len();
    while i > 0 {
        i -= 1;
        if list[i].is_null() {
            list.remove(i);
        } else if !matches!(list[i], Item::List(_)) {
            break;
        }
    }
}

fn parse(v: &str) -> Item {
    let v = v.trim().to_lowercase();
    // The lists being built: the outermost first; items go to the last.
    let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
    let b = v.as_bytes();
    let mut digit = false;
    let mut start = 0;
    fn push_list(stack: &mut Vec<Vec<Item>>) {
        stack.push(Vec::new());
    }
    for i in 0..b.len() {
        let c = b[i];
        if c == b'.' || c == b'-' {
            let top = stack.last_mut().expect("a list");
            if i == start {
                top.push(Item::Int(Vec::new()));
            } else {
                top.push(parse_item(digit, &v[start..i]));
            }
            start = i + 1;
            if c == b'-' {
                push_list(&mut stack);
            }
        } else if c.is_ascii_digit() {
            if !digit && i > start {
                let s = string_item(&v[start..i], true);
                stack.last_mut().expect("a list").push(s);
                start = i;
                push_list(&mut stack);
            }
            digit = true;
        } else {
            if digit && i > start {
                let n = parse_item(true, &v[start..i]);
                stack.last_mut().expect("a list").push(n);
                start = i;
                push_list(&mut stack);
            }
            digit = false;
        }
    }
    if b.len() > start {
        let item = parse_item(digit, &v[start..]);
        stack.last_mut().expect("a list").push(item);
    }
    while stack.len() > 1 {
        let inner = stack.pop().expect("a list");
        stack.last_mut().expect("a list").push(Item::List(inner));
    }
    let mut top = stack.pop().unwrap_or_default();
    normalize(&mut top);
    Item::List(top)
}

/// `a` against `b` in Maven's order.
pub fn compare(a: &str, b: &str) -> Ordering {
    parse(a).cmp_item(&parse(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn pairs_in_maven_order() {
        // From Maven's ComparableVersionTest.
        let pairs = [
            ("1", "1.0", Equal),
            ("1", "1.0.0", Equal),
            ("1.0", "1-0", Equal),
            ("1", "1-ga", Equal),
            ("1", "1.final", Equal),
            ("1a", "1-a", Equal),
            ("1a1", "1-alpha-1", Equal),
            ("1-alpha", "1-beta", Less),
            ("1-beta", "1-milestone", Less),
            ("1-milestone", "1-rc", Less),
            ("1-rc", "1-cr", Equal),
            ("1-rc", "1-snapshot", Less),
            ("1-snapshot", "1", Less),
            ("1", "1-sp", Less),
            ("1-sp", "1-abc", Less),
            ("1-abc", "1-1", Less),
            ("1-1", "1.1", Less),
            ("1.2", "1.10", Less),
            ("2.0.0-M1", "2.0.0", Less),
            ("2.13.4", "2.13.4.2", Less),
            ("2.9.10.8", "2.10.0", Less),
            ("1.7.36", "2.0.0-alpha1", Less),
        ];
        for (a, b, want) in pairs {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }
}
