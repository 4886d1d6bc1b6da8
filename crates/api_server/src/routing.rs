//! Maps a request path onto what it names: discovery documents, OpenAPI documents, or a
//! resource collection, object or subresource in a group version.

use api_resources::ResourceDef;

use crate::status::ApiError;

/// What a path names.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Version,
    Health(String),
    ApiVersions,
    ApiGroupList,
    ApiGroup(String),
    ResourceList { group: String, version: String },
    OpenApiV2,
    OpenApiV3Index,
    OpenApiV3(String),
    Resource(Target),
}

/// A resource request: collection (no name), object, or object subresource.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub def: &'static ResourceDef,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// `deployments.apps`, `pods`.
pub fn qualified(def: &ResourceDef) -> String {
    if def.group.is_empty() {
        def.plural.to_string()
    } else {
        format!("{}.{}", def.plural, def.group)
    }
}

pub fn route(path: &str) -> Result<Route, ApiError> {
    let trimmed = path.trim_end_matches('/');
    let segs: Vec<&str> = trimmed.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => return Ok(Route::Version),
        [h @ ("healthz" | "livez" | "readyz"), ..] => return Ok(Route::Health(h.to_string())),
        ["api"] => return Ok(Route::ApiVersions),
        ["apis"] => return Ok(Route::ApiGroupList),
        ["openapi", "v2"] => return Ok(Route::OpenApiV2),
        ["openapi", "v3"] => return Ok(Route::OpenApiV3Index),
        ["openapi", "v3", rest @ ..] => return Ok(Route::OpenApiV3(rest.join("/"))),
        ["apis", group] => {
            return if api_resources::groups().iter().any(|g| g.group == *group) {
                Ok(Route::ApiGroup(group.to_string()))
            } else {
                Err(ApiError::path_not_found())
            }
        }
        ["api", version] => {
            return known_gv("", version).map(|_| Route::ResourceList {
                group: String::new(),
                version: version.to_string(),
            })
        }
        ["apis", group, version] => {
            return known_gv(group, version).map(|_| Route::ResourceList {
                group: group.to_string(),
                version: version.to_string(),
            })
        }
        _ => {}
    }
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::path_not_found()),
    };
    known_gv(group, version)?;
    let find = |plural: &str| {
        api_resources::find(group, version, plural).ok_or_else(ApiError::path_not_found)
    };
    let target = match rest {
        // /namespaces/{ns}/{plural}[/{name}[/{sub}]]
        ["namespaces", ns, plural, tail @ ..]
            if api_resources::find(group, version, plural).is_some_and(|d| d.namespaced) =>
        {
            let def = find(plural)?;
            let (name, sub) = match tail {
                [] => (None, None),
                [name] => (Some(name.to_string()), None),
                [name, sub] => (Some(name.to_string()), Some(sub.to_string())),
                _ => return Err(ApiError::path_not_found()),
            };
            Target {
                def,
                namespace: Some(ns.to_string()),
                name,
                subresource: sub,
            }
        }
        [plural, tail @ ..] => {
            let def = find(plural)?;
            let (name, sub) = match tail {
                [] => (None, None),
                [name] if !def.namespaced => (Some(name.to_string()), None),
                [name, sub] if !def.namespaced => (Some(name.to_string()), Some(sub.to_string())),
                // A namespaced resource across all namespaces has no object paths.
                _ => return Err(ApiError::path_not_found()),
            };
            Target {
                def,
                namespace: None,
                name,
                subresource: sub,
            }
        }
        _ => return Err(ApiError::path_not_found()),
    };
    if let Some(sub) = &target.subresource {
        if target.def.subresource(sub).is_none() {
            return Err(ApiError::path_not_found());
        }
    }
    if let Some(name) = &target.name {
        if name.is_empty() || name == "." || name == ".." || name.contains('%') {
            return Err(ApiError::bad_request(format!(
                "invalid resource name {name:?}"
            )));
        }
    }
    Ok(Route::Resource(target))
}

fn known_gv(group: &str, version: &str) -> Result<(), ApiError> {
    if api_resources::in_group_version(group, version).is_empty() {
        Err(ApiError::path_not_found())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(p: &str) -> Target {
        match route(p).unwrap() {
            Route::Resource(t) => t,
            other => panic!("{p}: {other:?}"),
        }
    }

    #[test]
    fn resource_paths() {
        let t = target("/api/v1/namespaces/default/pods/web/status");
        assert_eq!(t.def.plural, "pods");
        assert_eq!(t.namespace.as_deref(), Some("default"));
        assert_eq!(t.name.as_deref(), Some("web"));
        assert_eq!(t.subresource.as_deref(), Some("status"));
        let all = target("/apis/apps/v1/deployments");
        assert!(all.namespace.is_none() && all.name.is_none());
        let ns = target("/api/v1/namespaces/kube-system");
        assert_eq!(ns.def.plural, "namespaces");
        assert_eq!(ns.name.as_deref(), Some("kube-system"));
        let fin = target("/api/v1/namespaces/x/finalize");
        assert_eq!(fin.subresource.as_deref(), Some("finalize"));
        let node = target("/api/v1/nodes/n1/status");
        assert_eq!(node.name.as_deref(), Some("n1"));
        assert!(route("/api/v1/namespaces/d/pods/p/bogus").is_err());
        assert!(route("/apis/apps/v9/deployments").is_err());
        assert!(route("/api/v1/pods/p").is_err());
        assert_eq!(route("/apis/apps").unwrap(), Route::ApiGroup("apps".into()));
        assert_eq!(
            route("/openapi/v3/apis/apps/v1").unwrap(),
            Route::OpenApiV3("apis/apps/v1".into())
        );
        assert_eq!(
            qualified(target("/apis/apps/v1/namespaces/d/deployments").def),
            "deployments.apps"
        );
    }
}
