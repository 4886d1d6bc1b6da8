//! object_patch: the three patch formats the Kubernetes API server accepts on `PATCH`, applied
//! to objects held as `serde_json::Value`:
//!
//! * `application/json-patch+json` — RFC 6902 JSON patch ([`apply_json_patch`]);
//! * `application/merge-patch+json` — RFC 7386 JSON merge patch ([`apply_merge_patch`]);
//! * `application/strategic-merge-patch+json` — Kubernetes' strategic merge patch
//!   ([`apply_strategic_merge_patch`]), which `kubectl apply`, `kubectl set image`,
//!   `kubectl edit`, `kubectl label/annotate` and `kubectl rollout` send. It needs the patch
//!   metadata (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`) of the object's
//!   OpenAPI schema, read through a [`SchemaView`].
//!
//! Errors ([`PatchError`]) carry Kubernetes-style messages and the HTTP status to answer with.

mod error;
mod json;
mod schema;
mod strategic;

use serde_json::Value;

pub use error::PatchError;
pub use json::{apply_json_patch, apply_merge_patch, MAX_JSON_PATCH_OPERATIONS};
pub use schema::SchemaView;
pub use strategic::apply_strategic_merge_patch;

/// The patch formats selected by the request's `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
}

impl PatchType {
    /// Maps a `Content-Type` header value to a patch type, ignoring parameters such as
    /// `; charset=utf-8` and case. Server-side apply (`application/apply-patch+yaml`) and
    /// anything else give `None`.
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let media = ct.split(';').next().unwrap_or_default().trim();
        [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge]
            .into_iter()
            .find(|t| media.eq_ignore_ascii_case(t.content_type()))
    }

    /// The media type of this patch format.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
        }
    }
}

/// Applies a patch of type `kind` to `doc`. `schema` and `root_definition` (the OpenAPI
/// definition name of `doc`, e.g. `io.k8s.api.apps.v1.Deployment`) are only used by strategic
/// merge patches.
pub fn apply(
    kind: PatchType,
    doc: &Value,
    patch: &Value,
    schema: &SchemaView,
    root_definition: &str,
) -> Result<Value, PatchError> {
    match kind {
        PatchType::Json => apply_json_patch(doc, patch),
        PatchType::Merge => apply_merge_patch(doc, patch),
        PatchType::StrategicMerge => {
            apply_strategic_merge_patch(doc, patch, schema, root_definition)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type("application/json-patch+json"),
            Some(PatchType::Json)
        );
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type(" Application/Strategic-Merge-Patch+JSON "),
            Some(PatchType::StrategicMerge)
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml"),
            None
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
        assert_eq!(PatchType::from_content_type(""), None);
    }

    #[test]
    fn apply_dispatches() {
        let defs = serde_json::Map::new();
        let view = SchemaView::new(&defs);
        let doc = json!({"a": {"b": 1, "c": [1, 2]}});
        let merged = apply(
            PatchType::Merge,
            &doc,
            &json!({"a": {"b": null}}),
            &view,
            "x",
        )
        .unwrap();
        assert_eq!(merged, json!({"a": {"c": [1, 2]}}));
        let smp = apply(
            PatchType::StrategicMerge,
            &doc,
            &json!({"a": {"c": [3]}}),
            &view,
            "x",
        )
        .unwrap();
        assert_eq!(smp, json!({"a": {"b": 1, "c": [3]}}));
        let jp = apply(
            PatchType::Json,
            &doc,
            &json!([{"op": "remove", "path": "/a/c/0"}]),
            &view,
            "x",
        )
        .unwrap();
        assert_eq!(jp, json!({"a": {"b": 1, "c": [2]}}));
    }
}
