//! `container_service`: a small compose-like group of containers (with a
//! network and volumes) brought up in dependency order, scaled to N
//! replicas and rolled one replica at a time, waiting for health.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::container::{self, running, DOCKER_DOC, PODMAN_DOC};
use super::engine::{strings, Engine, Flavor};
use super::spec::{differences, Wanted};
use crate::modules::{
    parse_params, Change, Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan,
    ReturnDoc,
};

/// The labels that tie a container to its service and member.
const SERVICE_LABEL: &str = "io.rigger.service";
const MEMBER_LABEL: &str = "io.rigger.member";

const DESCRIPTION: &str = "A small compose-like group on one host: `containers` (each with the options of \
`podman_container`/`docker_container`, plus `replicas` and `depends_on`), an optional `network` every \
container joins (unless it names its own `networks`) and named `volumes`, created when missing. A \
container entry `NAME` with `replicas: N` is the containers `NAME-1` .. `NAME-N`; a published port may \
give a range of host ports (`127.0.0.1:8081-8089:8080`): replica `i` gets the `i`-th. Containers are \
labelled `io.rigger.service` and `io.rigger.member`, so scaling down removes the highest-numbered \
replicas (stopped first, with their `stop_timeout`) and a container entry removed from the task is \
removed from the host.\n\nEntries are brought up in dependency order (`depends_on`); each new, \
recreated or started replica is waited for until it is healthy (its health check passes; a replica \
without one: it runs) before the next one is touched, for at most `wait_timeout` seconds. A replica \
whose configuration differs from the task (the comparison of `podman_container`, image by ID) is \
replaced one at a time (a rolling update: the others keep serving). When a new replica exits or is \
not healthy in time, the task fails there, naming it and the replicas left on the old configuration: \
the roll stops. `--diff` lists each replica that changes and the fields that differ; check mode \
reports the same without changing anything. `state: absent` removes the containers (dependents first) \
and the network; volumes are kept.";

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "name",
        OptKind::Str,
        "The service's name (the `io.rigger.service` label).",
    )
    .required(),
    OptionDoc::new("state", OptKind::Str, "Whether the service runs.")
        .choices(&["present", "started", "absent"])
        .default("present"),
    OptionDoc::new(
        "containers",
        OptKind::List,
        "The containers: mappings of `name`, `replicas` (default 1), `depends_on` (names) and the container \
         module's options (`image`, `command`, `env`, `published_ports`, `volumes`, `healthcheck`, ...).",
    )
    .required(),
    OptionDoc::new(
        "network",
        OptKind::Str,
        "A network created when missing, joined by every container.",
    ),
    OptionDoc::new(
        "volumes",
        OptKind::List,
        "Named volumes created when missing (kept by `absent`).",
    ),
    OptionDoc::new(
        "wait_timeout",
        OptKind::Int,
        "Seconds a new replica has to become healthy.",
    )
    .default("60"),
    OptionDoc::new("engine", OptKind::Str, "The container engine.")
        .choices(&["podman", "docker"])
        .default("podman"),
    OptionDoc::new(
        "executable",
        OptKind::Str,
        "The engine's program on the host (default: the engine's name).",
    ),
];

pub static SERVICE_DOC: ModuleDoc = ModuleDoc {
    name: "container_service",
    aliases: &[],
    short: "Run a group of containers: dependency order, replicas, rolling updates",
    description: DESCRIPTION,
    free_form: false,
    options: OPTIONS,
    examples: "- container_service:\n    name: shop\n    network: shop-net\n    volumes: [shop-db]\n    containers:\n      \
- name: db\n        image: localhost/db:3\n        volumes: [\"shop-db:/var/lib/db\"]\n        \
healthcheck: test -S /run/db.sock\n      - name: web\n        image: localhost/web:1.4\n        \
depends_on: [db]\n        replicas: 3\n        published_ports: [\"127.0.0.1:8081-8089:8080\"]\n        \
healthcheck: wget -q -O /dev/null http://127.0.0.1:8080/health\n        stop_timeout: 5\n    wait_timeout: 30\n",
    returns: &[
        ReturnDoc {
            name: "containers",
            description: "the service's containers after the task, in dependency order",
        },
        ReturnDoc {
            name: "actions",
            description: "what was (or in check mode would be) done, in order: `created NAME`, `recreated NAME`, \
                          `started NAME`, `removed NAME`, `created network NAME`, `created volume NAME`, `removed network NAME`",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    name: String,
    #[serde(default)]
    state: Option<String>,
    containers: Vec<Value>,
    #[serde(default)]
    network: Option<String>,
    #[serde(default)]
    volumes: Option<Vec<Value>>,
    #[serde(default)]
    wait_timeout: Option<u64>,
    #[serde(default)]
    engine: Option<String>,
    #[serde(default)]
    executable: Option<String>,
}

/// One container entry of the task.
struct Member {
    name: String,
    replicas: usize,
    depends_on: Vec<String>,
    /// The container module's options (without `name`).
    args: Map<String, Value>,
}

fn args_err(service: &str, why: String) -> ModuleError {
    ModuleError::Args(format!("container_service {service}: {why}"))
}

fn members(service: &str, list: &[Value]) -> Result<Vec<Member>, ModuleError> {
    let mut out: Vec<Member> = Vec::new();
    for v in list {
        let Value::Object(m) = v else {
            return Err(args_err(service, format!("containers: an entry is not a mapping: {v}")));
        };
        let mut args = m.clone();
        let name = match args.remove("name") {
            Some(Value::String(s)) if !s.is_empty() => s,
            _ => return Err(args_err(service, format!("containers: an entry without `name`: {v}"))),
        };
        if out.iter().any(|o| o.name == name) {
            return Err(args_err(service, format!("containers: `{name}` is given twice")));
        }
        if args.contains_key("state") {
            return Err(args_err(
                service,
                format!("container {name}: `state` is the service's, not a container's"),
            ));
        }
        let replicas = match args.remove("replicas") {
            None | Some(Value::Null) => 1,
            Some(r) => r
                .as_u64()
                .or_else(|| r.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| {
                    args_err(
                        service,
                        format!("container {name}: replicas must be a number >= 0, got {r}"),
                    )
                })? as usize,
        };
        let depends_on = match args.remove("depends_on") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s],
            Some(Value::Array(a)) => a
                .iter()
                .map(|d| d.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| args_err(service, format!("container {name}: depends_on must be names")))?,
            Some(other) => {
                return Err(args_err(
                    service,
                    format!("container {name}: depends_on must be a list of names, got {other}"),
                ))
            }
        };
        out.push(Member {
            name,
            replicas,
            depends_on,
            args,
        });
    }
    dependency_order(service, out)
}

/// The members with each one after those it depends on (otherwise in the
/// task's order); an unknown name or a cycle is an error.
fn dependency_order(service: &str, members: Vec<Member>) -> Result<Vec<Member>, ModuleError> {
    let names: BTreeSet<&str> = members.iter().map(|m| m.name.as_str()).collect();
    for m in &members {
        if let Some(d) = m.depends_on.iter().find(|d| !names.contains(d.as_str())) {
            return Err(args_err(
                service,
                format!(
                    "container {}: depends_on names `{d}`, which is not one of the containers",
                    m.name
                ),
            ));
        }
    }
    let mut left = members;
    let mut done: Vec<Member> = Vec::new();
    while !left.is_empty() {
        let ready = left
            .iter()
            .position(|m| m.depends_on.iter().all(|d| done.iter().any(|x| &x.name == d)));
        match ready {
            Some(i) => done.push(left.remove(i)),
            None => {
                let cycle: Vec<&str> = left.iter().map(|m| m.name.as_str()).collect();
                return Err(args_err(
                    service,
                    format!("depends_on has a cycle among: {}", cycle.join(", ")),
                ));
            }
        }
    }
    Ok(done)
}

/// A published port for replica `i` (1-based): a host port range
/// `[IP:]A-B:C[/proto]` gives the `i`-th port of the range.
fn replica_port(service: &str, member: &Member, spec: &str, i: usize) -> Result<String, ModuleError> {
    let (addr, proto) = match spec.rsplit_once('/') {
        Some((a, p)) => (a, format!("/{p}")),
        None => (spec, String::new()),
    };
    let mut parts: Vec<&str> = addr.rsplitn(3, ':').collect();
    if parts.len() < 2 {
        return Ok(spec.to_string());
    }
    let host = parts[1];
    let Some((a, b)) = host.split_once('-') else {
        if member.replicas > 1 && !host.is_empty() {
            return Err(args_err(
                service,
                format!(
                    "container {}: {} replicas cannot all publish host port {host} (`{spec}`): give a range, e.g. {host}-{}",
                    member.name,
                    member.replicas,
                    host.parse::<u32>().map(|p| p + member.replicas as u32 - 1).unwrap_or(0)
                ),
            ));
        }
        return Ok(spec.to_string());
    };
    let bad = || {
        args_err(
            service,
            format!("container {}: bad port range in `{spec}`", member.name),
        )
    };
    let a: u32 = a.parse().map_err(|_| bad())?;
    let b: u32 = b.parse().map_err(|_| bad())?;
    if b < a || b > 65535 {
        return Err(bad());
    }
    let port = a + i as u32 - 1;
    if port > b {
        return Err(args_err(
            service,
            format!(
                "container {}: {} replicas need {} host ports, the range {a}-{b} of `{spec}` has {}",
                member.name,
                member.replicas,
                member.replicas,
                b - a + 1
            ),
        ));
    }
    let p = port.to_string();
    parts[1] = &p;
    parts.reverse();
    Ok(format!("{}{proto}", parts.join(":")))
}

/// The container module's arguments for replica `i` of `member`.
fn replica_args(p: &Params, member: &Member, i: usize) -> Result<Map<String, Value>, ModuleError> {
    let service = &p.name;
    let mut a = member.args.clone();
    // The service drives one engine for all its members: a member's own
    // daemon would be ignored, so it is refused.
    if let Some(k) = ["docker_host", "docker_url"].iter().find(|k| a.contains_key(**k)) {
        return Err(args_err(
            service,
            format!(
                "container {}: `{k}` is not taken per container; set DOCKER_HOST in the task's `environment:`",
                member.name
            ),
        ));
    }
    a.insert("name".into(), Value::String(format!("{}-{i}", member.name)));
    for key in ["published_ports", "ports", "publish", "published"] {
        if let Some(v) = a.remove(key) {
            let list = match v {
                Value::Array(l) => l,
                Value::String(s) => s.split(',').map(|x| Value::String(x.trim().to_string())).collect(),
                other => vec![other],
            };
            let ports = list
                .iter()
                .map(|x| {
                    let s = x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string());
                    replica_port(service, member, &s, i).map(Value::String)
                })
                .collect::<Result<Vec<_>, _>>()?;
            a.insert(key.into(), Value::Array(ports));
        }
    }
    let mut labels = match a.remove("labels").or_else(|| a.remove("label")) {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(args_err(
                service,
                format!("container {}: labels must be a mapping, got {other}", member.name),
            ))
        }
    };
    labels.insert(SERVICE_LABEL.into(), Value::String(service.clone()));
    labels.insert(MEMBER_LABEL.into(), Value::String(member.name.clone()));
    a.insert("labels".into(), Value::Object(labels));
    if let Some(net) = &p.network {
        let own = ["networks", "network", "net", "network_mode"]
            .iter()
            .any(|k| a.contains_key(*k));
        if !own {
            a.insert("networks".into(), Value::Array(vec![Value::String(net.clone())]));
        }
    }
    Ok(a)
}

/// One step of the change.
enum Step {
    Engine(Vec<String>),
    /// Wait until the container runs and is healthy; `rest` are the
    /// replicas the plan would touch after it (named when it fails).
    WaitHealthy {
        name: String,
        health: bool,
        rest: Vec<String>,
    },
}

struct ServiceChange {
    flavor: Flavor,
    program: String,
    service: String,
    timeout: Duration,
    steps: Vec<Step>,
}

#[async_trait]
impl Change for ServiceChange {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let engine = Engine::new(ctx, self.flavor, Some(&self.program), SERVICE_DOC.name);
        for step in &self.steps {
            match step {
                Step::Engine(args) => {
                    engine.run(args).await?;
                }
                Step::WaitHealthy { name, health, rest } => {
                    if let Err(why) = wait_healthy(&engine, name, *health, self.timeout).await? {
                        let left = if rest.is_empty() {
                            String::new()
                        } else {
                            format!("; stopped there: {} not changed by this run", rest.join(", "))
                        };
                        return Err(ModuleError::Failed(format!(
                            "container_service {}: {name} {why}{left}",
                            self.service
                        )));
                    }
                }
            }
        }
        Ok(planned)
    }
}

/// Waits until `name` runs and (with a health check) is healthy: Ok(Err(why)) when it does not.
async fn wait_healthy(
    engine: &Engine<'_>,
    name: &str,
    health: bool,
    timeout: Duration,
) -> Result<Result<(), String>, ModuleError> {
    let start = Instant::now();
    loop {
        let Some(c) = engine.inspect("container", name).await? else {
            return Ok(Err("is gone".into()));
        };
        if !running(&c) {
            let code = c.pointer("/State/ExitCode").cloned().unwrap_or(Value::Null);
            let logs = engine
                .try_run(&strings(&["logs", "--tail", "3", name]))
                .await
                .map(|o| format!("{}{}", o.stdout, o.stderr))
                .unwrap_or_default();
            return Ok(Err(format!(
                "exited (status {code}) instead of running: {}",
                logs.trim()
            )));
        }
        if !health {
            return Ok(Ok(()));
        }
        // podman runs a check when asked (no systemd timers here);
        // docker's daemon runs them itself.
        let last = match engine.flavor {
            Flavor::Podman => {
                let out = engine.try_run(&strings(&["healthcheck", "run", name])).await?;
                if out.ok {
                    return Ok(Ok(()));
                }
                format!(
                    "{} {}",
                    out.stdout.trim(),
                    out.stderr.lines().last().unwrap_or("").trim()
                )
                .trim()
                .to_string()
            }
            Flavor::Docker => {
                let status = c.pointer("/State/Health/Status").and_then(Value::as_str).unwrap_or("");
                if status == "healthy" {
                    return Ok(Ok(()));
                }
                status.to_string()
            }
        };
        if start.elapsed() >= timeout {
            return Ok(Err(format!(
                "did not become healthy within {}s (last check: {})",
                timeout.as_secs(),
                if last.is_empty() { "no result" } else { &last }
            )));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

pub struct ServiceModule;

#[async_trait]
impl Module for ServiceModule {
    fn doc(&self) -> &'static ModuleDoc {
        &SERVICE_DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&SERVICE_DOC, args)?;
        let service = p.name.clone();
        let flavor = match p.engine.as_deref() {
            Some("docker") => Flavor::Docker,
            _ => Flavor::Podman,
        };
        let cdoc = match flavor {
            Flavor::Podman => &PODMAN_DOC,
            Flavor::Docker => &DOCKER_DOC,
        };
        let engine = Engine::new(ctx, flavor, p.executable.as_deref(), SERVICE_DOC.name);
        let members = members(&service, &p.containers)?;
        let absent = p.state.as_deref() == Some("absent");

        // What runs now: the service's containers by member.
        let listed = engine
            .run(&strings(&[
                "ps",
                "-a",
                "--filter",
                &format!("label={SERVICE_LABEL}={service}"),
                "--format",
                "{{.Names}}",
            ]))
            .await?;
        let names: Vec<String> = listed
            .lines()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
        let current: BTreeMap<String, Value> = engine
            .inspect_all("container", &names)
            .await?
            .into_iter()
            .map(|c| {
                let name = c.get("Name").and_then(Value::as_str).unwrap_or("");
                (name.trim_start_matches('/').to_string(), c)
            })
            .collect();
        let member_of = |c: &Value| {
            c.pointer(&format!("/Config/Labels/{}", MEMBER_LABEL.replace('/', "~1")))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let state_of = |name: &str| match current.get(name) {
            None => "absent",
            Some(c) if running(c) => "running",
            Some(_) => "stopped",
        };

        let mut steps: Vec<Step> = Vec::new();
        let mut actions: Vec<String> = Vec::new();
        let mut before = String::new();
        let mut after = String::new();
        let mut names_after: Vec<String> = Vec::new();
        // Stopped with the container's stop timeout, then removed: podman's
        // `rm -f -t` does both; docker's `rm -f` kills, so it stops first.
        let stop_rm = |steps: &mut Vec<Step>, name: &str, stop_timeout: Option<i64>| {
            let timeout = stop_timeout.map(|t| t.to_string());
            match flavor {
                Flavor::Podman => {
                    let mut rm = strings(&["rm", "-f"]);
                    if let Some(t) = timeout {
                        rm.extend(["-t".into(), t]);
                    }
                    rm.push(name.to_string());
                    steps.push(Step::Engine(rm));
                }
                Flavor::Docker => {
                    let mut stop = strings(&["stop"]);
                    if let Some(t) = timeout {
                        stop.extend(["-t".into(), t]);
                    }
                    stop.push(name.to_string());
                    steps.push(Step::Engine(stop));
                    steps.push(Step::Engine(strings(&["rm", "-f", name])));
                }
            }
        };
        let cur_stop_timeout = |c: &Value| c.pointer("/Config/StopTimeout").and_then(Value::as_i64);

        if absent {
            // Dependents first: the reverse of the dependency order, then
            // containers of entries no longer in the task.
            let mut order: Vec<String> = Vec::new();
            for m in members.iter().rev() {
                let mut mine: Vec<&String> = current
                    .iter()
                    .filter(|(_, c)| member_of(c) == m.name)
                    .map(|(n, _)| n)
                    .collect();
                mine.sort_by_key(|n| std::cmp::Reverse(replica_index(n, &m.name)));
                order.extend(mine.into_iter().cloned());
            }
            order.extend(
                current
                    .keys()
                    .filter(|n| !order.contains(n))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            for n in &order {
                before.push_str(&format!("{n}: {}\n", state_of(n)));
                after.push_str(&format!("{n}: absent\n"));
                stop_rm(&mut steps, n, current.get(n).and_then(cur_stop_timeout));
                actions.push(format!("removed {n}"));
            }
            if let Some(net) = &p.network {
                if engine.inspect("network", net).await?.is_some() {
                    before.push_str(&format!("network {net}: present\n"));
                    after.push_str(&format!("network {net}: absent\n"));
                    steps.push(Step::Engine(strings(&["network", "rm", net])));
                    actions.push(format!("removed network {net}"));
                }
            }
        } else {
            if let Some(net) = &p.network {
                if engine.inspect("network", net).await?.is_none() {
                    before.push_str(&format!("network {net}: absent\n"));
                    after.push_str(&format!("network {net}: present\n"));
                    steps.push(Step::Engine(strings(&["network", "create", net])));
                    actions.push(format!("created network {net}"));
                }
            }
            for v in p.volumes.iter().flatten() {
                let v = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                if engine.inspect("volume", &v).await?.is_none() {
                    before.push_str(&format!("volume {v}: absent\n"));
                    after.push_str(&format!("volume {v}: present\n"));
                    steps.push(Step::Engine(strings(&["volume", "create", &v])));
                    actions.push(format!("created volume {v}"));
                }
            }
            let mut image_ids: BTreeMap<String, Option<String>> = BTreeMap::new();
            // Each replica's planned work, in order; the wait steps learn
            // the replicas after them once the whole plan is known.
            let mut planned_names: Vec<String> = Vec::new();
            for m in &members {
                // Scale down first: the highest-numbered replicas.
                let mut extras: Vec<(&String, usize)> = current
                    .iter()
                    .filter(|(_, c)| member_of(c) == m.name)
                    .map(|(n, _)| (n, replica_index(n, &m.name)))
                    .filter(|(_, i)| *i == 0 || *i > m.replicas)
                    .collect();
                extras.sort_by_key(|(_, i)| std::cmp::Reverse(*i));
                for (n, _) in extras {
                    before.push_str(&format!("{n}: {}\n", state_of(n)));
                    after.push_str(&format!("{n}: absent\n"));
                    stop_rm(&mut steps, n, current.get(n).and_then(cur_stop_timeout));
                    actions.push(format!("removed {n}"));
                }
                for i in 1..=m.replicas {
                    let a = replica_args(&p, m, i)?;
                    let cp: container::Params = parse_params(cdoc, a).map_err(|e| member_err(&service, &m.name, e))?;
                    let mut want: Wanted =
                        container::wanted(cdoc.name, &cp).map_err(|e| member_err(&service, &m.name, e))?;
                    let name = format!("{}-{i}", m.name);
                    let image = want
                        .image
                        .clone()
                        .ok_or_else(|| args_err(&service, format!("container {}: no `image`", m.name)))?;
                    if !image_ids.contains_key(&image) {
                        image_ids.insert(image.clone(), engine.image_id(&image).await?);
                    }
                    want.image_id = image_ids[&image].clone();
                    names_after.push(name.clone());
                    let health = want.health.is_some();
                    let create = |steps: &mut Vec<Step>| {
                        let (create, connect) = want.create_args(flavor, &name);
                        steps.push(Step::Engine(create));
                        steps.extend(connect.into_iter().map(Step::Engine));
                        steps.push(Step::Engine(strings(&["start", &name])));
                        steps.push(Step::WaitHealthy {
                            name: name.clone(),
                            health,
                            rest: Vec::new(),
                        });
                    };
                    match current.get(&name) {
                        None => {
                            before.push_str(&format!("{name}: absent\n"));
                            after.push_str(&format!("{name}: running\n"));
                            create(&mut steps);
                            actions.push(format!("created {name}"));
                            planned_names.push(name.clone());
                        }
                        Some(c) => {
                            let fields = differences(c, &want);
                            if !fields.is_empty() {
                                for f in &fields {
                                    before.push_str(&format!("{name} {}: {}\n", f.field, f.before));
                                    after.push_str(&format!("{name} {}: {}\n", f.field, f.after));
                                }
                                stop_rm(&mut steps, &name, cur_stop_timeout(c));
                                create(&mut steps);
                                actions.push(format!("recreated {name}"));
                                planned_names.push(name.clone());
                            } else if !running(c) {
                                before.push_str(&format!("{name}: stopped\n"));
                                after.push_str(&format!("{name}: running\n"));
                                steps.push(Step::Engine(strings(&["start", &name])));
                                steps.push(Step::WaitHealthy {
                                    name: name.clone(),
                                    health,
                                    rest: Vec::new(),
                                });
                                actions.push(format!("started {name}"));
                                planned_names.push(name.clone());
                            }
                        }
                    }
                }
            }
            // Entries no longer in the task.
            let known: BTreeSet<&str> = members.iter().map(|m| m.name.as_str()).collect();
            for (n, c) in &current {
                if !known.contains(member_of(c).as_str()) {
                    before.push_str(&format!("{n}: {}\n", state_of(n)));
                    after.push_str(&format!("{n}: absent\n"));
                    stop_rm(&mut steps, n, cur_stop_timeout(c));
                    actions.push(format!("removed {n}"));
                }
            }
            let mut k = 0;
            for s in steps.iter_mut() {
                if let Step::WaitHealthy { rest, .. } = s {
                    k += 1;
                    *rest = planned_names[k..].to_vec();
                }
            }
        }
        let out = ModuleOutcome::ok()
            .with("containers", names_after)
            .with("actions", actions);
        if steps.is_empty() {
            return Ok(Plan::Done(out));
        }
        let header = format!("container_service {service}");
        let out = out.with_diff(Diff {
            before_header: header.clone(),
            after_header: header,
            before,
            after,
        });
        Ok(Plan::change(
            out,
            ServiceChange {
                flavor,
                program: engine.program.clone(),
                service,
                timeout: Duration::from_secs(p.wait_timeout.unwrap_or(60)),
                steps,
            },
        ))
    }
}

fn member_err(service: &str, member: &str, e: ModuleError) -> ModuleError {
    match e {
        ModuleError::Args(m) => args_err(service, format!("container {member}: {m}")),
        other => other,
    }
}

/// `i` of a container named `MEMBER-i` (0: not named so).
fn replica_index(name: &str, member: &str) -> usize {
    name.strip_prefix(member)
        .and_then(|r| r.strip_prefix('-'))
        .and_then(|i| i.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, replicas: usize, deps: &[&str]) -> Member {
        Member {
            name: name.into(),
            replicas,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            args: Map::new(),
        }
    }

    #[test]
    fn dependency_order_and_its_errors() {
        let order = dependency_order(
            "s",
            vec![
                member("web", 1, &["db"]),
                member("db", 1, &[]),
                member("lb", 1, &["web"]),
            ],
        )
        .unwrap();
        let names: Vec<&str> = order.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["db", "web", "lb"]);
        let Err(ModuleError::Args(e)) = dependency_order("s", vec![member("a", 1, &["b"]), member("b", 1, &["a"])])
        else {
            panic!("a cycle is an error")
        };
        assert!(e.contains("cycle among: a, b"), "{e}");
        let Err(ModuleError::Args(e)) = dependency_order("s", vec![member("a", 1, &["x"])]) else {
            panic!("an unknown name is an error")
        };
        assert!(e.contains("`x`"), "{e}");
    }

    #[test]
    fn a_members_own_docker_host_is_refused() {
        let p = Params {
            name: "s".into(),
            state: None,
            containers: Vec::new(),
            network: None,
            volumes: None,
            wait_timeout: None,
            engine: Some("docker".into()),
            executable: None,
        };
        let mut m = member("web", 1, &[]);
        m.args.insert("image".into(), Value::String("web:1".into()));
        assert!(replica_args(&p, &m, 1).is_ok());
        m.args.insert("docker_url".into(), Value::String("tcp://h:2375".into()));
        let e = replica_args(&p, &m, 1).unwrap_err().to_string();
        assert!(
            e.contains("container web: `docker_url` is not taken per container"),
            "{e}"
        );
    }

    #[test]
    fn replica_ports_come_from_the_range() {
        let m = member("web", 3, &[]);
        assert_eq!(
            replica_port("s", &m, "127.0.0.1:8081-8089:8080", 3).unwrap(),
            "127.0.0.1:8083:8080"
        );
        assert_eq!(replica_port("s", &m, "9001-9003:53/udp", 1).unwrap(), "9001:53/udp");
        assert_eq!(replica_port("s", &m, "8080", 2).unwrap(), "8080");
        assert!(replica_port("s", &m, "127.0.0.1:8081-8082:8080", 3).is_err());
        assert!(replica_port("s", &m, "127.0.0.1:8081:8080", 1).is_err());
        assert_eq!(replica_index("web-12", "web"), 12);
        assert_eq!(replica_index("webx-1", "web"), 0);
    }
}
