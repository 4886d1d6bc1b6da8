//! The catalogue of Kubernetes resources berth's API server serves: for each one its group,
//! version, kind, plural and singular names, short names, categories, scope, verbs,
//! subresources, OpenAPI definition name and storage key. Discovery, the OpenAPI documents,
//! request routing and Table printing all read this one table, so a resource is added in
//! one place.

/// The verbs every stored resource supports.
pub const STANDARD_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

/// A subresource such as `pods/status` or `deployments/scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subresource {
    /// The path segment after the object's name (`status`, `scale`, `binding`, ...).
    pub name: &'static str,
    /// The group of the kind the subresource speaks (empty for core).
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

/// One served resource in one group version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceDef {
    /// API group, empty for the core (legacy) group served under `/api`.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// The OpenAPI definition name of the kind, e.g. `io.k8s.api.core.v1.Pod`.
    pub definition: &'static str,
    /// For a deprecated alias (`extensions/v1beta1` deployments): the group and version the
    /// objects are stored and converted to.
    pub stored_as: Option<(&'static str, &'static str)>,
}

impl ResourceDef {
    /// `v1` for core, `apps/v1` otherwise: the `apiVersion` of objects of this resource.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The kind of the list type, e.g. `PodList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The group and version objects of this resource are stored in.
    pub fn storage_group_version(&self) -> (&'static str, &'static str) {
        self.stored_as.unwrap_or((self.group, self.version))
    }

    /// The definition this resource is stored as (differs only for aliases).
    pub fn storage_def(&self) -> &'static ResourceDef {
        let (g, v) = self.storage_group_version();
        find(g, v, self.plural).expect("every alias names a served storage resource")
    }

    /// The store key prefix of all objects of this resource (in all namespaces), ending in `/`.
    pub fn key_prefix(&self) -> String {
        format!("/registry/{}/", self.storage_def().plural)
    }

    /// The store key prefix for one namespace, ending in `/`.
    pub fn namespace_prefix(&self, namespace: &str) -> String {
        format!("{}{}/", self.key_prefix(), namespace)
    }

    /// The store key of one object. Cluster-scoped objects ignore `namespace`.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{}{ns}/{name}", self.key_prefix()),
            _ => format!("{}{name}", self.key_prefix()),
        }
    }

    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// The URL path of the collection, e.g. `/apis/apps/v1/namespaces/default/deployments`.
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        let root = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{root}/namespaces/{ns}/{}", self.plural),
            _ => format!("{root}/{}", self.plural),
        }
    }
}

macro_rules! sub {
    ($name:literal, $group:literal, $version:literal, $kind:literal, $verbs:expr) => {
        Subresource {
            name: $name,
            group: $group,
            version: $version,
            kind: $kind,
            verbs: $verbs,
        }
    };
}

const fn status(group: &'static str, version: &'static str, kind: &'static str) -> Subresource {
    Subresource {
        name: "status",
        group,
        version,
        kind,
        verbs: STATUS_VERBS,
    }
}

const SCALE: Subresource = sub!("scale", "autoscaling", "v1", "Scale", STATUS_VERBS);

#[allow(clippy::too_many_arguments)]
const fn res(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: &'static [Subresource],
    definition: &'static str,
) -> ResourceDef {
    ResourceDef {
        group,
        version,
        kind,
        plural,
        singular,
        namespaced,
        short_names,
        categories,
        verbs: STANDARD_VERBS,
        subresources,
        definition,
        stored_as: None,
    }
}

const ALL: &[&str] = &["all"];

static RESOURCES: &[ResourceDef] = &[
    // core/v1
    res(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        false,
        &["ns"],
        &[],
        &[
            status("", "v1", "Namespace"),
            sub!("finalize", "", "v1", "Namespace", &["update"]),
        ],
        "io.k8s.api.core.v1.Namespace",
    ),
    res(
        "",
        "v1",
        "Pod",
        "pods",
        "pod",
        true,
        &["po"],
        ALL,
        &[
            status("", "v1", "Pod"),
            sub!("binding", "", "v1", "Binding", &["create"]),
            sub!("eviction", "policy", "v1", "Eviction", &["create"]),
            sub!("log", "", "v1", "Pod", &["get"]),
        ],
        "io.k8s.api.core.v1.Pod",
    ),
    res(
        "",
        "v1",
        "Node",
        "nodes",
        "node",
        false,
        &["no"],
        &[],
        &[status("", "v1", "Node")],
        "io.k8s.api.core.v1.Node",
    ),
    res(
        "",
        "v1",
        "Service",
        "services",
        "service",
        true,
        &["svc"],
        ALL,
        &[status("", "v1", "Service")],
        "io.k8s.api.core.v1.Service",
    ),
    res(
        "",
        "v1",
        "Endpoints",
        "endpoints",
        "endpoints",
        true,
        &["ep"],
        &[],
        &[],
        "io.k8s.api.core.v1.Endpoints",
    ),
    res(
        "",
        "v1",
        "Secret",
        "secrets",
        "secret",
        true,
        &[],
        &[],
        &[],
        "io.k8s.api.core.v1.Secret",
    ),
    res(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        "configmap",
        true,
        &["cm"],
        &[],
        &[],
        "io.k8s.api.core.v1.ConfigMap",
    ),
    res(
        "",
        "v1",
        "Event",
        "events",
        "event",
        true,
        &["ev"],
        &[],
        &[],
        "io.k8s.api.core.v1.Event",
    ),
    res(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        true,
        &["sa"],
        &[],
        &[],
        "io.k8s.api.core.v1.ServiceAccount",
    ),
    // apps/v1
    res(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        "deployment",
        true,
        &["deploy"],
        ALL,
        &[status("apps", "v1", "Deployment"), SCALE],
        "io.k8s.api.apps.v1.Deployment",
    ),
    res(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        true,
        &["rs"],
        ALL,
        &[status("apps", "v1", "ReplicaSet"), SCALE],
        "io.k8s.api.apps.v1.ReplicaSet",
    ),
    res(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        "daemonset",
        true,
        &["ds"],
        ALL,
        &[status("apps", "v1", "DaemonSet")],
        "io.k8s.api.apps.v1.DaemonSet",
    ),
    res(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        "statefulset",
        true,
        &["sts"],
        ALL,
        &[status("apps", "v1", "StatefulSet"), SCALE],
        "io.k8s.api.apps.v1.StatefulSet",
    ),
    res(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        "controllerrevision",
        true,
        &[],
        &[],
        &[],
        "io.k8s.api.apps.v1.ControllerRevision",
    ),
    // batch/v1
    res(
        "batch",
        "v1",
        "Job",
        "jobs",
        "job",
        true,
        &[],
        ALL,
        &[status("batch", "v1", "Job")],
        "io.k8s.api.batch.v1.Job",
    ),
    res(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        "cronjob",
        true,
        &["cj"],
        ALL,
        &[status("batch", "v1", "CronJob")],
        "io.k8s.api.batch.v1.CronJob",
    ),
    // coordination.k8s.io/v1
    res(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        "lease",
        true,
        &[],
        &[],
        &[],
        "io.k8s.api.coordination.v1.Lease",
    ),
    // discovery.k8s.io/v1
    res(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        true,
        &[],
        &[],
        &[],
        "io.k8s.api.discovery.v1.EndpointSlice",
    ),
    // extensions/v1beta1 deployments: the seed's original manifests use them. Stored and
    // served as apps/v1; requests in this version are converted.
    ResourceDef {
        group: "extensions",
        version: "v1beta1",
        kind: "Deployment",
        plural: "deployments",
        singular: "deployment",
        namespaced: true,
        short_names: &[],
        categories: &[],
        verbs: STANDARD_VERBS,
        subresources: &[status("extensions", "v1beta1", "Deployment")],
        definition: "io.k8s.api.apps.v1.Deployment",
        stored_as: Some(("apps", "v1")),
    },
];

/// Every served resource, core first, groups in discovery preference order.
pub fn all() -> &'static [ResourceDef] {
    RESOURCES
}

/// The resource with this plural name in this group version.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource serving this kind in this group version.
pub fn by_kind(group: &str, version: &str, kind: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// Splits an `apiVersion` into group and version (`v1` -> ("", "v1")).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// One served group with its versions, preferred first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupVersions {
    pub group: &'static str,
    pub versions: Vec<&'static str>,
}

/// The groups (excluding core) in discovery order.
pub fn groups() -> Vec<GroupVersions> {
    let mut out: Vec<GroupVersions> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        match out.iter_mut().find(|g| g.group == r.group) {
            Some(g) => {
                if !g.versions.contains(&r.version) {
                    g.versions.push(r.version);
                }
            }
            None => out.push(GroupVersions {
                group: r.group,
                versions: vec![r.version],
            }),
        }
    }
    out
}

/// The resources of one group version, in catalogue order.
pub fn in_group_version(group: &str, version: &str) -> Vec<&'static ResourceDef> {
    RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_per_group_version() {
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                if a.group == b.group && a.version == b.version {
                    assert_ne!(a.plural, b.plural);
                    assert_ne!(a.kind, b.kind);
                    for s in a.short_names {
                        assert!(!b.short_names.contains(s), "short name {s} twice");
                    }
                }
            }
        }
    }

    #[test]
    fn storage_keys_and_paths() {
        let deploy = find("apps", "v1", "deployments").unwrap();
        assert_eq!(
            deploy.key(Some("default"), "web"),
            "/registry/deployments/default/web"
        );
        let alias = find("extensions", "v1beta1", "deployments").unwrap();
        assert_eq!(alias.key_prefix(), deploy.key_prefix());
        assert_eq!(alias.storage_def().api_version(), "apps/v1");
        let node = by_kind("", "v1", "Node").unwrap();
        assert_eq!(node.key(Some("ignored"), "n1"), "/registry/nodes/n1");
        assert_eq!(node.collection_path(Some("x")), "/api/v1/nodes".to_string());
        assert_eq!(
            deploy.collection_path(Some("ns1")),
            "/apis/apps/v1/namespaces/ns1/deployments"
        );
    }

    #[test]
    fn groups_in_order_and_aliases_last() {
        let g = groups();
        assert_eq!(g[0].group, "apps");
        assert_eq!(g.last().unwrap().group, "extensions");
        assert_eq!(split_api_version("apps/v1"), ("apps", "v1"));
        assert_eq!(split_api_version("v1"), ("", "v1"));
        assert!(find("", "v1", "pods")
            .unwrap()
            .subresource("binding")
            .is_some());
    }
}
