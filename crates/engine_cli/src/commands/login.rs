//! `login` / `logout`, and the `X-Registry-Auth` header pull and push send: credentials
//! live where docker keeps them (`~/.docker/config.json` or a credential helper).

use std::io::Read;

use hyper::Method;
use registry_client::{
    credential_key, default_docker_config_dir, erase_credentials, lookup_credentials,
    store_credentials, Credentials, DOCKER_HUB_AUTH_KEY,
};

use super::{out, Ctx};
use crate::error::{CliError, CliResult};
use crate::flags::Parsed;

/// base64url (with padding) as docker encodes `X-Registry-Auth`.
fn base64url(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// The docker config key of a registry domain (`docker.io` → Docker Hub's key).
fn server_key(domain: &str) -> String {
    if domain.is_empty() || domain == "docker.io" || domain == "index.docker.io" {
        DOCKER_HUB_AUTH_KEY.to_string()
    } else {
        credential_key(domain)
    }
}

/// `X-Registry-Auth` for a registry: the stored credentials, or `{}`.
pub fn auth_header(domain: &str) -> String {
    let creds = default_docker_config_dir()
        .and_then(|dir| lookup_credentials(&dir, &server_key(domain)).ok().flatten());
    let v = match creds {
        Some(Credentials::Basic { username, password }) => serde_json::json!({
            "username": username, "password": password, "serveraddress": server_key(domain),
        }),
        Some(Credentials::IdentityToken(t)) => serde_json::json!({
            "identitytoken": t, "serveraddress": server_key(domain),
        }),
        Some(Credentials::RegistryToken(t)) => serde_json::json!({ "registrytoken": t }),
        None => serde_json::json!({}),
    };
    base64url(v.to_string().as_bytes())
}

fn config_dir() -> CliResult<std::path::PathBuf> {
    default_docker_config_dir().ok_or_else(|| {
        CliError::Other(
            "cannot find the docker config directory (set HOME or DOCKER_CONFIG)".into(),
        )
    })
}

/// `login [-u USER] [-p PASS | --password-stdin] [SERVER]`.
pub async fn login(ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let server = p.args.first().cloned().unwrap_or_default();
    let key = server_key(&server);
    let username = p.last("username").unwrap_or("").to_string();
    let mut password = p.last("password").unwrap_or("").to_string();
    if p.bool("password-stdin") {
        if !password.is_empty() {
            return Err(CliError::Other(
                "--password and --password-stdin are mutually exclusive".into(),
            ));
        }
        if username.is_empty() {
            return Err(CliError::Other(
                "Must provide --username with --password-stdin".into(),
            ));
        }
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::Other(format!("reading the password from stdin: {e}")))?;
        password = s.trim_end_matches(['\n', '\r']).to_string();
    } else if !password.is_empty() {
        crate::streams::write_stderr(
            b"WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n",
        );
    }
    if username.is_empty() || password.is_empty() {
        return Err(CliError::Other(
            "Error: Cannot perform an interactive login from a non TTY device: give --username and --password-stdin".into(),
        ));
    }
    let body = serde_json::json!({
        "username": username, "password": password, "serveraddress": key,
    });
    let resp = ctx
        .client
        .raw_with(
            Method::POST,
            "/auth",
            &[],
            &[("Content-Type", "application/json")],
            Some(super::image::bytes_body(body.to_string().into_bytes())),
        )
        .await?;
    use http_body_util::BodyExt;
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| CliError::Other(format!("error reading response: {e}")))?
        .to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let token = v
        .get("IdentityToken")
        .and_then(|t| t.as_str())
        .unwrap_or("");
    let creds = if token.is_empty() {
        Credentials::Basic { username, password }
    } else {
        Credentials::IdentityToken(token.to_string())
    };
    store_credentials(&config_dir()?, &key, &creds)
        .map_err(|e| CliError::Other(format!("Error saving credentials: {e}")))?;
    out("Login Succeeded\n");
    Ok(())
}

/// `logout [SERVER]`.
pub async fn logout(_ctx: &Ctx, p: &Parsed) -> CliResult<()> {
    let server = p.args.first().cloned().unwrap_or_default();
    let key = server_key(&server);
    let removed = erase_credentials(&config_dir()?, &key)
        .map_err(|e| CliError::Other(format!("Error removing credentials: {e}")))?;
    if removed {
        out(&format!("Removing login credentials for {key}\n"));
    } else {
        out(&format!("Not logged in to {key}\n"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_pads_like_go() {
        assert_eq!(base64url(b"{}"), "e30=");
        assert_eq!(base64url(b"ab?"), "YWI_");
        assert_eq!(base64url(b"a"), "YQ==");
    }

    #[test]
    fn hub_key() {
        assert_eq!(server_key(""), DOCKER_HUB_AUTH_KEY);
        assert_eq!(server_key("docker.io"), DOCKER_HUB_AUTH_KEY);
        assert_eq!(server_key("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
