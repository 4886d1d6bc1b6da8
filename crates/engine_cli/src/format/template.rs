//! A small interpreter for the subset of Go's `text/template` that docker
//! users put in `--format` / `-f` strings.
//!
//! Supported: text and `{{ }}` actions with `{{-`/`-}}` trimming and
//! comments; field chains (`.A.B`), `$`, variables (`$x := ...`, `$x = ...`),
//! literals, parenthesised pipelines, `|` pipes; `if`/`else if`/`else`,
//! `range` (with `$i, $e :=` and `else`), `with`, `end`; functions `json`,
//! `split`, `join`, `title`, `lower`, `upper`, `pad`, `truncate`, `len`,
//! `index`, `print`, `printf`, `println`, `eq`, `ne`, `lt`, `le`, `gt`,
//! `ge`, `and`, `or`, `not`.
//!
//! Data is the ordered JSON [`Value`]. Values print like Go's `fmt` would
//! print the corresponding typed value: objects whose keys all look like Go
//! struct fields print as `{v1 v2}`, other objects as `map[k:v]`.

use super::json::Value;

/// A template parse or execution error (message in Go's wording where practical).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template: {0}")]
pub struct TemplateError(pub String);

fn terr<T>(msg: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(msg.into()))
}

#[derive(Debug, Clone)]
enum Arg {
    /// `.A.B` (empty = dot itself).
    Field(Vec<String>),
    /// `$x.A.B` (`$` alone is the root).
    Var(String, Vec<String>),
    Func(String),
    Str(String),
    Num(String),
    Bool(bool),
    Nil,
    /// `(pipeline).A.B`
    Sub(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone)]
struct Command {
    args: Vec<Arg>,
}

#[derive(Debug, Clone)]
struct Pipeline {
    decl: Vec<String>,
    assign: bool,
    cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If {
        branches: Vec<(Pipeline, Vec<Node>)>,
        otherwise: Option<Vec<Node>>,
    },
    Range {
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Option<Vec<Node>>,
    },
    With {
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Option<Vec<Node>>,
    },
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

// ---------------------------------------------------------------- lexing

#[derive(Debug, Clone)]
enum Seg {
    Text(String),
    Action(String),
}

fn split_segments(src: &str) -> Result<Vec<Seg>, TemplateError> {
    let mut segs = Vec::new();
    let mut rest = src;
    let mut trim_next_text = false;
    while !rest.is_empty() {
        match rest.find("{{") {
            None => {
                let mut t = rest.to_string();
                if trim_next_text {
                    t = t.trim_start().to_string();
                }
                segs.push(Seg::Text(t));
                break;
            }
            Some(pos) => {
                let mut text = rest[..pos].to_string();
                if trim_next_text {
                    text = text.trim_start().to_string();
                }
                let mut inner_start = pos + 2;
                let after = &rest[inner_start..];
                if after.starts_with("- ")
                    || after.starts_with("-\t")
                    || after.starts_with("-\n")
                    || after.starts_with("-\r")
                {
                    text = text.trim_end().to_string();
                    inner_start += 1;
                }
                segs.push(Seg::Text(text));
                let body = &rest[inner_start..];
                // Comments may contain "}}"-free text only up to "*/}}".
                let close = if body.trim_start().starts_with("/*") {
                    body.find("*/")
                        .and_then(|c| body[c..].find("}}").map(|d| c + d))
                } else {
                    find_close(body)
                };
                let close = match close {
                    Some(c) => c,
                    None => return terr(":1: unclosed action"),
                };
                let mut inner = &body[..close];
                trim_next_text = false;
                if inner.ends_with(" -")
                    || inner.ends_with("\t-")
                    || inner.ends_with("\n-")
                    || inner.ends_with("\r-")
                {
                    inner = &inner[..inner.len() - 1];
                    trim_next_text = true;
                }
                let trimmed = inner.trim();
                if !(trimmed.starts_with("/*") && trimmed.ends_with("*/")) {
                    segs.push(Seg::Action(inner.to_string()));
                }
                rest = &body[close + 2..];
            }
        }
    }
    Ok(segs)
}

/// Finds the closing `}}` of an action, skipping over quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `.A.B` chain; empty vec for a bare `.`
    Field(Vec<String>),
    /// `$name` plus trailing `.A.B`
    Var(String, Vec<String>),
    Str(String),
    Num(String),
    LParen,
    /// `)` plus trailing field chain
    RParen(Vec<String>),
    Pipe,
    Declare,
    Assign,
    Comma,
}

fn field_chain(b: &[u8], i: &mut usize) -> Vec<String> {
    let mut chain = Vec::new();
    while *i < b.len() && b[*i] == b'.' {
        let start = *i + 1;
        let mut j = start;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        if j == start {
            break;
        }
        chain.push(String::from_utf8_lossy(&b[start..j]).into_owned());
        *i = j;
    }
    chain
}

fn tokenize(src: &str) -> Result<Vec<Tok>, TemplateError> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut toks = Vec::new();
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            b',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            b'(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                i += 1;
                let chain = field_chain(b, &mut i);
                toks.push(Tok::RParen(chain));
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            b'=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            b'.' => {
                let chain = field_chain(b, &mut i);
                if chain.is_empty() {
                    i += 1;
                }
                toks.push(Tok::Field(chain));
            }
            b'$' => {
                let start = i;
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let name = String::from_utf8_lossy(&b[start..i]).into_owned();
                let chain = field_chain(b, &mut i);
                toks.push(Tok::Var(name, chain));
            }
            b'"' => {
                let mut out = String::new();
                i += 1;
                let mut closed = false;
                while i < b.len() {
                    match b[i] {
                        b'"' => {
                            closed = true;
                            i += 1;
                            break;
                        }
                        b'\\' if i + 1 < b.len() => {
                            let e = b[i + 1];
                            out.push(match e {
                                b'n' => '\n',
                                b't' => '\t',
                                b'r' => '\r',
                                b'\\' => '\\',
                                b'"' => '"',
                                other => other as char,
                            });
                            i += 2;
                        }
                        _ => {
                            // Copy one UTF-8 character.
                            let ch_len = utf8_len(b[i]);
                            out.push_str(&String::from_utf8_lossy(
                                &b[i..(i + ch_len).min(b.len())],
                            ));
                            i += ch_len;
                        }
                    }
                }
                if !closed {
                    return terr(":1: unterminated quoted string");
                }
                toks.push(Tok::Str(out));
            }
            b'`' => {
                let start = i + 1;
                let end = match src[start..].find('`') {
                    Some(e) => start + e,
                    None => return terr(":1: unterminated raw quoted string"),
                };
                toks.push(Tok::Str(src[start..end].to_string()));
                i = end + 1;
            }
            c if c.is_ascii_digit()
                || (c == b'-' && b.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
                toks.push(Tok::Num(src[start..i].to_string()));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                toks.push(Tok::Ident(src[start..i].to_string()));
            }
            other => return terr(format!(":1: unexpected {:?} in command", char::from(other))),
        }
    }
    Ok(toks)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

// ---------------------------------------------------------------- parsing

struct PipeParser {
    toks: Vec<Tok>,
    i: usize,
}

impl PipeParser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }

    fn pipeline(&mut self, allow_decl: bool) -> Result<Pipeline, TemplateError> {
        let mut decl = Vec::new();
        let mut assign = false;
        if allow_decl {
            // `$x :=`, `$x =`, `$i, $e :=`
            let save = self.i;
            let mut names = Vec::new();
            loop {
                match self.peek() {
                    Some(Tok::Var(n, chain)) if chain.is_empty() => {
                        names.push(n.clone());
                        self.i += 1;
                    }
                    _ => break,
                }
                match self.peek() {
                    Some(Tok::Comma) => {
                        self.i += 1;
                        continue;
                    }
                    Some(Tok::Declare) => {
                        self.i += 1;
                        decl = names.clone();
                        break;
                    }
                    Some(Tok::Assign) => {
                        self.i += 1;
                        decl = names.clone();
                        assign = true;
                        break;
                    }
                    _ => break,
                }
            }
            if decl.is_empty() {
                self.i = save;
            }
        }
        let mut cmds = Vec::new();
        loop {
            let cmd = self.command()?;
            cmds.push(cmd);
            match self.peek() {
                Some(Tok::Pipe) => {
                    self.i += 1;
                }
                _ => break,
            }
        }
        Ok(Pipeline { decl, assign, cmds })
    }

    fn command(&mut self) -> Result<Command, TemplateError> {
        let mut args = Vec::new();
        loop {
            let arg = match self.peek().cloned() {
                None | Some(Tok::Pipe) | Some(Tok::RParen(_)) => break,
                Some(Tok::Field(chain)) => {
                    self.i += 1;
                    Arg::Field(chain)
                }
                Some(Tok::Var(n, chain)) => {
                    self.i += 1;
                    Arg::Var(n, chain)
                }
                Some(Tok::Str(s)) => {
                    self.i += 1;
                    Arg::Str(s)
                }
                Some(Tok::Num(n)) => {
                    self.i += 1;
                    Arg::Num(n)
                }
                Some(Tok::Ident(id)) => {
                    self.i += 1;
                    match id.as_str() {
                        "true" => Arg::Bool(true),
                        "false" => Arg::Bool(false),
                        "nil" => Arg::Nil,
                        _ => Arg::Func(id),
                    }
                }
                Some(Tok::LParen) => {
                    self.i += 1;
                    let inner = self.pipeline(false)?;
                    match self.peek().cloned() {
                        Some(Tok::RParen(chain)) => {
                            self.i += 1;
                            Arg::Sub(Box::new(inner), chain)
                        }
                        _ => return terr(":1: unclosed left paren"),
                    }
                }
                Some(other) => return terr(format!(":1: unexpected {other:?} in operand")),
            };
            args.push(arg);
        }
        if args.is_empty() {
            return terr(":1: missing value for command");
        }
        Ok(Command { args })
    }
}

fn parse_pipeline(src: &str, allow_decl: bool) -> Result<Pipeline, TemplateError> {
    let toks = tokenize(src)?;
    if toks.is_empty() {
        return terr(":1: missing value for command");
    }
    let mut p = PipeParser { toks, i: 0 };
    let pipe = p.pipeline(allow_decl)?;
    if p.i != p.toks.len() {
        return terr(format!(":1: unexpected {:?} in operand", p.toks[p.i]));
    }
    Ok(pipe)
}

enum Stop {
    End,
    Else(Option<String>),
    Eof,
}

impl Template {
    /// Parses a template string.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let segs = split_segments(src)?;
        let mut it = segs.into_iter().peekable();
        let (nodes, stop) = parse_list(&mut it)?;
        match stop {
            Stop::Eof => Ok(Template { nodes }),
            Stop::End => terr(":1: unexpected {{end}}"),
            Stop::Else(_) => terr(":1: unexpected {{else}}"),
        }
    }

    /// Executes against `data`.
    pub fn execute(&self, data: &Value) -> Result<String, TemplateError> {
        let mut ex = Exec {
            root: data,
            vars: Vec::new(),
            header: false,
            out: String::new(),
        };
        ex.nodes(&self.nodes, data)?;
        Ok(ex.out)
    }

    /// Executes in "header" mode: data maps field names to column titles and
    /// formatting functions (other than `pad`) pass their first argument through.
    pub fn execute_header(&self, headers: &Value) -> Result<String, TemplateError> {
        let mut ex = Exec {
            root: headers,
            vars: Vec::new(),
            header: true,
            out: String::new(),
        };
        ex.nodes(&self.nodes, headers)?;
        Ok(ex.out)
    }
}

type SegIter = std::iter::Peekable<std::vec::IntoIter<Seg>>;

fn parse_list(it: &mut SegIter) -> Result<(Vec<Node>, Stop), TemplateError> {
    let mut nodes = Vec::new();
    while let Some(seg) = it.next() {
        match seg {
            Seg::Text(t) => {
                if !t.is_empty() {
                    nodes.push(Node::Text(t));
                }
            }
            Seg::Action(a) => {
                let a = a.trim();
                let (kw, rest) = match a.find(|c: char| c.is_whitespace()) {
                    Some(p) => (&a[..p], a[p..].trim()),
                    None => (a, ""),
                };
                match kw {
                    "end" => return Ok((nodes, Stop::End)),
                    "else" => {
                        let rest = rest.trim();
                        let cond = rest.strip_prefix("if").and_then(|r| {
                            if r.is_empty() || r.starts_with(char::is_whitespace) {
                                Some(r.trim().to_string())
                            } else {
                                None
                            }
                        });
                        if !rest.is_empty() && cond.is_none() {
                            return terr(":1: unexpected token after else");
                        }
                        return Ok((nodes, Stop::Else(cond)));
                    }
                    "if" => nodes.push(parse_if(rest, it)?),
                    "range" | "with" => {
                        let pipe = parse_pipeline(rest, true)?;
                        let (body, stop) = parse_list(it)?;
                        let otherwise = match stop {
                            Stop::End => None,
                            Stop::Else(None) => {
                                let (e, stop2) = parse_list(it)?;
                                if !matches!(stop2, Stop::End) {
                                    return terr(format!(":1: missing {{{{end}}}} for {kw}"));
                                }
                                Some(e)
                            }
                            Stop::Else(Some(_)) => {
                                return terr(format!(":1: unexpected else if in {kw}"))
                            }
                            Stop::Eof => return terr(":1: unexpected EOF"),
                        };
                        nodes.push(if kw == "range" {
                            Node::Range {
                                pipe,
                                body,
                                otherwise,
                            }
                        } else {
                            Node::With {
                                pipe,
                                body,
                                otherwise,
                            }
                        });
                    }
                    "define" | "template" | "block" | "break" | "continue" => {
                        return terr(format!(":1: {{{{{kw}}}}} is not supported"))
                    }
                    _ => nodes.push(Node::Action(parse_pipeline(a, true)?)),
                }
            }
        }
    }
    Ok((nodes, Stop::Eof))
}

fn parse_if(cond: &str, it: &mut SegIter) -> Result<Node, TemplateError> {
    let mut branches = Vec::new();
    let mut pipe = parse_pipeline(cond, true)?;
    loop {
        let (body, stop) = parse_list(it)?;
        branches.push((pipe, body));
        match stop {
            Stop::End => {
                return Ok(Node::If {
                    branches,
                    otherwise: None,
                })
            }
            Stop::Else(Some(next)) => {
                pipe = parse_pipeline(&next, true)?;
            }
            Stop::Else(None) => {
                let (e, stop2) = parse_list(it)?;
                if !matches!(stop2, Stop::End) {
                    return terr(":1: missing {{end}} for if");
                }
                return Ok(Node::If {
                    branches,
                    otherwise: Some(e),
                });
            }
            Stop::Eof => return terr(":1: unexpected EOF"),
        }
    }
}

// ---------------------------------------------------------------- execution

/// Marker for values that were looked up but do not exist (Go: "<no value>").
fn missing() -> Value {
    Value::Obj(vec![("\u{0}missing".into(), Value::Null)])
}

fn is_missing(v: &Value) -> bool {
    matches!(v, Value::Obj(f) if f.len() == 1 && f[0].0 == "\u{0}missing")
}

struct Exec<'a> {
    root: &'a Value,
    vars: Vec<(String, Value)>,
    header: bool,
    out: String,
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Num(n) => n.parse::<f64>().map(|f| f != 0.0).unwrap_or(true),
        Value::Str(s) => !s.is_empty(),
        Value::Arr(a) => !a.is_empty(),
        Value::Obj(o) => !o.is_empty() && !is_missing(v),
    }
}

fn looks_like_struct(fields: &[(String, Value)]) -> bool {
    !fields.is_empty()
        && fields.iter().all(|(k, _)| {
            k.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// Prints a value the way Go's `fmt.Sprint` prints the matching Go value.
pub fn go_print(v: &Value) -> String {
    if is_missing(v) {
        return "<no value>".into();
    }
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Num(n) => n.clone(),
        Value::Str(s) => s.clone(),
        Value::Arr(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Obj(o) => {
            if looks_like_struct(o) {
                format!(
                    "{{{}}}",
                    o.iter()
                        .map(|(_, v)| go_print(v))
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            } else {
                let mut sorted: Vec<&(String, Value)> = o.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                format!(
                    "map[{}]",
                    sorted
                        .iter()
                        .map(|(k, v)| format!("{k}:{}", go_print(v)))
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            }
        }
    }
}

fn walk(mut v: Value, chain: &[String]) -> Result<Value, TemplateError> {
    for name in chain {
        v = match v {
            Value::Obj(ref fields) if !is_missing(&v) => fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, x)| x.clone())
                .unwrap_or_else(missing),
            Value::Null => missing(),
            ref other if is_missing(other) => missing(),
            other => {
                return terr(format!(
                    "can't evaluate field {name} in type {}",
                    type_name(&other)
                ))
            }
        };
    }
    Ok(v)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Num(_) => "number",
        Value::Str(_) => "string",
        Value::Arr(_) => "slice",
        Value::Obj(_) => "map",
    }
}

fn as_int(v: &Value) -> Result<i64, TemplateError> {
    match v {
        Value::Num(n) => n
            .parse::<i64>()
            .or_else(|_| n.parse::<f64>().map(|f| f as i64))
            .map_err(|_| TemplateError(format!("invalid number {n}"))),
        other => terr(format!("expected integer; found {}", go_print(other))),
    }
}

fn as_string(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        other => go_print(other),
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Num(x), Value::Num(y)) => {
            let (x, y) = (x.parse::<f64>().ok()?, y.parse::<f64>().ok()?);
            x.partial_cmp(&y)
        }
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(std::cmp::Ordering::Equal),
        _ => None,
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match compare(a, b) {
        Some(o) => o == std::cmp::Ordering::Equal,
        None => a == b,
    }
}

/// Minimal `fmt.Sprintf`: flags `-`, `0`, width, precision; verbs s v d q t x %.
fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    let mut next = 0usize;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut left = false;
        let mut zero = false;
        while let Some(&f) = chars.peek() {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' | ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() {
                width.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek() {
                if d.is_ascii_digit() {
                    p.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            prec = Some(p.parse().unwrap_or(0));
        }
        let verb = match chars.next() {
            Some(v) => v,
            None => {
                out.push_str("%!(NOVERB)");
                break;
            }
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = match args.get(next) {
            Some(a) => a,
            None => {
                out.push_str(&format!("%!{verb}(MISSING)"));
                continue;
            }
        };
        next += 1;
        let mut s = match verb {
            'd' => match as_int(arg) {
                Ok(i) => i.to_string(),
                Err(_) => format!("%!d({})", go_print(arg)),
            },
            'x' => match as_int(arg) {
                Ok(i) => format!("{i:x}"),
                Err(_) => as_string(arg).bytes().map(|b| format!("{b:02x}")).collect(),
            },
            'q' => super::human::go_quote(&as_string(arg)),
            't' | 'v' | 's' => as_string(arg),
            other => format!("%!{other}({})", go_print(arg)),
        };
        if let (Some(p), 's' | 'v') = (prec, verb) {
            s = s.chars().take(p).collect();
        }
        let w: usize = width.parse().unwrap_or(0);
        let len = s.chars().count();
        if len < w {
            let pad = w - len;
            if left {
                s.push_str(&" ".repeat(pad));
            } else if zero && verb == 'd' {
                let (sign, digits) = match s.strip_prefix('-') {
                    Some(d) => ("-", d.to_string()),
                    None => ("", s.clone()),
                };
                s = format!("{sign}{}{digits}", "0".repeat(pad));
            } else {
                s = format!("{}{s}", " ".repeat(pad));
            }
        }
        out.push_str(&s);
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        out.push_str(
            &args[next..]
                .iter()
                .map(go_print)
                .collect::<Vec<_>>()
                .join(", "),
        );
        out.push(')');
    }
    out
}

/// Go's `fmt.Sprint`: spaces between operands when neither side is a string.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            let prev_str = matches!(args[i - 1], Value::Str(_));
            let this_str = matches!(a, Value::Str(_));
            if !prev_str && !this_str {
                out.push(' ');
            }
        }
        out.push_str(&as_string(a));
    }
    out
}

fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at_start = true;
    for c in s.chars() {
        if at_start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        at_start = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    out
}

impl Exec<'_> {
    fn lookup_var(&self, name: &str) -> Result<Value, TemplateError> {
        if name == "$" {
            return Ok(self.root.clone());
        }
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| TemplateError(format!(":1: undefined variable \"{name}\"")))
    }

    fn set_var(&mut self, name: &str, v: Value, declare: bool) -> Result<(), TemplateError> {
        if declare {
            self.vars.push((name.to_string(), v));
            return Ok(());
        }
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => {
                slot.1 = v;
                Ok(())
            }
            None => terr(format!(":1: undefined variable \"{name}\"")),
        }
    }

    fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<(), TemplateError> {
        for n in nodes {
            self.node(n, dot)?;
        }
        Ok(())
    }

    fn scoped<F>(&mut self, f: F) -> Result<(), TemplateError>
    where
        F: FnOnce(&mut Self) -> Result<(), TemplateError>,
    {
        let mark = self.vars.len();
        let r = f(self);
        self.vars.truncate(mark);
        r
    }

    fn node(&mut self, n: &Node, dot: &Value) -> Result<(), TemplateError> {
        match n {
            Node::Text(t) => self.out.push_str(t),
            Node::Action(p) => {
                let v = self.pipeline(p, dot)?;
                if p.decl.is_empty() {
                    self.out.push_str(&go_print(&v));
                }
            }
            Node::If {
                branches,
                otherwise,
            } => {
                for (cond, body) in branches {
                    let v = self.pipeline_scoped_value(cond, dot)?;
                    if truthy(&v) {
                        return self.scoped(|ex| ex.nodes(body, dot));
                    }
                }
                if let Some(e) = otherwise {
                    self.scoped(|ex| ex.nodes(e, dot))?;
                }
            }
            Node::With {
                pipe,
                body,
                otherwise,
            } => {
                let mark = self.vars.len();
                let v = self.pipeline(pipe, dot)?;
                let r = if truthy(&v) {
                    self.nodes(body, &v)
                } else if let Some(e) = otherwise {
                    self.nodes(e, dot)
                } else {
                    Ok(())
                };
                self.vars.truncate(mark);
                r?;
            }
            Node::Range {
                pipe,
                body,
                otherwise,
            } => {
                // Evaluate without declaring: the declared names are loop variables.
                let plain = Pipeline {
                    decl: Vec::new(),
                    assign: false,
                    cmds: pipe.cmds.clone(),
                };
                let v = self.pipeline(&plain, dot)?;
                let items: Vec<(Value, Value)> = match &v {
                    Value::Arr(a) => a
                        .iter()
                        .enumerate()
                        .map(|(i, e)| (Value::Num(i.to_string()), e.clone()))
                        .collect(),
                    Value::Obj(o) if !is_missing(&v) => {
                        let mut sorted: Vec<_> = o.iter().collect();
                        sorted.sort_by(|a, b| a.0.cmp(&b.0));
                        sorted
                            .into_iter()
                            .map(|(k, e)| (Value::Str(k.clone()), e.clone()))
                            .collect()
                    }
                    Value::Num(n) => {
                        let count = n.parse::<i64>().unwrap_or(0).max(0);
                        (0..count)
                            .map(|i| (Value::Num(i.to_string()), Value::Num(i.to_string())))
                            .collect()
                    }
                    Value::Null => Vec::new(),
                    other if is_missing(other) => Vec::new(),
                    other => return terr(format!("range can't iterate over {}", go_print(other))),
                };
                if items.is_empty() {
                    if let Some(e) = otherwise {
                        self.scoped(|ex| ex.nodes(e, dot))?;
                    }
                    return Ok(());
                }
                for (k, e) in items {
                    let mark = self.vars.len();
                    match pipe.decl.len() {
                        0 => {}
                        1 => self.vars.push((pipe.decl[0].clone(), e.clone())),
                        _ => {
                            self.vars.push((pipe.decl[0].clone(), k));
                            self.vars.push((pipe.decl[1].clone(), e.clone()));
                        }
                    }
                    let r = self.nodes(body, &e);
                    self.vars.truncate(mark);
                    r?;
                }
            }
        }
        Ok(())
    }

    fn pipeline_scoped_value(&mut self, p: &Pipeline, dot: &Value) -> Result<Value, TemplateError> {
        self.pipeline(p, dot)
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Value, TemplateError> {
        let mut piped: Option<Value> = None;
        for cmd in &p.cmds {
            piped = Some(self.command(cmd, dot, piped.take())?);
        }
        let v = piped.unwrap_or(Value::Null);
        if !p.decl.is_empty() {
            let declare = !p.assign;
            let first = p.decl[0].clone();
            self.set_var(&first, v.clone(), declare)?;
        }
        Ok(v)
    }

    fn operand(&mut self, a: &Arg, dot: &Value) -> Result<Value, TemplateError> {
        match a {
            Arg::Field(chain) => walk(dot.clone(), chain),
            Arg::Var(name, chain) => walk(self.lookup_var(name)?, chain),
            Arg::Str(s) => Ok(Value::Str(s.clone())),
            Arg::Num(n) => Ok(Value::Num(n.clone())),
            Arg::Bool(b) => Ok(Value::Bool(*b)),
            Arg::Nil => Ok(Value::Null),
            Arg::Sub(p, chain) => {
                let v = self.pipeline(p, dot)?;
                walk(v, chain)
            }
            Arg::Func(name) => self.call(name, Vec::new()),
        }
    }

    fn command(
        &mut self,
        cmd: &Command,
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, TemplateError> {
        match &cmd.args[0] {
            Arg::Func(name) => {
                let mut args = Vec::with_capacity(cmd.args.len());
                for a in &cmd.args[1..] {
                    args.push(self.operand(a, dot)?);
                }
                if let Some(p) = piped {
                    args.push(p);
                }
                self.call(name, args)
            }
            first => {
                if cmd.args.len() > 1 || piped.is_some() {
                    return terr("can't give argument to non-function");
                }
                self.operand(first, dot)
            }
        }
    }

    fn call(&mut self, name: &str, args: Vec<Value>) -> Result<Value, TemplateError> {
        let argc = |n: usize| -> Result<(), TemplateError> {
            if args.len() != n {
                terr(format!(
                    "wrong number of args for {name}: want {n} got {}",
                    args.len()
                ))
            } else {
                Ok(())
            }
        };
        if self.header && !matches!(name, "pad") {
            // Header mode: formatting functions pass the column title through.
            if matches!(
                name,
                "json" | "split" | "join" | "title" | "lower" | "upper" | "truncate"
            ) {
                return Ok(args.into_iter().next().unwrap_or(Value::Null));
            }
        }
        let s = |i: usize| args.get(i).map(as_string).unwrap_or_default();
        Ok(match name {
            "json" => {
                argc(1)?;
                if is_missing(&args[0]) {
                    Value::Str("null".into())
                } else {
                    Value::Str(args[0].to_json())
                }
            }
            "split" => {
                argc(2)?;
                let (src, sep) = (s(0), s(1));
                let parts: Vec<Value> = if sep.is_empty() {
                    src.chars().map(|c| Value::Str(c.to_string())).collect()
                } else {
                    src.split(sep.as_str())
                        .map(|p| Value::Str(p.to_string()))
                        .collect()
                };
                Value::Arr(parts)
            }
            "join" => {
                argc(2)?;
                let sep = s(1);
                match &args[0] {
                    Value::Arr(a) => {
                        Value::Str(a.iter().map(as_string).collect::<Vec<_>>().join(&sep))
                    }
                    Value::Obj(o) if !is_missing(&args[0]) => {
                        let mut vals: Vec<String> = o.iter().map(|(_, v)| as_string(v)).collect();
                        vals.sort();
                        Value::Str(vals.join(&sep))
                    }
                    Value::Null => Value::Str(String::new()),
                    other => return terr(format!("expected slice, got {}", type_name(other))),
                }
            }
            "title" => {
                argc(1)?;
                Value::Str(title_case(&s(0)))
            }
            "lower" => {
                argc(1)?;
                Value::Str(s(0).to_lowercase())
            }
            "upper" => {
                argc(1)?;
                Value::Str(s(0).to_uppercase())
            }
            "pad" => {
                argc(3)?;
                let src = s(0);
                if src.is_empty() {
                    Value::Str(src)
                } else {
                    let pre = as_int(&args[1])?.max(0) as usize;
                    let post = as_int(&args[2])?.max(0) as usize;
                    Value::Str(format!("{}{src}{}", " ".repeat(pre), " ".repeat(post)))
                }
            }
            "truncate" => {
                argc(2)?;
                let src = s(0);
                let n = as_int(&args[1])?.max(0) as usize;
                if src.len() < n {
                    Value::Str(src)
                } else {
                    let mut end = n;
                    while !src.is_char_boundary(end) {
                        end -= 1;
                    }
                    Value::Str(src[..end].to_string())
                }
            }
            "len" => {
                argc(1)?;
                let n = match &args[0] {
                    Value::Str(x) => x.len(),
                    Value::Arr(a) => a.len(),
                    Value::Obj(o) if !is_missing(&args[0]) => o.len(),
                    other => return terr(format!("len of type {}", type_name(other))),
                };
                Value::Num(n.to_string())
            }
            "index" => {
                if args.is_empty() {
                    return terr("wrong number of args for index: want at least 1 got 0");
                }
                let mut cur = args[0].clone();
                for key in &args[1..] {
                    cur = match (&cur, key) {
                        (Value::Arr(a), k) => {
                            let i = as_int(k)?;
                            match usize::try_from(i).ok().and_then(|i| a.get(i)) {
                                Some(v) => v.clone(),
                                None => return terr(format!("index out of range: {i}")),
                            }
                        }
                        (Value::Obj(o), k) if !is_missing(&cur) => {
                            let k = as_string(k);
                            o.iter()
                                .find(|(name, _)| *name == k)
                                .map(|(_, v)| v.clone())
                                .unwrap_or_else(missing)
                        }
                        (Value::Null, _) => missing(),
                        (other, _) if is_missing(other) => missing(),
                        (other, _) => {
                            return terr(format!("can't index item of type {}", type_name(other)))
                        }
                    };
                }
                cur
            }
            "print" => Value::Str(sprint(&args)),
            "println" => Value::Str(format!(
                "{}\n",
                args.iter().map(as_string).collect::<Vec<_>>().join(" ")
            )),
            "printf" => {
                if args.is_empty() {
                    return terr("wrong number of args for printf: want at least 1 got 0");
                }
                Value::Str(sprintf(&s(0), &args[1..]))
            }
            "eq" => {
                if args.len() < 2 {
                    return terr("missing argument for comparison");
                }
                Value::Bool(args[1..].iter().any(|b| values_equal(&args[0], b)))
            }
            "ne" => {
                argc(2)?;
                Value::Bool(!values_equal(&args[0], &args[1]))
            }
            "lt" | "le" | "gt" | "ge" => {
                argc(2)?;
                let ord = compare(&args[0], &args[1])
                    .ok_or_else(|| TemplateError("incompatible types for comparison".into()))?;
                use std::cmp::Ordering::*;
                Value::Bool(match name {
                    "lt" => ord == Less,
                    "le" => ord != Greater,
                    "gt" => ord == Greater,
                    _ => ord != Less,
                })
            }
            "and" => {
                if args.is_empty() {
                    return terr("wrong number of args for and");
                }
                let mut last = Value::Null;
                for a in args {
                    if !truthy(&a) {
                        return Ok(a);
                    }
                    last = a;
                }
                last
            }
            "or" => {
                if args.is_empty() {
                    return terr("wrong number of args for or");
                }
                let mut last = Value::Null;
                for a in args {
                    if truthy(&a) {
                        return Ok(a);
                    }
                    last = a;
                }
                last
            }
            "not" => {
                argc(1)?;
                Value::Bool(!truthy(&args[0]))
            }
            other => return terr(format!(":1: function \"{other}\" not defined")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(tpl: &str, json: &str) -> String {
        let data = Value::parse(json).unwrap();
        Template::parse(tpl).unwrap().execute(&data).unwrap()
    }

    const CTR: &str = r#"{"Id":"abc123","Name":"/tr1","State":{"Status":"running","Running":true,"Pid":42,"ExitCode":0},
        "Config":{"Env":["A=B","C=D"],"Cmd":["httpd","-f"],"Labels":{"b":"2","a":"1"},"Entrypoint":null,"Tty":false},
        "NetworkSettings":{"Ports":{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8000"}]}},
        "Mounts":[{"Source":"/tmp","Destination":"/host"},{"Source":"/v","Destination":"/data"}]}"#;

    #[test]
    fn fields_and_json() {
        assert_eq!(run("{{.State.Status}}", CTR), "running");
        assert_eq!(run("{{.Id}} {{.Name}}", CTR), "abc123 /tr1");
        assert_eq!(run("{{.State.Pid}}", CTR), "42");
        assert_eq!(run("{{.State.Running}}", CTR), "true");
        assert_eq!(run("{{json .Config.Cmd}}", CTR), r#"["httpd","-f"]"#);
        assert_eq!(run("{{json .Config.Labels}}", CTR), r#"{"b":"2","a":"1"}"#);
        assert_eq!(run("{{.Config.Env}}", CTR), "[A=B C=D]");
        assert_eq!(run("{{.Config.Labels}}", CTR), "map[a:1 b:2]");
        assert_eq!(run("{{.Nope}}", CTR), "<no value>");
        assert_eq!(run("{{.Config.Entrypoint}}", CTR), "<nil>");
        assert_eq!(run("{{.State}}", CTR), "{running true 42 0}");
    }

    #[test]
    fn control_flow() {
        assert_eq!(run("{{if .State.Running}}up{{else}}down{{end}}", CTR), "up");
        assert_eq!(
            run(
                "{{if .Config.Tty}}t{{else if .State.Running}}r{{else}}x{{end}}",
                CTR
            ),
            "r"
        );
        assert_eq!(
            run("{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}", CTR),
            "/tmp:/host /v:/data "
        );
        assert_eq!(
            run(
                "{{range $i, $m := .Mounts}}{{$i}}={{$m.Destination}};{{end}}",
                CTR
            ),
            "0=/host;1=/data;"
        );
        assert_eq!(
            run(
                "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}",
                CTR
            ),
            "a=1,b=2,"
        );
        assert_eq!(
            run("{{range $p, $conf := .NetworkSettings.Ports}}{{$p}} -> {{(index $conf 0).HostPort}}{{end}}", CTR),
            "80/tcp -> 8000"
        );
        assert_eq!(run("{{with .State}}{{.Status}}{{end}}", CTR), "running");
        assert_eq!(run("{{with .Nope}}x{{else}}none{{end}}", CTR), "none");
        assert_eq!(run("{{range .Nope}}x{{else}}empty{{end}}", CTR), "empty");
        assert_eq!(run("{{$n := .Name}}{{$n}}", CTR), "/tr1");
    }

    #[test]
    fn functions() {
        assert_eq!(run("{{join .Config.Env \",\"}}", CTR), "A=B,C=D");
        assert_eq!(run("{{upper .State.Status}}", CTR), "RUNNING");
        assert_eq!(run("{{.State.Status | upper}}", CTR), "RUNNING");
        assert_eq!(run("{{lower \"ABC\"}}", CTR), "abc");
        assert_eq!(run("{{title \"hello world\"}}", CTR), "Hello World");
        assert_eq!(run("{{len .Mounts}}", CTR), "2");
        assert_eq!(run("{{index .Config.Labels \"a\"}}", CTR), "1");
        assert_eq!(run("{{index .Config.Env 1}}", CTR), "C=D");
        assert_eq!(run("{{truncate .Id 3}}", CTR), "abc");
        assert_eq!(run("{{pad .Id 1 2}}|", CTR), " abc123  |");
        assert_eq!(run("{{split \"a:b\" \":\"}}", CTR), "[a b]");
        assert_eq!(run("{{eq .State.Status \"running\"}}", CTR), "true");
        assert_eq!(run("{{ne .State.Pid 42}}", CTR), "false");
        assert_eq!(run("{{gt .State.Pid 10}}", CTR), "true");
        assert_eq!(run("{{and .State.Running .Config.Tty}}", CTR), "false");
        assert_eq!(run("{{or .Config.Tty .State.Status}}", CTR), "running");
        assert_eq!(run("{{not .Config.Tty}}", CTR), "true");
        assert_eq!(
            run(
                "{{printf \"%-8s|%5d|%q\" .State.Status .State.Pid .Id}}",
                CTR
            ),
            "running |   42|\"abc123\""
        );
        assert_eq!(run("{{print 1 2 \"x\" 3}}", CTR), "1 2x3");
    }

    #[test]
    fn trimming_and_comments() {
        assert_eq!(run("a  {{- .Id -}}  b", CTR), "aabc123b");
        assert_eq!(run("a{{/* note */}}b", CTR), "ab");
        assert_eq!(run("{{\"}}\"}}", CTR), "}}");
        assert_eq!(run("{{`raw\\n`}}", CTR), "raw\\n");
    }

    #[test]
    fn header_mode() {
        let t = Template::parse("{{.ID}}\t{{json .Names}}\t{{pad .Size 1 1}}").unwrap();
        let h = Value::parse(r#"{"ID":"CONTAINER ID","Names":"NAMES","Size":"SIZE"}"#).unwrap();
        assert_eq!(t.execute_header(&h).unwrap(), "CONTAINER ID\tNAMES\t SIZE ");
    }

    #[test]
    fn errors() {
        assert!(Template::parse("{{.Id").is_err());
        assert!(Template::parse("{{if .A}}x").is_err());
        assert!(Template::parse("{{end}}").is_err());
        assert!(Template::parse("{{\"abc}}").is_err());
        let data = Value::parse(CTR).unwrap();
        assert!(Template::parse("{{nosuch .Id}}")
            .unwrap()
            .execute(&data)
            .is_err());
        assert!(Template::parse("{{.Id.Foo}}")
            .unwrap()
            .execute(&data)
            .is_err());
        assert!(Template::parse("{{$x}}").unwrap().execute(&data).is_err());
    }
}
