//! A command-line flag parser with the behaviour of spf13/pflag as docker
//! uses it: `--flag=value`, `--flag value`, combined short booleans (`-it`),
//! attached short values (`-m64m`), `--` terminator, optional
//! non-interspersed parsing (flags stop at the first positional argument),
//! validation at parse time, and pflag's error wording. Also renders
//! docker-style usage/help text.

use crate::opts;

/// Validates a flag value; the error is the part after `flag: `.
pub type Check = fn(&str) -> Result<(), String>;

/// Describes one flag.
#[derive(Debug, Clone)]
pub struct Flag {
    /// Long name without dashes.
    pub long: &'static str,
    /// Optional one-letter shorthand.
    pub short: Option<char>,
    /// Type name shown in help ("string", "list", "int", ...); "bool" for switches.
    pub ty: &'static str,
    /// One-line usage text (may contain '\n').
    pub usage: &'static str,
    /// Text shown as "(default ...)" in help.
    pub default: Option<&'static str>,
    /// Hidden from help.
    pub hidden: bool,
    /// Value validation run while parsing.
    pub check: Option<Check>,
}

fn check_bool(v: &str) -> Result<(), String> {
    opts::parse_bool(v).map(|_| ())
}
fn check_int(v: &str) -> Result<(), String> {
    opts::parse_int(v).map(|_| ())
}
fn check_uint(v: &str) -> Result<(), String> {
    opts::parse_uint(v, 64).map(|_| ())
}
fn check_uint16(v: &str) -> Result<(), String> {
    opts::parse_uint(v, 16).map(|_| ())
}
fn check_bytes(v: &str) -> Result<(), String> {
    opts::ram_in_bytes(v).map(|_| ())
}
fn check_duration(v: &str) -> Result<(), String> {
    opts::parse_go_duration(v).map(|_| ())
}

impl Flag {
    /// A boolean switch.
    pub const fn switch(long: &'static str, short: Option<char>, usage: &'static str) -> Flag {
        Flag {
            long,
            short,
            ty: "bool",
            usage,
            default: None,
            hidden: false,
            check: Some(check_bool),
        }
    }

    /// A flag taking a value of the given type name.
    pub fn value(
        long: &'static str,
        short: Option<char>,
        ty: &'static str,
        usage: &'static str,
    ) -> Flag {
        let check: Option<Check> = match ty {
            "int" => Some(check_int),
            "uint" => Some(check_uint),
            "uint16" => Some(check_uint16),
            "bytes" => Some(check_bytes),
            "duration" => Some(check_duration),
            _ => None,
        };
        Flag {
            long,
            short,
            ty,
            usage,
            default: None,
            hidden: false,
            check,
        }
    }

    /// Sets the "(default ...)" help text.
    pub fn default(mut self, d: &'static str) -> Flag {
        self.default = Some(d);
        self
    }

    /// Hides the flag from help.
    pub fn hidden(mut self) -> Flag {
        self.hidden = true;
        self
    }

    /// Replaces the validation function.
    pub fn check(mut self, c: Check) -> Flag {
        self.check = Some(c);
        self
    }

    /// True for boolean switches.
    pub fn is_bool(&self) -> bool {
        self.ty == "bool"
    }

    /// pflag's name for error messages: "-m, --memory" or "--cpus".
    pub fn display_name(&self) -> String {
        match self.short {
            Some(s) => format!("-{s}, --{}", self.long),
            None => format!("--{}", self.long),
        }
    }
}

/// How many positional arguments a command accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Args {
    /// Any number.
    Any,
    /// None.
    None,
    /// At least n.
    Min(usize),
    /// Exactly n.
    Exact(usize),
    /// Between min and max inclusive.
    Range(usize, usize),
}

/// One command (verb) of the CLI.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    /// Command path after the binary name, e.g. "run" or "volume create".
    pub path: &'static str,
    /// Usage arguments after the path, e.g. "[OPTIONS] IMAGE [COMMAND] [ARG...]".
    pub usage: &'static str,
    /// One-line description.
    pub short: &'static str,
    /// Alias paths (without binary name), shown under "Aliases:".
    pub aliases: &'static [&'static str],
    /// Flags.
    pub flags: Vec<Flag>,
    /// Positional argument rule.
    pub args: Args,
    /// Whether flags may follow positional arguments.
    pub interspersed: bool,
}

/// Result of parsing.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    vals: Vec<(&'static str, String)>,
    /// Positional arguments.
    pub args: Vec<String>,
}

impl Parsed {
    /// Whether the flag was given.
    pub fn changed(&self, long: &str) -> bool {
        self.vals.iter().any(|(k, _)| *k == long)
    }

    /// Value of a boolean switch (last occurrence), else `default`.
    pub fn bool_or(&self, long: &str, default: bool) -> bool {
        self.last(long)
            .and_then(|v| opts::parse_bool(v).ok())
            .unwrap_or(default)
    }

    /// Value of a boolean switch, default false.
    pub fn bool(&self, long: &str) -> bool {
        self.bool_or(long, false)
    }

    /// Last value given for a flag.
    pub fn last(&self, long: &str) -> Option<&str> {
        self.vals
            .iter()
            .rev()
            .find(|(k, _)| *k == long)
            .map(|(_, v)| v.as_str())
    }

    /// Last value or a default.
    pub fn str_or<'a>(&'a self, long: &str, default: &'a str) -> &'a str {
        self.last(long).unwrap_or(default)
    }

    /// All values in order.
    pub fn all(&self, long: &str) -> Vec<String> {
        self.vals
            .iter()
            .filter(|(k, _)| *k == long)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Integer value (already validated while parsing).
    pub fn int(&self, long: &str) -> Option<i64> {
        self.last(long).and_then(|v| opts::parse_int(v).ok())
    }
}

/// Why parsing stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagError {
    /// `--help` was given.
    Help,
    /// A pflag-style error message.
    Bad(String),
}

fn find_long<'a>(spec: &'a CommandSpec, name: &str) -> Option<&'a Flag> {
    spec.flags.iter().find(|f| f.long == name)
}

fn find_short(spec: &CommandSpec, c: char) -> Option<&Flag> {
    spec.flags.iter().find(|f| f.short == Some(c))
}

fn help_has_short(spec: &CommandSpec) -> bool {
    find_short(spec, 'h').is_none()
}

fn set(spec_flag: &Flag, value: String, out: &mut Parsed) -> Result<(), FlagError> {
    if let Some(check) = spec_flag.check {
        if let Err(e) = check(&value) {
            return Err(FlagError::Bad(format!(
                "invalid argument {:?} for {:?} flag: {e}",
                value,
                spec_flag.display_name()
            )));
        }
    }
    out.vals.push((spec_flag.long, value));
    Ok(())
}

/// Parses `args` (everything after the command path).
pub fn parse(spec: &CommandSpec, args: &[String]) -> Result<Parsed, FlagError> {
    let mut out = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            out.args.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(body) = a.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            if name == "help" {
                return Err(FlagError::Help);
            }
            let flag = match find_long(spec, name) {
                Some(f) => f,
                None => return Err(FlagError::Bad(format!("unknown flag: --{name}"))),
            };
            let value = if let Some(v) = inline {
                v
            } else if flag.is_bool() {
                "true".to_string()
            } else if i < args.len() {
                i += 1;
                args[i - 1].clone()
            } else {
                return Err(FlagError::Bad(format!("flag needs an argument: --{name}")));
            };
            set(flag, value, &mut out)?;
            continue;
        }
        if a.len() > 1 && a.starts_with('-') {
            let shorts: Vec<char> = a[1..].chars().collect();
            let mut j = 0;
            while j < shorts.len() {
                let c = shorts[j];
                let flag = match find_short(spec, c) {
                    Some(f) => f,
                    None if c == 'h' && help_has_short(spec) => return Err(FlagError::Help),
                    None => {
                        return Err(FlagError::Bad(format!(
                            "unknown shorthand flag: '{c}' in {a}"
                        )))
                    }
                };
                let rest: String = shorts[j + 1..].iter().collect();
                if flag.is_bool() {
                    if let Some(v) = rest.strip_prefix('=') {
                        set(flag, v.to_string(), &mut out)?;
                        break;
                    }
                    set(flag, "true".into(), &mut out)?;
                    j += 1;
                    continue;
                }
                let value = if !rest.is_empty() {
                    rest.strip_prefix('=').unwrap_or(&rest).to_string()
                } else if i < args.len() {
                    i += 1;
                    args[i - 1].clone()
                } else {
                    return Err(FlagError::Bad(format!(
                        "flag needs an argument: '{c}' in -{c}"
                    )));
                };
                set(flag, value, &mut out)?;
                break;
            }
            continue;
        }
        // Positional argument.
        out.args.push(a.clone());
        if !spec.interspersed {
            out.args.extend(args[i..].iter().cloned());
            break;
        }
    }
    Ok(out)
}

/// Checks the positional-argument count; returns docker's error text.
pub fn check_args(spec: &CommandSpec, bin: &str, n: usize) -> Result<(), String> {
    let plural = |w: &str, k: usize| {
        if k == 1 {
            w.to_string()
        } else {
            format!("{w}s")
        }
    };
    let cmd = format!("{bin} {}", spec.path);
    let use_line = use_line(spec, bin);
    match spec.args {
        Args::Any => Ok(()),
        Args::None if n == 0 => Ok(()),
        Args::None => Err(format!(
            "{bin}: '{cmd}' accepts no arguments\n\nUsage:  {use_line}\n\nRun '{cmd} --help' for more information"
        )),
        Args::Min(m) if n >= m => Ok(()),
        Args::Min(m) => Err(format!(
            "{bin}: '{cmd}' requires at least {m} {}\n\nUsage:  {use_line}\n\nSee '{cmd} --help' for more information",
            plural("argument", m)
        )),
        Args::Exact(m) if n == m => Ok(()),
        Args::Exact(m) => Err(format!(
            "{bin}: '{cmd}' requires {m} {}\n\nUsage:  {use_line}\n\nRun '{cmd} --help' for more information",
            plural("argument", m)
        )),
        Args::Range(lo, hi) if n >= lo && n <= hi => Ok(()),
        Args::Range(lo, hi) => Err(format!(
            "{bin}: '{cmd}' requires at least {lo} and at most {hi} {}\n\nUsage:  {use_line}\n\nRun '{cmd} --help' for more information",
            plural("argument", hi)
        )),
    }
}

/// "berth run [OPTIONS] IMAGE [COMMAND] [ARG...]"
pub fn use_line(spec: &CommandSpec, bin: &str) -> String {
    if spec.usage.is_empty() {
        format!("{bin} {}", spec.path)
    } else {
        format!("{bin} {} {}", spec.path, spec.usage)
    }
}

/// The text docker prints for a flag parse error.
pub fn flag_error_text(spec: &CommandSpec, bin: &str, msg: &str) -> String {
    format!(
        "{msg}\n\nUsage:  {}\n\nRun '{bin} {} --help' for more information",
        use_line(spec, bin),
        spec.path
    )
}

/// Splits `s` into a first line of at most `width` bytes and the rest,
/// breaking at whitespace (or at an embedded newline before it). A line
/// may run up to `slop` bytes over `width` when that finishes the text.
fn wrap_once(width: usize, slop: usize, s: &str) -> (String, String) {
    if width + slop > s.len() {
        return (s.to_string(), String::new());
    }
    let mut cut = width.min(s.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let head = &s[..cut];
    let ws = match head.rfind([' ', '\t', '\n']) {
        Some(p) if p > 0 => p,
        _ => return (s.to_string(), String::new()),
    };
    if let Some(nl) = head.rfind('\n') {
        if nl > 0 && nl < ws {
            return (s[..nl].to_string(), s[nl + 1..].to_string());
        }
    }
    (s[..ws].to_string(), s[ws + 1..].to_string())
}

/// Wraps usage text for a help column starting at `indent` in a `cols` wide terminal.
fn wrap_usage(indent: usize, cols: usize, s: &str) -> String {
    let pad = |n: usize| " ".repeat(n);
    let mut indent = indent;
    let mut room = cols.saturating_sub(indent);
    let mut out = String::new();
    if room < 24 {
        indent = 16;
        room = cols.saturating_sub(indent);
        out.push('\n');
        out.push_str(&pad(indent));
    }
    if room < 24 {
        return s.replace('\n', &format!("\n{}", pad(indent)));
    }
    let slop = 5;
    let width = room - slop;
    let (first, mut rest) = wrap_once(width, slop, s);
    out.push_str(&first.replace('\n', &format!("\n{}", pad(indent))));
    while !rest.is_empty() {
        let (line, r) = wrap_once(width, slop, &rest);
        out.push('\n');
        out.push_str(&pad(indent));
        out.push_str(&line.replace('\n', &format!("\n{}", pad(indent))));
        rest = r;
    }
    out
}

/// Renders the flag list like pflag's `FlagUsagesWrapped(cols)`.
pub fn flag_usages(flags: &[Flag], cols: usize) -> String {
    let mut visible: Vec<&Flag> = flags.iter().filter(|f| !f.hidden).collect();
    visible.sort_by(|a, b| a.long.cmp(b.long));
    let mut lines = Vec::new();
    let mut max = 0;
    for f in &visible {
        let mut left = match f.short {
            Some(s) => format!("  -{s}, --{}", f.long),
            None => format!("      --{}", f.long),
        };
        if !f.is_bool() {
            left.push(' ');
            left.push_str(f.ty);
        }
        max = max.max(left.len() + 1);
        let mut usage = f.usage.to_string();
        if let Some(d) = f.default {
            usage.push_str(&format!(" (default {d})"));
        }
        lines.push((left, usage));
    }
    let mut out = String::new();
    for (left, usage) in lines {
        let spacing = " ".repeat(max - (left.len() + 1) + 1);
        out.push_str(&left);
        out.push(' ');
        out.push_str(&spacing);
        out.push(' ');
        out.push_str(&wrap_usage(max + 2, cols, &usage));
        out.push('\n');
    }
    out
}

/// Full `--help` text for a command.
pub fn render_help(spec: &CommandSpec, bin: &str, cols: usize) -> String {
    let mut out = format!("Usage:  {}\n\n{}\n", use_line(spec, bin), spec.short);
    if !spec.aliases.is_empty() {
        let aliases: Vec<String> = spec.aliases.iter().map(|a| format!("{bin} {a}")).collect();
        out.push_str(&format!("\nAliases:\n  {}\n", aliases.join(", ")));
    }
    if spec.flags.iter().any(|f| !f.hidden) {
        out.push_str("\nOptions:\n");
        out.push_str(&flag_usages(&spec.flags, cols));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(interspersed: bool) -> CommandSpec {
        CommandSpec {
            path: "run",
            usage: "[OPTIONS] IMAGE [COMMAND] [ARG...]",
            short: "Create and run a new container from an image",
            aliases: &["container run", "run"],
            flags: vec![
                Flag::switch("detach", Some('d'), "Run container in background and print container ID"),
                Flag::switch("interactive", Some('i'), "Keep STDIN open even if not attached"),
                Flag::switch("tty", Some('t'), "Allocate a pseudo-TTY"),
                Flag::switch("rm", None, "Automatically remove the container and its associated anonymous volumes when it exits"),
                Flag::value("memory", Some('m'), "bytes", "Memory limit"),
                Flag::value("env", Some('e'), "list", "Set environment variables"),
                Flag::value("name", None, "string", "Assign a name to the container"),
                Flag::value("hostname", Some('h'), "string", "Container host name"),
                Flag::value("pids-limit", None, "int", "Tune container pids limit (set -1 for unlimited)"),
                Flag::switch("sig-proxy", None, "Proxy received signals to the process").default("true"),
            ],
            args: Args::Min(1),
            interspersed,
        }
    }

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn combined_shorts_and_values() {
        let p = parse(
            &spec(false),
            &v(&[
                "-it", "--rm", "-m64m", "-e", "A=B", "--name=x", "busybox", "sh", "-c", "echo -d",
            ]),
        )
        .unwrap();
        assert!(p.bool("interactive") && p.bool("tty") && p.bool("rm"));
        assert!(!p.bool("detach"));
        assert_eq!(p.last("memory"), Some("64m"));
        assert_eq!(p.all("env"), vec!["A=B"]);
        assert_eq!(p.last("name"), Some("x"));
        assert_eq!(p.args, v(&["busybox", "sh", "-c", "echo -d"]));
    }

    #[test]
    fn interspersed_and_terminator() {
        let p = parse(&spec(true), &v(&["a", "-d", "b", "--", "-i"])).unwrap();
        assert!(p.bool("detach"));
        assert_eq!(p.args, v(&["a", "b", "-i"]));
        let p = parse(&spec(false), &v(&["img", "-d"])).unwrap();
        assert!(!p.bool("detach"));
        assert_eq!(p.args, v(&["img", "-d"]));
    }

    #[test]
    fn bool_values() {
        let p = parse(&spec(false), &v(&["--sig-proxy=false", "-d=false", "x"])).unwrap();
        assert!(!p.bool_or("sig-proxy", true));
        assert!(!p.bool("detach"));
        assert!(p.changed("detach"));
        let e = parse(&spec(false), &v(&["--rm=maybe", "x"])).unwrap_err();
        assert_eq!(
            e,
            FlagError::Bad("invalid argument \"maybe\" for \"--rm\" flag: strconv.ParseBool: parsing \"maybe\": invalid syntax".into())
        );
    }

    #[test]
    fn errors_match_pflag() {
        let s = spec(false);
        assert_eq!(
            parse(&s, &v(&["-m", "abc", "x"])).unwrap_err(),
            FlagError::Bad(
                "invalid argument \"abc\" for \"-m, --memory\" flag: invalid size: 'abc'".into()
            )
        );
        assert_eq!(
            parse(&s, &v(&["--foo", "x"])).unwrap_err(),
            FlagError::Bad("unknown flag: --foo".into())
        );
        assert_eq!(
            parse(&s, &v(&["-z"])).unwrap_err(),
            FlagError::Bad("unknown shorthand flag: 'z' in -z".into())
        );
        assert_eq!(
            parse(&s, &v(&["--name"])).unwrap_err(),
            FlagError::Bad("flag needs an argument: --name".into())
        );
        assert_eq!(
            parse(&s, &v(&["-m"])).unwrap_err(),
            FlagError::Bad("flag needs an argument: 'm' in -m".into())
        );
        assert_eq!(
            parse(&s, &v(&["--pids-limit", "x", "y"])).unwrap_err(),
            FlagError::Bad("invalid argument \"x\" for \"--pids-limit\" flag: strconv.ParseInt: parsing \"x\": invalid syntax".into())
        );
        assert_eq!(parse(&s, &v(&["--help"])).unwrap_err(), FlagError::Help);
        // -h is the hostname here, not help.
        assert_eq!(
            parse(&s, &v(&["-h", "box", "img"]))
                .unwrap()
                .last("hostname"),
            Some("box")
        );
    }

    #[test]
    fn arg_count_messages() {
        let s = spec(false);
        assert!(check_args(&s, "berth", 1).is_ok());
        assert_eq!(
            check_args(&s, "berth", 0).unwrap_err(),
            "berth: 'berth run' requires at least 1 argument\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nSee 'berth run --help' for more information"
        );
    }

    #[test]
    fn help_layout_matches_docker() {
        let text = flag_usages(&spec(false).flags, 79);
        let want = "  -d, --detach            Run container in background and print container ID\n  -e, --env list          Set environment variables\n  -h, --hostname string   Container host name\n  -i, --interactive       Keep STDIN open even if not attached\n  -m, --memory bytes      Memory limit\n      --name string       Assign a name to the container\n      --pids-limit int    Tune container pids limit (set -1 for unlimited)\n      --rm                Automatically remove the container and its\n                          associated anonymous volumes when it exits\n      --sig-proxy         Proxy received signals to the process (default true)\n  -t, --tty               Allocate a pseudo-TTY\n";
        assert_eq!(text, want);
    }

    #[test]
    fn wrap_respects_embedded_newlines() {
        let usage = "Format output using a custom template:\n'table':            Print output in table format with column headers (default)";
        let out = wrap_usage(24, 79, usage);
        assert_eq!(
            out,
            "Format output using a custom template:\n                        'table':            Print output in table format\n                        with column headers (default)"
        );
    }
}
