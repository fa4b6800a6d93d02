//! `.dockerignore`: Go `filepath.Match` patterns with `**` and `!`
//! exceptions, matched as moby's patternmatcher does: patterns are cleaned
//! paths relative to the context root, the last matching pattern decides,
//! and a pattern that matches a directory excludes everything under it.

/// One pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    parts: Vec<String>,
    exclusion: bool,
}

/// The compiled `.dockerignore`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

/// Clean a slash path: drop `.`, resolve `..` (never above the root),
/// no leading or trailing slash.
pub fn clean(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    out.join("/")
}

impl Ignore {
    /// Parse the file's text.
    pub fn parse(text: &str) -> Ignore {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let mut l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let exclusion = l.starts_with('!');
            if exclusion {
                l = l[1..].trim();
            }
            let c = clean(l);
            if c.is_empty() {
                continue;
            }
            patterns.push(Pattern {
                parts: c.split('/').map(str::to_string).collect(),
                exclusion,
            });
        }
        Ignore { patterns }
    }

    /// No patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Is `path` (relative to the context root, `/`-separated) excluded?
    pub fn excluded(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let mut excluded = false;
        for p in &self.patterns {
            // The pattern matches the path or one of its parent dirs.
            let hit = (1..=parts.len()).any(|n| match_parts(&p.parts, &parts[..n]));
            if hit {
                excluded = !p.exclusion;
            }
        }
        excluded
    }

    /// Could anything under directory `dir` be re-included by an `!`
    /// pattern (so the walk must descend into an excluded dir)?
    pub fn may_reinclude_under(&self, dir: &str) -> bool {
        let parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
        self.patterns.iter().any(|p| {
            p.exclusion
                && (p.parts.iter().any(|x| x.contains("**"))
                    || p.parts.len() > parts.len() && match_parts(&p.parts[..parts.len()], &parts))
        })
    }
}

/// Match pattern components against path components; `**` matches any
/// number of components (zero included).
fn match_parts(pat: &[String], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_parts(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((p, prest)) => go_match(first, p) && match_parts(rest, prest),
            None => false,
        },
    }
}

/// Go's `filepath.Match` for one component (`*`, `?`, `[...]`, `\`).
pub fn go_match(pat: &str, name: &str) -> bool {
    dockerfile::expand::glob_match(pat, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_cases() {
        let ig = Ignore::parse(
            "# comment\n\n*.log\n!keep.log\nbuild/\n**/node_modules\n/secret.txt\ndocs/**/*.md\n!docs/README.md\ntmp?\n",
        );
        let cases = [
            ("app.log", true),
            ("keep.log", false),
            ("sub/app.log", false), // *.log is anchored at the root
            ("build", true),
            ("build/out/bin", true),
            ("node_modules/x", true),
            ("a/b/node_modules/y.js", true),
            ("secret.txt", true),
            ("docs/a/b/x.md", true),
            ("docs/x.md", true),
            ("docs/README.md", false),
            ("docs/x.txt", false),
            ("tmp1", true),
            ("tmp12", false),
            ("src/main.rs", false),
        ];
        for (path, want) in cases {
            assert_eq!(ig.excluded(path), want, "{path}");
        }
        assert!(Ignore::parse("docs\n!docs/keep").may_reinclude_under("docs"));
        assert!(!Ignore::parse("docs\n").may_reinclude_under("docs"));
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean("./a//b/../c/"), "a/c");
        assert_eq!(clean("/x"), "x");
        assert_eq!(clean("../../x"), "x");
        assert_eq!(clean("."), "");
    }
}
