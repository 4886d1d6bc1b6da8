//! Kubeconfig reading: picks the current (or a named) context and resolves its cluster
//! (server, CA) and user (client certificate and key, or bearer token). Files named by
//! relative paths are resolved against the kubeconfig's directory, as kubectl does.

use std::path::{Path, PathBuf};

use base64::Engine;
use yaml_rust2::{Yaml, YamlLoader};

use crate::Error;

/// What a client needs from a kubeconfig's chosen context.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Kubeconfig {
    /// Name of the context used.
    pub context: String,
    /// The API server URL, e.g. `https://127.0.0.1:6443`.
    pub server: String,
    /// PEM of the CA to trust for the server (None: the system roots).
    pub ca_pem: Option<Vec<u8>>,
    /// Skip server certificate verification (`insecure-skip-tls-verify`).
    pub insecure: bool,
    /// Client certificate PEM (with `client_key_pem`).
    pub client_cert_pem: Option<Vec<u8>>,
    /// Client private key PEM.
    pub client_key_pem: Option<Vec<u8>>,
    /// Bearer token.
    pub token: Option<String>,
    /// The context's default namespace, if it names one.
    pub namespace: Option<String>,
}

impl std::fmt::Debug for Kubeconfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubeconfig")
            .field("context", &self.context)
            .field("server", &self.server)
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<set>"))
            .field("insecure", &self.insecure)
            .field(
                "client_cert_pem",
                &self.client_cert_pem.as_ref().map(|_| "<set>"),
            )
            .field(
                "client_key_pem",
                &self.client_key_pem.as_ref().map(|_| "<redacted>"),
            )
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl Kubeconfig {
    /// `$KUBECONFIG` (its first entry) or `~/.kube/config`.
    pub fn default_path() -> Option<PathBuf> {
        if let Some(v) = std::env::var_os("KUBECONFIG") {
            if let Some(first) = std::env::split_paths(&v).find(|p| !p.as_os_str().is_empty()) {
                return Some(first);
            }
        }
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube").join("config"))
    }

    /// Reads the kubeconfig at `path` and resolves `context` (None: its current-context).
    pub fn load(path: &Path, context: Option<&str>) -> Result<Kubeconfig, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Kubeconfig::parse(&text, base, context)
    }

    /// Parses kubeconfig text (YAML or JSON); relative file paths resolve against `base_dir`.
    pub fn parse(text: &str, base_dir: &Path, context: Option<&str>) -> Result<Kubeconfig, Error> {
        let docs = YamlLoader::load_from_str(text)
            .map_err(|e| Error::Kubeconfig(format!("not valid YAML: {e}")))?;
        let doc = docs
            .into_iter()
            .next()
            .ok_or_else(|| Error::Kubeconfig("empty document".into()))?;
        let ctx_name = match context {
            Some(c) => c.to_string(),
            None => str_field(&doc, "current-context")
                .filter(|s| !s.is_empty())
                .ok_or_else(|| Error::Kubeconfig("no current-context is set".into()))?
                .to_string(),
        };
        let ctx = named(&doc, "contexts", "context", &ctx_name)?;
        let cluster_name = str_field(ctx, "cluster")
            .ok_or_else(|| Error::Kubeconfig(format!("context {ctx_name:?} names no cluster")))?;
        let cluster = named(&doc, "clusters", "cluster", cluster_name)?;
        // A context without a user is allowed (anonymous access).
        let user = match str_field(ctx, "user").filter(|u| !u.is_empty()) {
            Some(u) => Some(named(&doc, "users", "user", u)?),
            None => None,
        };

        let server = str_field(cluster, "server")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::Kubeconfig(format!("cluster {cluster_name:?} has no server")))?
            .trim_end_matches('/')
            .to_string();
        let mut cfg = Kubeconfig {
            context: ctx_name.clone(),
            server,
            insecure: bool_field(cluster, "insecure-skip-tls-verify"),
            namespace: str_field(ctx, "namespace")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            ..Default::default()
        };
        cfg.ca_pem = data_or_file(
            cluster,
            "certificate-authority-data",
            "certificate-authority",
            base_dir,
        )?;
        if let Some(user) = user {
            if !user["exec"].is_badvalue() || !user["auth-provider"].is_badvalue() {
                return Err(Error::Kubeconfig(
                    "exec and auth-provider credential plugins are not supported".into(),
                ));
            }
            cfg.client_cert_pem = data_or_file(
                user,
                "client-certificate-data",
                "client-certificate",
                base_dir,
            )?;
            cfg.client_key_pem = data_or_file(user, "client-key-data", "client-key", base_dir)?;
            if cfg.client_cert_pem.is_some() != cfg.client_key_pem.is_some() {
                return Err(Error::Kubeconfig(
                    "a client certificate needs both a certificate and a key".into(),
                ));
            }
            cfg.token = match str_field(user, "token").filter(|t| !t.is_empty()) {
                Some(t) => Some(t.to_string()),
                None => match str_field(user, "tokenFile").filter(|t| !t.is_empty()) {
                    Some(f) => {
                        let p = resolve(base_dir, f);
                        let t = std::fs::read_to_string(&p)
                            .map_err(|source| Error::Io { path: p, source })?;
                        Some(t.trim().to_string())
                    }
                    None => None,
                },
            };
        }
        Ok(cfg)
    }
}

/// A string scalar at `key`, if it is one.
fn str_field<'a>(y: &'a Yaml, key: &str) -> Option<&'a str> {
    y[key].as_str()
}

/// A boolean at `key` (also the strings "true"/"false"); false if absent.
fn bool_field(y: &Yaml, key: &str) -> bool {
    match &y[key] {
        Yaml::Boolean(b) => *b,
        Yaml::String(s) => s == "true",
        _ => false,
    }
}

/// The `inner` map of the entry of list `list` whose `name` is `name`.
fn named<'a>(doc: &'a Yaml, list: &str, inner: &str, name: &str) -> Result<&'a Yaml, Error> {
    let entries = doc[list].as_vec().map(Vec::as_slice).unwrap_or(&[]);
    let entry = entries
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
        .ok_or_else(|| Error::Kubeconfig(format!("no {inner} named {name:?} in {list}")))?;
    let body = &entry[inner];
    if body.is_badvalue() || body.is_null() {
        // `- name: x` with no body: an empty definition.
        return Ok(&EMPTY);
    }
    if body.as_hash().is_none() {
        return Err(Error::Kubeconfig(format!(
            "{inner} {name:?} is not a mapping"
        )));
    }
    Ok(body)
}

static EMPTY: Yaml = Yaml::Null;

/// Base64 data from `data_key`, else the contents of the file named by `file_key`.
fn data_or_file(
    y: &Yaml,
    data_key: &str,
    file_key: &str,
    base_dir: &Path,
) -> Result<Option<Vec<u8>>, Error> {
    if let Some(d) = str_field(y, data_key).filter(|d| !d.trim().is_empty()) {
        let clean: String = d.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(clean.as_bytes())
            .map_err(|e| Error::Kubeconfig(format!("{data_key} is not valid base64: {e}")))?;
        return Ok(Some(bytes));
    }
    if let Some(f) = str_field(y, file_key).filter(|f| !f.is_empty()) {
        let p = resolve(base_dir, f);
        let bytes = std::fs::read(&p).map_err(|source| Error::Io { path: p, source })?;
        return Ok(Some(bytes));
    }
    Ok(None)
}

fn resolve(base: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    /// The shape cluster_pki::write_admin_kubeconfig writes.
    fn berth_style() -> String {
        format!(
            "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: https://127.0.0.1:6443\n  name: berth\ncontexts:\n- context:\n    cluster: berth\n    user: berth-admin\n  name: berth\ncurrent-context: berth\nkind: Config\npreferences: {{}}\nusers:\n- name: berth-admin\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n",
            ca = b64("CA PEM"),
            cert = b64("CERT PEM"),
            key = b64("KEY PEM"),
        )
    }

    #[test]
    fn parses_berth_admin_kubeconfig() {
        let c = Kubeconfig::parse(&berth_style(), Path::new("/nonexistent"), None).unwrap();
        assert_eq!(c.context, "berth");
        assert_eq!(c.server, "https://127.0.0.1:6443");
        assert_eq!(c.ca_pem.as_deref(), Some(&b"CA PEM"[..]));
        assert_eq!(c.client_cert_pem.as_deref(), Some(&b"CERT PEM"[..]));
        assert_eq!(c.client_key_pem.as_deref(), Some(&b"KEY PEM"[..]));
        assert_eq!(c.token, None);
        assert!(!c.insecure);
        // Secrets stay out of Debug output.
        assert!(!format!("{c:?}").contains("KEY PEM"));
    }

    #[test]
    fn picks_named_context_with_token_and_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), "FILE CA").unwrap();
        std::fs::write(dir.path().join("tok"), "  secret-token\n").unwrap();
        let text = r#"
apiVersion: v1
kind: Config
current-context: a
clusters:
  - name: one
    cluster: {server: "https://one:1/", certificate-authority: ca.crt}
  - name: two
    cluster:
      server: https://two:2
      insecure-skip-tls-verify: true
users:
  - name: u1
    user:
      token: abc
  - name: u2
    user:
      tokenFile: tok
contexts:
  - name: a
    context: {cluster: one, user: u1, namespace: ns1}
  - name: "b"
    context:
      cluster: two
      user: u2
"#;
        let a = Kubeconfig::parse(text, dir.path(), None).unwrap();
        assert_eq!(a.server, "https://one:1");
        assert_eq!(a.ca_pem.as_deref(), Some(&b"FILE CA"[..]));
        assert_eq!(a.token.as_deref(), Some("abc"));
        assert_eq!(a.namespace.as_deref(), Some("ns1"));
        let b = Kubeconfig::parse(text, dir.path(), Some("b")).unwrap();
        assert_eq!(b.server, "https://two:2");
        assert!(b.insecure);
        assert_eq!(b.ca_pem, None);
        assert_eq!(b.token.as_deref(), Some("secret-token"));
    }

    #[test]
    fn json_kubeconfig_is_yaml_too() {
        let text = r#"{"apiVersion":"v1","current-context":"c","clusters":[{"name":"k","cluster":{"server":"https://x:1"}}],"contexts":[{"name":"c","context":{"cluster":"k"}}]}"#;
        let c = Kubeconfig::parse(text, Path::new("."), None).unwrap();
        assert_eq!(c.server, "https://x:1");
        assert_eq!(c.client_cert_pem, None);
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let cases = [
            "",
            ":::\n  - [",
            "current-context: x\n",
            "current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: nope\n",
            "current-context: x\ncontexts:\n- name: x\n  context: 5\n",
            "current-context: x\ncontexts:\n- name: x\n  context: {cluster: k}\nclusters:\n- name: k\n  cluster: {}\n",
            "current-context: x\ncontexts:\n- name: x\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster: {server: 'https://a'}\nusers:\n- name: u\n  user: {client-certificate-data: '!!notbase64'}\n",
            "current-context: x\ncontexts:\n- name: x\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster: {server: 'https://a'}\nusers:\n- name: u\n  user: {client-certificate-data: QQ==}\n",
            "current-context: x\ncontexts:\n- name: x\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster: {server: 'https://a'}\nusers:\n- name: u\n  user: {exec: {command: aws}}\n",
            "current-context: x\ncontexts:\n- name: x\n  context: {cluster: k}\nclusters:\n- name: k\n  cluster: {server: 'https://a', certificate-authority: /nonexistent/berth-ca}\n",
        ];
        for text in cases {
            assert!(
                Kubeconfig::parse(text, Path::new("/"), None).is_err(),
                "accepted: {text:?}"
            );
        }
    }

    #[test]
    fn wrapped_base64_is_accepted() {
        let text = "current-context: x\ncontexts:\n- name: x\n  context: {cluster: k}\nclusters:\n- name: k\n  cluster:\n    server: https://a\n    certificate-authority-data: >-\n      QUJD\n      REVG\n";
        let c = Kubeconfig::parse(text, Path::new("/"), None).unwrap();
        assert_eq!(c.ca_pem.as_deref(), Some(&b"ABCDEF"[..]));
    }
}
