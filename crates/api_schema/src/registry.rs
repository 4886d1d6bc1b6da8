//! The Rust types behind the definition names berth can publish: a definition name maps to a
//! function adding that type's schema (and everything it references) to a schemars generator.
//!
//! Only the entries the catalogue (or the fixed extra kinds) ask for are ever generated, so an
//! entry costs binary size but no memory until it is served.

use std::borrow::Cow;

use k8s_openapi::api::{apps, autoscaling, batch, coordination, core, discovery, policy};
use k8s_openapi::apimachinery::pkg::apis::meta;
use schemars::{JsonSchema, Schema, SchemaGenerator};

/// One registered type: its schema name and a function that adds it to a generator.
pub(crate) struct Entry {
    pub name: fn() -> Cow<'static, str>,
    pub add: fn(&mut SchemaGenerator) -> Schema,
}

const fn entry<T: JsonSchema>() -> Entry {
    Entry {
        name: T::schema_name,
        add: SchemaGenerator::subschema_for::<T>,
    }
}

/// Every type whose definition can be published.
pub(crate) static ENTRIES: &[Entry] = &[
    // core/v1
    entry::<core::v1::Namespace>(),
    entry::<core::v1::Pod>(),
    entry::<core::v1::Node>(),
    entry::<core::v1::Service>(),
    entry::<core::v1::Endpoints>(),
    entry::<core::v1::Secret>(),
    entry::<core::v1::ConfigMap>(),
    entry::<core::v1::Event>(),
    entry::<core::v1::ServiceAccount>(),
    entry::<core::v1::Binding>(),
    entry::<core::v1::PersistentVolume>(),
    entry::<core::v1::PersistentVolumeClaim>(),
    entry::<core::v1::ReplicationController>(),
    entry::<core::v1::PodTemplate>(),
    entry::<core::v1::ResourceQuota>(),
    entry::<core::v1::LimitRange>(),
    // apps/v1
    entry::<apps::v1::Deployment>(),
    entry::<apps::v1::ReplicaSet>(),
    entry::<apps::v1::DaemonSet>(),
    entry::<apps::v1::StatefulSet>(),
    entry::<apps::v1::ControllerRevision>(),
    // batch/v1
    entry::<batch::v1::Job>(),
    entry::<batch::v1::CronJob>(),
    // others
    entry::<coordination::v1::Lease>(),
    entry::<discovery::v1::EndpointSlice>(),
    entry::<autoscaling::v1::Scale>(),
    entry::<policy::v1::Eviction>(),
    entry::<policy::v1::PodDisruptionBudget>(),
    // meta/v1: request/response envelopes and discovery documents
    entry::<meta::v1::Status>(),
    entry::<meta::v1::DeleteOptions>(),
    entry::<meta::v1::WatchEvent<core::v1::Pod>>(),
    entry::<meta::v1::Patch>(),
    entry::<meta::v1::APIVersions>(),
    entry::<meta::v1::APIGroupList>(),
    entry::<meta::v1::APIGroup>(),
    entry::<meta::v1::APIResourceList>(),
];

/// The registered entry publishing `definition`, if any.
pub(crate) fn find(definition: &str) -> Option<&'static Entry> {
    ENTRIES.iter().find(|e| (e.name)() == definition)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_canonical_and_unique() {
        let names: Vec<_> = ENTRIES.iter().map(|e| (e.name)()).collect();
        for (i, n) in names.iter().enumerate() {
            assert!(n.starts_with("io.k8s."), "{n}");
            assert!(!names[i + 1..].contains(n), "{n} twice");
        }
        assert!(find("io.k8s.api.apps.v1.Deployment").is_some());
        assert!(find("io.k8s.api.apps.v1.Nope").is_none());
    }
}
