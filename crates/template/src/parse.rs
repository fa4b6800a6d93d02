//! The parser: tokens to a tree, with Go's checks done at parse time
//! (unknown functions, undefined variables, misplaced `{{end}}`/`{{else}}`).
use std::collections::{BTreeMap, BTreeSet};

use crate::error::ParseError;
use crate::lex::{lex, Tok, Token};

/// A node of the template body.
#[derive(Debug, Clone)]
pub enum Node {
    /// Literal text.
    Text(String),
    /// `{{pipeline}}`: prints the value unless it declares variables.
    Action(Pipe),
    /// `{{if}}`, `{{with}}`, `{{range}}`.
    Control(Box<Control>),
    /// `{{template "name" pipeline}}`.
    Template {
        /// Offset of the name.
        pos: usize,
        /// Template to run.
        name: String,
        /// Its dot, if given.
        pipe: Option<Pipe>,
    },
    /// `{{break}}`.
    Break,
    /// `{{continue}}`.
    Continue,
}

/// Which control structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    /// `if`.
    If,
    /// `with`.
    With,
    /// `range`.
    Range,
}

/// An `if`/`with`/`range` with its branches.
#[derive(Debug, Clone)]
pub struct Control {
    /// Which one.
    pub kind: ControlKind,
    /// The condition or the ranged value.
    pub pipe: Pipe,
    /// Body.
    pub list: Vec<Node>,
    /// `{{else}}` body.
    pub else_list: Vec<Node>,
}

/// A pipeline: optional variable declarations and `|`-separated commands.
#[derive(Debug, Clone)]
pub struct Pipe {
    /// Offset of the pipeline.
    pub pos: usize,
    /// `$x :=` / `$i, $v :=` names.
    pub decl: Vec<String>,
    /// `=` rather than `:=`.
    pub is_assign: bool,
    /// The commands.
    pub cmds: Vec<Command>,
}

/// One command: a function or value and its arguments.
#[derive(Debug, Clone)]
pub struct Command {
    /// Offset of the first word.
    pub pos: usize,
    /// The words.
    pub args: Vec<Arg>,
}

/// A word of a command.
#[derive(Debug, Clone)]
pub enum Arg {
    /// `.A.B` — fields of dot.
    Field(usize, Vec<String>),
    /// `$x.A.B`.
    Variable(usize, String, Vec<String>),
    /// `(pipe).A.B` or another term followed by fields.
    Chain(usize, Box<Arg>, Vec<String>),
    /// `.`.
    Dot(usize),
    /// `nil`.
    Nil(usize),
    /// `true`/`false`.
    Bool(usize, bool),
    /// A number constant and how it was written.
    Number(usize, Number, String),
    /// A string constant and how it was written.
    Str(usize, String, String),
    /// A function name.
    Ident(usize, String),
    /// `(pipeline)`.
    Pipe(usize, Box<Pipe>),
}

/// A numeric constant.
#[derive(Debug, Clone, Copy)]
pub enum Number {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
}

impl Arg {
    /// Offset of the word, for error positions.
    pub fn pos(&self) -> usize {
        match self {
            Arg::Field(p, _)
            | Arg::Variable(p, _, _)
            | Arg::Chain(p, _, _)
            | Arg::Dot(p)
            | Arg::Nil(p)
            | Arg::Bool(p, _)
            | Arg::Number(p, _, _)
            | Arg::Str(p, _, _)
            | Arg::Ident(p, _)
            | Arg::Pipe(p, _) => *p,
        }
    }
}

fn fields_str(f: &[String]) -> String {
    f.iter().map(|s| format!(".{s}")).collect()
}

impl std::fmt::Display for Arg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arg::Field(_, fs) => write!(f, "{}", fields_str(fs)),
            Arg::Variable(_, v, fs) => write!(f, "{v}{}", fields_str(fs)),
            Arg::Chain(_, a, fs) => write!(f, "{a}{}", fields_str(fs)),
            Arg::Dot(_) => f.write_str("."),
            Arg::Nil(_) => f.write_str("nil"),
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Number(_, _, s) | Arg::Str(_, _, s) | Arg::Ident(_, s) => f.write_str(s),
            Arg::Pipe(_, p) => write!(f, "({p})"),
        }
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Pipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.decl.is_empty() {
            write!(
                f,
                "{} {} ",
                self.decl.join(", "),
                if self.is_assign { "=" } else { ":=" }
            )?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// A parsed template set: the main body and `define`d templates.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// The main template.
    pub root: Vec<Node>,
    /// Templates from `{{define}}` and `{{block}}`.
    pub defines: BTreeMap<String, Vec<Node>>,
}

/// How a list ended.
enum Stop {
    Eof,
    End,
    Else,
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    i: usize,
    vars: Vec<String>,
    funcs: &'a BTreeSet<&'static str>,
    defines: BTreeMap<String, Vec<Node>>,
    in_range: usize,
}

/// Parse `src`; `funcs` are the function names in scope.
pub fn parse(src: &str, funcs: &BTreeSet<&'static str>) -> Result<Tree, ParseError> {
    let toks = lex(src)?;
    let mut p = Parser {
        src,
        toks,
        i: 0,
        vars: vec!["$".to_string()],
        funcs,
        defines: BTreeMap::new(),
        in_range: 0,
    };
    let (root, end) = p.list(true)?;
    match end {
        Stop::Eof => {}
        Stop::End => return Err(p.err("unexpected {{end}}")),
        Stop::Else => return Err(p.err("unexpected {{else}}")),
    }
    Ok(Tree {
        root,
        defines: p.defines,
    })
}

impl Parser<'_> {
    fn line(&self) -> usize {
        let pos = self.toks.get(self.i.saturating_sub(1)).map_or(0, |t| t.pos);
        1 + self.src[..pos.min(self.src.len())].matches('\n').count()
    }

    fn err(&self, msg: impl Into<String>) -> ParseError {
        ParseError::new(self.line(), msg)
    }

    fn next(&mut self) -> Token {
        let t = self.toks.get(self.i).cloned().unwrap_or(Token {
            tok: Tok::Eof,
            pos: self.src.len(),
        });
        self.i += 1;
        t
    }

    fn peek(&self) -> &Tok {
        self.toks.get(self.i).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn next_non_space(&mut self) -> Token {
        loop {
            let t = self.next();
            if t.tok != Tok::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Tok {
        while *self.peek() == Tok::Space {
            self.i += 1;
        }
        self.peek().clone()
    }

    fn expect_right(&mut self, context: &str) -> Result<(), ParseError> {
        let t = self.next_non_space();
        if t.tok != Tok::Right {
            return Err(self.err(format!("unexpected {} in {context}", describe(&t.tok))));
        }
        Ok(())
    }

    /// Parse nodes until EOF, `{{end}}` or `{{else}}`.
    fn list(&mut self, top: bool) -> Result<(Vec<Node>, Stop), ParseError> {
        let mut nodes = Vec::new();
        loop {
            let t = self.next();
            match t.tok {
                Tok::Eof => {
                    if !top {
                        return Err(self.err("unexpected EOF"));
                    }
                    return Ok((nodes, Stop::Eof));
                }
                Tok::Text(s) => nodes.push(Node::Text(s)),
                Tok::Left => {
                    let word = self.peek_non_space();
                    let kw = match &word {
                        Tok::Ident(w) => w.clone(),
                        _ => String::new(),
                    };
                    match kw.as_str() {
                        "end" => {
                            self.next_non_space();
                            self.expect_right("end")?;
                            if top {
                                return Err(self.err("unexpected {{end}}"));
                            }
                            return Ok((nodes, Stop::End));
                        }
                        "else" => {
                            let t = self.next_non_space();
                            if top {
                                return Err(self.err("unexpected {{else}}"));
                            }
                            let _ = t;
                            return Ok((nodes, Stop::Else));
                        }
                        "if" | "with" | "range" => {
                            self.next_non_space();
                            let kind = match kw.as_str() {
                                "if" => ControlKind::If,
                                "with" => ControlKind::With,
                                _ => ControlKind::Range,
                            };
                            nodes.push(self.control(kind)?);
                        }
                        "template" => {
                            self.next_non_space();
                            nodes.push(self.template("template")?);
                        }
                        "block" => {
                            self.next_non_space();
                            let node = self.template("block")?;
                            let Node::Template { name, .. } = &node else {
                                return Err(self.err("bad block"));
                            };
                            let name = name.clone();
                            let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
                            let (body, end) = self.list(false)?;
                            self.vars = saved;
                            if !matches!(end, Stop::End) {
                                return Err(self.err("unexpected {{else}} in block clause"));
                            }
                            self.defines.insert(name, body);
                            nodes.push(node);
                        }
                        "define" => {
                            self.next_non_space();
                            if !top {
                                return Err(self.err("unexpected <define> in command"));
                            }
                            self.define()?;
                        }
                        "break" | "continue" => {
                            self.next_non_space();
                            if self.in_range == 0 {
                                return Err(self.err(format!("{{{{{kw}}}}} outside {{{{range}}}}")));
                            }
                            self.expect_right(&kw)?;
                            nodes.push(if kw == "break" {
                                Node::Break
                            } else {
                                Node::Continue
                            });
                        }
                        _ => {
                            let pipe = self.pipeline("command", false)?;
                            nodes.push(Node::Action(pipe));
                        }
                    }
                }
                other => return Err(self.err(format!("unexpected {}", describe(&other)))),
            }
        }
    }

    fn define(&mut self) -> Result<(), ParseError> {
        let t = self.next_non_space();
        let Tok::Str(name, _) = t.tok else {
            return Err(self.err(format!("unexpected {} in define clause", describe(&t.tok))));
        };
        self.expect_right("define clause")?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let (body, end) = self.list(false)?;
        self.vars = saved;
        if !matches!(end, Stop::End) {
            return Err(self.err("unexpected {{else}} in define clause"));
        }
        self.defines.insert(name, body);
        Ok(())
    }

    fn template(&mut self, context: &str) -> Result<Node, ParseError> {
        let t = self.next_non_space();
        let Tok::Str(name, _) = t.tok else {
            return Err(self.err(format!(
                "unexpected {} in {context} clause",
                describe(&t.tok)
            )));
        };
        let pipe = if self.peek_non_space() == Tok::Right {
            self.next_non_space();
            None
        } else {
            Some(self.pipeline(context, false)?)
        };
        Ok(Node::Template {
            pos: t.pos,
            name,
            pipe,
        })
    }

    fn control(&mut self, kind: ControlKind) -> Result<Node, ParseError> {
        let mark = self.vars.len();
        let ctx = match kind {
            ControlKind::If => "if",
            ControlKind::With => "with",
            ControlKind::Range => "range",
        };
        let pipe = self.pipeline(ctx, kind == ControlKind::Range)?;
        if kind == ControlKind::Range {
            self.in_range += 1;
        }
        let (list, end) = self.list(false)?;
        if kind == ControlKind::Range {
            self.in_range -= 1;
        }
        let mut else_list = Vec::new();
        if let Stop::Else = end {
            // `{{else if …}}` / `{{else with …}}` nest a control in the else branch.
            let next = self.peek_non_space();
            if let (Tok::Ident(w), ControlKind::If | ControlKind::With) = (&next, kind) {
                if w == ctx {
                    self.next_non_space();
                    else_list.push(self.control(kind)?);
                    self.vars.truncate(mark);
                    return Ok(Node::Control(Box::new(Control {
                        kind,
                        pipe,
                        list,
                        else_list,
                    })));
                }
            }
            self.expect_right("else")?;
            let (l, end) = self.list(false)?;
            if !matches!(end, Stop::End) {
                return Err(self.err("expected end; found {{else}}"));
            }
            else_list = l;
        }
        self.vars.truncate(mark);
        Ok(Node::Control(Box::new(Control {
            kind,
            pipe,
            list,
            else_list,
        })))
    }

    /// A pipeline up to `}}` (or `)` when `paren`).
    fn pipeline(&mut self, context: &str, range: bool) -> Result<Pipe, ParseError> {
        self.pipeline_until(context, range, false)
    }

    fn pipeline_until(
        &mut self,
        context: &str,
        range: bool,
        paren: bool,
    ) -> Result<Pipe, ParseError> {
        let start = self.peek_non_space();
        let pos = self.toks.get(self.i).map_or(0, |t| t.pos);
        let _ = start;
        let mut decl = Vec::new();
        let mut is_assign = false;
        // Declarations: `$x :=`, `$x =`, `$k, $v :=` (range only).
        let save = self.i;
        if let Tok::Variable(v) = self.peek_non_space() {
            self.next_non_space();
            match self.peek_non_space() {
                Tok::Declare | Tok::Assign => {
                    is_assign = self.next_non_space().tok == Tok::Assign;
                    decl.push(v);
                }
                Tok::Comma if range => {
                    self.next_non_space();
                    let t = self.next_non_space();
                    let Tok::Variable(v2) = t.tok else {
                        return Err(self.err("range can only initialize variables"));
                    };
                    match self.next_non_space().tok {
                        Tok::Declare => {}
                        Tok::Assign => is_assign = true,
                        _ => return Err(self.err("range can only initialize variables")),
                    }
                    decl.push(v);
                    decl.push(v2);
                }
                _ => self.i = save,
            }
        }
        if is_assign {
            for v in &decl {
                if !self.vars.contains(v) {
                    return Err(self.err(format!("undefined variable {v:?}")));
                }
            }
        }
        let mut cmds = Vec::new();
        loop {
            let t = self.peek_non_space();
            match t {
                Tok::Right if !paren => {
                    self.next_non_space();
                    break;
                }
                Tok::RParen if paren => {
                    self.next_non_space();
                    break;
                }
                Tok::Eof => return Err(self.err("unclosed action")),
                _ => {
                    let c = self.command()?;
                    cmds.push(c);
                }
            }
        }
        if cmds.is_empty() {
            return Err(self.err(format!("missing value for {context}")));
        }
        for (i, c) in cmds.iter().enumerate().skip(1) {
            if let Some(a) = c.args.first() {
                if matches!(
                    a,
                    Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number(..) | Arg::Str(..)
                ) {
                    let _ = i;
                    return Err(self.err(format!(
                        "non executable command in pipeline stage {}",
                        i + 1
                    )));
                }
            }
        }
        if !is_assign {
            for v in &decl {
                self.vars.push(v.clone());
            }
        }
        Ok(Pipe {
            pos,
            decl,
            is_assign,
            cmds,
        })
    }

    fn command(&mut self) -> Result<Command, ParseError> {
        let pos = self.toks.get(self.i).map_or(0, |t| t.pos);
        let mut args = Vec::new();
        loop {
            self.peek_non_space();
            let Some(a) = self.operand()? else {
                let t = self.next();
                return Err(self.err(format!("unexpected {} in operand", describe(&t.tok))));
            };
            args.push(a);
            if *self.peek() == Tok::Space {
                self.peek_non_space();
            } else if !matches!(self.peek(), Tok::Right | Tok::RParen | Tok::Pipe) {
                let t = self.peek().clone();
                return Err(self.err(format!("unexpected {} in operand", describe(&t))));
            }
            match self.peek() {
                Tok::Right | Tok::RParen | Tok::Eof => break,
                Tok::Pipe => {
                    self.next();
                    if matches!(self.peek_non_space(), Tok::Right | Tok::RParen) {
                        return Err(self.err("missing command"));
                    }
                    break;
                }
                _ => {}
            }
        }
        Ok(Command { pos, args })
    }

    fn operand(&mut self) -> Result<Option<Arg>, ParseError> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        if let Tok::Field(_) = self.peek() {
            let chain_pos = self.toks.get(self.i).map_or(0, |t| t.pos);
            let mut fields = Vec::new();
            while let Tok::Field(f) = self.peek().clone() {
                self.next();
                fields.push(f);
            }
            return Ok(Some(match term {
                Arg::Field(_, mut f) => {
                    f.extend(fields);
                    Arg::Field(chain_pos, f)
                }
                Arg::Variable(_, v, mut f) => {
                    f.extend(fields);
                    Arg::Variable(chain_pos, v, f)
                }
                Arg::Bool(..) | Arg::Str(..) | Arg::Number(..) | Arg::Nil(_) | Arg::Dot(_) => {
                    return Err(self.err(format!(
                        "unexpected . after term {term:?}",
                        term = term.to_string()
                    )));
                }
                other => Arg::Chain(chain_pos, Box::new(other), fields),
            }));
        }
        Ok(Some(term))
    }

    fn term(&mut self) -> Result<Option<Arg>, ParseError> {
        let t = self.next();
        let pos = t.pos;
        Ok(Some(match t.tok {
            Tok::Ident(name) => {
                if !self.funcs.contains(name.as_str()) {
                    return Err(self.err(format!("function {name:?} not defined")));
                }
                Arg::Ident(pos, name)
            }
            Tok::Dot => Arg::Dot(pos),
            Tok::Nil => Arg::Nil(pos),
            Tok::Variable(v) => {
                if !self.vars.contains(&v) {
                    return Err(self.err(format!("undefined variable {v:?}")));
                }
                Arg::Variable(pos, v, Vec::new())
            }
            Tok::Field(f) => Arg::Field(pos, vec![f]),
            Tok::Bool(b) => Arg::Bool(pos, b),
            Tok::Char(c, raw) => Arg::Number(pos, Number::Int(c), raw),
            Tok::Number(s) => Arg::Number(
                pos,
                parse_number(&s)
                    .ok_or_else(|| self.err(format!("illegal number syntax: {s:?}")))?,
                s,
            ),
            Tok::Str(v, raw) => Arg::Str(pos, v, raw),
            Tok::LParen => {
                let p = self.pipeline_until("parenthesized pipeline", false, true)?;
                Arg::Pipe(pos, Box::new(p))
            }
            _ => {
                self.i -= 1;
                return Ok(None);
            }
        }))
    }
}

fn parse_number(s: &str) -> Option<Number> {
    let clean: String = s.chars().filter(|c| *c != '_').collect();
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let lower = body.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|c| c.is_ascii_digit())
    {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else {
        lower.parse::<i64>().ok()
    };
    if let Some(n) = int {
        return Some(Number::Int(if neg { -n } else { n }));
    }
    let f: f64 = lower.parse().ok()?;
    Some(Number::Float(if neg { -f } else { f }))
}

/// Go's description of an unexpected token (`"}"`, `<.Name>`, `{{end}}`).
fn describe(t: &Tok) -> String {
    match t {
        Tok::Text(s) => format!("{s:?}"),
        Tok::Left => "\"{{\"".into(),
        Tok::Right => "\"}}\"".into(),
        Tok::Space => "space".into(),
        Tok::Ident(s) => format!("<{s}>"),
        Tok::Field(s) => format!("<.{s}>"),
        Tok::Variable(s) => format!("<{s}>"),
        Tok::Dot => "<.>".into(),
        Tok::Str(_, raw) | Tok::Char(_, raw) | Tok::Number(raw) => raw.clone(),
        Tok::Bool(b) => format!("<{b}>"),
        Tok::Nil => "<nil>".into(),
        Tok::LParen => "\"(\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::Pipe => "\"|\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
        Tok::Eof => "EOF".into(),
    }
}
