//! `watch.yml`: what to collect, the rules, routing and receivers.
//!
//! Every key is checked (unknown keys are errors with a "did you mean"), and
//! every error points at `file:line:col`, so a broken edit can be rejected
//! while the previous configuration stays active.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::delivery::smtp::Tls;
use crate::error::{did_you_mean, LocError};
use crate::yaml::{Loc, Node, NodeKind};

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone)]
pub struct WatchConfig {
    pub file: PathBuf,
    /// Collection interval of every host.
    pub interval: Duration,
    /// A host without a sample for this long is `host_down`.
    pub host_down_after: Duration,
    /// Inventory pattern of the watched hosts.
    pub hosts: String,
    /// SQLite state file (samples, alerts, silences, outbox).
    pub state: PathBuf,
    /// Upper bound of the samples kept in memory per series.
    pub ring_size: usize,
    /// How long the samples of a series that a rule watches stay in memory
    /// (for charts and restarts; at least the longest window of its rules).
    /// Series no rule watches keep only their newest samples.
    pub history: Duration,
    /// File systems, mount points, interfaces and block devices not collected.
    pub exclude: Exclude,
    /// Samples are averaged into buckets of this size before they are persisted.
    pub persist_every: Duration,
    pub services: Vec<String>,
    /// `containers: true`: sample the host's podman (or docker) containers
    /// (`container_*` series). Off by default: it runs the engine's `ps`,
    /// `inspect` and `stats` on every host each interval.
    pub containers: bool,
    pub custom: Vec<CustomMetric>,
    pub rules: Vec<Rule>,
    pub route: Route,
    pub receivers: Vec<Receiver>,
    pub inhibit: Vec<InhibitRule>,
    /// Undelivered notifications older than this are dropped (and reported).
    pub outbox_max_age: Duration,
    /// Upper bound of the exponential retry backoff.
    pub retry_max_backoff: Duration,
    /// vCenter/ESXi endpoints whose datastores, hosts and VMs are sampled
    /// through the vSphere API (`vsphere_*` metrics).
    pub vsphere: Vec<VsphereTarget>,
    /// Several instances sharing the hosts (`group:`, PostgreSQL only).
    pub group: Option<GroupConfig>,
}

/// `group: {name: NAME, lease: 10s, instance: ID}`: the instances with the
/// same state database and group name share the inventory's hosts (see
/// docs/watch.md "Several instances").
#[derive(Debug, Clone, PartialEq)]
pub struct GroupConfig {
    pub name: String,
    /// A dead instance's hosts are taken over within this period.
    pub lease: Duration,
    /// This instance's id (default: host name, process id and start time).
    pub instance: Option<String>,
    /// Where `group:` is written, for errors found later (a SQLite state).
    pub loc: crate::yaml::Loc,
}

/// A vSphere endpoint to sample; its series carry `host` = its `name`.
#[derive(Clone)]
pub struct VsphereTarget {
    pub name: String,
    /// Where `name` is written, for errors about it.
    pub name_loc: Loc,
    pub hostname: String,
    pub port: u16,
    pub username: String,
    pub password: String,
    pub trust: crate::modules::vmware::soap::Trust,
    /// Only this datacenter (all when None).
    pub datacenter: Option<String>,
}

impl std::fmt::Debug for VsphereTarget {
    // The password stays out of every debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VsphereTarget")
            .field("name", &self.name)
            .field("hostname", &self.hostname)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("trust", &self.trust)
            .field("datacenter", &self.datacenter)
            .finish_non_exhaustive()
    }
}

const VSPHERE_KEYS: &[&str] = &[
    "name",
    "hostname",
    "port",
    "username",
    "password",
    "password_env",
    "validate_certs",
    "ca_file",
    "thumbprint",
    "datacenter",
];

/// One entry of `vsphere:`; credentials are checked here, located.
fn parse_vsphere(n: &Node, base: &Path) -> Result<VsphereTarget, LocError> {
    let r = MapReader::new(n, "a vsphere endpoint", VSPHERE_KEYS)?;
    let name_node = r.req("name")?;
    let name = scalar(name_node)?;
    let name_loc = name_node.loc.clone();
    let hostname = scalar(r.req("hostname")?)?;
    let port = match r.get("port") {
        Some(p) => {
            let v = number(p)?;
            if !(1.0..=65535.0).contains(&v) || v.fract() != 0.0 {
                return Err(LocError::new(p.loc.clone(), format!("port {v} is not a port number")));
            }
            v as u16
        }
        None => 443,
    };
    let username = scalar(r.req("username")?)?;
    let password = match (r.get("password"), r.get("password_env")) {
        (Some(p), None) => scalar(p)?,
        (None, Some(e)) => {
            let var = scalar(e)?;
            std::env::var(&var).map_err(|_| {
                LocError::new(
                    e.loc.clone(),
                    format!("password_env: the environment variable `{var}` is not set"),
                )
            })?
        }
        (Some(_), Some(e)) => {
            return Err(LocError::new(e.loc.clone(), "give password or password_env, not both"));
        }
        (None, None) => {
            return Err(
                LocError::new(n.loc.clone(), "a vsphere endpoint needs `password` or `password_env`")
                    .with_hint("keep it in the environment (password_env) or inline-vault it (password: !vault |)"),
            );
        }
    };
    let validate = match r.get("validate_certs") {
        None => true,
        Some(v) => match &v.kind {
            NodeKind::Bool(b) => *b,
            _ => return Err(LocError::new(v.loc.clone(), "validate_certs must be true or false")),
        },
    };
    let ca_file = r.str("ca_file")?.map(|f| base.join(f).display().to_string());
    let trust = crate::modules::vmware::conn::trust(validate, ca_file, r.str("thumbprint")?)
        .map_err(|e| LocError::new(n.loc.clone(), e))?;
    Ok(VsphereTarget {
        name,
        name_loc,
        hostname: hostname.trim_start_matches('[').trim_end_matches(']').to_string(),
        port,
        username,
        password,
        trust,
        datacenter: r.str("datacenter")?,
    })
}

/// A `vsphere:` endpoint shares the namespace of the watched hosts (its
/// series, alerts, leases and `/health` entry are under its name): one named
/// like an inventory host would take that host's place without a word. A
/// located error instead.
pub fn check_vsphere_names(cfg: &WatchConfig, inventory: &crate::inventory::Inventory) -> Result<(), LocError> {
    match cfg.vsphere.iter().find(|t| inventory.hosts.contains_key(&t.name)) {
        Some(t) => Err(LocError::new(
            t.name_loc.clone(),
            format!("vsphere endpoint `{}` has the name of an inventory host", t.name),
        )
        .with_hint("name the endpoint so that no inventory host has its name, e.g. `vcenter-1`")),
        None => Ok(()),
    }
}

/// What the collectors skip. The defaults leave out pseudo and virtual file
/// systems, the system's own tmpfs mounts, loopback and virtual interfaces
/// and disk partitions, as Prometheus' node_exporter does; an empty list or
/// pattern collects everything.
#[derive(Debug, Clone)]
pub struct Exclude {
    pub fs_types: Vec<String>,
    pub mounts: Option<regex::Regex>,
    pub interfaces: Option<regex::Regex>,
    pub devices: Option<regex::Regex>,
}

pub const DEFAULT_EXCLUDED_FS_TYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "procfs",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tracefs",
];
pub const DEFAULT_EXCLUDED_MOUNTS: &str = "/(dev|proc|sys|run)(/.*)?|/var/lib/(docker|containers|kubelet)/.+|/snap/.+";
pub const DEFAULT_EXCLUDED_INTERFACES: &str =
    r"lo|veth.*|vnet\d+|tap.*|ifb\d+|docker\d+|br-[0-9a-f]+|cali.*|flannel.*|cni.*|virbr\d+-nic";
pub const DEFAULT_EXCLUDED_DEVICES: &str = r"(z?ram|loop|fd|(h|s|v|xv)d[a-z]+|nvme\d+n\d+p|mmcblk\d+p)\d+|sr\d+";

impl Default for Exclude {
    fn default() -> Exclude {
        let re = |p: &str| regex::Regex::new(&format!("^(?:{p})$")).ok();
        Exclude {
            fs_types: DEFAULT_EXCLUDED_FS_TYPES.iter().map(|s| s.to_string()).collect(),
            mounts: re(DEFAULT_EXCLUDED_MOUNTS),
            interfaces: re(DEFAULT_EXCLUDED_INTERFACES),
            devices: re(DEFAULT_EXCLUDED_DEVICES),
        }
    }
}

impl Exclude {
    pub fn file_system(&self, fs_type: Option<&str>, mount: &str) -> bool {
        fs_type.is_some_and(|t| self.fs_types.iter().any(|x| x == t))
            || self.mounts.as_ref().is_some_and(|r| r.is_match(mount))
    }

    pub fn interface(&self, name: &str) -> bool {
        self.interfaces.as_ref().is_some_and(|r| r.is_match(name))
    }

    pub fn device(&self, name: &str) -> bool {
        self.devices.as_ref().is_some_and(|r| r.is_match(name))
    }

    fn key(&self) -> String {
        let p = |r: &Option<regex::Regex>| r.as_ref().map(|r| r.as_str().to_string()).unwrap_or_default();
        format!(
            "{:?}|{}|{}|{}",
            self.fs_types,
            p(&self.mounts),
            p(&self.interfaces),
            p(&self.devices)
        )
    }
}

fn parse_exclude(n: &Node) -> Result<Exclude, LocError> {
    let r = MapReader::new(n, "exclude", &["fs_types", "mounts", "interfaces", "devices"])?;
    let mut out = Exclude::default();
    if let Some(t) = r.get("fs_types") {
        out.fs_types = match &t.kind {
            NodeKind::Seq(items) => items.iter().map(scalar).collect::<Result<_, _>>()?,
            _ => {
                return Err(LocError::new(
                    t.loc.clone(),
                    "exclude.fs_types must be a list of file system types (`[]` collects all)",
                ))
            }
        };
    }
    let pattern = |key: &str, slot: &mut Option<regex::Regex>| -> Result<(), LocError> {
        if let Some(p) = r.node.get(key) {
            let s = if p.is_null() { String::new() } else { scalar(p)? };
            *slot = if s.is_empty() {
                None
            } else {
                Some(
                    regex::Regex::new(&format!("^(?:{s})$"))
                        .map_err(|e| LocError::new(p.loc.clone(), format!("exclude.{key}: {e}")))?,
                )
            };
        }
        Ok(())
    };
    pattern("mounts", &mut out.mounts)?;
    pattern("interfaces", &mut out.interfaces)?;
    pattern("devices", &mut out.devices)?;
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomMetric {
    pub name: String,
    pub command: String,
    /// Other metric names the command prints (Prometheus text), so rules
    /// on them can be checked.
    pub metrics: Vec<String>,
}

/// The built-in metrics and the labels of their series besides `host`
/// (see docs/watch.md; `watch::collect` produces them).
pub const BUILTIN_METRICS: &[(&str, &[&str])] = &[
    ("cpu_user_pct", &[]),
    ("cpu_system_pct", &[]),
    ("cpu_iowait_pct", &[]),
    ("cpu_steal_pct", &[]),
    ("cpu_idle_pct", &[]),
    ("load1", &[]),
    ("load5", &[]),
    ("load15", &[]),
    ("mem_total_bytes", &[]),
    ("mem_available_bytes", &[]),
    ("mem_used_pct", &[]),
    ("swap_total_bytes", &[]),
    ("swap_used_bytes", &[]),
    ("swap_used_pct", &[]),
    ("disk_size_bytes", &["mount", "device"]),
    ("disk_free_bytes", &["mount", "device"]),
    ("disk_used_pct", &["mount", "device"]),
    ("disk_inodes_used_pct", &["mount", "device"]),
    ("disk_read_bytes_per_s", &["device"]),
    ("disk_write_bytes_per_s", &["device"]),
    ("net_rx_bytes_per_s", &["interface"]),
    ("net_tx_bytes_per_s", &["interface"]),
    ("net_rx_errors_per_s", &["interface"]),
    ("net_tx_errors_per_s", &["interface"]),
    ("net_rx_errors_total", &["interface"]),
    ("net_tx_errors_total", &["interface"]),
    ("processes", &[]),
    ("service_up", &["service"]),
    ("up", &[]),
    ("libvirt_domain_state", &["domain"]),
    ("libvirt_domain_cpu_seconds_total", &["domain"]),
    ("libvirt_domain_memory_bytes", &["domain"]),
    ("libvirt_domain_rss_bytes", &["domain"]),
    ("libvirt_domain_block_rd_bytes_total", &["domain", "index"]),
    ("libvirt_domain_block_wr_bytes_total", &["domain", "index"]),
    ("libvirt_domain_net_rx_bytes_total", &["domain", "index"]),
    ("libvirt_domain_net_tx_bytes_total", &["domain", "index"]),
    ("libvirt_pool_capacity_bytes", &["pool"]),
    ("libvirt_pool_allocation_bytes", &["pool"]),
    ("libvirt_pool_used_pct", &["pool"]),
    ("zfs_pool_healthy", &["pool"]),
    ("zfs_pool_size_bytes", &["pool"]),
    ("zfs_pool_used_pct", &["pool"]),
    ("vsphere_datastore_capacity_bytes", &["datastore"]),
    ("vsphere_datastore_free_bytes", &["datastore"]),
    ("vsphere_datastore_used_pct", &["datastore"]),
    ("vsphere_host_cpu_usage_mhz", &["esxi_host"]),
    ("vsphere_host_cpu_used_pct", &["esxi_host"]),
    ("vsphere_host_memory_usage_bytes", &["esxi_host"]),
    ("vsphere_host_memory_used_pct", &["esxi_host"]),
    ("vsphere_vm_cpu_usage_mhz", &["vm"]),
    ("vsphere_vm_memory_usage_bytes", &["vm"]),
    ("vsphere_vm_powered_on", &["vm"]),
    ("container_up", &["container"]),
    ("container_healthy", &["container"]),
    ("container_restarts_total", &["container"]),
    ("container_cpu_pct", &["container"]),
    ("container_memory_bytes", &["container"]),
];

/// The labels a built-in metric's series carry (None: not built in).
pub fn builtin_labels(metric: &str) -> Option<Vec<&'static str>> {
    BUILTIN_METRICS
        .iter()
        .find(|(n, _)| *n == metric)
        .map(|(_, l)| std::iter::once("host").chain(l.iter().copied()).collect())
}

/// Every rule watches a metric that exists (built in, or printed by a
/// configured custom command), and its matchers name labels that the
/// metric's series have.
fn check_rule_metrics(rules: &[Rule], custom: &[CustomMetric], containers: bool) -> Result<(), LocError> {
    let custom_names: Vec<&str> = custom
        .iter()
        .flat_map(|c| std::iter::once(c.name.as_str()).chain(c.metrics.iter().map(String::as_str)))
        .collect();
    for rule in rules {
        if rule.metric.starts_with("container_") && !containers && builtin_labels(&rule.metric).is_some() {
            return Err(LocError::new(
                rule.metric_loc.clone(),
                format!(
                    "rule `{}`: `{}` is sampled only with `containers: true` in this configuration",
                    rule.name, rule.metric
                ),
            )
            .with_hint("containers: true runs podman (or docker) ps, inspect and stats on every host each interval"));
        }
        let labels = match builtin_labels(&rule.metric) {
            Some(l) => l,
            None if custom_names.contains(&rule.metric.as_str()) => continue,
            None => {
                let known = BUILTIN_METRICS
                    .iter()
                    .map(|(n, _)| *n)
                    .chain(custom_names.iter().copied());
                let mut e = LocError::new(
                    rule.metric_loc.clone(),
                    format!(
                        "rule `{}`: unknown metric `{}`: neither built in nor printed by a command in custom_metrics",
                        rule.name, rule.metric
                    ),
                );
                e = match did_you_mean(&rule.metric, known) {
                    Some(s) => e.with_hint(format!("did you mean `{s}`?")),
                    None => e.with_hint(
                        "the built-in metrics are listed in docs/watch.md; a custom command's other metrics \
                         go in its `metrics:` list",
                    ),
                };
                return Err(e);
            }
        };
        for (m, loc) in rule.matchers.iter().zip(&rule.matcher_locs) {
            if labels.contains(&m.name.as_str()) {
                continue;
            }
            let mut e = LocError::new(
                loc.clone(),
                format!(
                    "rule `{}`: `{}` has no label `{}` (its labels: {})",
                    rule.name,
                    rule.metric,
                    m.name,
                    labels.join(", ")
                ),
            );
            // `mountpoint` (node_exporter's name) for `mount`: a prefix is as
            // good a guess as a small edit distance.
            let guess = did_you_mean(&m.name, labels.iter().copied()).or_else(|| {
                labels
                    .iter()
                    .copied()
                    .find(|l| m.name.starts_with(l) || l.starts_with(m.name.as_str()))
            });
            if let Some(s) = guess {
                e = e.with_hint(format!("did you mean `{s}`?"));
            }
            return Err(e);
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub loc: Loc,
    pub metric: String,
    /// Where `metric:` is written.
    pub metric_loc: Loc,
    pub matchers: Vec<Matcher>,
    /// Where each matcher is written (same order as `matchers`).
    pub matcher_locs: Vec<Loc>,
    pub kind: RuleKind,
    pub for_: Duration,
    pub keep_firing_for: Duration,
    pub severity: String,
    pub labels: Labels,
    pub summary: String,
    pub description: String,
    /// The playbook run when the rule fires (see `watch::action`).
    pub action: Option<ActionConfig>,
}

/// A rule's `action:`: a playbook run on the alert's host, with its guards.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionConfig {
    /// The playbook (relative to the configuration file).
    pub playbook: PathBuf,
    /// Where `action:` is written.
    pub loc: Loc,
    /// Also run when the alert resolves (`watch_alert.status` says which).
    pub on_resolve: bool,
    /// No second run for the same rule, host and trigger within this.
    pub cooldown: Duration,
    /// At most this many runs of the rule per `window`; then the circuit
    /// breaker stops its actions (and says so) until the window has passed.
    pub max_runs: u32,
    pub window: Duration,
    /// An alert that fires again within this after a run of its action
    /// changed the host is taken as the action's own doing: no more runs
    /// of the rule on that host until it has passed.
    pub loop_window: Duration,
    /// Run in check mode with diffs; the notification shows the diff.
    pub dry_run: bool,
    /// Wait for `rigger watch action approve ID`, at most `approval_expires`.
    pub approval: bool,
    pub approval_expires: Duration,
    /// Limit of one run (`rigger run --run-timeout`).
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    Threshold(Cmp),
    /// Per-second rate of change over a window.
    Rate {
        window: Duration,
        cmp: Cmp,
    },
    /// Absolute change over a window.
    Delta {
        window: Duration,
        cmp: Cmp,
    },
    /// No sample of a known series for this long.
    Absent(Duration),
    /// |x - EWMA| / max(stddev, min_stddev) above `z`, after `warmup` samples.
    Anomaly {
        alpha: f64,
        z: f64,
        warmup: usize,
        min_stddev: f64,
    },
    /// Linear regression over `window`, extrapolated `horizon` ahead.
    Predict {
        window: Duration,
        horizon: Duration,
        cmp: Cmp,
    },
}

impl RuleKind {
    /// How far back the rule looks at a series' samples.
    pub fn window(&self) -> Duration {
        match self {
            RuleKind::Rate { window, .. } | RuleKind::Delta { window, .. } | RuleKind::Predict { window, .. } => {
                *window
            }
            RuleKind::Threshold(_) | RuleKind::Absent(_) | RuleKind::Anomaly { .. } => Duration::ZERO,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cmp {
    pub op: Op,
    pub value: f64,
}

impl Cmp {
    pub fn test(&self, x: f64) -> bool {
        match self.op {
            Op::Gt => x > self.value,
            Op::Ge => x >= self.value,
            Op::Lt => x < self.value,
            Op::Le => x <= self.value,
            Op::Eq => x == self.value,
            Op::Ne => x != self.value,
        }
    }

    /// `> 90`, `<=5`, `== 0`.
    pub fn parse(s: &str) -> Result<Cmp, ValueError> {
        let s = s.trim();
        let (op, rest) = [
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            (">", Op::Gt),
            ("<", Op::Lt),
        ]
        .iter()
        .find_map(|(p, op)| s.strip_prefix(p).map(|r| (*op, r)))
        .ok_or_else(|| ValueError::NotComparison(s.to_string()))?;
        let value = rest.trim().parse::<f64>().map_err(|_| ValueError::NotNumber {
            number: rest.trim().to_string(),
            input: s.to_string(),
        })?;
        Ok(Cmp { op, value })
    }
}

#[derive(Debug, Clone)]
pub enum MatchOp {
    Eq,
    Ne,
    Re(regex::Regex),
    NotRe(regex::Regex),
}

/// A label matcher: `name=value`, `name!=value`, `name=~regex`, `name!~regex`.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    pub op: MatchOp,
}

impl Matcher {
    pub fn eq(name: &str, value: &str) -> Matcher {
        Matcher {
            name: name.into(),
            value: value.into(),
            op: MatchOp::Eq,
        }
    }

    pub fn parse(s: &str) -> Result<Matcher, ValueError> {
        let pos = s
            .find(['=', '!'])
            .ok_or_else(|| ValueError::MatcherShape(s.to_string()))?;
        let name = s[..pos].trim().to_string();
        let rest = &s[pos..];
        let (kind, value) = if let Some(v) = rest.strip_prefix("=~") {
            ("=~", v)
        } else if let Some(v) = rest.strip_prefix("!~") {
            ("!~", v)
        } else if let Some(v) = rest.strip_prefix("!=") {
            ("!=", v)
        } else if let Some(v) = rest.strip_prefix('=') {
            ("=", v)
        } else {
            return Err(ValueError::MatcherOperator {
                input: s.to_string(),
                name,
            });
        };
        if name.is_empty() {
            return Err(ValueError::MatcherName(s.to_string()));
        }
        let value = value.trim().trim_matches('"').to_string();
        let re = |v: &str| {
            regex::Regex::new(&format!("^(?:{v})$")).map_err(|source| ValueError::MatcherRegex {
                input: s.to_string(),
                source,
            })
        };
        let op = match kind {
            "=" => MatchOp::Eq,
            "!=" => MatchOp::Ne,
            "=~" => MatchOp::Re(re(&value)?),
            _ => MatchOp::NotRe(re(&value)?),
        };
        Ok(Matcher { name, value, op })
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name).map(String::as_str))
    }

    /// Whether a label with this value (None: absent) matches.
    pub fn matches_value(&self, v: Option<&str>) -> bool {
        let v = v.unwrap_or("");
        match &self.op {
            MatchOp::Eq => v == self.value,
            MatchOp::Ne => v != self.value,
            MatchOp::Re(r) => r.is_match(v),
            MatchOp::NotRe(r) => !r.is_match(v),
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re(_) => "=~",
            MatchOp::NotRe(_) => "!~",
        };
        write!(f, "{}{}{}", self.name, op, self.value)
    }
}

pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

#[derive(Debug, Clone)]
pub struct Route {
    pub receiver: String,
    pub matchers: Vec<Matcher>,
    pub group_by: Vec<String>,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    /// Keep matching later sibling routes after this one matched.
    pub continue_: bool,
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub to: Vec<String>,
    pub from: String,
    pub smarthost: String,
    pub port: u16,
    pub tls: Tls,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Send the password without TLS (refused otherwise).
    pub insecure_auth: bool,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    pub secret: Option<String>,
    /// PEM CA certificates an https receiver's certificate must chain to
    /// (instead of the platform's trusted roots).
    pub ca_file: Option<std::path::PathBuf>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Receiver {
    pub name: String,
    pub email: Option<EmailConfig>,
    pub webhook: Option<WebhookConfig>,
}

/// Alerts matching `target` are suppressed while an alert matching `source`
/// fires with the same values of the `equal` labels.
#[derive(Debug, Clone)]
pub struct InhibitRule {
    pub source: Vec<Matcher>,
    pub target: Vec<Matcher>,
    pub equal: Vec<String>,
}

/// Why a comparison, label matcher or duration in the watch configuration
/// (or on the command line) is invalid. `input` is the text as written.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    #[error("`{0}` is not a comparison; write e.g. `> 90` or `<= 5`")]
    NotComparison(String),
    #[error("`{number}` in `{input}` is not a number")]
    NotNumber { number: String, input: String },
    #[error("matcher `{0}` needs name=value, name!=value, name=~regex or name!~regex")]
    MatcherShape(String),
    #[error("matcher `{input}`: expected =, !=, =~ or !~ after `{name}`")]
    MatcherOperator { input: String, name: String },
    #[error("matcher `{0}` has no label name")]
    MatcherName(String),
    #[error("matcher `{input}`: {source}")]
    MatcherRegex { input: String, source: regex::Error },
    #[error("empty duration")]
    EmptyDuration,
    #[error("`{0}` needs a unit (ms, s, m, h, d)")]
    NoUnit(String),
    #[error("`{0}` is not a duration (e.g. 30s, 5m, 4h)")]
    NotDuration(String),
    #[error("unknown unit `{unit}` in `{input}` (use ms, s, m, h, d, w)")]
    UnknownUnit { unit: String, input: String },
}

/// Parse a duration: `500ms`, `10s`, `5m`, `4h`, `2d`, `1h30m`, or a number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    let s = s.trim();
    if let Ok(n) = s.parse::<f64>() {
        if n >= 0.0 && n.is_finite() {
            return Ok(Duration::from_secs_f64(n));
        }
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err(ValueError::EmptyDuration);
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| ValueError::NoUnit(s.to_string()))?;
        let n: f64 = rest[..num_end]
            .parse()
            .map_err(|_| ValueError::NotDuration(s.to_string()))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "w" => 604800.0,
            u => {
                return Err(ValueError::UnknownUnit {
                    unit: u.to_string(),
                    input: s.to_string(),
                })
            }
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Ok(Duration::from_secs_f64(total))
}

/// Reads a mapping, remembering which keys were used so the rest can be reported.
struct MapReader<'a> {
    node: &'a Node,
    what: &'static str,
    allowed: &'static [&'static str],
}

impl<'a> MapReader<'a> {
    fn new(node: &'a Node, what: &'static str, allowed: &'static [&'static str]) -> Result<Self, LocError> {
        if node.as_map().is_none() {
            return Err(LocError::new(
                node.loc.clone(),
                format!("{what} must be a mapping, not a {}", node.type_name()),
            ));
        }
        for (key, k, _) in node.map_entries() {
            if !allowed.contains(&key.as_str()) {
                let mut e = LocError::new(k.loc.clone(), format!("unknown key `{key}` in {what}"));
                if let Some(s) = did_you_mean(&key, allowed.iter().copied()) {
                    e = e.with_hint(format!("did you mean `{s}`?"));
                } else {
                    e = e.with_hint(format!("allowed keys: {}", allowed.join(", ")));
                }
                return Err(e);
            }
        }
        Ok(MapReader { node, what, allowed })
    }

    fn get(&self, key: &str) -> Option<&'a Node> {
        debug_assert!(self.allowed.contains(&key));
        self.node.get(key).filter(|n| !n.is_null())
    }

    fn req(&self, key: &str) -> Result<&'a Node, LocError> {
        self.get(key)
            .ok_or_else(|| LocError::new(self.node.loc.clone(), format!("{} needs `{key}`", self.what)))
    }

    fn str(&self, key: &str) -> Result<Option<String>, LocError> {
        self.get(key).map(scalar).transpose()
    }

    fn duration(&self, key: &str, default: Duration) -> Result<Duration, LocError> {
        match self.get(key) {
            Some(n) => duration(n),
            None => Ok(default),
        }
    }

    fn f64(&self, key: &str, default: f64) -> Result<f64, LocError> {
        match self.get(key) {
            Some(n) => number(n),
            None => Ok(default),
        }
    }
}

/// A scalar as a string. An inline `!vault` value (or `!unsafe` text) is
/// the string it holds: a vault value is tainted where it is decrypted
/// (`yaml::inline_vault`), so whatever the configuration builds from it
/// (labels, annotations, a webhook URL) is masked in every output, and
/// one the vault passwords cannot decrypt is an error here.
fn scalar(n: &Node) -> Result<String, LocError> {
    if let [(k, v)] = n.as_map().unwrap_or(&[]) {
        if let (Some(crate::yaml::UNSAFE_KEY), Some(text)) = (k.as_str(), v.as_str()) {
            return Ok(text.to_string());
        }
    }
    if let Some(why) = n.get(crate::yaml::VAULT_ERROR_KEY).and_then(Node::as_str) {
        return Err(
            LocError::new(n.loc.clone(), format!("cannot decrypt this `!vault` value: {why}"))
                .with_hint("give the vault password with --vault-password-file, --vault-id or --ask-vault-pass"),
        );
    }
    n.scalar_string()
        .ok_or_else(|| LocError::new(n.loc.clone(), format!("expected a string, not a {}", n.type_name())))
}

fn number(n: &Node) -> Result<f64, LocError> {
    match &n.kind {
        NodeKind::Int(i) => Ok(*i as f64),
        NodeKind::Float(f) => Ok(*f),
        NodeKind::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| LocError::new(n.loc.clone(), format!("`{s}` is not a number"))),
        _ => Err(LocError::new(
            n.loc.clone(),
            format!("expected a number, not a {}", n.type_name()),
        )),
    }
}

fn duration(n: &Node) -> Result<Duration, LocError> {
    let s = scalar(n)?;
    parse_duration(&s).map_err(|e| LocError::new(n.loc.clone(), e.to_string()))
}

fn cmp(n: &Node) -> Result<Cmp, LocError> {
    Cmp::parse(&scalar(n)?).map_err(|e| LocError::new(n.loc.clone(), e.to_string()))
}

fn str_list(n: &Node) -> Result<Vec<String>, LocError> {
    match &n.kind {
        NodeKind::Seq(items) => items.iter().map(scalar).collect(),
        _ => Ok(vec![scalar(n)?]),
    }
}

fn labels(n: &Node) -> Result<Labels, LocError> {
    if n.as_map().is_none() {
        return Err(LocError::new(
            n.loc.clone(),
            format!("expected a mapping of label names to values, not a {}", n.type_name()),
        ));
    }
    let mut out = Labels::new();
    for (k, _, v) in n.map_entries() {
        out.insert(k, scalar(v)?);
    }
    Ok(out)
}

/// As [`matchers`], each with where it is written.
fn located_matchers(eq: Option<&Node>, list: Option<&Node>) -> Result<Vec<(Matcher, Loc)>, LocError> {
    let mut out = Vec::new();
    if let Some(n) = eq {
        labels(n)?;
        for (k, kn, v) in n.map_entries() {
            out.push((Matcher::eq(&k, &scalar(v)?), kn.loc.clone()));
        }
    }
    if let Some(n) = list {
        let items = n
            .as_seq()
            .ok_or_else(|| LocError::new(n.loc.clone(), "matchers must be a list of strings like `mount=~/srv.*`"))?;
        for item in items {
            let s = scalar(item)?;
            let m = Matcher::parse(&s).map_err(|e| LocError::new(item.loc.clone(), e.to_string()))?;
            out.push((m, item.loc.clone()));
        }
    }
    Ok(out)
}

/// `match: {name: value}` (equality) or `matchers: ["name=~re", ...]`.
fn matchers(eq: Option<&Node>, list: Option<&Node>) -> Result<Vec<Matcher>, LocError> {
    let mut out = Vec::new();
    if let Some(n) = eq {
        for (k, v) in labels(n)? {
            out.push(Matcher::eq(&k, &v));
        }
    }
    if let Some(n) = list {
        let items = n
            .as_seq()
            .ok_or_else(|| LocError::new(n.loc.clone(), "matchers must be a list of strings like `mount=~/srv.*`"))?;
        for item in items {
            let s = scalar(item)?;
            out.push(Matcher::parse(&s).map_err(|e| LocError::new(item.loc.clone(), e.to_string()))?);
        }
    }
    Ok(out)
}

fn parse_group(n: &Node) -> Result<GroupConfig, LocError> {
    let m = MapReader::new(n, "the group", &["name", "lease", "instance"])?;
    let name = m.str("name")?.unwrap_or_else(|| "default".into());
    let lease = m.duration("lease", Duration::from_secs(10))?;
    if lease < Duration::from_secs(1) {
        let loc = m.get("lease").map(|x| x.loc.clone()).unwrap_or(n.loc.clone());
        return Err(LocError::new(loc, "lease must be at least 1s"));
    }
    for (key, v) in [("name", Some(&name)), ("instance", m.str("instance")?.as_ref())] {
        if let Some(v) = v {
            if v.is_empty() || v.len() > 200 || v.chars().any(|c| c.is_control()) {
                let loc = m.get(key).map(|x| x.loc.clone()).unwrap_or(n.loc.clone());
                return Err(LocError::new(
                    loc,
                    format!("group {key} must be 1 to 200 characters without control characters"),
                ));
            }
        }
    }
    Ok(GroupConfig {
        name,
        lease,
        instance: m.str("instance")?,
        loc: n.loc.clone(),
    })
}

fn check_template(n: &Node) -> Result<String, LocError> {
    let s = scalar(n)?;
    let env = minijinja::Environment::new();
    if let Err(e) = env.template_from_str(&s) {
        return Err(LocError::new(n.loc.clone(), format!("invalid template: {e}")));
    }
    Ok(s)
}

const TOP_KEYS: &[&str] = &[
    "interval",
    "host_down_after",
    "hosts",
    "state",
    "ring_size",
    "history",
    "exclude",
    "persist_every",
    "services",
    "containers",
    "custom_metrics",
    "rules",
    "route",
    "receivers",
    "inhibit_rules",
    "outbox_max_age",
    "retry_max_backoff",
    "vsphere",
    "group",
];

impl WatchConfig {
    pub fn load(path: &Path) -> Result<WatchConfig, LocError> {
        let root = crate::yaml::load_file(path)?;
        Self::from_node(&root, path)
    }

    pub fn from_node(root: &Node, path: &Path) -> Result<WatchConfig, LocError> {
        let r = MapReader::new(root, "the watch configuration", TOP_KEYS)?;
        let interval = r.duration("interval", Duration::from_secs(10))?;
        if interval < Duration::from_millis(100) {
            let loc = r.get("interval").map(|n| n.loc.clone()).unwrap_or(root.loc.clone());
            return Err(LocError::new(loc, "interval must be at least 100ms"));
        }
        let host_down_after = r.duration("host_down_after", interval * 3)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let state = match r.str("state")? {
            // A shared PostgreSQL database (docs/state.md), as given.
            Some(s) if crate::state::is_postgres_url(&s) => PathBuf::from(s),
            Some(s) => base.join(s),
            None => base.join("watch.db"),
        };
        let ring_size = r.f64("ring_size", 720.0)?.max(8.0) as usize;
        let persist_every = r.duration("persist_every", Duration::from_secs(60))?;
        let history = r.duration("history", Duration::from_secs(3600))?;
        let exclude = match r.get("exclude") {
            Some(n) => parse_exclude(n)?,
            None => Exclude::default(),
        };
        let services = match r.get("services") {
            Some(n) => str_list(n)?,
            None => Vec::new(),
        };
        for (i, s) in services.iter().enumerate() {
            if !s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c)) {
                let loc = r
                    .get("services")
                    .and_then(|n| n.as_seq())
                    .and_then(|s| s.get(i))
                    .map(|n| n.loc.clone())
                    .unwrap_or(root.loc.clone());
                return Err(LocError::new(loc, format!("`{s}` is not a service name")));
            }
        }
        let mut custom = Vec::new();
        if let Some(n) = r.get("custom_metrics") {
            let items = n
                .as_seq()
                .ok_or_else(|| LocError::new(n.loc.clone(), "custom_metrics must be a list"))?;
            for item in items {
                let m = MapReader::new(item, "a custom metric", &["name", "command", "metrics"])?;
                let name = scalar(m.req("name")?)?;
                if !valid_metric_name(&name) {
                    return Err(LocError::new(
                        m.req("name")?.loc.clone(),
                        format!("`{name}` is not a valid metric name ([a-zA-Z_][a-zA-Z0-9_]*)"),
                    ));
                }
                let metrics = match m.get("metrics") {
                    Some(l) => str_list(l)?,
                    None => Vec::new(),
                };
                if let Some(bad) = metrics.iter().find(|n| !valid_metric_name(n)) {
                    return Err(LocError::new(
                        m.req("metrics")?.loc.clone(),
                        format!("`{bad}` is not a valid metric name ([a-zA-Z_][a-zA-Z0-9_]*)"),
                    ));
                }
                custom.push(CustomMetric {
                    name,
                    command: scalar(m.req("command")?)?,
                    metrics,
                });
            }
        }
        let mut rules = Vec::new();
        if let Some(n) = r.get("rules") {
            let items = n
                .as_seq()
                .ok_or_else(|| LocError::new(n.loc.clone(), "rules must be a list"))?;
            for item in items {
                rules.push(parse_rule(item, base)?);
            }
        }
        let containers = bool_key(&r, "containers")?;
        check_rule_metrics(&rules, &custom, containers)?;
        let mut vsphere: Vec<VsphereTarget> = Vec::new();
        if let Some(n) = r.get("vsphere") {
            let items = n
                .as_seq()
                .ok_or_else(|| LocError::new(n.loc.clone(), "vsphere must be a list of endpoints"))?;
            for item in items {
                let t = parse_vsphere(item, base)?;
                if vsphere.iter().any(|x| x.name == t.name) {
                    return Err(LocError::new(
                        item.loc.clone(),
                        format!("vsphere endpoint `{}` is named twice", t.name),
                    ));
                }
                vsphere.push(t);
            }
        }
        let mut receivers = Vec::new();
        let mut receiver_locs = Vec::new();
        if let Some(n) = r.get("receivers") {
            let items = n
                .as_seq()
                .ok_or_else(|| LocError::new(n.loc.clone(), "receivers must be a list"))?;
            for item in items {
                let rc = parse_receiver(item, base)?;
                if receivers.iter().any(|x: &Receiver| x.name == rc.name) {
                    return Err(LocError::new(
                        item.loc.clone(),
                        format!("receiver `{}` is defined twice", rc.name),
                    ));
                }
                receivers.push(rc);
                receiver_locs.push(item.loc.clone());
            }
        }
        let route = match r.get("route") {
            Some(n) => parse_route(n, None, &receivers)?,
            None => {
                let Some(first) = receivers.first() else {
                    return Err(LocError::new(
                        root.loc.clone(),
                        "the watch configuration needs `receivers` (and optionally `route`)",
                    ));
                };
                Route {
                    receiver: first.name.clone(),
                    matchers: Vec::new(),
                    group_by: vec!["alertname".into(), "host".into()],
                    group_wait: Duration::from_secs(30),
                    group_interval: Duration::from_secs(300),
                    repeat_interval: Duration::from_secs(4 * 3600),
                    continue_: false,
                    routes: Vec::new(),
                }
            }
        };
        check_receivers(&route, &receivers, r.get("route").unwrap_or(root))?;
        // A receiver no route sends to is a typo in a route or a leftover:
        // either way nothing would ever reach it.
        let mut used = std::collections::BTreeSet::new();
        route_receivers(&route, &mut used);
        for (rc, loc) in receivers.iter().zip(&receiver_locs) {
            if !used.contains(rc.name.as_str()) {
                return Err(
                    LocError::new(loc.clone(), format!("receiver `{}` is not used by any route", rc.name)).with_hint(
                        format!(
                            "send alerts to it with `receiver: {}` on the route or a child route, or remove it",
                            rc.name
                        ),
                    ),
                );
            }
        }
        let mut inhibit = vec![InhibitRule {
            source: vec![Matcher::eq("alertname", "host_down")],
            target: vec![Matcher {
                name: "alertname".into(),
                value: "host_down".into(),
                op: MatchOp::Ne,
            }],
            equal: vec!["host".into()],
        }];
        if let Some(n) = r.get("inhibit_rules") {
            let items = n
                .as_seq()
                .ok_or_else(|| LocError::new(n.loc.clone(), "inhibit_rules must be a list"))?;
            for item in items {
                let m = MapReader::new(
                    item,
                    "an inhibit rule",
                    &[
                        "source_match",
                        "source_matchers",
                        "target_match",
                        "target_matchers",
                        "equal",
                    ],
                )?;
                inhibit.push(InhibitRule {
                    source: matchers(m.get("source_match"), m.get("source_matchers"))?,
                    target: matchers(m.get("target_match"), m.get("target_matchers"))?,
                    equal: m.get("equal").map(str_list).transpose()?.unwrap_or_default(),
                });
            }
        }
        Ok(WatchConfig {
            file: path.to_path_buf(),
            interval,
            host_down_after,
            hosts: r.str("hosts")?.unwrap_or_else(|| "all".into()),
            state,
            ring_size,
            history,
            exclude,
            persist_every,
            services,
            containers,
            custom,
            rules,
            route,
            receivers,
            inhibit,
            outbox_max_age: r.duration("outbox_max_age", Duration::from_secs(24 * 3600))?,
            retry_max_backoff: r.duration("retry_max_backoff", Duration::from_secs(300))?,
            vsphere,
            group: r.get("group").map(parse_group).transpose()?,
        })
    }

    /// The parts of the configuration that the remote collector loop depends on.
    pub fn collection_key(&self) -> String {
        format!(
            "{:?}|{:?}|{:?}|{}|{}|{:?}",
            self.interval,
            self.services,
            self.custom,
            self.hosts,
            self.exclude.key(),
            self.vsphere
        )
    }

    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.name == name)
    }
}

pub fn valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

const RULE_KEYS: &[&str] = &[
    "alert",
    "metric",
    "match",
    "matchers",
    "threshold",
    "rate",
    "delta",
    "window",
    "absent",
    "anomaly",
    "predict",
    "for",
    "keep_firing_for",
    "severity",
    "labels",
    "summary",
    "description",
    "action",
];

const ACTION_KEYS: &[&str] = &[
    "playbook",
    "on_resolve",
    "cooldown",
    "max_runs",
    "window",
    "loop_window",
    "dry_run",
    "approval",
    "approval_expires",
    "timeout",
];

fn bool_key(r: &MapReader, key: &str) -> Result<bool, LocError> {
    match r.get(key) {
        None => Ok(false),
        Some(n) => match &n.kind {
            NodeKind::Bool(b) => Ok(*b),
            _ => Err(LocError::new(n.loc.clone(), format!("{key} must be true or false"))),
        },
    }
}

fn parse_action(n: &Node, base: &Path) -> Result<ActionConfig, LocError> {
    let r = MapReader::new(n, "an action", ACTION_KEYS)?;
    let pb_node = r.req("playbook")?;
    let playbook = base.join(scalar(pb_node)?);
    if !playbook.is_file() {
        return Err(LocError::new(
            pb_node.loc.clone(),
            format!("action playbook {} does not exist", playbook.display()),
        )
        .with_hint("a relative path is taken from the watch configuration's directory"));
    }
    let max_runs = r.f64("max_runs", 5.0)?;
    if !(max_runs >= 1.0 && max_runs.fract() == 0.0 && max_runs <= 1e6) {
        let at = r.req("max_runs")?.loc.clone();
        return Err(LocError::new(at, "max_runs must be a whole number of at least 1"));
    }
    let window = r.duration("window", Duration::from_secs(3600))?;
    if window.is_zero() {
        return Err(LocError::new(
            r.req("window")?.loc.clone(),
            "window must be longer than 0s",
        ));
    }
    Ok(ActionConfig {
        playbook,
        loc: n.loc.clone(),
        on_resolve: bool_key(&r, "on_resolve")?,
        cooldown: r.duration("cooldown", Duration::from_secs(300))?,
        max_runs: max_runs as u32,
        window,
        loop_window: r.duration("loop_window", Duration::from_secs(600))?,
        dry_run: bool_key(&r, "dry_run")?,
        approval: bool_key(&r, "approval")?,
        approval_expires: r.duration("approval_expires", Duration::from_secs(3600))?,
        timeout: r.duration("timeout", Duration::from_secs(600))?,
    })
}

fn parse_rule(n: &Node, base: &Path) -> Result<Rule, LocError> {
    let r = MapReader::new(n, "a rule", RULE_KEYS)?;
    let name = scalar(r.req("alert")?)?;
    let metric_node = r.req("metric")?;
    let metric = scalar(metric_node)?;
    if !valid_metric_name(&metric) {
        return Err(LocError::new(
            metric_node.loc.clone(),
            format!("`{metric}` is not a metric name"),
        ));
    }
    let window = r.duration("window", Duration::from_secs(300))?;
    let mut kinds = Vec::new();
    if let Some(t) = r.get("threshold") {
        kinds.push(RuleKind::Threshold(cmp(t)?));
    }
    if let Some(t) = r.get("rate") {
        kinds.push(RuleKind::Rate { window, cmp: cmp(t)? });
    }
    if let Some(t) = r.get("delta") {
        kinds.push(RuleKind::Delta { window, cmp: cmp(t)? });
    }
    if let Some(t) = r.get("absent") {
        kinds.push(RuleKind::Absent(duration(t)?));
    }
    if let Some(t) = r.get("anomaly") {
        let a = MapReader::new(t, "anomaly", &["alpha", "z", "warmup", "min_stddev"])?;
        let alpha = a.f64("alpha", 0.1)?;
        if !(alpha > 0.0 && alpha <= 1.0) {
            return Err(LocError::new(a.req("alpha")?.loc.clone(), "alpha must be in (0, 1]"));
        }
        kinds.push(RuleKind::Anomaly {
            alpha,
            z: a.f64("z", 4.0)?,
            warmup: a.f64("warmup", 30.0)?.max(2.0) as usize,
            min_stddev: a.f64("min_stddev", 0.01)?.max(1e-9),
        });
    }
    if let Some(t) = r.get("predict") {
        let p = MapReader::new(t, "predict", &["window", "horizon", "threshold"])?;
        kinds.push(RuleKind::Predict {
            window: p.duration("window", Duration::from_secs(3600))?,
            horizon: duration(p.req("horizon")?)?,
            cmp: cmp(p.req("threshold")?)?,
        });
    }
    let kind = match kinds.len() {
        1 => kinds.remove(0),
        0 => {
            return Err(LocError::new(
                n.loc.clone(),
                format!("rule `{name}` needs one of threshold, rate, delta, absent, anomaly, predict"),
            ))
        }
        _ => {
            return Err(LocError::new(
                n.loc.clone(),
                format!("rule `{name}` has more than one of threshold, rate, delta, absent, anomaly, predict"),
            )
            .with_hint("write one rule per condition"))
        }
    };
    let summary = match r.get("summary") {
        Some(s) => check_template(s)?,
        None => "{{ alertname }} on {{ labels.host }}: {{ metric }} = {{ value | round(2) }}".into(),
    };
    let description = match r.get("description") {
        Some(s) => check_template(s)?,
        None => String::new(),
    };
    let located = located_matchers(r.get("match"), r.get("matchers"))?;
    Ok(Rule {
        name,
        loc: n.loc.clone(),
        metric,
        metric_loc: metric_node.loc.clone(),
        matchers: located.iter().map(|(m, _)| m.clone()).collect(),
        matcher_locs: located.into_iter().map(|(_, l)| l).collect(),
        kind,
        for_: r.duration("for", Duration::ZERO)?,
        keep_firing_for: r.duration("keep_firing_for", Duration::ZERO)?,
        severity: r.str("severity")?.unwrap_or_else(|| "warning".into()),
        labels: r.get("labels").map(labels).transpose()?.unwrap_or_default(),
        summary,
        description,
        action: r.get("action").map(|a| parse_action(a, base)).transpose()?,
    })
}

fn parse_route(n: &Node, parent: Option<&Route>, receivers: &[Receiver]) -> Result<Route, LocError> {
    let r = MapReader::new(
        n,
        "a route",
        &[
            "receiver",
            "match",
            "matchers",
            "group_by",
            "group_wait",
            "group_interval",
            "repeat_interval",
            "continue",
            "routes",
        ],
    )?;
    let receiver = match (r.str("receiver")?, parent) {
        (Some(s), _) => {
            // Checked here, at the route that names it (a child route's own line).
            if !receivers.is_empty() && !receivers.iter().any(|x| x.name == s) {
                let mut e = LocError::new(
                    r.req("receiver")?.loc.clone(),
                    format!("route uses unknown receiver `{s}`"),
                );
                if let Some(d) = did_you_mean(&s, receivers.iter().map(|x| x.name.as_str())) {
                    e = e.with_hint(format!("did you mean `{d}`?"));
                }
                return Err(e);
            }
            s
        }
        (None, Some(p)) => p.receiver.clone(),
        (None, None) => return Err(LocError::new(n.loc.clone(), "the top route needs `receiver`")),
    };
    let mut route = Route {
        receiver,
        matchers: matchers(r.get("match"), r.get("matchers"))?,
        group_by: match r.get("group_by") {
            Some(g) => str_list(g)?,
            None => parent
                .map(|p| p.group_by.clone())
                .unwrap_or_else(|| vec!["alertname".into(), "host".into()]),
        },
        group_wait: r.duration("group_wait", parent.map_or(Duration::from_secs(30), |p| p.group_wait))?,
        group_interval: r.duration(
            "group_interval",
            parent.map_or(Duration::from_secs(300), |p| p.group_interval),
        )?,
        repeat_interval: r.duration(
            "repeat_interval",
            parent.map_or(Duration::from_secs(4 * 3600), |p| p.repeat_interval),
        )?,
        continue_: match r.get("continue") {
            Some(c) => matches!(c.kind, NodeKind::Bool(true)),
            None => false,
        },
        routes: Vec::new(),
    };
    if let Some(children) = r.get("routes") {
        let items = children
            .as_seq()
            .ok_or_else(|| LocError::new(children.loc.clone(), "routes must be a list"))?;
        let mut out = Vec::new();
        for c in items {
            out.push(parse_route(c, Some(&route), receivers)?);
        }
        route.routes = out;
    }
    Ok(route)
}

fn route_receivers<'a>(route: &'a Route, out: &mut std::collections::BTreeSet<&'a str>) {
    out.insert(route.receiver.as_str());
    for c in &route.routes {
        route_receivers(c, out);
    }
}

fn check_receivers(route: &Route, receivers: &[Receiver], at: &Node) -> Result<(), LocError> {
    if !receivers.iter().any(|r| r.name == route.receiver) {
        let mut e = LocError::new(
            at.loc.clone(),
            format!("route uses unknown receiver `{}`", route.receiver),
        );
        if let Some(s) = did_you_mean(&route.receiver, receivers.iter().map(|r| r.name.as_str())) {
            e = e.with_hint(format!("did you mean `{s}`?"));
        }
        return Err(e);
    }
    for c in &route.routes {
        check_receivers(c, receivers, at)?;
    }
    Ok(())
}

fn parse_receiver(n: &Node, base: &Path) -> Result<Receiver, LocError> {
    let r = MapReader::new(n, "a receiver", &["name", "email", "webhook"])?;
    let name = scalar(r.req("name")?)?;
    let email = match r.get("email") {
        Some(e) => {
            let m = MapReader::new(
                e,
                "email",
                &[
                    "to",
                    "from",
                    "smarthost",
                    "tls",
                    "username",
                    "password",
                    "insecure_auth",
                    "timeout",
                ],
            )?;
            let to = str_list(m.req("to")?)?;
            let from = scalar(m.req("from")?)?;
            for addr in to.iter().chain(std::iter::once(&from)) {
                if addr.parse::<lettre::message::Mailbox>().is_err() {
                    return Err(LocError::new(
                        e.loc.clone(),
                        format!("`{addr}` is not an email address"),
                    ));
                }
            }
            let host_node = m.req("smarthost")?;
            let smarthost = scalar(host_node)?;
            let (host, port) = match smarthost.rsplit_once(':') {
                Some((h, p)) => (
                    h.trim_matches(['[', ']']).to_string(),
                    p.parse::<u16>()
                        .map_err(|_| LocError::new(host_node.loc.clone(), format!("bad port in `{smarthost}`")))?,
                ),
                None => (smarthost.clone(), 25),
            };
            let tls = match m.str("tls")?.as_deref() {
                None | Some("none") => Tls::None,
                Some("starttls") => Tls::StartTls,
                Some("tls") => Tls::Tls,
                Some(other) => {
                    return Err(LocError::new(
                        m.req("tls")?.loc.clone(),
                        format!("tls must be none, starttls or tls, not `{other}`"),
                    ))
                }
            };
            let insecure_auth = match m.get("insecure_auth") {
                None => false,
                Some(n) => match &n.kind {
                    NodeKind::Bool(b) => *b,
                    _ => return Err(LocError::new(n.loc.clone(), "insecure_auth must be true or false")),
                },
            };
            let (username, password) = (m.str("username")?, m.str("password")?);
            if let (Some(_), Some(pw_node)) = (&username, m.get("password")) {
                if tls == Tls::None && !insecure_auth {
                    return Err(LocError::new(
                        pw_node.loc.clone(),
                        "the SMTP password would be sent without TLS: set `tls: starttls` or `tls: tls`, \
                         or `insecure_auth: true` to send it in the clear (e.g. to a relay on this machine)",
                    ));
                }
            }
            Some(EmailConfig {
                to,
                from,
                smarthost: host,
                port,
                tls,
                username,
                password,
                insecure_auth,
                timeout: m.duration("timeout", Duration::from_secs(10))?,
            })
        }
        None => None,
    };
    let webhook = match r.get("webhook") {
        Some(w) => {
            let m = MapReader::new(w, "webhook", &["url", "secret", "ca_file", "timeout"])?;
            let url_node = m.req("url")?;
            let url = scalar(url_node)?;
            let parsed =
                super::http::parse_url(&url).map_err(|e| LocError::new(url_node.loc.clone(), e.to_string()))?;
            // Relative to the configuration file, as `state:`.
            let ca_file = m.str("ca_file")?.map(|p| base.join(p));
            if let Some(ca) = &ca_file {
                let at = m.req("ca_file")?.loc.clone();
                if !parsed.https {
                    return Err(LocError::new(
                        at,
                        "ca_file is for https:// webhooks; this one is http://",
                    ));
                }
                // A CA file that cannot be used fails here, not at the first alert.
                super::http::tls_connector(Some(ca)).map_err(|e| LocError::new(at, e))?;
            }
            Some(WebhookConfig {
                url,
                secret: m.str("secret")?,
                ca_file,
                timeout: m.duration("timeout", Duration::from_secs(10))?,
            })
        }
        None => None,
    };
    if email.is_none() && webhook.is_none() {
        return Err(LocError::new(
            n.loc.clone(),
            format!("receiver `{name}` needs `email` or `webhook`"),
        ));
    }
    Ok(Receiver { name, email, webhook })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(src: &str) -> Result<WatchConfig, LocError> {
        let n = crate::yaml::parse_one(src, "w.yml").unwrap();
        WatchConfig::from_node(&n, Path::new("/x/w.yml"))
    }

    #[test]
    fn vsphere_endpoints_are_checked_where_written() {
        let base = "receivers:\n  - name: h\n    webhook: {url: 'http://127.0.0.1:1/x'}\nvsphere:\n";
        let ok = load(&format!(
            "{base}  - name: vc\n    hostname: '[::1]'\n    username: u\n    password: p\n    thumbprint: {}\n",
            "ab".repeat(32)
        ))
        .unwrap();
        assert_eq!(ok.vsphere[0].hostname, "::1");
        assert_eq!(ok.vsphere[0].port, 443);
        assert!(!format!("{:?}", ok.vsphere[0]).contains("\"p\""));
        let err = |body: &str| load(&format!("{base}{body}")).unwrap_err().to_string();
        assert!(
            err("  - name: vc\n    hostname: h\n    username: u\n").contains("needs `password` or `password_env`"),
            "{}",
            err("  - name: vc\n    hostname: h\n    username: u\n")
        );
        let mixed = err("  - name: vc\n    hostname: h\n    username: u\n    password: p\n    validate_certs: false\n    ca_file: x.pem\n");
        assert!(
            mixed.contains("w.yml:5:5") && mixed.contains("cannot be combined"),
            "{mixed}"
        );
        let unset = err("  - name: vc\n    hostname: h\n    username: u\n    password_env: RIGGER_TEST_NO_SUCH_VAR\n");
        assert!(unset.contains("w.yml:8:19") && unset.contains("is not set"), "{unset}");
        let twice = err("  - {name: vc, hostname: h, username: u, password: p}\n  - {name: vc, hostname: h, username: u, password: p}\n");
        assert!(twice.contains("named twice"), "{twice}");
    }

    #[test]
    fn a_vsphere_endpoint_named_like_an_inventory_host_is_a_located_error() {
        let base = "receivers:\n  - name: h\n    webhook: {url: 'http://127.0.0.1:1/x'}\nvsphere:\n";
        let cfg = load(&format!(
            "{base}  - {{name: web1, hostname: h, username: u, password: p}}\n"
        ))
        .unwrap();
        let mut inv = crate::inventory::Inventory::new();
        inv.add_host("db1", &[], serde_json::Map::new()).unwrap();
        assert!(check_vsphere_names(&cfg, &inv).is_ok());
        inv.add_host("web1", &[], serde_json::Map::new()).unwrap();
        let e = check_vsphere_names(&cfg, &inv).unwrap_err().to_string();
        assert!(
            e.contains("w.yml:5:12") && e.contains("`web1` has the name of an inventory host"),
            "{e}"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn matchers_parse() {
        let m = Matcher::parse("mount=~/srv.*").unwrap();
        let mut l = Labels::new();
        l.insert("mount".into(), "/srv/fill".into());
        assert!(m.matches(&l));
        assert!(!Matcher::parse("mount!=/srv/fill").unwrap().matches(&l));
        assert!(Matcher::parse("novalue").is_err());
        assert!(matches!(
            Matcher::parse("=x"),
            Err(ValueError::MatcherName(ref s)) if s == "=x"
        ));
        assert_eq!(
            parse_duration("5x").unwrap_err().to_string(),
            "unknown unit `x` in `5x` (use ms, s, m, h, d, w)"
        );
        match Cmp::parse(" > abc ") {
            Err(ValueError::NotNumber { number, input }) => {
                assert_eq!((number.as_str(), input.as_str()), ("abc", "> abc"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn full_config_and_located_errors() {
        let ok = "interval: 1s\nrules:\n  - alert: Disk\n    metric: disk_used_pct\n    threshold: '> 90'\n    for: 5m\nreceivers:\n  - name: ops\n    webhook: {url: 'http://127.0.0.1:9/x'}\n";
        let c = load(ok).unwrap();
        assert_eq!(
            c.rules[0].kind,
            RuleKind::Threshold(Cmp {
                op: Op::Gt,
                value: 90.0
            })
        );
        assert_eq!(c.route.receiver, "ops");
        assert_eq!(c.state, PathBuf::from("/x/watch.db"));
        let bad = ok.replace("threshold: '> 90'", "treshold: '> 90'");
        let e = load(&bad).unwrap_err();
        assert_eq!((e.loc.line, e.loc.col), (5, 5));
        assert!(e.hint.unwrap().contains("threshold"));
        let e = load(&ok.replace("'> 90'", "'>> 90'")).unwrap_err();
        assert!(e.msg.contains("not a number"), "{}", e.msg);
        let e = load(&ok.replace("for: 5m", "for: 5 parsecs")).unwrap_err();
        assert_eq!(e.loc.line, 6);
    }

    #[test]
    fn container_rules_need_containers_true() {
        let rule = "rules:\n  - alert: Sick\n    metric: container_healthy\n    threshold: '< 1'\nreceivers:\n  - name: ops\n    webhook: {url: 'http://127.0.0.1:9/x'}\n";
        let e = load(rule).unwrap_err();
        assert_eq!(e.loc.line, 3, "{}", e.msg);
        assert!(e.msg.contains("only with `containers: true`"), "{}", e.msg);
        let c = load(&format!("containers: true\n{rule}")).unwrap();
        assert!(c.containers);
        assert!(
            !load("receivers:\n  - name: ops\n    webhook: {url: 'http://127.0.0.1:9/x'}\n")
                .unwrap()
                .containers
        );
        let e = load(&format!("containers: yes please\n{rule}")).unwrap_err();
        assert!(e.msg.contains("containers must be true or false"), "{}", e.msg);
    }

    #[test]
    fn group_parses_with_located_errors() {
        let ok = "receivers:\n  - name: ops\n    webhook: {url: 'http://127.0.0.1:9/x'}\n";
        assert_eq!(load(ok).unwrap().group, None);
        let g = load(&format!("{ok}group: {{name: dc1, lease: 5s}}\n"))
            .unwrap()
            .group
            .unwrap();
        assert_eq!(
            (g.name.as_str(), g.lease, g.instance),
            ("dc1", Duration::from_secs(5), None)
        );
        let g = load(&format!("{ok}group: {{instance: w1}}\n")).unwrap().group.unwrap();
        assert_eq!((g.name.as_str(), g.lease), ("default", Duration::from_secs(10)));
        assert_eq!(g.instance.as_deref(), Some("w1"));
        let e = load(&format!("{ok}group: {{lease: 500ms}}\n")).unwrap_err();
        assert_eq!((e.loc.line, e.msg.as_str()), (4, "lease must be at least 1s"));
        let e = load(&format!("{ok}group: {{leese: 5s}}\n")).unwrap_err();
        assert!(e.hint.unwrap().contains("lease"));
        let e = load(&format!("{ok}group: dc1\n")).unwrap_err();
        assert!(e.msg.contains("must be a mapping"), "{}", e.msg);
    }

    #[test]
    fn actions_parse_with_located_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("fix.yml"), "- hosts: all\n  tasks: []\n").unwrap();
        let cfg = |action: &str| {
            let src = format!(
                "rules:\n  - alert: A\n    metric: load1\n    threshold: '> 1'\n    action: {action}\nreceivers:\n  - name: ops\n    webhook: {{url: 'http://127.0.0.1:9/x'}}\n"
            );
            let n = crate::yaml::parse_one(&src, "w.yml").unwrap();
            WatchConfig::from_node(&n, &dir.path().join("w.yml"))
        };
        let c = cfg("{playbook: fix.yml, max_runs: 3, dry_run: true}").unwrap();
        let a = c.rules[0].action.as_ref().unwrap();
        assert_eq!(a.playbook, dir.path().join("fix.yml"));
        assert_eq!((a.max_runs, a.dry_run, a.approval), (3, true, false));
        assert_eq!(a.cooldown, Duration::from_secs(300));
        let e = cfg("{playbook: nope.yml}").unwrap_err();
        assert_eq!((e.loc.line, e.loc.col), (5, 24));
        assert!(e.msg.contains("does not exist"), "{}", e.msg);
        let e = cfg("{playbook: fix.yml, cooldwn: 1m}").unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("did you mean `cooldown`?"));
        let e = cfg("{playbook: fix.yml, max_runs: 0}").unwrap_err();
        assert!(e.msg.contains("max_runs"), "{}", e.msg);
        let e = cfg("{playbook: fix.yml, approval: yes please}").unwrap_err();
        assert!(e.msg.contains("approval must be true or false"), "{}", e.msg);
    }

    #[test]
    fn exclusions_and_history() {
        let base = "receivers:\n  - name: ops\n    webhook: {url: 'http://127.0.0.1:9/x'}\n";
        let c = load(base).unwrap();
        assert_eq!(c.history, Duration::from_secs(3600));
        assert!(c.exclude.file_system(Some("devtmpfs"), "/dev"));
        assert!(c.exclude.file_system(Some("tmpfs"), "/run/user/0"));
        assert!(!c.exclude.file_system(Some("tmpfs"), "/srv/fill"));
        assert!(!c.exclude.file_system(None, "/"));
        assert!(c.exclude.interface("lo") && c.exclude.interface("veth12ab") && !c.exclude.interface("eth0"));
        assert!(c.exclude.device("sda1") && c.exclude.device("nvme0n1p2") && !c.exclude.device("nvme0n1"));

        let all = format!("history: 2h\nexclude:\n  fs_types: []\n  mounts: ''\n  interfaces: 'lo'\n{base}");
        let c = load(&all).unwrap();
        assert_eq!(c.history, Duration::from_secs(7200));
        assert!(!c.exclude.file_system(Some("devtmpfs"), "/dev"));
        assert!(c.exclude.interface("lo") && !c.exclude.interface("veth0"));
        assert!(c.exclude.device("loop0"), "devices keeps its default");
        let other = load(&all.replace("'lo'", "'lo|eth1'")).unwrap();
        assert_ne!(
            c.collection_key(),
            other.collection_key(),
            "an exclusion change restarts the collectors"
        );

        let e = load(&format!("exclude:\n  interfaces: 'eth('\n{base}")).unwrap_err();
        assert_eq!((e.loc.line, e.loc.col), (2, 15));
        assert!(e.msg.contains("exclude.interfaces"), "{}", e.msg);
        let e = load(&format!("exclude:\n  fs_type: []\n{base}")).unwrap_err();
        assert!(e.hint.unwrap().contains("fs_types"));
    }
}
