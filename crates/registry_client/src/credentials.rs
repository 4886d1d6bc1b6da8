//! Registry credentials: the [`Credentials`] a pull/push/login uses, Docker's
//! `X-Registry-Auth` / `/auth` JSON ([`AuthConfig`]), and the Docker CLI's credential
//! file (`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`): `auths` entries
//! (base64 `user:pass`, `identitytoken`) and credential helpers (`credsStore`,
//! `credHelpers`, run as `docker-credential-<name> get|store|erase`).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::{debug, warn};

use crate::error::RegistryError;

/// Key Docker uses for Docker Hub in `config.json` and with credential helpers.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

const CONFIG_FILE: &str = "config.json";
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);
/// `Username` a credential helper returns for an identity token.
const TOKEN_USERNAME: &str = "<token>";

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// User name and password (sent as Basic auth, or to the token server).
    Basic {
        /// User name.
        username: String,
        /// Password or personal access token.
        password: String,
    },
    /// An OAuth2 refresh token (Docker's `identitytoken`), exchanged at the token server.
    IdentityToken(String),
    /// A bearer token sent to the registry as is (Docker's `registrytoken`).
    RegistryToken(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
            Credentials::RegistryToken(_) => f.write_str("RegistryToken(<redacted>)"),
        }
    }
}

impl Credentials {
    /// Basic credentials.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    /// Decodes Docker's `X-Registry-Auth` header (base64url JSON [`AuthConfig`]).
    /// Empty or `{}` yields `None`.
    pub fn from_x_registry_auth(header: &str) -> Result<Option<Credentials>, RegistryError> {
        AuthConfig::from_x_registry_auth(header)?.credentials()
    }
}

/// Docker's auth configuration JSON, as sent in `X-Registry-Auth` (base64url) and in the
/// body of `POST /auth`. Keys are accepted lower-case (as the CLI sends them) or
/// capitalised.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthConfig {
    /// User name.
    #[serde(default, alias = "Username", skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// Password.
    #[serde(default, alias = "Password", skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// base64 `user:password` (the `config.json` form).
    #[serde(default, alias = "Auth", skip_serializing_if = "String::is_empty")]
    pub auth: String,
    /// Unused (deprecated), kept for round trips.
    #[serde(default, alias = "Email", skip_serializing_if = "String::is_empty")]
    pub email: String,
    /// Registry the credentials are for (`https://index.docker.io/v1/`, `host:port`).
    #[serde(
        default,
        alias = "ServerAddress",
        skip_serializing_if = "String::is_empty"
    )]
    pub serveraddress: String,
    /// OAuth2 refresh token.
    #[serde(
        default,
        alias = "IdentityToken",
        skip_serializing_if = "String::is_empty"
    )]
    pub identitytoken: String,
    /// Bearer token for the registry.
    #[serde(
        default,
        alias = "RegistryToken",
        skip_serializing_if = "String::is_empty"
    )]
    pub registrytoken: String,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("serveraddress", &self.serveraddress)
            .finish_non_exhaustive()
    }
}

fn lenient_engine(alphabet: &alphabet::Alphabet) -> GeneralPurpose {
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    )
}

/// Decodes base64 in any of the spellings Docker clients use (url-safe or standard,
/// padded or not).
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    lenient_engine(&alphabet::URL_SAFE)
        .decode(s)
        .or_else(|_| lenient_engine(&alphabet::STANDARD).decode(s))
        .ok()
}

impl AuthConfig {
    /// Decodes an `X-Registry-Auth` header value. An empty header is an empty config.
    pub fn from_x_registry_auth(header: &str) -> Result<AuthConfig, RegistryError> {
        let header = header.trim();
        if header.is_empty() {
            return Ok(AuthConfig::default());
        }
        let bytes = decode_base64(header)
            .ok_or_else(|| RegistryError::Credentials("invalid X-Registry-Auth header".into()))?;
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(AuthConfig::default());
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| RegistryError::Credentials(format!("invalid X-Registry-Auth header: {e}")))
    }

    /// The credentials these fields describe: `registrytoken`, else `identitytoken`, else
    /// `username`/`password`, else the base64 `auth` field; `None` when empty.
    pub fn credentials(&self) -> Result<Option<Credentials>, RegistryError> {
        if !self.registrytoken.is_empty() {
            return Ok(Some(Credentials::RegistryToken(self.registrytoken.clone())));
        }
        if !self.identitytoken.is_empty() {
            return Ok(Some(Credentials::IdentityToken(self.identitytoken.clone())));
        }
        if !self.username.is_empty() || !self.password.is_empty() {
            return Ok(Some(Credentials::basic(&self.username, &self.password)));
        }
        if !self.auth.is_empty() {
            return decode_auth_field(&self.auth).map(Some);
        }
        Ok(None)
    }
}

/// Decodes a `config.json` `auth` field (base64 `user:password`).
fn decode_auth_field(auth: &str) -> Result<Credentials, RegistryError> {
    let raw = decode_base64(auth)
        .ok_or_else(|| RegistryError::Credentials("invalid base64 in auth field".into()))?;
    let s = String::from_utf8(raw)
        .map_err(|_| RegistryError::Credentials("auth field is not UTF-8".into()))?;
    let (u, p) = s
        .split_once(':')
        .ok_or_else(|| RegistryError::Credentials("auth field lacks ':'".into()))?;
    Ok(Credentials::basic(u, p.trim_end_matches('\0')))
}

/// `$DOCKER_CONFIG`, else `$HOME/.docker`.
pub fn default_docker_config_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker"))
}

/// True for the names Docker Hub goes by.
pub(crate) fn is_docker_hub(registry: &str) -> bool {
    matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    )
}

/// The key under which Docker files credentials for `registry` (a reference domain such
/// as `docker.io` or `127.0.0.1:5000`, or a server address such as
/// `https://index.docker.io/v1/`).
pub fn credential_key(registry: &str) -> String {
    let host = host_of(registry);
    if is_docker_hub(&host) {
        DOCKER_HUB_AUTH_KEY.to_string()
    } else {
        host
    }
}

/// Docker's `ConvertToHostname`: drops the scheme and anything after the host.
fn host_of(key: &str) -> String {
    let s = key.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    s.split('/').next().unwrap_or("").to_string()
}

fn same_registry(key: &str, registry: &str) -> bool {
    let a = host_of(key);
    let b = host_of(registry);
    a == b || (is_docker_hub(&a) && is_docker_hub(&b))
}

fn read_config(dir: &Path) -> Result<Map<String, Value>, RegistryError> {
    let path = dir.join(CONFIG_FILE);
    match fs::read(&path) {
        Ok(data) if data.iter().all(|b| b.is_ascii_whitespace()) => Ok(Map::new()),
        Ok(data) => match serde_json::from_slice::<Value>(&data) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(RegistryError::Credentials(format!(
                "{} is not a JSON object",
                path.display()
            ))),
            Err(e) => Err(RegistryError::Credentials(format!(
                "{}: {e}",
                path.display()
            ))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(RegistryError::io(format!("reading {}", path.display()), e)),
    }
}

fn write_config(dir: &Path, cfg: &Map<String, Value>) -> Result<(), RegistryError> {
    if !dir.is_dir() {
        fs::create_dir_all(dir)
            .map_err(|e| RegistryError::io(format!("creating {}", dir.display()), e))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| RegistryError::io(format!("chmod {}", dir.display()), e))?;
    }
    let mut data = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut data, fmt);
    cfg.serialize(&mut ser)
        .map_err(|e| RegistryError::Credentials(format!("serialising config.json: {e}")))?;
    data.push(b'\n');
    let path = dir.join(CONFIG_FILE);
    let tmp = dir.join(format!(".{CONFIG_FILE}.tmp-{:016x}", rand_u64()));
    let res = (|| -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&data)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(RegistryError::io(format!("writing {}", path.display()), e));
    }
    Ok(())
}

fn rand_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// The credential helper configured for `registry` (`credHelpers`, else `credsStore`).
fn helper_for(cfg: &Map<String, Value>, registry: &str) -> Option<String> {
    let host = host_of(registry);
    let from_helpers = cfg
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| same_registry(k, &host))
                .and_then(|(_, v)| v.as_str())
        });
    let name = from_helpers.or_else(|| cfg.get("credsStore").and_then(Value::as_str))?;
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    valid.then(|| name.to_string())
}

fn search_path() -> OsString {
    std::env::var_os("PATH").unwrap_or_default()
}

fn helper_binary(name: &str, search: &OsStr) -> Option<PathBuf> {
    let exe = format!("docker-credential-{name}");
    std::env::split_paths(search)
        .map(|d| d.join(&exe))
        .find(|p| p.is_file())
}

/// Runs `docker-credential-<name> <action>` with `input` on stdin; returns
/// `(success, stdout)`.
fn run_helper(bin: &Path, action: &str, input: &[u8]) -> Result<(bool, String), RegistryError> {
    let mut child = Command::new(bin)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| RegistryError::io(format!("running {}", bin.display()), e))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits early closes the pipe; its status tells what happened.
        let _ = stdin.write_all(input);
    }
    let deadline = Instant::now() + HELPER_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RegistryError::Credentials(format!(
                    "{} {action} timed out",
                    bin.display()
                )));
            }
            Err(e) => {
                return Err(RegistryError::io(
                    format!("waiting for {}", bin.display()),
                    e,
                ))
            }
        }
    };
    let mut out = String::new();
    if let Some(mut so) = child.stdout.take() {
        let _ = so.read_to_string(&mut out);
    }
    Ok((status.success(), out.trim().to_string()))
}

#[derive(Deserialize, Serialize)]
struct HelperCreds {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

fn helper_get(bin: &Path, key: &str) -> Result<Option<Credentials>, RegistryError> {
    let (ok, out) = run_helper(bin, "get", key.as_bytes())?;
    if !ok {
        if out.contains("credentials not found") {
            return Ok(None);
        }
        return Err(RegistryError::Credentials(format!(
            "error getting credentials - err: {}, out: `{out}`",
            bin.display()
        )));
    }
    let c: HelperCreds = serde_json::from_str(&out).map_err(|e| {
        RegistryError::Credentials(format!("{}: invalid output: {e}", bin.display()))
    })?;
    if c.username.is_empty() && c.secret.is_empty() {
        return Ok(None);
    }
    if c.username == TOKEN_USERNAME {
        return Ok(Some(Credentials::IdentityToken(c.secret)));
    }
    Ok(Some(Credentials::basic(c.username, c.secret)))
}

/// Looks up the credentials Docker has filed for `registry` under `dir` (a Docker config
/// directory): the credential helper for it when one is configured and installed, else
/// the `auths` entry. `None` when nothing is filed.
pub fn lookup_credentials(
    dir: &Path,
    registry: &str,
) -> Result<Option<Credentials>, RegistryError> {
    lookup_credentials_in(dir, registry, &search_path())
}

fn lookup_credentials_in(
    dir: &Path,
    registry: &str,
    search: &OsStr,
) -> Result<Option<Credentials>, RegistryError> {
    let cfg = read_config(dir)?;
    let key = credential_key(registry);
    if let Some(name) = helper_for(&cfg, registry) {
        match helper_binary(&name, search) {
            Some(bin) => {
                if let Some(c) = helper_get(&bin, &key)? {
                    debug!(registry, helper = %name, "credentials from helper");
                    return Ok(Some(c));
                }
            }
            None => debug!(helper = %name, "credential helper not installed"),
        }
    }
    let Some(auths) = cfg.get("auths").and_then(Value::as_object) else {
        return Ok(None);
    };
    let entry = auths
        .get(&key)
        .or_else(|| {
            auths
                .iter()
                .find(|(k, _)| same_registry(k, registry))
                .map(|(_, v)| v)
        })
        .cloned();
    let Some(entry) = entry else {
        return Ok(None);
    };
    let ac: AuthConfig = serde_json::from_value(entry)
        .map_err(|e| RegistryError::Credentials(format!("auths[{key}]: {e}")))?;
    ac.credentials()
}

/// Files credentials for `registry` the way `docker login` does: through the configured
/// credential helper when it is installed (leaving an empty `auths` entry), else as an
/// `auths` entry (`auth` = base64 `user:password`, or `identitytoken`). `config.json` is
/// rewritten atomically with mode 0600; its other contents are kept.
pub fn store_credentials(
    dir: &Path,
    registry: &str,
    creds: &Credentials,
) -> Result<(), RegistryError> {
    store_credentials_in(dir, registry, creds, &search_path())
}

fn store_credentials_in(
    dir: &Path,
    registry: &str,
    creds: &Credentials,
    search: &OsStr,
) -> Result<(), RegistryError> {
    let (username, secret) = match creds {
        Credentials::Basic { username, password } => (username.clone(), password.clone()),
        Credentials::IdentityToken(t) => (TOKEN_USERNAME.to_string(), t.clone()),
        Credentials::RegistryToken(_) => {
            return Err(RegistryError::Credentials(
                "registry tokens are not stored".into(),
            ))
        }
    };
    let mut cfg = read_config(dir)?;
    let key = credential_key(registry);
    let mut entry = Map::new();
    match helper_for(&cfg, registry).and_then(|n| helper_binary(&n, search)) {
        Some(bin) => {
            let input = serde_json::to_vec(&HelperCreds {
                server_url: key.clone(),
                username,
                secret,
            })
            .map_err(|e| RegistryError::Credentials(e.to_string()))?;
            let (ok, out) = run_helper(&bin, "store", &input)?;
            if !ok {
                return Err(RegistryError::Credentials(format!(
                    "error storing credentials - err: {}, out: `{out}`",
                    bin.display()
                )));
            }
        }
        None if username == TOKEN_USERNAME => {
            entry.insert("identitytoken".into(), Value::String(secret));
        }
        None => {
            entry.insert(
                "auth".into(),
                Value::String(STANDARD.encode(format!("{username}:{secret}"))),
            );
        }
    }
    let auths = cfg
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    if let Value::Object(m) = auths {
        m.retain(|k, _| !same_registry(k, registry) || *k == key);
        m.insert(key, Value::Object(entry));
    }
    write_config(dir, &cfg)
}

/// `docker logout`: erases the credentials filed for `registry` (helper and `auths`).
/// Returns whether anything was filed.
pub fn erase_credentials(dir: &Path, registry: &str) -> Result<bool, RegistryError> {
    erase_credentials_in(dir, registry, &search_path())
}

fn erase_credentials_in(dir: &Path, registry: &str, search: &OsStr) -> Result<bool, RegistryError> {
    let mut cfg = read_config(dir)?;
    let key = credential_key(registry);
    let mut found = false;
    if let Some(bin) = helper_for(&cfg, registry).and_then(|n| helper_binary(&n, search)) {
        match run_helper(&bin, "erase", key.as_bytes()) {
            Ok((true, _)) => found = true,
            Ok((false, out)) => debug!(%out, "credential helper erase failed"),
            Err(e) => warn!(error = %e, "credential helper erase failed"),
        }
    }
    if let Some(Value::Object(m)) = cfg.get_mut("auths") {
        let before = m.len();
        m.retain(|k, _| !same_registry(k, registry));
        if m.len() != before {
            found = true;
            write_config(dir, &cfg)?;
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("berth-t-creds-")
            .tempdir()
            .unwrap()
    }

    #[test]
    fn x_registry_auth_forms() {
        let json = r#"{"username":"u","password":"p:w","serveraddress":"127.0.0.1:5000"}"#;
        for enc in [
            base64::engine::general_purpose::URL_SAFE.encode(json),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json),
            STANDARD.encode(json),
        ] {
            let ac = AuthConfig::from_x_registry_auth(&enc).unwrap();
            assert_eq!(ac.serveraddress, "127.0.0.1:5000");
            assert_eq!(
                ac.credentials().unwrap(),
                Some(Credentials::basic("u", "p:w"))
            );
        }
        assert_eq!(Credentials::from_x_registry_auth("").unwrap(), None);
        assert_eq!(
            Credentials::from_x_registry_auth(&STANDARD.encode("{}")).unwrap(),
            None
        );
        let tok = STANDARD.encode(r#"{"IdentityToken":"abc"}"#);
        assert_eq!(
            Credentials::from_x_registry_auth(&tok).unwrap(),
            Some(Credentials::IdentityToken("abc".into()))
        );
        let tok = STANDARD.encode(r#"{"registrytoken":"rt","username":"x"}"#);
        assert_eq!(
            Credentials::from_x_registry_auth(&tok).unwrap(),
            Some(Credentials::RegistryToken("rt".into()))
        );
        assert!(Credentials::from_x_registry_auth("!!!").is_err());
        assert!(Credentials::from_x_registry_auth(&STANDARD.encode("[1]")).is_err());
    }

    #[test]
    fn debug_redacts_secrets() {
        let s = format!("{:?}", Credentials::basic("me", "hunter2"));
        assert!(s.contains("me") && !s.contains("hunter2"));
        let s = format!("{:?}", Credentials::IdentityToken("sekrit".into()));
        assert!(!s.contains("sekrit"));
    }

    #[test]
    fn keys() {
        assert_eq!(credential_key("docker.io"), DOCKER_HUB_AUTH_KEY);
        assert_eq!(credential_key("index.docker.io"), DOCKER_HUB_AUTH_KEY);
        assert_eq!(
            credential_key("https://index.docker.io/v1/"),
            DOCKER_HUB_AUTH_KEY
        );
        assert_eq!(credential_key("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(
            credential_key("http://reg.example:5000/v2/"),
            "reg.example:5000"
        );
    }

    #[test]
    fn lookup_auths_entries() {
        let d = tmpdir();
        fs::write(
            d.path().join(CONFIG_FILE),
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}},
                   "http://127.0.0.1:5000/v2/":{{"auth":"{}"}},
                   "tok.example":{{"identitytoken":"idt"}},
                   "bad.example":{{"auth":"!!"}}}}}}"#,
                STANDARD.encode("hub:pw"),
                STANDARD.encode("loc:al:pw"),
            ),
        )
        .unwrap();
        assert_eq!(
            lookup_credentials(d.path(), "docker.io").unwrap(),
            Some(Credentials::basic("hub", "pw"))
        );
        assert_eq!(
            lookup_credentials(d.path(), "127.0.0.1:5000").unwrap(),
            Some(Credentials::basic("loc", "al:pw"))
        );
        assert_eq!(
            lookup_credentials(d.path(), "tok.example").unwrap(),
            Some(Credentials::IdentityToken("idt".into()))
        );
        assert_eq!(lookup_credentials(d.path(), "other:1").unwrap(), None);
        assert!(lookup_credentials(d.path(), "bad.example").is_err());
        // No file at all.
        let e = tmpdir();
        assert_eq!(lookup_credentials(e.path(), "docker.io").unwrap(), None);
        // Garbage file.
        fs::write(e.path().join(CONFIG_FILE), "{not json").unwrap();
        assert!(lookup_credentials(e.path(), "docker.io").is_err());
    }

    #[test]
    fn store_and_erase_keep_other_fields() {
        let d = tmpdir();
        let dir = d.path().join("sub");
        fs::create_dir(&dir).unwrap();
        fs::write(
            dir.join(CONFIG_FILE),
            r#"{"psFormat":"table","auths":{"http://127.0.0.1:5000":{"auth":"eDp5"}}}"#,
        )
        .unwrap();
        store_credentials(&dir, "127.0.0.1:5000", &Credentials::basic("a", "b")).unwrap();
        let meta = fs::metadata(dir.join(CONFIG_FILE)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let v: Value = serde_json::from_slice(&fs::read(dir.join(CONFIG_FILE)).unwrap()).unwrap();
        assert_eq!(v["psFormat"], "table");
        assert_eq!(
            v["auths"]["127.0.0.1:5000"]["auth"],
            STANDARD.encode("a:b").as_str()
        );
        assert!(v["auths"].get("http://127.0.0.1:5000").is_none());
        assert_eq!(
            lookup_credentials(&dir, "127.0.0.1:5000").unwrap(),
            Some(Credentials::basic("a", "b"))
        );
        assert!(erase_credentials(&dir, "127.0.0.1:5000").unwrap());
        assert!(!erase_credentials(&dir, "127.0.0.1:5000").unwrap());
        assert_eq!(lookup_credentials(&dir, "127.0.0.1:5000").unwrap(), None);
        assert!(store_credentials(&dir, "x", &Credentials::RegistryToken("t".into())).is_err());
        // A fresh directory is created private.
        let fresh = d.path().join("new");
        store_credentials(&fresh, "docker.io", &Credentials::basic("h", "p")).unwrap();
        assert_eq!(
            fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(
            lookup_credentials(&fresh, "index.docker.io").unwrap(),
            Some(Credentials::basic("h", "p"))
        );
        let leftovers: Vec<_> = fs::read_dir(&fresh)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name() != CONFIG_FILE)
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn credential_helper_protocol() {
        let d = tmpdir();
        let bin_dir = d.path().join("bin");
        fs::create_dir(&bin_dir).unwrap();
        let log = d.path().join("log");
        // A fake helper: `get` answers for one server, `store`/`erase` log their input.
        let script = format!(
            "#!/bin/sh\nread -r input || true\ncase \"$1\" in\n\
             get) if [ \"$input\" = \"127.0.0.1:5999\" ]; then echo '{{\"ServerURL\":\"x\",\"Username\":\"hu\",\"Secret\":\"hs\"}}'; \
             elif [ \"$input\" = \"tok:1\" ]; then echo '{{\"Username\":\"<token>\",\"Secret\":\"idt\"}}'; \
             else echo 'credentials not found in native keychain'; exit 1; fi;;\n\
             store) echo \"store $input\" >> {log};;\n\
             erase) echo \"erase $input\" >> {log};;\nesac\n",
            log = log.display()
        );
        let helper = bin_dir.join("docker-credential-berthtest");
        fs::write(&helper, script).unwrap();
        fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(
            d.path().join(CONFIG_FILE),
            r#"{"credsStore":"berthtest","credHelpers":{"gone:1":"notinstalled"},
                "auths":{"gone:1":{"auth":"dTpw"}}}"#,
        )
        .unwrap();
        let mut paths = vec![bin_dir.clone()];
        paths.extend(std::env::split_paths(&search_path()));
        let search = std::env::join_paths(paths).unwrap();
        let got = lookup_credentials_in(d.path(), "127.0.0.1:5999", &search);
        let tok = lookup_credentials_in(d.path(), "tok:1", &search);
        let missing = lookup_credentials_in(d.path(), "nope:1", &search);
        let fallback = lookup_credentials_in(d.path(), "gone:1", &search);
        let stored = store_credentials_in(
            d.path(),
            "127.0.0.1:5999",
            &Credentials::basic("a", "b"),
            &search,
        );
        let erased = erase_credentials_in(d.path(), "127.0.0.1:5999", &search);
        assert_eq!(got.unwrap(), Some(Credentials::basic("hu", "hs")));
        assert_eq!(tok.unwrap(), Some(Credentials::IdentityToken("idt".into())));
        assert_eq!(missing.unwrap(), None);
        assert_eq!(fallback.unwrap(), Some(Credentials::basic("u", "p")));
        stored.unwrap();
        assert!(erased.unwrap());
        let logged = fs::read_to_string(&log).unwrap();
        assert!(
            logged.contains(r#"store {"ServerURL":"127.0.0.1:5999","Username":"a","Secret":"b"}"#),
            "{logged}"
        );
        assert!(logged.contains("erase 127.0.0.1:5999"), "{logged}");
    }
}
