//! The OpenAPI documents of berth's Kubernetes API server, generated from the resource
//! catalogue (`api_resources`) and k8s-openapi's schemars schemas.
//!
//! - [`definitions`]: the OpenAPI v2-style `definitions` map (Kubernetes' canonical names,
//!   `#/definitions/` references, `x-kubernetes-group-version-kind` on every kind, the
//!   strategic-merge-patch and list-type extensions) that the strategic merge patch code reads;
//! - [`openapi_v2`]: the Swagger 2.0 document served at `/openapi/v2` (as JSON: kubectl 1.33
//!   only reads it for `explain --output=plaintext-openapiv2` or when v3 is missing, and then
//!   accepts nothing but gnostic protobuf, which is not produced here);
//! - [`openapi_v3_index`], [`openapi_v3_group_version`], [`openapi_v3_hash`]: the
//!   `/openapi/v3` discovery index and the per group-version OpenAPI 3.0 documents that
//!   kubectl reads for `explain`, for deciding that the server validates fields
//!   (`fieldValidation`), and for strategic-merge-patch metadata.
//!
//! Every document is built on first use and kept for the life of the process. Documents are
//! kept as compact JSON bytes ([`openapi_v2_json`], [`openapi_v3_json`]: what a server should
//! send, and what the v3 hashes are computed over), about a seventh of their size as
//! `serde_json::Value` trees; the `Value` forms are only built when asked for.

mod definitions;
mod extensions;
mod paths;
mod registry;
mod v3;

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

static DEFINITIONS: OnceLock<Map<String, Value>> = OnceLock::new();
static V2: OnceLock<Value> = OnceLock::new();
static V2_JSON: OnceLock<Box<[u8]>> = OnceLock::new();
/// (group, version, kind) -> definition name.
static GVK_INDEX: OnceLock<HashMap<(String, String, String), &'static str>> = OnceLock::new();
static V3_DOCS: OnceLock<Vec<V3Doc>> = OnceLock::new();
static V3_INDEX: OnceLock<Value> = OnceLock::new();

/// One `/openapi/v3/<path>` document, built lazily: as JSON bytes (what is served and
/// hashed) and, only if asked for, as a `Value`.
struct V3Doc {
    path: String,
    doc: OnceLock<Option<Value>>,
    json: OnceLock<Option<Box<[u8]>>>,
    hash: OnceLock<String>,
}

/// The OpenAPI v2-style definitions of every served kind, its list kind, and the types they
/// reference, keyed by Kubernetes' definition names (`io.k8s.api.apps.v1.Deployment`).
/// References are `{"$ref": "#/definitions/<name>"}`; property schemas carry
/// `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` where Kubernetes' do.
pub fn definitions() -> &'static Map<String, Value> {
    DEFINITIONS.get_or_init(|| {
        let started = std::time::Instant::now();
        let defs = definitions::build();
        tracing::debug!(count = defs.len(), elapsed = ?started.elapsed(), "built OpenAPI definitions");
        defs
    })
}

/// The definition name of a served group/version/kind, including list kinds, subresource
/// kinds (`autoscaling/v1` `Scale`), `v1` `Status`, and `DeleteOptions` / `WatchEvent` in
/// every served group version. `("extensions", "v1beta1", "Deployment")` names
/// `io.k8s.api.apps.v1.Deployment`.
pub fn definition_name(group: &str, version: &str, kind: &str) -> Option<&'static str> {
    let index = GVK_INDEX.get_or_init(|| {
        let mut index = HashMap::new();
        for (name, def) in definitions() {
            let Some(gvks) = def
                .get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
            else {
                continue;
            };
            for gvk in gvks {
                let field = |f: &str| gvk.get(f).and_then(Value::as_str).unwrap_or("").to_string();
                index.insert(
                    (field("group"), field("version"), field("kind")),
                    name.as_str(),
                );
            }
        }
        index
    });
    index
        .get(&(group.to_string(), version.to_string(), kind.to_string()))
        .copied()
}

/// The Swagger 2.0 document served at `/openapi/v2`: every path of every resource
/// (collection, item, all-namespaces list, watch, subresources) with `x-kubernetes-action`,
/// `x-kubernetes-group-version-kind` and the Kubernetes query parameters, plus
/// [`definitions`]. It holds its own copy of the definitions; a server only sending the
/// document should use [`openapi_v2_json`], which is much smaller in memory.
pub fn openapi_v2() -> &'static Value {
    V2.get_or_init(|| {
        let parts = V2Parts::new();
        let mut doc = Map::new();
        // Alphabetical, as V2Doc serialises them.
        doc.insert("definitions".into(), Value::Object(definitions().clone()));
        doc.insert("info".into(), parts.info);
        doc.insert("paths".into(), Value::Object(parts.paths));
        doc.insert("security".into(), parts.security);
        doc.insert("securityDefinitions".into(), parts.security_definitions);
        doc.insert("swagger".into(), "2.0".into());
        Value::Object(doc)
    })
}

/// [`openapi_v2`] serialised as compact JSON, built without keeping a second copy of the
/// definitions.
pub fn openapi_v2_json() -> &'static [u8] {
    V2_JSON.get_or_init(|| {
        let parts = V2Parts::new();
        let doc = V2Doc {
            definitions: definitions(),
            info: &parts.info,
            paths: &parts.paths,
            security: &parts.security,
            security_definitions: &parts.security_definitions,
            swagger: "2.0",
        };
        to_json(&doc)
    })
}

/// The parts of the v2 document besides the definitions.
struct V2Parts {
    info: Value,
    paths: Map<String, Value>,
    security: Value,
    security_definitions: Value,
}

impl V2Parts {
    fn new() -> V2Parts {
        let mut items = vec![paths::core_versions_path(), paths::groups_path()];
        let gvs = definitions::group_versions();
        let mut groups: Vec<&str> = Vec::new();
        for (g, _) in &gvs {
            if !g.is_empty() && !groups.contains(g) {
                groups.push(g);
                items.push(paths::group_path(g));
            }
        }
        for (g, v) in &gvs {
            items.extend(paths::group_version_paths(g, v));
        }
        V2Parts {
            info: json!({ "title": "Kubernetes", "version": "unversioned" }),
            paths: paths::render(paths::Dialect::V2, &items),
            security: json!([{ "BearerToken": [] }]),
            security_definitions: json!({
                "BearerToken": {
                    "description": "Bearer token authentication",
                    "in": "header",
                    "name": "authorization",
                    "type": "apiKey",
                },
            }),
        }
    }
}

/// The v2 document by reference, fields in the order a `Value` object serialises its keys.
#[derive(serde::Serialize)]
struct V2Doc<'a> {
    definitions: &'a Map<String, Value>,
    info: &'a Value,
    paths: &'a Map<String, Value>,
    security: &'a Value,
    #[serde(rename = "securityDefinitions")]
    security_definitions: &'a Value,
    swagger: &'static str,
}

fn to_json<T: serde::Serialize>(v: &T) -> Box<[u8]> {
    match serde_json::to_vec(v) {
        Ok(bytes) => bytes.into_boxed_slice(),
        Err(e) => {
            // Serialising JSON values into memory cannot fail.
            tracing::error!(error = %e, "serialising an OpenAPI document");
            Box::default()
        }
    }
}

fn v3_docs() -> &'static [V3Doc] {
    V3_DOCS.get_or_init(|| {
        v3::document_paths()
            .into_iter()
            .map(|path| V3Doc {
                path,
                doc: OnceLock::new(),
                json: OnceLock::new(),
                hash: OnceLock::new(),
            })
            .collect()
    })
}

fn v3_doc(path: &str) -> Option<&'static V3Doc> {
    let path = path.trim_matches('/');
    v3_docs().iter().find(|d| d.path == path)
}

/// The `/openapi/v3` discovery document: for every path (`api`, `api/v1`, `apis`,
/// `apis/<group>`, `apis/<group>/<version>`) the URL of its document with the content hash,
/// `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=<HEX>"}, ...}}`.
pub fn openapi_v3_index() -> &'static Value {
    V3_INDEX.get_or_init(|| {
        let mut paths = Map::new();
        for d in v3_docs() {
            let hash = openapi_v3_hash(&d.path).unwrap_or_default();
            paths.insert(
                d.path.clone(),
                json!({ "serverRelativeURL": format!("/openapi/v3/{}?hash={hash}", d.path) }),
            );
        }
        json!({ "paths": paths })
    })
}

/// The OpenAPI 3.0 document of one discovery path (`"api/v1"`, `"apis/apps/v1"`, `"api"`,
/// `"apis"`, `"apis/apps"`; surrounding slashes are ignored): its paths and the
/// `components.schemas` they reference. None for a path the server does not serve.
/// A server only sending the document should use [`openapi_v3_json`].
pub fn openapi_v3_group_version(path: &str) -> Option<&'static Value> {
    let d = v3_doc(path)?;
    d.doc
        .get_or_init(|| v3::build(&d.path, definitions()))
        .as_ref()
}

/// [`openapi_v3_group_version`] serialised as compact JSON: the bytes to serve, and the
/// bytes [`openapi_v3_hash`] hashes.
pub fn openapi_v3_json(path: &str) -> Option<&'static [u8]> {
    let d = v3_doc(path)?;
    d.json
        .get_or_init(|| {
            let started = std::time::Instant::now();
            let json = match d.doc.get() {
                Some(doc) => doc.as_ref().map(to_json),
                None => v3::build(&d.path, definitions()).map(|doc| to_json(&doc)),
            };
            tracing::debug!(path = %d.path, elapsed = ?started.elapsed(), "built OpenAPI v3 document");
            json
        })
        .as_deref()
}

/// The content hash of the v3 document of `path`: SHA-256 of [`openapi_v3_json`],
/// upper-case hex. It changes only when the document does, so responses to `?hash=<this>`
/// can be cached immutably.
pub fn openapi_v3_hash(path: &str) -> Option<&'static str> {
    let d = v3_doc(path)?;
    let json = openapi_v3_json(path)?;
    Some(
        d.hash
            .get_or_init(|| hex::encode_upper(Sha256::digest(json))),
    )
}

#[cfg(test)]
mod tests;
