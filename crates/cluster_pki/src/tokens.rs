//! Static bearer tokens in Kubernetes' token file format: one CSV record a line,
//! `token,user,uid,"group1,group2"` (the groups column is optional).

use sha2::{Digest, Sha256};

use crate::{PkiError, UserInfo, AUTHENTICATED_GROUP};

/// Authenticates bearer tokens against a static token list.
#[derive(Clone)]
pub struct TokenAuthenticator {
    /// SHA-256 of each token, with its user. Only digests are kept so comparisons run over
    /// fixed-length values.
    entries: Vec<([u8; 32], UserInfo)>,
}

impl std::fmt::Debug for TokenAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuthenticator")
            .field("tokens", &self.entries.len())
            .finish()
    }
}

/// One record of a token file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenRecord {
    pub token: String,
    pub user: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl TokenRecord {
    /// The record as one line of a token file (without the newline).
    pub(crate) fn to_line(&self) -> String {
        format!(
            "{},{},{},{}",
            csv_field(&self.token),
            csv_field(&self.user),
            csv_field(&self.uid),
            quote(&self.groups.join(","))
        )
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') {
        quote(s)
    } else {
        s.to_string()
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Splits one CSV line into fields (RFC 4180 quoting; leading spaces of a field trimmed, as
/// Kubernetes reads token files).
fn split_csv_line(line: &str, lineno: usize) -> Result<Vec<String>, PkiError> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') || chars.peek() == Some(&'\t') {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => {
                        return Err(PkiError::TokenFile {
                            line: lineno,
                            reason: "unterminated quoted field".into(),
                        })
                    }
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => {
                    return Err(PkiError::TokenFile {
                        line: lineno,
                        reason: "text after a closing quote".into(),
                    })
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => {
                        fields.push(field);
                        break;
                    }
                    Some('"') => {
                        return Err(PkiError::TokenFile {
                            line: lineno,
                            reason: "bare quote in an unquoted field".into(),
                        })
                    }
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

/// Parses a whole token file. Blank lines are skipped; records need at least three fields.
pub(crate) fn parse_records(text: &str) -> Result<Vec<TokenRecord>, PkiError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let fields = split_csv_line(line, i + 1)?;
        if fields.len() < 3 {
            return Err(PkiError::TokenFile {
                line: i + 1,
                reason: format!("expected at least 3 fields, found {}", fields.len()),
            });
        }
        let groups = fields
            .get(3)
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        out.push(TokenRecord {
            token: fields[0].clone(),
            user: fields[1].clone(),
            uid: fields[2].clone(),
            groups,
        });
    }
    Ok(out)
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares two digests without data-dependent early exit.
fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

impl TokenAuthenticator {
    /// Parses the text of a token file. Records with an empty token are skipped; when a
    /// token repeats, the later record wins (as in Kubernetes).
    pub fn parse(text: &str) -> Result<Self, PkiError> {
        Ok(Self::from_records(parse_records(text)?))
    }

    pub(crate) fn from_records(records: Vec<TokenRecord>) -> Self {
        let mut entries: Vec<([u8; 32], UserInfo)> = Vec::new();
        for r in records {
            if r.token.is_empty() {
                tracing::warn!(user = %r.user, "token file: skipping a record with an empty token");
                continue;
            }
            let mut groups = r.groups;
            if !groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
                groups.push(AUTHENTICATED_GROUP.to_string());
            }
            let d = digest(&r.token);
            let user = UserInfo {
                name: r.user,
                uid: r.uid,
                groups,
            };
            if let Some(e) = entries.iter_mut().find(|(x, _)| x == &d) {
                tracing::warn!("token file: duplicate token; the later record is used");
                e.1 = user;
            } else {
                entries.push((d, user));
            }
        }
        TokenAuthenticator { entries }
    }

    /// The user a bearer token belongs to. Every entry is compared, in constant time each.
    pub fn authenticate(&self, bearer_token: &str) -> Option<UserInfo> {
        if bearer_token.is_empty() {
            return None;
        }
        let d = digest(bearer_token);
        let mut found: Option<&UserInfo> = None;
        for (t, user) in &self.entries {
            if ct_eq(t, &d) {
                found = Some(user);
            }
        }
        found.cloned()
    }

    /// Number of tokens known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubernetes_token_file_format() {
        let text = "abc,alice,u1,\"system:masters,dev\"\n\n  def, bob ,u2\nghi,carol,u3,\"\"\n";
        let recs = parse_records(text).unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].groups, vec!["system:masters", "dev"]);
        assert_eq!(recs[1].token, "def");
        assert_eq!(recs[1].user, "bob ");
        assert!(recs[1].groups.is_empty());
        assert!(recs[2].groups.is_empty());
    }

    #[test]
    fn rejects_malformed_records() {
        assert!(parse_records("only,two\n").is_err());
        assert!(parse_records("a,b,c,\"unterminated\n").is_err());
        assert!(parse_records("a,b\"c,d\n").is_err());
    }

    #[test]
    fn authenticates_and_adds_authenticated_group() {
        let a = TokenAuthenticator::parse("t1,alice,u1,\"g1\"\nt2,bob,u2\n").unwrap();
        let u = a.authenticate("t1").unwrap();
        assert_eq!(u.name, "alice");
        assert_eq!(u.uid, "u1");
        assert_eq!(u.groups, vec!["g1", AUTHENTICATED_GROUP]);
        assert_eq!(a.authenticate("t2").unwrap().name, "bob");
        assert!(a.authenticate("t3").is_none());
        assert!(a.authenticate("").is_none());
        assert!(a.authenticate("t1 ").is_none());
    }

    #[test]
    fn duplicate_token_later_wins_and_empty_skipped() {
        let a = TokenAuthenticator::parse("t,a,1\nt,b,2\n,c,3\n").unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a.authenticate("t").unwrap().name, "b");
    }

    #[test]
    fn record_line_round_trips() {
        let r = TokenRecord {
            token: "tok".into(),
            user: "we,ird\"name".into(),
            uid: "x".into(),
            groups: vec!["a".into(), "b".into()],
        };
        let back = parse_records(&r.to_line()).unwrap();
        assert_eq!(back, vec![r]);
    }
}
