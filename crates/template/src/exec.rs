//! The executor: walks the tree over a [`Value`] as Go's `text/template/exec.go`
//! does, keeping the node it is at so errors name it (`at <.Nope>`).
use std::collections::BTreeMap;

use crate::error::ExecError;
use crate::funcs::{Func, FuncError, FuncSet};
use crate::parse::{Arg, Command, Control, ControlKind, Node, Number, Pipe, Tree};
use crate::value::Value;

/// How to treat data the template asks for and does not find.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Missing {
    /// A missing map key is `<no value>` (Go's default).
    #[default]
    NoValue,
    /// A missing map key is an error (Go's `missingkey=error`), and values
    /// inside maps are typed `interface {}` in messages, as Docker's raw
    /// inspect fallback reports them.
    Error,
}

enum Flow {
    Normal,
    Break,
    Continue,
}

type R<T> = Result<T, ExecError>;

const MAX_DEPTH: usize = 10_000;

pub(crate) struct State<'a> {
    pub src: &'a str,
    pub tree: &'a Tree,
    pub funcs: BTreeMap<&'static str, Func>,
    pub missing: Missing,
    pub name: String,
    pub vars: Vec<(String, Value)>,
    pub at: (usize, String),
    pub out: String,
    pub depth: usize,
}

impl<'a> State<'a> {
    pub fn new(src: &'a str, tree: &'a Tree, set: FuncSet, missing: Missing) -> Self {
        State {
            src,
            tree,
            funcs: crate::funcs::table(set),
            missing,
            name: String::new(),
            vars: Vec::new(),
            at: (0, String::new()),
            out: String::new(),
            depth: 0,
        }
    }

    pub fn run(&mut self, data: &Value) -> R<()> {
        self.vars = vec![("$".into(), data.clone())];
        let root = &self.tree.root;
        self.walk_list(data, root).map(|_| ())
    }

    fn at(&mut self, pos: usize, what: impl ToString) {
        self.at = (pos, what.to_string());
    }

    fn error(&self, message: impl Into<String>) -> ExecError {
        let pos = self.at.0.min(self.src.len());
        let before = &self.src[..pos];
        let line = 1 + before.matches('\n').count();
        let col = before.rfind('\n').map_or(pos, |i| pos - i - 1);
        // Docker 20.10 shows the whole node (`<index .Config.Labels 1>`).
        let context = self.at.1.clone();
        ExecError {
            name: self.name.clone(),
            line,
            col,
            context,
            message: message.into(),
        }
    }

    fn walk_list(&mut self, dot: &Value, list: &[Node]) -> R<Flow> {
        for n in list {
            match self.walk(dot, n)? {
                Flow::Normal => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Value, node: &Node) -> R<Flow> {
        match node {
            Node::Text(t) => self.out.push_str(t),
            Node::Action(p) => {
                let v = self.eval_pipeline(dot, p)?;
                if p.decl.is_empty() {
                    self.out.push_str(&v.go_string());
                }
            }
            Node::Control(c) => return self.walk_control(dot, c),
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
            Node::Template { pos, name, pipe } => {
                let text = match pipe {
                    Some(p) => format!("{{{{template {name:?} {p}}}}}"),
                    None => format!("{{{{template {name:?}}}}}"),
                };
                self.at(*pos, text);
                let Some(body) = self.tree.defines.get(name) else {
                    return Err(self.error(format!("template {name:?} not defined")));
                };
                let new_dot = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => Value::Nil,
                };
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(
                        self.error(format!("exceeded maximum template depth ({MAX_DEPTH})"))
                    );
                }
                let saved_vars =
                    std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
                let saved_name = std::mem::replace(&mut self.name, name.clone());
                let r = self.walk_list(&new_dot, body);
                self.vars = saved_vars;
                self.name = saved_name;
                self.depth -= 1;
                r?;
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_control(&mut self, dot: &Value, c: &Control) -> R<Flow> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &c.pipe)?;
        let r = match c.kind {
            ControlKind::If | ControlKind::With => {
                if val.truth() {
                    let d = if c.kind == ControlKind::With {
                        &val
                    } else {
                        dot
                    };
                    self.walk_list(d, &c.list)
                } else {
                    self.walk_list(dot, &c.else_list)
                }
            }
            ControlKind::Range => self.walk_range(dot, c, val),
        };
        self.vars.truncate(mark);
        r
    }

    fn walk_range(&mut self, dot: &Value, c: &Control, val: Value) -> R<Flow> {
        let items: Vec<(Value, Value)> = match val {
            Value::List(l) => l
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i as i64), v))
                .collect(),
            Value::Map(m) => m.into_iter().map(|(k, v)| (Value::String(k), v)).collect(),
            Value::Nil | Value::NoValue => Vec::new(),
            other => {
                return Err(self.error(format!("range can't iterate over {}", other.go_string())))
            }
        };
        if items.is_empty() {
            return self.walk_list(dot, &c.else_list);
        }
        let decl = &c.pipe.decl;
        for (key, elem) in items {
            let mark = self.vars.len();
            if c.pipe.is_assign {
                if let Some(v) = decl.last() {
                    let name = if decl.len() > 1 { &decl[1] } else { v };
                    self.set_var(name, elem.clone());
                }
                if decl.len() > 1 {
                    self.set_var(&decl[0], key.clone());
                }
            } else {
                let n = self.vars.len();
                if !decl.is_empty() {
                    self.vars[n - 1].1 = elem.clone();
                }
                if decl.len() > 1 {
                    self.vars[n - 2].1 = key.clone();
                }
            }
            let f = self.walk_list(&elem, &c.list)?;
            self.vars.truncate(mark);
            if let Flow::Break = f {
                break;
            }
        }
        Ok(Flow::Normal)
    }

    fn set_var(&mut self, name: &str, v: Value) {
        if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v;
        }
    }

    fn var(&self, name: &str) -> R<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.error(format!("undefined variable: {name}")))
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> R<Value> {
        self.at(pipe.pos, pipe);
        let mut val: Option<Value> = None;
        for cmd in &pipe.cmds {
            val = Some(self.eval_command(dot, cmd, val)?);
        }
        let mut v = val.unwrap_or(Value::NoValue);
        // Go turns a nil `interface{}` (a JSON null in a map) into no value.
        if self.missing == Missing::Error && matches!(v, Value::Nil) {
            v = Value::NoValue;
        }
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, v.clone());
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn not_function(&self, args: &[Arg], fin: &Option<Value>) -> R<()> {
        if args.len() > 1 || fin.is_some() {
            return Err(self.error(format!("can't give argument to non-function {}", args[0])));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &Command, fin: Option<Value>) -> R<Value> {
        let first = &cmd.args[0];
        match first {
            Arg::Field(pos, fields) => {
                self.at(*pos, first);
                return self.eval_field_chain(dot, dot.clone(), fields, &cmd.args, fin);
            }
            Arg::Chain(pos, term, fields) => {
                self.at(*pos, first);
                let recv = self.eval_arg(dot, term)?;
                self.at(*pos, first);
                return self.eval_field_chain(dot, recv, fields, &cmd.args, fin);
            }
            Arg::Ident(pos, name) => return self.eval_function(dot, *pos, name, cmd, fin),
            Arg::Pipe(_, p) => {
                self.not_function(&cmd.args, &fin)?;
                return self.eval_pipeline(dot, p);
            }
            Arg::Variable(pos, name, fields) => {
                self.at(*pos, first);
                let v = self.var(name)?;
                if fields.is_empty() {
                    self.not_function(&cmd.args, &fin)?;
                    return Ok(v);
                }
                return self.eval_field_chain(dot, v, fields, &cmd.args, fin);
            }
            _ => {}
        }
        self.at(first.pos(), first);
        self.not_function(&cmd.args, &fin)?;
        match first {
            Arg::Nil(_) => Err(self.error("nil is not a command")),
            a => self.eval_arg(dot, a),
        }
    }

    fn eval_arg(&mut self, dot: &Value, arg: &Arg) -> R<Value> {
        self.at(arg.pos(), arg);
        match arg {
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Nil(_) => Ok(Value::Nil),
            Arg::Bool(_, b) => Ok(Value::Bool(*b)),
            Arg::Number(_, Number::Int(n), _) => Ok(Value::Int(*n)),
            Arg::Number(_, Number::Float(f), _) => Ok(Value::Float(*f)),
            Arg::Str(_, s, _) => Ok(Value::String(s.clone())),
            Arg::Field(_, fields) => {
                self.eval_field_chain(dot, dot.clone(), fields, std::slice::from_ref(arg), None)
            }
            Arg::Variable(_, name, fields) => {
                let v = self.var(name)?;
                if fields.is_empty() {
                    return Ok(v);
                }
                self.eval_field_chain(dot, v, fields, std::slice::from_ref(arg), None)
            }
            Arg::Chain(pos, term, fields) => {
                let recv = self.eval_arg(dot, term)?;
                self.at(*pos, arg);
                self.eval_field_chain(dot, recv, fields, std::slice::from_ref(arg), None)
            }
            Arg::Pipe(_, p) => self.eval_pipeline(dot, p),
            Arg::Ident(pos, name) => {
                let cmd = Command {
                    pos: *pos,
                    args: vec![arg.clone()],
                };
                self.eval_function(dot, *pos, name, &cmd, None)
            }
        }
    }

    fn eval_field_chain(
        &mut self,
        dot: &Value,
        mut recv: Value,
        fields: &[String],
        args: &[Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        let n = fields.len();
        for f in &fields[..n - 1] {
            recv = self.eval_field(dot, f, &[], None, recv)?;
        }
        self.eval_field(dot, &fields[n - 1], args, fin, recv)
    }

    fn eval_field(
        &mut self,
        dot: &Value,
        name: &str,
        args: &[Arg],
        fin: Option<Value>,
        recv: Value,
    ) -> R<Value> {
        let has_args = args.len() > 1 || fin.is_some();
        match recv {
            Value::NoValue => {
                if self.missing == Missing::Error {
                    return Err(self.error(format!("nil data; no entry for key {name:?}")));
                }
                Ok(Value::NoValue)
            }
            Value::Nil => Err(self.error(format!("nil pointer evaluating interface {{}}.{name}"))),
            Value::Struct(s) => {
                if let Some(m) = s.methods.get(name).cloned() {
                    let at = self.at.clone();
                    let mut vals = Vec::new();
                    for a in args.iter().skip(1) {
                        vals.push(self.eval_arg(dot, a)?);
                    }
                    vals.extend(fin);
                    self.at = at;
                    return m(&vals).map_err(|e| self.error(format!("error calling {name}: {e}")));
                }
                match s.field(name) {
                    Some(v) if has_args => {
                        let _ = v;
                        Err(self.error(format!(
                            "{name} has arguments but cannot be invoked as function"
                        )))
                    }
                    Some(v) => Ok(v.clone()),
                    None => Err(self.error(format!(
                        "can't evaluate field {name} in type {}",
                        s.type_name
                    ))),
                }
            }
            Value::Map(m) => {
                if has_args {
                    return Err(self.error(format!("{name} is not a method but has arguments")));
                }
                match m.get(name) {
                    Some(v) => Ok(v.clone()),
                    None if self.missing == Missing::Error => {
                        Err(self.error(format!("map has no entry for key {name:?}")))
                    }
                    None => Ok(Value::NoValue),
                }
            }
            other => {
                let ty = if self.missing == Missing::Error {
                    "interface {}".to_string()
                } else {
                    other.type_name()
                };
                Err(self.error(format!("can't evaluate field {name} in type {ty}")))
            }
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        pos: usize,
        name: &str,
        cmd: &Command,
        fin: Option<Value>,
    ) -> R<Value> {
        self.at(pos, name);
        let args = &cmd.args[1..];
        if name == "and" || name == "or" {
            if args.is_empty() && fin.is_none() {
                return Err(self.error(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                )));
            }
            let mut last = Value::NoValue;
            let n = args.len() + usize::from(fin.is_some());
            for i in 0..n {
                last = match args.get(i) {
                    Some(a) => self.eval_arg(dot, a)?,
                    None => fin.clone().unwrap_or(Value::NoValue),
                };
                if last.truth() == (name == "or") {
                    return Ok(last);
                }
            }
            return Ok(last);
        }
        let Some(f) = self.funcs.get(name).copied() else {
            return Err(self.error(format!("{name:?} is not a defined function")));
        };
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.eval_arg(dot, a)?);
        }
        vals.extend(fin);
        self.at(cmd.pos, cmd);
        match f(&vals) {
            Ok(v) => Ok(v),
            Err(FuncError::Args(m)) => Err(self.error(m)),
            Err(FuncError::Call(m)) => Err(self.error(format!("error calling {name}: {m}"))),
        }
    }
}
