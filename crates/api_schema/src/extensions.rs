//! The Kubernetes OpenAPI extensions k8s-openapi's schemas lack: the strategic-merge-patch
//! directives (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`) and the
//! server-side-apply list/map semantics (`x-kubernetes-list-type`,
//! `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`).
//!
//! The table records, for every property of a publishable definition, the `patchStrategy` /
//! `patchMergeKey` struct tags and `+listType` / `+listMapKey` / `+mapType` markers of the
//! corresponding Go field in `k8s.io/api` and `k8s.io/apimachinery`. Fields that only exist
//! in Kubernetes releases newer than the generated schemas are left out; a unit test checks
//! that every entry names an existing property.

use serde_json::{Map, Value};

/// The `x-kubernetes-list-type` of a list property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListType {
    /// No marker (the default, atomic for server-side apply).
    Unspecified,
    Atomic,
    Set,
    /// A list of objects identified by these keys.
    Map(&'static [&'static str]),
}

/// The extensions of one property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field {
    pub property: &'static str,
    pub patch_strategy: Option<&'static str>,
    pub patch_merge_key: Option<&'static str>,
    pub list_type: ListType,
    pub map_type: Option<&'static str>,
}

const fn field(
    property: &'static str,
    patch_strategy: Option<&'static str>,
    patch_merge_key: Option<&'static str>,
    list_type: ListType,
    map_type: Option<&'static str>,
) -> Field {
    Field {
        property,
        patch_strategy,
        patch_merge_key,
        list_type,
        map_type,
    }
}

/// A list merged by `key` in strategic merge patches and a list map keyed by `keys` for apply.
const fn merge_map(
    property: &'static str,
    key: &'static str,
    keys: &'static [&'static str],
) -> Field {
    field(
        property,
        Some("merge"),
        Some(key),
        ListType::Map(keys),
        None,
    )
}

/// A list replaced as a whole.
const fn atomic(property: &'static str) -> Field {
    field(property, None, None, ListType::Atomic, None)
}

/// A list of unique scalars.
const fn set(property: &'static str) -> Field {
    field(property, None, None, ListType::Set, None)
}

/// Per definition, the properties carrying extensions.
pub(crate) static FIELDS: &[(&str, &[Field])] = &[
    (
        "io.k8s.api.core.v1.PersistentVolumeSpec",
        &[atomic("accessModes"), atomic("mountOptions")],
    ),
    (
        "io.k8s.api.core.v1.PersistentVolumeClaimSpec",
        &[atomic("accessModes")],
    ),
    (
        "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
        &[
            atomic("accessModes"),
            merge_map("conditions", "type", &["type"]),
            field(
                "allocatedResourceStatuses",
                None,
                None,
                ListType::Unspecified,
                Some("granular"),
            ),
        ],
    ),
    ("io.k8s.api.core.v1.RBDVolumeSource", &[atomic("monitors")]),
    (
        "io.k8s.api.core.v1.RBDPersistentVolumeSource",
        &[atomic("monitors")],
    ),
    (
        "io.k8s.api.core.v1.CephFSVolumeSource",
        &[atomic("monitors")],
    ),
    (
        "io.k8s.api.core.v1.CephFSPersistentVolumeSource",
        &[atomic("monitors")],
    ),
    ("io.k8s.api.core.v1.SecretVolumeSource", &[atomic("items")]),
    ("io.k8s.api.core.v1.SecretProjection", &[atomic("items")]),
    ("io.k8s.api.core.v1.ISCSIVolumeSource", &[atomic("portals")]),
    (
        "io.k8s.api.core.v1.ISCSIPersistentVolumeSource",
        &[atomic("portals")],
    ),
    (
        "io.k8s.api.core.v1.FCVolumeSource",
        &[atomic("targetWWNs"), atomic("wwids")],
    ),
    (
        "io.k8s.api.core.v1.ConfigMapVolumeSource",
        &[atomic("items")],
    ),
    ("io.k8s.api.core.v1.ConfigMapProjection", &[atomic("items")]),
    (
        "io.k8s.api.core.v1.ProjectedVolumeSource",
        &[atomic("sources")],
    ),
    ("io.k8s.api.core.v1.HTTPGetAction", &[atomic("httpHeaders")]),
    ("io.k8s.api.core.v1.ExecAction", &[atomic("command")]),
    (
        "io.k8s.api.core.v1.Capabilities",
        &[atomic("add"), atomic("drop")],
    ),
    (
        "io.k8s.api.core.v1.ResourceRequirements",
        &[field("claims", None, None, ListType::Map(&["name"]), None)],
    ),
    (
        "io.k8s.api.core.v1.Container",
        &[
            atomic("command"),
            atomic("args"),
            merge_map("ports", "containerPort", &["containerPort", "protocol"]),
            atomic("envFrom"),
            merge_map("env", "name", &["name"]),
            atomic("resizePolicy"),
            merge_map("volumeMounts", "mountPath", &["mountPath"]),
            merge_map("volumeDevices", "devicePath", &["devicePath"]),
        ],
    ),
    (
        "io.k8s.api.core.v1.ContainerStatus",
        &[
            merge_map("volumeMounts", "mountPath", &["mountPath"]),
            merge_map("allocatedResourcesStatus", "name", &["name"]),
        ],
    ),
    (
        "io.k8s.api.core.v1.ResourceStatus",
        &[field(
            "resources",
            None,
            None,
            ListType::Map(&["resourceID"]),
            None,
        )],
    ),
    (
        "io.k8s.api.core.v1.LinuxContainerUser",
        &[atomic("supplementalGroups")],
    ),
    (
        "io.k8s.api.core.v1.NodeSelector",
        &[atomic("nodeSelectorTerms")],
    ),
    (
        "io.k8s.api.core.v1.NodeSelectorTerm",
        &[atomic("matchExpressions"), atomic("matchFields")],
    ),
    (
        "io.k8s.api.core.v1.NodeSelectorRequirement",
        &[atomic("values")],
    ),
    (
        "io.k8s.api.core.v1.PodAffinity",
        &[
            atomic("requiredDuringSchedulingIgnoredDuringExecution"),
            atomic("preferredDuringSchedulingIgnoredDuringExecution"),
        ],
    ),
    (
        "io.k8s.api.core.v1.PodAntiAffinity",
        &[
            atomic("requiredDuringSchedulingIgnoredDuringExecution"),
            atomic("preferredDuringSchedulingIgnoredDuringExecution"),
        ],
    ),
    (
        "io.k8s.api.core.v1.PodAffinityTerm",
        &[
            atomic("namespaces"),
            atomic("matchLabelKeys"),
            atomic("mismatchLabelKeys"),
        ],
    ),
    (
        "io.k8s.api.core.v1.NodeAffinity",
        &[atomic("preferredDuringSchedulingIgnoredDuringExecution")],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        &[
            field(
                "volumes",
                Some("merge,retainKeys"),
                Some("name"),
                ListType::Map(&["name"]),
                None,
            ),
            merge_map("initContainers", "name", &["name"]),
            merge_map("containers", "name", &["name"]),
            merge_map("ephemeralContainers", "name", &["name"]),
            field(
                "nodeSelector",
                None,
                None,
                ListType::Unspecified,
                Some("atomic"),
            ),
            merge_map("imagePullSecrets", "name", &["name"]),
            atomic("tolerations"),
            merge_map("hostAliases", "ip", &["ip"]),
            atomic("readinessGates"),
            merge_map(
                "topologySpreadConstraints",
                "topologyKey",
                &["topologyKey", "whenUnsatisfiable"],
            ),
            merge_map("schedulingGates", "name", &["name"]),
            field(
                "resourceClaims",
                Some("merge,retainKeys"),
                Some("name"),
                ListType::Map(&["name"]),
                None,
            ),
        ],
    ),
    (
        "io.k8s.api.core.v1.TopologySpreadConstraint",
        &[atomic("matchLabelKeys")],
    ),
    ("io.k8s.api.core.v1.HostAlias", &[atomic("hostnames")]),
    (
        "io.k8s.api.core.v1.PodSecurityContext",
        &[atomic("supplementalGroups"), atomic("sysctls")],
    ),
    (
        "io.k8s.api.core.v1.PodDNSConfig",
        &[atomic("nameservers"), atomic("searches"), atomic("options")],
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        &[
            atomic("command"),
            atomic("args"),
            merge_map("ports", "containerPort", &["containerPort", "protocol"]),
            atomic("envFrom"),
            merge_map("env", "name", &["name"]),
            atomic("resizePolicy"),
            merge_map("volumeMounts", "mountPath", &["mountPath"]),
            merge_map("volumeDevices", "devicePath", &["devicePath"]),
        ],
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        &[
            merge_map("conditions", "type", &["type"]),
            field("hostIPs", Some("merge"), Some("ip"), ListType::Atomic, None),
            merge_map("podIPs", "ip", &["ip"]),
            atomic("initContainerStatuses"),
            atomic("containerStatuses"),
            atomic("ephemeralContainerStatuses"),
            field(
                "resourceClaimStatuses",
                Some("merge,retainKeys"),
                Some("name"),
                ListType::Map(&["name"]),
                None,
            ),
        ],
    ),
    (
        "io.k8s.api.core.v1.ReplicationControllerSpec",
        &[field(
            "selector",
            None,
            None,
            ListType::Unspecified,
            Some("atomic"),
        )],
    ),
    (
        "io.k8s.api.core.v1.ReplicationControllerStatus",
        &[merge_map("conditions", "type", &["type"])],
    ),
    (
        "io.k8s.api.core.v1.ServiceStatus",
        &[merge_map("conditions", "type", &["type"])],
    ),
    (
        "io.k8s.api.core.v1.LoadBalancerStatus",
        &[atomic("ingress")],
    ),
    ("io.k8s.api.core.v1.LoadBalancerIngress", &[atomic("ports")]),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        &[
            merge_map("ports", "port", &["port", "protocol"]),
            field(
                "selector",
                None,
                None,
                ListType::Unspecified,
                Some("atomic"),
            ),
            atomic("clusterIPs"),
            atomic("externalIPs"),
            atomic("loadBalancerSourceRanges"),
            atomic("ipFamilies"),
        ],
    ),
    (
        "io.k8s.api.core.v1.ServiceAccount",
        &[
            merge_map("secrets", "name", &["name"]),
            atomic("imagePullSecrets"),
        ],
    ),
    ("io.k8s.api.core.v1.Endpoints", &[atomic("subsets")]),
    (
        "io.k8s.api.core.v1.EndpointSubset",
        &[
            atomic("addresses"),
            atomic("notReadyAddresses"),
            atomic("ports"),
        ],
    ),
    (
        "io.k8s.api.core.v1.NodeSpec",
        &[
            field("podCIDRs", Some("merge"), None, ListType::Set, None),
            atomic("taints"),
        ],
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        &[
            merge_map("conditions", "type", &["type"]),
            merge_map("addresses", "type", &["type"]),
            atomic("images"),
            atomic("volumesInUse"),
            atomic("volumesAttached"),
            atomic("runtimeHandlers"),
        ],
    ),
    ("io.k8s.api.core.v1.ContainerImage", &[atomic("names")]),
    ("io.k8s.api.core.v1.NamespaceSpec", &[atomic("finalizers")]),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        &[merge_map("conditions", "type", &["type"])],
    ),
    ("io.k8s.api.core.v1.LimitRangeSpec", &[atomic("limits")]),
    ("io.k8s.api.core.v1.ResourceQuotaSpec", &[atomic("scopes")]),
    (
        "io.k8s.api.core.v1.ScopeSelector",
        &[atomic("matchExpressions")],
    ),
    (
        "io.k8s.api.core.v1.ScopedResourceSelectorRequirement",
        &[atomic("values")],
    ),
    (
        "io.k8s.api.core.v1.DownwardAPIVolumeSource",
        &[atomic("items")],
    ),
    (
        "io.k8s.api.core.v1.DownwardAPIProjection",
        &[atomic("items")],
    ),
    (
        "io.k8s.api.apps.v1.StatefulSetSpec",
        &[atomic("volumeClaimTemplates")],
    ),
    (
        "io.k8s.api.apps.v1.StatefulSetStatus",
        &[merge_map("conditions", "type", &["type"])],
    ),
    (
        "io.k8s.api.apps.v1.DeploymentSpec",
        &[field(
            "strategy",
            Some("retainKeys"),
            None,
            ListType::Unspecified,
            None,
        )],
    ),
    (
        "io.k8s.api.apps.v1.DeploymentStatus",
        &[merge_map("conditions", "type", &["type"])],
    ),
    (
        "io.k8s.api.apps.v1.DaemonSetStatus",
        &[merge_map("conditions", "type", &["type"])],
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        &[merge_map("conditions", "type", &["type"])],
    ),
    (
        "io.k8s.api.batch.v1.PodFailurePolicyOnExitCodesRequirement",
        &[set("values")],
    ),
    (
        "io.k8s.api.batch.v1.PodFailurePolicyRule",
        &[atomic("onPodConditions")],
    ),
    ("io.k8s.api.batch.v1.PodFailurePolicy", &[atomic("rules")]),
    ("io.k8s.api.batch.v1.SuccessPolicy", &[atomic("rules")]),
    (
        "io.k8s.api.batch.v1.JobStatus",
        &[field(
            "conditions",
            Some("merge"),
            Some("type"),
            ListType::Atomic,
            None,
        )],
    ),
    (
        "io.k8s.api.batch.v1.UncountedTerminatedPods",
        &[set("succeeded"), set("failed")],
    ),
    ("io.k8s.api.batch.v1.CronJobStatus", &[atomic("active")]),
    (
        "io.k8s.api.discovery.v1.EndpointSlice",
        &[atomic("endpoints"), atomic("ports")],
    ),
    ("io.k8s.api.discovery.v1.Endpoint", &[set("addresses")]),
    (
        "io.k8s.api.discovery.v1.EndpointHints",
        &[atomic("forZones"), atomic("forNodes")],
    ),
    (
        "io.k8s.api.policy.v1.PodDisruptionBudgetSpec",
        &[field(
            "selector",
            Some("replace"),
            None,
            ListType::Unspecified,
            None,
        )],
    ),
    (
        "io.k8s.api.policy.v1.PodDisruptionBudgetStatus",
        &[merge_map("conditions", "type", &["type"])],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        &[
            merge_map("ownerReferences", "uid", &["uid"]),
            field("finalizers", Some("merge"), None, ListType::Set, None),
            atomic("managedFields"),
        ],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        &[atomic("dryRun")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.StatusDetails",
        &[atomic("causes")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions",
        &[atomic("versions"), atomic("serverAddressByClientCIDRs")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList",
        &[atomic("groups")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup",
        &[atomic("versions"), atomic("serverAddressByClientCIDRs")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIResource",
        &[atomic("shortNames"), atomic("categories")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
        &[atomic("resources")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
        &[atomic("matchExpressions")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement",
        &[atomic("values")],
    ),
];

/// Definitions whose objects are replaced as a whole by server-side apply
/// (`+structType=atomic`), published as `x-kubernetes-map-type: atomic`.
pub(crate) static ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.EndpointAddress",
    "io.k8s.api.core.v1.EndpointPort",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.core.v1.SecretReference",
    "io.k8s.api.core.v1.ScopeSelector",
    "io.k8s.api.discovery.v1.EndpointPort",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
];

/// Writes the table's extensions into the definitions present in `defs`.
pub(crate) fn apply(defs: &mut Map<String, Value>) {
    for (definition, fields) in FIELDS {
        let Some(props) = defs
            .get_mut(*definition)
            .and_then(|d| d.get_mut("properties"))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        for f in *fields {
            let Some(prop) = props.get_mut(f.property).and_then(Value::as_object_mut) else {
                tracing::debug!(definition, property = f.property, "no such property");
                continue;
            };
            if let Some(s) = f.patch_strategy {
                prop.insert("x-kubernetes-patch-strategy".into(), s.into());
            }
            if let Some(k) = f.patch_merge_key {
                prop.insert("x-kubernetes-patch-merge-key".into(), k.into());
            }
            match f.list_type {
                ListType::Unspecified => {}
                ListType::Atomic => {
                    prop.insert("x-kubernetes-list-type".into(), "atomic".into());
                }
                ListType::Set => {
                    prop.insert("x-kubernetes-list-type".into(), "set".into());
                }
                ListType::Map(keys) => {
                    prop.insert("x-kubernetes-list-type".into(), "map".into());
                    prop.insert("x-kubernetes-list-map-keys".into(), keys.to_vec().into());
                }
            }
            if let Some(m) = f.map_type {
                prop.insert("x-kubernetes-map-type".into(), m.into());
            }
        }
    }
    for name in ATOMIC_STRUCTS {
        if let Some(d) = defs.get_mut(*name).and_then(Value::as_object_mut) {
            d.insert("x-kubernetes-map-type".into(), "atomic".into());
        }
    }
}

/// The extensions of `definition.property`, if the table has any.
#[cfg(test)]
pub(crate) fn lookup(definition: &str, property: &str) -> Option<&'static Field> {
    FIELDS
        .iter()
        .find(|(d, _)| *d == definition)
        .and_then(|(_, fs)| fs.iter().find(|f| f.property == property))
}
