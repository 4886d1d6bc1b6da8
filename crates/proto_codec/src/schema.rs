//! The shape of the generated schema table (`schema_table.rs`) and lookups into it.

use crate::schema_table::{MESSAGES, ROOTS};

/// A field is a repeated field (a Go slice); the kind is the element's.
pub(crate) const REP: u8 = 1;
/// A field is a `map<string, V>` (repeated `{key = 1, value = 2}` entries); the kind is V's.
pub(crate) const MAP: u8 = 2;
/// The Go field is a pointer: absent on the wire means nil, present means set (even to zero).
pub(crate) const PTR: u8 = 4;
/// The Go JSON tag has `omitempty`.
pub(crate) const OMITEMPTY: u8 = 8;
/// The Go JSON tag has `omitzero`.
pub(crate) const OMITZERO: u8 = 16;
/// An embedded Go struct with `json:",inline"`: its fields are merged into the parent object.
pub(crate) const INLINE: u8 = 32;

/// The protobuf/JSON type of a field (or of a repeated field's elements, a map's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `string`.
    S,
    /// `bool`.
    B,
    /// `int32`.
    I32,
    /// `int64`.
    I64,
    /// `double` (no message of the current roots has one).
    #[allow(dead_code)]
    F64,
    /// `bytes`, base64 in JSON.
    Y,
    /// An embedded message: index into [`MESSAGES`].
    M(u16),
}

/// Messages whose JSON form is not an object of their fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Special {
    /// `metav1.Time` `{seconds = 1, nanos = 2}`: RFC 3339 with seconds, null when zero.
    Time,
    /// `metav1.MicroTime`: RFC 3339 with 6 fractional digits, null when zero.
    MicroTime,
    /// `metav1.Duration` `{duration = 1}` (nanoseconds): a Go duration string (not reachable
    /// from the current roots).
    #[allow(dead_code)]
    Duration,
    /// `runtime.RawExtension` / `metav1.FieldsV1` `{raw = 1}`: the embedded JSON document.
    EmbeddedJson,
    /// `resource.Quantity` `{string = 1}`: the string.
    Quantity,
    /// `intstr.IntOrString` `{type = 1, intVal = 2, strVal = 3}`: a number or a string.
    IntOrString,
    /// A Go named slice (`type ExtraValue []string`) wrapped as `{repeated items = 1}`.
    Items,
}

#[derive(Debug)]
pub(crate) struct Field {
    pub tag: u32,
    pub json: &'static str,
    pub kind: Kind,
    pub flags: u8,
}

impl Field {
    pub(crate) fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Table entry constructor, kept short because the table is generated code.
pub(crate) const fn f(tag: u32, json: &'static str, kind: Kind, flags: u8) -> Field {
    Field {
        tag,
        json,
        kind,
        flags,
    }
}

#[derive(Debug)]
pub(crate) struct Message {
    /// Kubernetes definition name, e.g. `io.k8s.api.core.v1.ConfigMap`.
    pub name: &'static str,
    pub special: Option<Special>,
    /// In Go declaration order (the order Go's JSON encoder writes them).
    pub fields: &'static [Field],
}

impl Message {
    pub(crate) fn field(&self, tag: u32) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.tag == tag)
    }
}

/// A top-level kind and its message.
#[derive(Debug)]
pub(crate) struct Root {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub message: u16,
}

pub(crate) fn message(index: u16) -> Option<&'static Message> {
    MESSAGES.get(usize::from(index))
}

pub(crate) fn message_by_name(name: &str) -> Option<u16> {
    let index = MESSAGES.binary_search_by(|m| m.name.cmp(name)).ok()?;
    u16::try_from(index).ok()
}

/// The message of a top-level kind. `DeleteOptions` and `Status` are accepted in any group
/// version, as Kubernetes registers them in all of them.
pub(crate) fn root(api_version: &str, kind: &str) -> Option<u16> {
    let (group, version) = match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    };
    if let Some(r) = ROOTS
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
    {
        return Some(r.message);
    }
    if kind == "DeleteOptions" || kind == "Status" {
        return ROOTS
            .iter()
            .find(|r| r.group == "meta.k8s.io" && r.kind == kind)
            .map(|r| r.message);
    }
    None
}

/// Every top-level kind of the table: (group, version, kind, definition name).
pub(crate) fn roots(
) -> impl Iterator<Item = (&'static str, &'static str, &'static str, &'static str)> {
    ROOTS
        .iter()
        .filter_map(|r| message(r.message).map(|m| (r.group, r.version, r.kind, m.name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_references_are_valid() {
        for pair in MESSAGES.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} >= {}",
                pair[0].name,
                pair[1].name
            );
        }
        for m in MESSAGES {
            for field in m.fields {
                if let Kind::M(i) = field.kind {
                    assert!(message(i).is_some(), "{}.{}", m.name, field.json);
                }
                assert!(
                    !(field.has(REP) && field.has(MAP)),
                    "{}.{}",
                    m.name,
                    field.json
                );
            }
        }
        for r in ROOTS {
            assert!(message(r.message).is_some());
        }
    }

    #[test]
    fn roots_resolve() {
        let name = |i: Option<u16>| i.and_then(message).map(|m| m.name);
        assert_eq!(
            name(root("v1", "ConfigMap")),
            Some("io.k8s.api.core.v1.ConfigMap")
        );
        assert_eq!(
            name(root("apps/v1", "Deployment")),
            Some("io.k8s.api.apps.v1.Deployment")
        );
        assert_eq!(
            name(root("apps/v1", "DeleteOptions")),
            Some("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")
        );
        assert_eq!(
            name(root("v1", "Status")),
            Some("io.k8s.apimachinery.pkg.apis.meta.v1.Status")
        );
        assert_eq!(root("apps/v1", "ConfigMap"), None);
        assert_eq!(root("v1", "Nope"), None);
        assert_eq!(
            message_by_name("io.k8s.api.core.v1.Pod")
                .and_then(message)
                .map(|m| m.name),
            Some("io.k8s.api.core.v1.Pod")
        );
        assert_eq!(message_by_name("io.k8s.api.core.v1.Nope"), None);
    }
}

/// Cross-checks the table against the OpenAPI definitions berth serves (Kubernetes 1.33):
/// every OpenAPI property of a message the table has is in the table under the same JSON
/// name, and the table's extra names are newer fields.
#[cfg(test)]
mod openapi_tests {
    use std::collections::BTreeSet;

    use super::*;

    fn json_names(msg: &Message, out: &mut BTreeSet<&'static str>) {
        for field in msg.fields {
            match (field.has(INLINE), field.kind) {
                (true, Kind::M(i)) => json_names(message(i).expect("index"), out),
                _ => {
                    out.insert(field.json);
                }
            }
        }
    }

    #[test]
    fn json_names_match_openapi_properties() {
        let defs = api_schema::definitions();
        let mut missing = Vec::new();
        let mut extra = Vec::new();
        let mut checked = 0;
        for msg in MESSAGES.iter().filter(|m| m.special.is_none()) {
            let Some(props) = defs
                .get(msg.name)
                .and_then(|d| d.get("properties"))
                .and_then(|p| p.as_object())
            else {
                continue;
            };
            checked += 1;
            let mut names = BTreeSet::new();
            json_names(msg, &mut names);
            for p in props.keys() {
                if p != "apiVersion" && p != "kind" && !names.contains(p.as_str()) {
                    missing.push(format!("{}.{p}", msg.name));
                }
            }
            for n in names {
                if !props.contains_key(n) {
                    extra.push(format!("{}.{n}", msg.name));
                }
            }
        }
        assert!(checked > 100, "only {checked} definitions checked");
        assert!(
            missing.is_empty(),
            "OpenAPI properties missing from the table: {missing:?}"
        );
        eprintln!("table fields newer than the served OpenAPI: {extra:?}");
    }
}
