//! Go's `text/template`, as Docker's `--format` uses it.
//!
//! This crate owns the template language: parsing (`range`, `if`/`else if`,
//! `with`, `define`/`template`/`block`, variables, pipelines, `{{-`/`-}}`
//! trimming, comments), executing over a [`Value`], Go's builtins (`and or not
//! eq ne lt le gt ge len index slice print printf println html js urlquery`)
//! and Docker's functions (`json join split title lower upper pad truncate`),
//! and printing values as Go's `fmt` does (`map[a:1]`, `[a b]`, `30s`,
//! `<no value>`, `<nil>`). Error messages have Go's shape
//! (`template: :1:2: executing "" at <.Nope>: …`). It does no I/O and knows
//! nothing of the CLI: callers build the data (see [`Shape`] for JSON
//! documents) and decide how to print tables and errors.
//!
//! Why our own and not the `gotmpl` crate: gotmpl 0.6 is a careful port, but
//! its values are untyped maps, so it cannot tell a Go struct (where Docker
//! reports `can't evaluate field Nope in type …`) from a map (`<no value>`),
//! has no `time.Duration`/`time.Time` values to print `30s`, no methods
//! (`.Label "k"`), and its execution errors carry no `line:col` or `at <node>`,
//! which Docker's messages show. Those are the parts Docker's output depends on.
#![forbid(unsafe_code)]

/// Errors with Go's wording.
pub mod error;
/// The executor.
mod exec;
/// Builtin and Docker functions.
pub mod funcs;
/// The lexer.
mod lex;
/// The parser and the tree.
pub mod parse;
/// Go's `fmt.Sprintf`.
pub mod printf;
/// JSON documents to typed values.
pub mod shape;
/// Values and how Go prints them.
pub mod value;

pub use error::{ExecError, ParseError, TemplateError};
pub use exec::Missing;
pub use funcs::FuncSet;
pub use shape::{raw, Shape};
pub use value::{Method, Struct, Value};

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    src: String,
    tree: parse::Tree,
}

impl Template {
    /// Parse `src` as the unnamed template Docker uses.
    pub fn parse(src: &str) -> Result<Template, ParseError> {
        Template::parse_named("", src)
    }

    /// Parse `src` under `name` (`docker version` names its template `version`).
    pub fn parse_named(name: &str, src: &str) -> Result<Template, ParseError> {
        let tree = parse::parse(src, &funcs::names()).map_err(|mut e| {
            e.name = name.to_string();
            e
        })?;
        Ok(Template {
            name: name.to_string(),
            src: src.to_string(),
            tree,
        })
    }

    /// Run over `data` with Go's defaults (a missing map key is `<no value>`).
    pub fn execute(&self, data: &Value) -> Result<String, ExecError> {
        self.execute_with(data, FuncSet::Data, Missing::NoValue)
    }

    /// Run with a function set and a missing-key policy.
    pub fn execute_with(
        &self,
        data: &Value,
        funcs: FuncSet,
        missing: Missing,
    ) -> Result<String, ExecError> {
        let mut st = exec::State::new(&self.src, &self.tree, funcs, missing);
        st.name = self.name.clone();
        st.run(data)?;
        Ok(st.out)
    }
}

#[cfg(test)]
mod tests;
