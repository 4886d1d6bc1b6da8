//! Label maps and label selectors rendered as Kubernetes renders them.

use serde_json::{Map, Value};

/// `k1=v1,k2=v2` with the `k=v` strings sorted; `<none>` when empty.
pub(crate) fn format_labels(map: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<String> = map
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    pairs.sort();
    pairs.join(",")
}

/// Why a selector could not be converted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct InvalidSelector;

/// A metav1.LabelSelector rendered as a selector string (`a=b,c in (d,e),!f`).
/// Absent and empty selectors both render as "".
pub(crate) fn selector_string(sel: Option<&Value>) -> Result<String, InvalidSelector> {
    let Some(sel) = sel.filter(|v| !v.is_null()) else {
        return Ok(String::new());
    };
    let sel = sel.as_object().ok_or(InvalidSelector)?;
    // (key, rendered requirement)
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(ml) = sel.get("matchLabels").filter(|v| !v.is_null()) {
        for (k, v) in ml.as_object().ok_or(InvalidSelector)? {
            let v = v.as_str().ok_or(InvalidSelector)?;
            reqs.push((k.clone(), format!("{k}={v}")));
        }
    }
    if let Some(me) = sel.get("matchExpressions").filter(|v| !v.is_null()) {
        for e in me.as_array().ok_or(InvalidSelector)? {
            let key = e
                .get("key")
                .and_then(Value::as_str)
                .ok_or(InvalidSelector)?;
            if key.is_empty() {
                return Err(InvalidSelector);
            }
            let op = e
                .get("operator")
                .and_then(Value::as_str)
                .ok_or(InvalidSelector)?;
            let mut values: Vec<&str> = match e.get("values") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| v.as_str().ok_or(InvalidSelector))
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(InvalidSelector),
            };
            values.sort_unstable();
            let rendered = match op {
                "In" | "NotIn" => {
                    if values.is_empty() {
                        return Err(InvalidSelector);
                    }
                    let word = if op == "In" { "in" } else { "notin" };
                    format!("{key} {word} ({})", values.join(","))
                }
                "Exists" | "DoesNotExist" => {
                    if !values.is_empty() {
                        return Err(InvalidSelector);
                    }
                    if op == "Exists" {
                        key.to_string()
                    } else {
                        format!("!{key}")
                    }
                }
                _ => return Err(InvalidSelector),
            };
            reqs.push((key.to_string(), rendered));
        }
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs
        .into_iter()
        .map(|(_, r)| r)
        .collect::<Vec<_>>()
        .join(","))
}

/// metav1.FormatLabelSelector: the selector string, `<none>` when empty, `<error>` when
/// invalid.
pub(crate) fn format_label_selector(sel: Option<&Value>) -> String {
    match selector_string(sel) {
        Ok(s) if s.is_empty() => "<none>".to_string(),
        Ok(s) => s,
        Err(InvalidSelector) => "<error>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_sorted_as_pairs() {
        let m = json!({"a": "1", "a-b": "2", "z": ""});
        // "a-b=2" sorts before "a=1" because '-' < '='.
        assert_eq!(format_labels(m.as_object()), "a-b=2,a=1,z=");
        assert_eq!(format_labels(None), "<none>");
        assert_eq!(format_labels(json!({}).as_object()), "<none>");
    }

    #[test]
    fn selectors() {
        let s = json!({
            "matchLabels": {"app": "web", "tier": "fe"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                {"key": "zone", "operator": "NotIn", "values": ["b"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "gpu", "operator": "Exists", "values": []}
            ]
        });
        assert_eq!(
            selector_string(Some(&s)).unwrap(),
            "app=web,!canary,env in (dev,prod),gpu,tier=fe,zone notin (b)"
        );
        assert_eq!(selector_string(None).unwrap(), "");
        assert_eq!(format_label_selector(None), "<none>");
        assert_eq!(format_label_selector(Some(&json!({}))), "<none>");
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]});
        assert_eq!(format_label_selector(Some(&bad)), "<error>");
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]});
        assert!(selector_string(Some(&bad)).is_err());
    }
}
