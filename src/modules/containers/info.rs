//! Reading containers: `container_facts` (rigger's summary as facts) and
//! `podman_container_info` / `docker_container_info` (Ansible's names and
//! return values).

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::engine::{strings, Engine, Flavor, DOCKER_HOST};
use crate::modules::{
    parse_params, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const FACTS_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("name", OptKind::List, "Only these containers (default: every one).").aliases(&["names"]),
    OptionDoc::new("all", OptKind::Bool, "Stopped containers too (default: running ones).").default("false"),
    OptionDoc::new("engine", OptKind::Str, "The container engine.")
        .choices(&["podman", "docker"])
        .default("podman"),
    OptionDoc::new(
        "executable",
        OptKind::Str,
        "The engine's program on the host (default: the engine's name).",
    ),
];

pub static FACTS_DOC: ModuleDoc = ModuleDoc {
    name: "container_facts",
    aliases: &[],
    short: "Facts about the containers on a host",
    description: "Sets the fact `containers`: for each running container (all of them with `all: true`), by \
name, its `id`, `image`, `state` (the engine's: `running`, `exited`, ...), `running`, `health` (`healthy`, \
`unhealthy`, `starting`, or `none` without a health check), `restart_count`, `exit_code`, `started_at`, \
`pod` and `ports` (`[IP:]HOST_PORT->CONTAINER_PORT/PROTO`). It reads `ps` and one `inspect` of them all; \
it changes nothing. podman updates a health status only when a check runs (a systemd timer, or \
`podman healthcheck run`): without systemd it stays `starting`.",
    free_form: false,
    options: FACTS_OPTIONS,
    examples: "- container_facts:\n- debug:\n    msg: \"{{ item.key }} {{ item.value.health }} restarts={{ item.value.restart_count }}\"\n  \
loop: \"{{ ansible_facts.containers | dict2items }}\"\n",
    returns: &[ReturnDoc {
        name: "ansible_facts.containers",
        description: "container name -> `id`, `image`, `state`, `running`, `health`, `restart_count`, `exit_code`, `started_at`, `pod`, `ports`",
    }],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FactsParams {
    #[serde(default)]
    name: Option<Vec<String>>,
    #[serde(default)]
    all: Option<bool>,
    #[serde(default)]
    engine: Option<String>,
    #[serde(default)]
    executable: Option<String>,
}

/// The names of the host's containers (`all`: stopped ones too).
async fn container_names(engine: &Engine<'_>, all: bool) -> Result<Vec<String>, ModuleError> {
    let mut args = strings(&["ps", "--format", "{{.Names}}"]);
    if all {
        args.insert(1, "-a".into());
    }
    Ok(engine
        .run(&args)
        .await?
        .lines()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect())
}

/// The summary `container_facts` gives of one `inspect` object (podman's or docker's).
pub fn summary(c: &Value) -> Value {
    let text = |p: &str| c.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
    let health = c
        .pointer("/State/Health/Status")
        .or_else(|| c.pointer("/State/Healthcheck/Status"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("none");
    let mut ports = Vec::new();
    if let Some(m) = c.pointer("/NetworkSettings/Ports").and_then(Value::as_object) {
        for (cport, binds) in m {
            for b in binds.as_array().into_iter().flatten() {
                let ip = b.get("HostIp").and_then(Value::as_str).unwrap_or("");
                let hp = b.get("HostPort").and_then(Value::as_str).unwrap_or("");
                ports.push(if ip.is_empty() {
                    format!("{hp}->{cport}")
                } else {
                    format!("{ip}:{hp}->{cport}")
                });
            }
        }
    }
    ports.sort();
    let image = c
        .get("ImageName")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| text("/Config/Image"));
    json!({
        "id": text("/Id"),
        "image": image,
        "state": text("/State/Status"),
        "running": c.pointer("/State/Running").and_then(Value::as_bool).unwrap_or(false),
        "health": health,
        "restart_count": c.get("RestartCount").and_then(Value::as_i64).unwrap_or(0),
        "exit_code": c.pointer("/State/ExitCode").and_then(Value::as_i64).unwrap_or(0),
        "started_at": text("/State/StartedAt"),
        "pod": text("/PodName"),
        "ports": ports,
    })
}

fn container_name(c: &Value) -> String {
    c.get("Name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim_start_matches('/')
        .to_string()
}

pub struct FactsModule;

#[async_trait]
impl Module for FactsModule {
    fn doc(&self) -> &'static ModuleDoc {
        &FACTS_DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: FactsParams = parse_params(&FACTS_DOC, args)?;
        let flavor = match p.engine.as_deref() {
            Some("docker") => Flavor::Docker,
            _ => Flavor::Podman,
        };
        let engine = Engine::new(ctx, flavor, p.executable.as_deref(), FACTS_DOC.name);
        let all = p.all.unwrap_or(false);
        let mut names = container_names(&engine, all).await?;
        if let Some(only) = &p.name {
            names.retain(|n| only.contains(n));
        }
        let mut facts = Map::new();
        for c in engine.inspect_all("container", &names).await? {
            // A container may stop between `ps` and `inspect`.
            if !all && !c.pointer("/State/Running").and_then(Value::as_bool).unwrap_or(false) {
                continue;
            }
            facts.insert(container_name(&c), summary(&c));
        }
        Ok(Plan::Done(
            ModuleOutcome::ok().with("ansible_facts", json!({ "containers": facts })),
        ))
    }
}

const PODMAN_INFO_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "name",
        OptKind::List,
        "Containers to read (default: every one, stopped too).",
    ),
    OptionDoc::new("executable", OptKind::Str, "The podman program on the host.").default("podman"),
];

const DOCKER_INFO_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("name", OptKind::Str, "The container to read.").required(),
    DOCKER_HOST,
];

pub static PODMAN_INFO_DOC: ModuleDoc = ModuleDoc {
    name: "podman_container_info",
    aliases: &["containers.podman.podman_container_info"],
    short: "Read podman containers",
    description: "Returns the `inspect` objects of the named containers (of every container, stopped ones \
too, without `name`); a name the host lacks is left out, as containers.podman's module does.",
    free_form: false,
    options: PODMAN_INFO_OPTIONS,
    examples: "- podman_container_info:\n    name: [web-1, web-2]\n  register: info\n",
    returns: &[ReturnDoc {
        name: "containers",
        description: "the `inspect` objects",
    }],
    controller_only: false,
};

pub static DOCKER_INFO_DOC: ModuleDoc = ModuleDoc {
    name: "docker_container_info",
    aliases: &["community.docker.docker_container_info"],
    short: "Read one docker container",
    description: "Whether the container exists, and its `inspect` object, as community.docker's module returns them.",
    free_form: false,
    options: DOCKER_INFO_OPTIONS,
    examples: "- docker_container_info:\n    name: web\n  register: web\n",
    returns: &[
        ReturnDoc {
            name: "exists",
            description: "whether the container exists",
        },
        ReturnDoc {
            name: "container",
            description: "its `inspect` object (null when it does not exist)",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InfoParams {
    #[serde(default)]
    name: Option<Value>,
    #[serde(default)]
    executable: Option<String>,
    #[serde(default)]
    docker_host: Option<String>,
}

pub struct InfoModule {
    pub flavor: Flavor,
}

#[async_trait]
impl Module for InfoModule {
    fn doc(&self) -> &'static ModuleDoc {
        match self.flavor {
            Flavor::Podman => &PODMAN_INFO_DOC,
            Flavor::Docker => &DOCKER_INFO_DOC,
        }
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let doc = self.doc();
        let p: InfoParams = parse_params(doc, args)?;
        let engine =
            Engine::new(ctx, self.flavor, p.executable.as_deref(), doc.name).with_docker_host(p.docker_host.as_deref());
        let out = match self.flavor {
            Flavor::Podman => {
                let names: Vec<String> = match &p.name {
                    None | Some(Value::Null) => container_names(&engine, true).await?,
                    Some(Value::Array(a)) => a
                        .iter()
                        .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
                        .collect(),
                    Some(v) => vec![v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())],
                };
                ModuleOutcome::ok().with("containers", engine.inspect_all("container", &names).await?)
            }
            Flavor::Docker => {
                let name = p.name.as_ref().and_then(Value::as_str).unwrap_or("").to_string();
                let c = engine.inspect("container", &name).await?;
                ModuleOutcome::ok()
                    .with("exists", c.is_some())
                    .with("container", c.unwrap_or(Value::Null))
            }
        };
        Ok(Plan::Done(out))
    }
}
