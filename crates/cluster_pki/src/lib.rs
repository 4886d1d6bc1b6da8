//! cluster_pki: the public-key infrastructure of berth's Kubernetes-compatible API server.
//!
//! On first start it creates, in one private directory, a cluster CA ("berth-ca", ECDSA
//! P-256, 10 years), a serving certificate for the API server signed by it, an admin client
//! certificate (CN=admin, O=system:masters) and a static token file in Kubernetes' format
//! holding a random admin token. Later starts load them, re-issuing a leaf certificate when
//! it is missing, damaged, signed by another CA, close to expiry or (for the serving
//! certificate) lacks a wanted subject alternative name. It also builds the rustls server
//! configuration (client certificates optional, verified against the CA), writes admin
//! kubeconfigs, issues further client certificates, and maps verified client certificates
//! and bearer tokens to Kubernetes users.

mod client_cert;
mod files;
mod tokens;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use chrono::{Datelike, Duration as ChronoDuration, Months, NaiveDate, Utc};
use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

pub use tokens::TokenAuthenticator;
use tokens::TokenRecord;

/// The group Kubernetes adds to every authenticated user.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// The group that is allowed everything.
pub const MASTERS_GROUP: &str = "system:masters";

const CA_CN: &str = "berth-ca";
const SERVER_CN: &str = "berth-apiserver";
const ADMIN_CN: &str = "admin";
const CA_YEARS: u32 = 10;
/// Leaf certificates are valid this many days...
const LEAF_DAYS: i64 = 365;
/// ...and re-issued on load when fewer than this many days remain.
const RENEW_DAYS: i64 = 90;

const CA_CRT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const SERVER_CRT: &str = "server.crt";
const SERVER_KEY: &str = "server.key";
const ADMIN_CRT: &str = "admin.crt";
const ADMIN_KEY: &str = "admin.key";
const TOKENS: &str = "tokens.csv";

/// Names every serving certificate carries, besides the host name and caller's extras.
const DEFAULT_SANS: &[&str] = &[
    "localhost",
    "127.0.0.1",
    "::1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

#[derive(thiserror::Error, Debug)]
pub enum PkiError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("{} exists but {} is missing: refusing to replace the cluster CA", crt.display(), key.display())]
    MissingCaKey { crt: PathBuf, key: PathBuf },
    #[error("invalid subject alternative name {0:?}")]
    InvalidSan(String),
    #[error("invalid user name {0:?}")]
    InvalidUser(String),
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("token file line {line}: {reason}")]
    TokenFile { line: usize, reason: String },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn invalid(path: &Path, reason: impl Into<String>) -> PkiError {
    PkiError::Invalid {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// An authenticated Kubernetes user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

/// The cluster's CA, the API server's certificate, the admin credentials and static tokens.
pub struct Pki {
    dir: PathBuf,
    ca_pem: String,
    ca_der: Vec<u8>,
    ca_not_after: i64,
    issuer: Issuer<'static, KeyPair>,
    server_cert_der: Vec<u8>,
    server_key_der: Vec<u8>,
    admin_cert_pem: String,
    admin_key_pem: String,
    tokens: TokenAuthenticator,
    admin_token: String,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

/// A wanted subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum San {
    Dns(String),
    Ip(IpAddr),
}

impl San {
    fn parse(s: &str) -> Result<San, PkiError> {
        let t = s.trim();
        // Accept bracketed IPv6 as people write it in URLs.
        let unbracketed = t
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(t);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(San::Ip(ip));
        }
        let valid = !t.is_empty()
            && t.len() <= 253
            && t.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*')
            });
        if !valid {
            return Err(PkiError::InvalidSan(s.to_string()));
        }
        Ok(San::Dns(t.to_ascii_lowercase()))
    }

    fn to_rcgen(&self) -> Result<SanType, PkiError> {
        Ok(match self {
            San::Ip(ip) => SanType::IpAddress(*ip),
            San::Dns(d) => SanType::DnsName(
                d.clone()
                    .try_into()
                    .map_err(|_| PkiError::InvalidSan(d.clone()))?,
            ),
        })
    }
}

fn host_name() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = raw.trim();
    match San::parse(h) {
        Ok(San::Dns(d)) => Some(d),
        _ => None,
    }
}

fn wanted_sans(extra: &[String]) -> Result<Vec<San>, PkiError> {
    let mut out: Vec<San> = Vec::new();
    let mut push = |s: San| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    for s in DEFAULT_SANS {
        push(San::parse(s)?);
    }
    if let Some(h) = host_name() {
        push(San::Dns(h));
    }
    for s in extra {
        push(San::parse(s)?);
    }
    Ok(out)
}

/// 16 random bytes usable as a positive, minimally encoded DER integer.
fn random_serial_bytes() -> [u8; 16] {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b[0] &= 0x7f; // positive
    b[0] |= 0x01; // no leading zero byte
    b
}

fn random_serial() -> SerialNumber {
    SerialNumber::from_slice(&random_serial_bytes())
}

/// Sets a certificate's validity to whole days (midnight UTC) from `from` to `until`.
fn set_validity(p: &mut CertificateParams, from: NaiveDate, until: NaiveDate) {
    p.not_before = rcgen::date_time_ymd(from.year(), from.month() as u8, from.day() as u8);
    p.not_after = rcgen::date_time_ymd(until.year(), until.month() as u8, until.day() as u8);
}

fn new_key() -> Result<KeyPair, PkiError> {
    Ok(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?)
}

fn pem_to_der(path: &Path, pem: &str) -> Result<Vec<u8>, PkiError> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| invalid(path, format!("not PEM: {e}")))?;
    if p.label != "CERTIFICATE" {
        return Err(invalid(path, format!("PEM block is {:?}", p.label)));
    }
    Ok(p.contents)
}

fn der_to_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        s.push('\n');
    }
    s.push_str("-----END CERTIFICATE-----\n");
    s
}

fn parse_cert<'a>(path: &Path, der: &'a [u8]) -> Result<X509Certificate<'a>, PkiError> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| invalid(path, format!("bad certificate: {e}")))
}

fn now_ts() -> i64 {
    Utc::now().timestamp()
}

/// Why a stored leaf certificate cannot be kept, or None when it can.
fn leaf_problem(
    cert: &X509Certificate<'_>,
    key: &KeyPair,
    ca: &X509Certificate<'_>,
    wanted: &[San],
    want_cn: Option<&str>,
    want_group: Option<&str>,
) -> Option<String> {
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Some("key does not match certificate".into());
    }
    if cert.verify_signature(Some(ca.public_key())).is_err() {
        return Some("not signed by the cluster CA".into());
    }
    if cert.validity().not_after.timestamp() - now_ts() < RENEW_DAYS * 86_400 {
        return Some("expires soon".into());
    }
    if cert.validity().not_before.timestamp() > now_ts() + 86_400 {
        return Some("not yet valid".into());
    }
    if !wanted.is_empty() {
        let mut have: Vec<San> = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for n in &ext.value.general_names {
                match n {
                    GeneralName::DNSName(d) => have.push(San::Dns(d.to_ascii_lowercase())),
                    GeneralName::IPAddress(b) => match b.len() {
                        4 => {
                            let a: [u8; 4] = [b[0], b[1], b[2], b[3]];
                            have.push(San::Ip(IpAddr::from(a)));
                        }
                        16 => {
                            let mut a = [0u8; 16];
                            a.copy_from_slice(b);
                            have.push(San::Ip(IpAddr::from(a)));
                        }
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        if let Some(missing) = wanted.iter().find(|w| !have.contains(w)) {
            return Some(format!("lacks subject alternative name {missing:?}"));
        }
    }
    if let Some(cn) = want_cn {
        let got = cert
            .subject()
            .iter_common_name()
            .filter_map(|a| a.as_str().ok())
            .last();
        if got != Some(cn) {
            return Some("unexpected common name".into());
        }
    }
    if let Some(g) = want_group {
        if !cert
            .subject()
            .iter_organization()
            .any(|a| a.as_str().ok() == Some(g))
        {
            return Some("unexpected organization".into());
        }
    }
    None
}

/// Reads a PEM key pair from a path if present (None if absent or unreadable as a key).
fn read_key(path: &Path) -> Result<Option<KeyPair>, PkiError> {
    let Some(text) = files::read_optional(path).map_err(io_err(path))? else {
        return Ok(None);
    };
    files::tighten(path).map_err(io_err(path))?;
    match KeyPair::from_pem(&text) {
        Ok(k) => Ok(Some(k)),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "unreadable private key");
            Ok(None)
        }
    }
}

fn write_pair(
    dir: &Path,
    crt: &str,
    key: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<(), PkiError> {
    let kp = dir.join(key);
    files::write_atomic(&kp, key_pem.as_bytes(), files::PRIVATE).map_err(io_err(&kp))?;
    let cp = dir.join(crt);
    files::write_atomic(&cp, cert_pem.as_bytes(), files::PUBLIC).map_err(io_err(&cp))?;
    Ok(())
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Whether a string is safe as a plain YAML scalar in the kubeconfig.
fn yaml_plain_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'.' | b'-' | b'_' | b'[' | b']')
        })
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && !s.contains(": ")
}

fn yaml_scalar(s: &str) -> String {
    if yaml_plain_ok(s) {
        s.to_string()
    } else {
        // A JSON string is a valid YAML double-quoted scalar.
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}

impl Pki {
    /// Loads `dir`, creating or repairing what is missing (see the crate docs).
    pub fn load_or_create(dir: &Path, extra_sans: &[String]) -> Result<Pki, PkiError> {
        files::ensure_private_dir(dir).map_err(io_err(dir))?;
        let wanted = wanted_sans(extra_sans)?;
        let today = Utc::now().date_naive();
        let yesterday = today - ChronoDuration::days(1);

        // --- CA ---
        let ca_crt = dir.join(CA_CRT);
        let ca_key_path = dir.join(CA_KEY);
        let ca_text = files::read_optional(&ca_crt).map_err(io_err(&ca_crt))?;
        let ca_key = read_key(&ca_key_path)?;
        let (ca_key, ca_pem, fresh_ca) = match (ca_text, ca_key) {
            (Some(pem), Some(key)) => {
                let der = pem_to_der(&ca_crt, &pem)?;
                let cert = parse_cert(&ca_crt, &der)?;
                if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
                    return Err(invalid(&ca_crt, "CA certificate does not match ca.key"));
                }
                if !cert.is_ca() {
                    return Err(invalid(&ca_crt, "not a CA certificate"));
                }
                if cert.validity().not_after.timestamp() < now_ts() {
                    tracing::error!(path = %ca_crt.display(), "the cluster CA has expired");
                }
                (key, pem, false)
            }
            (Some(_), None) => {
                return Err(PkiError::MissingCaKey {
                    crt: ca_crt,
                    key: ca_key_path,
                })
            }
            (None, existing_key) => {
                // With a surviving key the new certificate keeps the same name and key, so
                // certificates it signed before stay valid.
                let fresh_key = existing_key.is_none();
                let key = match existing_key {
                    Some(k) => k,
                    None => new_key()?,
                };
                let mut p = CertificateParams::default();
                p.distinguished_name = rcgen::DistinguishedName::new();
                p.distinguished_name.push(DnType::CommonName, CA_CN);
                p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                p.key_usages = vec![
                    KeyUsagePurpose::KeyCertSign,
                    KeyUsagePurpose::CrlSign,
                    KeyUsagePurpose::DigitalSignature,
                ];
                p.serial_number = Some(random_serial());
                let until = today
                    .checked_add_months(Months::new(12 * CA_YEARS))
                    .unwrap_or(today);
                set_validity(&mut p, yesterday, until);
                let cert = p.self_signed(&key)?;
                let pem = cert.pem();
                write_pair(dir, CA_CRT, CA_KEY, &pem, &key.serialize_pem())?;
                tracing::info!(dir = %dir.display(), "created cluster CA");
                (key, pem, fresh_key)
            }
        };
        let ca_der = pem_to_der(&ca_crt, &ca_pem)?;
        let ca_cert = parse_cert(&ca_crt, &ca_der)?;
        let ca_not_after = ca_cert.validity().not_after.timestamp();
        let issuer = Issuer::from_ca_cert_der(&CertificateDer::from(ca_der.as_slice()), ca_key)?;

        let pki_partial = Partial {
            issuer: &issuer,
            ca_der: &ca_der,
            ca_not_after,
            today,
            yesterday,
        };

        // --- serving certificate ---
        let (server_cert_der, server_key_der) = {
            let crt = dir.join(SERVER_CRT);
            let keyp = dir.join(SERVER_KEY);
            let existing = if fresh_ca {
                None
            } else {
                load_leaf(&crt, &keyp, &ca_cert, &wanted, None, None)?
            };
            match existing {
                Some((der, key)) => (der, key.serialize_der()),
                None => {
                    let (cert_pem, key) = pki_partial.issue_server(SERVER_CN, &wanted)?;
                    write_pair(dir, SERVER_CRT, SERVER_KEY, &cert_pem, &key.serialize_pem())?;
                    tracing::info!(path = %crt.display(), "issued API server certificate");
                    (pem_to_der(&crt, &cert_pem)?, key.serialize_der())
                }
            }
        };

        // --- admin client certificate ---
        let (admin_cert_pem, admin_key_pem) = {
            let crt = dir.join(ADMIN_CRT);
            let keyp = dir.join(ADMIN_KEY);
            let existing = if fresh_ca {
                None
            } else {
                load_leaf(
                    &crt,
                    &keyp,
                    &ca_cert,
                    &[],
                    Some(ADMIN_CN),
                    Some(MASTERS_GROUP),
                )?
            };
            match existing {
                Some((der, key)) => (der_to_pem(&der), key.serialize_pem()),
                None => {
                    let (cert_pem, key) = pki_partial.issue_client(ADMIN_CN, &[MASTERS_GROUP])?;
                    let key_pem = key.serialize_pem();
                    write_pair(dir, ADMIN_CRT, ADMIN_KEY, &cert_pem, &key_pem)?;
                    tracing::info!(path = %crt.display(), "issued admin client certificate");
                    (cert_pem, key_pem)
                }
            }
        };

        // --- static tokens ---
        let tpath = dir.join(TOKENS);
        let text = files::read_optional(&tpath).map_err(io_err(&tpath))?;
        if text.is_some() {
            files::tighten(&tpath).map_err(io_err(&tpath))?;
        }
        let mut records = match &text {
            Some(t) => tokens::parse_records(t).map_err(|e| invalid(&tpath, e.to_string()))?,
            None => Vec::new(),
        };
        let admin_token = match records
            .iter()
            .find(|r| r.user == ADMIN_CN && r.groups.iter().any(|g| g == MASTERS_GROUP))
        {
            Some(r) if !r.token.is_empty() => r.token.clone(),
            _ => {
                let rec = TokenRecord {
                    token: random_token(),
                    user: ADMIN_CN.into(),
                    uid: ADMIN_CN.into(),
                    groups: vec![MASTERS_GROUP.into()],
                };
                let mut out = text.unwrap_or_default();
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(&rec.to_line());
                out.push('\n');
                files::write_atomic(&tpath, out.as_bytes(), files::PRIVATE)
                    .map_err(io_err(&tpath))?;
                tracing::info!(path = %tpath.display(), "wrote admin token");
                let t = rec.token.clone();
                records.push(rec);
                t
            }
        };
        let tokens = TokenAuthenticator::from_records(records);

        Ok(Pki {
            dir: dir.to_path_buf(),
            ca_pem,
            ca_der,
            ca_not_after,
            issuer,
            server_cert_der,
            server_key_der,
            admin_cert_pem,
            admin_key_pem,
            tokens,
            admin_token,
        })
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// The directory the files live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// rustls server configuration: the serving certificate; client certificates requested
    /// but optional (bearer-token clients still connect), verified against the CA when
    /// given; ALPN h2 and http/1.1.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(self.ca_der.clone()))?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()?;
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from(self.server_cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone())),
            )?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// Issues a client certificate (CN = user, one O per group), valid one year (never past
    /// the CA). Returns (certificate PEM, PKCS#8 private key PEM).
    pub fn issue_client_cert(
        &self,
        common_name: &str,
        groups: &[&str],
    ) -> Result<(String, String), PkiError> {
        if common_name.is_empty() || common_name.chars().any(char::is_control) {
            return Err(PkiError::InvalidUser(common_name.to_string()));
        }
        if let Some(g) = groups
            .iter()
            .find(|g| g.is_empty() || g.chars().any(char::is_control))
        {
            return Err(PkiError::InvalidUser((*g).to_string()));
        }
        let today = Utc::now().date_naive();
        let p = Partial {
            issuer: &self.issuer,
            ca_der: &self.ca_der,
            ca_not_after: self.ca_not_after,
            today,
            yesterday: today - ChronoDuration::days(1),
        };
        let (cert_pem, key) = p.issue_client(common_name, groups)?;
        Ok((cert_pem, key.serialize_pem()))
    }

    /// The admin bearer token from tokens.csv.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The admin client certificate and key, PEM.
    pub fn admin_credentials(&self) -> (&str, &str) {
        (&self.admin_cert_pem, &self.admin_key_pem)
    }

    /// Writes a kubeconfig for `server_url` (cluster and context "berth", user
    /// "berth-admin" with the admin client certificate embedded), mode 0600, atomically.
    pub fn write_admin_kubeconfig(&self, path: &Path, server_url: &str) -> Result<(), PkiError> {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        let text = format!(
            "apiVersion: v1\n\
             clusters:\n\
             - cluster:\n\
             \x20   certificate-authority-data: {ca}\n\
             \x20   server: {server}\n\
             \x20 name: berth\n\
             contexts:\n\
             - context:\n\
             \x20   cluster: berth\n\
             \x20   user: berth-admin\n\
             \x20 name: berth\n\
             current-context: berth\n\
             kind: Config\n\
             preferences: {{}}\n\
             users:\n\
             - name: berth-admin\n\
             \x20 user:\n\
             \x20   client-certificate-data: {cert}\n\
             \x20   client-key-data: {key}\n",
            ca = b64(&self.ca_pem),
            server = yaml_scalar(server_url),
            cert = b64(&self.admin_cert_pem),
            key = b64(&self.admin_key_pem),
        );
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        files::write_atomic(path, text.as_bytes(), files::PRIVATE).map_err(io_err(path))
    }

    /// The static token authenticator (tokens.csv).
    pub fn tokens(&self) -> &TokenAuthenticator {
        &self.tokens
    }
}

/// What issuing a leaf needs.
struct Partial<'a> {
    issuer: &'a Issuer<'static, KeyPair>,
    ca_der: &'a [u8],
    ca_not_after: i64,
    today: NaiveDate,
    yesterday: NaiveDate,
}

impl Partial<'_> {
    fn leaf_until(&self) -> NaiveDate {
        let mut until = self.today + ChronoDuration::days(LEAF_DAYS);
        if let Some(ca_end) = chrono::DateTime::from_timestamp(self.ca_not_after, 0) {
            until = until.min(ca_end.date_naive());
        }
        until
    }

    /// A serving certificate for `sans`.
    fn issue_server(&self, cn: &str, sans: &[San]) -> Result<(String, KeyPair), PkiError> {
        let key = new_key()?;
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = sans
            .iter()
            .map(San::to_rcgen)
            .collect::<Result<Vec<_>, _>>()?;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.serial_number = Some(random_serial());
        p.use_authority_key_identifier_extension = true;
        set_validity(&mut p, self.yesterday, self.leaf_until());
        let cert = p.signed_by(&key, self.issuer)?;
        Ok((cert.pem(), key))
    }

    /// A client certificate: CN = user, one O per group.
    fn issue_client(&self, cn: &str, groups: &[&str]) -> Result<(String, KeyPair), PkiError> {
        let key = new_key()?;
        let der = client_cert::encode(
            self.ca_der,
            self.issuer.key(),
            &key,
            &client_cert::ClientLeaf {
                common_name: cn,
                groups,
                serial: &random_serial_bytes(),
                not_before: self.yesterday,
                not_after: self.leaf_until(),
            },
        )?;
        Ok((der_to_pem(&der), key))
    }
}

/// Loads a stored leaf pair if it is usable (see [`leaf_problem`]); None means re-issue.
fn load_leaf(
    crt: &Path,
    keyp: &Path,
    ca: &X509Certificate<'_>,
    wanted: &[San],
    want_cn: Option<&str>,
    want_group: Option<&str>,
) -> Result<Option<(Vec<u8>, KeyPair)>, PkiError> {
    let Some(key) = read_key(keyp)? else {
        return Ok(None);
    };
    let Some(pem) = files::read_optional(crt).map_err(io_err(crt))? else {
        return Ok(None);
    };
    let Ok(der) = pem_to_der(crt, &pem) else {
        tracing::warn!(path = %crt.display(), "unreadable certificate; re-issuing");
        return Ok(None);
    };
    let problem = match X509Certificate::from_der(&der) {
        Ok((_, cert)) => leaf_problem(&cert, &key, ca, wanted, want_cn, want_group),
        Err(e) => Some(format!("bad certificate: {e}")),
    };
    if let Some(p) = problem {
        tracing::info!(path = %crt.display(), reason = %p, "re-issuing certificate");
        return Ok(None);
    }
    Ok(Some((der, key)))
}

/// The user named by a (verified) client certificate: CN is the user name, each O a group,
/// plus "system:authenticated". None if the certificate does not parse or has no CN.
pub fn user_from_client_cert(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let name = cert
        .subject()
        .iter_common_name()
        .filter_map(|a| a.as_str().ok())
        .last()?
        .to_string();
    if name.is_empty() {
        return None;
    }
    let mut groups: Vec<String> = cert
        .subject()
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .map(String::from)
        .collect();
    if !groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
        groups.push(AUTHENTICATED_GROUP.to_string());
    }
    Some(UserInfo {
        name,
        uid: String::new(),
        groups,
    })
}

#[cfg(test)]
mod tests;
