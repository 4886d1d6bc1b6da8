//! Pieces of `exec`: building the process description with runc's rules, and
//! an executor that confines exec'd processes with the container's seccomp
//! profile.
//!
//! libcontainer builds the process of an exec from scratch (no user, no
//! rlimits, no terminal flag) when no `--process` file is given. runc instead
//! starts from the container's own `process` and overrides what the flags say,
//! so we do the same and always hand libcontainer a complete process file.

use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{
    Capabilities, Capability, LinuxCapabilities, LinuxSeccomp, Process, Spec,
};
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};

use crate::RuntimeError;

/// The exec flags that shape the process (runc's `exec` options).
#[derive(Debug, Default, Clone)]
pub struct ExecOverrides {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub tty: bool,
    pub user: Option<(u32, Option<u32>)>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
}

/// Loads a bundle's config.json.
pub fn load_spec(bundle: &Path) -> Result<Spec, RuntimeError> {
    let path = bundle.join("config.json");
    Spec::load(&path).map_err(|e| RuntimeError::Spec {
        path,
        message: e.to_string(),
    })
}

/// Loads a `--process` file.
pub fn load_process(path: &Path) -> Result<Process, RuntimeError> {
    let bytes = std::fs::read(path).map_err(|source| RuntimeError::Io {
        context: format!("read process file {}", path.display()),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| RuntimeError::Spec {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Normalises a capability name (`net_admin`, `CAP_NET_ADMIN`) to a capability.
pub fn parse_capability(raw: &str) -> Result<Capability, RuntimeError> {
    let upper = raw.trim().to_ascii_uppercase();
    let name = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    serde_json::from_value(serde_json::Value::String(name))
        .map_err(|_| RuntimeError::Usage(format!("unknown capability {raw:?}")))
}

/// Builds the exec'd process from the container's process plus the flags,
/// following runc: args replaced, env appended (a later `K=` wins), cwd,
/// user, extra gids, apparmor and label overridden, `--cap` added to the
/// bounding/effective/permitted sets (and ambient when inheritable is set),
/// terminal = `--tty`, no-new-privileges forced on by `--no-new-privs`.
pub fn process_from_spec(spec: &Spec, o: &ExecOverrides) -> Result<Process, RuntimeError> {
    if o.args.is_empty() {
        return Err(RuntimeError::Usage(
            "exec needs a command (or --process)".to_string(),
        ));
    }
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(o.args.clone()));
    p.set_command_line(None);
    let mut env = p.env().clone().unwrap_or_default();
    for (k, v) in &o.env {
        let entry = format!("{k}={v}");
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map(|(ek, _)| ek) == Some(k.as_str()))
        {
            Some(slot) => *slot = entry,
            None => env.push(entry),
        }
    }
    p.set_env(Some(env));
    if let Some(cwd) = &o.cwd {
        if !cwd.is_absolute() {
            return Err(RuntimeError::Usage(format!(
                "--cwd must be an absolute path, got {}",
                cwd.display()
            )));
        }
        p.set_cwd(cwd.clone());
    }
    p.set_terminal(Some(o.tty));
    p.set_console_size(None);
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &o.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &o.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    if let Some((uid, gid)) = o.user {
        p.user_mut().set_uid(uid);
        if let Some(gid) = gid {
            p.user_mut().set_gid(gid);
        }
        p.user_mut().set_username(None);
    }
    if !o.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(o.additional_gids.clone()));
    }
    if !o.caps.is_empty() {
        let extra = o
            .caps
            .iter()
            .map(|c| parse_capability(c))
            .collect::<Result<Vec<_>, _>>()?;
        let mut caps = p.capabilities().clone().unwrap_or_else(empty_caps);
        let add = |set: &Option<Capabilities>| -> Option<Capabilities> {
            let mut s = set.clone().unwrap_or_default();
            s.extend(extra.iter().copied());
            Some(s)
        };
        caps.set_bounding(add(caps.bounding()));
        caps.set_effective(add(caps.effective()));
        caps.set_permitted(add(caps.permitted()));
        if caps.inheritable().is_some() {
            caps.set_ambient(add(caps.ambient()));
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

fn empty_caps() -> LinuxCapabilities {
    let mut c = LinuxCapabilities::default();
    c.set_bounding(None);
    c.set_effective(None);
    c.set_permitted(None);
    c.set_inheritable(None);
    c.set_ambient(None);
    c
}

/// Executor for exec'd processes: libcontainer drops the container's
/// `linux.seccomp` when it builds an exec, so this one installs that filter
/// right before `execve`. Capabilities are already reduced at that point, so
/// when the kernel refuses the filter for lack of CAP_SYS_ADMIN the process
/// gets no_new_privs first (runc does the same for processes without
/// CAP_SYS_ADMIN only when the spec asks for it; we prefer staying confined).
#[derive(Clone)]
pub struct SeccompExecutor {
    seccomp: Option<LinuxSeccomp>,
}

impl SeccompExecutor {
    /// Wraps the default executor with the given profile (None: no filter).
    pub fn new(seccomp: Option<LinuxSeccomp>) -> Self {
        Self { seccomp }
    }
}

impl Executor for SeccompExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        if let Some(profile) = &self.seccomp {
            if libcontainer::seccomp::is_notify(profile) {
                return Err(ExecutorError::Other(
                    "seccomp notify profiles are not supported for exec".to_string(),
                ));
            }
            if libcontainer::seccomp::initialize_seccomp(profile).is_err() {
                // SAFETY: plain prctl with integer arguments.
                let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
                if rc != 0 {
                    return Err(ExecutorError::Other(format!(
                        "set no_new_privs for seccomp: {}",
                        std::io::Error::last_os_error()
                    )));
                }
                libcontainer::seccomp::initialize_seccomp(profile)
                    .map_err(|e| ExecutorError::Other(format!("install seccomp filter: {e}")))?;
            }
        }
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        let mut s = Spec::default();
        let mut p = s.process().clone().unwrap_or_default();
        p.set_env(Some(vec!["PATH=/bin".into(), "A=1".into()]));
        p.set_cwd("/work".into());
        p.user_mut().set_uid(5);
        p.user_mut().set_gid(6);
        p.set_terminal(Some(true));
        s.set_process(Some(p));
        s
    }

    fn overrides(args: &[&str]) -> ExecOverrides {
        ExecOverrides {
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn inherits_container_process() {
        let p = process_from_spec(&spec(), &overrides(&["echo", "x"])).expect("process");
        assert_eq!(
            p.args().as_deref(),
            Some(&["echo".to_string(), "x".to_string()][..])
        );
        assert_eq!(p.cwd(), &PathBuf::from("/work"));
        assert_eq!(p.user().uid(), 5);
        assert_eq!(p.user().gid(), 6);
        assert_eq!(p.terminal(), Some(false), "tty only with --tty");
        assert!(p.rlimits().is_some());
    }

    #[test]
    fn flags_override() {
        let mut o = overrides(&["sh"]);
        o.env = vec![("A".into(), "2".into()), ("B".into(), "3".into())];
        o.cwd = Some("/tmp".into());
        o.tty = true;
        o.user = Some((7, None));
        o.additional_gids = vec![10];
        o.caps = vec!["net_admin".into(), "CAP_SYS_TIME".into()];
        o.no_new_privs = true;
        let p = process_from_spec(&spec(), &o).expect("process");
        let env = p.env().clone().unwrap_or_default();
        assert_eq!(env, vec!["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(p.cwd(), &PathBuf::from("/tmp"));
        assert_eq!(p.terminal(), Some(true));
        assert_eq!(p.user().uid(), 7);
        assert_eq!(p.user().gid(), 6);
        assert_eq!(p.user().additional_gids().as_deref(), Some(&[10u32][..]));
        assert_eq!(p.no_new_privileges(), Some(true));
        let caps = p.capabilities().clone().expect("caps");
        let bounding = caps.bounding().clone().expect("bounding");
        assert!(bounding.contains(&Capability::NetAdmin));
        assert!(bounding.contains(&Capability::SysTime));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(process_from_spec(&spec(), &overrides(&[])).is_err());
        let mut o = overrides(&["sh"]);
        o.cwd = Some("relative".into());
        assert!(process_from_spec(&spec(), &o).is_err());
        let mut o = overrides(&["sh"]);
        o.caps = vec!["CAP_NOT_A_CAP".into()];
        assert!(process_from_spec(&spec(), &o).is_err());
    }

    #[test]
    fn process_file_errors_are_typed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.json");
        assert!(matches!(load_process(&path), Err(RuntimeError::Io { .. })));
        std::fs::write(&path, "{nope").expect("write");
        assert!(matches!(
            load_process(&path),
            Err(RuntimeError::Spec { .. })
        ));
    }
}
