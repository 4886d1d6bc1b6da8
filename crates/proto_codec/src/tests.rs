//! Unit tests on hand-encoded messages.

use serde_json::json;

use super::*;
use crate::wire::tests::{len_field, varint, varint_field};

/// A tiny protobuf encoder for building test messages.
#[derive(Default, Clone)]
struct Enc(Vec<u8>);

impl Enc {
    fn new() -> Self {
        Enc::default()
    }
    fn s(mut self, n: u32, s: &str) -> Self {
        len_field(n, s.as_bytes(), &mut self.0);
        self
    }
    fn b(mut self, n: u32, b: &[u8]) -> Self {
        len_field(n, b, &mut self.0);
        self
    }
    fn v(mut self, n: u32, v: u64) -> Self {
        varint_field(n, v, &mut self.0);
        self
    }
    fn m(mut self, n: u32, m: Enc) -> Self {
        len_field(n, &m.0, &mut self.0);
        self
    }
    /// A map entry `{key = 1, value = 2}` of field `n` with a string value.
    fn kv(self, n: u32, k: &str, v: &str) -> Self {
        self.m(n, Enc::new().s(1, k).s(2, v))
    }
    fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }
}

fn envelope(api_version: &str, kind: &str, raw: &Enc) -> Vec<u8> {
    let unknown = Enc::new()
        .m(1, Enc::new().s(1, api_version).s(2, kind))
        .b(2, &raw.0)
        .s(3, "")
        .s(4, "");
    let mut body = b"k8s\0".to_vec();
    body.extend_from_slice(&unknown.0);
    body
}

/// ObjectMeta as gogo writes it: every non-pointer field, zero or not.
fn meta(name: &str) -> Enc {
    Enc::new()
        .s(1, name)
        .s(2, "")
        .s(3, "")
        .s(4, "")
        .s(5, "")
        .s(6, "")
        .v(7, 0)
        .m(8, Enc::new())
}

#[test]
fn configmap_with_zero_fields_dropped() {
    let cm = Enc::new()
        .m(1, meta("c").kv(11, "app", "x"))
        .kv(2, "a", "b")
        .m(3, Enc::new().s(1, "bin").b(2, &[0, 1, 2]))
        .v(4, 0);
    let got = decode_object(&envelope("v1", "ConfigMap", &cm)).unwrap();
    assert_eq!(
        got,
        json!({
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"name": "c", "labels": {"app": "x"}},
            "data": {"a": "b"},
            "binaryData": {"bin": "AAEC"},
            "immutable": false
        })
    );
}

#[test]
fn secret_bytes_are_base64() {
    let secret = Enc::new()
        .m(1, meta("s"))
        .m(2, Enc::new().s(1, "pw").b(2, b"x"))
        .m(2, Enc::new().s(1, "empty").b(2, b""))
        .s(3, "Opaque");
    let got = decode_message("io.k8s.api.core.v1.Secret", &secret.0).unwrap();
    assert_eq!(
        got,
        json!({"metadata": {"name": "s"}, "data": {"pw": "eA==", "empty": ""}, "type": "Opaque"})
    );
}

#[test]
fn pointers_keep_zero_and_structs_are_always_written() {
    // DeploymentSpec: replicas = 1 (*int32), minReadySeconds = 5 (int32, omitempty),
    // paused = 7 (bool, omitempty), template = 3 (PodTemplateSpec, struct).
    let spec = Enc::new().v(1, 0).v(5, 0).v(7, 0);
    let got = decode_message("io.k8s.api.apps.v1.Deployment", &Enc::new().m(2, spec).0).unwrap();
    assert_eq!(
        got,
        json!({
            "metadata": {},
            "spec": {
                "replicas": 0,
                // *LabelSelector without omitempty: a nil pointer is null.
                "selector": null,
                "template": {"metadata": {}, "spec": {"containers": null}},
                "strategy": {}
            },
            "status": {}
        })
    );
    // Absent pointer: omitted.
    let got = decode_message("io.k8s.api.apps.v1.DeploymentSpec", &[]).unwrap();
    assert!(got.get("replicas").is_none(), "{got}");
}

#[test]
fn inline_structs_are_merged() {
    // Volume {name = 1, VolumeSource = 2 (inline)}; VolumeSource.emptyDir = 2.
    let vol = Enc::new()
        .s(1, "v")
        .m(2, Enc::new().m(2, Enc::new().s(1, "")));
    let got = decode_message("io.k8s.api.core.v1.Volume", &vol.0).unwrap();
    assert_eq!(got, json!({"name": "v", "emptyDir": {}}));
}

#[test]
fn int_or_string() {
    let port = |target: Enc| Enc::new().s(1, "").s(2, "TCP").v(3, 80).m(4, target);
    let get = |target: Enc| decode_message("io.k8s.api.core.v1.ServicePort", &port(target).0);
    assert_eq!(
        get(Enc::new().v(1, 0).v(2, 8080).s(3, "")).unwrap(),
        json!({"protocol": "TCP", "port": 80, "targetPort": 8080})
    );
    assert_eq!(
        get(Enc::new().v(1, 1).v(2, 0).s(3, "http")).unwrap(),
        json!({"protocol": "TCP", "port": 80, "targetPort": "http"})
    );
    // A non-pointer IntOrString is a struct: written even when zero.
    assert_eq!(
        get(Enc::new()).unwrap(),
        json!({"protocol": "TCP", "port": 80, "targetPort": 0})
    );
    assert!(matches!(
        get(Enc::new().v(1, 7)),
        Err(ProtoError::Malformed { .. })
    ));
    // Negative int32 (sign-extended varint).
    assert_eq!(
        get(Enc::new().v(2, u64::MAX)).unwrap()["targetPort"],
        json!(-1)
    );
}

#[test]
fn quantities() {
    let quantity = |s: &str| Enc::new().s(1, s);
    let req = Enc::new()
        .m(1, Enc::new().s(1, "cpu").m(2, quantity("500m")))
        .m(2, Enc::new().s(1, "memory").m(2, quantity("1Gi")))
        .m(2, Enc::new().s(1, "zero").m(2, Enc::new()));
    let got = decode_message("io.k8s.api.core.v1.ResourceRequirements", &req.0).unwrap();
    assert_eq!(
        got,
        json!({"limits": {"cpu": "500m"}, "requests": {"memory": "1Gi", "zero": "0"}})
    );
}

#[test]
fn times() {
    let time = Enc::new().v(1, 1_704_164_645).v(2, 999);
    assert_eq!(
        decode_message("io.k8s.apimachinery.pkg.apis.meta.v1.Time", &time.0).unwrap(),
        json!("2024-01-02T03:04:05Z")
    );
    assert_eq!(
        decode_message("io.k8s.apimachinery.pkg.apis.meta.v1.Time", &[]).unwrap(),
        json!(null)
    );
    let micro = Enc::new().v(1, 1_704_164_645).v(2, 123_456_789);
    assert_eq!(
        decode_message("io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime", &micro.0).unwrap(),
        json!("2024-01-02T03:04:05.123456Z")
    );
    // core/v1 Event: firstTimestamp (Time, omitempty struct: null when zero),
    // eventTime (MicroTime, omitempty struct), creationTimestamp (omitzero: dropped).
    let event = Enc::new()
        .m(1, meta("e"))
        .m(6, Enc::new().v(1, 1_704_164_645))
        .m(7, Enc::new())
        .m(10, Enc::new().v(1, 1_704_164_645).v(2, 5_000));
    let got = decode_message("io.k8s.api.core.v1.Event", &event.0).unwrap();
    assert_eq!(got["metadata"], json!({"name": "e"}));
    assert_eq!(got["firstTimestamp"], json!("2024-01-02T03:04:05Z"));
    assert_eq!(got["lastTimestamp"], json!(null));
    assert_eq!(got["eventTime"], json!("2024-01-02T03:04:05.000005Z"));
    assert_eq!(got["involvedObject"], json!({}));
    assert_eq!(got["source"], json!({}));
    // Out-of-range years are refused, as Go's MarshalJSON does.
    let far = Enc::new().v(1, 400_000_000_000);
    assert!(decode_message("io.k8s.apimachinery.pkg.apis.meta.v1.Time", &far.0).is_err());
}

#[test]
fn embedded_json() {
    let rev = |data: Enc| Enc::new().m(1, meta("r")).m(2, data).v(3, 2);
    let got = decode_message(
        "io.k8s.api.apps.v1.ControllerRevision",
        &rev(Enc::new().s(1, r#"{"spec":{"a":1}}"#)).0,
    )
    .unwrap();
    assert_eq!(
        got,
        json!({"metadata": {"name": "r"}, "data": {"spec": {"a": 1}}, "revision": 2})
    );
    // Unset RawExtension: null.
    let got = decode_message("io.k8s.api.apps.v1.ControllerRevision", &rev(Enc::new()).0).unwrap();
    assert_eq!(got["data"], json!(null));
    // A protobuf object inside: decoded as an object.
    let inner = envelope("v1", "ConfigMap", &Enc::new().m(1, meta("in")));
    let got = decode_message(
        "io.k8s.api.apps.v1.ControllerRevision",
        &rev(Enc::new().b(1, &inner)).0,
    )
    .unwrap();
    assert_eq!(
        got["data"],
        json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "in"}})
    );
    assert!(matches!(
        decode_message(
            "io.k8s.api.apps.v1.ControllerRevision",
            &rev(Enc::new().s(1, "{not json")).0
        ),
        Err(ProtoError::InvalidEmbeddedJson(_))
    ));
    // managedFields[].fieldsV1
    let entry = Enc::new()
        .s(1, "kubectl")
        .s(2, "Update")
        .s(3, "v1")
        .s(6, "FieldsV1")
        .m(7, Enc::new().s(1, r#"{"f:data":{}}"#));
    let got = decode_message(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        &Enc::new().m(17, entry).0,
    )
    .unwrap();
    assert_eq!(
        got["managedFields"],
        json!([{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}}])
    );
}

#[test]
fn items_wrappers() {
    // TokenReview.status.user.extra: map<string, ExtraValue{repeated items}>.
    let user = Enc::new().s(1, "me").m(
        4,
        Enc::new()
            .s(1, "scopes")
            .m(2, Enc::new().s(1, "a").s(1, "b")),
    );
    let review = Enc::new().m(3, Enc::new().v(1, 1).m(2, user));
    let got = decode_message("io.k8s.api.authentication.v1.TokenReview", &review.0).unwrap();
    assert_eq!(
        got["status"],
        json!({"authenticated": true, "user": {"username": "me", "extra": {"scopes": ["a", "b"]}}})
    );
}

#[test]
fn packed_and_unpacked_repeated_scalars() {
    // PodSecurityContext.supplementalGroups = 4 (repeated int64).
    let mut packed = Vec::new();
    varint(1, &mut packed);
    varint(2, &mut packed);
    let ctx = Enc::new().b(4, &packed).v(4, 3);
    let got = decode_message("io.k8s.api.core.v1.PodSecurityContext", &ctx.0).unwrap();
    assert_eq!(got, json!({"supplementalGroups": [1, 2, 3]}));
}

#[test]
fn unknown_fields_are_skipped() {
    let cm = Enc::new()
        .m(1, meta("c").s(999, "future"))
        .v(77, 5)
        .raw(&[0x79, 1, 2, 3, 4, 5, 6, 7, 8]) // field 15, fixed64
        .raw(&[0x85, 0x01, 1, 2, 3, 4]) // field 16, fixed32
        .kv(2, "a", "b");
    let got = decode_object(&envelope("v1", "ConfigMap", &cm)).unwrap();
    assert_eq!(
        got,
        json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c"}, "data": {"a": "b"}})
    );
}

#[test]
fn delete_options_in_any_group_version() {
    let opts = Enc::new().v(1, 0).s(4, "Foreground").s(5, "All");
    let got = decode_object(&envelope("apps/v1", "DeleteOptions", &opts)).unwrap();
    assert_eq!(
        got,
        json!({"kind": "DeleteOptions", "apiVersion": "apps/v1", "gracePeriodSeconds": 0,
               "propagationPolicy": "Foreground", "dryRun": ["All"]})
    );
}

#[test]
fn json_inside_the_envelope() {
    let unknown = Enc::new()
        .m(1, Enc::new().s(1, "v1").s(2, "ConfigMap"))
        .s(2, r#"{"metadata":{"name":"j"}}"#)
        .s(4, "application/json");
    let mut body = b"k8s\0".to_vec();
    body.extend_from_slice(&unknown.0);
    assert_eq!(
        decode_object(&body).unwrap(),
        json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "j"}})
    );
}

#[test]
fn errors() {
    let cm = Enc::new().m(1, meta("c"));
    assert!(matches!(decode_object(b""), Err(ProtoError::BadMagic)));
    assert!(matches!(decode_object(b"k8s"), Err(ProtoError::BadMagic)));
    assert!(matches!(
        decode_object(br#"{"kind":"ConfigMap"}"#),
        Err(ProtoError::BadMagic)
    ));
    assert!(matches!(
        decode_object(&envelope("v1", "Frobnicator", &cm)),
        Err(ProtoError::UnknownKind { .. })
    ));
    assert!(matches!(
        decode_message("io.k8s.api.core.v1.Nope", &[]),
        Err(ProtoError::UnknownDefinition(_))
    ));
    // Wrong wire type: ConfigMap.metadata as a varint; ObjectMeta.name as a varint.
    assert!(matches!(
        decode_message("io.k8s.api.core.v1.ConfigMap", &Enc::new().v(1, 3).0),
        Err(ProtoError::WrongWireType { .. })
    ));
    assert!(matches!(
        decode_message(
            "io.k8s.api.core.v1.ConfigMap",
            &Enc::new().m(1, Enc::new().v(1, 3)).0
        ),
        Err(ProtoError::WrongWireType { .. })
    ));
    // Map entries and repeated messages with wrong wire types.
    assert!(decode_message("io.k8s.api.core.v1.ConfigMap", &Enc::new().v(2, 3).0).is_err());
    assert!(decode_message(
        "io.k8s.api.core.v1.ConfigMap",
        &Enc::new().m(2, Enc::new().v(1, 3)).0
    )
    .is_err());
    assert!(decode_message("io.k8s.api.core.v1.PodSpec", &Enc::new().v(2, 3).0).is_err());
    // Truncated varint inside the envelope.
    let mut body = envelope("v1", "ConfigMap", &cm);
    body.push(0x08);
    assert!(decode_object(&body).is_err());
    // Content encoding.
    let unknown = Enc::new()
        .m(1, Enc::new().s(1, "v1").s(2, "ConfigMap"))
        .b(2, &cm.0)
        .s(3, "gzip");
    let mut body = b"k8s\0".to_vec();
    body.extend_from_slice(&unknown.0);
    assert!(matches!(
        decode_object(&body),
        Err(ProtoError::UnsupportedContentEncoding(_))
    ));
    // A length prefix without its length.
    assert!(decode_message("io.k8s.api.core.v1.ConfigMap", &[0x0a]).is_err());
}

#[test]
fn nested_envelopes_are_bounded() {
    let mut body = envelope("v1", "ConfigMap", &Enc::new().m(1, meta("x")));
    for _ in 0..200 {
        let rev = Enc::new().m(2, Enc::new().b(1, &body));
        body = envelope("apps/v1", "ControllerRevision", &rev);
    }
    assert!(matches!(decode_object(&body), Err(ProtoError::TooDeep)));
}

#[test]
fn truncations_and_corruptions_never_panic() {
    let spec = Enc::new()
        .v(1, 3)
        .m(2, Enc::new().m(1, Enc::new().kv(1, "app", "d")))
        .m(
            3,
            Enc::new().m(1, meta("")).m(
                2,
                Enc::new().m(2, Enc::new().s(1, "busybox").s(2, "busybox")),
            ),
        );
    let body = envelope(
        "apps/v1",
        "Deployment",
        &Enc::new().m(1, meta("d")).m(2, spec),
    );
    assert!(decode_object(&body).is_ok());
    for cut in 0..body.len() {
        let _ = decode_object(&body[..cut]);
    }
    // Deterministic pseudo-random byte flips.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut corrupt = body.clone();
        let pos = 4 + (state as usize) % (corrupt.len() - 4);
        corrupt[pos] = (state >> 32) as u8;
        let _ = decode_object(&corrupt);
    }
}

#[test]
fn supported_kinds_and_definitions() {
    assert_eq!(
        definition_for("batch/v1", "CronJob"),
        Some("io.k8s.api.batch.v1.CronJob")
    );
    assert_eq!(definition_for("batch/v2", "CronJob"), None);
    assert!(supported_kinds().any(|(g, v, k, _)| (g, v, k) == ("policy", "v1", "Eviction")));
}

#[test]
fn eviction_with_delete_options() {
    // What `kubectl drain --grace-period=0` sends per pod.
    let eviction = Enc::new()
        .m(1, meta("web-1").s(3, "prod"))
        .m(2, Enc::new().v(1, 0).s(5, "All"));
    let got = decode_object(&envelope("policy/v1", "Eviction", &eviction)).unwrap();
    assert_eq!(
        got,
        json!({"kind": "Eviction", "apiVersion": "policy/v1",
               "metadata": {"name": "web-1", "namespace": "prod"},
               "deleteOptions": {"gracePeriodSeconds": 0, "dryRun": ["All"]}})
    );
}
