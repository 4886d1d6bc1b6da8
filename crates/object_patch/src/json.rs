//! RFC 6902 JSON patch and RFC 7386 JSON merge patch.

use serde_json::Value;

use crate::error::{kind_name, PatchError};

/// The most operations a single JSON patch may carry (the Kubernetes API server's limit).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Applies an RFC 6902 JSON patch (a list of operations) to `doc`, returning the new document.
///
/// The operations are applied in order; if one fails, nothing is returned but the error.
pub fn apply_json_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Array(raw_ops) = patch else {
        return Err(PatchError::InvalidJsonPatch(format!(
            "expected a list of operations, got a {}",
            kind_name(patch)
        )));
    };
    if raw_ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            max: MAX_JSON_PATCH_OPERATIONS,
            got: raw_ops.len(),
        });
    }
    let mut ops = Vec::with_capacity(raw_ops.len());
    for (i, raw) in raw_ops.iter().enumerate() {
        let op: json_patch::PatchOperation = serde_json::from_value(raw.clone())
            .map_err(|e| PatchError::InvalidJsonPatch(format!("operation {i}: {e}")))?;
        ops.push(op);
    }
    let mut out = doc.clone();
    // `patch_unsafe` leaves a half-patched document on failure; we only ever hand back `out` on
    // success, so there is nothing to undo.
    json_patch::patch_unsafe(&mut out, &ops).map_err(|e| {
        tracing::debug!(operation = e.operation, error = %e, "JSON patch operation failed");
        translate(&ops, &e)
    })?;
    Ok(out)
}

/// Rewrites a `json_patch` failure with the API server's wording.
fn translate(ops: &[json_patch::PatchOperation], e: &json_patch::PatchError) -> PatchError {
    use json_patch::{PatchErrorKind as K, PatchOperation as Op};
    let path = e.path.to_string();
    let Some(op) = ops.get(e.operation) else {
        return PatchError::JsonPatchOperation {
            op: "patch",
            detail: e.to_string(),
        };
    };
    let name = match op {
        Op::Add(_) => "add",
        Op::Remove(_) => "remove",
        Op::Replace(_) => "replace",
        Op::Move(_) => "move",
        Op::Copy(_) => "copy",
        Op::Test(_) => "test",
    };
    let from = match op {
        Op::Move(m) => m.from.to_string(),
        Op::Copy(c) => c.from.to_string(),
        _ => String::new(),
    };
    match &e.kind {
        K::TestFailed => PatchError::TestFailed { path },
        K::InvalidFromPointer => PatchError::MissingPath {
            op: name,
            detail: format!("doc is missing from path: {from:?}"),
        },
        K::InvalidPointer => {
            let detail = match op {
                Op::Replace(_) => format!("doc is missing key: {path}"),
                Op::Test(_) => format!("is missing path: {path}"),
                Op::Move(_) | Op::Copy(_) => format!("doc is missing destination path: {path:?}"),
                _ => format!("doc is missing path: {path:?}"),
            };
            PatchError::MissingPath { op: name, detail }
        }
        K::CannotMoveInsideItself => PatchError::JsonPatchOperation {
            op: name,
            detail: format!("cannot move {from:?} into its own child {path:?}"),
        },
        other => PatchError::JsonPatchOperation {
            op: name,
            detail: format!("{other} ({path})"),
        },
    }
}

/// Applies an RFC 7386 JSON merge patch: objects merge recursively, `null` deletes a key, any
/// other value (lists included) replaces what was there.
///
/// The patch must be an object: a merge patch that replaces a whole API object by a scalar or a
/// list can never yield a valid object, so it is rejected up front.
pub fn apply_merge_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    if !patch.is_object() {
        return Err(PatchError::InvalidMergePatch(kind_name(patch)));
    }
    let mut out = doc.clone();
    json_patch::merge(&mut out, patch);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy() -> Value {
        json!({
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "web", "image": "nginx:1"},
                {"name": "log", "image": "busybox"}
            ]}}}
        })
    }

    #[test]
    fn add_remove_replace_test_ops() {
        let patch = json!([
            {"op": "test", "path": "/spec/replicas", "value": 2},
            {"op": "replace", "path": "/spec/replicas", "value": 5},
            {"op": "add", "path": "/metadata/labels/new", "value": "x"},
            {"op": "remove", "path": "/metadata/labels/tier"},
            {"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "c3"}},
            {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:2"},
            {"op": "copy", "from": "/metadata/name", "path": "/metadata/labels/copied"},
            {"op": "move", "from": "/metadata/labels/new", "path": "/metadata/labels/moved"}
        ]);
        let out = apply_json_patch(&deploy(), &patch).unwrap();
        assert_eq!(out["spec"]["replicas"], json!(5));
        assert_eq!(
            out["metadata"]["labels"],
            json!({"app": "web", "moved": "x", "copied": "web"})
        );
        let cs = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(cs.len(), 3);
        assert_eq!(cs[0]["image"], json!("nginx:2"));
        assert_eq!(cs[2], json!({"name": "c3"}));
    }

    #[test]
    fn failing_test_op_reports_kubernetes_message_and_leaves_input_alone() {
        let doc = deploy();
        let patch = json!([
            {"op": "replace", "path": "/spec/replicas", "value": 9},
            {"op": "test", "path": "/metadata/name", "value": "other"}
        ]);
        let err = apply_json_patch(&doc, &patch).unwrap_err();
        assert_eq!(
            err,
            PatchError::TestFailed {
                path: "/metadata/name".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "testing value /metadata/name failed: test failed"
        );
        assert_eq!(err.http_status(), 422);
        assert_eq!(doc["spec"]["replicas"], json!(2));
    }

    #[test]
    fn missing_paths() {
        let err = apply_json_patch(
            &deploy(),
            &json!([{"op": "add", "path": "/spec/nope/x", "value": 1}]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "add operation does not apply: doc is missing path: \"/spec/nope/x\": missing value"
        );
        let err = apply_json_patch(&deploy(), &json!([{"op": "remove", "path": "/spec/nope"}]))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("remove operation does not apply"),
            "{err}"
        );
        let err = apply_json_patch(
            &deploy(),
            &json!([{"op": "replace", "path": "/spec/nope", "value": 1}]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "replace operation does not apply: doc is missing key: /spec/nope: missing value"
        );
        let err = apply_json_patch(
            &deploy(),
            &json!([{"op": "move", "from": "/nope", "path": "/x"}]),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("missing from path: \"/nope\""),
            "{err}"
        );
        let err = apply_json_patch(
            &deploy(),
            &json!([{"op": "remove", "path": "/spec/template/spec/containers/7"}]),
        )
        .unwrap_err();
        assert_eq!(err.http_status(), 422);
    }

    #[test]
    fn malformed_json_patches_are_bad_requests() {
        for bad in [
            json!({"op": "add"}),
            json!([{"op": "frobnicate", "path": "/a"}]),
            json!([{"op": "add", "path": "no-slash", "value": 1}]),
            json!([{"op": "add", "value": 1}]),
            json!(["add"]),
        ] {
            let err = apply_json_patch(&deploy(), &bad).unwrap_err();
            assert!(
                matches!(err, PatchError::InvalidJsonPatch(_)),
                "{bad}: {err:?}"
            );
            assert_eq!(err.http_status(), 400);
        }
    }

    #[test]
    fn too_many_operations() {
        let ops: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "/spec/replicas", "value": 2}))
            .collect();
        let err = apply_json_patch(&deploy(), &Value::Array(ops)).unwrap_err();
        assert_eq!(err.http_status(), 413);
    }

    #[test]
    fn merge_patch_null_deletes_and_lists_replace() {
        let patch = json!({
            "metadata": {"labels": {"tier": null, "new": "1"}, "annotations": {"a": "b", "gone": null}},
            "spec": {"template": {"spec": {"containers": [{"name": "only"}]}}}
        });
        let out = apply_merge_patch(&deploy(), &patch).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"app": "web", "new": "1"}));
        // a null for a key that does not exist never shows up in the result
        assert_eq!(out["metadata"]["annotations"], json!({"a": "b"}));
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "only"}])
        );
        assert_eq!(out["spec"]["replicas"], json!(2));
    }

    #[test]
    fn merge_patch_must_be_object() {
        let err = apply_merge_patch(&deploy(), &json!([1])).unwrap_err();
        assert_eq!(err, PatchError::InvalidMergePatch("slice"));
        assert_eq!(err.http_status(), 400);
    }
}
