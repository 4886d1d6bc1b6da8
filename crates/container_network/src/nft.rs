//! nftables rules, generated from [`State`] and applied atomically through
//! `nft -j -f -` (JSON input, so no string is ever parsed as rule syntax).
//!
//! berth owns exactly one `ip` family table; every change regenerates the
//! whole table in one transaction (`add table; delete table; add table; ...`),
//! which keeps the rules an exact function of the persisted state. Existing
//! connections keep their NAT bindings because those live in conntrack.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::error::{NetError, Result};
use crate::state::State;

const NFT: &str = "nft";

fn m(op: &str, left: Value, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}

fn payload(proto: &str, field: &str) -> Value {
    json!({"payload": {"protocol": proto, "field": field}})
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn prefix(addr: &str, len: u8) -> Value {
    json!({"prefix": {"addr": addr, "len": len}})
}

/// Builds the full JSON transaction that (re)creates the table `table`.
pub fn ruleset(table: &str, state: &State) -> Value {
    let mut cmds: Vec<Value> = Vec::new();
    let t = json!({"family": "ip", "name": table});
    cmds.push(json!({"add": {"table": t}}));
    cmds.push(json!({"delete": {"table": t}}));
    cmds.push(json!({"add": {"table": t}}));

    let chain = |name: &str, kind: Option<(&str, &str, i32)>| -> Value {
        let mut c = json!({"family": "ip", "table": table, "name": name});
        if let Some((ty, hook, prio)) = kind {
            c["type"] = json!(ty);
            c["hook"] = json!(hook);
            c["prio"] = json!(prio);
            c["policy"] = json!("accept");
        }
        json!({"add": {"chain": c}})
    };
    let rule = |chain: &str, expr: Vec<Value>, comment: Option<&str>| -> Value {
        let mut r = json!({"family": "ip", "table": table, "chain": chain, "expr": expr});
        if let Some(c) = comment {
            let c: String = c.chars().take(120).collect();
            r["comment"] = json!(c);
        }
        json!({"add": {"rule": r}})
    };

    cmds.push(chain("prerouting", Some(("nat", "prerouting", -100))));
    cmds.push(chain("output", Some(("nat", "output", -100))));
    cmds.push(chain("postrouting", Some(("nat", "postrouting", 100))));
    cmds.push(chain("forward", Some(("filter", "forward", 0))));
    cmds.push(chain("ports", None));

    let local = m(
        "==",
        json!({"fib": {"result": "type", "flags": ["daddr"]}}),
        json!("local"),
    );
    for c in ["prerouting", "output"] {
        cmds.push(rule(
            c,
            vec![local.clone(), json!({"jump": {"target": "ports"}})],
            None,
        ));
    }

    for p in &state.published {
        let mut expr = Vec::new();
        if !p.mapping.host_ip.is_unspecified() {
            expr.push(m(
                "==",
                payload("ip", "daddr"),
                json!(p.mapping.host_ip.to_string()),
            ));
        }
        expr.push(m(
            "==",
            payload(p.mapping.proto.as_str(), "dport"),
            json!(p.mapping.host_port),
        ));
        expr.push(
            json!({"dnat": {"addr": p.container_ip.to_string(), "port": p.mapping.container_port}}),
        );
        cmds.push(rule("ports", expr, Some(&p.container_id)));
    }

    // Forward: DNAT'ed flows (published ports) may cross networks; otherwise
    // traffic between two of our bridges is dropped.
    let bridges: Vec<&str> = state.networks.values().map(|n| n.bridge.as_str()).collect();
    if bridges.len() > 1 {
        cmds.push(rule(
            "forward",
            vec![
                m("in", json!({"ct": {"key": "status"}}), json!("dnat")),
                json!({"accept": null}),
            ],
            None,
        ));
    }
    for n in state.networks.values() {
        let subnet = n.subnet.addr().to_string();
        let src = m(
            "==",
            payload("ip", "saddr"),
            prefix(&subnet, n.subnet.prefix()),
        );
        // Outbound NAT.
        cmds.push(rule(
            "postrouting",
            vec![
                src.clone(),
                m("!=", meta("oifname"), json!(n.bridge)),
                json!({"masquerade": null}),
            ],
            Some(&n.name),
        ));
        // Host-local clients (127.0.0.1:port) reaching a container: the
        // source must be rewritten or the reply would go to the container's
        // own loopback.
        cmds.push(rule(
            "postrouting",
            vec![
                m("==", meta("oifname"), json!(n.bridge)),
                m("==", payload("ip", "saddr"), prefix("127.0.0.0", 8)),
                json!({"masquerade": null}),
            ],
            Some(&n.name),
        ));
        // Hairpin: a container reaching a published port of a container on
        // the same bridge.
        cmds.push(rule(
            "postrouting",
            vec![
                m("==", meta("oifname"), json!(n.bridge)),
                src,
                m("in", json!({"ct": {"key": "status"}}), json!("dnat")),
                json!({"masquerade": null}),
            ],
            Some(&n.name),
        ));
        let others: Vec<&str> = bridges.iter().copied().filter(|b| *b != n.bridge).collect();
        if !others.is_empty() {
            cmds.push(rule(
                "forward",
                vec![
                    m("==", meta("iifname"), json!(n.bridge)),
                    m("==", meta("oifname"), json!({"set": others})),
                    json!({"drop": null}),
                ],
                Some(&n.name),
            ));
        }
    }
    json!({"nftables": cmds})
}

fn run_nft(args: &[&str], stdin: Option<&[u8]>) -> Result<String> {
    let mut cmd = Command::new(NFT);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| NetError::io("spawn nft (is nftables installed?)", e))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input)
            .map_err(|e| NetError::io("write to nft", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::io("wait for nft", e))?;
    if !out.status.success() {
        return Err(NetError::Nft(format!(
            "nft {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Replaces berth's table with the rules for `state`, atomically.
pub fn apply(table: &str, state: &State) -> Result<()> {
    let doc = ruleset(table, state);
    let bytes = serde_json::to_vec(&doc).map_err(|source| NetError::State {
        path: "<nft ruleset>".into(),
        source,
    })?;
    tracing::debug!(table, "applying nftables ruleset");
    run_nft(&["-j", "-f", "-"], Some(&bytes)).map(|_| ())
}

/// Whether berth's table exists.
pub fn table_exists(table: &str) -> Result<bool> {
    let out = run_nft(&["-j", "list", "tables", "ip"], None)?;
    let v: Value = serde_json::from_str(&out).map_err(|source| NetError::State {
        path: "<nft list tables>".into(),
        source,
    })?;
    Ok(v["nftables"].as_array().is_some_and(|items| {
        items
            .iter()
            .any(|i| i["table"]["name"].as_str() == Some(table))
    }))
}

/// Deletes berth's table if present (never touches any other table).
pub fn delete_table(table: &str) -> Result<()> {
    if table_exists(table)? {
        run_nft(&["delete", "table", "ip", table], None)?;
    }
    Ok(())
}

/// Table names must be plain identifiers.
pub fn validate_table_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(NetError::Config(format!(
            "bad nftables table name {name:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{NetworkRecord, PortMapping, Proto, PublishedRecord};
    use std::net::Ipv4Addr;

    fn net(name: &str, bridge: &str, subnet: &str) -> NetworkRecord {
        let subnet: crate::subnet::Ipv4Net = subnet.parse().unwrap();
        NetworkRecord {
            id: name.into(),
            name: name.into(),
            bridge: bridge.into(),
            subnet,
            gateway: subnet.gateway().unwrap(),
            is_default: false,
            dns: true,
            created_unix: 0,
        }
    }

    #[test]
    fn ruleset_shape() {
        let mut s = State::default();
        s.networks
            .insert("a".into(), net("a", "bra", "10.50.0.0/24"));
        s.networks
            .insert("b".into(), net("b", "brb", "10.51.0.0/24"));
        s.published.push(PublishedRecord {
            container_id: "c1".into(),
            container_ip: Ipv4Addr::new(10, 50, 0, 2),
            mapping: PortMapping {
                host_ip: Ipv4Addr::new(127, 0, 0, 1),
                host_port: 8080,
                container_port: 80,
                proto: Proto::Udp,
            },
        });
        let v = ruleset("bt1", &s);
        let text = v.to_string();
        assert!(
            text.contains(r#""dnat":{"addr":"10.50.0.2","port":80}"#),
            "{text}"
        );
        assert!(text.contains(r#""field":"dport","protocol":"udp""#));
        assert!(text.contains(r#""right":"127.0.0.1""#));
        assert!(text.contains(r#""set":["brb"]"#));
        assert!(text.contains(r#""set":["bra"]"#));
        // Every command targets only our table.
        for c in v["nftables"].as_array().unwrap() {
            let obj = c.as_object().unwrap().values().next().unwrap();
            let inner = obj.as_object().unwrap().values().next().unwrap();
            let t = inner.get("table").and_then(|t| t.as_str());
            let n = inner.get("name").and_then(|t| t.as_str());
            assert!(t == Some("bt1") || n == Some("bt1"), "{c}");
        }
    }

    #[test]
    fn table_names() {
        assert!(validate_table_name("berth").is_ok());
        assert!(validate_table_name("bt12ab34").is_ok());
        assert!(validate_table_name("").is_err());
        assert!(validate_table_name("a b").is_err());
        assert!(validate_table_name("1x").is_err());
    }
}
