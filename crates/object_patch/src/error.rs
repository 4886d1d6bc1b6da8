//! The error type shared by all patch kinds.
//!
//! Messages follow the wording the Kubernetes API server uses for the same failures, so clients
//! (kubectl, client libraries, humans) see familiar text in the `Status` body.

/// Why a patch could not be applied.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PatchError {
    /// The JSON patch body is not a list of well-formed RFC 6902 operations.
    #[error("invalid JSON patch: {0}")]
    InvalidJsonPatch(String),
    /// More operations than the API server accepts in one JSON patch.
    #[error("The allowed maximum operations in a JSON patch is {max}, got: {got}")]
    TooManyOperations {
        /// The limit.
        max: usize,
        /// Operations in the request.
        got: usize,
    },
    /// A JSON patch `test` operation found a different value.
    #[error("testing value {path} failed: test failed")]
    TestFailed {
        /// The JSON pointer that was tested.
        path: String,
    },
    /// A JSON patch operation refers to a location that does not exist.
    #[error("{op} operation does not apply: {detail}: missing value")]
    MissingPath {
        /// The operation name (`add`, `remove`, ...).
        op: &'static str,
        /// What is missing, e.g. `doc is missing path: "/spec/foo"`.
        detail: String,
    },
    /// Any other failure while applying a JSON patch operation.
    #[error("{op} operation does not apply: {detail}")]
    JsonPatchOperation {
        /// The operation name.
        op: &'static str,
        /// Explanation.
        detail: String,
    },
    /// A merge patch (RFC 7386) body that is not a JSON object.
    #[error("Invalid JSON Patch: a merge patch must be a JSON object, got {0}")]
    InvalidMergePatch(&'static str),
    /// The document or the strategic merge patch is not a JSON object.
    #[error("invalid JSON document")]
    BadJsonDocument,
    /// A `$patch` directive with a value other than `replace`/`delete` (or `merge` in a list).
    #[error("unknown patch type: {directive} in map: {map}")]
    UnknownPatchDirective {
        /// The offending `$patch` value.
        directive: String,
        /// The map that carried it.
        map: String,
    },
    /// `$patch: merge` used as a list element.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    /// A list element lacks the list's merge key.
    #[error("map: {map} does not contain declared merge key: {key}")]
    MissingMergeKey {
        /// The element.
        map: String,
        /// The merge key declared for the list.
        key: String,
    },
    /// A list declared mergeable contains maps but has no merge key.
    #[error("cannot merge lists without merge key for type map")]
    NoMergeKey,
    /// Patch and live value do not have a usable shape.
    #[error("expected a {expected}, but received a {actual}")]
    BadArgType {
        /// Expected JSON kind.
        expected: &'static str,
        /// Received JSON kind.
        actual: &'static str,
    },
    /// Elements of a merged list are of different JSON kinds.
    #[error("list element types are not identical: {0}")]
    MixedListElements(String),
    /// Lists of lists cannot be merged.
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// `$deleteFromPrimitiveList/<field>` is malformed.
    #[error("invalid patch format of primitive list")]
    BadPrimitiveListFormat,
    /// `$retainKeys` is malformed or the patch sets keys it does not list.
    #[error("invalid patch format of retainKeys")]
    BadRetainKeysFormat,
    /// `$setElementOrder/<field>` is malformed.
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrderFormat,
    /// The patch list and its `$setElementOrder` list disagree on the order of elements.
    #[error("The order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}\n")]
    SetElementOrderMismatch {
        /// The patch list.
        patch: String,
        /// The `$setElementOrder` list.
        order: String,
    },
}

impl PatchError {
    /// The HTTP status the API server should answer with: 422 (Unprocessable Entity) when a
    /// well-formed patch cannot be applied to this object, 413 for oversized JSON patches, and
    /// 400 (Bad Request) for malformed patch documents.
    pub fn http_status(&self) -> u16 {
        match self {
            PatchError::TestFailed { .. }
            | PatchError::MissingPath { .. }
            | PatchError::JsonPatchOperation { .. }
            | PatchError::ListOfLists => 422,
            PatchError::TooManyOperations { .. } => 413,
            _ => 400,
        }
    }
}

/// Short JSON kind name of a value, as used in error messages.
pub(crate) fn kind_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "slice",
        serde_json::Value::Object(_) => "map",
    }
}
