//! Exec instances: extra processes run in a running container.

use std::sync::{Arc, Mutex};

use bollard::models::ExecConfig;
use container_shim::client;
use container_shim::protocol::Request;
use tokio::net::UnixStream;

use crate::container::{write_atomic, Status};
use crate::error::{EngineError, Result};
use crate::Engine;

/// State of one exec instance, as `GET /exec/{id}/json` shows it.
#[derive(Debug, Clone)]
pub struct ExecState {
    pub running: bool,
    pub exit_code: Option<i64>,
    pub pid: i32,
    pub started: bool,
}

/// One exec instance.
#[derive(Debug)]
pub struct ExecInstance {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub state: Mutex<ExecState>,
}

impl ExecInstance {
    pub fn tty(&self) -> bool {
        self.config.tty.unwrap_or(false)
    }
    pub fn snapshot(&self) -> ExecState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Engine {
    /// `POST /containers/{id}/exec`.
    pub fn exec_create(&self, key: &str, config: ExecConfig) -> Result<String> {
        let rec = self.find(key)?.get();
        if rec.state.status != Status::Running {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(EngineError::InvalidArgument(
                "No exec command specified".into(),
            ));
        }
        let id = crate::names::new_id();
        let inst = Arc::new(ExecInstance {
            id: id.clone(),
            container_id: rec.id,
            config,
            state: Mutex::new(ExecState {
                running: false,
                exit_code: None,
                pid: 0,
                started: false,
            }),
        });
        self.execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), inst);
        Ok(id)
    }

    pub fn exec_get(&self, id: &str) -> Result<Arc<ExecInstance>> {
        self.execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::NotFound(format!("No such exec instance: {id}")))
    }

    /// Exec ids of a container, for inspect.
    pub fn exec_ids(&self, container_id: &str) -> Vec<String> {
        self.execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|e| e.container_id == container_id)
            .map(|e| e.id.clone())
            .collect()
    }

    pub(crate) fn forget_execs(&self, container_id: &str) {
        self.execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, e| e.container_id != container_id);
    }

    /// Starts an exec; returns the shim stream (frames) or the runtime's
    /// error text as `Ok(Err(msg))` so the caller can show it in the stream.
    pub async fn exec_start(
        &self,
        id: &str,
        size: (u16, u16),
    ) -> Result<std::result::Result<UnixStream, String>> {
        let inst = self.exec_get(id)?;
        {
            let mut st = inst.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.started {
                return Err(EngineError::Conflict(format!(
                    "Error: Exec command {id} has already run"
                )));
            }
            st.started = true;
            st.running = true;
        }
        let rec = self.find(&inst.container_id)?.get();
        if rec.state.status != Status::Running {
            self.exec_exited(id, 126);
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        let layout = self.layout(&rec.id);
        // The exec'd process inherits the container process's settings.
        let spec: serde_json::Value = std::fs::read(layout.bundle().join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| EngineError::Internal("container bundle is unreadable".into()))?;
        let mut process = spec.get("process").cloned().unwrap_or_default();
        let c = &inst.config;
        process["args"] = serde_json::json!(c.cmd.clone().unwrap_or_default());
        process["terminal"] = serde_json::json!(inst.tty());
        if let Some(env) = &c.env {
            let base: Vec<String> = process["env"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            process["env"] = serde_json::json!(crate::create::merge_env(&base, env));
        }
        if let Some(w) = c.working_dir.as_ref().filter(|w| !w.is_empty()) {
            process["cwd"] = serde_json::json!(w);
        }
        if let Some(u) = c.user.as_ref().filter(|u| !u.is_empty()) {
            let (uid, gid, extra) = container_spec::resolve_user(&layout.rootfs(), u)
                .map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
            process["user"] = serde_json::json!({"uid": uid, "gid": gid, "additionalGids": extra});
        }
        if c.privileged.unwrap_or(false) {
            process["capabilities"] = spec["process"]["capabilities"].clone();
        }
        if let Some(obj) = process.as_object_mut() {
            obj.remove("consoleSize");
        }
        std::fs::create_dir_all(&layout.run_dir)?;
        let path = layout.run_dir.join(format!("exec-{}.json", &id[..12]));
        write_atomic(
            &path,
            &serde_json::to_vec(&process).map_err(EngineError::internal)?,
        )?;
        let req = Request::Exec {
            exec_id: id.to_string(),
            process_path: path.display().to_string(),
            tty: inst.tty(),
            stdin: c.attach_stdin.unwrap_or(false),
            height: size.0,
            width: size.1,
        };
        let (conn, reply) = client::open(&layout.socket(), &req).await.map_err(|e| {
            EngineError::Conflict(format!("Container {} is not running: {e}", rec.id))
        })?;
        let _ = std::fs::remove_file(&path);
        if let Some(e) = reply.error {
            let code = if e.contains("not found") || e.contains("no such file") {
                127
            } else {
                126
            };
            self.exec_exited(id, code);
            return Ok(Err(e));
        }
        inst.state.lock().unwrap_or_else(|e| e.into_inner()).pid = reply.pid.unwrap_or(0);
        Ok(Ok(conn))
    }

    /// Records an exec's exit code.
    pub fn exec_exited(&self, id: &str, code: i64) {
        if let Ok(inst) = self.exec_get(id) {
            let mut st = inst.state.lock().unwrap_or_else(|e| e.into_inner());
            st.running = false;
            st.exit_code = Some(code);
        }
    }

    /// Resizes an exec's terminal.
    pub async fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let inst = self.exec_get(id)?;
        let layout = self.layout(&inst.container_id);
        client::call(
            &layout.socket(),
            &Request::ExecResize {
                exec_id: id.to_string(),
                height,
                width,
            },
        )
        .await
        .map(|_| ())
        .map_err(|e| EngineError::Internal(e.to_string()))
    }
}
