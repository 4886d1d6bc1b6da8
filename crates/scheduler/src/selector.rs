//! Matching rules: taints and tolerations, node selector terms (node affinity) and label
//! selectors (inter-pod affinity), parsed from Kubernetes JSON and evaluated the way
//! `k8s.io/component-helpers/scheduling/corev1` and `k8s.io/apimachinery/pkg/labels` do.

use std::collections::HashMap;

use serde_json::Value;

/// Labels of a node, pod or namespace.
pub(crate) type Labels = HashMap<String, String>;

/// The string at `v[key]`, or `""`.
pub(crate) fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A `map[string]string` field (labels, nodeSelector); non-string values are skipped.
pub(crate) fn string_map(v: Option<&Value>) -> Labels {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn array(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Taint {
    pub key: String,
    pub value: String,
    pub effect: String,
}

impl Taint {
    pub fn parse(v: &Value) -> Option<Taint> {
        let key = str_field(v, "key");
        if key.is_empty() {
            return None;
        }
        Some(Taint {
            key: key.to_string(),
            value: str_field(v, "value").to_string(),
            effect: str_field(v, "effect").to_string(),
        })
    }

    /// Only `NoSchedule` and `NoExecute` taints keep pods off a node at scheduling time.
    pub fn blocks_scheduling(&self) -> bool {
        self.effect == "NoSchedule" || self.effect == "NoExecute"
    }
}

/// A pod toleration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Toleration {
    key: String,
    operator: String,
    value: String,
    effect: String,
}

impl Toleration {
    pub fn parse(v: &Value) -> Toleration {
        Toleration {
            key: str_field(v, "key").to_string(),
            operator: str_field(v, "operator").to_string(),
            value: str_field(v, "value").to_string(),
            effect: str_field(v, "effect").to_string(),
        }
    }

    /// Whether this toleration tolerates `taint` (empty effect matches every effect, empty key
    /// with `Exists` matches every key, `Equal` or no operator compares values).
    pub fn tolerates(&self, taint: &Taint) -> bool {
        self.tolerates_parts(&taint.key, &taint.value, &taint.effect)
    }

    pub fn tolerates_parts(&self, key: &str, value: &str, effect: &str) -> bool {
        if !self.effect.is_empty() && self.effect != effect {
            return false;
        }
        if !self.key.is_empty() && self.key != key {
            return false;
        }
        match self.operator.as_str() {
            "Exists" => true,
            "" | "Equal" => self.value == value,
            _ => false,
        }
    }
}

/// Operators of node selector requirements and label selector expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "In" => Op::In,
            "NotIn" => Op::NotIn,
            "Exists" => Op::Exists,
            "DoesNotExist" => Op::DoesNotExist,
            "Gt" => Op::Gt,
            "Lt" => Op::Lt,
            _ => return None,
        })
    }
}

/// One `key op values` requirement. Invalid requirements are kept as `None` by the parsers,
/// which makes their term or selector match nothing, like Kubernetes' parse errors do.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

impl Requirement {
    /// Parses and validates; `allow_numeric` admits `Gt`/`Lt` (node selectors only).
    fn parse(v: &Value, allow_numeric: bool) -> Option<Requirement> {
        let key = str_field(v, "key");
        let op = Op::parse(str_field(v, "operator"))?;
        let values = string_list(v.get("values"));
        let valid = match op {
            Op::In | Op::NotIn => !values.is_empty(),
            Op::Exists | Op::DoesNotExist => values.is_empty(),
            Op::Gt | Op::Lt => {
                allow_numeric && values.len() == 1 && values[0].parse::<i64>().is_ok()
            }
        };
        if key.is_empty() || !valid {
            return None;
        }
        Some(Requirement {
            key: key.to_string(),
            op,
            values,
        })
    }

    fn matches(&self, value: Option<&str>) -> bool {
        match self.op {
            Op::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Op::NotIn => !value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::Gt | Op::Lt => {
                let (Some(have), Some(want)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|v| v.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.op == Op::Gt {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

/// One `nodeSelectorTerms` entry: its expressions and fields are ANDed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeSelectorTerm {
    /// `None` when some requirement was invalid: the term matches no node.
    expressions: Option<Vec<Requirement>>,
    fields: Option<Vec<Requirement>>,
}

impl NodeSelectorTerm {
    pub fn parse(v: &Value) -> NodeSelectorTerm {
        let expressions = array(v.get("matchExpressions"))
            .iter()
            .map(|r| Requirement::parse(r, true))
            .collect::<Option<Vec<_>>>();
        let fields = array(v.get("matchFields"))
            .iter()
            .map(|r| {
                Requirement::parse(r, false).filter(|r| {
                    r.key == "metadata.name"
                        && matches!(r.op, Op::In | Op::NotIn)
                        && r.values.len() == 1
                })
            })
            .collect::<Option<Vec<_>>>();
        NodeSelectorTerm {
            expressions,
            fields,
        }
    }

    /// A term with neither expressions nor fields matches nothing.
    pub fn matches(&self, node_name: &str, labels: &Labels) -> bool {
        let (Some(exprs), Some(fields)) = (&self.expressions, &self.fields) else {
            return false;
        };
        if exprs.is_empty() && fields.is_empty() {
            return false;
        }
        exprs
            .iter()
            .all(|r| r.matches(labels.get(&r.key).map(String::as_str)))
            && fields.iter().all(|r| r.matches(Some(node_name)))
    }

    /// The node names this term pins through `matchFields metadata.name In`, if it does
    /// (intersection over its requirements); `None` when it names no node.
    pub fn pinned_names(&self) -> Option<Vec<String>> {
        let fields = self.fields.as_ref()?;
        let mut names: Option<Vec<String>> = None;
        for r in fields.iter().filter(|r| r.op == Op::In) {
            names = Some(match names {
                None => r.values.clone(),
                Some(prev) => prev.into_iter().filter(|n| r.values.contains(n)).collect(),
            });
        }
        names
    }
}

/// A `metav1.LabelSelector`. A missing selector (JSON null) selects nothing; `{}` selects all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LabelSelector {
    /// `None`: selects nothing (absent or invalid selector).
    requirements: Option<Vec<Requirement>>,
}

impl LabelSelector {
    pub fn parse(v: Option<&Value>) -> LabelSelector {
        let Some(v) = v.filter(|v| v.is_object()) else {
            return LabelSelector { requirements: None };
        };
        let mut reqs = Vec::new();
        if let Some(m) = v.get("matchLabels").and_then(Value::as_object) {
            for (k, val) in m {
                let Some(val) = val.as_str() else {
                    return LabelSelector { requirements: None };
                };
                reqs.push(Requirement {
                    key: k.clone(),
                    op: Op::In,
                    values: vec![val.to_string()],
                });
            }
        }
        for r in array(v.get("matchExpressions")) {
            match Requirement::parse(r, false) {
                Some(r) => reqs.push(r),
                None => return LabelSelector { requirements: None },
            }
        }
        LabelSelector {
            requirements: Some(reqs),
        }
    }

    pub fn is_empty_match_all(&self) -> bool {
        self.requirements.as_ref().is_some_and(Vec::is_empty)
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        match &self.requirements {
            None => false,
            Some(reqs) => reqs
                .iter()
                .all(|r| r.matches(labels.get(&r.key).map(String::as_str))),
        }
    }
}

/// A required pod (anti-)affinity term, with its namespaces resolved against the pod that
/// owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AffinityTerm {
    pub selector: LabelSelector,
    /// Explicit namespaces (the owning pod's own when neither list nor selector is given).
    pub namespaces: Vec<String>,
    /// `namespaceSelector`; `{}` selects every namespace.
    pub namespace_selector: Option<LabelSelector>,
    pub topology_key: String,
}

impl AffinityTerm {
    pub fn parse(v: &Value, own_namespace: &str) -> AffinityTerm {
        let mut namespaces = string_list(v.get("namespaces"));
        let namespace_selector = v
            .get("namespaceSelector")
            .filter(|s| s.is_object())
            .map(|s| LabelSelector::parse(Some(s)));
        if namespaces.is_empty() && namespace_selector.is_none() {
            namespaces.push(own_namespace.to_string());
        }
        AffinityTerm {
            selector: LabelSelector::parse(v.get("labelSelector")),
            namespaces,
            namespace_selector,
            topology_key: str_field(v, "topologyKey").to_string(),
        }
    }

    /// Whether a pod in `namespace` with `labels` is selected by this term.
    pub fn matches_pod(
        &self,
        namespace: &str,
        labels: &Labels,
        namespace_labels: &HashMap<String, Labels>,
    ) -> bool {
        let ns_ok = self.namespaces.iter().any(|n| n == namespace)
            || self.namespace_selector.as_ref().is_some_and(|sel| {
                sel.is_empty_match_all()
                    || namespace_labels
                        .get(namespace)
                        .is_some_and(|l| sel.matches(l))
            });
        ns_ok && self.selector.matches(labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn toleration_rules() {
        let taint = Taint::parse(&json!({"key": "k", "value": "v", "effect": "NoSchedule"}))
            .expect("taint");
        let tol = |v: Value| Toleration::parse(&v).tolerates(&taint);
        assert!(tol(json!({"key": "k", "operator": "Equal", "value": "v"})));
        assert!(tol(
            json!({"key": "k", "value": "v", "effect": "NoSchedule"})
        ));
        assert!(!tol(json!({"key": "k", "value": "w"})));
        assert!(!tol(
            json!({"key": "k", "value": "v", "effect": "NoExecute"})
        ));
        assert!(tol(json!({"key": "k", "operator": "Exists"})));
        assert!(tol(json!({"operator": "Exists"})));
        assert!(!tol(json!({"key": "other", "operator": "Exists"})));
        assert!(!tol(json!({"key": "k", "operator": "Bogus", "value": "v"})));
    }

    #[test]
    fn node_selector_terms() {
        let l = labels(&[("zone", "a"), ("cores", "8")]);
        let t = |v: Value| NodeSelectorTerm::parse(&v).matches("n1", &l);
        assert!(t(
            json!({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]})
        ));
        assert!(!t(
            json!({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]})
        ));
        assert!(t(
            json!({"matchExpressions": [{"key": "gpu", "operator": "NotIn", "values": ["x"]}]})
        ));
        assert!(t(
            json!({"matchExpressions": [{"key": "zone", "operator": "Exists"}]})
        ));
        assert!(t(
            json!({"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]})
        ));
        assert!(t(
            json!({"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]})
        ));
        assert!(!t(
            json!({"matchExpressions": [{"key": "cores", "operator": "Lt", "values": ["4"]}]})
        ));
        assert!(!t(
            json!({"matchExpressions": [{"key": "zone", "operator": "Gt", "values": ["4"]}]})
        ));
        assert!(!t(
            json!({"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["x"]}]})
        ));
        assert!(!t(
            json!({"matchExpressions": [{"key": "zone", "operator": "In", "values": []}]})
        ));
        assert!(!t(json!({})), "an empty term matches nothing");
        assert!(t(
            json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]})
        ));
        assert!(!t(
            json!({"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]})
        ));
        assert!(!t(
            json!({"matchFields": [{"key": "metadata.uid", "operator": "In", "values": ["n1"]}]})
        ));
        let pinned = NodeSelectorTerm::parse(
            &json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}),
        );
        assert_eq!(pinned.pinned_names(), Some(vec!["n1".to_string()]));
    }

    #[test]
    fn label_selectors() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        let s = |v: Value| LabelSelector::parse(Some(&v)).matches(&l);
        assert!(s(json!({})));
        assert!(s(json!({"matchLabels": {"app": "web"}})));
        assert!(!s(json!({"matchLabels": {"app": "db"}})));
        assert!(s(
            json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]})
        ));
        assert!(!s(
            json!({"matchExpressions": [{"key": "tier", "operator": "Gt", "values": ["1"]}]})
        ));
        assert!(
            !LabelSelector::parse(None).matches(&l),
            "absent selector selects nothing"
        );
    }

    #[test]
    fn affinity_term_namespaces() {
        let l = labels(&[("app", "web")]);
        let mut ns = HashMap::new();
        ns.insert("prod".to_string(), labels(&[("env", "prod")]));
        let own = AffinityTerm::parse(&json!({"labelSelector": {}, "topologyKey": "x"}), "a");
        assert!(own.matches_pod("a", &l, &ns));
        assert!(!own.matches_pod("b", &l, &ns));
        let all = AffinityTerm::parse(
            &json!({"labelSelector": {}, "namespaceSelector": {}, "topologyKey": "x"}),
            "a",
        );
        assert!(all.matches_pod("b", &l, &ns));
        let sel = AffinityTerm::parse(
            &json!({"labelSelector": {}, "namespaceSelector": {"matchLabels": {"env": "prod"}}, "topologyKey": "x"}),
            "a",
        );
        assert!(sel.matches_pod("prod", &l, &ns));
        assert!(!sel.matches_pod("a", &l, &ns));
    }
}
