//! `podman_container` / `docker_container` (and the `containers.podman.` /
//! `community.docker.` names): one container, kept as the task describes it.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::engine::{string_map, Engine, EngineSteps, Flavor, DOCKER_HOST};
use super::spec::{self, duration, parse_health, FieldDiff, Health, Port, Volume, Wanted};
use crate::modules::{
    parse_params, Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};
use crate::size::parse_size;

const STATES: &[&str] = &["absent", "present", "started", "stopped"];
/// podman's `created` is its `present`.
const PODMAN_STATES: &[&str] = &["absent", "present", "started", "stopped", "created"];

const DESCRIPTION: &str = "Creates, recreates, starts, stops and removes one container with the engine's \
command line on the host (over the task's SSH connection). The container's `inspect` JSON is compared \
with the task: only the options the task gives are compared (a left-out option keeps what the container \
has; `env` and `labels` compare the given keys only), the image by ID (a rebuilt or re-pulled tag \
recreates). When a compared field differs the container is removed and created again (keeping it \
running if it was), and `--diff` names each differing field with its value before and after. \
`state: present` creates without starting (an existing container keeps its running state), `started` \
also starts it, `stopped` creates or stops it, `absent` removes it. Check mode reports the same \
fields and actions without changing anything. An image the host lacks is pulled by `create`.";

const RETURNS: &[ReturnDoc] = &[
    ReturnDoc {
        name: "container",
        description: "the container's `inspect` object after the task (`{}` when absent; the current one in check mode)",
    },
    ReturnDoc {
        name: "actions",
        description: "what was (or in check mode would be) done: `created`, `recreated`, `started`, `stopped`, `restarted`, `removed`",
    },
    ReturnDoc {
        name: "changed_fields",
        description: "the compared fields that differed",
    },
];

// The options both engines' modules take; each module's list below adds its
// own names (aliases, choices) to these.
const NAME: OptionDoc = OptionDoc::new("name", OptKind::Str, "The container's name.").required();
const IMAGE: OptionDoc = OptionDoc::new("image", OptKind::Str, "The image (needed to create the container).");
const COMMAND: OptionDoc = OptionDoc::new(
    "command",
    OptKind::Raw,
    "The command (a string, split as a shell would, or a list): overrides the image's CMD.",
);
const ENV: OptionDoc = OptionDoc::new("env", OptKind::Dict, "Environment variables.");
const PUBLISHED_PORTS: OptionDoc = OptionDoc::new(
    "published_ports",
    OptKind::List,
    "Ports to publish: `[IP:]HOST_PORT:CONTAINER_PORT[/PROTO]` (no ranges).",
);
const VOLUMES: OptionDoc = OptionDoc::new(
    "volumes",
    OptKind::List,
    "Volumes: `SOURCE:DEST[:OPTIONS]` (a host path or a named volume; `ro` compared) or `DEST`.",
);
const MEMORY: OptionDoc = OptionDoc::new("memory", OptKind::Str, "Memory limit (`256m`, `1g`, bytes).");
const CPUS: OptionDoc = OptionDoc::new("cpus", OptKind::Str, "CPU limit (`0.5`, `2`).");
const PIDS_LIMIT: OptionDoc = OptionDoc::new("pids_limit", OptKind::Str, "Most processes in the container.");
const LABELS: OptionDoc = OptionDoc::new("labels", OptKind::Dict, "Labels.");
const USER: OptionDoc = OptionDoc::new("user", OptKind::Str, "User (and group) the command runs as.");
const WORKDIR: OptionDoc = OptionDoc::new("workdir", OptKind::Str, "Working directory.");
const HOSTNAME: OptionDoc = OptionDoc::new("hostname", OptKind::Str, "The container's host name.");
const STOP_TIMEOUT: OptionDoc = OptionDoc::new(
    "stop_timeout",
    OptKind::Int,
    "Seconds to wait for the container to stop before killing it.",
);
const EXPOSE: OptionDoc = OptionDoc::new(
    "expose",
    OptKind::List,
    "Ports to expose without publishing (`6379`, `53/udp`).",
);
const ETC_HOSTS: OptionDoc = OptionDoc::new(
    "etc_hosts",
    OptKind::Dict,
    "Extra `/etc/hosts` entries: host name to address.",
);
const LOG_OPTIONS: OptionDoc = OptionDoc::new("log_options", OptKind::Dict, "Log driver options.");
const RECREATE: OptionDoc = OptionDoc::new(
    "recreate",
    OptKind::Bool,
    "Recreate the container even when it matches (always changed).",
)
.default("false");
const RESTART: OptionDoc = OptionDoc::new(
    "restart",
    OptKind::Bool,
    "Restart (or start) the container (always changed).",
)
.default("false");
const DETACH: OptionDoc = OptionDoc::new("detach", OptKind::Bool, "Containers always run detached.")
    .default("true")
    .ignored();

const PODMAN_OPTIONS: &[OptionDoc] = &[
    NAME,
    IMAGE,
    OptionDoc::new(
        "state",
        OptKind::Str,
        "What the container should be (`created` is `present`).",
    )
    .choices(PODMAN_STATES)
    .default("started"),
    COMMAND,
    ENV,
    PUBLISHED_PORTS.aliases(&["publish", "ports", "published"]),
    VOLUMES.aliases(&["volume"]),
    OptionDoc::new(
        "networks",
        OptKind::List,
        "Networks to attach (names), or one mode (`host`, `none`, `container:NAME`).",
    )
    .aliases(&["network", "net", "network_mode"]),
    OptionDoc::new(
        "restart_policy",
        OptKind::Str,
        "`no`, `always`, `on-failure[:N]`, `unless-stopped`.",
    ),
    MEMORY,
    CPUS,
    PIDS_LIMIT,
    OptionDoc::new(
        "healthcheck",
        OptKind::Raw,
        "Health check command (shell form), or docker's mapping (`test`, `interval`, ...).",
    )
    .aliases(&["health_cmd"]),
    OptionDoc::new("healthcheck_interval", OptKind::Str, "Time between checks (`30s`).").aliases(&["health_interval"]),
    OptionDoc::new("healthcheck_timeout", OptKind::Str, "How long a check may take.").aliases(&["health_timeout"]),
    OptionDoc::new("healthcheck_retries", OptKind::Int, "Failures before unhealthy.").aliases(&["health_retries"]),
    OptionDoc::new("healthcheck_start_period", OptKind::Str, "Grace period after start.")
        .aliases(&["health_start_period"]),
    LABELS.aliases(&["label"]),
    USER,
    WORKDIR.aliases(&["working_dir"]),
    HOSTNAME,
    STOP_TIMEOUT,
    EXPOSE.aliases(&["exposed", "exposed_ports"]),
    ETC_HOSTS.aliases(&["add_hosts"]),
    OptionDoc::new(
        "log_driver",
        OptKind::Str,
        "Log driver (`k8s-file`, `journald`, `none`, ...).",
    ),
    OptionDoc::new(
        "log_options",
        OptKind::Dict,
        "Log driver options (`path`, `tag`, `max_size`); podman shows only `path` and `tag` to compare.",
    )
    .aliases(&["log_opt"]),
    RECREATE,
    OptionDoc::new("force_restart", OptKind::Bool, RESTART.description)
        .aliases(&["restart"])
        .default("false"),
    OptionDoc::new("executable", OptKind::Str, "The podman program on the host.").default("podman"),
    DETACH,
];

const DOCKER_OPTIONS: &[OptionDoc] = &[
    NAME,
    IMAGE,
    OptionDoc::new("state", OptKind::Str, "What the container should be.")
        .choices(STATES)
        .default("started"),
    COMMAND,
    ENV,
    PUBLISHED_PORTS.aliases(&["ports"]),
    VOLUMES,
    OptionDoc::new(
        "networks",
        OptKind::List,
        "Networks to attach: names or mappings with `name` (other keys are not supported).",
    ),
    OptionDoc::new(
        "network_mode",
        OptKind::Str,
        "`host`, `none`, `container:NAME` or a network name.",
    ),
    OptionDoc::new("restart_policy", OptKind::Str, "Restart policy.").choices(&[
        "no",
        "on-failure",
        "always",
        "unless-stopped",
    ]),
    OptionDoc::new("restart_retries", OptKind::Int, "Retries of `on-failure`."),
    MEMORY,
    CPUS,
    PIDS_LIMIT,
    OptionDoc::new(
        "healthcheck",
        OptKind::Raw,
        "Health check: `test` (a shell string or a `CMD` list), `interval`, `timeout`, `retries`, `start_period`.",
    ),
    LABELS,
    USER,
    OptionDoc::new("working_dir", OptKind::Str, WORKDIR.description),
    HOSTNAME,
    STOP_TIMEOUT,
    OptionDoc::new("exposed_ports", OptKind::List, EXPOSE.description).aliases(&["exposed", "expose"]),
    ETC_HOSTS,
    OptionDoc::new(
        "log_driver",
        OptKind::Str,
        "Log driver (`json-file`, `syslog`, `none`, ...).",
    ),
    LOG_OPTIONS.aliases(&["log_opt"]),
    RECREATE,
    RESTART,
    DETACH,
    DOCKER_HOST,
];

pub(super) static PODMAN_DOC: ModuleDoc = ModuleDoc {
    name: "podman_container",
    aliases: &["containers.podman.podman_container"],
    short: "Manage podman containers",
    description: DESCRIPTION,
    free_form: false,
    options: PODMAN_OPTIONS,
    examples: "- podman_container:\n    name: web\n    image: localhost/web:1.2\n    command: httpd -f -p 8080\n    \
published_ports: [\"127.0.0.1:8080:8080\"]\n    env: { MODE: prod }\n    restart_policy: always\n    memory: 256m\n    \
healthcheck: wget -q -O /dev/null http://127.0.0.1:8080/\n    healthcheck_interval: 30s\n    state: started\n",
    returns: RETURNS,
    controller_only: false,
};

pub(super) static DOCKER_DOC: ModuleDoc = ModuleDoc {
    name: "docker_container",
    aliases: &["community.docker.docker_container"],
    short: "Manage docker containers",
    description: DESCRIPTION,
    free_form: false,
    options: DOCKER_OPTIONS,
    examples: "- docker_container:\n    name: web\n    image: web:1.2\n    command: [httpd, -f, -p, \"8080\"]\n    \
published_ports: [\"127.0.0.1:8080:8080\"]\n    networks: [{ name: backend }]\n    restart_policy: unless-stopped\n    \
healthcheck: { test: [CMD, wget, -q, -O, /dev/null, \"http://127.0.0.1:8080/\"], interval: 30s, retries: 3 }\n",
    returns: RETURNS,
    controller_only: false,
};

/// The union of both modules' options (each doc lets through its own).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Params {
    name: String,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    command: Option<Value>,
    #[serde(default)]
    env: Option<Value>,
    #[serde(default)]
    published_ports: Option<Value>,
    #[serde(default)]
    volumes: Option<Value>,
    #[serde(default)]
    networks: Option<Value>,
    #[serde(default)]
    network_mode: Option<String>,
    #[serde(default)]
    restart_policy: Option<String>,
    #[serde(default)]
    restart_retries: Option<i64>,
    #[serde(default)]
    memory: Option<String>,
    #[serde(default)]
    cpus: Option<String>,
    #[serde(default)]
    pids_limit: Option<String>,
    #[serde(default)]
    healthcheck: Option<Value>,
    #[serde(default)]
    healthcheck_interval: Option<String>,
    #[serde(default)]
    healthcheck_timeout: Option<String>,
    #[serde(default)]
    healthcheck_retries: Option<i64>,
    #[serde(default)]
    healthcheck_start_period: Option<String>,
    #[serde(default)]
    labels: Option<Value>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    workdir: Option<String>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    stop_timeout: Option<i64>,
    #[serde(default)]
    expose: Option<Value>,
    #[serde(default)]
    exposed_ports: Option<Value>,
    #[serde(default)]
    etc_hosts: Option<Value>,
    #[serde(default)]
    log_driver: Option<String>,
    #[serde(default)]
    log_options: Option<Value>,
    #[serde(default)]
    recreate: Option<bool>,
    #[serde(default)]
    force_restart: Option<bool>,
    #[serde(default)]
    restart: Option<bool>,
    #[serde(default)]
    executable: Option<String>,
    #[serde(default)]
    docker_host: Option<String>,
}

pub struct ContainerModule {
    pub flavor: Flavor,
}

impl ContainerModule {
    fn doc_static(&self) -> &'static ModuleDoc {
        match self.flavor {
            Flavor::Podman => &PODMAN_DOC,
            Flavor::Docker => &DOCKER_DOC,
        }
    }
}

/// A list option as Ansible reads one: a list, or a comma-separated string.
fn list_of(v: &Option<Value>) -> Option<Vec<Value>> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(a.clone()),
        Some(Value::String(s)) => Some(
            s.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(|x| Value::String(x.to_string()))
                .collect(),
        ),
        Some(other) => Some(vec![other.clone()]),
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The task's container, checked and normalized (the image's ID is learnt later).
pub(super) fn wanted(module: &'static str, p: &Params) -> Result<Wanted, ModuleError> {
    let args = |why: String| ModuleError::Args(format!("{module}: {why}"));
    let command = match &p.command {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            Some(shlex::split(s).ok_or_else(|| args(format!("command: unbalanced quotes in `{s}`")))?)
        }
        Some(Value::Array(a)) => Some(a.iter().map(scalar_text).collect()),
        Some(other) => Some(vec![scalar_text(other)]),
    };
    let env = match &p.env {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => string_map(module, "env", v)?,
    };
    let labels = match &p.labels {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => string_map(module, "labels", v)?,
    };
    let ports = list_of(&p.published_ports)
        .map(|l| {
            l.iter()
                .map(|x| Port::parse(module, &scalar_text(x)))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let volumes = list_of(&p.volumes)
        .map(|l| {
            l.iter()
                .map(|x| Volume::parse(module, &scalar_text(x)))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let mut networks: Option<Vec<String>> = list_of(&p.networks)
        .map(|l| {
            l.iter()
                .map(|n| match n {
                    Value::Object(m) => {
                        if let Some(k) = m.keys().find(|k| k.as_str() != "name") {
                            return Err(args(format!(
                                "networks: `{k}` is not supported by rigger (only `name`)"
                            )));
                        }
                        m.get("name")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                            .ok_or_else(|| args("networks: an entry without `name`".into()))
                    }
                    other => Ok(scalar_text(other)),
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    if let Some(mode) = &p.network_mode {
        if let Some(n) = &networks {
            if n.first() != Some(mode) {
                return Err(args(format!(
                    "network_mode `{mode}` and networks {n:?} together are not supported by rigger"
                )));
            }
        } else {
            networks = Some(vec![mode.clone()]);
        }
    }
    if let Some(n) = &networks {
        if n.len() > 1
            && n.iter()
                .any(|x| x == "host" || x == "none" || x.starts_with("container:"))
        {
            return Err(args(format!(
                "networks: the mode {n:?} cannot be combined with other networks"
            )));
        }
    }
    let restart = match &p.restart_policy {
        None => None,
        Some(r) => {
            let (name, retries) = match r.split_once(':') {
                Some((n, c)) => (
                    n.to_string(),
                    Some(
                        c.parse::<i64>()
                            .map_err(|_| args(format!("restart_policy: bad retry count in `{r}`")))?,
                    ),
                ),
                None => (r.clone(), None),
            };
            if !matches!(name.as_str(), "no" | "always" | "on-failure" | "unless-stopped") {
                return Err(args(format!(
                    "restart_policy must be one of: no, always, on-failure, unless-stopped; got {r}"
                )));
            }
            Some((name, retries.or(p.restart_retries)))
        }
    };
    let memory = p
        .memory
        .as_ref()
        .map(|m| {
            parse_size(m)
                .map(|b| (m.clone(), b))
                .map_err(|e| args(format!("memory: {e}")))
        })
        .transpose()?;
    let cpus = p
        .cpus
        .as_ref()
        .map(|c| {
            c.trim()
                .parse::<f64>()
                .ok()
                .filter(|f| *f > 0.0)
                .map(|f| (c.clone(), (f * 1e9).round() as u64))
                .ok_or_else(|| args(format!("cpus must be a positive number, got `{c}`")))
        })
        .transpose()?;
    let pids_limit = p
        .pids_limit
        .as_ref()
        .map(|s| {
            s.trim()
                .parse::<i64>()
                .map_err(|_| args(format!("pids_limit must be an integer, got `{s}`")))
        })
        .transpose()?;
    let mut timings = Health::default();
    for (name, text, slot) in [
        ("healthcheck_interval", &p.healthcheck_interval, &mut timings.interval),
        ("healthcheck_timeout", &p.healthcheck_timeout, &mut timings.timeout),
        (
            "healthcheck_start_period",
            &p.healthcheck_start_period,
            &mut timings.start_period,
        ),
    ] {
        if let Some(t) = text {
            *slot = Some(duration(module, name, t)?);
        }
    }
    timings.retries = p.healthcheck_retries;
    let health = match &p.healthcheck {
        None | Some(Value::Null) => {
            if timings != Health::default() {
                return Err(args(
                    "healthcheck_* options need `healthcheck` (the test command)".into(),
                ));
            }
            None
        }
        Some(v) => Some(parse_health(module, v, &timings)?),
    };
    if health.as_ref().is_some_and(|h| h.test[0] == "CMD") && module == "docker_container" {
        return Err(args(
            "healthcheck: docker's command line takes the test as a shell string; write `test` as a string".into(),
        ));
    }
    Ok(Wanted {
        image: p.image.clone().filter(|i| !i.is_empty()),
        image_id: None,
        command,
        env,
        ports,
        volumes,
        networks,
        restart,
        memory,
        cpus,
        pids_limit,
        health,
        labels,
        user: p.user.clone(),
        workdir: p.workdir.clone().or_else(|| p.working_dir.clone()),
        hostname: p.hostname.clone(),
        stop_timeout: p.stop_timeout,
        expose: list_of(&p.expose.clone().or(p.exposed_ports.clone()))
            .unwrap_or_default()
            .iter()
            .map(|x| {
                let t = scalar_text(x);
                if t.contains('/') {
                    t
                } else {
                    format!("{t}/tcp")
                }
            })
            .collect(),
        etc_hosts: match &p.etc_hosts {
            None | Some(Value::Null) => None,
            Some(v) => Some(string_map(module, "etc_hosts", v)?),
        },
        log_driver: p.log_driver.clone(),
        log_options: match &p.log_options {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => string_map(module, "log_options", v)?,
        },
    })
}

pub(super) fn running(c: &Value) -> bool {
    c.pointer("/State/Running").and_then(Value::as_bool).unwrap_or(false)
}

fn diff_of(name: &str, fields: &[FieldDiff], before_state: &str, after_state: &str) -> Diff {
    let mut before = String::new();
    let mut after = String::new();
    if before_state != after_state {
        before.push_str(&format!("state: {before_state}\n"));
        after.push_str(&format!("state: {after_state}\n"));
    }
    for f in fields {
        before.push_str(&format!("{}: {}\n", f.field, f.before));
        after.push_str(&format!("{}: {}\n", f.field, f.after));
    }
    Diff {
        before_header: format!("container {name}"),
        after_header: format!("container {name}"),
        before,
        after,
    }
}

#[async_trait]
impl Module for ContainerModule {
    fn doc(&self) -> &'static ModuleDoc {
        self.doc_static()
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let doc = self.doc_static();
        let module = doc.name;
        let p: Params = parse_params(doc, args)?;
        let engine =
            Engine::new(ctx, self.flavor, p.executable.as_deref(), module).with_docker_host(p.docker_host.as_deref());
        let state = match p.state.as_deref().unwrap_or("started") {
            "created" => "present",
            s => s,
        };
        let name = p.name.clone();
        let mut want = wanted(module, &p)?;
        let current = engine.inspect("container", &name).await?;
        let cur_state = |c: &Option<Value>| match c {
            None => "absent",
            Some(c) if running(c) => "running",
            Some(_) => "stopped",
        };
        let before_state = cur_state(&current);
        let mut steps = EngineSteps::new(&engine);
        let mut actions: Vec<&str> = Vec::new();

        if state == "absent" {
            let Some(cur) = current else {
                return Ok(Plan::Done(
                    ModuleOutcome::ok()
                        .with("container", Value::Object(Map::new()))
                        .with("actions", Vec::<String>::new())
                        .with("changed_fields", Vec::<String>::new()),
                ));
            };
            steps.push(vec!["rm".into(), "-f".into(), name.clone()]);
            let out = ModuleOutcome::ok()
                .with_diff(diff_of(&name, &[], before_state, "absent"))
                .with("container", cur)
                .with("actions", vec!["removed"])
                .with("changed_fields", Vec::<String>::new());
            return Ok(Plan::change(out, steps));
        }

        if let Some(img) = &want.image {
            want.image_id = engine.image_id(img).await?;
        }
        let recreate = p.recreate.unwrap_or(false);
        let restart = p.force_restart.or(p.restart).unwrap_or(false);
        let mut fields = Vec::new();
        let was_running = current.as_ref().is_some_and(running);
        let exists = match &current {
            None => false,
            Some(c) => {
                if want.image.is_some() {
                    fields = spec::differences(c, &want);
                }
                let rebuild = recreate || !fields.is_empty();
                if rebuild && want.image.is_none() {
                    return Err(ModuleError::Args(format!(
                        "{module}: container {name} differs from the task ({}) but no `image` is given to recreate it",
                        fields.iter().map(|f| f.field).collect::<Vec<_>>().join(", ")
                    )));
                }
                if rebuild {
                    steps.push(vec!["rm".into(), "-f".into(), name.clone()]);
                    actions.push("recreated");
                    false
                } else {
                    true
                }
            }
        };
        if !exists {
            if want.image.is_none() {
                return Err(ModuleError::Args(format!(
                    "{module}: container {name} does not exist and no `image` is given to create it"
                )));
            }
            let (create, connect) = want.create_args(self.flavor, &name);
            steps.push(create);
            for c in connect {
                steps.push(c);
            }
            if actions.is_empty() {
                actions.push("created");
            }
        }
        // The running state the task ends with.
        let run_after = match state {
            "started" => true,
            "stopped" => false,
            _ => was_running,
        };
        if run_after {
            if exists && restart {
                steps.push(vec!["restart".into(), name.clone()]);
                actions.push("restarted");
            } else if !exists || !was_running {
                steps.push(vec!["start".into(), name.clone()]);
                actions.push("started");
            }
        } else if exists && was_running {
            steps.push(vec!["stop".into(), name.clone()]);
            actions.push("stopped");
        } else if restart && state == "present" {
            steps.push(vec!["start".into(), name.clone()]);
            actions.push("started");
        }
        let after_state = if steps.steps.iter().any(|s| s[0] == "start" || s[0] == "restart") || (run_after && exists) {
            "running"
        } else {
            "stopped"
        };
        let changed_fields: Vec<String> = fields.iter().map(|f| f.field.to_string()).collect();
        let cur_json = current.clone().unwrap_or_else(|| Value::Object(Map::new()));
        let mut out = ModuleOutcome::ok()
            .with("container", cur_json)
            .with("actions", actions.clone())
            .with("changed_fields", changed_fields);
        if steps.is_empty() {
            return Ok(Plan::Done(out));
        }
        let mut diff = diff_of(&name, &fields, before_state, after_state);
        if diff.before == diff.after {
            // Nothing compared differs: say what the task asked for.
            let asked = if recreate { "recreate" } else { "restart" };
            diff.after.push_str(&format!("{asked}: requested\n"));
        }
        out = out.with_diff(diff);
        steps.after = Some(("container", "container", name));
        Ok(Plan::change(out, steps))
    }
}
