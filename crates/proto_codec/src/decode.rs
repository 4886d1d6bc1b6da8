//! Decoding messages to the JSON Go's `encoding/json` writes for the same decoded Go value.
//!
//! Kubernetes' gogo-generated marshallers write every non-pointer field, zero or not, so the
//! wire alone cannot tell "unset" from "zero": the table's per-field Go shape decides
//! (`omitempty` zero values are dropped, pointers that are present are kept even when zero,
//! non-pointer structs are always written, fields without `omitempty` are always written).

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::schema::{
    self, Field, Kind, Message, Special, INLINE, MAP, OMITEMPTY, OMITZERO, PTR, REP,
};
use crate::wire::{Reader, WireValue, FIXED64, LEN, VARINT};
use crate::{ProtoError, MEDIA_TYPE};

/// Nesting limit for messages (and envelopes inside `RawExtension`s).
const MAX_DEPTH: usize = 100;

const MAGIC: &[u8] = b"k8s\0";

/// Decodes a `k8s\0` + `runtime.Unknown` envelope.
pub(crate) fn object(body: &[u8], depth: usize) -> Result<Value, ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError::TooDeep);
    }
    let rest = body.strip_prefix(MAGIC).ok_or(ProtoError::BadMagic)?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    let mut content_encoding = String::new();
    let mut content_type = String::new();
    let mut reader = Reader::new(rest);
    while let Some((number, value)) = reader.next_field()? {
        let field = match number {
            1 => "typeMeta",
            2 => "raw",
            3 => "contentEncoding",
            4 => "contentType",
            _ => continue,
        };
        let WireValue::Len(bytes) = value else {
            return Err(wrong_wire_type("runtime.Unknown", field, LEN, value));
        };
        match number {
            1 => {
                let mut type_meta = Reader::new(bytes);
                while let Some((number, value)) = type_meta.next_field()? {
                    let target = match number {
                        1 => &mut api_version,
                        2 => &mut kind,
                        _ => continue,
                    };
                    let WireValue::Len(s) = value else {
                        return Err(wrong_wire_type("runtime.TypeMeta", "", LEN, value));
                    };
                    *target = lossy(s);
                }
            }
            2 => raw = bytes,
            3 => content_encoding = lossy(bytes),
            _ => content_type = lossy(bytes),
        }
    }
    if !content_encoding.is_empty() {
        return Err(ProtoError::UnsupportedContentEncoding(content_encoding));
    }
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    let object = match media_type {
        "" | MEDIA_TYPE => {
            let index =
                schema::root(&api_version, &kind).ok_or_else(|| ProtoError::UnknownKind {
                    api_version: api_version.clone(),
                    kind: kind.clone(),
                })?;
            message(index, raw, depth + 1)?
        }
        "application/json" => serde_json::from_slice(raw)
            .map_err(|e| ProtoError::InvalidEmbeddedJson(e.to_string()))?,
        _ => return Err(ProtoError::UnsupportedContentType(content_type)),
    };
    // TypeMeta first, as Go writes it.
    let mut out = Map::new();
    if !kind.is_empty() {
        out.insert("kind".into(), Value::String(kind));
    }
    if !api_version.is_empty() {
        out.insert("apiVersion".into(), Value::String(api_version));
    }
    match object {
        Value::Object(fields) => {
            for (k, v) in fields {
                out.entry(k).or_insert(v);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other),
    }
}

/// A field's value between reading the wire and writing JSON.
enum Slot<'a> {
    Absent,
    Scalar(Value),
    Chunks(Vec<&'a [u8]>),
    List(Vec<Value>),
    Map(Map<String, Value>),
}

/// Decodes the message `MESSAGES[index]` from `bytes` (possibly empty: the zero value).
pub(crate) fn message(index: u16, bytes: &[u8], depth: usize) -> Result<Value, ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError::TooDeep);
    }
    let msg = schema::message(index).ok_or(ProtoError::Schema(index))?;
    if let Some(special) = msg.special {
        return special_message(msg, special, bytes, depth);
    }
    let mut slots: Vec<Slot> = msg.fields.iter().map(|_| Slot::Absent).collect();
    let mut reader = Reader::new(bytes);
    while let Some((number, value)) = reader.next_field()? {
        let Some(pos) = msg.fields.iter().position(|f| f.tag == number) else {
            tracing::trace!(
                message = msg.name,
                field = number,
                "skipping unknown protobuf field"
            );
            continue;
        };
        let field = &msg.fields[pos];
        let slot = &mut slots[pos];
        if field.has(REP) {
            if !matches!(slot, Slot::List(_)) {
                *slot = Slot::List(Vec::new());
            }
            if let Slot::List(items) = slot {
                push_repeated(msg, field, value, items, depth)?;
            }
        } else if field.has(MAP) {
            let WireValue::Len(entry) = value else {
                return Err(wrong_wire_type(msg.name, field.json, LEN, value));
            };
            let (key, value) = map_entry(msg, field, entry, depth)?;
            if let Slot::Map(map) = slot {
                map.insert(key, value);
            } else {
                let mut map = Map::new();
                map.insert(key, value);
                *slot = Slot::Map(map);
            }
        } else if let Kind::M(_) = field.kind {
            let WireValue::Len(chunk) = value else {
                return Err(wrong_wire_type(msg.name, field.json, LEN, value));
            };
            // Repeated occurrences of an embedded message merge, which for the wire format
            // is the same as decoding their concatenation.
            match slot {
                Slot::Chunks(chunks) => chunks.push(chunk),
                _ => *slot = Slot::Chunks(vec![chunk]),
            }
        } else {
            *slot = Slot::Scalar(scalar(msg, field, field.kind, value)?);
        }
    }
    render(msg, slots, depth)
}

fn render(msg: &Message, slots: Vec<Slot>, depth: usize) -> Result<Value, ProtoError> {
    let mut out = Map::new();
    for (field, slot) in msg.fields.iter().zip(slots) {
        let omit = field.has(OMITEMPTY) || field.has(OMITZERO);
        if field.has(INLINE) {
            let Kind::M(index) = field.kind else {
                return Err(ProtoError::Schema(0));
            };
            let inner = match slot {
                Slot::Chunks(chunks) => message(index, &concat(chunks), depth + 1)?,
                _ => message(index, &[], depth + 1)?,
            };
            if let Value::Object(fields) = inner {
                for (k, v) in fields {
                    // The embedding struct's own fields win over promoted ones.
                    out.entry(k).or_insert(v);
                }
            }
            continue;
        }
        let value = match slot {
            Slot::List(items) if !items.is_empty() => Some(Value::Array(items)),
            Slot::Map(map) if !map.is_empty() => Some(Value::Object(map)),
            // A nil slice or map (or a nil pointer): dropped or `null`.
            Slot::List(_) | Slot::Map(_) => (!omit).then_some(Value::Null),
            _ if field.has(REP) || field.has(MAP) => (!omit).then_some(Value::Null),
            Slot::Absent if field.has(PTR) || field.kind == Kind::Y => {
                (!omit).then_some(Value::Null)
            }
            Slot::Chunks(chunks) => {
                let Kind::M(index) = field.kind else {
                    return Err(ProtoError::Schema(0));
                };
                let v = message(index, &concat(chunks), depth + 1)?;
                // omitzero on a struct is only used for metav1.Time, whose zero is `null`.
                (!(field.has(OMITZERO) && !field.has(PTR) && v.is_null())).then_some(v)
            }
            Slot::Absent => match field.kind {
                Kind::M(index) => {
                    let v = message(index, &[], depth + 1)?;
                    (!(field.has(OMITZERO) && v.is_null())).then_some(v)
                }
                kind => (!omit).then(|| zero(kind)),
            },
            Slot::Scalar(v) => {
                if field.has(PTR) {
                    Some(v)
                } else if field.kind == Kind::Y {
                    // Present bytes are a non-nil slice: omitempty drops it if empty,
                    // omitzero does not.
                    (!(field.has(OMITEMPTY) && v.as_str() == Some(""))).then_some(v)
                } else {
                    (!(omit && is_zero(&v))).then_some(v)
                }
            }
        };
        if let Some(v) = value {
            out.insert(field.json.to_string(), v);
        }
    }
    Ok(Value::Object(out))
}

fn push_repeated(
    msg: &Message,
    field: &Field,
    value: WireValue,
    items: &mut Vec<Value>,
    depth: usize,
) -> Result<(), ProtoError> {
    match (field.kind, value) {
        (Kind::M(index), WireValue::Len(bytes)) => items.push(message(index, bytes, depth + 1)?),
        (Kind::B | Kind::I32 | Kind::I64, WireValue::Len(packed)) => {
            let mut r = Reader::new(packed);
            while !r.at_end() {
                let v = r.varint()?;
                items.push(scalar(msg, field, field.kind, WireValue::Varint(v))?);
            }
        }
        (Kind::F64, WireValue::Len(packed)) => {
            if packed.len() % 8 != 0 {
                return Err(ProtoError::Truncated("packed doubles"));
            }
            for chunk in packed.chunks_exact(8) {
                let mut a = [0u8; 8];
                a.copy_from_slice(chunk);
                let v = WireValue::Fixed64(u64::from_le_bytes(a));
                items.push(scalar(msg, field, field.kind, v)?);
            }
        }
        (kind, value) => items.push(scalar(msg, field, kind, value)?),
    }
    Ok(())
}

fn map_entry(
    msg: &Message,
    field: &Field,
    entry: &[u8],
    depth: usize,
) -> Result<(String, Value), ProtoError> {
    let mut key = String::new();
    let mut value = None;
    let mut r = Reader::new(entry);
    while let Some((number, v)) = r.next_field()? {
        match number {
            1 => match v {
                WireValue::Len(s) => key = lossy(s),
                other => return Err(wrong_wire_type(msg.name, field.json, LEN, other)),
            },
            2 => value = Some(v),
            _ => {}
        }
    }
    let value = match (field.kind, value) {
        (Kind::M(index), Some(WireValue::Len(bytes))) => message(index, bytes, depth + 1)?,
        (Kind::M(index), None) => message(index, &[], depth + 1)?,
        (Kind::M(_), Some(other)) => return Err(wrong_wire_type(msg.name, field.json, LEN, other)),
        (kind, Some(v)) => scalar(msg, field, kind, v)?,
        (kind, None) => zero(kind),
    };
    Ok((key, value))
}

/// A scalar's JSON value.
fn scalar(msg: &Message, field: &Field, kind: Kind, value: WireValue) -> Result<Value, ProtoError> {
    let expected = match kind {
        Kind::S | Kind::Y | Kind::M(_) => LEN,
        Kind::B | Kind::I32 | Kind::I64 => VARINT,
        Kind::F64 => FIXED64,
    };
    Ok(match (kind, value) {
        (Kind::S, WireValue::Len(b)) => Value::String(lossy(b)),
        (Kind::Y, WireValue::Len(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (Kind::B, WireValue::Varint(v)) => Value::Bool(v != 0),
        // Protobuf int32 is the low 32 bits of the varint (negatives are sign-extended).
        (Kind::I32, WireValue::Varint(v)) => Value::from(v as i32),
        (Kind::I64, WireValue::Varint(v)) => Value::from(v as i64),
        (Kind::F64, WireValue::Fixed64(bits)) => {
            let f = f64::from_bits(bits);
            Value::Number(Number::from_f64(f).ok_or_else(|| ProtoError::Malformed {
                message: msg.name,
                field: field.json,
                reason: format!("{f} has no JSON form"),
            })?)
        }
        (_, value) => return Err(wrong_wire_type(msg.name, field.json, expected, value)),
    })
}

fn zero(kind: Kind) -> Value {
    match kind {
        Kind::S | Kind::Y => Value::String(String::new()),
        Kind::B => Value::Bool(false),
        Kind::I32 | Kind::I64 => Value::from(0),
        Kind::F64 => Value::from(0.0),
        Kind::M(_) => Value::Null,
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Reads the varint / length-delimited fields of a small fixed message.
struct SmallFields<'a> {
    varints: [Option<u64>; 4],
    bytes: [Option<&'a [u8]>; 4],
}

fn small_fields<'a>(msg: &Message, bytes: &'a [u8]) -> Result<SmallFields<'a>, ProtoError> {
    let mut out = SmallFields {
        varints: [None; 4],
        bytes: [None; 4],
    };
    let mut r = Reader::new(bytes);
    while let Some((number, value)) = r.next_field()? {
        let Some(i) = usize::try_from(number).ok().filter(|&i| i < 4) else {
            continue;
        };
        match value {
            WireValue::Varint(v) => out.varints[i] = Some(v),
            WireValue::Len(b) => out.bytes[i] = Some(b),
            other => {
                return Err(ProtoError::WrongWireType {
                    message: msg.name,
                    field: "",
                    expected: VARINT,
                    found: other.wire_type(),
                })
            }
        }
    }
    Ok(out)
}

fn special_message(
    msg: &Message,
    special: Special,
    bytes: &[u8],
    depth: usize,
) -> Result<Value, ProtoError> {
    let malformed = |reason: String| ProtoError::Malformed {
        message: msg.name,
        field: "",
        reason,
    };
    if special == Special::Items {
        let mut items = Vec::new();
        let mut r = Reader::new(bytes);
        while let Some((number, value)) = r.next_field()? {
            if let Some(field) = msg.field(number) {
                push_repeated(msg, field, value, &mut items, depth)?;
            }
        }
        return Ok(if items.is_empty() {
            Value::Null
        } else {
            Value::Array(items)
        });
    }
    let fields = small_fields(msg, bytes)?;
    Ok(match special {
        Special::Time | Special::MicroTime => {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            let seconds = fields.varints[1].unwrap_or(0) as i64;
            let (nanos, digits) = if special == Special::Time {
                (0, 0)
            } else {
                (i64::from(fields.varints[2].unwrap_or(0) as i32), 6)
            };
            match crate::special::format_time(seconds, nanos, digits).map_err(malformed)? {
                Some(s) => Value::String(s),
                None => Value::Null,
            }
        }
        Special::Duration => Value::String(crate::special::format_duration(
            fields.varints[1].unwrap_or(0) as i64,
        )),
        Special::Quantity => match fields.bytes[1] {
            Some(s) if !s.is_empty() => Value::String(lossy(s)),
            _ => Value::String("0".into()),
        },
        Special::IntOrString => match fields.varints[1].unwrap_or(0) {
            0 => Value::from(fields.varints[2].unwrap_or(0) as i32),
            1 => Value::String(fields.bytes[3].map(lossy).unwrap_or_default()),
            other => return Err(malformed(format!("IntOrString type {other}"))),
        },
        Special::EmbeddedJson => match fields.bytes[1] {
            None | Some([]) => Value::Null,
            Some(raw) if raw.starts_with(MAGIC) => object(raw, depth + 1)?,
            Some(raw) => serde_json::from_slice(raw)
                .map_err(|e| ProtoError::InvalidEmbeddedJson(e.to_string()))?,
        },
        Special::Items => Value::Null,
    })
}

fn concat(chunks: Vec<&[u8]>) -> Vec<u8> {
    chunks.concat()
}

fn lossy(b: &[u8]) -> String {
    // Go's JSON encoder writes invalid UTF-8 as U+FFFD, as this does.
    String::from_utf8_lossy(b).into_owned()
}

fn wrong_wire_type(
    message: &'static str,
    field: &'static str,
    expected: u8,
    found: WireValue,
) -> ProtoError {
    ProtoError::WrongWireType {
        message,
        field,
        expected,
        found: found.wire_type(),
    }
}
