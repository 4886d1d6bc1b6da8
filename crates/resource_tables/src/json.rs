//! Tolerant accessors over stored objects: a missing or mistyped field reads as absent.

use chrono::{DateTime, Datelike, Utc};
use serde_json::{Map, Value};

/// The value at `path` (object keys), if present and not null.
pub(crate) fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for k in path {
        cur = cur.as_object()?.get(*k)?;
    }
    if cur.is_null() {
        None
    } else {
        Some(cur)
    }
}

/// The string at `path`, or "" when absent.
pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

/// The integer at `path`, if present.
pub(crate) fn int_opt(v: &Value, path: &[&str]) -> Option<i64> {
    at(v, path).and_then(Value::as_i64)
}

/// The integer at `path`, or 0.
pub(crate) fn int_at(v: &Value, path: &[&str]) -> i64 {
    int_opt(v, path).unwrap_or(0)
}

/// The boolean at `path`, or false.
pub(crate) fn bool_at(v: &Value, path: &[&str]) -> bool {
    at(v, path).and_then(Value::as_bool).unwrap_or(false)
}

/// The array at `path`, or empty.
pub(crate) fn arr_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The object at `path`, if present.
pub(crate) fn obj_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    at(v, path).and_then(Value::as_object)
}

/// Number of entries of the object at `path` (0 if absent).
pub(crate) fn len_obj(v: &Value, path: &[&str]) -> i64 {
    obj_at(v, path).map(|m| m.len() as i64).unwrap_or(0)
}

/// A timestamp at `path` (RFC 3339, as metav1.Time and MicroTime serialize). Absent,
/// unparsable or Go's zero time all read as None, like `Time.IsZero()`.
pub(crate) fn time_at(v: &Value, path: &[&str]) -> Option<DateTime<Utc>> {
    let s = at(v, path)?.as_str()?;
    let t = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
    if t.year() <= 1 && t.timestamp() <= -62_135_596_800 {
        return None;
    }
    Some(t)
}
