//! A container's configuration as a task asks for it ([`Wanted`]) and as the
//! engine's `inspect` shows it, compared field by field ([`differences`]),
//! and turned into `create` arguments ([`Wanted::create_args`]).
//!
//! Only the fields a task gives are compared (as community.docker's
//! `docker_container` does): a field the task leaves out keeps whatever the
//! container has. `env` and `labels` compare the given keys only (the image
//! and the engine add their own).

use std::collections::BTreeMap;

use serde_json::Value;

use super::engine::{kv_line, parse_duration_ns, strip_sha, Flavor};
use crate::modules::ModuleError;

/// One published port: `[ip:]host:container[/proto]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Port {
    /// Empty: every address.
    pub host_ip: String,
    /// Empty: a port the engine picks.
    pub host_port: String,
    pub container_port: String,
    pub proto: String,
}

impl Port {
    pub fn parse(module: &str, spec: &str) -> Result<Port, ModuleError> {
        let bad = |why: &str| ModuleError::Args(format!("{module}: published port `{spec}`: {why}"));
        let (addr, proto) = match spec.rsplit_once('/') {
            Some((a, p)) => (a, p.to_ascii_lowercase()),
            None => (spec, "tcp".to_string()),
        };
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(bad("the protocol must be tcp, udp or sctp"));
        }
        if addr.contains('-') {
            return Err(bad("port ranges are not supported by rigger; list each port"));
        }
        let parts: Vec<&str> = addr.rsplitn(3, ':').collect();
        let (host_ip, host_port, container_port) = match parts.as_slice() {
            [c] => ("", "", *c),
            [c, h] => ("", *h, *c),
            [c, h, ip] => (*ip, *h, *c),
            _ => return Err(bad("expected [IP:]HOST_PORT:CONTAINER_PORT[/PROTO]")),
        };
        let host_ip = host_ip.trim_start_matches('[').trim_end_matches(']');
        let num = |p: &str| p.is_empty() || p.parse::<u16>().is_ok();
        if container_port.is_empty() || !num(container_port) || !num(host_port) {
            return Err(bad("ports must be numbers from 1 to 65535"));
        }
        Ok(Port {
            host_ip: normal_ip(host_ip),
            host_port: host_port.to_string(),
            container_port: container_port.to_string(),
            proto,
        })
    }

    /// As `--publish` takes it.
    pub fn to_arg(&self) -> String {
        let ip = if self.host_ip.contains(':') {
            format!("[{}]", self.host_ip)
        } else {
            self.host_ip.clone()
        };
        let mut s = match (ip.is_empty(), self.host_port.is_empty()) {
            (true, true) => self.container_port.clone(),
            (true, false) => format!("{}:{}", self.host_port, self.container_port),
            (false, _) => format!("{ip}:{}:{}", self.host_port, self.container_port),
        };
        if self.proto != "tcp" {
            s.push('/');
            s.push_str(&self.proto);
        }
        s
    }

    /// `want` is met by `self` (a port the engine picked meets any host port).
    fn meets(&self, want: &Port) -> bool {
        self.host_ip == want.host_ip
            && self.container_port == want.container_port
            && self.proto == want.proto
            && (want.host_port.is_empty() || self.host_port == want.host_port)
    }
}

fn normal_ip(ip: &str) -> String {
    if ip == "0.0.0.0" || ip == "::" {
        String::new()
    } else {
        ip.to_string()
    }
}

/// One volume: `source:destination[:options]` (a host path or a named
/// volume), or `destination` alone (an anonymous volume).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Volume {
    /// A host path, a volume name, or `None` (anonymous).
    pub source: Option<String>,
    pub destination: String,
    pub read_only: bool,
    /// As written, for `--volume`.
    spec: String,
}

impl Volume {
    pub fn parse(module: &str, spec: &str) -> Result<Volume, ModuleError> {
        let parts: Vec<&str> = spec.split(':').collect();
        let (source, destination, opts) = match parts.as_slice() {
            [d] => (None, *d, ""),
            [s, d] => (Some(*s), *d, ""),
            [s, d, o] => (Some(*s), *d, *o),
            _ => {
                return Err(ModuleError::Args(format!(
                    "{module}: volume `{spec}`: expected SOURCE:DESTINATION[:OPTIONS]"
                )))
            }
        };
        if !destination.starts_with('/') {
            return Err(ModuleError::Args(format!(
                "{module}: volume `{spec}`: the destination must be an absolute path"
            )));
        }
        Ok(Volume {
            source: source.map(trim_slash),
            destination: trim_slash(destination),
            read_only: opts.split(',').any(|o| o == "ro"),
            spec: spec.to_string(),
        })
    }

    fn show(&self) -> String {
        format!(
            "{}:{}{}",
            self.source.as_deref().unwrap_or("(anonymous)"),
            self.destination,
            if self.read_only { ":ro" } else { "" }
        )
    }
}

fn trim_slash(p: &str) -> String {
    if p.len() > 1 {
        p.trim_end_matches('/').to_string()
    } else {
        p.to_string()
    }
}

/// A health check: its test and the timings given.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Health {
    /// `["CMD-SHELL", "..."]` or `["CMD", ...]`.
    pub test: Vec<String>,
    pub interval: Option<(String, u64)>,
    pub timeout: Option<(String, u64)>,
    pub start_period: Option<(String, u64)>,
    pub retries: Option<i64>,
}

/// The container a task asks for (`None`: not given, not compared).
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    pub image: Option<String>,
    /// The ID of `image` on the host (`None`: not there yet, will be pulled).
    pub image_id: Option<String>,
    pub command: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub ports: Option<Vec<Port>>,
    pub volumes: Option<Vec<Volume>>,
    pub networks: Option<Vec<String>>,
    /// Name and retry count (`on-failure`).
    pub restart: Option<(String, Option<i64>)>,
    pub memory: Option<(String, u64)>,
    pub cpus: Option<(String, u64)>,
    pub pids_limit: Option<i64>,
    pub health: Option<Health>,
    pub labels: Vec<(String, String)>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub hostname: Option<String>,
    pub stop_timeout: Option<i64>,
    /// `PORT/PROTO` the container exposes (compared: these are exposed).
    pub expose: Vec<String>,
    /// `/etc/hosts` entries: host name and address (compared exactly).
    pub etc_hosts: Option<Vec<(String, String)>>,
    pub log_driver: Option<String>,
    /// Log options (compared: docker's every given key; podman's `path` and `tag`).
    pub log_options: Vec<(String, String)>,
}

/// One field that differs: its name, and the before/after text for `--diff`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDiff {
    pub field: &'static str,
    pub before: String,
    pub after: String,
}

/// Network modes that are not network names.
fn is_mode(n: &str) -> bool {
    matches!(n, "host" | "none" | "private" | "slirp4netns" | "pasta") || n.starts_with("container:")
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    let mut cur = v;
    for p in path {
        cur = cur.get(p).unwrap_or(&Value::Null);
    }
    cur
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn show_list(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(" ")
    }
}

/// The published ports of an inspected container.
pub fn current_ports(c: &Value) -> Vec<Port> {
    let mut out = Vec::new();
    if let Some(m) = s(c, &["HostConfig", "PortBindings"]).as_object() {
        for (key, binds) in m {
            let (cport, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
            for b in binds.as_array().into_iter().flatten() {
                out.push(Port {
                    host_ip: normal_ip(b.get("HostIp").and_then(Value::as_str).unwrap_or("")),
                    host_port: b.get("HostPort").and_then(Value::as_str).unwrap_or("").to_string(),
                    container_port: cport.to_string(),
                    proto: proto.to_string(),
                });
            }
        }
    }
    out.sort();
    out
}

fn is_anonymous_name(n: &str) -> bool {
    n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The volumes of an inspected container.
pub fn current_volumes(c: &Value) -> Vec<Volume> {
    let mut out = Vec::new();
    for m in s(c, &["Mounts"]).as_array().into_iter().flatten() {
        let ty = m.get("Type").and_then(Value::as_str).unwrap_or("");
        let source = match ty {
            "bind" => m.get("Source").and_then(Value::as_str).map(trim_slash),
            "volume" => m
                .get("Name")
                .and_then(Value::as_str)
                .filter(|n| !is_anonymous_name(n))
                .map(str::to_string),
            _ => continue,
        };
        let destination = trim_slash(m.get("Destination").and_then(Value::as_str).unwrap_or(""));
        out.push(Volume {
            spec: String::new(),
            source,
            destination,
            read_only: m.get("RW").and_then(Value::as_bool) == Some(false),
        });
    }
    out.sort();
    out
}

/// The networks (or the network mode) of an inspected container.
pub fn current_networks(c: &Value, want: &[String]) -> Vec<String> {
    if want.iter().any(|n| is_mode(n)) {
        let mode = s(c, &["HostConfig", "NetworkMode"]).as_str().unwrap_or("").to_string();
        return vec![mode];
    }
    let mut v: Vec<String> = s(c, &["NetworkSettings", "Networks"])
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn current_nano_cpus(c: &Value) -> u64 {
    let nano = s(c, &["HostConfig", "NanoCpus"]).as_u64().unwrap_or(0);
    if nano != 0 {
        return nano;
    }
    let quota = s(c, &["HostConfig", "CpuQuota"]).as_i64().unwrap_or(0);
    let period = s(c, &["HostConfig", "CpuPeriod"]).as_i64().unwrap_or(0);
    if quota > 0 && period > 0 {
        (quota as u64 * 1_000_000_000) / period as u64
    } else {
        0
    }
}

fn map_of(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn env_of(c: &Value) -> BTreeMap<String, String> {
    str_list(s(c, &["Config", "Env"]))
        .into_iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e, String::new()),
        })
        .collect()
}

/// Ports: every wanted one present, and no others.
fn ports_match(cur: &[Port], want: &[Port]) -> bool {
    cur.len() == want.len() && want.iter().all(|w| cur.iter().any(|c| c.meets(w)))
}

fn volumes_match(cur: &[Volume], want: &[Volume]) -> bool {
    // Anonymous volumes of the image itself are not the task's business.
    let cur: Vec<&Volume> = cur
        .iter()
        .filter(|c| c.source.is_some() || want.iter().any(|w| w.destination == c.destination))
        .collect();
    cur.len() == want.len()
        && want.iter().all(|w| {
            cur.iter().any(|c| {
                c.destination == w.destination
                    && c.read_only == w.read_only
                    && (w.source.is_none() || c.source == w.source)
            })
        })
}

fn ns_field(cur: u64, want: &Option<(String, u64)>) -> Option<(String, String)> {
    let (text, ns) = want.as_ref()?;
    (cur != *ns).then(|| (show_ns(cur), text.clone()))
}

fn show_ns(ns: u64) -> String {
    if ns % 1_000_000_000 == 0 {
        format!("{}s", ns / 1_000_000_000)
    } else {
        format!("{}ms", ns / 1_000_000)
    }
}

/// The fields of `c` (an inspected container) that differ from `w`.
pub fn differences(c: &Value, w: &Wanted) -> Vec<FieldDiff> {
    let mut d = Vec::new();
    let mut push = |field: &'static str, before: String, after: String| d.push(FieldDiff { field, before, after });

    if let (Some(img), Some(id)) = (&w.image, &w.image_id) {
        let cur = strip_sha(s(c, &["Image"]).as_str().unwrap_or(""));
        if &cur != id {
            let name = s(c, &["Config", "Image"]).as_str().unwrap_or("");
            push(
                "image",
                format!("{name} ({})", short(&cur)),
                format!("{img} ({})", short(id)),
            );
        }
    } else if let Some(img) = &w.image {
        // Not on the host yet: it will be pulled, so the container changes.
        let name = s(c, &["Config", "Image"]).as_str().unwrap_or("").to_string();
        push("image", name, format!("{img} (to be pulled)"));
    }
    if let Some(cmd) = &w.command {
        let cur = str_list(s(c, &["Config", "Cmd"]));
        if &cur != cmd {
            push("command", show_list(&cur), show_list(cmd));
        }
    }
    if !w.env.is_empty() {
        let cur = env_of(c);
        let bad: Vec<(String, String)> = w.env.iter().filter(|(k, v)| cur.get(k) != Some(v)).cloned().collect();
        if !bad.is_empty() {
            let before: Vec<(String, String)> = bad
                .iter()
                .map(|(k, _)| (k.clone(), cur.get(k).cloned().unwrap_or_else(|| "(unset)".into())))
                .collect();
            push("env", kv_line(&before), kv_line(&bad));
        }
    }
    if let Some(want) = &w.ports {
        let cur = current_ports(c);
        if !ports_match(&cur, want) {
            let show = |v: &[Port]| show_list(&v.iter().map(Port::to_arg).collect::<Vec<_>>());
            let mut want = want.clone();
            want.sort();
            push("published_ports", show(&cur), show(&want));
        }
    }
    if let Some(want) = &w.volumes {
        let cur = current_volumes(c);
        if !volumes_match(&cur, want) {
            let show = |v: &[Volume]| show_list(&v.iter().map(Volume::show).collect::<Vec<_>>());
            let mut want = want.clone();
            want.sort();
            push("volumes", show(&cur), show(&want));
        }
    }
    if let Some(want) = &w.networks {
        let cur = current_networks(c, want);
        let mut want = want.clone();
        want.sort();
        want.dedup();
        if cur != want {
            push("networks", show_list(&cur), show_list(&want));
        }
    }
    if let Some((name, retries)) = &w.restart {
        let cur_name = match s(c, &["HostConfig", "RestartPolicy", "Name"]).as_str().unwrap_or("") {
            "" => "no",
            n => n,
        };
        let cur_retries = s(c, &["HostConfig", "RestartPolicy", "MaximumRetryCount"])
            .as_i64()
            .unwrap_or(0);
        if cur_name != name || retries.is_some_and(|r| r != cur_retries) {
            let show = |n: &str, r: Option<i64>| match r {
                Some(r) if n == "on-failure" && r > 0 => format!("{n}:{r}"),
                _ => n.to_string(),
            };
            push(
                "restart_policy",
                show(cur_name, Some(cur_retries)),
                show(name, *retries),
            );
        }
    }
    if let Some((text, bytes)) = &w.memory {
        let cur = s(c, &["HostConfig", "Memory"]).as_u64().unwrap_or(0);
        if cur != *bytes {
            push("memory", cur.to_string(), format!("{bytes} ({text})"));
        }
    }
    if let Some((text, nano)) = &w.cpus {
        let cur = current_nano_cpus(c);
        if cur != *nano {
            push("cpus", format!("{}", cur as f64 / 1e9), text.clone());
        }
    }
    if let Some(p) = w.pids_limit {
        let cur = s(c, &["HostConfig", "PidsLimit"]).as_i64().unwrap_or(0);
        if cur != p {
            push("pids_limit", cur.to_string(), p.to_string());
        }
    }
    if let Some(h) = &w.health {
        let hc = s(c, &["Config", "Healthcheck"]);
        let cur_test = str_list(s(hc, &["Test"]));
        if cur_test != h.test {
            push("healthcheck.test", show_list(&cur_test), show_list(&h.test));
        }
        let ns = |k: &str| s(hc, &[k]).as_u64().unwrap_or(0);
        if let Some((b, a)) = ns_field(ns("Interval"), &h.interval) {
            push("healthcheck.interval", b, a);
        }
        if let Some((b, a)) = ns_field(ns("Timeout"), &h.timeout) {
            push("healthcheck.timeout", b, a);
        }
        if let Some((b, a)) = ns_field(ns("StartPeriod"), &h.start_period) {
            push("healthcheck.start_period", b, a);
        }
        if let Some(r) = h.retries {
            let cur = s(hc, &["Retries"]).as_i64().unwrap_or(0);
            if cur != r {
                push("healthcheck.retries", cur.to_string(), r.to_string());
            }
        }
    }
    if !w.labels.is_empty() {
        let cur = map_of(s(c, &["Config", "Labels"]));
        let bad: Vec<(String, String)> = w
            .labels
            .iter()
            .filter(|(k, v)| cur.get(k) != Some(v))
            .cloned()
            .collect();
        if !bad.is_empty() {
            let before: Vec<(String, String)> = bad
                .iter()
                .map(|(k, _)| (k.clone(), cur.get(k).cloned().unwrap_or_else(|| "(unset)".into())))
                .collect();
            push("labels", kv_line(&before), kv_line(&bad));
        }
    }
    let text_field = |path: &[&str]| s(c, path).as_str().unwrap_or("").to_string();
    for (field, path, want) in [
        ("user", ["Config", "User"], &w.user),
        ("workdir", ["Config", "WorkingDir"], &w.workdir),
        ("hostname", ["Config", "Hostname"], &w.hostname),
    ] {
        if let Some(want) = want {
            let cur = text_field(&path);
            if &cur != want {
                push(field, cur, want.clone());
            }
        }
    }
    if let Some(t) = w.stop_timeout {
        let cur = s(c, &["Config", "StopTimeout"]).as_i64().unwrap_or(10);
        if cur != t {
            push("stop_timeout", cur.to_string(), t.to_string());
        }
    }
    if !w.expose.is_empty() {
        // docker lists them in `Config.ExposedPorts`; podman 4 as port
        // bindings without a host port (`"9000/tcp": null`).
        let mut have: Vec<String> = [&["Config", "ExposedPorts"][..], &["HostConfig", "PortBindings"][..]]
            .iter()
            .filter_map(|path| s(c, path).as_object())
            .flat_map(|m| m.keys().cloned())
            .collect();
        have.sort();
        have.dedup();
        if w.expose.iter().any(|p| !have.contains(p)) {
            push("expose", show_list(&have), show_list(&w.expose));
        }
    }
    if let Some(want) = &w.etc_hosts {
        let mut cur = str_list(s(c, &["HostConfig", "ExtraHosts"]));
        cur.sort();
        let mut want: Vec<String> = want.iter().map(|(h, ip)| format!("{h}:{ip}")).collect();
        want.sort();
        if cur != want {
            push("etc_hosts", show_list(&cur), show_list(&want));
        }
    }
    if let Some(drv) = &w.log_driver {
        let cur = text_field(&["HostConfig", "LogConfig", "Type"]);
        if &cur != drv {
            push("log_driver", cur, drv.clone());
        }
    }
    if !w.log_options.is_empty() {
        let lc = s(c, &["HostConfig", "LogConfig"]);
        let conf = map_of(s(lc, &["Config"]));
        let cur_of = |k: &str| -> Option<String> {
            if let Some(v) = conf.get(k) {
                return Some(v.clone());
            }
            // podman keeps some options as fields of its own.
            let field = match k {
                "path" => "Path",
                "tag" => "Tag",
                _ => return None,
            };
            s(lc, &[field]).as_str().map(str::to_string)
        };
        let podman_only_fields = conf.is_empty() && lc.get("Path").is_some();
        let bad: Vec<(String, String)> = w
            .log_options
            .iter()
            .filter(|(k, v)| {
                let cur = cur_of(k);
                // An option podman does not show cannot be compared.
                !(cur.is_none() && podman_only_fields) && cur.as_ref() != Some(v)
            })
            .cloned()
            .collect();
        if !bad.is_empty() {
            let before: Vec<(String, String)> = bad
                .iter()
                .map(|(k, _)| (k.clone(), cur_of(k).unwrap_or_else(|| "(unset)".into())))
                .collect();
            push("log_options", kv_line(&before), kv_line(&bad));
        }
    }
    d
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

impl Wanted {
    /// `create --name NAME ... -- IMAGE [COMMAND...]`, and for docker the
    /// `network connect` commands for networks after the first.
    pub fn create_args(&self, flavor: Flavor, name: &str) -> (Vec<String>, Vec<Vec<String>>) {
        let mut a: Vec<String> = vec!["create".into(), "--name".into(), name.into()];
        let mut flag = |f: &str, v: String| {
            a.push(f.to_string());
            a.push(v);
        };
        for (k, v) in &self.env {
            flag("--env", format!("{k}={v}"));
        }
        for p in self.ports.iter().flatten() {
            flag("--publish", p.to_arg());
        }
        for v in self.volumes.iter().flatten() {
            flag("--volume", v.spec.clone());
        }
        let mut connect = Vec::new();
        for (i, n) in self.networks.iter().flatten().enumerate() {
            if i > 0 && flavor == Flavor::Docker {
                connect.push(vec!["network".into(), "connect".into(), n.clone(), name.to_string()]);
            } else {
                flag("--network", n.clone());
            }
        }
        if let Some((n, r)) = &self.restart {
            flag(
                "--restart",
                match r {
                    Some(r) if n == "on-failure" && *r > 0 => format!("{n}:{r}"),
                    _ => n.clone(),
                },
            );
        }
        if let Some((_, bytes)) = &self.memory {
            flag("--memory", bytes.to_string());
        }
        if let Some((text, _)) = &self.cpus {
            flag("--cpus", text.clone());
        }
        if let Some(p) = self.pids_limit {
            flag("--pids-limit", p.to_string());
        }
        if let Some(h) = &self.health {
            let test = match h.test.first().map(String::as_str) {
                Some("CMD-SHELL") => h.test[1..].join(" "),
                // podman takes the exec form as a JSON array.
                _ => serde_json::to_string(&h.test[1..]).unwrap_or_default(),
            };
            flag("--health-cmd", test);
            if let Some((t, _)) = &h.interval {
                flag("--health-interval", t.clone());
            }
            if let Some((t, _)) = &h.timeout {
                flag("--health-timeout", t.clone());
            }
            if let Some((t, _)) = &h.start_period {
                flag("--health-start-period", t.clone());
            }
            if let Some(r) = h.retries {
                flag("--health-retries", r.to_string());
            }
        }
        for (k, v) in &self.labels {
            flag("--label", format!("{k}={v}"));
        }
        if let Some(u) = &self.user {
            flag("--user", u.clone());
        }
        if let Some(wd) = &self.workdir {
            flag("--workdir", wd.clone());
        }
        if let Some(h) = &self.hostname {
            flag("--hostname", h.clone());
        }
        if let Some(t) = self.stop_timeout {
            flag("--stop-timeout", t.to_string());
        }
        for p in &self.expose {
            flag("--expose", p.clone());
        }
        for (h, ip) in self.etc_hosts.iter().flatten() {
            flag("--add-host", format!("{h}:{ip}"));
        }
        if let Some(d) = &self.log_driver {
            flag("--log-driver", d.clone());
        }
        for (k, v) in &self.log_options {
            flag("--log-opt", format!("{k}={v}"));
        }
        a.push("--".into());
        a.push(self.image.clone().unwrap_or_default());
        a.extend(self.command.iter().flatten().cloned());
        (a, connect)
    }
}

/// A health check from the task: a test string (podman's `healthcheck`) or
/// docker's mapping (`test`, `interval`, `timeout`, `retries`, `start_period`).
pub fn parse_health(module: &str, v: &Value, extra: &Health) -> Result<Health, ModuleError> {
    let bad = |why: String| ModuleError::Args(format!("{module}: healthcheck: {why}"));
    let mut h = extra.clone();
    let test = match v {
        Value::Object(m) => {
            for k in m.keys() {
                if !matches!(k.as_str(), "test" | "interval" | "timeout" | "retries" | "start_period") {
                    return Err(bad(format!(
                        "`{k}` is not supported by rigger (supported: test, interval, timeout, retries, start_period)"
                    )));
                }
            }
            for (k, slot) in [
                ("interval", &mut h.interval),
                ("timeout", &mut h.timeout),
                ("start_period", &mut h.start_period),
            ] {
                if let Some(t) = m.get(k).filter(|t| !t.is_null()) {
                    let text = t.as_str().map(str::to_string).unwrap_or_else(|| t.to_string());
                    *slot = Some(duration(module, k, &text)?);
                }
            }
            if let Some(r) = m.get("retries").filter(|r| !r.is_null()) {
                h.retries = Some(
                    r.as_i64()
                        .or_else(|| r.as_str().and_then(|s| s.trim().parse().ok()))
                        .ok_or_else(|| bad(format!("retries must be an integer, got {r}")))?,
                );
            }
            m.get("test").cloned().unwrap_or(Value::Null)
        }
        other => other.clone(),
    };
    h.test = match test {
        Value::String(s) => vec!["CMD-SHELL".into(), s],
        Value::Array(a) => {
            let words: Vec<String> = a
                .iter()
                .map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()))
                .collect();
            match words.first().map(String::as_str) {
                Some("CMD" | "CMD-SHELL") => words,
                Some("NONE") => {
                    return Err(bad(
                        "NONE (disabling the image's check) is not supported by rigger".into()
                    ))
                }
                Some(_) => std::iter::once("CMD".to_string()).chain(words).collect(),
                None => return Err(bad("the test is empty".into())),
            }
        }
        Value::Null => return Err(bad("a test command is required".into())),
        other => return Err(bad(format!("expected a string or a list, got {other}"))),
    };
    Ok(h)
}

/// A duration option: its text and nanoseconds.
pub fn duration(module: &str, option: &str, text: &str) -> Result<(String, u64), ModuleError> {
    parse_duration_ns(text).map(|ns| (text.to_string(), ns)).ok_or_else(|| {
        ModuleError::Args(format!(
            "{module}: {option}: invalid duration `{text}` (e.g. 30s, 1m30s, 500ms)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ports_parse_and_match() {
        let p = Port::parse("m", "127.0.0.1:8080:80").unwrap();
        assert_eq!(
            (p.host_ip.as_str(), p.host_port.as_str(), p.container_port.as_str()),
            ("127.0.0.1", "8080", "80")
        );
        assert_eq!(p.to_arg(), "127.0.0.1:8080:80");
        let u = Port::parse("m", "8081:9001/udp").unwrap();
        assert_eq!(u.to_arg(), "8081:9001/udp");
        let v6 = Port::parse("m", "[::1]:8080:80").unwrap();
        assert_eq!(v6.host_ip, "::1");
        assert_eq!(v6.to_arg(), "[::1]:8080:80");
        assert!(Port::parse("m", "8000-8010:80-90").is_err());
        assert!(Port::parse("m", "a:b").is_err());
        let c = json!({"HostConfig": {"PortBindings": {
            "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
            "9001/udp": [{"HostIp": "", "HostPort": "8081"}]}}});
        let cur = current_ports(&c);
        assert!(ports_match(&cur, &[p.clone(), u.clone()]));
        assert!(!ports_match(&cur, std::slice::from_ref(&p)));
        let any = Port::parse("m", "127.0.0.1::80").unwrap();
        assert!(ports_match(
            &current_ports(&json!({"HostConfig": {"PortBindings": {
            "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "40000"}]}}})),
            &[any]
        ));
    }

    #[test]
    fn volumes_ignore_the_images_anonymous_ones() {
        let c = json!({"Mounts": [
            {"Type": "bind", "Source": "/srv/data/", "Destination": "/data", "RW": false},
            {"Type": "volume", "Name": "a".repeat(64), "Destination": "/var/lib/x", "RW": true},
            {"Type": "volume", "Name": "cache", "Destination": "/cache", "RW": true}]});
        let cur = current_volumes(&c);
        let want = vec![
            Volume::parse("m", "/srv/data:/data:ro,z").unwrap(),
            Volume::parse("m", "cache:/cache").unwrap(),
        ];
        assert!(volumes_match(&cur, &want));
        let rw = vec![
            Volume::parse("m", "/srv/data:/data").unwrap(),
            Volume::parse("m", "cache:/cache").unwrap(),
        ];
        assert!(!volumes_match(&cur, &rw));
        assert!(Volume::parse("m", "data").is_err());
    }

    #[test]
    fn differences_name_only_given_fields() {
        let c = json!({
            "Image": "sha256:abc", "Config": {"Image": "img", "Cmd": ["sleep", "1"], "Env": ["A=1", "PATH=/bin"],
            "Labels": {"x": "y", "image": "label"}, "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 30000000000u64}},
            "HostConfig": {"Memory": 67108864, "NanoCpus": 0, "CpuQuota": 50000, "CpuPeriod": 100000,
            "RestartPolicy": {"Name": "", "MaximumRetryCount": 0}, "PidsLimit": 2048}});
        let mut w = Wanted {
            image: Some("img".into()),
            image_id: Some("abc".into()),
            command: Some(vec!["sleep".into(), "1".into()]),
            env: vec![("A".into(), "1".into())],
            labels: vec![("x".into(), "y".into())],
            memory: Some(("64m".into(), 64 << 20)),
            cpus: Some(("0.5".into(), 500_000_000)),
            restart: Some(("no".into(), None)),
            health: Some(Health {
                test: vec!["CMD-SHELL".into(), "true".into()],
                interval: Some(("30s".into(), 30_000_000_000)),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(differences(&c, &w), vec![]);
        w.env.push(("B".into(), "2".into()));
        w.restart = Some(("always".into(), None));
        w.image_id = Some("def".into());
        let fields: Vec<&str> = differences(&c, &w).iter().map(|d| d.field).collect();
        assert_eq!(fields, ["image", "env", "restart_policy"]);
    }

    #[test]
    fn health_from_docker_mapping_and_podman_string() {
        let h = parse_health(
            "m",
            &json!({"test": ["CMD", "true"], "interval": "10s", "retries": 2}),
            &Health::default(),
        )
        .unwrap();
        assert_eq!(h.test, ["CMD", "true"]);
        assert_eq!(h.interval, Some(("10s".into(), 10_000_000_000)));
        assert_eq!(h.retries, Some(2));
        let h = parse_health("m", &json!("curl -f localhost"), &Health::default()).unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "curl -f localhost"]);
        assert!(parse_health("m", &json!({"test": "x", "bogus": 1}), &Health::default()).is_err());
    }
}
