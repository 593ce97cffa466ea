//! `network_interface`: one interface, persistent and live.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::apply::{self, Applied, Edits};
use super::model::{self, Kind, LinkState, Route};
use super::persist::{self, Backend, Spec};
use crate::connection::sh_quote;
use crate::modules::{
    parse_params, Change, Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan,
    ReturnDoc,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "name",
        OptKind::Str,
        "Interface name (at most 15 characters: letters, digits, `_.-`).",
    )
    .required()
    .aliases(&["ifname", "conn_name"]),
    OptionDoc::new(
        "type",
        OptKind::Str,
        "`ethernet` (an existing device: a NIC, veth, ...), or a virtual device rigger creates: `bridge`, \
`bond`, `vlan`.",
    )
    .default("ethernet")
    .choices(&["ethernet", "bridge", "bond", "vlan"]),
    OptionDoc::new(
        "state",
        OptKind::Str,
        "`present`, or `absent`: remove rigger's configuration files and delete the device (ethernet \
devices lose their addresses and routes instead).",
    )
    .default("present")
    .choices(&["present", "absent"]),
    OptionDoc::new(
        "addresses",
        OptKind::List,
        "The exact list of IPv4/IPv6 addresses, `ADDR/PREFIX`; others are removed (link-local ones are \
kept). Omit to leave addresses alone.",
    )
    .aliases(&["address", "ip"]),
    OptionDoc::new(
        "gateway",
        OptKind::Str,
        "IPv4 default gateway (a default route through this interface).",
    )
    .aliases(&["gw4"]),
    OptionDoc::new("gateway6", OptKind::Str, "IPv6 default gateway.").aliases(&["gw6"]),
    OptionDoc::new(
        "routes",
        OptKind::List,
        "The exact list of static routes through this interface besides the gateways: `TO` or `TO via GW`, \
or `{to, via, metric}`. Routes others configured through it are removed; omit to leave routes alone.",
    ),
    OptionDoc::new("mtu", OptKind::Int, "MTU."),
    OptionDoc::new(
        "ports",
        OptKind::List,
        "Bridge ports or bond slaves (exact list; others are detached).",
    )
    .aliases(&["bridge_ports", "slaves", "bond_slaves"]),
    OptionDoc::new(
        "bond_mode",
        OptKind::Str,
        "Bond mode: balance-rr, active-backup, balance-xor, broadcast, 802.3ad, balance-tlb, balance-alb.",
    )
    .choices(&[
        "balance-rr",
        "active-backup",
        "balance-xor",
        "broadcast",
        "802.3ad",
        "balance-tlb",
        "balance-alb",
    ])
    .aliases(&["mode"]),
    OptionDoc::new("vlan_id", OptKind::Int, "VLAN id (1-4094), for `type: vlan`.").aliases(&["vlanid"]),
    OptionDoc::new("vlan_link", OptKind::Str, "The parent interface of a VLAN.").aliases(&["vlandev"]),
    OptionDoc::new(
        "backend",
        OptKind::Str,
        "Persistent configuration format. `auto`: netplan when /etc/netplan has YAML files and `netplan` \
exists, else NetworkManager when it runs, else ifupdown when /etc/network/interfaces exists.",
    )
    .default("auto")
    .choices(&["auto", "ifupdown", "netplan", "networkmanager"]),
    OptionDoc::new(
        "apply",
        OptKind::Str,
        "`persist`: write the configuration only; `live`: change the running kernel state only (with `ip`); \
`both`.",
    )
    .default("both")
    .choices(&["live", "persist", "both"]),
    OptionDoc::new(
        "rollback_timeout",
        OptKind::Int,
        "Seconds the host waits for rigger to reconnect after a live change before it restores the previous \
configuration and state. 0 disables the guard (and the confirmation).",
    )
    .default("60"),
];

pub(crate) static DOC: ModuleDoc = ModuleDoc {
    name: "network_interface",
    aliases: &["rigger.network_interface"],
    short: "Manage a network interface: bridge, bond, vlan, addresses, routes",
    description: "Manages one interface both in the host's persistent network configuration (ifupdown \
`/etc/network/interfaces.d/NAME`, netplan `/etc/netplan/60-rigger-NAME.yaml`, or NetworkManager keyfiles \
`rigger-NAME*.nmconnection`) and in the running kernel (`ip link/addr/route`). Options left out are not \
managed.\n\n\
Safety: a live change first installs a rollback script and a detached timer on the host, then applies the \
`ip` commands in an order that keeps connectivity as long as possible (create, add addresses and routes, \
then remove old ones). rigger then reconnects over a NEW SSH connection and cancels the timer. When no \
connection gets through within `rollback_timeout`, the host restores its previous files and state by \
itself, and the task fails saying so. A failing live command (e.g. a kernel without 802.1q or bonding \
support) restores the previous state at once and fails with the command's error; use `apply: persist` to \
only write the configuration.\n\n\
With netplan or NetworkManager the files are written but `netplan apply` / `nmcli connection up` are not \
run: the live state is set with `ip` and the files take effect at the next boot or reload. For ifupdown, \
/etc/network/interfaces must `source /etc/network/interfaces.d/*` (a warning says when it does not).",
    free_form: false,
    options: OPTIONS,
    examples: "- name: Bridge for the VMs, with the uplink as its port\n  network_interface:\n    name: br0\n    \
type: bridge\n    ports: [eth1]\n    addresses: [192.0.2.5/24, 2001:db8::5/64]\n    gateway: 192.0.2.1\n    \
routes:\n      - 198.51.100.0/24 via 192.0.2.254\n\n- name: Bond (written only; bring it up at the next boot)\n  \
network_interface:\n    name: bond0\n    type: bond\n    bond_mode: active-backup\n    ports: [eth2, eth3]\n    \
apply: persist\n    backend: netplan\n\n- network_interface: { name: eth0.10, type: vlan, vlan_id: 10, \
vlan_link: eth0, addresses: [10.10.0.2/24] }\n",
    returns: &[
        ReturnDoc {
            name: "backend",
            description: "the persistent configuration format used (`none` with `apply: live`)",
        },
        ReturnDoc {
            name: "commands",
            description: "the `ip` commands run (or, in check mode, that would run)",
        },
        ReturnDoc {
            name: "files",
            description: "configuration files written or removed",
        },
        ReturnDoc {
            name: "rolled_back",
            description: "true when the change was undone (failed live command or lost connection)",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    name: String,
    #[serde(default, rename = "type")]
    type_: Option<String>,
    state: Option<String>,
    addresses: Option<Value>,
    gateway: Option<String>,
    gateway6: Option<String>,
    routes: Option<Value>,
    mtu: Option<i64>,
    ports: Option<Value>,
    bond_mode: Option<String>,
    vlan_id: Option<i64>,
    vlan_link: Option<String>,
    backend: Option<String>,
    apply: Option<String>,
    rollback_timeout: Option<i64>,
}

fn args_err(msg: impl std::fmt::Display) -> ModuleError {
    ModuleError::Args(format!("network_interface: {msg}"))
}

/// A list option: a YAML list, or a comma-separated string; `null` is "not managed".
fn string_list(v: &Option<Value>, what: &str) -> Result<Option<Vec<String>>, ModuleError> {
    Ok(match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect(),
        ),
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|x| match x {
                    Value::String(s) => Ok(s.trim().to_string()),
                    other => Err(args_err(format!("`{what}` items must be strings, got {other}"))),
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(other) => return Err(args_err(format!("`{what}` must be a list, got {other}"))),
    })
}

fn parse_routes(v: &Option<Value>) -> Result<Option<Vec<Route>>, ModuleError> {
    let items = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(a)) => a.clone(),
        Some(other) => return Err(args_err(format!("`routes` must be a list, got {other}"))),
    };
    let mut out = Vec::new();
    for item in items {
        let r = match &item {
            Value::String(s) => {
                let words: Vec<&str> = s.split_whitespace().collect();
                match words.as_slice() {
                    [to] => Route::new(to, None, None),
                    [to, "via", gw] => Route::new(to, Some(gw), None),
                    [to, "via", gw, "metric", m] => match m.parse() {
                        Ok(m) => Route::new(to, Some(gw), Some(m)),
                        Err(_) => Err(format!("bad metric `{m}`")),
                    },
                    _ => Err(format!(
                        "route `{s}`: write `TO`, `TO via GATEWAY` or `TO via GATEWAY metric N`"
                    )),
                }
            }
            Value::Object(o) => {
                if let Some(k) = o
                    .keys()
                    .find(|k| !matches!(k.as_str(), "to" | "via" | "metric" | "gateway"))
                {
                    return Err(args_err(format!(
                        "route {item}: unknown key `{k}` (known: to, via, metric)"
                    )));
                }
                let to = o.get("to").and_then(Value::as_str);
                let via = o.get("via").or_else(|| o.get("gateway")).and_then(Value::as_str);
                let metric = match o.get("metric") {
                    None | Some(Value::Null) => None,
                    Some(m) => Some(
                        m.as_u64()
                            .or_else(|| m.as_str().and_then(|s| s.parse().ok()))
                            .and_then(|m| u32::try_from(m).ok())
                            .ok_or_else(|| args_err(format!("route {item}: bad metric")))?,
                    ),
                };
                match to {
                    Some(to) => Route::new(to, via, metric),
                    None => Err(format!("route {item} has no `to`")),
                }
            }
            other => Err(format!("route {other} must be a string or a dict")),
        };
        out.push(r.map_err(args_err)?);
    }
    Ok(Some(out))
}

fn gateway(v: &Option<String>, v6: bool) -> Result<Option<String>, ModuleError> {
    let Some(g) = v.as_deref().map(str::trim).filter(|g| !g.is_empty()) else {
        return Ok(None);
    };
    match g.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_ipv6() == v6 => Ok(Some(ip.to_string())),
        _ => Err(args_err(format!(
            "`{}` must be an IPv{} address, got `{g}`",
            if v6 { "gateway6" } else { "gateway" },
            if v6 { 6 } else { 4 }
        ))),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ApplyMode {
    Live,
    Persist,
    Both,
}

struct Task {
    spec: Spec,
    backend: Option<Backend>,
    mode: ApplyMode,
    rollback_timeout: u64,
}

fn parse_task(p: Params) -> Result<Task, ModuleError> {
    let name = p.name;
    if !model::valid_ifname(&name) {
        return Err(args_err(format!(
            "`{name}` is not a valid interface name (1-15 characters: letters, digits, `_`, `-`, `.`)"
        )));
    }
    let kind_s = p.type_.unwrap_or_else(|| "ethernet".into());
    let kind = Kind::parse(&kind_s).ok_or_else(|| args_err(format!("unknown type `{kind_s}`")))?;
    let present = match p.state.as_deref().unwrap_or("present") {
        "present" => true,
        "absent" => false,
        s => return Err(args_err(format!("state must be present or absent, got `{s}`"))),
    };
    let addresses = match string_list(&p.addresses, "addresses")? {
        Some(list) => {
            let mut seen = Vec::new();
            for a in list {
                let n = model::norm_addr(&a).map_err(args_err)?;
                if !seen.contains(&n) {
                    seen.push(n);
                }
            }
            Some(seen)
        }
        None => None,
    };
    let ports = string_list(&p.ports, "ports")?;
    if let Some(ps) = &ports {
        if !matches!(kind, Kind::Bridge | Kind::Bond) {
            return Err(args_err(format!(
                "`ports` needs type bridge or bond (type is {})",
                kind.name()
            )));
        }
        if let Some(bad) = ps.iter().find(|p| !model::valid_ifname(p) || **p == name) {
            return Err(args_err(format!("`{bad}` cannot be a port of `{name}`")));
        }
    }
    let mtu = match p.mtu {
        None => None,
        Some(m) if (68..=65535).contains(&m) => Some(m as u32),
        Some(m) => return Err(args_err(format!("mtu {m} is outside 68..=65535"))),
    };
    let vlan_id = match p.vlan_id {
        None => None,
        Some(v) if (1..=4094).contains(&v) => Some(v as u16),
        Some(v) => return Err(args_err(format!("vlan_id {v} is outside 1..=4094"))),
    };
    let vlan_link = p.vlan_link.filter(|l| !l.is_empty());
    if kind == Kind::Vlan && present && (vlan_id.is_none() || vlan_link.is_none()) {
        return Err(args_err("type vlan needs `vlan_id` and `vlan_link`"));
    }
    if kind != Kind::Vlan && (vlan_id.is_some() || vlan_link.is_some()) {
        return Err(args_err("`vlan_id`/`vlan_link` need type vlan"));
    }
    if let Some(l) = &vlan_link {
        if !model::valid_ifname(l) {
            return Err(args_err(format!("`{l}` is not a valid interface name")));
        }
    }
    if p.bond_mode.is_some() && kind != Kind::Bond {
        return Err(args_err("`bond_mode` needs type bond"));
    }
    let backend = match p.backend.as_deref().unwrap_or("auto") {
        "auto" => None,
        b => Some(Backend::parse(b).ok_or_else(|| args_err(format!("unknown backend `{b}`")))?),
    };
    let mode = match p.apply.as_deref().unwrap_or("both") {
        "live" => ApplyMode::Live,
        "persist" => ApplyMode::Persist,
        "both" => ApplyMode::Both,
        a => return Err(args_err(format!("apply must be live, persist or both, got `{a}`"))),
    };
    let rollback_timeout = match p.rollback_timeout {
        None => 60,
        Some(t) if t >= 0 => t as u64,
        Some(t) => return Err(args_err(format!("rollback_timeout {t} is negative"))),
    };
    Ok(Task {
        spec: Spec {
            name,
            kind,
            present,
            addresses,
            gateway4: gateway(&p.gateway, false)?,
            gateway6: gateway(&p.gateway6, true)?,
            routes: parse_routes(&p.routes)?,
            mtu,
            ports,
            bond_mode: p.bond_mode,
            vlan_id,
            vlan_link,
        },
        backend,
        mode,
        rollback_timeout,
    })
}

/// What the kernel should have, given what it has now.
fn target(cur: &LinkState, s: &Spec) -> LinkState {
    if !s.present {
        if s.kind == Kind::Ethernet {
            let mut t = cur.clone();
            t.addrs.clear();
            t.routes.clear();
            return t;
        }
        return LinkState::default();
    }
    let mut t = cur.clone();
    t.exists = true;
    t.up = true;
    if let Some(k) = s.kind.info_kind() {
        t.kind = k.to_string();
    }
    if s.kind == Kind::Vlan {
        t.vlan_id = s.vlan_id;
        t.vlan_link = s.vlan_link.clone();
    }
    if s.bond_mode.is_some() {
        t.bond_mode = s.bond_mode.clone();
    } else if s.kind == Kind::Bond && !cur.exists {
        t.bond_mode = Some("balance-rr".into());
    }
    if s.mtu.is_some() {
        t.mtu = s.mtu;
    }
    if let Some(a) = &s.addresses {
        t.addrs = a.iter().cloned().collect();
    }
    let gws: Vec<Route> = [&s.gateway4, &s.gateway6]
        .into_iter()
        .flatten()
        .filter_map(|g| Route::new("default", Some(g), None).ok())
        .collect();
    if let Some(r) = &s.routes {
        t.routes = r.iter().cloned().chain(gws).collect();
    } else {
        for g in gws {
            t.routes.retain(|r| !(r.to == "default" && r.v6 == g.v6));
            t.routes.insert(g);
        }
    }
    if let Some(p) = &s.ports {
        t.ports = p.iter().cloned().collect();
    }
    t
}

/// Everything the query learned, in one round trip.
struct Current {
    detected: String,
    ifupdown_sources_dir: bool,
    has_ip: bool,
    live: LinkState,
    files: BTreeMap<String, String>,
}

fn query_script(name: &str, globs: &[String]) -> String {
    let n = sh_quote(name);
    let mut s = format!(
        "n={n}\n\
         if command -v ip >/dev/null 2>&1; then echo '==ip'; \
         echo '==link'; ip -j -d link show dev \"$n\" 2>/dev/null; \
         echo '==addr'; ip -j addr show dev \"$n\" 2>/dev/null; \
         echo '==route4'; ip -j -4 route show dev \"$n\" 2>/dev/null; \
         echo '==route6'; ip -j -6 route show dev \"$n\" 2>/dev/null; \
         echo '==ports'; ip -j link show master \"$n\" 2>/dev/null; fi\n\
         echo '==backend'\n\
         if command -v netplan >/dev/null 2>&1 && ls /etc/netplan/*.yaml >/dev/null 2>&1; then echo netplan\n\
         elif command -v nmcli >/dev/null 2>&1 && nmcli -t -f RUNNING general 2>/dev/null | grep -qx running; then echo networkmanager\n\
         elif [ -f /etc/network/interfaces ]; then echo ifupdown\n\
         else echo none; fi\n\
         echo '==ifsrc'\n\
         grep -Eqs '^[[:space:]]*(source|source-directory)[[:space:]]+/etc/network/interfaces.d' /etc/network/interfaces && echo yes\n"
    );
    // Globs hold only interface-name characters (validated), so they expand unquoted.
    for g in globs {
        s.push_str(&format!(
            "for f in {g}; do [ -f \"$f\" ] || continue; printf '==file %s\\n' \"$f\"; base64 < \"$f\" | tr -d '\\n'; echo; done\n"
        ));
    }
    s.push_str("true\n");
    s
}

fn parse_query(out: &str) -> Result<Current, ModuleError> {
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in out.lines() {
        if let Some(h) = line.strip_prefix("==") {
            sections.push((h.to_string(), String::new()));
        } else if let Some((_, body)) = sections.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    let get = |k: &str| {
        sections
            .iter()
            .find(|(h, _)| h == k)
            .map(|(_, b)| b.as_str())
            .unwrap_or("")
    };
    let mut files = BTreeMap::new();
    for (h, body) in &sections {
        if let Some(path) = h.strip_prefix("file ") {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(body.trim())
                .map_err(|e| ModuleError::Failed(format!("network_interface: cannot read {path}: {e}")))?;
            files.insert(path.to_string(), String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    Ok(Current {
        detected: get("backend").trim().to_string(),
        ifupdown_sources_dir: get("ifsrc").trim() == "yes",
        has_ip: sections.iter().any(|(h, _)| h == "ip"),
        live: model::parse_live(get("link"), get("addr"), get("route4"), get("route6"), get("ports")),
        files,
    })
}

fn diff(header: &str, before: &str, after: &str) -> Diff {
    Diff {
        before_header: header.to_string(),
        after_header: header.to_string(),
        before: before.to_string(),
        after: after.to_string(),
    }
}

pub(crate) struct NetworkInterface;

#[async_trait]
impl Module for NetworkInterface {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    /// Reads the interface's live state and rigger's files in one round
    /// trip and plans the files to write or remove and the `ip` commands
    /// (with their inverse for the rollback guard).
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let task = parse_task(parse_params(&DOC, args)?)?;
        let s = &task.spec;
        let persist = task.mode != ApplyMode::Live;
        let live = task.mode != ApplyMode::Persist;

        let globs: Vec<String> = if persist {
            [Backend::Ifupdown, Backend::Netplan, Backend::NetworkManager]
                .into_iter()
                .filter(|b| task.backend.is_none_or(|t| t == *b))
                .flat_map(|b| persist::owned_glob(b, &s.name))
                .collect()
        } else {
            Vec::new()
        };
        let out = ctx.run(&query_script(&s.name, &globs)).await?;
        if out.status != 0 {
            return Err(ModuleError::Failed(format!(
                "network_interface: querying `{}` failed (rc={}): {}",
                s.name,
                out.status,
                out.stderr_str().trim()
            )));
        }
        let cur = parse_query(&out.stdout_str())?;

        let mut warnings = Vec::new();
        let backend = if persist {
            match task.backend.or_else(|| Backend::parse(&cur.detected)) {
                Some(b) => Some(b),
                None => {
                    return Ok(Plan::Done(ModuleOutcome::failed(
                        "network_interface: cannot tell how this host configures its network (no netplan YAML, \
                         no running NetworkManager, no /etc/network/interfaces); set `backend:` \
                         (ifupdown, netplan, networkmanager) or use `apply: live`",
                    )))
                }
            }
        } else {
            None
        };
        if backend == Some(Backend::Ifupdown) && !cur.ifupdown_sources_dir {
            warnings.push(
                "/etc/network/interfaces does not `source /etc/network/interfaces.d/*`: ifupdown will not read \
                 the file rigger writes"
                    .to_string(),
            );
        }
        if live && !cur.has_ip {
            return Ok(Plan::Done(ModuleOutcome::failed(
                "network_interface: the `ip` command (iproute2) is missing on the host; install it or use \
                 `apply: persist`",
            )));
        }

        // Persistent files: desired vs. what rigger wrote before.
        let mut change = Edits::default();
        let mut diffs = Vec::new();
        if let Some(b) = backend {
            let desired = persist::render(b, s);
            let owned: BTreeSet<&String> = cur
                .files
                .keys()
                .filter(|p| persist::owned_glob(b, &s.name).iter().any(|g| glob_match(g, p)))
                .collect();
            for f in &desired {
                let before = cur.files.get(&f.path);
                if before != Some(&f.content) {
                    diffs.push(diff(&f.path, before.map(String::as_str).unwrap_or(""), &f.content));
                    if before.is_some() {
                        change.existing.push(f.path.clone());
                    }
                    change.write.push(f.clone());
                }
            }
            for p in owned {
                if !desired.iter().any(|f| &f.path == p) {
                    diffs.push(diff(p, &cur.files[p], ""));
                    change.existing.push(p.clone());
                    change.remove.push(p.clone());
                }
            }
        }

        // Live state.
        let want = live.then(|| target(&cur.live, s));
        if let Some(want) = &want {
            change.live = model::plan(&s.name, s.kind, &cur.live, want)
                .map_err(|e| ModuleError::Failed(format!("network_interface: {e}")))?;
            if !change.live.is_empty() {
                change.undo = model::plan(&s.name, s.kind, want, &cur.live).unwrap_or_default();
                diffs.push(diff(
                    &format!("live state of {}", s.name),
                    &cur.live.render(&s.name),
                    &want.render(&s.name),
                ));
            }
        }

        let changed = !change.live.is_empty() || !change.write.is_empty() || !change.remove.is_empty();
        let files: Vec<String> = change
            .write
            .iter()
            .map(|f| f.path.clone())
            .chain(change.remove.iter().cloned())
            .collect();
        let mut res = ModuleOutcome::changed(changed)
            .with("backend", backend.map(Backend::name).unwrap_or("none"))
            .with("commands", change.live.clone())
            .with("files", files)
            .with("rolled_back", false);
        if !warnings.is_empty() {
            res = res.with("warnings", warnings.clone()).with_msg(warnings.join("; "));
        }
        if ctx.diff_mode {
            for d in diffs {
                res = res.with_diff(d);
            }
        }
        if !changed {
            return Ok(Plan::Done(res));
        }
        Ok(Plan::change(
            res,
            ApplyInterface {
                edits: change,
                name: s.name.clone(),
                kind: s.kind,
                rollback_timeout: task.rollback_timeout,
            },
        ))
    }
}

/// Write and remove the configuration files and run the `ip` commands,
/// under the rollback guard when there are live commands and a
/// `rollback_timeout`.
struct ApplyInterface {
    edits: Edits,
    name: String,
    kind: Kind,
    rollback_timeout: u64,
}

#[async_trait]
impl Change for ApplyInterface {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let ApplyInterface {
            edits: change,
            name,
            kind,
            rollback_timeout,
        } = *self;
        let res = planned;

        if change.live.is_empty() || rollback_timeout == 0 {
            apply::write_files(ctx, &change).await?;
            if !change.live.is_empty() {
                let script = change.live.join(" && \\\n");
                let out = ctx.run(&script).await?;
                if out.status != 0 {
                    return Ok(ModuleOutcome::failed(format!(
                        "network_interface: live change of `{}` failed (rc={}): {}",
                        name,
                        out.status,
                        out.stderr_str().trim()
                    )));
                }
            }
            return Ok(res);
        }
        match apply::guarded(ctx, &change, &name, rollback_timeout).await? {
            Applied::Confirmed => Ok(res),
            Applied::Failed { log } => {
                let hint = if log.contains("Unknown device type") || log.contains("not supported") {
                    format!(
                        " (this kernel cannot create {} interfaces here: load its module, or use `apply: persist` \
                         to write the configuration only)",
                        kind.name()
                    )
                } else {
                    String::new()
                };
                let mut r = res.with("rolled_back", true);
                r.failed = true;
                r.changed = false;
                r.msg = Some(format!(
                    "network_interface: live change of `{}` failed, the previous configuration was restored: {}{hint}",
                    name,
                    log.trim()
                ));
                Ok(r)
            }
            Applied::RolledBack { log } => {
                let mut r = res.with("rolled_back", true);
                r.failed = true;
                r.changed = false;
                r.msg = Some(format!(
                    "network_interface: lost the connection to the host after changing `{}`: no new SSH \
                     connection got through within rollback_timeout ({}s), so the host restored its previous \
                     network configuration{}",
                    name,
                    rollback_timeout,
                    if log.is_empty() {
                        String::new()
                    } else {
                        format!(" ({log})")
                    }
                ));
                Ok(r)
            }
        }
    }
}

/// `*`-only glob match (the owned-file patterns).
fn glob_match(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((pre, post)) => s.len() >= pre.len() + post.len() && s.starts_with(pre) && s.ends_with(post),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(v: Value) -> Result<Task, ModuleError> {
        let Value::Object(m) = v else { unreachable!() };
        parse_task(parse_params(&DOC, m)?)
    }

    #[test]
    fn validates_arguments() {
        let t = task(json!({"name": "br0", "type": "bridge", "bridge_ports": "veth1, veth2",
            "addresses": ["192.0.2.5/24"], "routes": ["198.51.100.0/24 via 192.0.2.254",
            {"to": "203.0.113.0/24", "via": "192.0.2.253", "metric": 10}]}))
        .unwrap();
        assert_eq!(
            t.spec.ports.as_deref(),
            Some(&["veth1".to_string(), "veth2".to_string()][..])
        );
        assert_eq!(t.spec.routes.as_ref().unwrap()[1].metric, Some(10));
        let bad = |v: Value, want: &str| {
            let e = task(v).err().expect("should fail").to_string();
            assert!(e.contains(want), "{e} does not contain {want}");
        };
        bad(json!({"name": "br0", "addresses": ["192.0.2.5"]}), "ADDRESS/PREFIX");
        bad(json!({"name": "eth0", "ports": ["x"]}), "needs type bridge or bond");
        bad(json!({"name": "v", "type": "vlan", "vlan_id": 5}), "vlan_link");
        bad(
            json!({"name": "v", "type": "vlan", "vlan_id": 5000, "vlan_link": "e"}),
            "1..=4094",
        );
        bad(json!({"name": "e", "gateway": "2001:db8::1"}), "IPv4");
        bad(
            json!({"name": "e", "routes": [{"to": "x", "dev": "y"}]}),
            "unknown key `dev`",
        );
        bad(json!({"name": "e", "colour": "red"}), "unknown field");
        bad(json!({"name": "bad name"}), "not a valid interface name");
    }

    #[test]
    fn target_keeps_unmanaged_facts() {
        let mut cur = LinkState {
            exists: true,
            mtu: Some(1500),
            up: true,
            ..Default::default()
        };
        cur.addrs.insert("192.0.2.10/24".into());
        cur.routes
            .insert(Route::new("default", Some("192.0.2.1"), None).unwrap());
        let t = task(json!({"name": "eth0", "gateway": "192.0.2.2"})).unwrap();
        let want = target(&cur, &t.spec);
        assert_eq!(want.addrs, cur.addrs, "addresses not given: untouched");
        let gws: Vec<String> = want.routes.iter().map(Route::describe).collect();
        assert_eq!(gws, ["default via 192.0.2.2"]);
        let absent = task(json!({"name": "br0", "type": "bridge", "state": "absent"})).unwrap();
        assert!(!target(&cur, &absent.spec).exists);
    }

    #[test]
    fn query_output_is_parsed() {
        let out = "==ip\n==link\n[{\"ifname\":\"br0\",\"flags\":[\"UP\"],\"mtu\":1500,\"linkinfo\":{\"info_kind\":\"bridge\"}}]\n\
                   ==addr\n[]\n==route4\n[]\n==route6\n[]\n==ports\n[]\n==backend\nifupdown\n==ifsrc\nyes\n\
                   ==file /etc/network/interfaces.d/br0\nYXV0byBicjAK\n";
        let c = parse_query(out).unwrap();
        assert!(c.has_ip && c.live.exists && c.ifupdown_sources_dir);
        assert_eq!(c.detected, "ifupdown");
        assert_eq!(c.files["/etc/network/interfaces.d/br0"], "auto br0\n");
        assert!(glob_match("/x/rigger-br0-port-*.nm", "/x/rigger-br0-port-eth1.nm"));
        assert!(!glob_match("/x/rigger-br0-port-*.nm", "/x/rigger-br0.nm"));
    }
}
