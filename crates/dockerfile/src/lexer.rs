//! Docker's shell-word lexer: quote removal, escapes and `$VAR` / `${VAR...}` expansion,
//! with the semantics of BuildKit's `frontend/dockerfile/shell` package (which is not a
//! real shell: no command substitution, no arithmetic, no field splitting inside quotes).

use crate::error::ExpandError;

/// Expands variables in Dockerfile words the way `docker build` does.
///
/// `escape` is the Dockerfile's escape character (`\` by default, or `` ` `` when the
/// `# escape=` directive says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    /// The escape character used outside single quotes.
    pub escape: char,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer { escape: '\\' }
    }
}

/// Internal switches mirroring BuildKit's lexer knobs.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LexOptions {
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave references to unset variables untouched (`$FOO` stays `$FOO`).
    pub skip_unset: bool,
    /// Never fail on `${VAR?msg}` (used to collect referenced names).
    pub no_fail: bool,
}

/// Result of one lexer run.
pub(crate) struct Lexed {
    pub word: String,
    pub words: Vec<String>,
}

impl Lexer {
    /// A lexer using `escape` as escape character.
    pub fn new(escape: char) -> Self {
        Lexer { escape }
    }

    /// Expands one word: removes quotes (`'single'` is literal, `"double"` expands `$`
    /// and honours escapes of `"`, `$` and the escape character), processes escapes and
    /// substitutes `$V`, `${V}`, `${V:-x}`, `${V-x}`, `${V:+x}`, `${V+x}`, `${V:?msg}`,
    /// `${V?msg}`, `${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}` (glob patterns with `*` and
    /// `?`), `${V/p/r}` and `${V//p/r}`. Unset variables expand to the empty string.
    /// Unquoted whitespace is kept as is.
    pub fn expand_word(
        &self,
        word: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<String, ExpandError> {
        process(word, self.escape, LexOptions::default(), lookup)
            .map(|(l, _)| l.word)
            .map_err(|message| ExpandError {
                word: word.to_string(),
                message,
            })
    }

    /// Like [`Lexer::expand_word`], but splits the result into words on unquoted
    /// whitespace (including whitespace coming from unquoted variable values). Empty
    /// words (e.g. `""`) are dropped, as docker does.
    pub fn expand_words(
        &self,
        text: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<String>, ExpandError> {
        process(text, self.escape, LexOptions::default(), lookup)
            .map(|(l, _)| l.words)
            .map_err(|message| ExpandError {
                word: text.to_string(),
                message,
            })
    }

    /// Names of the variables `text` references (in order of first use, without
    /// duplicates), including those inside default/alternative words such as the `B` in
    /// `${A:-$B}`. Positional and special parameters (`$1`, `$@`, ...) are not included.
    /// On a syntax error the names found before it are returned.
    pub fn referenced_vars(&self, text: &str) -> Vec<String> {
        let opts = LexOptions {
            no_fail: true,
            ..LexOptions::default()
        };
        let mut sc = Scanner::new(text, self.escape, opts, &|_| None);
        let _ = sc.process_stop_on(None, false);
        sc.refs
    }
}

/// Runs the lexer over `text`; returns the expanded text, the split words and the
/// referenced variable names.
pub(crate) fn process(
    text: &str,
    escape: char,
    opts: LexOptions,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(Lexed, Vec<String>), String> {
    let mut sc = Scanner::new(text, escape, opts, lookup);
    let (word, words) = sc.process_stop_on(None, opts.raw_escapes)?;
    Ok((Lexed { word, words }, sc.refs))
}

/// Accumulates words split on unquoted whitespace.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        for ch in s.chars() {
            self.add_char(ch);
        }
    }

    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
        self.words
    }
}

struct Scanner<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    opts: LexOptions,
    raw_escapes: bool,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    refs: Vec<String>,
}

const MISSING_BRACE: &str = "syntax error: missing '}'";

fn is_special_param(ch: char) -> bool {
    matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

impl<'a> Scanner<'a> {
    fn new(
        text: &str,
        escape: char,
        opts: LexOptions,
        lookup: &'a dyn Fn(&str) -> Option<String>,
    ) -> Self {
        Scanner {
            chars: text.chars().collect(),
            pos: 0,
            escape,
            opts,
            raw_escapes: opts.raw_escapes,
            lookup,
            refs: Vec::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), String> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let t = self.process_dollar()?;
                    result.push_str(&t);
                    words.add_string(&t);
                }
                '<' => {
                    let t = self.process_possible_heredoc();
                    result.push_str(&t);
                    words.add_raw_string(&t);
                }
                '\'' => {
                    let t = self.process_single_quote()?;
                    result.push_str(&t);
                    words.add_raw_string(&t);
                }
                '"' => {
                    let t = self.process_double_quote()?;
                    result.push_str(&t);
                    words.add_raw_string(&t);
                }
                _ => {
                    self.next();
                    if ch == self.escape {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        // The escape escapes the next character, except at end of text.
                        match self.next() {
                            None => break,
                            Some(c) => {
                                words.add_raw_char(c);
                                result.push(c);
                            }
                        }
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> Result<String, String> {
        // Everything up to the next single quote is literal; a single quote can't be
        // escaped inside single quotes.
        self.next();
        let mut r = String::new();
        if self.opts.raw_quotes {
            r.push('\'');
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => {
                    if self.opts.raw_quotes {
                        r.push('\'');
                    }
                    return Ok(r);
                }
                Some(c) => r.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, String> {
        // Literal except `$` expansion; the escape character escapes only `"`, `$` and
        // itself, and is kept before any other character.
        self.next();
        let mut r = String::new();
        if self.opts.raw_quotes {
            r.push('"');
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.next();
                    if self.opts.raw_quotes {
                        r.push('"');
                    }
                    return Ok(r);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    r.push_str(&v);
                }
                Some(ch) => {
                    self.next();
                    if ch == self.escape {
                        if self.raw_escapes {
                            r.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.escape => {
                                self.next();
                                r.push(c);
                            }
                            Some(_) => {
                                if !self.raw_escapes {
                                    r.push(ch);
                                }
                            }
                        }
                    } else {
                        r.push(ch);
                    }
                }
            }
        }
    }

    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        // `<<` may be followed by whitespace before the heredoc word; keep it in the word.
        let mut s = String::from("<<");
        while let Some(c @ (' ' | '\t' | '\r')) = self.peek() {
            s.push(c);
            self.next();
        }
        s
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                // positional parameter: all the digits
                while let Some(d) = self.peek().filter(|c| c.is_ascii_digit()) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.next();
                return ch.to_string();
            }
            if !(ch.is_alphanumeric() || ch == '_') {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    /// Records `name` as referenced (positional/special parameters excluded).
    fn note_ref(&mut self, name: &str) -> bool {
        let Some(first) = name.chars().next() else {
            return false;
        };
        if first.is_ascii_digit() || is_special_param(first) {
            return false;
        }
        if !self.refs.iter().any(|r| r == name) {
            self.refs.push(name.to_string());
        }
        true
    }

    /// Looks a variable up. Positional (`$1`) and special (`$@`) parameters are never set.
    fn get_env(&mut self, name: &str) -> Option<String> {
        if !self.note_ref(name) {
            return None;
        }
        (self.lookup)(name)
    }

    fn process_dollar(&mut self) -> Result<String, String> {
        self.next(); // '$'
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.opts.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next(); // '{'
        match self.peek() {
            None => return Err(MISSING_BRACE.into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            _ => {}
        }
        let name = self.process_name();
        self.note_ref(&name);
        let Some(ch) = self.next() else {
            return Err(MISSING_BRACE.into());
        };
        match ch {
            '}' => Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.opts.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let null_is_unset = ch == ':';
                let mut chs = ch.to_string();
                let op = if null_is_unset {
                    let Some(op) = self.next() else {
                        return Err(MISSING_BRACE.into());
                    };
                    chs.push(op);
                    op
                } else {
                    ch
                };
                let raw = op == '#' || op == '%';
                if null_is_unset && raw {
                    return Err(format!("unsupported modifier ({chs}) in substitution"));
                }
                let word = match self.process_stop_on(Some('}'), raw) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err(MISSING_BRACE.into());
                        }
                        return Err(e);
                    }
                };
                let value = self.get_env(&name);
                if self.opts.skip_unset && value.is_none() {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }
                let unset = match &value {
                    None => true,
                    Some(v) => null_is_unset && v.is_empty(),
                };
                match op {
                    '-' => Ok(if unset {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    '+' => Ok(if unset { String::new() } else { word }),
                    '?' => {
                        if self.opts.no_fail {
                            return Ok(value.unwrap_or_default());
                        }
                        match value {
                            None => Err(format!(
                                "{name}: {}",
                                if word.is_empty() {
                                    "is not allowed to be unset"
                                } else {
                                    &word
                                }
                            )),
                            Some(v) if null_is_unset && v.is_empty() => Err(format!(
                                "{name}: {}",
                                if word.is_empty() {
                                    "is not allowed to be empty"
                                } else {
                                    &word
                                }
                            )),
                            Some(v) => Ok(v),
                        }
                    }
                    '#' | '%' => {
                        let value = value.unwrap_or_default();
                        let (greedy, pattern) = match word.strip_prefix(op) {
                            Some(p) => (true, p),
                            None => (false, word.as_str()),
                        };
                        let glob = Glob::compile(pattern).map_err(|e| {
                            format!("invalid pattern ({word}) in substitution: {e}")
                        })?;
                        Ok(if op == '#' {
                            glob.trim_prefix(&value, greedy)
                        } else {
                            glob.trim_suffix(&value, greedy)
                        })
                    }
                    _ => Err(format!("unsupported modifier ({chs}) in substitution")),
                }
            }
            '/' => {
                let replace_all = self.peek() == Some('/');
                if replace_all {
                    self.next();
                }
                let pattern = match self.process_stop_on(Some('/'), true) {
                    Ok((p, _)) => p,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err("syntax error: missing '/' in ${}".into());
                        }
                        return Err(e);
                    }
                };
                let replacement = match self.process_stop_on(Some('}'), true) {
                    Ok((r, _)) => r,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err(MISSING_BRACE.into());
                        }
                        return Err(e);
                    }
                };
                let value = self.get_env(&name);
                if self.opts.skip_unset && value.is_none() {
                    return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                }
                let glob = Glob::compile(&pattern)
                    .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
                Ok(glob.replace(&value.unwrap_or_default(), &replacement, replace_all))
            }
            other => Err(format!("unsupported modifier ({other}) in substitution")),
        }
    }
}

/// A shell glob as used in `${V#pattern}`: `*`, `?` and literal characters (no bracket
/// expressions); `\*`, `\?` and `\\` are literal, `\}` and `\/` drop the backslash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GlobTok {
    Star,
    Any,
    Lit(char),
}

struct Glob(Vec<GlobTok>);

impl Glob {
    fn compile(pattern: &str) -> Result<Glob, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut toks = Vec::with_capacity(chars.len());
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => toks.push(GlobTok::Star),
                '?' => toks.push(GlobTok::Any),
                '\\' => match chars.get(i + 1) {
                    Some('}' | '/') => {}
                    Some(&c @ ('*' | '?' | '\\')) => {
                        toks.push(GlobTok::Lit(c));
                        i += 1;
                    }
                    Some(c) => return Err(format!("invalid escape '\\{c}'")),
                    None => return Err("invalid escape '\\'".into()),
                },
                c => toks.push(GlobTok::Lit(c)),
            }
            i += 1;
        }
        Ok(Glob(toks))
    }

    /// `ends[k]` is true when the tokens match exactly `chars[..k]` (NFA simulation).
    fn match_ends(toks: &[GlobTok], chars: &[char]) -> Vec<bool> {
        let m = toks.len();
        let closure = |set: &mut Vec<bool>| {
            for j in 0..m {
                if set[j] && toks[j] == GlobTok::Star {
                    set[j + 1] = true;
                }
            }
        };
        let mut cur = vec![false; m + 1];
        cur[0] = true;
        closure(&mut cur);
        let mut ends = Vec::with_capacity(chars.len() + 1);
        ends.push(cur[m]);
        for &c in chars {
            let mut nxt = vec![false; m + 1];
            for j in 0..m {
                if !cur[j] {
                    continue;
                }
                match toks[j] {
                    GlobTok::Star => nxt[j] = true,
                    GlobTok::Any => nxt[j + 1] = true,
                    GlobTok::Lit(l) if l == c => nxt[j + 1] = true,
                    GlobTok::Lit(_) => {}
                }
            }
            closure(&mut nxt);
            ends.push(nxt[m]);
            if !nxt.iter().any(|&b| b) {
                break;
            }
            cur = nxt;
        }
        ends
    }

    /// Removes the shortest (or longest, when `greedy`) prefix matching the pattern.
    fn trim_prefix(&self, value: &str, greedy: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let ends = Self::match_ends(&self.0, &chars);
        let cut = if greedy {
            ends.iter().rposition(|&b| b)
        } else {
            ends.iter().position(|&b| b)
        };
        match cut {
            Some(k) => chars[k..].iter().collect(),
            None => value.to_string(),
        }
    }

    /// Removes the shortest (or longest, when `greedy`) suffix matching the pattern.
    fn trim_suffix(&self, value: &str, greedy: bool) -> String {
        let rev_toks: Vec<GlobTok> = self.0.iter().rev().copied().collect();
        let rev_chars: Vec<char> = value.chars().rev().collect();
        let ends = Self::match_ends(&rev_toks, &rev_chars);
        let cut = if greedy {
            ends.iter().rposition(|&b| b)
        } else {
            ends.iter().position(|&b| b)
        };
        match cut {
            Some(k) => rev_chars[k..].iter().rev().collect(),
            None => value.to_string(),
        }
    }

    /// Leftmost match at or after `from`, longest at that position.
    fn find_from(&self, chars: &[char], from: usize) -> Option<(usize, usize)> {
        (from..=chars.len()).find_map(|s| {
            let ends = Self::match_ends(&self.0, &chars[s..]);
            ends.iter().rposition(|&b| b).map(|k| (s, s + k))
        })
    }

    /// `${V/p/r}` (first match) and `${V//p/r}` (all non-overlapping matches; an empty
    /// match right after a previous match is skipped).
    fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut out = String::new();
        if !all {
            return match self.find_from(&chars, 0) {
                Some((s, e)) => {
                    out.extend(&chars[..s]);
                    out.push_str(replacement);
                    out.extend(&chars[e..]);
                    out
                }
                None => value.to_string(),
            };
        }
        let mut last_end = 0;
        let mut search = 0;
        while search <= chars.len() {
            let Some((s, e)) = self.find_from(&chars, search) else {
                break;
            };
            out.extend(&chars[last_end..s]);
            if e > last_end || s == 0 {
                out.push_str(replacement);
            }
            last_end = e;
            search = if search + 1 > e { search + 1 } else { e };
        }
        out.extend(&chars[last_end.min(chars.len())..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("PWD", "/home"),
            ("SHELL", "bash"),
            ("KOREAN", "한국어"),
            ("NULL", ""),
            ("FILE", "archive.tar.gz"),
            ("PATHV", "/usr/local/bin/app"),
            ("SPACE", "abc  def"),
            ("LEADING", "  ab c"),
        ])
    }

    fn expand(word: &str) -> Result<String, ExpandError> {
        let env = env();
        Lexer::new('\\').expand_word(word, &|k| env.get(k).map(|v| v.to_string()))
    }

    fn words(text: &str) -> Result<Vec<String>, ExpandError> {
        let env = env();
        Lexer::new('\\').expand_words(text, &|k| env.get(k).map(|v| v.to_string()))
    }

    /// (input, expected output; None = error)
    const WORD_CASES: &[(&str, Option<&str>)] = &[
        ("hello", Some("hello")),
        ("he'll'o", Some("hello")),
        ("he'llo", None),
        ("he\\'llo", Some("he'llo")),
        ("he\\\\'llo", None),
        ("abc\\tdef", Some("abctdef")),
        ("\"abc\\tdef\"", Some("abc\\tdef")),
        ("\"abc\\\\tdef\"", Some("abc\\tdef")),
        ("'abc\\tdef'", Some("abc\\tdef")),
        ("hello\\", Some("hello")),
        ("hello\\\\", Some("hello\\")),
        ("\"hello", None),
        ("\"hello\\\"", None),
        ("\"hel'lo\"", Some("hel'lo")),
        ("'hello", None),
        ("'hello\\'", Some("hello\\")),
        ("\"''\"", Some("''")),
        ("$.", Some("$.")),
        ("he$1x", Some("hex")),
        ("he$.x", Some("he$.x")),
        ("he$pwd.", Some("he.")),
        ("he$PWD", Some("he/home")),
        ("he\\$PWD", Some("he$PWD")),
        ("he\\\\$PWD", Some("he\\/home")),
        ("\"he\\$PWD\"", Some("he$PWD")),
        ("\"he\\\\$PWD\"", Some("he\\/home")),
        ("\\${}", Some("${}")),
        ("${}", None),
        ("he${}xx", None),
        ("he${hi}xx", Some("hexx")),
        ("he${PWD}", Some("he/home")),
        ("he${.}", None),
        ("he${XXX:-000}xx", Some("he000xx")),
        ("he${PWD:-000}xx", Some("he/homexx")),
        ("he${XXX:-$PWD}xx", Some("he/homexx")),
        ("he${XXX:-${PWD:-yyy}}xx", Some("he/homexx")),
        ("he${XXX:-${YYY:-yyy}}xx", Some("heyyyxx")),
        ("he${XXX:YYY}", None),
        ("he${XXX?}", None),
        ("he${XXX:?}", None),
        ("he${PWD?}", Some("he/home")),
        ("he${PWD:?}", Some("he/home")),
        ("he${NULL?}", Some("he")),
        ("he${NULL:?}", None),
        ("he${NULL-x}", Some("he")),
        ("he${NULL:-x}", Some("hex")),
        ("he${NULL+x}", Some("hex")),
        ("he${NULL:+x}", Some("he")),
        ("he${XXX-x}", Some("hex")),
        ("he${XXX+x}", Some("he")),
        ("he${XXX:+${PWD}}xx", Some("hexx")),
        ("he${PWD:+${XXX}}xx", Some("hexx")),
        ("he${PWD:+${SHELL}}xx", Some("hebashxx")),
        ("he${XXX:+000}xx", Some("hexx")),
        ("he${PWD:+000}xx", Some("he000xx")),
        ("'he${XX}'", Some("he${XX}")),
        ("\"he${PWD}\"", Some("he/home")),
        ("\"he'$PWD'\"", Some("he'/home'")),
        ("'$PWD'", Some("$PWD")),
        ("'\\$PWD'", Some("\\$PWD")),
        ("'\"hello\"'", Some("\"hello\"")),
        ("he${PWD", None),
        ("he${PWD:=000}xx", None),
        ("he${PWD=000}xx", None),
        ("he${PWD:+${PWD}:}xx", Some("he/home:xx")),
        ("he${XXX:-\\$PWD:}xx", Some("he$PWD:xx")),
        ("he${XXX:-\\${PWD}z}xx", Some("he${PWDz}xx")),
        ("안녕$KOREAN", Some("안녕한국어")),
        ("안'녕'하세요", Some("안녕하세요")),
        ("${{aaa}", None),
        ("${aaa}}", Some("}")),
        ("${aaa:-bbb}}", Some("bbb}")),
        ("${aaa:-bbb", None),
        ("${aaa:-bbb ${foo}", None),
        ("${aaa:-bbb {foo}", Some("bbb {foo")),
        ("${:}", None),
        ("${:-bbb}", None),
        ("$1", Some("")),
        ("${1:-bbb}", Some("bbb")),
        ("$999aaa", Some("aaa")),
        ("$@@@", Some("@@")),
        ("${@:-bbb}aaa", Some("bbbaaa")),
        ("$$", Some("")),
        ("${#}", Some("")),
        ("${?:-bbb}", Some("bbb")),
        ("$", Some("$")),
        ("a b  c", Some("a b  c")),
        // pattern trimming
        ("${FILE#*.}", Some("tar.gz")),
        ("${FILE##*.}", Some("gz")),
        ("${FILE%.*}", Some("archive.tar")),
        ("${FILE%%.*}", Some("archive")),
        ("${FILE#archive}", Some(".tar.gz")),
        ("${FILE#nomatch}", Some("archive.tar.gz")),
        ("${FILE%.t?r.gz}", Some("archive")),
        ("${PATHV##*/}", Some("app")),
        ("${PATHV%/*}", Some("/usr/local/bin")),
        ("${XXX#*}", Some("")),
        ("${FILE:#x}", None),
        ("${FILE#\\*}", Some("archive.tar.gz")),
        ("${FILE#a\\q}", None),
        // replacement
        ("${FILE/a/A}", Some("Archive.tar.gz")),
        ("${FILE//a/A}", Some("Archive.tAr.gz")),
        ("${FILE//.*/}", Some("archive")),
        ("${FILE/r*z/X}", Some("aX")),
        ("${FILE/a", None),
        ("${FILE/a/b", None),
        ("${XXX/a/b}", Some("")),
    ];

    #[test]
    fn expand_word_table() {
        for (input, want) in WORD_CASES {
            let got = expand(input);
            match want {
                Some(w) => assert_eq!(got.as_deref().ok(), Some(*w), "input {input:?}: {got:?}"),
                None => assert!(got.is_err(), "input {input:?} should fail, got {got:?}"),
            }
        }
    }

    #[test]
    fn expand_words_table() {
        let cases: &[(&str, &[&str])] = &[
            ("hello", &["hello"]),
            ("hello${hi}bye", &["hellobye"]),
            ("hello${SPACE}bye", &["helloabc", "defbye"]),
            ("hello\"${SPACE}\"bye", &["helloabc  defbye"]),
            ("hello \"${SPACE}\"bye", &["hello", "abc  defbye"]),
            ("hello${LEADING}def", &["hello", "ab", "cdef"]),
            ("hello\"${LEADING}\" def", &["hello  ab c", "def"]),
            ("hello\" there  \"", &["hello there  "]),
            ("hello there     ", &["hello", "there"]),
            ("hello\\ there", &["hello there"]),
            ("hello\\\" there", &["hello\"", "there"]),
            ("hello\"\\\\there\"", &["hello\\there"]),
            ("hello'\\\\there'", &["hello\\\\there"]),
            ("hello'$there'", &["hello$there"]),
            ("80/tcp  443", &["80/tcp", "443"]),
            ("\"\" a", &["a"]),
            ("", &[]),
        ];
        for (input, want) in cases {
            let got = words(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(&got, want, "input {input:?}");
        }
        assert!(words("hello\" there").is_err());
    }

    #[test]
    fn error_messages() {
        let e = expand("${X:?must be set}").unwrap_err();
        assert_eq!(e.message, "X: must be set");
        assert_eq!(
            e.to_string(),
            "failed to process \"${X:?must be set}\": X: must be set"
        );
        assert_eq!(
            expand("${X?}").unwrap_err().message,
            "X: is not allowed to be unset"
        );
        assert_eq!(
            expand("${NULL:?}").unwrap_err().message,
            "NULL: is not allowed to be empty"
        );
        assert_eq!(
            expand("${PWD").unwrap_err().message,
            "syntax error: missing '}'"
        );
        assert_eq!(
            expand("${}").unwrap_err().message,
            "syntax error: bad substitution"
        );
        assert_eq!(
            expand("${X:=y}").unwrap_err().message,
            "unsupported modifier (:=) in substitution"
        );
        assert_eq!(
            expand("'abc").unwrap_err().message,
            "unexpected end of statement while looking for matching single-quote"
        );
    }

    #[test]
    fn backtick_escape() {
        let env = env();
        let lx = Lexer::new('`');
        let look = |k: &str| env.get(k).map(|v| v.to_string());
        assert_eq!(lx.expand_word("a`$PWD", &look).unwrap(), "a$PWD");
        assert_eq!(
            lx.expand_word("c:\\dir\\$SHELL", &look).unwrap(),
            "c:\\dir\\bash"
        );
        assert_eq!(lx.expand_word("\"q`\"x\"", &look).unwrap(), "q\"x");
        assert_eq!(lx.expand_word("\"a\\b\"", &look).unwrap(), "a\\b");
        assert_eq!(
            lx.expand_words("a` b c", &look).unwrap(),
            vec!["a b".to_string(), "c".to_string()]
        );
    }

    #[test]
    fn referenced_vars_collects_all() {
        let lx = Lexer::default();
        assert_eq!(
            lx.referenced_vars("$A ${B:-$C} '$D' \"${E:?x}\" ${F#*} $1 $@ ${A}"),
            vec!["A", "B", "C", "E", "F"]
        );
        assert_eq!(lx.referenced_vars("no vars \\$X"), Vec::<String>::new());
        assert_eq!(lx.referenced_vars("$A ${B"), vec!["A", "B"]);
    }

    #[test]
    fn skip_unset_and_raw_modes() {
        let opts = LexOptions {
            raw_quotes: true,
            raw_escapes: true,
            skip_unset: true,
            no_fail: false,
        };
        let (l, _) = process("RUN <<'EOF' $X ${Y:-z} a\\ b", '\\', opts, &|_| None).unwrap();
        assert_eq!(l.words, vec!["RUN", "<<'EOF'", "$X", "${Y:-z}", "a\\ b"]);
        let (l, _) = process("cat <<  EOF > f", '\\', opts, &|_| None).unwrap();
        assert_eq!(l.words, vec!["cat", "<<  EOF", ">", "f"]);
    }

    #[test]
    fn glob_edge_cases() {
        let g = Glob::compile("").unwrap();
        assert_eq!(g.replace("ab", "-", true), "-a-b-");
        let g = Glob::compile("*").unwrap();
        assert_eq!(g.trim_prefix("abc", false), "abc");
        assert_eq!(g.trim_prefix("abc", true), "");
        let g = Glob::compile("b*").unwrap();
        assert_eq!(g.replace("abcabc", "X", true), "aX");
        let g = Glob::compile("b").unwrap();
        assert_eq!(g.replace("abcabc", "X", true), "aXcaXc");
    }
}
