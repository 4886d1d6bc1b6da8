//! `RUN --mount=type=cache,target=/root/.cache,...` specifications (BuildKit's
//! `instructions/commands_runmount.go` semantics).

use serde::Serialize;

use crate::error::{ExpandError, MountError};

/// Kind of a `RUN --mount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MountType {
    /// `type=bind` (default): a directory of the build context or of another stage.
    Bind,
    /// `type=cache`: a persistent cache directory.
    Cache,
    /// `type=tmpfs`.
    Tmpfs,
    /// `type=secret`.
    Secret,
    /// `type=ssh`.
    Ssh,
}

/// `sharing=` of a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CacheSharing {
    Shared,
    Private,
    Locked,
}

/// A parsed `--mount` value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunMount {
    pub mount_type: MountType,
    /// `from=` stage or image (bind/cache).
    pub from: Option<String>,
    /// `source=`/`src=`.
    pub source: Option<String>,
    /// `target=`/`dst=`/`destination=`.
    pub target: Option<String>,
    /// Bind and secret/ssh mounts are read-only unless `rw`; cache/tmpfs are writable.
    pub read_only: bool,
    /// `size=` of a tmpfs, in bytes.
    pub size_limit: Option<u64>,
    /// `id=` (cache id / secret id).
    pub id: Option<String>,
    pub sharing: Option<CacheSharing>,
    /// `required` (secret/ssh).
    pub required: bool,
    /// `env=` (secret exposed as an environment variable).
    pub env: Option<String>,
    /// `mode=` (octal).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Splits a CSV record (`a,"b,c",d`; `""` is a quote inside a quoted field).
fn csv_fields(s: &str) -> Result<Vec<String>, MountError> {
    let err = |m: &str| MountError(format!("failed to parse csv mounts: {m}"));
    let mut fields = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    loop {
        let mut field = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(err("extraneous or missing \" in quoted-field")),
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        field.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        field.push(c);
                        i += 1;
                    }
                }
            }
            match chars.get(i) {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => i += 1,
                Some(_) => return Err(err("extraneous or missing \" in quoted-field")),
            }
        } else {
            while let Some(&c) = chars.get(i) {
                if c == ',' {
                    break;
                }
                if c == '"' {
                    return Err(err("bare \" in non-quoted-field"));
                }
                field.push(c);
                i += 1;
            }
            if i >= chars.len() {
                fields.push(field);
                return Ok(fields);
            }
            i += 1; // ','
        }
        fields.push(field);
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// docker's `RAMInBytes`: `1024`, `64m`, `1.5g`, `100KiB` (binary multiples).
fn ram_in_bytes(v: &str) -> Option<u64> {
    let num_len = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(num_len);
    let num: f64 = num.parse().ok()?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    let bytes = num * mult;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// Expands one mount option value (e.g. `|v| lexer.expand_word(v, &lookup)`).
pub type MountExpander<'a> = &'a dyn Fn(&str) -> Result<String, ExpandError>;

/// Parses a `--mount` value.
///
/// With `expand = None` only what docker checks at parse time is validated (CSV syntax,
/// valueless keys are deferred, `from=` must not use variables); the result is then
/// incomplete. With an expander every value is expanded and the whole specification is
/// validated, as at build time.
pub fn parse_mount(spec: &str, expand: Option<MountExpander<'_>>) -> Result<RunMount, MountError> {
    let mut m = RunMount {
        mount_type: MountType::Bind,
        from: None,
        source: None,
        target: None,
        read_only: false,
        size_limit: None,
        id: None,
        sharing: None,
        required: false,
        env: None,
        mode: None,
        uid: None,
        gid: None,
    };
    let type_name = |t: MountType| match t {
        MountType::Bind => "bind",
        MountType::Cache => "cache",
        MountType::Tmpfs => "tmpfs",
        MountType::Secret => "secret",
        MountType::Ssh => "ssh",
    };
    let mut ro_auto = true;
    for field in csv_fields(spec)? {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
            None => (field.to_ascii_lowercase(), None),
        };
        let Some(value) = value else {
            if expand.is_none() {
                continue; // evaluated later
            }
            match key.as_str() {
                "readonly" | "ro" => {
                    m.read_only = true;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.read_only = false;
                    ro_auto = false;
                }
                "required" => {
                    if matches!(m.mount_type, MountType::Secret | MountType::Ssh) {
                        m.required = true;
                    } else {
                        return Err(MountError(format!(
                            "unexpected key '{key}' for mount type '{}'",
                            type_name(m.mount_type)
                        )));
                    }
                }
                _ => {
                    return Err(MountError(format!(
                        "invalid field '{field}' must be a key=value pair"
                    )))
                }
            }
            continue;
        };
        let value = match expand {
            Some(f) => f(&value).map_err(|e| MountError(e.to_string()))?,
            None => {
                if key == "from" {
                    if let Some(i) = value.find('$') {
                        if i != value.len() - 1 {
                            return Err(MountError(format!(
                                "'{key}' doesn't support variable expansion, define alias stage instead"
                            )));
                        }
                    }
                }
                continue;
            }
        };
        let invalid = || MountError(format!("invalid value for {key}: {value}"));
        let unexpected = |t: MountType| {
            MountError(format!(
                "unexpected key '{key}' for mount type '{}'",
                type_name(t)
            ))
        };
        match key.as_str() {
            "type" => {
                m.mount_type = match value.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => return Err(MountError(format!("unsupported mount type {value:?}"))),
                }
            }
            "from" => m.from = Some(value),
            "source" | "src" => m.source = Some(value),
            "target" | "dst" | "destination" => m.target = Some(value),
            "readonly" | "ro" => {
                m.read_only = parse_bool(&value).ok_or_else(invalid)?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.read_only = !parse_bool(&value).ok_or_else(invalid)?;
                ro_auto = false;
            }
            "required" => {
                if !matches!(m.mount_type, MountType::Secret | MountType::Ssh) {
                    return Err(unexpected(m.mount_type));
                }
                m.required = parse_bool(&value).ok_or_else(invalid)?;
            }
            "size" => {
                if m.mount_type != MountType::Tmpfs {
                    return Err(unexpected(m.mount_type));
                }
                m.size_limit = Some(ram_in_bytes(&value).ok_or_else(invalid)?);
            }
            "id" => m.id = Some(value),
            "sharing" => {
                m.sharing = Some(match value.to_ascii_lowercase().as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    _ => return Err(MountError(format!("unsupported sharing value {value:?}"))),
                })
            }
            "mode" => {
                m.mode = Some(
                    u32::from_str_radix(&value, 8)
                        .map_err(|_| MountError(format!("invalid value {value} for mode")))?,
                )
            }
            "uid" => {
                m.uid = Some(
                    value
                        .parse()
                        .map_err(|_| MountError(format!("invalid value {value} for uid")))?,
                )
            }
            "gid" => {
                m.gid = Some(
                    value
                        .parse()
                        .map_err(|_| MountError(format!("invalid value {value} for gid")))?,
                )
            }
            "env" => m.env = Some(value),
            _ => return Err(MountError(format!("unexpected key '{key}' in '{field}'"))),
        }
    }

    let t = m.mount_type;
    if !matches!(t, MountType::Secret | MountType::Ssh | MountType::Cache) {
        for (set, what) in [
            (m.mode.is_some(), "mode"),
            (m.uid.is_some(), "uid"),
            (m.gid.is_some(), "gid"),
        ] {
            if set {
                return Err(MountError(format!(
                    "{what} not allowed for {:?} type mounts",
                    type_name(t)
                )));
            }
        }
    }
    if ro_auto {
        m.read_only = !matches!(t, MountType::Cache | MountType::Tmpfs);
    }
    if t == MountType::Secret {
        if m.from.is_some() {
            return Err(MountError("secret mount should not have a from".into()));
        }
        if m.sharing.is_some() {
            return Err(MountError("secret mount should not define sharing".into()));
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() {
            return Err(MountError(
                "invalid secret mount. one of source, target required".into(),
            ));
        }
        if m.source.is_some() && m.id.is_some() {
            return Err(MountError("both source and id can't be set".into()));
        }
    }
    if m.sharing.is_some() && t != MountType::Cache {
        return Err(MountError(format!(
            "invalid cache sharing set for {} mount",
            type_name(t)
        )));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(spec: &str) -> Result<RunMount, MountError> {
        let id = |v: &str| -> Result<String, ExpandError> { Ok(v.to_string()) };
        parse_mount(spec, Some(&id))
    }

    #[test]
    fn cache_mount() {
        let m =
            full("type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0755,uid=1").unwrap();
        assert_eq!(m.mount_type, MountType::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert_eq!(m.id.as_deref(), Some("pip"));
        assert_eq!(m.sharing, Some(CacheSharing::Locked));
        assert_eq!(m.mode, Some(0o755));
        assert_eq!(m.uid, Some(1));
        assert!(!m.read_only);
    }

    #[test]
    fn bind_defaults_readonly() {
        let m = full("target=/src,source=app").unwrap();
        assert_eq!(m.mount_type, MountType::Bind);
        assert!(m.read_only);
        let m = full("type=bind,target=/src,rw").unwrap();
        assert!(!m.read_only);
        let m = full("type=tmpfs,target=/t,size=64m").unwrap();
        assert_eq!(m.size_limit, Some(64 << 20));
    }

    #[test]
    fn secret_mount() {
        let m = full("type=secret,id=tok,required,env=TOKEN").unwrap();
        assert!(m.required && m.read_only);
        assert_eq!(m.env.as_deref(), Some("TOKEN"));
        assert!(full("type=secret").is_err());
        assert!(full("type=secret,id=a,source=b").is_err());
    }

    #[test]
    fn errors() {
        assert_eq!(
            full("type=nfs").unwrap_err().0,
            "unsupported mount type \"nfs\""
        );
        assert_eq!(
            full("type=bind,required").unwrap_err().0,
            "unexpected key 'required' for mount type 'bind'"
        );
        assert_eq!(
            full("target=/x,mode=0700").unwrap_err().0,
            "mode not allowed for \"bind\" type mounts"
        );
        assert_eq!(
            full("bogus").unwrap_err().0,
            "invalid field 'bogus' must be a key=value pair"
        );
        assert!(full("foo=bar")
            .unwrap_err()
            .0
            .contains("unexpected key 'foo'"));
        assert!(full("type=bind,sharing=shared").is_err());
        assert!(parse_mount("type=cache,from=$X", None).is_err());
        assert!(parse_mount("a\"b", None).is_err());
        assert!(parse_mount("type=$T,target=/x,bogus", None).is_ok());
    }

    #[test]
    fn csv() {
        assert_eq!(csv_fields("a,\"b,c\",d").unwrap(), vec!["a", "b,c", "d"]);
        assert_eq!(csv_fields("\"x\"\"y\"").unwrap(), vec!["x\"y"]);
        assert_eq!(csv_fields("a,").unwrap(), vec!["a", ""]);
        assert!(csv_fields("\"a\"b").is_err());
    }
}
