//! resource_tables: server-side Table printing for berth's Kubernetes-compatible API.
//!
//! `kubectl get` asks for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` and prints
//! the meta.k8s.io/v1 Table the server returns as-is. This crate builds those Tables from
//! stored JSON objects with the columns and cell logic of a real Kubernetes API server:
//! pods (with kubectl's status reasons and "3 (5m ago)" restarts), nodes, namespaces,
//! services, endpoints, secrets, configmaps, events, service accounts, deployments,
//! replica sets, daemon sets, stateful sets, controller revisions, jobs, cron jobs, leases
//! and endpoint slices. Other resources get the generic Name / Created At table.
//! Like the real server it always includes the `-o wide` (priority 1) columns.

mod json;
mod labels;
mod printers;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

/// The `includeObject` query parameter: what each row's `object` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object (`"object": null`).
    None,
    /// A meta.k8s.io/v1 PartialObjectMetadata with the object's metadata (the default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the query parameter value (`None`, `Metadata`, `Object`); an absent or empty
    /// value is the default. Unknown values give None (the server answers 400).
    pub fn from_query(value: Option<&str>) -> Option<IncludeObject> {
        match value.unwrap_or("") {
            "" | "Metadata" => Some(IncludeObject::Metadata),
            "None" => Some(IncludeObject::None),
            "Object" => Some(IncludeObject::Object),
            _ => None,
        }
    }
}

/// Builds the Table for `objects` of resource `plural` in API group `group` ("" for core).
/// `metadata` is left empty for the caller to fill (resourceVersion, continue).
pub fn table(
    group: &str,
    plural: &str,
    objects: &[Value],
    include: IncludeObject,
    now: DateTime<Utc>,
) -> Value {
    table_with_options(group, plural, objects, include, false, now)
}

/// Like [`table`]; with `no_headers` the `columnDefinitions` are null, as for the
/// `noHeaders` table option and for watch events after the first.
pub fn table_with_options(
    group: &str,
    plural: &str,
    objects: &[Value],
    include: IncludeObject,
    no_headers: bool,
    now: DateTime<Utc>,
) -> Value {
    let (cols, printer): (&[printers::Col], printers::Printer) = printers::lookup(group, plural)
        .unwrap_or((printers::DEFAULT_COLS, printers::print_default));
    let columns = if no_headers {
        Value::Null
    } else {
        Value::Array(
            cols.iter()
                .map(|c| {
                    json!({
                        "name": c.name,
                        "type": c.ty,
                        "format": c.format,
                        "description": c.description,
                        "priority": c.priority,
                    })
                })
                .collect(),
        )
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let row = printer(obj, now);
            let mut r = Map::new();
            r.insert("cells".into(), Value::Array(row.cells));
            if let Some(c) = row.conditions {
                r.insert("conditions".into(), c);
            }
            r.insert("object".into(), row_object(obj, include));
            Value::Object(r)
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// The column names (as kubectl prints them, upper-cased) of a resource's table, wide
/// columns included. Useful for tests and diagnostics.
pub fn column_names(group: &str, plural: &str) -> Vec<String> {
    let cols = printers::lookup(group, plural)
        .map(|(c, _)| c)
        .unwrap_or(printers::DEFAULT_COLS);
    cols.iter().map(|c| c.name.to_uppercase()).collect()
}

fn row_object(obj: &Value, include: IncludeObject) -> Value {
    match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Object => obj.clone(),
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    }
}

/// Kubernetes' `duration.HumanDuration`: a short age with two or three significant figures
/// ("45s", "5m30s", "3h", "2d3h", "4y"). More than a second in the future is "<invalid>".
pub fn human_duration(d: Duration) -> String {
    let seconds = d.num_seconds(); // truncated toward zero, like Go's int(d.Seconds())
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d.num_minutes();
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d.num_hours();
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests;
