//! Errors with Go's wording, so scripts that match on Docker's messages keep working.
use thiserror::Error;

/// A template that cannot be parsed: `template: NAME:LINE: MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("template: {name}:{line}: {message}")]
pub struct ParseError {
    /// The template's name (Docker's are empty).
    pub name: String,
    /// 1-based line of the offending token.
    pub line: usize,
    /// What is wrong, in Go's words (`function "foo" not defined`).
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> Self {
        ParseError {
            name: String::new(),
            line,
            message: message.into(),
        }
    }
}

/// A template that failed while running:
/// `template: NAME:LINE:COL: executing "NAME" at <NODE>: MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("template: {name}:{line}:{col}: executing {name:?} at <{context}>: {message}")]
pub struct ExecError {
    /// The name of the template being executed.
    pub name: String,
    /// 1-based line of the node.
    pub line: usize,
    /// 0-based byte column of the node, as Go counts it.
    pub col: usize,
    /// The node's text.
    pub context: String,
    /// What went wrong (`map has no entry for key "Nope"`).
    pub message: String,
}

/// Either kind of failure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    /// The template text is malformed.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The template ran into data it cannot handle.
    #[error(transparent)]
    Exec(#[from] ExecError),
}
