//! Line-level parsing (BuildKit's `frontend/dockerfile/parser` behaviour): parser
//! directives, comments, line continuations, heredoc bodies, splitting a logical line into
//! keyword / `--flags` / arguments, and the per-instruction argument shapes (JSON array,
//! whitespace words, `key=value` pairs, ...). Produces [`RawNode`]s that
//! [`crate::instructions`] turns into typed instructions.

use crate::ast::Heredoc;
use crate::error::ParseError;
use crate::lexer::{self, LexOptions};

/// One logical line (an instruction) before typing.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawNode {
    /// The keyword as written.
    pub cmd: String,
    /// `--flag[=value]` words (quotes and escapes removed).
    pub flags: Vec<String>,
    /// Arguments (shape depends on the instruction).
    pub args: Vec<String>,
    /// `ENV`/`LABEL` pairs.
    pub kvs: Vec<(String, String)>,
    /// The pairs used the legacy `KEY value` form.
    pub kv_legacy: bool,
    /// Arguments came from a JSON array.
    pub json: bool,
    /// `ONBUILD` trigger.
    pub sub: Option<Box<RawNode>>,
    /// Heredocs found on the line, with their bodies.
    pub heredocs: Vec<Heredoc>,
    /// The joined line.
    pub original: String,
    pub start_line: usize,
    pub end_line: usize,
}

impl RawNode {
    pub fn lower_cmd(&self) -> String {
        self.cmd.to_ascii_lowercase()
    }

    fn can_contain_heredoc(&self) -> bool {
        let node = match (self.lower_cmd().as_str(), &self.sub) {
            ("onbuild", Some(sub)) => sub.as_ref(),
            _ => self,
        };
        matches!(node.lower_cmd().as_str(), "run" | "copy" | "add") && !node.json
    }
}

/// Output of the line-level pass.
#[derive(Debug)]
pub(crate) struct RawFile {
    pub escape: char,
    pub syntax: Option<String>,
    pub nodes: Vec<RawNode>,
    /// Number of lines read.
    pub last_line: usize,
}

/// State of the `# directive=value` lines at the top of the file.
struct Directives {
    escape: char,
    syntax: Option<String>,
    done: bool,
    seen: Vec<String>,
}

/// Go's `\s`.
fn is_re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

/// The separator class `[\t\v\f\r ]` used to split words.
fn is_sep_space(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// Matches `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`.
fn match_directive(s: &str) -> Option<(String, String)> {
    let mut chars = s.char_indices().peekable();
    let (_, first) = chars.next()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    let mut key_end = first.len_utf8();
    while let Some(&(i, c)) = chars.peek() {
        if !c.is_ascii_alphanumeric() {
            break;
        }
        key_end = i + c.len_utf8();
        chars.next();
    }
    let key = &s[..key_end];
    let rest = s[key_end..].trim_start_matches(is_re_space);
    let after_eq = rest.strip_prefix('=')?;
    let value = after_eq.trim_matches(is_re_space);
    if !value.is_empty() {
        return Some((key.to_string(), value.to_string()));
    }
    // Only whitespace after '=': the lazy `(.+?)` takes the last whitespace character.
    let last = after_eq.chars().last()?;
    Some((key.to_string(), last.to_string()))
}

impl Directives {
    fn new() -> Self {
        Directives {
            escape: '\\',
            syntax: None,
            done: false,
            seen: Vec::new(),
        }
    }

    /// Looks at one (left-trimmed) line; the first line that is not a known directive
    /// ends directive processing for the rest of the file.
    fn parse_line(&mut self, line: &str) -> Result<(), String> {
        if self.done {
            return Ok(());
        }
        let Some(rest) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(());
        };
        let Some((key, value)) = match_directive(rest.trim_start()) else {
            self.done = true;
            return Ok(());
        };
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(());
        }
        if self.seen.contains(&key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        self.seen.push(key.clone());
        match key.as_str() {
            "escape" => {
                self.escape = match value.as_str() {
                    "`" => '`',
                    "\\" => '\\',
                    _ => {
                        return Err(format!(
                            "invalid escape token '{value}' does not match ` or \\"
                        ))
                    }
                }
            }
            "syntax" => self.syntax = Some(value),
            _ => {} // `check` (linter configuration): accepted and ignored
        }
        Ok(())
    }
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// If the line ends with the escape character (optionally followed by spaces/tabs) and
/// that escape is not itself escaped, returns the line without it and `false` (the
/// instruction continues); otherwise the line unchanged and `true`.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(escape) {
        if before.is_empty() || !before.ends_with(escape) {
            return (before, false);
        }
    }
    (line, true)
}

/// Parses a Dockerfile text into raw nodes.
pub(crate) fn parse_raw(text: &str) -> Result<RawFile, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut dirs = Directives::new();
    let mut nodes = Vec::new();
    let mut idx = 0; // lines consumed == 1-based number of the last consumed line

    while idx < lines.len() {
        let raw = lines[idx];
        let processed = trim_newline(raw).trim_start();
        dirs.parse_line(processed)
            .map_err(|e| ParseError::new(idx + 1, e))?;
        let processed = if is_comment(processed) { "" } else { processed };
        idx += 1;
        let start_line = idx;
        let (first, mut eol) = trim_continuation(processed, dirs.escape);
        if eol && first.is_empty() {
            continue;
        }
        let mut buf = String::from(first);
        while !eol && idx < lines.len() {
            let raw = lines[idx];
            let processed = trim_newline(raw);
            dirs.parse_line(processed)
                .map_err(|e| ParseError::new(idx + 1, e))?;
            idx += 1;
            if is_comment(raw) || processed.trim_start().is_empty() {
                // comment lines and empty lines inside a continuation are skipped
                continue;
            }
            let (part, end) = trim_continuation(processed, dirs.escape);
            eol = end;
            buf.push_str(part);
        }

        let mut node =
            node_from_line(&buf, dirs.escape).map_err(|e| ParseError::new(start_line, e))?;

        if node.can_contain_heredoc() && buf.contains("<<") {
            let docs = heredocs_from_line(&buf).map_err(|e| ParseError::new(start_line, e))?;
            for (name, expand, chomp) in docs {
                let mut content = String::new();
                let mut terminated = false;
                while idx < lines.len() {
                    let line = lines[idx];
                    idx += 1;
                    let mut candidate = trim_newline(line);
                    if chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == name {
                        terminated = true;
                        break;
                    }
                    if chomp {
                        content.push_str(line.trim_start_matches('\t'));
                    } else {
                        content.push_str(line);
                    }
                }
                if !terminated {
                    return Err(ParseError::new(start_line, "unterminated heredoc"));
                }
                node.heredocs.push(Heredoc {
                    name,
                    content,
                    expand,
                    chomp_tabs: chomp,
                });
            }
        }

        node.start_line = start_line;
        node.end_line = idx;
        if let Some(sub) = node.sub.as_mut() {
            sub.start_line = start_line;
            sub.end_line = idx;
        }
        nodes.push(node);
    }

    if nodes.is_empty() {
        return Err(ParseError::new(lines.len(), "file with no instructions"));
    }
    Ok(RawFile {
        escape: dirs.escape,
        syntax: dirs.syntax,
        nodes,
        last_line: lines.len(),
    })
}

/// Splits `s` once on a run of separator whitespace.
fn split_once_ws(s: &str) -> (&str, Option<&str>) {
    match s.find(is_sep_space) {
        Some(i) => (&s[..i], Some(s[i..].trim_start_matches(is_sep_space))),
        None => (s, None),
    }
}

/// Splits a logical line into keyword, flags and per-instruction arguments.
pub(crate) fn node_from_line(line: &str, escape: char) -> Result<RawNode, String> {
    let trimmed = line.trim();
    let (cmd, rest) = split_once_ws(trimmed);
    let (args_text, flags) = match rest {
        Some(r) => extract_builder_flags(r, escape),
        None => (String::new(), Vec::new()),
    };
    let rest = args_text.trim();
    let mut node = RawNode {
        cmd: cmd.to_string(),
        flags,
        original: line.to_string(),
        ..RawNode::default()
    };
    match node.lower_cmd().as_str() {
        "add" | "copy" | "volume" => {
            (node.args, node.json) = maybe_json_to_list(rest)?;
        }
        "arg" => node.args = parse_words(rest, escape),
        "cmd" | "entrypoint" | "run" | "shell" => {
            (node.args, node.json) = maybe_json(rest)?;
        }
        "env" => (node.kvs, node.kv_legacy) = parse_name_val(rest, "ENV", escape)?,
        "label" => (node.kvs, node.kv_legacy) = parse_name_val(rest, "LABEL", escape)?,
        "expose" | "from" => node.args = split_ws(rest),
        "healthcheck" => {
            let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
            if sep > 0 {
                let (cmd_args, json) = maybe_json(rest[sep..].trim_start())?;
                node.args.push(rest[..sep].to_string());
                node.args.extend(cmd_args);
                node.json = json;
            }
        }
        "maintainer" | "stopsignal" | "user" | "workdir" if !rest.is_empty() => {
            node.args.push(rest.to_string());
        }
        "onbuild" if !rest.is_empty() => {
            node.sub = Some(Box::new(node_from_line(rest, escape)?));
        }
        _ => {} // no arguments, or unknown instruction (reported when typing)
    }
    Ok(node)
}

fn split_ws(s: &str) -> Vec<String> {
    s.split(is_sep_space)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// `Some(list)` when `rest` is a JSON array of strings, `None` when it is not JSON at all,
/// an error for a JSON array with non-string elements.
fn parse_json(rest: &str) -> Result<Option<Vec<String>>, String> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(NOT_STRING_ARRAY.to_string()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// JSON array → exec args; anything else → the whole text as one argument.
fn maybe_json(rest: &str) -> Result<(Vec<String>, bool), String> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    Ok(match parse_json(rest)? {
        Some(list) => (list, true),
        None => (vec![rest.to_string()], false),
    })
}

/// JSON array → list; anything else → whitespace-separated words.
fn maybe_json_to_list(rest: &str) -> Result<(Vec<String>, bool), String> {
    Ok(match parse_json(rest)? {
        Some(list) => (list, true),
        None => (split_ws(rest), false),
    })
}

/// Extracts leading `--flag` words (quotes and escapes processed); returns the remaining
/// text and the flags. A bare `--` ends the flags.
fn extract_builder_flags(line: &str, escape: char) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let n = chars.len();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut buf = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    while pos <= n {
        let mut ch = chars.get(pos).map(|c| c.1).unwrap_or('\0');
        if phase == Phase::Spaces {
            if pos == n {
                break;
            }
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            if ch != '-' || pos + 1 == n || chars[pos + 1].1 != '-' {
                return (line[chars[pos].0..].to_string(), words);
            }
            phase = Phase::Word;
        }
        if pos == n {
            if buf != "--" && (blank_ok || !buf.is_empty()) {
                words.push(buf);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if buf == "--" {
                    return (line[chars[pos].0..].to_string(), words);
                }
                if blank_ok || !buf.is_empty() {
                    words.push(std::mem::take(&mut buf));
                }
                buf.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            if ch == escape {
                if pos + 1 == n {
                    pos += 1;
                    continue;
                }
                pos += 1;
                ch = chars[pos].1;
            }
            buf.push(ch);
            pos += 1;
            continue;
        }
        // in quotes
        if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        if ch == escape {
            if pos + 1 == n {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            ch = chars[pos].1;
        }
        buf.push(ch);
        pos += 1;
    }
    (String::new(), words)
}

/// Splits into words on unquoted whitespace, keeping quotes and escapes in the words
/// (they are removed later by expansion).
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let n = chars.len();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut buf = String::new();
    let mut pos = 0;
    while pos <= n {
        let mut ch = chars.get(pos).copied().unwrap_or('\0');
        if phase == Phase::Spaces {
            if pos == n {
                break;
            }
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if pos == n {
            if blank_ok || !buf.is_empty() {
                words.push(std::mem::take(&mut buf));
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !buf.is_empty() {
                    words.push(std::mem::take(&mut buf));
                }
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if pos + 1 == n {
                    pos += 1;
                    continue; // an escape at the very end is dropped
                }
                // unquoted escape: keep it and the escaped character
                buf.push(ch);
                pos += 1;
                ch = chars[pos];
            }
            buf.push(ch);
            pos += 1;
            continue;
        }
        // in quotes
        if ch == quote {
            phase = Phase::Word;
        } else if ch == escape && quote != '\'' {
            if pos + 1 == n {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            buf.push(ch);
            pos += 1;
            ch = chars[pos];
        }
        buf.push(ch);
        pos += 1;
    }
    words
}

/// `ENV`/`LABEL` arguments: `k=v k2="v 2"` or the legacy `k value with spaces`.
fn parse_name_val(
    rest: &str,
    key: &str,
    escape: char,
) -> Result<(Vec<(String, String)>, bool), String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok((Vec::new(), false));
    };
    if !first.contains('=') {
        // legacy form: first word is the name, the rest of the line the value
        return match split_once_ws(rest) {
            (name, Some(value)) => Ok((vec![(name.to_string(), value.to_string())], true)),
            _ => Err(format!("{key} must have two arguments")),
        };
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|kvs| (kvs, false))
}

/// Heredoc delimiters on a line: (name, expand, chomp) for every `[n]<<[-]WORD` word.
fn heredocs_from_line(line: &str) -> Result<Vec<(String, bool, bool)>, String> {
    let opts = LexOptions {
        raw_quotes: true,
        raw_escapes: true,
        skip_unset: true,
        no_fail: true,
    };
    let words = match lexer::process(line, '\\', opts, &|_| None) {
        Ok((l, _)) => l.words,
        Err(_) => return Ok(Vec::new()),
    };
    let mut docs = Vec::new();
    for w in words {
        if let Some(d) = parse_heredoc(&w)? {
            docs.push(d);
        }
    }
    Ok(docs)
}

/// Recognises a heredoc word (`^(\d*)<<(-?)\s*([^<]*)$`); returns (name, expand, chomp).
/// The body is expanded unless some part of the delimiter is quoted.
pub(crate) fn parse_heredoc(word: &str) -> Result<Option<(String, bool, bool)>, String> {
    let s = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let Some(s) = s.strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let rest = s.trim_start_matches(is_re_space);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let plain = LexOptions {
        skip_unset: true,
        no_fail: true,
        ..LexOptions::default()
    };
    let (lexed, _) = lexer::process(rest, '\\', plain, &|_| None)?;
    if lexed.words.len() != 1 {
        return Ok(None);
    }
    let raw = LexOptions {
        raw_quotes: true,
        ..plain
    };
    let (lexed_raw, _) = lexer::process(rest, '\\', raw, &|_| None)?;
    if lexed_raw.words.len() != 1 {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    let count = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    let name = lexed.words[0].clone();
    let expand = count(&name) == count(&lexed_raw.words[0]);
    Ok(Some((name, expand, chomp)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_matching() {
        assert_eq!(
            match_directive("escape=`"),
            Some(("escape".into(), "`".into()))
        );
        assert_eq!(
            match_directive("syntax = docker/dockerfile:1  "),
            Some(("syntax".into(), "docker/dockerfile:1".into()))
        );
        assert_eq!(match_directive("escape="), None);
        assert_eq!(
            match_directive("escape= "),
            Some(("escape".into(), " ".into()))
        );
        assert_eq!(match_directive("1abc=x"), None);
        assert_eq!(match_directive("just a comment"), None);
    }

    #[test]
    fn continuation() {
        assert_eq!(trim_continuation("RUN a \\", '\\'), ("RUN a ", false));
        assert_eq!(trim_continuation("RUN a \\  \t", '\\'), ("RUN a ", false));
        assert_eq!(trim_continuation("\\", '\\'), ("", false));
        assert_eq!(trim_continuation("RUN a \\\\", '\\'), ("RUN a \\\\", true));
        assert_eq!(trim_continuation("RUN a `", '`'), ("RUN a ", false));
        assert_eq!(trim_continuation("RUN a \\", '`'), ("RUN a \\", true));
    }

    #[test]
    fn builder_flags() {
        let (rest, flags) = extract_builder_flags("--from=a --chown=\"x y\" src dst", '\\');
        assert_eq!(flags, vec!["--from=a", "--chown=x y"]);
        assert_eq!(rest, "src dst");
        let (rest, flags) = extract_builder_flags("--link -- --notaflag dst", '\\');
        assert_eq!(flags, vec!["--link"]);
        assert_eq!(rest.trim(), "--notaflag dst");
        let (rest, flags) = extract_builder_flags("--a=b", '\\');
        assert_eq!(flags, vec!["--a=b"]);
        assert_eq!(rest, "");
        let (rest, flags) = extract_builder_flags("-x y", '\\');
        assert!(flags.is_empty());
        assert_eq!(rest, "-x y");
    }

    #[test]
    fn words_keep_quotes() {
        assert_eq!(
            parse_words("a=\"b c\" d='e f' g\\ h", '\\'),
            vec!["a=\"b c\"", "d='e f'", "g\\ h"]
        );
        assert_eq!(parse_words("a=\"\"", '\\'), vec!["a=\"\""]);
        assert_eq!(parse_words("x \\", '\\'), vec!["x"]);
        assert_eq!(parse_words("a=\"x`\" y\"", '`'), vec!["a=\"x`\" y\""]);
    }

    #[test]
    fn heredoc_words() {
        for w in [
            "<<EOF",
            "<<'EOF'",
            "<<\"EOF\"",
            "<<-EOF",
            "<<-'EOF'",
            "<<EO\"F\"",
            "<< EOF",
            "<<- EOF",
        ] {
            let (name, _, _) = parse_heredoc(w).unwrap().unwrap_or_else(|| panic!("{w}"));
            assert_eq!(name, "EOF", "{w}");
        }
        for w in ["<<'EOF", "<<\"EOF", "<<EOF'", "<<EOF\""] {
            assert!(parse_heredoc(w).is_err(), "{w}");
        }
        for w in ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh"] {
            assert_eq!(parse_heredoc(w).unwrap(), None, "{w}");
        }
        assert_eq!(
            parse_heredoc("3<<-'X'").unwrap(),
            Some(("X".into(), false, true))
        );
        assert_eq!(
            parse_heredoc("<<eo\\'f").unwrap(),
            Some(("eo'f".into(), true, false))
        );
        assert_eq!(
            parse_heredoc("<<'e'o\\'f").unwrap(),
            Some(("eo'f".into(), false, false))
        );
        assert_eq!(
            parse_heredoc("<<$EOF").unwrap(),
            Some(("$EOF".into(), true, false))
        );
    }

    #[test]
    fn heredocs_on_line() {
        let docs = heredocs_from_line("COPY <<FILE1 <<-\"FILE2\" /dest").unwrap();
        assert_eq!(
            docs,
            vec![
                ("FILE1".to_string(), true, false),
                ("FILE2".to_string(), false, true)
            ]
        );
        assert!(heredocs_from_line("RUN \"<<NOHEREDOC\"")
            .unwrap()
            .is_empty());
        assert_eq!(
            heredocs_from_line("RUN <<  EOF  > foo").unwrap(),
            vec![("EOF".to_string(), true, false)]
        );
        assert_eq!(
            heredocs_from_line("RUN << -EOF").unwrap(),
            vec![("-EOF".to_string(), true, false)]
        );
    }
}
