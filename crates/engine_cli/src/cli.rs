//! The command table: every verb's usage line, description, aliases and
//! flags (names, shorthands, types, defaults and help text as docker's CLI
//! shows them), plus the global options and verb alias resolution.

use crate::flags::{Args, CommandSpec, Flag};
use crate::opts;

/// Name printed in messages in place of "docker".
pub const BIN: &str = "berth";

const FORMAT_TABLE_USAGE: &str = "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates";
const FORMAT_USAGE: &str = "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates";
const CGROUPNS_USAGE: &str = "Cgroup namespace to use (host|private)\n'host':    Run the container in the Docker host's cgroup namespace\n'private': Run the container in its own private cgroup namespace\n'':        Use the cgroup namespace as configured by the\n           default-cgroupns-mode option on the daemon (default)";

fn check_attach(v: &str) -> Result<(), String> {
    match v.to_ascii_lowercase().as_str() {
        "stdin" | "stdout" | "stderr" => Ok(()),
        _ => Err("valid streams are STDIN, STDOUT and STDERR".into()),
    }
}
fn check_cpus(v: &str) -> Result<(), String> {
    opts::parse_cpus(v).map(|_| ())
}
fn check_swap(v: &str) -> Result<(), String> {
    opts::mem_swap_bytes(v).map(|_| ())
}
fn check_mount(v: &str) -> Result<(), String> {
    opts::parse_mount(v).map(|_| ())
}
fn check_ulimit(v: &str) -> Result<(), String> {
    opts::parse_ulimit(v).map(|_| ())
}
fn check_env(v: &str) -> Result<(), String> {
    opts::validate_env(v).map(|_| ())
}
fn check_extra_host(v: &str) -> Result<(), String> {
    opts::validate_extra_host(v).map(|_| ())
}
fn check_ip(v: &str) -> Result<(), String> {
    opts::validate_ip(v)
}
fn check_device(v: &str) -> Result<(), String> {
    opts::parse_device(v).map(|_| ())
}
fn check_bps(v: &str) -> Result<(), String> {
    opts::parse_throttle_bps(v).map(|_| ())
}
fn check_iops(v: &str) -> Result<(), String> {
    opts::parse_throttle_iops(v).map(|_| ())
}
fn check_weight_device(v: &str) -> Result<(), String> {
    opts::parse_weight_device(v).map(|_| ())
}
fn check_isolation(v: &str) -> Result<(), String> {
    match v {
        "" | "default" | "process" | "hyperv" => Ok(()),
        _ => Err(format!("invalid isolation: {v}")),
    }
}
fn check_filter(v: &str) -> Result<(), String> {
    if v.contains('=') {
        Ok(())
    } else {
        Err("bad format of filter (expected name=value)".into())
    }
}
fn check_label(v: &str) -> Result<(), String> {
    let key = v.split_once('=').map_or(v, |(k, _)| k).trim();
    if key.is_empty() {
        Err(format!("invalid label '{v}': empty name"))
    } else if key.contains([' ', '\t']) {
        Err(format!("label '{key}' contains whitespaces"))
    } else {
        Ok(())
    }
}
fn check_pull(v: &str) -> Result<(), String> {
    opts::validate_pull(v)
}

fn sw(long: &'static str, short: Option<char>, usage: &'static str) -> Flag {
    Flag::switch(long, short, usage)
}
fn val(long: &'static str, short: Option<char>, ty: &'static str, usage: &'static str) -> Flag {
    Flag::value(long, short, ty, usage)
}

/// Flags shared by `run` and `create`.
fn container_flags(run: bool) -> Vec<Flag> {
    let mut f = vec![
        val("add-host", None, "list", "Add a custom host-to-IP mapping (host:ip)").check(check_extra_host),
        val("annotation", None, "map", "Add an annotation to the container (passed through to the OCI runtime)").default("map[]"),
        val("attach", Some('a'), "list", "Attach to STDIN, STDOUT or STDERR").check(check_attach),
        val("blkio-weight", None, "uint16", "Block IO (relative weight), between 10 and 1000, or 0 to disable").default("0"),
        val("blkio-weight-device", None, "list", "Block IO weight (relative device weight)").default("[]").check(check_weight_device),
        val("cap-add", None, "list", "Add Linux capabilities"),
        val("cap-drop", None, "list", "Drop Linux capabilities"),
        val("cgroup-parent", None, "string", "Optional parent cgroup for the container"),
        val("cgroupns", None, "string", CGROUPNS_USAGE),
        val("cidfile", None, "string", "Write the container ID to the file"),
        val("cpu-count", None, "int", "CPU count (Windows only)"),
        val("cpu-percent", None, "int", "CPU percent (Windows only)"),
        val("cpu-period", None, "int", "Limit CPU CFS (Completely Fair Scheduler) period"),
        val("cpu-quota", None, "int", "Limit CPU CFS (Completely Fair Scheduler) quota"),
        val("cpu-rt-period", None, "int", "Limit CPU real-time period in microseconds"),
        val("cpu-rt-runtime", None, "int", "Limit CPU real-time runtime in microseconds"),
        val("cpu-shares", Some('c'), "int", "CPU shares (relative weight)"),
        val("cpus", None, "decimal", "Number of CPUs").check(check_cpus),
        val("cpuset-cpus", None, "string", "CPUs in which to allow execution (0-3, 0,1)"),
        val("cpuset-mems", None, "string", "MEMs in which to allow execution (0-3, 0,1)"),
        val("device", None, "list", "Add a host device to the container").check(check_device),
        val("device-cgroup-rule", None, "list", "Add a rule to the cgroup allowed devices list"),
        val("device-read-bps", None, "list", "Limit read rate (bytes per second) from a device").default("[]").check(check_bps),
        val("device-read-iops", None, "list", "Limit read rate (IO per second) from a device").default("[]").check(check_iops),
        val("device-write-bps", None, "list", "Limit write rate (bytes per second) to a device").default("[]").check(check_bps),
        val("device-write-iops", None, "list", "Limit write rate (IO per second) to a device").default("[]").check(check_iops),
        sw("disable-content-trust", None, "Skip image verification").default("true"),
        val("dns", None, "list", "Set custom DNS servers").check(check_ip),
        val("dns-option", None, "list", "Set DNS options"),
        val("dns-search", None, "list", "Set custom DNS search domains"),
        val("domainname", None, "string", "Container NIS domain name"),
        val("entrypoint", None, "string", "Overwrite the default ENTRYPOINT of the image"),
        val("env", Some('e'), "list", "Set environment variables").check(check_env),
        val("env-file", None, "list", "Read in a file of environment variables"),
        val("expose", None, "list", "Expose a port or a range of ports"),
        val("group-add", None, "list", "Add additional groups to join"),
        val("health-cmd", None, "string", "Command to run to check health"),
        val("health-interval", None, "duration", "Time between running the check (ms|s|m|h)").default("0s"),
        val("health-retries", None, "int", "Consecutive failures needed to report unhealthy"),
        val("health-start-interval", None, "duration", "Time between running the check during the start period (ms|s|m|h)").default("0s"),
        val("health-start-period", None, "duration", "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h)").default("0s"),
        val("health-timeout", None, "duration", "Maximum time to allow one check to run (ms|s|m|h)").default("0s"),
        sw("help", None, "Print usage"),
        val("hostname", Some('h'), "string", "Container host name"),
        sw("init", None, "Run an init inside the container that forwards signals and reaps processes"),
        sw("interactive", Some('i'), "Keep STDIN open even if not attached"),
        val("ip", None, "string", "IPv4 address (e.g., 172.30.100.104)"),
        val("ip6", None, "string", "IPv6 address (e.g., 2001:db8::33)"),
        val("io-maxbandwidth", None, "bytes", "Maximum IO bandwidth limit for the system drive (Windows only)"),
        val("io-maxiops", None, "uint", "Maximum IOps limit for the system drive (Windows only)"),
        val("ipc", None, "string", "IPC mode to use"),
        val("isolation", None, "string", "Container isolation technology").check(check_isolation),
        val("kernel-memory", None, "bytes", "Kernel memory limit"),
        val("label", Some('l'), "list", "Set meta data on a container"),
        val("label-file", None, "list", "Read in a line delimited file of labels"),
        val("link", None, "list", "Add link to another container"),
        val("link-local-ip", None, "list", "Container IPv4/IPv6 link-local addresses"),
        val("log-driver", None, "string", "Logging driver for the container"),
        val("log-opt", None, "list", "Log driver options"),
        val("mac-address", None, "string", "Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
        val("memory", Some('m'), "bytes", "Memory limit"),
        val("memory-reservation", None, "bytes", "Memory soft limit"),
        val("memory-swap", None, "bytes", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap").check(check_swap),
        val("memory-swappiness", None, "int", "Tune container memory swappiness (0 to 100)").default("-1"),
        val("mount", None, "mount", "Attach a filesystem mount to the container").check(check_mount),
        val("name", None, "string", "Assign a name to the container"),
        val("net", None, "network", "Connect a container to a network").hidden(),
        val("net-alias", None, "list", "Add network-scoped alias for the container").hidden(),
        val("network", None, "network", "Connect a container to a network"),
        val("network-alias", None, "list", "Add network-scoped alias for the container"),
        sw("no-healthcheck", None, "Disable any container-specified HEALTHCHECK"),
        sw("oom-kill-disable", None, "Disable OOM Killer"),
        val("oom-score-adj", None, "int", "Tune host's OOM preferences (-1000 to 1000)"),
        val("pid", None, "string", "PID namespace to use"),
        val("pids-limit", None, "int", "Tune container pids limit (set -1 for unlimited)"),
        val("platform", None, "string", "Set platform if server is multi-platform capable"),
        sw("privileged", None, "Give extended privileges to this container"),
        val("publish", Some('p'), "list", "Publish a container's port(s) to the host"),
        sw("publish-all", Some('P'), "Publish all exposed ports to random ports"),
        if run {
            val("pull", None, "string", "Pull image before running (\"always\", \"missing\", \"never\")")
        } else {
            val("pull", None, "string", "Pull image before creating (\"always\", \"|missing\", \"never\")")
        }
        .default("\"missing\"")
        .check(check_pull),
        sw("quiet", Some('q'), "Suppress the pull output"),
        sw("read-only", None, "Mount the container's root filesystem as read only"),
        val("restart", None, "string", "Restart policy to apply when a container exits").default("\"no\""),
        sw("rm", None, "Automatically remove the container and its associated anonymous volumes when it exits"),
        val("runtime", None, "string", "Runtime to use for this container"),
        val("security-opt", None, "list", "Security Options"),
        val("shm-size", None, "bytes", "Size of /dev/shm"),
        val("stop-signal", None, "string", "Signal to stop the container"),
        val("stop-timeout", None, "int", "Timeout (in seconds) to stop a container"),
        val("storage-opt", None, "list", "Storage driver options for the container"),
        val("sysctl", None, "map", "Sysctl options").default("map[]"),
        val("tmpfs", None, "list", "Mount a tmpfs directory"),
        sw("tty", Some('t'), "Allocate a pseudo-TTY"),
        val("ulimit", None, "ulimit", "Ulimit options").default("[]").check(check_ulimit),
        val("user", Some('u'), "string", "Username or UID (format: <name|uid>[:<group|gid>])"),
        val("userns", None, "string", "User namespace to use"),
        val("uts", None, "string", "UTS namespace to use"),
        val("volume", Some('v'), "list", "Bind mount a volume"),
        val("volume-driver", None, "string", "Optional volume driver for the container"),
        val("volumes-from", None, "list", "Mount volumes from the specified container(s)"),
        val("workdir", Some('w'), "string", "Working directory inside the container"),
    ];
    if run {
        f.push(sw(
            "detach",
            Some('d'),
            "Run container in background and print container ID",
        ));
        f.push(val(
            "detach-keys",
            None,
            "string",
            "Override the key sequence for detaching a container",
        ));
        f.push(sw("sig-proxy", None, "Proxy received signals to the process").default("true"));
    }
    f
}

fn spec(
    path: &'static str,
    usage: &'static str,
    short: &'static str,
    aliases: &'static [&'static str],
    flags: Vec<Flag>,
    args: Args,
) -> CommandSpec {
    CommandSpec {
        path,
        usage,
        short,
        aliases,
        flags,
        args,
        interspersed: true,
    }
}

/// Looks up the spec for a canonical command path.
pub fn command(path: &str) -> Option<CommandSpec> {
    let s = match path {
        "run" => CommandSpec {
            interspersed: false,
            ..spec("run", "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create and run a new container from an image", &["container run", "run"], container_flags(true), Args::Min(1))
        },
        "create" => CommandSpec {
            interspersed: false,
            ..spec("create", "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a new container", &["container create", "create"], container_flags(false), Args::Min(1))
        },
        "exec" => CommandSpec {
            interspersed: false,
            ..spec("exec", "[OPTIONS] CONTAINER COMMAND [ARG...]", "Execute a command in a running container", &["container exec", "exec"], vec![
                sw("detach", Some('d'), "Detached mode: run command in the background"),
                val("detach-keys", None, "string", "Override the key sequence for detaching a container"),
                val("env", Some('e'), "list", "Set environment variables").check(check_env),
                val("env-file", None, "list", "Read in a file of environment variables"),
                sw("interactive", Some('i'), "Keep STDIN open even if not attached"),
                sw("privileged", None, "Give extended privileges to the command"),
                sw("tty", Some('t'), "Allocate a pseudo-TTY"),
                val("user", Some('u'), "string", "Username or UID (format: \"<name|uid>[:<group|gid>]\")"),
                val("workdir", Some('w'), "string", "Working directory inside the container"),
            ], Args::Min(2))
        },
        "start" => spec("start", "[OPTIONS] CONTAINER [CONTAINER...]", "Start one or more stopped containers", &["container start", "start"], vec![
            sw("attach", Some('a'), "Attach STDOUT/STDERR and forward signals"),
            val("detach-keys", None, "string", "Override the key sequence for detaching a container"),
            sw("interactive", Some('i'), "Attach container's STDIN"),
        ], Args::Min(1)),
        "stop" | "restart" => {
            let (p, short, aliases): (&'static str, &'static str, &'static [&'static str]) = if path == "stop" {
                ("stop", "Stop one or more running containers", &["container stop", "stop"])
            } else {
                ("restart", "Restart one or more containers", &["container restart", "restart"])
            };
            spec(p, "[OPTIONS] CONTAINER [CONTAINER...]", short, aliases, vec![
                val("signal", Some('s'), "string", "Signal to send to the container"),
                val("time", None, "int", "Seconds to wait before killing the container (deprecated: use --timeout)").hidden(),
                val("timeout", Some('t'), "int", "Seconds to wait before killing the container"),
            ], Args::Min(1))
        }
        "kill" => spec("kill", "[OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers", &["container kill", "kill"], vec![
            val("signal", Some('s'), "string", "Signal to send to the container"),
        ], Args::Min(1)),
        "rm" => spec("rm", "[OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers", &["container rm", "container remove", "rm"], vec![
            sw("force", Some('f'), "Force the removal of a running container (uses SIGKILL)"),
            sw("link", Some('l'), "Remove the specified link"),
            sw("volumes", Some('v'), "Remove anonymous volumes associated with the container"),
        ], Args::Min(1)),
        "wait" => spec("wait", "CONTAINER [CONTAINER...]", "Block until one or more containers stop, then print their exit codes", &["container wait", "wait"], vec![], Args::Min(1)),
        "ps" => spec("ps", "[OPTIONS]", "List containers", &["container ls", "container list", "container ps", "ps"], vec![
            sw("all", Some('a'), "Show all containers (default shows just running)"),
            val("filter", Some('f'), "filter", "Filter output based on conditions provided").check(check_filter),
            val("format", None, "string", FORMAT_TABLE_USAGE),
            val("last", Some('n'), "int", "Show n last created containers (includes all states)").default("-1"),
            sw("latest", Some('l'), "Show the latest created container (includes all states)"),
            sw("no-trunc", None, "Don't truncate output"),
            sw("quiet", Some('q'), "Only display container IDs"),
            sw("size", Some('s'), "Display total file sizes"),
        ], Args::None),
        "logs" => spec("logs", "[OPTIONS] CONTAINER", "Fetch the logs of a container", &["container logs", "logs"], vec![
            sw("details", None, "Show extra details provided to logs"),
            sw("follow", Some('f'), "Follow log output"),
            val("since", None, "string", "Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)"),
            val("tail", Some('n'), "string", "Number of lines to show from the end of the logs").default("\"all\""),
            sw("timestamps", Some('t'), "Show timestamps"),
            val("until", None, "string", "Show logs before a timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)"),
        ], Args::Exact(1)),
        "inspect" => spec("inspect", "[OPTIONS] NAME|ID [NAME|ID...]", "Return low-level information on Docker objects", &[], vec![
            val("format", Some('f'), "string", FORMAT_USAGE),
            sw("size", Some('s'), "Display total file sizes if the type is container"),
            val("type", None, "string", "Only inspect objects of the given type"),
        ], Args::Min(1)),
        "container inspect" => spec("container inspect", "[OPTIONS] CONTAINER [CONTAINER...]", "Display detailed information on one or more containers", &[], vec![
            val("format", Some('f'), "string", FORMAT_USAGE),
            sw("size", Some('s'), "Display total file sizes"),
        ], Args::Min(1)),
        "image inspect" => spec("image inspect", "[OPTIONS] IMAGE [IMAGE...]", "Display detailed information on one or more images", &[], vec![
            val("format", Some('f'), "string", FORMAT_USAGE),
        ], Args::Min(1)),
        "images" => spec("images", "[OPTIONS] [REPOSITORY[:TAG]]", "List images", &["image ls", "image list", "images"], vec![
            sw("all", Some('a'), "Show all images (default hides intermediate images)"),
            sw("digests", None, "Show digests"),
            val("filter", Some('f'), "filter", "Filter output based on conditions provided").check(check_filter),
            val("format", None, "string", FORMAT_TABLE_USAGE),
            sw("no-trunc", None, "Don't truncate output"),
            sw("quiet", Some('q'), "Only show image IDs"),
        ], Args::Range(0, 1)),
        "rmi" => spec("rmi", "[OPTIONS] IMAGE [IMAGE...]", "Remove one or more images", &["image rm", "image remove", "rmi"], vec![
            sw("force", Some('f'), "Force removal of the image"),
            sw("no-prune", None, "Do not delete untagged parents"),
        ], Args::Min(1)),
        "tag" => spec("tag", "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", &["image tag", "tag"], vec![], Args::Exact(2)),
        "import" => spec("import", "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]", "Import the contents from a tarball to create a filesystem image", &["image import", "import"], vec![
            val("change", Some('c'), "list", "Apply Dockerfile instruction to the created image"),
            val("message", Some('m'), "string", "Set commit message for imported image"),
            val("platform", None, "string", "Set platform if server is multi-platform capable"),
        ], Args::Range(1, 2)),
        "build" => spec("build", "[OPTIONS] PATH | URL | -", "Build an image from a Dockerfile", &["image build", "build"], vec![
            val("build-arg", None, "list", "Set build-time variables"),
            val("file", Some('f'), "string", "Name of the Dockerfile (Default is \"PATH/Dockerfile\")"),
            sw("force-rm", None, "Always remove intermediate containers"),
            val("iidfile", None, "string", "Write the image ID to the file"),
            val("label", None, "list", "Set metadata for an image"),
            val("network", None, "string", "Set the networking mode for the RUN instructions during build").default("default"),
            sw("no-cache", None, "Do not use cache when building the image"),
            sw("pull", None, "Always attempt to pull a newer version of the image"),
            sw("quiet", Some('q'), "Suppress the build output and print image ID on success"),
            sw("rm", None, "Remove intermediate containers after a successful build").default("true"),
            val("tag", Some('t'), "list", "Name and optionally a tag in the \"name:tag\" format"),
            val("target", None, "string", "Set the target build stage to build."),
        ], Args::Exact(1)),
        "save" => spec("save", "[OPTIONS] IMAGE [IMAGE...]", "Save one or more images to a tar archive (streamed to STDOUT by default)", &["image save", "save"], vec![
            val("output", Some('o'), "string", "Write to a file, instead of STDOUT"),
            val("platform", None, "string", "Save only the given platform variant"),
        ], Args::Min(1)),
        "load" => spec("load", "[OPTIONS]", "Load an image from a tar archive or STDIN", &["image load", "load"], vec![
            val("input", Some('i'), "string", "Read from tar archive file, instead of STDIN"),
            sw("quiet", Some('q'), "Suppress the load output"),
            val("platform", None, "string", "Load only the given platform variant"),
        ], Args::None),
        "login" => spec("login", "[OPTIONS] [SERVER]", "Authenticate to a registry.\nDefaults to Docker Hub if no server is specified.", &["login"], vec![
            val("password", Some('p'), "string", "Password or Personal Access Token (PAT)"),
            sw("password-stdin", None, "Take the Password or Personal Access Token (PAT) from stdin"),
            val("username", Some('u'), "string", "Username"),
        ], Args::Range(0, 1)),
        "logout" => spec("logout", "[SERVER]", "Log out from a registry.\nIf no server is specified, the default is defined by the daemon.", &["logout"], vec![], Args::Range(0, 1)),
        "history" => spec("history", "[OPTIONS] IMAGE", "Show the history of an image", &["image history", "history"], vec![
            val("format", None, "string", "Format output using a custom template"),
            sw("human", Some('H'), "Print sizes and dates in human readable format").default("true"),
            sw("no-trunc", None, "Don't truncate output"),
            sw("quiet", Some('q'), "Only show image IDs"),
        ], Args::Exact(1)),
        "pull" => spec("pull", "[OPTIONS] NAME[:TAG|@DIGEST]", "Download an image from a registry", &["image pull", "pull"], vec![
            sw("all-tags", Some('a'), "Download all tagged images in the repository"),
            sw("disable-content-trust", None, "Skip image verification").default("true"),
            val("platform", None, "string", "Set platform if server is multi-platform capable"),
            sw("quiet", Some('q'), "Suppress verbose output"),
        ], Args::Exact(1)),
        "push" => spec("push", "[OPTIONS] NAME[:TAG]", "Upload an image to a registry", &["image push", "push"], vec![
            sw("all-tags", Some('a'), "Push all tags of an image to the repository"),
            sw("disable-content-trust", None, "Skip image signing").default("true"),
            sw("quiet", Some('q'), "Suppress verbose output"),
        ], Args::Exact(1)),
        "volume create" => spec("volume create", "[OPTIONS] [VOLUME]", "Create a volume", &[], vec![
            val("driver", Some('d'), "string", "Specify volume driver name").default("\"local\""),
            val("label", None, "list", "Set metadata for a volume"),
            val("name", None, "string", "Specify volume name").hidden(),
            val("opt", Some('o'), "map", "Set driver specific options").default("map[]"),
        ], Args::Range(0, 1)),
        "volume ls" => spec("volume ls", "[OPTIONS]", "List volumes", &["volume ls", "volume list"], vec![
            val("filter", Some('f'), "filter", "Provide filter values (e.g. \"dangling=true\")").check(check_filter),
            val("format", None, "string", FORMAT_TABLE_USAGE),
            sw("quiet", Some('q'), "Only display volume names"),
        ], Args::None),
        "volume rm" => spec("volume rm", "[OPTIONS] VOLUME [VOLUME...]", "Remove one or more volumes. You cannot remove a volume that is in use by a container.", &["volume rm", "volume remove"], vec![
            sw("force", Some('f'), "Force the removal of one or more volumes"),
        ], Args::Min(1)),
        "volume inspect" => spec("volume inspect", "[OPTIONS] VOLUME [VOLUME...]", "Display detailed information on one or more volumes", &[], vec![
            val("format", Some('f'), "string", FORMAT_USAGE),
        ], Args::Min(1)),
        "volume prune" => spec("volume prune", "[OPTIONS]", "Remove unused local volumes", &[], vec![
            sw("all", Some('a'), "Remove all unused volumes, not just anonymous ones"),
            val("filter", None, "filter", "Provide filter values (e.g. \"label=<label>\")").check(check_filter),
            sw("force", Some('f'), "Do not prompt for confirmation"),
        ], Args::None),
        "network create" => spec("network create", "[OPTIONS] NETWORK", "Create a network", &[], vec![
            sw("attachable", None, "Enable manual container attachment"),
            val("aux-address", None, "map", "Auxiliary IPv4 or IPv6 addresses used by Network driver").default("map[]"),
            val("config-from", None, "string", "The network from which to copy the configuration"),
            sw("config-only", None, "Create a configuration only network"),
            val("driver", Some('d'), "string", "Driver to manage the Network").default("\"bridge\""),
            val("gateway", None, "strings", "IPv4 or IPv6 Gateway for the master subnet"),
            sw("ingress", None, "Create swarm routing-mesh network"),
            sw("internal", None, "Restrict external access to the network"),
            val("ip-range", None, "strings", "Allocate container ip from a sub-range"),
            val("ipam-driver", None, "string", "IP Address Management Driver").default("\"default\""),
            val("ipam-opt", None, "map", "Set IPAM driver specific options").default("map[]"),
            sw("ipv4", None, "Enable or disable IPv4 address assignment").default("true"),
            sw("ipv6", None, "Enable or disable IPv6 address assignment"),
            val("label", None, "list", "Set metadata on a network").check(check_label),
            val("opt", Some('o'), "map", "Set driver specific options").default("map[]"),
            val("scope", None, "string", "Control the network's scope"),
            val("subnet", None, "strings", "Subnet in CIDR format that represents a network segment"),
        ], Args::Exact(1)),
        "network ls" => spec("network ls", "[OPTIONS]", "List networks", &["network ls", "network list"], vec![
            val("filter", Some('f'), "filter", "Provide filter values (e.g. \"driver=bridge\")").check(check_filter),
            val("format", None, "string", FORMAT_TABLE_USAGE),
            sw("no-trunc", None, "Do not truncate the output"),
            sw("quiet", Some('q'), "Only display network IDs"),
        ], Args::None),
        "network inspect" => spec("network inspect", "[OPTIONS] NETWORK [NETWORK...]", "Display detailed information on one or more networks", &[], vec![
            val("format", Some('f'), "string", FORMAT_USAGE),
            sw("verbose", Some('v'), "Verbose output for diagnostics"),
        ], Args::Min(1)),
        "network rm" => spec("network rm", "NETWORK [NETWORK...]", "Remove one or more networks", &["network rm", "network remove"], vec![
            sw("force", Some('f'), "Do not error if the network does not exist"),
        ], Args::Min(1)),
        "network connect" => spec("network connect", "[OPTIONS] NETWORK CONTAINER", "Connect a container to a network", &[], vec![
            val("alias", None, "strings", "Add network-scoped alias for the container"),
            val("driver-opt", None, "strings", "driver options for the network"),
            val("gw-priority", None, "int", "Highest gw-priority provides the default gateway. Accepts positive and negative values."),
            val("ip", None, "string", "IPv4 address (e.g., \"172.30.100.104\")"),
            val("ip6", None, "string", "IPv6 address (e.g., \"2001:db8::33\")"),
            val("link", None, "list", "Add link to another container"),
            val("link-local-ip", None, "strings", "Add a link-local address for the container"),
        ], Args::Exact(2)),
        "network disconnect" => spec("network disconnect", "[OPTIONS] NETWORK CONTAINER", "Disconnect a container from a network", &[], vec![
            sw("force", Some('f'), "Force the container to disconnect from a network"),
        ], Args::Exact(2)),
        "network prune" => spec("network prune", "[OPTIONS]", "Remove all unused networks", &[], vec![
            val("filter", None, "filter", "Provide filter values (e.g. \"until=<timestamp>\")").check(check_filter),
            sw("force", Some('f'), "Do not prompt for confirmation"),
        ], Args::None),
        "version" => spec("version", "[OPTIONS]", "Show the Docker version information", &[], vec![
            val("format", Some('f'), "string", FORMAT_USAGE),
        ], Args::None),
        "info" => spec("info", "[OPTIONS]", "Display system-wide information", &["system info", "info"], vec![
            val("format", Some('f'), "string", FORMAT_USAGE),
        ], Args::None),
        "port" => spec("port", "CONTAINER [PRIVATE_PORT[/PROTO]]", "List port mappings or a specific mapping for the container", &["container port", "port"], vec![], Args::Range(1, 2)),
        "rename" => spec("rename", "CONTAINER NEW_NAME", "Rename a container", &["container rename", "rename"], vec![], Args::Exact(2)),
        "pause" => spec("pause", "CONTAINER [CONTAINER...]", "Pause all processes within one or more containers", &["container pause", "pause"], vec![], Args::Min(1)),
        "unpause" => spec("unpause", "CONTAINER [CONTAINER...]", "Unpause all processes within one or more containers", &["container unpause", "unpause"], vec![], Args::Min(1)),
        "top" => CommandSpec {
            interspersed: false,
            ..spec("top", "CONTAINER [ps OPTIONS]", "Display the running processes of a container", &["container top", "top"], vec![], Args::Min(1))
        },
        _ => return None,
    };
    Some(s)
}

/// Management groups and their subcommands: (group, sub, canonical path).
const GROUP_ALIASES: &[(&str, &str, &str)] = &[
    ("container", "run", "run"),
    ("container", "create", "create"),
    ("container", "exec", "exec"),
    ("container", "start", "start"),
    ("container", "stop", "stop"),
    ("container", "restart", "restart"),
    ("container", "kill", "kill"),
    ("container", "rm", "rm"),
    ("container", "remove", "rm"),
    ("container", "wait", "wait"),
    ("container", "ls", "ps"),
    ("container", "list", "ps"),
    ("container", "ps", "ps"),
    ("container", "logs", "logs"),
    ("container", "inspect", "container inspect"),
    ("container", "port", "port"),
    ("container", "rename", "rename"),
    ("container", "pause", "pause"),
    ("container", "unpause", "unpause"),
    ("container", "top", "top"),
    ("image", "ls", "images"),
    ("image", "list", "images"),
    ("image", "rm", "rmi"),
    ("image", "remove", "rmi"),
    ("image", "tag", "tag"),
    ("image", "import", "import"),
    ("image", "build", "build"),
    ("image", "history", "history"),
    ("image", "save", "save"),
    ("image", "load", "load"),
    ("image", "pull", "pull"),
    ("image", "push", "push"),
    ("image", "inspect", "image inspect"),
    ("volume", "create", "volume create"),
    ("volume", "ls", "volume ls"),
    ("volume", "list", "volume ls"),
    ("volume", "rm", "volume rm"),
    ("volume", "remove", "volume rm"),
    ("volume", "inspect", "volume inspect"),
    ("volume", "prune", "volume prune"),
    ("network", "connect", "network connect"),
    ("network", "create", "network create"),
    ("network", "disconnect", "network disconnect"),
    ("network", "inspect", "network inspect"),
    ("network", "ls", "network ls"),
    ("network", "list", "network ls"),
    ("network", "prune", "network prune"),
    ("network", "rm", "network rm"),
    ("network", "remove", "network rm"),
    ("system", "info", "info"),
];

/// Resolves `args[0..]` to (canonical path, number of words consumed), or
/// `Err(group)` when a management group is given without a valid subcommand.
pub fn resolve(args: &[String]) -> Result<Option<(&'static str, usize)>, &'static str> {
    let Some(first) = args.first() else {
        return Ok(None);
    };
    for group in ["container", "image", "network", "volume", "system"] {
        if first == group {
            let sub = args.get(1).map(String::as_str).unwrap_or("");
            return GROUP_ALIASES
                .iter()
                .find(|(g, s, _)| *g == group && *s == sub)
                .map(|(_, _, p)| Some((*p, 2)))
                .ok_or(group);
        }
    }
    const TOP: &[&str] = &[
        "run", "create", "exec", "start", "stop", "restart", "kill", "rm", "wait", "ps", "logs",
        "inspect", "images", "rmi", "tag", "import", "build", "history", "save", "load", "login",
        "logout", "pull", "push", "version", "info", "port", "rename", "pause", "unpause", "top",
    ];
    Ok(TOP.iter().find(|t| **t == first).map(|t| (*t, 1)))
}

/// Help for a management group (`berth volume`).
pub fn group_help(group: &str) -> String {
    let subs: Vec<(&str, &str)> = match group {
        "volume" => vec![
            ("create", "Create a volume"),
            (
                "inspect",
                "Display detailed information on one or more volumes",
            ),
            ("ls", "List volumes"),
            ("prune", "Remove unused local volumes"),
            ("rm", "Remove one or more volumes"),
        ],
        "network" => vec![
            ("connect", "Connect a container to a network"),
            ("create", "Create a network"),
            ("disconnect", "Disconnect a container from a network"),
            (
                "inspect",
                "Display detailed information on one or more networks",
            ),
            ("ls", "List networks"),
            ("prune", "Remove all unused networks"),
            ("rm", "Remove one or more networks"),
        ],
        "container" => vec![
            ("create", "Create a new container"),
            ("exec", "Execute a command in a running container"),
            (
                "inspect",
                "Display detailed information on one or more containers",
            ),
            ("kill", "Kill one or more running containers"),
            ("logs", "Fetch the logs of a container"),
            ("ls", "List containers"),
            ("pause", "Pause all processes within one or more containers"),
            (
                "port",
                "List port mappings or a specific mapping for the container",
            ),
            ("rename", "Rename a container"),
            ("restart", "Restart one or more containers"),
            ("rm", "Remove one or more containers"),
            ("run", "Create and run a new container from an image"),
            ("start", "Start one or more stopped containers"),
            ("stop", "Stop one or more running containers"),
            ("top", "Display the running processes of a container"),
            (
                "unpause",
                "Unpause all processes within one or more containers",
            ),
            (
                "wait",
                "Block until one or more containers stop, then print their exit codes",
            ),
        ],
        "image" => vec![
            ("build", "Build an image from a Dockerfile"),
            ("history", "Show the history of an image"),
            ("load", "Load an image from a tar archive or STDIN"),
            (
                "save",
                "Save one or more images to a tar archive (streamed to STDOUT by default)",
            ),
            (
                "import",
                "Import the contents from a tarball to create a filesystem image",
            ),
            (
                "inspect",
                "Display detailed information on one or more images",
            ),
            ("ls", "List images"),
            ("pull", "Download an image from a registry"),
            ("push", "Upload an image to a registry"),
            ("rm", "Remove one or more images"),
            (
                "tag",
                "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
            ),
        ],
        _ => vec![("info", "Display system-wide information")],
    };
    let title = match group {
        "volume" => "Manage volumes",
        "network" => "Manage networks",
        "container" => "Manage containers",
        "image" => "Manage images",
        _ => "Manage Docker",
    };
    let mut out = format!("Usage:  {BIN} {group} COMMAND\n\n{title}\n\nCommands:\n");
    for (name, desc) in subs {
        out.push_str(&format!("  {name:<12}{desc}\n"));
    }
    out.push_str(&format!(
        "\nRun '{BIN} {group} COMMAND --help' for more information on a command.\n"
    ));
    out
}

/// Top-level help.
pub fn main_help() -> String {
    let mut out = format!(
        "Usage:  {BIN} [OPTIONS] COMMAND\n\nA self-sufficient runtime for containers\n\nCommon Commands:\n"
    );
    let common = [
        ("run", "Create and run a new container from an image"),
        ("exec", "Execute a command in a running container"),
        ("ps", "List containers"),
        ("pull", "Download an image from a registry"),
        ("push", "Upload an image to a registry"),
        ("build", "Build an image from a Dockerfile"),
        ("images", "List images"),
        ("version", "Show the Docker version information"),
        ("info", "Display system-wide information"),
    ];
    for (n, d) in common {
        out.push_str(&format!("  {n:<11} {d}\n"));
    }
    out.push_str("\nManagement Commands:\n");
    for (n, d) in [
        ("container", "Manage containers"),
        ("image", "Manage images"),
        ("network", "Manage networks"),
        ("system", "Manage Docker"),
        ("volume", "Manage volumes"),
    ] {
        out.push_str(&format!("  {n:<11} {d}\n"));
    }
    out.push_str("\nCommands:\n");
    for n in [
        "create", "import", "inspect", "kill", "logs", "pause", "port", "rename", "restart", "rm",
        "rmi", "start", "stop", "tag", "top", "unpause", "wait",
    ] {
        if let Some(s) = command(n) {
            out.push_str(&format!("  {n:<11} {}\n", s.short));
        }
    }
    out.push_str(&format!(
        "\nGlobal Options:\n  -D, --debug              Enable debug mode\n  -H, --host string        Daemon socket to connect to\n  -l, --log-level string   Set the logging level (\"debug\", \"info\", \"warn\", \"error\", \"fatal\") (default \"info\")\n  -v, --version            Print version information and quit\n\nRun '{BIN} COMMAND --help' for more information on a command.\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags;

    #[test]
    fn resolves_aliases() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(resolve(&v(&["run", "x"])), Ok(Some(("run", 1))));
        assert_eq!(resolve(&v(&["container", "ls"])), Ok(Some(("ps", 2))));
        assert_eq!(resolve(&v(&["image", "rm", "x"])), Ok(Some(("rmi", 2))));
        assert_eq!(resolve(&v(&["volume", "ls"])), Ok(Some(("volume ls", 2))));
        assert_eq!(resolve(&v(&["volume"])), Err("volume"));
        assert_eq!(
            resolve(&v(&["network", "remove", "n"])),
            Ok(Some(("network rm", 2)))
        );
        assert_eq!(resolve(&v(&["network", "bogus"])), Err("network"));
        assert_eq!(resolve(&v(&["daemon"])), Ok(None));
    }

    #[test]
    fn every_resolved_path_has_a_spec() {
        for (_, _, p) in GROUP_ALIASES {
            assert!(command(p).is_some(), "{p}");
        }
    }

    #[test]
    fn flag_names_are_unique() {
        for p in [
            "run",
            "create",
            "exec",
            "ps",
            "logs",
            "images",
            "volume create",
            "network create",
            "network ls",
            "network connect",
        ] {
            let s = command(p).unwrap();
            for (i, a) in s.flags.iter().enumerate() {
                for b in &s.flags[i + 1..] {
                    assert_ne!(a.long, b.long, "{p}");
                    if a.short.is_some() {
                        assert_ne!(a.short, b.short, "{p}: {}", a.long);
                    }
                }
            }
        }
    }

    /// Compares our rendered help with lines docker 28 prints for the same flags.
    #[test]
    fn help_lines_match_docker() {
        let s = command("stop").unwrap();
        assert_eq!(
            flags::render_help(&s, "docker", 79),
            "Usage:  docker stop [OPTIONS] CONTAINER [CONTAINER...]\n\nStop one or more running containers\n\nAliases:\n  docker container stop, docker stop\n\nOptions:\n  -s, --signal string   Signal to send to the container\n  -t, --timeout int     Seconds to wait before killing the container\n"
        );
        let s = command("logs").unwrap();
        let help = flags::render_help(&s, "docker", 79);
        assert!(help.contains("      --since string   Show logs since timestamp (e.g.\n                       \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\"\n                       for 42 minutes)\n"), "{help}");
        assert!(help.contains("  -n, --tail string    Number of lines to show from the end of the logs\n                       (default \"all\")\n"), "{help}");
        let s = command("run").unwrap();
        let help = flags::render_help(&s, "docker", 79);
        for line in [
            "      --add-host list                    Add a custom host-to-IP mapping\n                                         (host:ip)\n",
            "  -m, --memory bytes                     Memory limit\n",
            "      --cpus decimal                     Number of CPUs\n",
            "      --rm                               Automatically remove the\n                                         container and its associated\n                                         anonymous volumes when it exits\n",
            "      --ulimit ulimit                    Ulimit options (default [])\n",
            "      --pull string                      Pull image before running\n                                         (\"always\", \"missing\", \"never\")\n                                         (default \"missing\")\n",
        ] {
            assert!(help.contains(line), "missing {line:?} in\n{help}");
        }
    }
}
