//! Splitting `command: "a 'b c'"` into words, as compose-go does with
//! go-shellwords: white space separates words, single quotes are literal,
//! double quotes group, a backslash outside single quotes takes the next
//! character literally. No variables, globs or operators.

/// The words of `s`; `None` when a quote is left open.
pub(crate) fn split(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut buf = String::new();
    let mut in_word = false;
    let mut single = false;
    let mut double = false;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            buf.push(c);
            escaped = false;
            in_word = true;
            continue;
        }
        match c {
            '\\' if !single => {
                escaped = true;
                in_word = true;
            }
            '\'' if !double => {
                single = !single;
                in_word = true;
            }
            '"' if !single => {
                double = !double;
                in_word = true;
            }
            c if c.is_whitespace() && !single && !double => {
                if in_word {
                    words.push(std::mem::take(&mut buf));
                    in_word = false;
                }
            }
            c => {
                buf.push(c);
                in_word = true;
            }
        }
    }
    if single || double || escaped {
        return None;
    }
    if in_word {
        words.push(buf);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    fn w(s: &str) -> Vec<String> {
        split(s).unwrap()
    }

    #[test]
    fn words_and_quotes() {
        assert_eq!(w("npm run  start"), ["npm", "run", "start"]);
        assert_eq!(
            w("sh -c 'echo $HOME && ls'"),
            ["sh", "-c", "echo $HOME && ls"]
        );
        assert_eq!(w(r#"echo "a \"b\" c" d\ e"#), ["echo", "a \"b\" c", "d e"]);
        assert_eq!(w("a '' b"), ["a", "", "b"]);
        assert_eq!(w("  "), Vec::<String>::new());
        assert!(split("echo 'open").is_none());
    }
}
