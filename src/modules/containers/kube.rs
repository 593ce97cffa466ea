//! `kube_play` (and `containers.podman.podman_play`): Kubernetes Pod and
//! Deployment YAML on a host, through `podman kube play`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::engine::{kv_line, string_map, strings, Engine, EngineSteps, Flavor};
use crate::connection::sh_quote;
use crate::modules::{
    parse_params, Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const DESCRIPTION: &str = "Applies the Kubernetes `Pod` and `Deployment` objects of a YAML file on the host \
with `podman kube play`, and tears them down with `podman kube play --down`. A Deployment of `replicas: N` \
is the pods `NAME-pod-0` .. `NAME-pod-(N-1)`, each container `POD-CONTAINER`, as podman names them. \
What runs is compared with the manifest: each pod exists (and runs, for `started`/`played`), and each \
container's image (by ID: a rebuilt tag counts), `command`, `args`, the given `env` keys and the \
`hostPort`s of its ports match; pods of a Deployment beyond its replicas are removed. When something \
differs the manifest is played again with `--replace` (every pod of the file is recreated); a pod that \
only stopped is started. `--diff` names the pods and fields that differ; check mode reports the same \
without changing anything. Other kinds in the file (`PersistentVolumeClaim`, `ConfigMap`) are passed \
to podman and not compared.";

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("kube_file", OptKind::Path, "The Kubernetes YAML file on the host.").required(),
    OptionDoc::new(
        "state",
        OptKind::Str,
        "`started`/`played`: created and running; `created`: created, not started; `absent`: torn down.",
    )
    .choices(&["created", "started", "played", "absent"])
    .default("started"),
    OptionDoc::new(
        "recreate",
        OptKind::Bool,
        "Play the file again with `--replace` even when it matches (always changed).",
    )
    .default("false"),
    OptionDoc::new(
        "network",
        OptKind::List,
        "Networks (or a mode) the pods join (`--network`).",
    ),
    OptionDoc::new(
        "annotation",
        OptKind::Dict,
        "Annotations for the pods (`--annotation`; used when played, not compared).",
    )
    .aliases(&["annotations"]),
    OptionDoc::new(
        "log_driver",
        OptKind::Str,
        "Log driver of the containers (used when played, not compared).",
    ),
    OptionDoc::new(
        "log_opt",
        OptKind::Dict,
        "Log driver options (`path`, `max_size`, `tag`; used when played, not compared).",
    )
    .aliases(&["log_options"]),
    OptionDoc::new(
        "userns",
        OptKind::Str,
        "User namespace of the pods (used when played, not compared).",
    ),
    OptionDoc::new("executable", OptKind::Str, "The podman program on the host.").default("podman"),
    OptionDoc::new("quiet", OptKind::Bool, "Accepted; podman's output is not shown.").ignored(),
    OptionDoc::new("debug", OptKind::Bool, "Accepted; ignored.").ignored(),
];

pub static KUBE_DOC: ModuleDoc = ModuleDoc {
    name: "kube_play",
    aliases: &["podman_play", "containers.podman.podman_play"],
    short: "Run Kubernetes Pod/Deployment YAML with podman",
    description: DESCRIPTION,
    free_form: false,
    options: OPTIONS,
    examples: "- kube_play:\n    kube_file: /etc/rigger/web.yaml\n    state: started\n\n\
- containers.podman.podman_play:\n    kube_file: /etc/rigger/web.yaml\n    state: absent\n",
    returns: &[
        ReturnDoc {
            name: "pods",
            description: "the pods the file describes (names, in order)",
        },
        ReturnDoc {
            name: "actions",
            description:
                "what was (or in check mode would be) done: `played`, `replaced`, `started`, `removed NAME`, `down`",
        },
        ReturnDoc {
            name: "changed_fields",
            description: "`POD-CONTAINER.FIELD` for each compared field that differed",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    kube_file: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    recreate: Option<bool>,
    #[serde(default)]
    network: Option<Vec<Value>>,
    #[serde(default)]
    annotation: Option<Value>,
    #[serde(default)]
    log_driver: Option<String>,
    #[serde(default)]
    log_opt: Option<Value>,
    #[serde(default)]
    userns: Option<String>,
    #[serde(default)]
    executable: Option<String>,
}

/// One container of the manifest.
#[derive(Debug, Clone, PartialEq)]
struct KubeContainer {
    name: String,
    image: String,
    command: Option<Vec<String>>,
    args: Option<Vec<String>>,
    env: Vec<(String, String)>,
    /// (container port/proto, host IP ("" for any), host port).
    ports: Vec<(String, String, String)>,
}

/// One pod the manifest makes.
#[derive(Debug, Clone, PartialEq)]
struct KubePod {
    name: String,
    containers: Vec<KubeContainer>,
}

/// The pods of a manifest, and the Deployments' pod-name prefixes (a pod
/// `PREFIX<number>` beyond the replicas is left over from a larger count).
#[derive(Debug, Default)]
struct Manifest {
    pods: Vec<KubePod>,
    families: Vec<(String, usize)>,
}

fn text_list(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| {
        a.iter()
            .map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()))
            .collect()
    })
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn containers_of(file: &str, pod_spec: &Value) -> Result<Vec<KubeContainer>, String> {
    let mut out = Vec::new();
    for c in pod_spec
        .get("containers")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{file}: a pod spec without `containers`"))?
    {
        let name = c
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{file}: a container without `name`"))?;
        let image = c
            .get("image")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{file}: container {name} has no `image`"))?;
        let env = c
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            // `valueFrom` (config maps, fields) is podman's to resolve: not compared.
            .filter(|e| e.get("value").is_some())
            .filter_map(|e| Some((e.get("name")?.as_str()?.to_string(), scalar(e.get("value")?))))
            .collect();
        let ports = c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|p| p.get("hostPort").is_some())
            .map(|p| {
                let proto = p
                    .get("protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("TCP")
                    .to_ascii_lowercase();
                let ip = p.get("hostIP").map(scalar).unwrap_or_default();
                let ip = if ip == "0.0.0.0" { String::new() } else { ip };
                (
                    format!("{}/{proto}", p.get("containerPort").map(scalar).unwrap_or_default()),
                    ip,
                    p.get("hostPort").map(scalar).unwrap_or_default(),
                )
            })
            .collect();
        out.push(KubeContainer {
            name: name.to_string(),
            image: image.to_string(),
            command: c.get("command").and_then(text_list),
            args: c.get("args").and_then(text_list),
            env,
            ports,
        });
    }
    Ok(out)
}

/// The pods `docs` (the file's YAML documents) make, as podman names them.
fn manifest(file: &str, docs: &[Value]) -> Result<Manifest, String> {
    let mut m = Manifest::default();
    for d in docs {
        if d.is_null() {
            continue;
        }
        let kind = d.get("kind").and_then(Value::as_str).unwrap_or("");
        let name = d.pointer("/metadata/name").and_then(Value::as_str);
        match kind {
            "Pod" => {
                let name = name.ok_or_else(|| format!("{file}: a Pod without metadata.name"))?;
                let spec = d.get("spec").ok_or_else(|| format!("{file}: Pod {name} has no spec"))?;
                m.pods.push(KubePod {
                    name: name.to_string(),
                    containers: containers_of(file, spec)?,
                });
            }
            "Deployment" => {
                let name = name.ok_or_else(|| format!("{file}: a Deployment without metadata.name"))?;
                let replicas = match d.pointer("/spec/replicas") {
                    None | Some(Value::Null) => 1,
                    Some(v) => v
                        .as_u64()
                        .ok_or_else(|| format!("{file}: Deployment {name}: replicas must be a number, got {v}"))?
                        as usize,
                };
                let spec = d
                    .pointer("/spec/template/spec")
                    .ok_or_else(|| format!("{file}: Deployment {name} has no spec.template.spec"))?;
                let containers = containers_of(file, spec)?;
                for i in 0..replicas {
                    m.pods.push(KubePod {
                        name: format!("{name}-pod-{i}"),
                        containers: containers.clone(),
                    });
                }
                m.families.push((format!("{name}-pod-"), replicas));
            }
            _ => {}
        }
    }
    Ok(m)
}

/// A pod on the host, from `pod ps --format json`.
struct HostPod {
    running: bool,
    /// Container name -> running.
    containers: BTreeMap<String, bool>,
}

fn host_pods(json: &str) -> Result<BTreeMap<String, HostPod>, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("`pod ps --format json` printed no JSON: {e}"))?;
    let mut out = BTreeMap::new();
    for p in v.as_array().into_iter().flatten() {
        let Some(name) = p.get("Name").and_then(Value::as_str) else {
            continue;
        };
        let containers = p
            .get("Containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| {
                let n = c.get("Names").and_then(Value::as_str)?;
                let st = c.get("Status").and_then(Value::as_str).unwrap_or("");
                Some((n.to_string(), st.eq_ignore_ascii_case("running")))
            })
            .collect();
        out.insert(
            name.to_string(),
            HostPod {
                running: p.get("Status").and_then(Value::as_str) == Some("Running"),
                containers,
            },
        );
    }
    Ok(out)
}

/// The fields of a running container that differ from the manifest's
/// `want` (as `field: before` / `field: after` pairs).
fn container_differences(
    cur: &Value,
    want: &KubeContainer,
    image_id: Option<&str>,
) -> Vec<(&'static str, String, String)> {
    let mut d = Vec::new();
    let cur_image = cur.get("Image").and_then(Value::as_str).unwrap_or("");
    let cur_name = cur.get("ImageName").and_then(Value::as_str).unwrap_or(cur_image);
    match image_id {
        Some(id) if id == cur_image => {}
        Some(id) => d.push((
            "image",
            format!("{cur_name} ({})", short(cur_image)),
            format!("{} ({})", want.image, short(id)),
        )),
        None => d.push((
            "image",
            cur_name.to_string(),
            format!("{} (not on the host)", want.image),
        )),
    }
    let joined = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a.iter().map(scalar).collect::<Vec<_>>().join(" "),
        _ => String::new(),
    };
    if let Some(cmd) = &want.command {
        let have = joined(cur.pointer("/Config/Entrypoint"));
        if have != cmd.join(" ") {
            d.push(("command", have, cmd.join(" ")));
        }
    }
    if let Some(args) = &want.args {
        let have = joined(cur.pointer("/Config/Cmd"));
        if have != args.join(" ") {
            d.push(("args", have, args.join(" ")));
        }
    }
    let env: BTreeMap<&str, &str> = cur
        .pointer("/Config/Env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str()?.split_once('='))
        .collect();
    let env_diff: Vec<&(String, String)> = want
        .env
        .iter()
        .filter(|(k, v)| env.get(k.as_str()) != Some(&v.as_str()))
        .collect();
    if !env_diff.is_empty() {
        let before = env_diff
            .iter()
            .map(|(k, _)| format!("{k}={}", env.get(k.as_str()).unwrap_or(&"(unset)")))
            .collect::<Vec<_>>()
            .join(" ");
        let after: Vec<(String, String)> = env_diff.into_iter().cloned().collect();
        d.push(("env", before, kv_line(&after)));
    }
    let ports = cur.pointer("/NetworkSettings/Ports").and_then(Value::as_object);
    let bound = |cport: &str| -> Vec<(String, String)> {
        ports
            .and_then(|p| p.get(cport))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|b| {
                let ip = b.get("HostIp").map(scalar).unwrap_or_default();
                let ip = if ip == "0.0.0.0" { String::new() } else { ip };
                (ip, b.get("HostPort").map(scalar).unwrap_or_default())
            })
            .collect()
    };
    let missing: Vec<&(String, String, String)> = want
        .ports
        .iter()
        .filter(|(c, ip, hp)| !bound(c).iter().any(|(bi, bp)| bi == ip && bp == hp))
        .collect();
    if !missing.is_empty() {
        let show = |(c, ip, hp): &(String, String, String)| {
            if ip.is_empty() {
                format!("{hp}:{c}")
            } else {
                format!("{ip}:{hp}:{c}")
            }
        };
        let before = missing
            .iter()
            .map(|(c, _, _)| {
                let b = bound(c);
                if b.is_empty() {
                    format!("{c} unpublished")
                } else {
                    b.iter()
                        .map(|(ip, hp)| show(&(c.clone(), ip.clone(), hp.clone())))
                        .collect::<Vec<_>>()
                        .join(",")
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        let after = missing.iter().map(|p| show(p)).collect::<Vec<_>>().join(" ");
        d.push(("ports", before, after));
    }
    d
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

pub struct KubePlayModule;

#[async_trait]
impl Module for KubePlayModule {
    fn doc(&self) -> &'static ModuleDoc {
        &KUBE_DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let module = KUBE_DOC.name;
        let p: Params = parse_params(&KUBE_DOC, args)?;
        let state = match p.state.as_deref().unwrap_or("started") {
            "played" => "started",
            s => s,
        };
        let engine = Engine::new(ctx, Flavor::Podman, p.executable.as_deref(), module);
        // A path option: `~` is the login user's home on the host, as Ansible expands it there.
        let file = match p.kube_file.strip_prefix('~') {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                let home = ctx.run("printf %s \"$HOME\"").await?.stdout_str();
                if home.is_empty() {
                    return Err(ModuleError::Failed(format!(
                        "{module}: kube_file {}: $HOME is not set on {}",
                        p.kube_file, ctx.host
                    )));
                }
                format!("{home}{rest}")
            }
            _ => p.kube_file.clone(),
        };
        let read = ctx.run_read(&format!("cat -- {}", sh_quote(&file))).await?;
        if read.status != 0 {
            return Err(ModuleError::Failed(format!(
                "{module}: cannot read {file} on {}: {}",
                ctx.host,
                read.stderr_str().trim()
            )));
        }
        let text = read.stdout_str();
        let label = format!("{}:{file}", ctx.host);
        let docs: Vec<Value> = crate::yaml::parse_documents(&text, &label)
            .map_err(|e| ModuleError::Failed(format!("{module}: {e}")))?
            .iter()
            .map(|n| n.to_json())
            .collect();
        let m = manifest(&label, &docs).map_err(|e| ModuleError::Failed(format!("{module}: {e}")))?;
        if m.pods.is_empty() && state != "absent" {
            return Err(ModuleError::Failed(format!(
                "{module}: {file} on {} holds no Pod or Deployment",
                ctx.host
            )));
        }
        let pods = host_pods(&engine.run(&strings(&["pod", "ps", "--format", "json"])).await?)
            .map_err(|e| ModuleError::Failed(format!("{module}: {e}")))?;
        // Pods of a Deployment beyond its replicas.
        let extras: Vec<String> = pods
            .keys()
            .filter(|name| {
                m.families.iter().any(|(prefix, n)| {
                    name.strip_prefix(prefix.as_str())
                        .and_then(|i| i.parse::<usize>().ok())
                        .is_some_and(|i| i >= *n)
                })
            })
            .cloned()
            .collect();
        let pod_names: Vec<String> = m.pods.iter().map(|p| p.name.clone()).collect();
        let pod_state = |name: &str| match pods.get(name) {
            None => "absent",
            Some(p) if p.running => "running",
            Some(_) => "stopped",
        };

        let mut before = String::new();
        let mut after = String::new();
        let mut steps = EngineSteps::new(&engine);
        let mut actions: Vec<String> = Vec::new();
        let mut fields: Vec<String> = Vec::new();
        let header = format!("kube {file}");

        if state == "absent" {
            let present: Vec<&String> = pod_names.iter().filter(|n| pods.contains_key(*n)).collect();
            if !present.is_empty() {
                steps.push(strings(&["kube", "play", "--down", "--", &file]));
                actions.push("down".into());
            }
            for n in &present {
                before.push_str(&format!("pod {n}: {}\n", pod_state(n)));
                after.push_str(&format!("pod {n}: absent\n"));
            }
            for e in &extras {
                steps.push(strings(&["pod", "rm", "-f", "--", e]));
                actions.push(format!("removed {e}"));
                before.push_str(&format!("pod {e}: {}\n", pod_state(e)));
                after.push_str(&format!("pod {e}: absent\n"));
            }
        } else {
            // Image IDs of the manifest's images (None: not on the host).
            let mut image_ids: BTreeMap<String, Option<String>> = BTreeMap::new();
            for pod in &m.pods {
                for c in &pod.containers {
                    if !image_ids.contains_key(&c.image) && pods.contains_key(&pod.name) {
                        image_ids.insert(c.image.clone(), engine.image_id(&c.image).await?);
                    }
                }
            }
            let mut replay = p.recreate.unwrap_or(false);
            let mut any_exists = false;
            let mut to_start = Vec::new();
            for pod in &m.pods {
                let Some(hp) = pods.get(&pod.name) else {
                    replay = true;
                    before.push_str(&format!("pod {}: absent\n", pod.name));
                    after.push_str(&format!(
                        "pod {}: {}\n",
                        pod.name,
                        if state == "started" { "running" } else { "created" }
                    ));
                    continue;
                };
                any_exists = true;
                let mut pod_fields = Vec::new();
                for c in &pod.containers {
                    let cname = format!("{}-{}", pod.name, c.name);
                    if !hp.containers.contains_key(&cname) {
                        pod_fields.push((cname, "container", "absent".to_string(), "present".to_string()));
                        continue;
                    }
                    let cur = engine.inspect("container", &cname).await?.unwrap_or(Value::Null);
                    let id = image_ids.get(&c.image).cloned().flatten();
                    for (f, b, a) in container_differences(&cur, c, id.as_deref()) {
                        pod_fields.push((cname.clone(), f, b, a));
                    }
                }
                if !pod_fields.is_empty() {
                    replay = true;
                }
                for (cname, f, b, a) in pod_fields {
                    fields.push(format!("{cname}.{f}"));
                    before.push_str(&format!("{cname} {f}: {b}\n"));
                    after.push_str(&format!("{cname} {f}: {a}\n"));
                }
                let all_running = hp.running && hp.containers.values().all(|r| *r);
                if state == "started" && !all_running {
                    before.push_str(&format!("pod {}: {}\n", pod.name, pod_state(&pod.name)));
                    after.push_str(&format!("pod {}: running\n", pod.name));
                    to_start.push(pod.name.clone());
                }
            }
            for e in &extras {
                steps.push(strings(&["pod", "rm", "-f", "--", e]));
                actions.push(format!("removed {e}"));
                before.push_str(&format!("pod {e}: {}\n", pod_state(e)));
                after.push_str(&format!("pod {e}: absent\n"));
            }
            if replay {
                let mut play = strings(&["kube", "play"]);
                if any_exists {
                    play.push("--replace".into());
                }
                if state == "created" {
                    play.push("--start=false".into());
                }
                for n in p.network.iter().flatten() {
                    play.extend(["--network".into(), scalar(n)]);
                }
                if let Some(a) = p.annotation.as_ref().filter(|a| !a.is_null()) {
                    for (k, v) in string_map(module, "annotation", a)? {
                        play.extend(["--annotation".into(), format!("{k}={v}")]);
                    }
                }
                if let Some(d) = &p.log_driver {
                    play.extend(["--log-driver".into(), d.clone()]);
                }
                if let Some(o) = p.log_opt.as_ref().filter(|o| !o.is_null()) {
                    for (k, v) in string_map(module, "log_opt", o)? {
                        play.extend(["--log-opt".into(), format!("{}={v}", k.replace('_', "-"))]);
                    }
                }
                if let Some(u) = &p.userns {
                    play.extend(["--userns".into(), u.clone()]);
                }
                play.extend(["--".into(), file.clone()]);
                steps.push(play);
                actions.push(if any_exists { "replaced" } else { "played" }.into());
                if before == after {
                    after.push_str("recreate: requested\n");
                }
            } else {
                for n in &to_start {
                    steps.push(strings(&["pod", "start", "--", n]));
                }
                if !to_start.is_empty() {
                    actions.push("started".into());
                }
            }
        }
        let out = ModuleOutcome::ok()
            .with("pods", pod_names)
            .with("actions", actions)
            .with("changed_fields", fields);
        if steps.is_empty() {
            return Ok(Plan::Done(out));
        }
        let out = out.with_diff(Diff {
            before_header: header.clone(),
            after_header: header,
            before,
            after,
        });
        Ok(Plan::change(out, steps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_pods_are_named_as_podman_names_them() {
        let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2\n  template:\n    \
spec:\n      containers:\n      - name: httpd\n        image: localhost/w:1\n        command: [httpd, -f]\n        \
env: [{name: A, value: 1}, {name: B, valueFrom: {x: y}}]\n        ports: [{containerPort: 80, hostPort: 8080, hostIP: 127.0.0.1}, {containerPort: 81}]\n\
---\nkind: Pod\nmetadata: {name: one}\nspec: {containers: [{name: c, image: i}]}\n---\nkind: PersistentVolumeClaim\nmetadata: {name: v}\n";
        let docs: Vec<Value> = crate::yaml::parse_documents(yaml, "t")
            .unwrap()
            .iter()
            .map(|n| n.to_json())
            .collect();
        let m = manifest("t", &docs).unwrap();
        let names: Vec<&str> = m.pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["web-pod-0", "web-pod-1", "one"]);
        assert_eq!(m.families, [("web-pod-".to_string(), 2)]);
        let c = &m.pods[0].containers[0];
        assert_eq!(c.env, [("A".to_string(), "1".to_string())]);
        assert_eq!(
            c.ports,
            [("80/tcp".to_string(), "127.0.0.1".to_string(), "8080".to_string())]
        );
        assert!(manifest("t", &[serde_json::json!({"kind": "Pod", "metadata": {"name": "x"}})]).is_err());
    }
}
