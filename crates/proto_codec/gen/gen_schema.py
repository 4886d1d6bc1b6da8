#!/usr/bin/env python3
"""Generates ../src/schema_table.rs, the protobuf schema table of the proto_codec crate.

Inputs:
  * the prost-generated sources of the `k8s-pb` crate (field numbers and protobuf types of
    every Kubernetes message), found in ~/.cargo/registry/src/*/k8s-pb-<version>/src;
  * the Go sources of k8s.io/api and k8s.io/apimachinery at the matching Kubernetes
    release (k8s-pb 0.9 is Kubernetes 1.35, so v0.35.x): each field's JSON name and the Go
    shape the JSON encoding depends on (pointer or value, `omitempty`/`omitzero`, embedded
    `,inline` structs), joined to the protobuf fields by field number.

Usage (from the crate directory):
  git clone --depth 1 -b v0.35.0 https://github.com/kubernetes/api /tmp/proto_codec-go/api
  git clone --depth 1 -b v0.35.0 https://github.com/kubernetes/apimachinery \
      /tmp/proto_codec-go/apimachinery
  python3 gen/gen_schema.py --go-api /tmp/proto_codec-go/api \
      --go-apimachinery /tmp/proto_codec-go/apimachinery
  cargo fmt -p proto_codec   # not needed: the output is already stable, but harmless

The table covers every message reachable from ROOTS below; add a kind there to support it.
"""

import argparse
import glob
import os
import re
import sys

# (group, version, kind, k8s-pb module, message name)
ROOTS = [
    ("", "v1", "Pod", "api/core/v1", "Pod"),
    ("", "v1", "Node", "api/core/v1", "Node"),
    ("", "v1", "Namespace", "api/core/v1", "Namespace"),
    ("", "v1", "Service", "api/core/v1", "Service"),
    ("", "v1", "Endpoints", "api/core/v1", "Endpoints"),
    ("", "v1", "Secret", "api/core/v1", "Secret"),
    ("", "v1", "ConfigMap", "api/core/v1", "ConfigMap"),
    ("", "v1", "Event", "api/core/v1", "Event"),
    ("", "v1", "ServiceAccount", "api/core/v1", "ServiceAccount"),
    ("", "v1", "Binding", "api/core/v1", "Binding"),
    ("", "v1", "PersistentVolumeClaim", "api/core/v1", "PersistentVolumeClaim"),
    ("", "v1", "PersistentVolume", "api/core/v1", "PersistentVolume"),
    ("", "v1", "ReplicationController", "api/core/v1", "ReplicationController"),
    ("", "v1", "ResourceQuota", "api/core/v1", "ResourceQuota"),
    ("", "v1", "LimitRange", "api/core/v1", "LimitRange"),
    ("", "v1", "PodTemplate", "api/core/v1", "PodTemplate"),
    ("apps", "v1", "Deployment", "api/apps/v1", "Deployment"),
    ("apps", "v1", "ReplicaSet", "api/apps/v1", "ReplicaSet"),
    ("apps", "v1", "DaemonSet", "api/apps/v1", "DaemonSet"),
    ("apps", "v1", "StatefulSet", "api/apps/v1", "StatefulSet"),
    ("apps", "v1", "ControllerRevision", "api/apps/v1", "ControllerRevision"),
    ("batch", "v1", "Job", "api/batch/v1", "Job"),
    ("batch", "v1", "CronJob", "api/batch/v1", "CronJob"),
    ("coordination.k8s.io", "v1", "Lease", "api/coordination/v1", "Lease"),
    ("discovery.k8s.io", "v1", "EndpointSlice", "api/discovery/v1", "EndpointSlice"),
    ("policy", "v1", "Eviction", "api/policy/v1", "Eviction"),
    ("policy", "v1", "PodDisruptionBudget", "api/policy/v1", "PodDisruptionBudget"),
    ("autoscaling", "v1", "Scale", "api/autoscaling/v1", "Scale"),
    ("autoscaling", "v1", "HorizontalPodAutoscaler", "api/autoscaling/v1",
     "HorizontalPodAutoscaler"),
    ("autoscaling", "v2", "HorizontalPodAutoscaler", "api/autoscaling/v2",
     "HorizontalPodAutoscaler"),
    ("rbac.authorization.k8s.io", "v1", "Role", "api/rbac/v1", "Role"),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole", "api/rbac/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding", "api/rbac/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "api/rbac/v1",
     "ClusterRoleBinding"),
    ("networking.k8s.io", "v1", "Ingress", "api/networking/v1", "Ingress"),
    ("networking.k8s.io", "v1", "IngressClass", "api/networking/v1", "IngressClass"),
    ("networking.k8s.io", "v1", "NetworkPolicy", "api/networking/v1", "NetworkPolicy"),
    ("scheduling.k8s.io", "v1", "PriorityClass", "api/scheduling/v1", "PriorityClass"),
    ("storage.k8s.io", "v1", "StorageClass", "api/storage/v1", "StorageClass"),
    ("events.k8s.io", "v1", "Event", "api/events/v1", "Event"),
    ("authentication.k8s.io", "v1", "TokenRequest", "api/authentication/v1", "TokenRequest"),
    ("authentication.k8s.io", "v1", "TokenReview", "api/authentication/v1", "TokenReview"),
    ("authentication.k8s.io", "v1", "SelfSubjectReview", "api/authentication/v1",
     "SelfSubjectReview"),
    ("authorization.k8s.io", "v1", "SubjectAccessReview", "api/authorization/v1",
     "SubjectAccessReview"),
    ("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "api/authorization/v1",
     "SelfSubjectAccessReview"),
    ("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "api/authorization/v1",
     "LocalSubjectAccessReview"),
    ("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "api/authorization/v1",
     "SelfSubjectRulesReview"),
    ("meta.k8s.io", "v1", "DeleteOptions", "apimachinery/pkg/apis/meta/v1", "DeleteOptions"),
    ("meta.k8s.io", "v1", "Status", "apimachinery/pkg/apis/meta/v1", "Status"),
]

# Messages whose JSON form is not their fields (Go types with their own MarshalJSON).
SPECIALS = {
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": "Time",
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": "MicroTime",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Duration": "Duration",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1": "EmbeddedJson",
    "io.k8s.apimachinery.pkg.runtime.RawExtension": "EmbeddedJson",
    "io.k8s.apimachinery.pkg.api.resource.Quantity": "Quantity",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
}

SCALARS = {
    "string": "S",
    "bool": "B",
    "int32": "I32",
    "int64": "I64",
    "double": "F64",
    "bytes": "Y",
}


def die(msg):
    print("gen_schema: " + msg, file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- k8s-pb parsing

PROST_ATTR = re.compile(r"#\[prost\((.*)\)\]\s*$")
FIELD_DECL = re.compile(r"pub (?:r#)?(\w+):\s*(.*?),?\s*$", re.S)


def parse_pb_module(path):
    """{struct name: [field dict]} of one prost-generated module."""
    lines = open(path, encoding="utf-8").read().split("\n")
    structs = {}
    cur = None
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        m = re.match(r"pub struct (\w+) \{$", line)
        if m:
            cur = structs.setdefault(m.group(1), [])
            i += 1
            continue
        if re.match(r"pub struct (\w+) \{\}$", line):
            structs.setdefault(line.split()[2], [])
            i += 1
            continue
        if line == "}":
            cur = None
        am = PROST_ATTR.match(line)
        if am and cur is not None:
            attr = am.group(1)
            # The declaration may wrap over several lines.
            decl = ""
            i += 1
            while i < len(lines):
                decl += " " + lines[i].strip()
                if decl.rstrip().endswith(",") and decl.count("<") == decl.count(">"):
                    break
                i += 1
            dm = FIELD_DECL.match(decl.strip())
            if not dm:
                die("cannot parse field declaration %r in %s" % (decl, path))
            cur.append(parse_pb_field(attr, dm.group(1), dm.group(2), path))
        i += 1
    return structs


def parse_pb_field(attr, name, rust_type, path):
    tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
    field = {"tag": tag, "rust_name": name, "rust_type": rust_type}
    mm = re.match(r'(?:btree_map|map) = "string, (\w+)"', attr)
    if mm:
        field["label"] = "map"
        field["type"] = mm.group(1)
    else:
        parts = [p.strip() for p in attr.split(",")]
        field["type"] = parts[0].split("=")[0].strip()
        field["label"] = parts[1] if parts[1] in ("optional", "repeated", "required") else "optional"
    if field["type"] not in SCALARS and field["type"] != "message":
        die("unsupported prost type %r (%s)" % (attr, path))
    return field


def message_target(rust_type, module):
    """(module, name) of the message a field's Rust type names."""
    inner = rust_type
    # Innermost generic argument (last one for maps).
    while "<" in inner:
        inner = inner[inner.index("<") + 1: inner.rindex(">")]
        if "," in inner:
            inner = [p for p in inner.split(",") if p.strip()][-1]
    inner = inner.strip()
    segs = [s for s in inner.split("::") if s]
    if not segs:
        die("cannot resolve message type %r" % rust_type)
    mod = module.split("/")
    while segs and segs[0] == "super":
        mod.pop()
        segs.pop(0)
    return "/".join(mod + segs[:-1]), segs[-1]


# ---------------------------------------------------------------- Go parsing

GO_STRUCT = re.compile(r"^type (\w+) struct \{(\})?\s*$")
GO_SLICE = re.compile(r"^type (\w+) \[\](\w+)\s*$")
GO_FIELD = re.compile(r"^(\S+)(?:\s+(\S+))?\s+`([^`]*)`\s*(//.*)?$")


def parse_go_package(directory):
    """({struct name: {tag: go field}}, {slice type name: element type})"""
    structs, slices = {}, {}
    for path in sorted(glob.glob(os.path.join(directory, "*.go"))):
        if path.endswith("_test.go") or os.path.basename(path).startswith("generated."):
            continue
        cur = None
        for raw in open(path, encoding="utf-8"):
            line = raw.strip()
            m = GO_STRUCT.match(line)
            if m:
                cur = structs.setdefault(m.group(1), {})
                if m.group(2):
                    cur = None
                continue
            m = GO_SLICE.match(line)
            if m:
                slices[m.group(1)] = m.group(2)
                continue
            if cur is None:
                continue
            if line == "}":
                cur = None
                continue
            if line.startswith("//"):
                continue
            fm = GO_FIELD.match(line)
            if not fm:
                continue
            a, b, tags = fm.group(1), fm.group(2), fm.group(3)
            pm = re.search(r'protobuf:"([^"]*)"', tags)
            if not pm or pm.group(1) == "-":
                continue
            embedded = b is None
            go_type = a if embedded else b
            jm = re.search(r'json:"([^"]*)"', tags)
            json_parts = jm.group(1).split(",") if jm else [""]
            try:
                tag = int(pm.group(1).split(",")[1])
            except (IndexError, ValueError):
                die("bad protobuf tag in %s: %s" % (path, line))
            cur[tag] = {
                "name": a,
                "embedded": embedded,
                "pointer": go_type.startswith("*"),
                "json": json_parts[0],
                "omitempty": "omitempty" in json_parts[1:],
                "omitzero": "omitzero" in json_parts[1:],
                "go_type": go_type,
            }
    return structs, slices


# ---------------------------------------------------------------- main


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--k8s-pb", help="k8s-pb src directory")
    ap.add_argument("--go-api", required=True, help="k8s.io/api checkout (v0.35.x)")
    ap.add_argument("--go-apimachinery", required=True, help="k8s.io/apimachinery checkout")
    ap.add_argument("--out", default=os.path.join(here, "..", "src", "schema_table.rs"))
    args = ap.parse_args()

    pb_src = args.k8s_pb
    if not pb_src:
        found = sorted(glob.glob(os.path.expanduser("~/.cargo/registry/src/*/k8s-pb-0.9.*/src")))
        if not found:
            die("k8s-pb sources not found; pass --k8s-pb")
        pb_src = found[-1]
    pb_version = os.path.basename(os.path.dirname(os.path.abspath(pb_src)))

    pb_cache, go_cache = {}, {}

    def pb_module(module):
        if module not in pb_cache:
            path = os.path.join(pb_src, module, "mod.rs")
            if not os.path.exists(path):
                die("no k8s-pb module " + module)
            pb_cache[module] = parse_pb_module(path)
        return pb_cache[module]

    def go_package(module):
        if module not in go_cache:
            if module.startswith("api/"):
                d = os.path.join(args.go_api, module[len("api/"):])
            elif module.startswith("apimachinery/"):
                d = os.path.join(args.go_apimachinery, module[len("apimachinery/"):])
            else:
                die("no Go package for " + module)
            if not os.path.isdir(d):
                die("missing Go package directory " + d)
            go_cache[module] = parse_go_package(d)
        return go_cache[module]

    def def_prefix(module):
        return "io.k8s." + module.replace("/", ".")

    # Breadth-first walk from the roots. messages: def name -> record
    messages = {}
    queue = []

    def visit(module, pb_name):
        structs = pb_module(module)
        if pb_name not in structs:
            die("no message %s in %s" % (pb_name, module))
        go_structs, go_slices = go_package(module)
        go_name = None
        for candidates in (go_structs, go_slices):
            for n in candidates:
                if n.lower() == pb_name.lower():
                    go_name = n
        if go_name is None:
            die("no Go type for %s/%s" % (module, pb_name))
        name = def_prefix(module) + "." + go_name
        if name not in messages:
            messages[name] = {"module": module, "pb": pb_name, "go": go_name}
            queue.append(name)
        return name

    roots = []
    for group, version, kind, module, pb_name in ROOTS:
        roots.append((group, version, kind, visit(module, pb_name)))

    while queue:
        name = queue.pop(0)
        rec = messages[name]
        if name in SPECIALS:
            rec["special"] = SPECIALS[name]
            rec["fields"] = []
            continue
        module = rec["module"]
        pb_fields = pb_module(module)[rec["pb"]]
        go_structs, go_slices = go_package(module)
        if rec["go"] in go_slices:
            # A Go named slice (type ExtraValue []string) encoded as {repeated items = 1}.
            if len(pb_fields) != 1 or pb_fields[0]["label"] != "repeated" or pb_fields[0]["tag"] != 1:
                die("unexpected list wrapper " + name)
            f = pb_fields[0]
            if f["type"] == "message":
                die("list wrapper of messages unsupported: " + name)
            rec["special"] = "Items"
            rec["fields"] = [(1, "items", SCALARS[f["type"]], ["REP"])]
            continue
        go_fields = go_structs[rec["go"]]
        out = []
        pb_tags = set()
        for f in pb_fields:
            pb_tags.add(f["tag"])
            g = go_fields.get(f["tag"])
            if g is None:
                die("%s: protobuf field %d (%s) has no Go field" % (name, f["tag"], f["rust_name"]))
            flags = []
            if f["label"] == "repeated":
                flags.append("REP")
            elif f["label"] == "map":
                flags.append("MAP")
            if g["pointer"]:
                flags.append("PTR")
            if g["omitempty"]:
                flags.append("OMITEMPTY")
            if g["omitzero"]:
                flags.append("OMITZERO")
            if g["embedded"] and g["json"] == "":
                if f["type"] != "message" or f["label"] in ("repeated", "map"):
                    die("%s: unsupported embedded field %s" % (name, g["name"]))
                flags.append("INLINE")
            elif g["json"] == "":
                die("%s: field %s has no JSON name" % (name, g["name"]))
            if f["type"] == "message":
                tmod, tname = message_target(f["rust_type"], module)
                kind = ("M", visit(tmod, tname))
            else:
                kind = SCALARS[f["type"]]
            out.append((f["tag"], g["json"], kind, flags))
        for tag in go_fields:
            if tag not in pb_tags:
                die("%s: Go field %s (protobuf %d) missing from k8s-pb" % (name, go_fields[tag]["name"], tag))
        # Keep the Go declaration order (which is the JSON encoder's order).
        order = {tag: i for i, tag in enumerate(go_fields)}
        out.sort(key=lambda f: order[f[0]])
        for tag, json_name, kind, flags in out:
            if "OMITZERO" in flags and kind[0] == "M" and kind[1] not in SPECIALS:
                die("%s: omitzero on a plain struct field is unsupported" % name)
        rec["fields"] = out
        rec["special"] = None

    names = sorted(messages)
    index = {n: i for i, n in enumerate(names)}

    def rust_kind(kind):
        if isinstance(kind, tuple):
            return "M(%d)" % index[kind[1]]
        return kind

    def rust_flags(flags):
        return "|".join(flags) if flags else "0"

    w = []
    w.append("// @generated by crates/proto_codec/gen/gen_schema.py from %s and" % pb_version)
    w.append("// k8s.io/api + k8s.io/apimachinery v0.35 Go sources. Do not edit; re-run the generator.")
    w.append("//")
    w.append("// MESSAGES is sorted by definition name; M(i) refers to MESSAGES[i]. Fields are in")
    w.append("// Go declaration order: (protobuf field number, JSON name, kind, flags).")
    w.append("")
    w.append("use crate::schema::Kind::*;")
    w.append("use crate::schema::Special;")
    w.append("use crate::schema::{f, Message, Root, INLINE, MAP, OMITEMPTY, OMITZERO, PTR, REP};")
    w.append("")
    w.append("#[rustfmt::skip]")
    w.append("pub(crate) static MESSAGES: &[Message] = &[")
    for n in names:
        rec = messages[n]
        special = rec["special"]
        sp = "None" if special is None else "Some(Special::%s)" % special
        fields = ",".join(
            'f(%d,"%s",%s,%s)' % (tag, json_name, rust_kind(kind), rust_flags(flags))
            for tag, json_name, kind, flags in rec["fields"]
        )
        w.append('Message{name:"%s",special:%s,fields:&[%s]},' % (n, sp, fields))
    w.append("];")
    w.append("")
    w.append("/// (group, version, kind) of each top-level kind, and its message.")
    w.append("#[rustfmt::skip]")
    w.append("pub(crate) static ROOTS: &[Root] = &[")
    for group, version, kind, name in roots:
        w.append('Root{group:"%s",version:"%s",kind:"%s",message:%d},' % (group, version, kind, index[name]))
    w.append("];")
    w.append("")
    text = "\n".join(w)
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.write(text)
    print("wrote %s: %d messages, %d fields, %d bytes" % (
        args.out, len(names), sum(len(messages[n]["fields"]) for n in names), len(text)))


if __name__ == "__main__":
    main()
