//! Typing of raw nodes into [`Instruction`]s (BuildKit's `instructions/parse.go`
//! behaviour: flag parsing, argument counts, stage names, error wording) and assembly of
//! stages.

use std::time::Duration;

use crate::ast::{
    CopyFlags, Dockerfile, Healthcheck, Heredoc, Instruction, InstructionKind, ShellOrExec, Stage,
};
use crate::duration::parse_go_duration;
use crate::error::ParseError;
use crate::parser::{parse_heredoc, RawFile, RawNode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlagKind {
    Bool,
    Str,
    Strs,
}

/// Values of the flags actually given.
#[derive(Debug, Default)]
struct Flags {
    bools: Vec<(&'static str, bool)>,
    strs: Vec<(&'static str, String)>,
    lists: Vec<(&'static str, Vec<String>)>,
}

impl Flags {
    fn bool(&self, name: &str) -> Option<bool> {
        self.bools.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
    fn str(&self, name: &str) -> Option<String> {
        self.strs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }
    fn list(&self, name: &str) -> Vec<String> {
        self.lists
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

/// Parses `--name[=value]` words against the flags an instruction accepts.
fn parse_flags(args: &[String], spec: &[(&'static str, FlagKind)]) -> Result<Flags, String> {
    let mut out = Flags::default();
    let mut used: Vec<&'static str> = Vec::new();
    for a in args {
        if a == "--" {
            break;
        }
        let Some(body) = a.strip_prefix("--") else {
            return Err(format!("arg should start with -- : {a}"));
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let flag_name = format!("--{name}");
        let Some(&(key, kind)) = spec.iter().find(|(n, _)| *n == name) else {
            return Err(format!("unknown flag: {flag_name}"));
        };
        if used.contains(&key) && kind != FlagKind::Strs {
            return Err(format!("duplicate flag specified: {flag_name}"));
        }
        used.push(key);
        match kind {
            FlagKind::Bool => {
                let v = match value.map(str::to_ascii_lowercase).as_deref() {
                    None => true,
                    Some("") => return Err(format!("missing a value on flag: {flag_name}")),
                    Some("true") => true,
                    Some("false") => false,
                    Some(_) => {
                        return Err(format!(
                            "expecting boolean value for flag {flag_name}, not: {}",
                            value.unwrap_or_default()
                        ))
                    }
                };
                out.bools.push((key, v));
            }
            FlagKind::Str => {
                let Some(v) = value else {
                    return Err(format!("missing a value on flag: {flag_name}"));
                };
                out.strs.push((key, v.to_string()));
            }
            FlagKind::Strs => {
                let Some(v) = value else {
                    return Err(format!("missing a value on flag: {flag_name}"));
                };
                match out.lists.iter_mut().find(|(n, _)| *n == key) {
                    Some((_, l)) => l.push(v.to_string()),
                    None => out.lists.push((key, vec![v.to_string()])),
                }
            }
        }
    }
    Ok(out)
}

fn no_flags(node: &RawNode) -> Result<(), String> {
    parse_flags(&node.flags, &[]).map(|_| ())
}

fn at_least_one(cmd: &str) -> String {
    format!("{cmd} requires at least one argument")
}

fn exactly_one(cmd: &str) -> String {
    format!("{cmd} requires exactly one argument")
}

fn shell_or_exec(node: &RawNode) -> ShellOrExec {
    if node.json {
        ShellOrExec::Exec(node.args.clone())
    } else {
        ShellOrExec::Shell(node.args.join(" "))
    }
}

/// Stage names: `^[a-z][a-z0-9-_.]*$` after lowercasing.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_' | '.'))
}

/// A HEALTHCHECK duration flag: `None` when absent, error below 1ms (except 0).
fn health_duration(flags: &Flags, name: &str) -> Result<Option<Duration>, String> {
    let Some(v) = flags.str(name) else {
        return Ok(None);
    };
    if v.is_empty() {
        return Ok(None);
    }
    let nanos = parse_go_duration(&v)?;
    if nanos == 0 {
        return Ok(Some(Duration::ZERO));
    }
    if nanos < 1_000_000 {
        return Err(format!("Interval {name:?} cannot be less than 1ms"));
    }
    let nanos = u64::try_from(nanos).map_err(|_| format!("time: invalid duration \"{v}\""))?;
    Ok(Some(Duration::from_nanos(nanos)))
}

/// Go's `strconv.ParseInt(s, 10, 32)` for `--retries`.
fn parse_retries(v: &str) -> Result<u32, String> {
    let n: i64 = v.parse().map_err(|_| {
        if v.trim_start_matches(['+', '-'])
            .chars()
            .all(|c| c.is_ascii_digit())
            && !v.is_empty()
        {
            format!("strconv.ParseInt: parsing {v:?}: value out of range")
        } else {
            format!("strconv.ParseInt: parsing {v:?}: invalid syntax")
        }
    })?;
    if n > i64::from(i32::MAX) || n < i64::from(i32::MIN) {
        return Err(format!(
            "strconv.ParseInt: parsing {v:?}: value out of range"
        ));
    }
    if n < 0 {
        return Err(format!("--retries cannot be negative ({n})"));
    }
    u32::try_from(n).map_err(|_| format!("strconv.ParseInt: parsing {v:?}: value out of range"))
}

/// COPY/ADD sources and destination; heredoc sources become [`Heredoc`]s.
fn sources_and_dest(
    node: &RawNode,
    cmd: &str,
) -> Result<(Vec<String>, String, Vec<Heredoc>), String> {
    let (dest, srcs) = match node.args.split_last() {
        Some((d, s)) => (d.clone(), s),
        None => return Err(format!("{cmd} requires at least two arguments")),
    };
    if node.json {
        return Ok((srcs.to_vec(), dest, Vec::new()));
    }
    if matches!(parse_heredoc(&dest), Ok(Some(_))) {
        return Err(format!("{cmd} cannot accept a heredoc as a destination"));
    }
    let mut paths = Vec::new();
    let mut docs = Vec::new();
    for src in srcs {
        match parse_heredoc(src) {
            Ok(Some((name, expand, chomp))) => {
                let content = node
                    .heredocs
                    .iter()
                    .find(|h| h.name == name)
                    .map(|h| h.content.clone())
                    .unwrap_or_default();
                docs.push(Heredoc {
                    name,
                    content,
                    expand,
                    chomp_tabs: chomp,
                });
            }
            _ => paths.push(src.clone()),
        }
    }
    Ok((paths, dest, docs))
}

fn copy_like(node: &RawNode, is_add: bool) -> Result<InstructionKind, String> {
    let cmd = if is_add { "ADD" } else { "COPY" };
    if node.args.len() < 2 {
        return Err(format!(
            "{cmd} requires at least two arguments, but only one was provided. Destination could not be determined"
        ));
    }
    let spec: &[(&'static str, FlagKind)] = if is_add {
        &[
            ("chown", FlagKind::Str),
            ("chmod", FlagKind::Str),
            ("link", FlagKind::Bool),
            ("keep-git-dir", FlagKind::Bool),
            ("checksum", FlagKind::Str),
            ("unpack", FlagKind::Bool),
            ("exclude", FlagKind::Strs),
        ]
    } else {
        &[
            ("chown", FlagKind::Str),
            ("from", FlagKind::Str),
            ("chmod", FlagKind::Str),
            ("link", FlagKind::Bool),
            ("exclude", FlagKind::Strs),
            ("parents", FlagKind::Bool),
        ]
    };
    let f = parse_flags(&node.flags, spec)?;
    let (srcs, dest, heredocs) = sources_and_dest(node, cmd)?;
    let flags = CopyFlags {
        from: f.str("from"),
        chown: f.str("chown"),
        chmod: f.str("chmod"),
        link: f.bool("link").unwrap_or(false),
        parents: f.bool("parents").unwrap_or(false),
        exclude: f.list("exclude"),
        checksum: f.str("checksum"),
        keep_git_dir: f.bool("keep-git-dir").unwrap_or(false),
        unpack: f.bool("unpack"),
    };
    Ok(if is_add {
        InstructionKind::Add {
            flags,
            srcs,
            dest,
            heredocs,
        }
    } else {
        InstructionKind::Copy {
            flags,
            srcs,
            dest,
            heredocs,
        }
    })
}

fn kvs(node: &RawNode, cmd: &str) -> Result<Vec<(String, String)>, String> {
    no_flags(node)?;
    if node.kvs.is_empty() {
        return Err(at_least_one(cmd));
    }
    if node.kvs.iter().any(|(k, _)| k.is_empty()) {
        return Err(format!("{cmd} names can not be blank"));
    }
    Ok(node.kvs.clone())
}

fn single(node: &RawNode, cmd: &str) -> Result<String, String> {
    if node.args.len() != 1 {
        return Err(exactly_one(cmd));
    }
    no_flags(node)?;
    Ok(node.args[0].clone())
}

fn healthcheck(node: &RawNode) -> Result<Healthcheck, String> {
    let Some(typ) = node.args.first() else {
        return Err(at_least_one("HEALTHCHECK"));
    };
    let typ = typ.to_ascii_uppercase();
    let args = &node.args[1..];
    if typ == "NONE" {
        if !args.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(Healthcheck::None);
    }
    let f = parse_flags(
        &node.flags,
        &[
            ("interval", FlagKind::Str),
            ("timeout", FlagKind::Str),
            ("start-period", FlagKind::Str),
            ("start-interval", FlagKind::Str),
            ("retries", FlagKind::Str),
        ],
    )?;
    if typ != "CMD" {
        return Err(format!("Unknown type {typ:?} in HEALTHCHECK (try CMD)"));
    }
    if args.is_empty() || (!node.json && args.join(" ").is_empty()) {
        return Err("Missing command after HEALTHCHECK CMD".into());
    }
    let test = if node.json {
        ShellOrExec::Exec(args.to_vec())
    } else {
        ShellOrExec::Shell(args.join(" "))
    };
    let interval = health_duration(&f, "interval")?;
    let timeout = health_duration(&f, "timeout")?;
    let start_period = health_duration(&f, "start-period")?;
    let start_interval = health_duration(&f, "start-interval")?;
    let retries = match f.str("retries") {
        Some(v) if !v.is_empty() => Some(parse_retries(&v)?),
        _ => None,
    };
    Ok(Healthcheck::Check {
        test,
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
    })
}

/// Types one raw node.
pub(crate) fn to_instruction(node: &RawNode) -> Result<Instruction, ParseError> {
    let kind = to_kind(node).map_err(|m| ParseError::new(node.start_line, m))?;
    Ok(Instruction {
        line: node.start_line,
        end_line: node.end_line,
        original: node.original.clone(),
        kind,
    })
}

fn to_kind(node: &RawNode) -> Result<InstructionKind, String> {
    use InstructionKind as K;
    Ok(match node.lower_cmd().as_str() {
        "from" => {
            let args = &node.args;
            let name = match args.len() {
                3 if args[1].eq_ignore_ascii_case("as") => {
                    let lower = args[2].to_lowercase();
                    if !valid_stage_name(&lower) {
                        return Err(format!(
                            "invalid name for build stage: {:?}, name can't start with a number or contain symbols",
                            args[2]
                        ));
                    }
                    Some(lower)
                }
                1 => None,
                _ => return Err("FROM requires either one or three arguments".into()),
            };
            let f = parse_flags(&node.flags, &[("platform", FlagKind::Str)])?;
            K::From {
                image: args[0].clone(),
                name,
                platform: f.str("platform"),
            }
        }
        "run" => {
            let f = parse_flags(
                &node.flags,
                &[
                    ("mount", FlagKind::Strs),
                    ("network", FlagKind::Str),
                    ("security", FlagKind::Str),
                ],
            )?;
            let mounts = f.list("mount");
            for m in &mounts {
                crate::mount::parse_mount(m, None).map_err(|e| e.0)?;
            }
            let network = f.str("network");
            if let Some(n) = &network {
                if !matches!(n.as_str(), "default" | "none" | "host") {
                    return Err(format!("invalid network mode {n:?}"));
                }
            }
            let security = f.str("security");
            if let Some(s) = &security {
                if !matches!(s.as_str(), "sandbox" | "insecure") {
                    return Err(format!("security {s:?} is not valid"));
                }
            }
            if node.args.is_empty() && !node.json {
                return Err(at_least_one("RUN"));
            }
            K::Run {
                command: shell_or_exec(node),
                heredocs: node.heredocs.clone(),
                mounts,
                network,
                security,
            }
        }
        "cmd" => {
            no_flags(node)?;
            K::Cmd(shell_or_exec(node))
        }
        "entrypoint" => {
            no_flags(node)?;
            K::Entrypoint(shell_or_exec(node))
        }
        "label" => K::Label(kvs(node, "LABEL")?),
        "env" => K::Env(kvs(node, "ENV")?),
        "maintainer" => K::Maintainer(single(node, "MAINTAINER")?),
        "expose" => {
            if node.args.is_empty() {
                return Err(at_least_one("EXPOSE"));
            }
            no_flags(node)?;
            K::Expose(node.args.clone())
        }
        "add" => copy_like(node, true)?,
        "copy" => copy_like(node, false)?,
        "volume" => {
            if node.args.is_empty() {
                return Err(at_least_one("VOLUME"));
            }
            no_flags(node)?;
            let mut vols = Vec::with_capacity(node.args.len());
            for v in &node.args {
                let v = v.trim();
                if v.is_empty() {
                    return Err("VOLUME specified can not be an empty string".into());
                }
                vols.push(v.to_string());
            }
            K::Volume(vols)
        }
        "user" => K::User(single(node, "USER")?),
        "workdir" => K::Workdir(single(node, "WORKDIR")?),
        "stopsignal" => K::Stopsignal(single(node, "STOPSIGNAL")?),
        "arg" => {
            if node.args.is_empty() {
                return Err(at_least_one("ARG"));
            }
            no_flags(node)?;
            let mut pairs = Vec::with_capacity(node.args.len());
            for a in &node.args {
                match a.split_once('=') {
                    Some(("", _)) => return Err("ARG names can not be blank".into()),
                    Some((k, v)) => pairs.push((k.to_string(), Some(v.to_string()))),
                    None => pairs.push((a.clone(), None)),
                }
            }
            K::Arg(pairs)
        }
        "onbuild" => {
            let Some(sub) = &node.sub else {
                return Err(at_least_one("ONBUILD"));
            };
            no_flags(node)?;
            let trigger = sub.cmd.to_ascii_uppercase();
            match trigger.as_str() {
                "ONBUILD" => {
                    return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into())
                }
                "MAINTAINER" | "FROM" => {
                    return Err(format!("{trigger} isn't allowed as an ONBUILD trigger"))
                }
                _ => {}
            }
            let mut sub = sub.as_ref().clone();
            sub.heredocs = node.heredocs.clone();
            let inner = to_kind(&sub)?;
            K::Onbuild(Box::new(Instruction {
                line: node.start_line,
                end_line: node.end_line,
                original: strip_onbuild(&node.original),
                kind: inner,
            }))
        }
        "healthcheck" => K::Healthcheck(healthcheck(node)?),
        "shell" => {
            no_flags(node)?;
            if node.args.is_empty() {
                return Err(at_least_one("SHELL"));
            }
            if !node.json {
                return Err("SHELL requires the arguments to be in JSON form".into());
            }
            K::Shell(node.args.clone())
        }
        _ => return Err(format!("unknown instruction: {}", node.cmd)),
    })
}

/// `original` of an ONBUILD trigger: the line without the leading `ONBUILD` keyword.
fn strip_onbuild(original: &str) -> String {
    let t = original.trim_start();
    match t.get(..7) {
        Some(k) if k.eq_ignore_ascii_case("onbuild") => t[7..].trim_start().to_string(),
        _ => t.to_string(),
    }
}

/// Types all nodes and groups them into meta args and stages.
pub(crate) fn build(raw: RawFile) -> Result<Dockerfile, ParseError> {
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &raw.nodes {
        let inst = to_instruction(node)?;
        match &inst.kind {
            InstructionKind::From { name, .. } => stages.push(Stage {
                name: name.clone(),
                from: inst,
                instructions: Vec::new(),
            }),
            InstructionKind::Arg(_) if stages.is_empty() => meta_args.push(inst),
            _ => match stages.last_mut() {
                Some(stage) => stage.instructions.push(inst),
                None => {
                    return Err(ParseError::new(
                        inst.line,
                        "no build stage in current context",
                    ))
                }
            },
        }
    }
    if stages.is_empty() {
        return Err(ParseError::new(
            raw.last_line,
            "dockerfile contains no stages to build",
        ));
    }
    Ok(Dockerfile {
        escape: raw.escape,
        syntax: raw.syntax,
        meta_args,
        stages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flag_parsing() {
        let spec = [
            ("b", FlagKind::Bool),
            ("s", FlagKind::Str),
            ("l", FlagKind::Strs),
        ];
        let f = parse_flags(&s(&["--b", "--s=x=y", "--l=1", "--l=2"]), &spec).unwrap();
        assert_eq!(f.bool("b"), Some(true));
        assert_eq!(f.str("s").as_deref(), Some("x=y"));
        assert_eq!(f.list("l"), s(&["1", "2"]));
        let f = parse_flags(&s(&["--b=FALSE"]), &spec).unwrap();
        assert_eq!(f.bool("b"), Some(false));
        let err = |a: &[&str]| parse_flags(&s(a), &spec).unwrap_err();
        assert_eq!(err(&["--x"]), "unknown flag: --x");
        assert_eq!(err(&["--s"]), "missing a value on flag: --s");
        assert_eq!(err(&["--b="]), "missing a value on flag: --b");
        assert_eq!(
            err(&["--b=maybe"]),
            "expecting boolean value for flag --b, not: maybe"
        );
        assert_eq!(err(&["--s=1", "--s=2"]), "duplicate flag specified: --s");
        assert_eq!(err(&["--l"]), "missing a value on flag: --l");
    }

    #[test]
    fn stage_names() {
        for ok in ["a", "build", "a-b_c.d", "x9"] {
            assert!(valid_stage_name(ok), "{ok}");
        }
        for bad in ["", "9a", "-a", "a/b", "a:b", "$x", "é"] {
            assert!(!valid_stage_name(bad), "{bad}");
        }
    }

    #[test]
    fn retries() {
        assert_eq!(parse_retries("3"), Ok(3));
        assert_eq!(
            parse_retries("-1"),
            Err("--retries cannot be negative (-1)".into())
        );
        assert!(parse_retries("x").unwrap_err().contains("invalid syntax"));
        assert!(parse_retries("99999999999")
            .unwrap_err()
            .contains("out of range"));
    }
}
