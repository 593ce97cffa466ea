//! `podman_network` / `docker_network` and `podman_volume` / `docker_volume`
//! (and their collection names): networks and named volumes on the host.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::engine::{kv_line, string_map, strings, Engine, EngineSteps, Flavor, DOCKER_HOST};
use crate::modules::{
    parse_params, Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const NET_DESCRIPTION: &str = "Creates or removes a network. The options given (`driver`, `subnet`/`gateway` \
or docker's `ipam_config`, `internal`, `labels`) are compared with the network's `inspect`; when one \
differs the network is removed and created again (the engine refuses while containers use it, and the \
task fails with its message).";

const NET_RETURNS: &[ReturnDoc] = &[ReturnDoc {
    name: "network",
    description: "the network's `inspect` object after the task (`{}` when absent)",
}];

const PODMAN_NET_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("name", OptKind::Str, "Network name.").required(),
    OptionDoc::new("state", OptKind::Str, "Whether it exists.")
        .choices(&["present", "absent"])
        .default("present"),
    OptionDoc::new("driver", OptKind::Str, "Driver (`bridge`, `macvlan`, ...)."),
    OptionDoc::new("subnet", OptKind::Str, "Subnet in CIDR form."),
    OptionDoc::new("gateway", OptKind::Str, "Gateway address (with `subnet`)."),
    OptionDoc::new("internal", OptKind::Bool, "No route outside the network."),
    OptionDoc::new("labels", OptKind::Dict, "Labels (compared: the given keys).").aliases(&["label"]),
    OptionDoc::new("recreate", OptKind::Bool, "Recreate even when it matches.").default("false"),
    OptionDoc::new("executable", OptKind::Str, "The podman program on the host.").default("podman"),
];

const DOCKER_NET_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("name", OptKind::Str, "Network name.")
        .required()
        .aliases(&["network_name"]),
    OptionDoc::new("state", OptKind::Str, "Whether it exists.")
        .choices(&["present", "absent"])
        .default("present"),
    OptionDoc::new("driver", OptKind::Str, "Driver (`bridge`, `macvlan`, ...)."),
    OptionDoc::new(
        "ipam_config",
        OptKind::List,
        "One mapping with `subnet` and optionally `gateway` (more are not supported).",
    ),
    OptionDoc::new("internal", OptKind::Bool, "No route outside the network."),
    OptionDoc::new("labels", OptKind::Dict, "Labels (compared: the given keys)."),
    OptionDoc::new("force", OptKind::Bool, "Recreate even when it matches.").default("false"),
    DOCKER_HOST,
];

static PODMAN_NET_DOC: ModuleDoc = ModuleDoc {
    name: "podman_network",
    aliases: &["containers.podman.podman_network"],
    short: "Manage podman networks",
    description: NET_DESCRIPTION,
    free_form: false,
    options: PODMAN_NET_OPTIONS,
    examples: "- podman_network:\n    name: backend\n    subnet: 10.91.0.0/24\n    gateway: 10.91.0.1\n",
    returns: NET_RETURNS,
    controller_only: false,
};

static DOCKER_NET_DOC: ModuleDoc = ModuleDoc {
    name: "docker_network",
    aliases: &["community.docker.docker_network"],
    short: "Manage docker networks",
    description: NET_DESCRIPTION,
    free_form: false,
    options: DOCKER_NET_OPTIONS,
    examples: "- docker_network:\n    name: backend\n    ipam_config:\n      - subnet: 10.91.0.0/24\n        gateway: 10.91.0.1\n",
    returns: NET_RETURNS,
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NetParams {
    name: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    subnet: Option<String>,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    ipam_config: Option<Vec<Value>>,
    #[serde(default)]
    internal: Option<bool>,
    #[serde(default)]
    labels: Option<Value>,
    #[serde(default)]
    recreate: Option<bool>,
    #[serde(default)]
    force: Option<bool>,
    #[serde(default)]
    executable: Option<String>,
    #[serde(default)]
    docker_host: Option<String>,
}

pub struct NetworkModule {
    pub flavor: Flavor,
}

/// What an inspected network is (podman's netavark/CNI form or docker's).
struct NetFacts {
    driver: String,
    /// Subnet and gateway.
    subnets: Vec<(String, String)>,
    internal: bool,
    labels: Map<String, Value>,
}

fn net_facts(n: &Value) -> NetFacts {
    let get = |a: &str, b: &str| n.get(a).or_else(|| n.get(b)).cloned().unwrap_or(Value::Null);
    let driver = get("driver", "Driver").as_str().unwrap_or("").to_string();
    let internal = get("internal", "Internal").as_bool().unwrap_or(false);
    let labels = get("labels", "Labels").as_object().cloned().unwrap_or_default();
    let mut subnets = Vec::new();
    let list = n
        .get("subnets")
        .cloned()
        .or_else(|| n.pointer("/IPAM/Config").cloned())
        .unwrap_or(Value::Null);
    for s in list.as_array().into_iter().flatten() {
        let f = |a: &str, b: &str| {
            s.get(a)
                .or_else(|| s.get(b))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        subnets.push((f("subnet", "Subnet"), f("gateway", "Gateway")));
    }
    NetFacts {
        driver,
        subnets,
        internal,
        labels,
    }
}

/// Compares the given keys of `want` with `cur` (labels, driver options:
/// keys the engine added are not compared); when one differs, writes a
/// `FIELD:` line into the diff's before (the current map) and after (the
/// requested pairs).
fn diff_map(field: &str, cur: &Map<String, Value>, want: &[(String, String)], before: &mut String, after: &mut String) {
    let differs = want
        .iter()
        .any(|(k, v)| cur.get(k).and_then(Value::as_str) != Some(v.as_str()));
    if differs {
        before.push_str(&format!("{field}: {}\n", Value::Object(cur.clone())));
        after.push_str(&format!("{field}: {}\n", kv_line(want)));
    }
}

#[async_trait]
impl Module for NetworkModule {
    fn doc(&self) -> &'static ModuleDoc {
        match self.flavor {
            Flavor::Podman => &PODMAN_NET_DOC,
            Flavor::Docker => &DOCKER_NET_DOC,
        }
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let doc = self.doc();
        let module = doc.name;
        let mut p: NetParams = parse_params(doc, args)?;
        if let Some(cfg) = &p.ipam_config {
            if cfg.len() > 1 {
                return Err(ModuleError::Args(format!(
                    "{module}: more than one ipam_config entry is not supported by rigger"
                )));
            }
            if let Some(Value::Object(m)) = cfg.first() {
                for (k, v) in m {
                    match k.as_str() {
                        "subnet" => p.subnet = v.as_str().map(str::to_string),
                        "gateway" => p.gateway = v.as_str().map(str::to_string),
                        other => {
                            return Err(ModuleError::Args(format!(
                                "{module}: ipam_config.{other} is not supported by rigger (subnet, gateway)"
                            )))
                        }
                    }
                }
            }
        }
        let labels = match &p.labels {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => string_map(module, "labels", v)?,
        };
        let engine =
            Engine::new(ctx, self.flavor, p.executable.as_deref(), module).with_docker_host(p.docker_host.as_deref());
        let current = engine.inspect("network", &p.name).await?;
        let header = format!("network {}", p.name);
        let mut steps = EngineSteps::new(&engine);
        if p.state.as_deref() == Some("absent") {
            let Some(cur) = current else {
                return Ok(Plan::Done(
                    ModuleOutcome::ok().with("network", Value::Object(Map::new())),
                ));
            };
            steps.push(strings(&["network", "rm", &p.name]));
            let out = ModuleOutcome::ok()
                .with_diff(Diff {
                    before_header: header.clone(),
                    after_header: header,
                    before: "state: present\n".into(),
                    after: "state: absent\n".into(),
                })
                .with("network", cur);
            return Ok(Plan::change(out, steps));
        }
        let mut before = String::new();
        let mut after = String::new();
        let exists = current.is_some();
        if let Some(cur) = &current {
            let NetFacts {
                driver,
                subnets,
                internal,
                labels: cur_labels,
            } = net_facts(cur);
            if let Some(d) = p.driver.as_ref().filter(|d| **d != driver) {
                before.push_str(&format!("driver: {driver}\n"));
                after.push_str(&format!("driver: {d}\n"));
            }
            if let Some(s) = &p.subnet {
                let ok = subnets
                    .iter()
                    .any(|(cs, cg)| cs == s && p.gateway.as_ref().is_none_or(|g| g == cg));
                if !ok {
                    let show = |v: &[(String, String)]| {
                        v.iter()
                            .map(|(s, g)| format!("{s} via {g}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    before.push_str(&format!("subnet: {}\n", show(&subnets)));
                    after.push_str(&format!(
                        "subnet: {s} via {}\n",
                        p.gateway.as_deref().unwrap_or("(any)")
                    ));
                }
            }
            if let Some(i) = p.internal.filter(|i| *i != internal) {
                before.push_str(&format!("internal: {internal}\n"));
                after.push_str(&format!("internal: {i}\n"));
            }
            diff_map("labels", &cur_labels, &labels, &mut before, &mut after);
            if p.recreate.or(p.force).unwrap_or(false) && before.is_empty() {
                after.push_str("recreate: requested\n");
            }
            if after.is_empty() {
                return Ok(Plan::Done(ModuleOutcome::ok().with("network", cur.clone())));
            }
            steps.push(strings(&["network", "rm", &p.name]));
        } else {
            before.push_str("state: absent\n");
            after.push_str("state: present\n");
        }
        let mut create = strings(&["network", "create"]);
        if let Some(d) = &p.driver {
            create.extend(["--driver".into(), d.clone()]);
        }
        if let Some(s) = &p.subnet {
            create.extend(["--subnet".into(), s.clone()]);
        }
        if let Some(g) = &p.gateway {
            create.extend(["--gateway".into(), g.clone()]);
        }
        if p.internal.unwrap_or(false) {
            create.push("--internal".into());
        }
        for (k, v) in &labels {
            create.extend(["--label".into(), format!("{k}={v}")]);
        }
        create.push("--".into());
        create.push(p.name.clone());
        steps.push(create);
        steps.after = Some(("network", "network", p.name.clone()));
        let out = ModuleOutcome::ok()
            .with_diff(Diff {
                before_header: header.clone(),
                after_header: header,
                before,
                after,
            })
            .with("network", current.unwrap_or_else(|| Value::Object(Map::new())))
            .with("actions", vec![if exists { "recreated" } else { "created" }]);
        Ok(Plan::change(out, steps))
    }
}

const VOL_DESCRIPTION: &str = "Creates or removes a named volume. The options given (`driver`, `labels`, \
`options`/`driver_options`) are compared with the volume's `inspect`; a volume that differs is recreated \
only when the task allows it (podman `recreate: true`, docker `recreate: options-changed` or `always`), \
since its data is lost; otherwise the task fails and says what differs.";

const PODMAN_VOL_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("name", OptKind::Str, "Volume name.").required(),
    OptionDoc::new("state", OptKind::Str, "Whether it exists.")
        .choices(&["present", "absent"])
        .default("present"),
    OptionDoc::new("driver", OptKind::Str, "Volume driver.").default("local"),
    OptionDoc::new("label", OptKind::Dict, "Labels (compared: the given keys).").aliases(&["labels"]),
    OptionDoc::new(
        "options",
        OptKind::List,
        "Driver options as `KEY=VALUE` (`type=tmpfs`).",
    ),
    OptionDoc::new(
        "recreate",
        OptKind::Bool,
        "Recreate a volume that differs (its data is lost).",
    )
    .default("false"),
    OptionDoc::new("executable", OptKind::Str, "The podman program on the host.").default("podman"),
];

const DOCKER_VOL_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("volume_name", OptKind::Str, "Volume name.")
        .required()
        .aliases(&["name"]),
    OptionDoc::new("state", OptKind::Str, "Whether it exists.")
        .choices(&["present", "absent"])
        .default("present"),
    OptionDoc::new("driver", OptKind::Str, "Volume driver.").default("local"),
    OptionDoc::new("labels", OptKind::Dict, "Labels (compared: the given keys)."),
    OptionDoc::new("driver_options", OptKind::Dict, "Driver options."),
    OptionDoc::new("recreate", OptKind::Str, "When to recreate (its data is lost).")
        .choices(&["always", "never", "options-changed"])
        .default("never"),
    DOCKER_HOST,
];

static PODMAN_VOL_DOC: ModuleDoc = ModuleDoc {
    name: "podman_volume",
    aliases: &["containers.podman.podman_volume"],
    short: "Manage podman volumes",
    description: VOL_DESCRIPTION,
    free_form: false,
    options: PODMAN_VOL_OPTIONS,
    examples: "- podman_volume:\n    name: pgdata\n    label: { app: db }\n",
    returns: &[ReturnDoc {
        name: "volume",
        description: "the volume's `inspect` object after the task (`{}` when absent)",
    }],
    controller_only: false,
};

static DOCKER_VOL_DOC: ModuleDoc = ModuleDoc {
    name: "docker_volume",
    aliases: &["community.docker.docker_volume"],
    short: "Manage docker volumes",
    description: VOL_DESCRIPTION,
    free_form: false,
    options: DOCKER_VOL_OPTIONS,
    examples: "- docker_volume:\n    name: pgdata\n    labels: { app: db }\n",
    returns: &[ReturnDoc {
        name: "volume",
        description: "the volume's `inspect` object after the task (`{}` when absent)",
    }],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VolParams {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    volume_name: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    label: Option<Value>,
    #[serde(default)]
    labels: Option<Value>,
    #[serde(default)]
    options: Option<Vec<Value>>,
    #[serde(default)]
    driver_options: Option<Value>,
    #[serde(default)]
    recreate: Option<Value>,
    #[serde(default)]
    executable: Option<String>,
    #[serde(default)]
    docker_host: Option<String>,
}

pub struct VolumeModule {
    pub flavor: Flavor,
}

#[async_trait]
impl Module for VolumeModule {
    fn doc(&self) -> &'static ModuleDoc {
        match self.flavor {
            Flavor::Podman => &PODMAN_VOL_DOC,
            Flavor::Docker => &DOCKER_VOL_DOC,
        }
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let doc = self.doc();
        let module = doc.name;
        let p: VolParams = parse_params(doc, args)?;
        let name = p
            .name
            .clone()
            .or(p.volume_name.clone())
            .ok_or_else(|| ModuleError::Args(format!("{module}: missing required argument: name")))?;
        let labels = match p.label.as_ref().or(p.labels.as_ref()) {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => string_map(module, "labels", v)?,
        };
        let mut options: Vec<(String, String)> = match &p.driver_options {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => string_map(module, "driver_options", v)?,
        };
        for o in p.options.iter().flatten() {
            let text = o.as_str().map(str::to_string).unwrap_or_else(|| o.to_string());
            let (k, v) = text
                .split_once('=')
                .ok_or_else(|| ModuleError::Args(format!("{module}: options: expected KEY=VALUE, got `{text}`")))?;
            options.push((k.to_string(), v.to_string()));
        }
        // podman: a boolean; docker: always | never | options-changed.
        let (recreate_always, recreate_on_change) = match &p.recreate {
            None | Some(Value::Null) => (false, false),
            Some(Value::String(s)) if s == "always" => (true, true),
            Some(Value::String(s)) if s == "options-changed" => (false, true),
            Some(Value::String(s)) if s == "never" => (false, false),
            Some(v) => {
                let b = crate::modules::values::value_bool(v)
                    .ok_or_else(|| ModuleError::Args(format!("{module}: recreate: unexpected value {v}")))?;
                // podman's `recreate: true`: when it differs.
                (false, b)
            }
        };
        let engine =
            Engine::new(ctx, self.flavor, p.executable.as_deref(), module).with_docker_host(p.docker_host.as_deref());
        let current = engine.inspect("volume", &name).await?;
        let header = format!("volume {name}");
        let mut steps = EngineSteps::new(&engine);
        let mk_diff = |before: String, after: String| Diff {
            before_header: header.clone(),
            after_header: header.clone(),
            before,
            after,
        };
        if p.state.as_deref() == Some("absent") {
            let Some(cur) = current else {
                return Ok(Plan::Done(
                    ModuleOutcome::ok().with("volume", Value::Object(Map::new())),
                ));
            };
            steps.push(strings(&["volume", "rm", &name]));
            let out = ModuleOutcome::ok()
                .with_diff(mk_diff("state: present\n".into(), "state: absent\n".into()))
                .with("volume", cur);
            return Ok(Plan::change(out, steps));
        }
        let mut before = String::new();
        let mut after = String::new();
        let exists = current.is_some();
        if let Some(cur) = &current {
            let driver = cur.get("Driver").and_then(Value::as_str).unwrap_or("local");
            if let Some(d) = p.driver.as_ref().filter(|d| d.as_str() != driver) {
                before.push_str(&format!("driver: {driver}\n"));
                after.push_str(&format!("driver: {d}\n"));
            }
            let cur_labels = cur
                .get("Labels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            diff_map("labels", &cur_labels, &labels, &mut before, &mut after);
            let cur_opts = cur
                .get("Options")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            diff_map("options", &cur_opts, &options, &mut before, &mut after);
            let differs = !after.is_empty();
            if differs && !recreate_on_change {
                return Err(ModuleError::Failed(format!(
                    "{module}: volume {name} differs from the task ({}); recreating it loses its data: \
                     set `recreate` to allow it",
                    after.trim_end().replace('\n', "; ")
                )));
            }
            if !differs && !recreate_always {
                return Ok(Plan::Done(ModuleOutcome::ok().with("volume", cur.clone())));
            }
            if !differs {
                after.push_str("recreate: requested\n");
            }
            steps.push(strings(&["volume", "rm", &name]));
        } else {
            before.push_str("state: absent\n");
            after.push_str("state: present\n");
        }
        let mut create = strings(&["volume", "create"]);
        if let Some(d) = &p.driver {
            create.extend(["--driver".into(), d.clone()]);
        }
        for (k, v) in &labels {
            create.extend(["--label".into(), format!("{k}={v}")]);
        }
        for (k, v) in &options {
            create.extend(["--opt".into(), format!("{k}={v}")]);
        }
        create.push("--".into());
        create.push(name.clone());
        steps.push(create);
        steps.after = Some(("volume", "volume", name));
        let out = ModuleOutcome::ok()
            .with_diff(mk_diff(before, after))
            .with("volume", current.unwrap_or_else(|| Value::Object(Map::new())))
            .with("actions", vec![if exists { "recreated" } else { "created" }]);
        Ok(Plan::change(out, steps))
    }
}
