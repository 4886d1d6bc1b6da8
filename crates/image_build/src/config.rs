//! The image config a build carries from step to step, kept as Docker's JSON so fields
//! the OCI type lacks (Healthcheck, OnBuild, Shell) survive.

use serde_json::{json, Map, Value};

/// Docker's default shell for shell-form instructions.
pub(crate) const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// An image config (`{"architecture", "os", "config": {...}, "history": [...]}`).
#[derive(Debug, Clone)]
pub(crate) struct ImageConfig(pub Map<String, Value>);

impl ImageConfig {
    /// The config of an empty image (`FROM scratch`).
    pub(crate) fn scratch() -> Self {
        let mut m = Map::new();
        m.insert("config".into(), json!({}));
        ImageConfig(m)
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        match serde_json::from_slice(bytes) {
            Ok(Value::Object(m)) => Ok(ImageConfig(m)),
            Ok(_) => Err("image config is not an object".into()),
            Err(e) => Err(format!("image config: {e}")),
        }
    }

    fn cfg(&mut self) -> &mut Map<String, Value> {
        let c = self.0.entry("config").or_insert_with(|| json!({}));
        if !c.is_object() {
            *c = json!({});
        }
        c.as_object_mut().expect("config is an object")
    }

    fn get(&self, k: &str) -> Option<&Value> {
        self.0
            .get("config")
            .and_then(|c| c.get(k))
            .filter(|v| !v.is_null())
    }

    pub(crate) fn set(&mut self, k: &str, v: Value) {
        self.cfg().insert(k.to_string(), v);
    }

    pub(crate) fn strings(&self, k: &str) -> Option<Vec<String>> {
        self.get(k).and_then(|v| v.as_array()).map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
    }

    pub(crate) fn string(&self, k: &str) -> String {
        self.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    }

    pub(crate) fn env(&self) -> Vec<String> {
        self.strings("Env").unwrap_or_default()
    }

    pub(crate) fn env_get(&self, key: &str) -> Option<String> {
        self.env().iter().find_map(|e| {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            (k == key).then(|| v.to_string())
        })
    }

    pub(crate) fn env_set(&mut self, key: &str, value: &str) {
        let mut env = self.env();
        let entry = format!("{key}={value}");
        match env
            .iter()
            .position(|e| e.split_once('=').map(|x| x.0).unwrap_or(e) == key)
        {
            Some(i) => env[i] = entry,
            None => env.push(entry),
        }
        self.set("Env", json!(env));
    }

    pub(crate) fn shell(&self) -> Vec<String> {
        self.strings("Shell")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect())
    }

    pub(crate) fn working_dir(&self) -> String {
        self.string("WorkingDir")
    }

    /// Adds to a `{"key": {}}` set (ExposedPorts, Volumes).
    pub(crate) fn add_to_set(&mut self, k: &str, item: &str) {
        let c = self.cfg();
        let e = c.entry(k.to_string()).or_insert_with(|| json!({}));
        if !e.is_object() {
            *e = json!({});
        }
        if let Some(o) = e.as_object_mut() {
            o.insert(item.to_string(), json!({}));
        }
    }

    pub(crate) fn set_label(&mut self, k: &str, v: &str) {
        let c = self.cfg();
        let e = c.entry("Labels").or_insert_with(|| json!({}));
        if !e.is_object() {
            *e = json!({});
        }
        if let Some(o) = e.as_object_mut() {
            o.insert(k.to_string(), json!(v));
        }
    }

    pub(crate) fn on_build(&self) -> Vec<String> {
        self.strings("OnBuild").unwrap_or_default()
    }

    /// Appends a history entry and sets the creation time (a new image).
    pub(crate) fn push_history(&mut self, created_by: &str, empty_layer: bool) {
        let now = image_store::go_time_now();
        let mut h = json!({"created": now, "created_by": created_by});
        if empty_layer {
            h["empty_layer"] = json!(true);
        }
        let hist = self.0.entry("history").or_insert_with(|| json!([]));
        if !hist.is_array() {
            *hist = json!([]);
        }
        if let Some(a) = hist.as_array_mut() {
            a.push(h);
        }
        self.0.insert("created".into(), json!(now));
        self.0.remove("rootfs");
    }

    pub(crate) fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }
}

/// Go's `%q` list form Docker uses in history (`["/bin/sh" "-c" "x"]`).
pub(crate) fn quoted_list(items: &[String]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    format!("[{}]", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_set_replaces_and_appends() {
        let mut c = ImageConfig::scratch();
        c.env_set("PATH", "/bin");
        c.env_set("A", "1");
        c.env_set("PATH", "/usr/bin:/bin");
        assert_eq!(c.env(), vec!["PATH=/usr/bin:/bin", "A=1"]);
        assert_eq!(c.env_get("A").as_deref(), Some("1"));
        assert_eq!(c.env_get("B"), None);
    }

    #[test]
    fn history_and_sets() {
        let mut c = ImageConfig::scratch();
        c.add_to_set("ExposedPorts", "80/tcp");
        c.set_label("a", "b");
        c.push_history("/bin/sh -c #(nop)  EXPOSE 80", true);
        let v = c.to_value();
        assert_eq!(v["config"]["ExposedPorts"]["80/tcp"], json!({}));
        assert_eq!(v["config"]["Labels"]["a"], "b");
        assert_eq!(v["history"][0]["empty_layer"], true);
        assert_eq!(c.shell(), vec!["/bin/sh", "-c"]);
        assert_eq!(quoted_list(&["a b".into(), "c".into()]), "[\"a b\" \"c\"]");
    }
}
