//! The REST operations of the served resources, modelled once and rendered as OpenAPI v2
//! (Swagger 2.0) or v3 path items, with the Kubernetes extensions `x-kubernetes-action` and
//! `x-kubernetes-group-version-kind`.

use api_resources::{ResourceDef, Subresource};
use serde_json::{json, Map, Value};

use crate::definitions::{
    self, API_GROUP, API_GROUP_LIST, API_RESOURCE_LIST, API_VERSIONS, DELETE_OPTIONS, PATCH,
    STATUS, WATCH_EVENT,
};

/// One query parameter.
#[derive(Debug)]
pub(crate) struct QueryParam {
    pub name: &'static str,
    /// `string`, `boolean` or `integer`.
    pub ty: &'static str,
    pub description: &'static str,
}

const fn q(name: &'static str, ty: &'static str, description: &'static str) -> QueryParam {
    QueryParam {
        name,
        ty,
        description,
    }
}

const ALLOW_WATCH_BOOKMARKS: QueryParam = q(
    "allowWatchBookmarks",
    "boolean",
    "Ask a watch to send BOOKMARK events carrying only a resourceVersion.",
);
const CONTINUE: QueryParam = q(
    "continue",
    "string",
    "Token from the metadata.continue of a previous limited list, to fetch the next chunk.",
);
const FIELD_SELECTOR: QueryParam = q(
    "fieldSelector",
    "string",
    "Restrict the returned objects by their fields. Matches everything by default.",
);
const LABEL_SELECTOR: QueryParam = q(
    "labelSelector",
    "string",
    "Restrict the returned objects by their labels. Matches everything by default.",
);
const LIMIT: QueryParam = q(
    "limit",
    "integer",
    "Return at most this many objects; metadata.continue then points at the rest.",
);
const RESOURCE_VERSION: QueryParam = q(
    "resourceVersion",
    "string",
    "The resource version the list or watch is served at or starts after.",
);
const RESOURCE_VERSION_MATCH: QueryParam = q(
    "resourceVersionMatch",
    "string",
    "How resourceVersion is applied to a list: Exact or NotOlderThan.",
);
const SEND_INITIAL_EVENTS: QueryParam = q(
    "sendInitialEvents",
    "boolean",
    "Start a watch with synthetic ADDED events for the current state of the collection.",
);
const TIMEOUT_SECONDS: QueryParam = q(
    "timeoutSeconds",
    "integer",
    "Upper bound on the duration of the call, regardless of activity.",
);
const WATCH: QueryParam = q(
    "watch",
    "boolean",
    "Stream add, update and delete events instead of returning a list.",
);
const DRY_RUN: QueryParam = q(
    "dryRun",
    "string",
    "All: run admission and validation but persist nothing.",
);
const FIELD_MANAGER: QueryParam = q(
    "fieldManager",
    "string",
    "Name of the actor making the change, recorded in managedFields.",
);
const FIELD_VALIDATION: QueryParam = q(
    "fieldValidation",
    "string",
    "What the server does with unknown or duplicate fields in the body: Ignore, Warn or Strict.",
);
const FORCE: QueryParam = q(
    "force",
    "boolean",
    "Apply requests only: take ownership of fields other managers own.",
);
const GRACE_PERIOD_SECONDS: QueryParam = q(
    "gracePeriodSeconds",
    "integer",
    "Seconds before the object is deleted; zero deletes immediately.",
);
const IGNORE_STORE_READ_ERROR: QueryParam = q(
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "boolean",
    "Delete objects that cannot be read from storage (unsafe).",
);
const ORPHAN_DEPENDENTS: QueryParam = q(
    "orphanDependents",
    "boolean",
    "Deprecated: use propagationPolicy. Whether dependents are orphaned.",
);
const PROPAGATION_POLICY: QueryParam = q(
    "propagationPolicy",
    "string",
    "Garbage collection of dependents: Orphan, Background or Foreground.",
);

const LIST: &[&QueryParam] = &[
    &ALLOW_WATCH_BOOKMARKS,
    &CONTINUE,
    &FIELD_SELECTOR,
    &LABEL_SELECTOR,
    &LIMIT,
    &RESOURCE_VERSION,
    &RESOURCE_VERSION_MATCH,
    &SEND_INITIAL_EVENTS,
    &TIMEOUT_SECONDS,
    &WATCH,
];
const WRITE: &[&QueryParam] = &[&DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION];
const PATCH_PARAMS: &[&QueryParam] = &[&DRY_RUN, &FIELD_MANAGER, &FIELD_VALIDATION, &FORCE];
const DELETE: &[&QueryParam] = &[
    &DRY_RUN,
    &GRACE_PERIOD_SECONDS,
    &IGNORE_STORE_READ_ERROR,
    &ORPHAN_DEPENDENTS,
    &PROPAGATION_POLICY,
];
const DELETE_COLLECTION: &[&QueryParam] = &[
    &CONTINUE,
    &DRY_RUN,
    &FIELD_SELECTOR,
    &GRACE_PERIOD_SECONDS,
    &IGNORE_STORE_READ_ERROR,
    &LABEL_SELECTOR,
    &LIMIT,
    &ORPHAN_DEPENDENTS,
    &PROPAGATION_POLICY,
    &RESOURCE_VERSION,
    &RESOURCE_VERSION_MATCH,
    &SEND_INITIAL_EVENTS,
    &TIMEOUT_SECONDS,
];
const LOG: &[&QueryParam] = &[
    &q("container", "string", "The container to stream logs of."),
    &q("follow", "boolean", "Keep streaming new log lines."),
    &q(
        "insecureSkipTLSVerifyBackend",
        "boolean",
        "Do not verify the kubelet's serving certificate.",
    ),
    &q("limitBytes", "integer", "Stop after this many bytes."),
    &q(
        "previous",
        "boolean",
        "Logs of the previous, terminated instance of the container.",
    ),
    &q(
        "sinceSeconds",
        "integer",
        "Only lines newer than this many seconds.",
    ),
    &q("stream", "string", "All, Stdout or Stderr."),
    &q(
        "tailLines",
        "integer",
        "Only this many lines from the end of the log.",
    ),
    &q(
        "timestamps",
        "boolean",
        "Prefix every line with its RFC3339 timestamp.",
    ),
];

/// What an operation sends or returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Payload {
    /// An object of this definition.
    Def(String),
    /// A patch document (`io.k8s.apimachinery.pkg.apis.meta.v1.Patch`).
    Patch,
    /// Plain text (pod logs).
    Text,
    /// A stream of watch events.
    Watch,
}

impl Payload {
    fn definition(&self) -> Option<&str> {
        match self {
            Payload::Def(d) => Some(d),
            Payload::Patch => Some(PATCH),
            Payload::Watch => Some(WATCH_EVENT),
            Payload::Text => None,
        }
    }
}

/// One operation on a path.
#[derive(Debug)]
pub(crate) struct Operation {
    /// Lower-case HTTP method.
    pub method: &'static str,
    /// `x-kubernetes-action`: get, list, watch, watchlist, post, put, patch, delete,
    /// deletecollection.
    pub action: Option<&'static str>,
    pub id: String,
    pub description: String,
    pub tag: String,
    pub gvk: Option<(&'static str, &'static str, &'static str)>,
    pub query: &'static [&'static QueryParam],
    pub body: Option<Payload>,
    pub response: Payload,
    /// Success status codes besides 200.
    pub also: &'static [(&'static str, &'static str)],
}

/// One path with its operations.
#[derive(Debug)]
pub(crate) struct PathItem {
    pub path: String,
    pub namespaced: bool,
    pub named: bool,
    pub ops: Vec<Operation>,
}

impl PathItem {
    /// Every definition the path's operations name directly.
    pub(crate) fn definitions(&self) -> impl Iterator<Item = &str> {
        self.ops.iter().flat_map(|o| {
            o.body
                .iter()
                .chain(std::iter::once(&o.response))
                .filter_map(Payload::definition)
        })
    }
}

const CREATED: &[(&str, &str)] = &[("201", "Created"), ("202", "Accepted")];
const REPLACED: &[(&str, &str)] = &[("201", "Created")];
const ACCEPTED: &[(&str, &str)] = &[("202", "Accepted")];

/// `AppsV1`, `CoreV1`, `CoordinationV1`, `ExtensionsV1beta1`: the operation id infix.
fn gv_camel(group: &str, version: &str) -> String {
    let g = match group.split('.').next() {
        Some(g) if !g.is_empty() => g,
        _ => "core",
    };
    format!("{}{}", upper_first(g), upper_first(version))
}

/// `apps_v1`, `core_v1`: the operation tag.
fn gv_tag(group: &str, version: &str) -> String {
    let g = match group.split('.').next() {
        Some(g) if !g.is_empty() => g,
        _ => "core",
    };
    format!("{g}_{version}")
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The URL root of a group version: `/api/v1` or `/apis/apps/v1`.
pub(crate) fn gv_root(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

struct Builder<'a> {
    r: &'a ResourceDef,
    prefix: String,
    tag: String,
    ns: &'static str,
}

impl Builder<'_> {
    fn op(
        &self,
        method: &'static str,
        action: &'static str,
        id: String,
        description: String,
    ) -> Operation {
        Operation {
            method,
            action: Some(action),
            id,
            description,
            tag: self.tag.clone(),
            gvk: Some((self.r.group, self.r.version, self.r.kind)),
            query: &[],
            body: None,
            response: Payload::Def(self.r.definition.to_string()),
            also: &[],
        }
    }

    fn has(&self, verb: &str) -> bool {
        self.r.verbs.contains(&verb)
    }

    fn id(&self, verb: &str, suffix: &str) -> String {
        format!("{verb}{}{}{}{suffix}", self.prefix, self.ns, self.r.kind)
    }
}

/// The path items of one resource.
pub(crate) fn resource_paths(r: &ResourceDef) -> Vec<PathItem> {
    let b = Builder {
        r,
        prefix: gv_camel(r.group, r.version),
        tag: gv_tag(r.group, r.version),
        ns: if r.namespaced { "Namespaced" } else { "" },
    };
    let root = gv_root(r.group, r.version);
    let collection = if r.namespaced {
        format!("{root}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{root}/{}", r.plural)
    };
    let item = format!("{collection}/{{name}}");
    let kind = r.kind;
    let list_def = definitions::list_name(r);
    let mut out = Vec::new();

    let mut ops = Vec::new();
    if b.has("list") {
        let mut o = b.op(
            "get",
            "list",
            b.id("list", ""),
            format!("list or watch objects of kind {kind}"),
        );
        o.query = LIST;
        o.response = Payload::Def(list_def.clone());
        ops.push(o);
    }
    if b.has("create") {
        let mut o = b.op(
            "post",
            "post",
            b.id("create", ""),
            format!("create a {kind}"),
        );
        o.query = WRITE;
        o.body = Some(Payload::Def(r.definition.to_string()));
        o.also = CREATED;
        ops.push(o);
    }
    if b.has("deletecollection") {
        let mut o = b.op(
            "delete",
            "deletecollection",
            format!("delete{}Collection{}{}", b.prefix, b.ns, kind),
            format!("delete collection of {kind}"),
        );
        o.query = DELETE_COLLECTION;
        o.body = Some(Payload::Def(DELETE_OPTIONS.to_string()));
        o.response = Payload::Def(STATUS.to_string());
        ops.push(o);
    }
    out.push(PathItem {
        path: collection.clone(),
        namespaced: r.namespaced,
        named: false,
        ops,
    });

    let mut ops = Vec::new();
    if b.has("get") {
        ops.push(b.op(
            "get",
            "get",
            b.id("read", ""),
            format!("read the specified {kind}"),
        ));
    }
    if b.has("update") {
        let mut o = b.op(
            "put",
            "put",
            b.id("replace", ""),
            format!("replace the specified {kind}"),
        );
        o.query = WRITE;
        o.body = Some(Payload::Def(r.definition.to_string()));
        o.also = REPLACED;
        ops.push(o);
    }
    if b.has("patch") {
        let mut o = b.op(
            "patch",
            "patch",
            b.id("patch", ""),
            format!("partially update the specified {kind}"),
        );
        o.query = PATCH_PARAMS;
        o.body = Some(Payload::Patch);
        o.also = REPLACED;
        ops.push(o);
    }
    if b.has("delete") {
        let mut o = b.op(
            "delete",
            "delete",
            b.id("delete", ""),
            format!("delete a {kind}"),
        );
        o.query = DELETE;
        o.body = Some(Payload::Def(DELETE_OPTIONS.to_string()));
        o.response = Payload::Def(STATUS.to_string());
        o.also = ACCEPTED;
        ops.push(o);
    }
    out.push(PathItem {
        path: item.clone(),
        namespaced: r.namespaced,
        named: true,
        ops,
    });

    if r.namespaced && b.has("list") {
        let mut o = b.op(
            "get",
            "list",
            format!("list{}{kind}ForAllNamespaces", b.prefix),
            format!("list or watch objects of kind {kind} in all namespaces"),
        );
        o.query = LIST;
        o.response = Payload::Def(list_def);
        out.push(PathItem {
            path: format!("{root}/{}", r.plural),
            namespaced: false,
            named: false,
            ops: vec![o],
        });
    }

    if b.has("watch") {
        let watch = |action: &'static str, id: String, what: &str| {
            let mut o = b.op(
                "get",
                action,
                id,
                format!(
                    "deprecated: use the 'watch' parameter with a list operation; watch {what}"
                ),
            );
            o.query = LIST;
            o.response = Payload::Watch;
            o
        };
        let mut add = |path: String, namespaced: bool, named: bool, o: Operation| {
            out.push(PathItem {
                path,
                namespaced,
                named,
                ops: vec![o],
            })
        };
        if r.namespaced {
            add(
                format!("{root}/watch/namespaces/{{namespace}}/{}", r.plural),
                true,
                false,
                watch(
                    "watchlist",
                    b.id("watch", "List"),
                    &format!("changes to a list of {kind}"),
                ),
            );
            add(
                format!(
                    "{root}/watch/namespaces/{{namespace}}/{}/{{name}}",
                    r.plural
                ),
                true,
                true,
                watch(
                    "watch",
                    b.id("watch", ""),
                    &format!("changes to an object of kind {kind}"),
                ),
            );
            add(
                format!("{root}/watch/{}", r.plural),
                false,
                false,
                watch(
                    "watchlist",
                    format!("watch{}{kind}ListForAllNamespaces", b.prefix),
                    &format!("changes to a list of {kind} in all namespaces"),
                ),
            );
        } else {
            add(
                format!("{root}/watch/{}", r.plural),
                false,
                false,
                watch(
                    "watchlist",
                    b.id("watch", "List"),
                    &format!("changes to a list of {kind}"),
                ),
            );
            add(
                format!("{root}/watch/{}/{{name}}", r.plural),
                false,
                true,
                watch(
                    "watch",
                    b.id("watch", ""),
                    &format!("changes to an object of kind {kind}"),
                ),
            );
        }
    }

    for s in r.subresources {
        out.push(subresource_path(&b, s, &item));
    }
    out
}

fn subresource_path(b: &Builder<'_>, s: &Subresource, item: &str) -> PathItem {
    let def = definitions::subresource_definition(b.r, s);
    let suffix = upper_first(s.name);
    let kind = b.r.kind;
    let text = s.name == "log";
    let mut ops = Vec::new();
    for verb in s.verbs {
        let (method, action, id_verb, what) = match *verb {
            "get" => ("get", "get", "read", "read"),
            "update" => ("put", "put", "replace", "replace"),
            "patch" => ("patch", "patch", "patch", "partially update"),
            "create" => ("post", "post", "create", "create"),
            "delete" => ("delete", "delete", "delete", "delete"),
            _ => continue,
        };
        let mut o = b.op(
            method,
            action,
            b.id(id_verb, &suffix),
            format!("{what} {} of the specified {kind}", s.name),
        );
        o.gvk = Some((s.group, s.version, s.kind));
        o.response = if text {
            Payload::Text
        } else {
            Payload::Def(def.clone())
        };
        match *verb {
            "get" if text => o.query = LOG,
            "update" => {
                o.query = WRITE;
                o.body = Some(Payload::Def(def.clone()));
                o.also = REPLACED;
            }
            "patch" => {
                o.query = PATCH_PARAMS;
                o.body = Some(Payload::Patch);
                o.also = REPLACED;
            }
            "create" => {
                o.query = WRITE;
                o.body = Some(Payload::Def(def.clone()));
                o.also = CREATED;
            }
            "delete" => {
                o.query = DELETE;
                o.body = Some(Payload::Def(DELETE_OPTIONS.to_string()));
            }
            _ => {}
        }
        ops.push(o);
    }
    PathItem {
        path: format!("{item}/{}", s.name),
        namespaced: b.r.namespaced,
        named: true,
        ops,
    }
}

/// A path with one discovery `get` operation (no Kubernetes action).
fn discovery_path(path: String, id: String, tag: String, description: &str, def: &str) -> PathItem {
    PathItem {
        path,
        namespaced: false,
        named: false,
        ops: vec![Operation {
            method: "get",
            action: None,
            id,
            description: description.to_string(),
            tag,
            gvk: None,
            query: &[],
            body: None,
            response: Payload::Def(def.to_string()),
            also: &[],
        }],
    }
}

/// `/api/`: the core API versions.
pub(crate) fn core_versions_path() -> PathItem {
    discovery_path(
        "/api/".into(),
        "getCoreAPIVersions".into(),
        "core".into(),
        "get available API versions",
        API_VERSIONS,
    )
}

/// `/apis/`: the API groups.
pub(crate) fn groups_path() -> PathItem {
    discovery_path(
        "/apis/".into(),
        "getAPIVersions".into(),
        "apis".into(),
        "get available API versions",
        API_GROUP_LIST,
    )
}

/// `/apis/<group>/`: one API group.
pub(crate) fn group_path(group: &str) -> PathItem {
    let g = group.split('.').next().unwrap_or(group);
    discovery_path(
        format!("/apis/{group}/"),
        format!("get{}APIGroup", upper_first(g)),
        g.to_string(),
        "get information of a group",
        API_GROUP,
    )
}

/// `/api/v1/` or `/apis/<group>/<version>/`: the resources of a group version.
pub(crate) fn resources_path(group: &str, version: &str) -> PathItem {
    discovery_path(
        format!("{}/", gv_root(group, version)),
        format!("get{}APIResources", gv_camel(group, version)),
        gv_tag(group, version),
        "get available resources",
        API_RESOURCE_LIST,
    )
}

/// Every path item of one group version: its discovery path, then its resources'.
pub(crate) fn group_version_paths(group: &str, version: &str) -> Vec<PathItem> {
    let mut out = vec![resources_path(group, version)];
    for r in api_resources::in_group_version(group, version) {
        out.extend(resource_paths(r));
    }
    out
}

/// The OpenAPI dialect to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    V2,
    V3,
}

impl Dialect {
    fn reference(self, def: &str) -> Value {
        match self {
            Dialect::V2 => json!({ "$ref": format!("#/definitions/{def}") }),
            Dialect::V3 => json!({ "$ref": format!("#/components/schemas/{def}") }),
        }
    }

    fn param(self, name: &str, location: &str, ty: &str, description: &str) -> Value {
        let mut p = json!({ "name": name, "in": location, "description": description });
        if location == "path" {
            p["required"] = true.into();
        }
        match self {
            Dialect::V2 => p["type"] = ty.into(),
            Dialect::V3 => p["schema"] = json!({ "type": ty }),
        }
        p
    }
}

fn path_params(d: Dialect, item: &PathItem) -> Value {
    let mut params = Vec::new();
    if item.named {
        params.push(d.param("name", "path", "string", "name of the object"));
    }
    if item.namespaced {
        params.push(d.param(
            "namespace",
            "path",
            "string",
            "object name and auth scope, such as for teams and projects",
        ));
    }
    params.push(d.param(
        "pretty",
        "query",
        "string",
        "If 'true', the output is pretty printed.",
    ));
    Value::Array(params)
}

const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

fn produces(o: &Operation) -> Vec<&'static str> {
    match o.response {
        Payload::Text => vec!["text/plain", "application/json"],
        Payload::Watch => vec!["application/json", "application/json;stream=watch"],
        _ if o.action == Some("list") => vec!["application/json", "application/json;stream=watch"],
        _ => vec!["application/json"],
    }
}

fn schema_of(d: Dialect, p: &Payload) -> Value {
    match p.definition() {
        Some(def) => d.reference(def),
        None => json!({ "type": "string" }),
    }
}

/// Renders one operation.
fn render_op(d: Dialect, o: &Operation) -> Value {
    let mut op = Map::new();
    op.insert("description".into(), o.description.clone().into());
    op.insert("operationId".into(), o.id.clone().into());
    op.insert("tags".into(), json!([o.tag]));
    let mut params: Vec<Value> = Vec::new();
    let consumes: Vec<&str> = match o.body {
        Some(Payload::Patch) => PATCH_TYPES.to_vec(),
        _ => vec!["*/*"],
    };
    match (d, &o.body) {
        (Dialect::V2, Some(body)) => params.push(json!({
            "name": "body",
            "in": "body",
            "required": o.method != "delete",
            "schema": schema_of(d, body),
        })),
        (Dialect::V3, Some(body)) => {
            let content: Map<String, Value> = consumes
                .iter()
                .map(|c| (c.to_string(), json!({ "schema": schema_of(d, body) })))
                .collect();
            op.insert(
                "requestBody".into(),
                json!({ "content": content, "required": o.method != "delete" }),
            );
        }
        (_, None) => {}
    }
    for p in o.query {
        params.push(d.param(p.name, "query", p.ty, p.description));
    }
    if !params.is_empty() {
        op.insert("parameters".into(), Value::Array(params));
    }
    let produces = produces(o);
    let schema = schema_of(d, &o.response);
    let ok = |description: &str| match d {
        Dialect::V2 => json!({ "description": description, "schema": schema }),
        Dialect::V3 => {
            let content: Map<String, Value> = produces
                .iter()
                .map(|c| (c.to_string(), json!({ "schema": schema })))
                .collect();
            json!({ "description": description, "content": content })
        }
    };
    let mut responses = Map::new();
    responses.insert("200".into(), ok("OK"));
    for (code, text) in o.also {
        responses.insert(code.to_string(), ok(text));
    }
    responses.insert("401".into(), json!({ "description": "Unauthorized" }));
    op.insert("responses".into(), Value::Object(responses));
    if d == Dialect::V2 {
        op.insert("consumes".into(), json!(consumes));
        op.insert("produces".into(), json!(produces));
        op.insert("schemes".into(), json!(["https"]));
    }
    if let Some(action) = o.action {
        op.insert("x-kubernetes-action".into(), action.into());
    }
    if let Some((group, version, kind)) = o.gvk {
        op.insert(
            "x-kubernetes-group-version-kind".into(),
            json!({ "group": group, "kind": kind, "version": version }),
        );
    }
    Value::Object(op)
}

/// Renders path items into a `paths` object.
pub(crate) fn render(d: Dialect, items: &[PathItem]) -> Map<String, Value> {
    let mut paths = Map::new();
    for item in items {
        let mut p = Map::new();
        for o in &item.ops {
            p.insert(o.method.into(), render_op(d, o));
        }
        p.insert("parameters".into(), path_params(d, item));
        paths.insert(item.path.clone(), Value::Object(p));
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kubernetes() {
        assert_eq!(gv_camel("", "v1"), "CoreV1");
        assert_eq!(gv_camel("coordination.k8s.io", "v1"), "CoordinationV1");
        assert_eq!(gv_camel("extensions", "v1beta1"), "ExtensionsV1beta1");
        assert_eq!(gv_tag("discovery.k8s.io", "v1"), "discovery_v1");
        let deploy = api_resources::find("apps", "v1", "deployments").unwrap();
        let items = resource_paths(deploy);
        let ids: Vec<&str> = items
            .iter()
            .flat_map(|i| i.ops.iter().map(|o| o.id.as_str()))
            .collect();
        for id in [
            "listAppsV1NamespacedDeployment",
            "createAppsV1NamespacedDeployment",
            "deleteAppsV1CollectionNamespacedDeployment",
            "readAppsV1NamespacedDeployment",
            "patchAppsV1NamespacedDeployment",
            "listAppsV1DeploymentForAllNamespaces",
            "watchAppsV1NamespacedDeploymentList",
            "patchAppsV1NamespacedDeploymentScale",
            "replaceAppsV1NamespacedDeploymentStatus",
        ] {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
        let scale = items.iter().find(|i| i.path.ends_with("/scale")).unwrap();
        assert_eq!(scale.ops[0].gvk, Some(("autoscaling", "v1", "Scale")));
        assert_eq!(
            scale.ops[0].response,
            Payload::Def("io.k8s.api.autoscaling.v1.Scale".into())
        );
    }

    #[test]
    fn log_and_binding() {
        let pods = api_resources::find("", "v1", "pods").unwrap();
        let items = resource_paths(pods);
        let log = items.iter().find(|i| i.path.ends_with("/log")).unwrap();
        assert_eq!(log.path, "/api/v1/namespaces/{namespace}/pods/{name}/log");
        assert_eq!(log.ops[0].response, Payload::Text);
        let v3 = render(Dialect::V3, std::slice::from_ref(log));
        let get = &v3[&log.path]["get"];
        assert!(get["responses"]["200"]["content"]["text/plain"].is_object());
        let binding = items.iter().find(|i| i.path.ends_with("/binding")).unwrap();
        assert_eq!(binding.ops[0].method, "post");
        assert_eq!(binding.ops[0].gvk, Some(("", "v1", "Binding")));
    }
}
