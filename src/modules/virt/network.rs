//! `virt_network` (aliases `virt_net`, `community.libvirt.virt_net`): libvirt virtual networks.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::virsh::{is_subset, xml_diff, Virsh, VirshSteps, URI_OPTION};
use super::xml::{Elem, XmlNode};
use crate::modules::{
    parse_params, Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("name", OptKind::Str, "Network name."),
    OptionDoc::new(
        "state",
        OptKind::Str,
        "`present`: defined. `active`: defined and started. `inactive`: stopped. `absent`: stopped and undefined.",
    )
    .choices(&["present", "active", "inactive", "absent"])
    .default("present"),
    OptionDoc::new(
        "command",
        OptKind::Str,
        "community.libvirt.virt_net compatibility: `define`, `create`/`start`, `stop`/`destroy`, `undefine`, \
`modify` (with `xml` of one `<host mac=.. name=.. ip=../>`: add or change that static DHCP host, \
live too when the network is active), and the read-only `status`, `get_xml`, `list_nets`, `facts` \
(sets `ansible_libvirt_networks`) and `info` (returns `networks`).",
    )
    .choices(&[
        "define",
        "modify",
        "facts",
        "info",
        "create",
        "start",
        "stop",
        "destroy",
        "undefine",
        "status",
        "get_xml",
        "list_nets",
    ]),
    OptionDoc::new(
        "xml",
        OptKind::Str,
        "A full network XML, instead of the structured options. Its static DHCP hosts replace the \
network's; an XML without any keeps the network's (e.g. added with `command: modify`).",
    ),
    OptionDoc::new(
        "mode",
        OptKind::Str,
        "`nat`, `route` (routed), `isolated` (no forward), `bridge` (an existing host bridge).",
    )
    .choices(&["nat", "route", "isolated", "bridge"])
    .default("nat"),
    OptionDoc::new(
        "bridge",
        OptKind::Str,
        "Bridge device: created by libvirt (nat/route/isolated; chosen by libvirt when omitted), \
or the existing host bridge for `mode: bridge`.",
    ),
    OptionDoc::new(
        "ip",
        OptKind::Str,
        "The host's address on the network, e.g. `192.168.150.1`.",
    ),
    OptionDoc::new("prefix", OptKind::Int, "Prefix length of `ip`.").default("24"),
    OptionDoc::new("domain", OptKind::Str, "DNS domain of the network."),
    OptionDoc::new("dhcp_start", OptKind::Str, "First address of the DHCP range."),
    OptionDoc::new("dhcp_end", OptKind::Str, "Last address of the DHCP range."),
    OptionDoc::new(
        "hosts",
        OptKind::List,
        "Static DHCP hosts: dicts with `mac`, `ip`, `name`. On an active network they are added, \
changed and removed live (`virsh net-update`, no restart).",
    ),
    OptionDoc::new(
        "dns_hosts",
        OptKind::List,
        "DNS entries: dicts with `ip` and `hostnames` (list).",
    ),
    OptionDoc::new("autostart", OptKind::Bool, "Start the network when libvirtd starts."),
    URI_OPTION,
];

static DOC: ModuleDoc = ModuleDoc {
    name: "virt_network",
    aliases: &["virt_net", "community.libvirt.virt_net"],
    short: "Manage libvirt virtual networks",
    description: "Defines NAT, routed, isolated and bridge-backed networks with DHCP ranges, static hosts and DNS \
entries, starts and autostarts them. A change limited to the static DHCP hosts of an active network is \
applied live with `virsh net-update` (no restart); other changes of an active network are defined and \
reported with `restart_required`.",
    free_form: false,
    options: OPTIONS,
    examples: "- virt_network:\n    name: lab\n    mode: nat\n    ip: 192.168.150.1\n    dhcp_start: 192.168.150.100\n    dhcp_end: 192.168.150.200\n    hosts:\n      - { mac: '52:54:00:00:00:11', ip: 192.168.150.11, name: web1 }\n    state: active\n    autostart: true\n",
    returns: &[
        ReturnDoc {
            name: "state",
            description: "`active`, `inactive` or `absent` after the task",
        },
        ReturnDoc {
            name: "live_updates",
            description: "the `net-update` commands applied to the running network",
        },
        ReturnDoc {
            name: "restart_required",
            description: "true when an active network's definition changed beyond its DHCP hosts",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    xml: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    bridge: Option<String>,
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    prefix: Option<i64>,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    dhcp_start: Option<String>,
    #[serde(default)]
    dhcp_end: Option<String>,
    #[serde(default)]
    hosts: Option<Vec<HostSpec>>,
    #[serde(default)]
    dns_hosts: Option<Vec<DnsHost>>,
    #[serde(default)]
    autostart: Option<bool>,
    #[serde(default)]
    uri: Option<String>,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
struct HostSpec {
    #[serde(default)]
    mac: Option<String>,
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
struct DnsHost {
    ip: String,
    #[serde(default)]
    hostnames: Vec<String>,
}

fn host_elem(h: &HostSpec) -> Elem {
    let mut e = Elem::new("host");
    if let Some(m) = &h.mac {
        e.set_attr("mac", m.to_ascii_lowercase());
    }
    if let Some(n) = &h.name {
        e.set_attr("name", n.clone());
    }
    if let Some(i) = &h.ip {
        e.set_attr("ip", i.clone());
    }
    e
}

/// The network XML the structured options describe (`None` when they describe nothing).
fn wanted_xml(name: &str, p: &Params) -> Result<Option<Elem>, ModuleError> {
    if let Some(x) = &p.xml {
        return Elem::parse(x)
            .map(Some)
            .map_err(|e| ModuleError::Args(format!("virt_network: xml: {e}")));
    }
    let mode = p.mode.clone().unwrap_or_else(|| "nat".into());
    if p.ip.is_none() && mode != "bridge" {
        return Ok(None);
    }
    let mut net = Elem::new("network").with_child(Elem::new("name").with_text(name));
    match mode.as_str() {
        "nat" | "route" | "bridge" => net.push(Elem::new("forward").with_attr("mode", mode.clone())),
        _ => {}
    }
    if mode == "bridge" {
        let b = p
            .bridge
            .clone()
            .ok_or_else(|| ModuleError::Args("virt_network: `mode: bridge` needs `bridge` (the host bridge)".into()))?;
        net.push(Elem::new("bridge").with_attr("name", b));
        return Ok(Some(net));
    }
    if let Some(b) = &p.bridge {
        net.push(Elem::new("bridge").with_attr("name", b.clone()));
    }
    if let Some(d) = &p.domain {
        net.push(Elem::new("domain").with_attr("name", d.clone()));
    }
    if let Some(dns) = &p.dns_hosts {
        let mut d = Elem::new("dns");
        for h in dns {
            let mut e = Elem::new("host").with_attr("ip", h.ip.clone());
            for n in &h.hostnames {
                e.push(Elem::new("hostname").with_text(n.clone()));
            }
            d.push(e);
        }
        net.push(d);
    }
    let mut ip = Elem::new("ip")
        .with_attr("address", p.ip.clone().unwrap_or_default())
        .with_attr("prefix", p.prefix.unwrap_or(24).to_string());
    let mut dhcp = Elem::new("dhcp");
    if let (Some(s), Some(e)) = (&p.dhcp_start, &p.dhcp_end) {
        dhcp.push(
            Elem::new("range")
                .with_attr("start", s.clone())
                .with_attr("end", e.clone()),
        );
    }
    for h in p.hosts.iter().flatten() {
        dhcp.push(host_elem(h));
    }
    if !dhcp.children.is_empty() {
        ip.push(dhcp);
    }
    net.push(ip);
    Ok(Some(net))
}

/// The `<host>` elements of a network's first `<ip><dhcp>`.
fn dhcp_hosts(x: &Elem) -> Vec<Elem> {
    x.path("ip/dhcp")
        .map(|d| d.elems_named("host").cloned().collect())
        .unwrap_or_default()
}

/// `x` with its DHCP hosts replaced by `hosts`.
fn with_hosts(x: &Elem, hosts: &[Elem]) -> Elem {
    let mut x = x.clone();
    if let Some(ip) = x.child_mut("ip") {
        if let Some(d) = ip.child_mut("dhcp") {
            d.remove_children("host");
            for h in hosts {
                d.push(h.clone());
            }
        } else if !hosts.is_empty() {
            let mut d = Elem::new("dhcp");
            for h in hosts {
                d.push(h.clone());
            }
            ip.push(d);
        }
    }
    x
}

async fn net_status(virsh: &Virsh<'_>, name: &str) -> Result<Option<(bool, bool)>, ModuleError> {
    let out = virsh.try_run(&["net-info", name]).await?;
    if !out.ok {
        if super::virsh::is_not_found(&out.stderr) {
            return Ok(None);
        }
        return Err(virsh.fail(&["net-info", name], &out.stderr));
    }
    let field = |k: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
            .unwrap_or_default()
    };
    Ok(Some((field("Active:") == "yes", field("Autostart:") == "yes")))
}

/// `virt_net`'s `facts`/`info`: per network (all, or the named one) the
/// fields community.libvirt.virt_net reports (its `dhcp_leases` are not
/// included).
async fn networks_info(virsh: &Virsh<'_>, only: Option<&str>) -> Result<Value, ModuleError> {
    let names: Vec<String> = match only {
        Some(n) => vec![n.to_string()],
        None => virsh
            .run(&["net-list", "--all", "--name"])
            .await?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
    };
    let mut all = Map::new();
    for name in names {
        let info = virsh.run(&["net-info", &name]).await?;
        let field = |k: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
                .unwrap_or_default()
        };
        let mut e = Map::new();
        e.insert("autostart".into(), json!(field("Autostart:")));
        e.insert("persistent".into(), json!(field("Persistent:")));
        let active = field("Active:") == "yes";
        e.insert("state".into(), json!(if active { "active" } else { "inactive" }));
        e.insert("bridge".into(), json!(field("Bridge:")));
        e.insert("uuid".into(), json!(field("UUID:")));
        if let Some(x) = virsh.xml(&["net-dumpxml", &name]).await? {
            if let Some(m) = x.child("forward").and_then(|f| f.attr("mode")) {
                e.insert("forward_mode".into(), json!(m));
            }
            if let Some(d) = x.child("domain").and_then(|d| d.attr("name")) {
                e.insert("domain".into(), json!(d));
            }
            if let Some(m) = x.child("mac").and_then(|m| m.attr("address")) {
                e.insert("macaddress".into(), json!(m));
            }
        }
        all.insert(name, Value::Object(e));
    }
    Ok(Value::Object(all))
}

/// `command: modify`: add or change one static DHCP host (the `<host>`
/// element in `xml`), matched by MAC as community.libvirt.virt_net does.
async fn modify_host(virsh: &Virsh<'_>, name: &str, xml: Option<&str>) -> Result<Plan, ModuleError> {
    let text = xml.ok_or_else(|| ModuleError::Args("virt_network: `command: modify` needs `xml`".into()))?;
    let want = Elem::parse(text).map_err(|e| ModuleError::Args(format!("virt_network: xml: {e}")))?;
    if want.name != "host" {
        return Err(ModuleError::Args(format!(
            "virt_network: `command: modify` changes a `<host>` of the network's DHCP; `<{}>` is not supported",
            want.name
        )));
    }
    let mac = want
        .attr("mac")
        .ok_or_else(|| ModuleError::Args("virt_network: modify: the `<host>` needs a `mac`".into()))?;
    let Some((active, _)) = net_status(virsh, name).await? else {
        return Err(ModuleError::Failed(format!(
            "virt_network: network `{name}` is not defined on {}",
            virsh.ctx.host
        )));
    };
    let current = virsh
        .xml(&["net-dumpxml", name])
        .await?
        .ok_or_else(|| ModuleError::Failed(format!("virt_network: network `{name}` vanished")))?;
    let hosts = dhcp_hosts(&current);
    let have = hosts
        .iter()
        .find(|h| h.attr("mac").is_some_and(|m| m.eq_ignore_ascii_case(mac)));
    let op = match have {
        None => "add-last",
        Some(h) if h.attr("name") == want.attr("name") && h.attr("ip") == want.attr("ip") => {
            return Ok(Plan::Done(ModuleOutcome::ok()));
        }
        Some(_) => "modify",
    };
    let after: Vec<Elem> = match have {
        None => hosts.iter().cloned().chain([want.clone()]).collect(),
        Some(old) => hosts
            .iter()
            .map(|h| if h == old { want.clone() } else { h.clone() })
            .collect(),
    };
    let out = ModuleOutcome::ok().with_diff(xml_diff(
        &format!("network {name}"),
        Some(&current.to_xml()),
        Some(&with_hosts(&current, &after).to_xml()),
    ));
    let host_xml = want.to_xml();
    let mut steps = VirshSteps::new(virsh);
    let mut a = vec!["net-update", name, op, "ip-dhcp-host", host_xml.trim(), "--config"];
    if active {
        a.push("--live");
    }
    steps.run(&a);
    let mut out = out;
    out.changed = true;
    Ok(steps.plan(out))
}

pub struct VirtNetworkModule;

#[async_trait]
impl Module for VirtNetworkModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let mut p: Params = parse_params(&DOC, args)?;
        let virsh = Virsh::new(ctx, p.uri.as_deref(), "virt_network");
        if p.command.as_deref() == Some("list_nets") {
            let out = virsh.run(&["net-list", "--all", "--name"]).await?;
            let names: Vec<&str> = out.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            return Ok(Plan::Done(ModuleOutcome::ok().with("list_nets", json!(names))));
        }
        if let Some(cmd @ ("facts" | "info")) = p.command.as_deref() {
            let nets = networks_info(&virsh, p.name.as_deref()).await?;
            return Ok(Plan::Done(if cmd == "facts" {
                ModuleOutcome::ok().with("ansible_facts", json!({ "ansible_libvirt_networks": nets }))
            } else {
                ModuleOutcome::ok().with("networks", nets)
            }));
        }
        let name = p
            .name
            .clone()
            .or_else(|| p.xml.as_deref().and_then(|x| Elem::parse(x).ok()?.child_text("name")))
            .ok_or_else(|| ModuleError::Args("virt_network: `name` is required".into()))?;
        match p.command.as_deref() {
            None => {}
            Some("status") => {
                let st = match net_status(&virsh, &name).await? {
                    Some((true, _)) => "active",
                    Some((false, _)) => "inactive",
                    None => "absent",
                };
                return Ok(Plan::Done(ModuleOutcome::ok().with("status", st)));
            }
            Some("get_xml") => {
                return Ok(Plan::Done(
                    ModuleOutcome::ok().with("get_xml", virsh.run(&["net-dumpxml", &name]).await?),
                ))
            }
            Some("define") => p.state = Some("present".into()),
            Some("modify") => return modify_host(&virsh, &name, p.xml.as_deref()).await,
            Some("create" | "start") => p.state = Some("active".into()),
            Some("stop" | "destroy") => p.state = Some("inactive".into()),
            Some("undefine") => p.state = Some("absent".into()),
            Some(other) => return Err(ModuleError::Args(format!("virt_network: unknown command `{other}`"))),
        }
        let state = p.state.clone().unwrap_or_else(|| "present".into());
        let status = net_status(&virsh, &name).await?;
        let st_name = |s: Option<(bool, bool)>| match s {
            Some((true, _)) => "active",
            Some((false, _)) => "inactive",
            None => "absent",
        };
        let state_diff = |a: &str, b: &str| Diff {
            before_header: format!("network {name}"),
            after_header: format!("network {name}"),
            before: format!("state: {a}\n"),
            after: format!("state: {b}\n"),
        };
        let mut out = ModuleOutcome::ok();
        let mut steps = VirshSteps::new(&virsh);
        if state == "absent" {
            let Some((active, _)) = status else {
                return Ok(Plan::Done(out.with("state", "absent")));
            };
            out.changed = true;
            out = out.with_diff(state_diff(st_name(status), "absent"));
            if active {
                steps.run(&["net-destroy", &name]);
            }
            steps.run(&["net-undefine", &name]);
            return Ok(steps.plan(out.with("state", "absent")));
        }

        let want = wanted_xml(&name, &p)?;
        let active = status.is_some_and(|s| s.0);
        let before = if status.is_some() {
            virsh.xml(&["net-dumpxml", "--inactive", &name]).await?
        } else {
            None
        };
        let mut live_updates: Vec<String> = Vec::new();
        match (&want, &before) {
            (None, None) => {
                return Err(ModuleError::Failed(format!(
                    "virt_network: network `{name}` is not defined on {}; give `ip` (and `mode`) or `xml`",
                    ctx.host
                )))
            }
            (None, Some(_)) => {}
            (Some(w), None) => {
                out.changed = true;
                out = out.with_diff(xml_diff(&format!("network {name}"), None, Some(&w.to_xml())));
                steps.xml(&["net-define"], w.to_xml());
            }
            (Some(w), Some(b)) => {
                let want_hosts = dhcp_hosts(w);
                let have_hosts = dhcp_hosts(b);
                // Static hosts are managed by `hosts`, or by an `xml` that lists
                // some; an XML without any leaves the network's hosts as they are
                // (added by `command: modify` or by hand).
                let hosts_managed = p.hosts.is_some() || (p.xml.is_some() && !want_hosts.is_empty());
                // Everything but the hosts: a subset check (libvirt adds uuid, mac, nat ports...).
                let rest_same = is_subset(&with_hosts(w, &[]), &with_hosts(b, &[]));
                let hosts_same = !hosts_managed || want_hosts == have_hosts;
                if !rest_same {
                    let mut new = w.clone();
                    for keep in ["uuid", "mac"] {
                        if new.child(keep).is_none() {
                            if let Some(u) = b.child(keep) {
                                new.children.insert(1, XmlNode::Elem(u.clone()));
                            }
                        }
                    }
                    if !hosts_managed {
                        new = with_hosts(&new, &have_hosts);
                    }
                    out.changed = true;
                    out = out.with_diff(xml_diff(
                        &format!("network {name}"),
                        Some(&b.to_xml()),
                        Some(&new.to_xml()),
                    ));
                    if active {
                        out = out.with("restart_required", true).with_msg(format!(
                            "network `{name}` is active: its new definition applies after net-destroy + net-start"
                        ));
                    }
                    steps.xml(&["net-define"], new.to_xml());
                } else if !hosts_same {
                    // Only the static hosts differ: update them (live too when active).
                    out.changed = true;
                    let after = with_hosts(b, &want_hosts);
                    out = out.with_diff(xml_diff(
                        &format!("network {name}"),
                        Some(&b.to_xml()),
                        Some(&after.to_xml()),
                    ));
                    let scope = if active { "--live" } else { "--config" };
                    let mut cmds: Vec<(&str, String)> = Vec::new();
                    for h in have_hosts.iter().filter(|h| !want_hosts.contains(h)) {
                        cmds.push(("delete", h.to_xml()));
                    }
                    for h in want_hosts.iter().filter(|h| !have_hosts.contains(h)) {
                        cmds.push(("add-last", h.to_xml()));
                    }
                    for (op, xml) in cmds {
                        live_updates.push(format!("{op} ip-dhcp-host {}", xml.trim()));
                        let mut a = vec!["net-update", name.as_str(), op, "ip-dhcp-host", xml.trim(), scope];
                        if active {
                            a.push("--config");
                        }
                        steps.run(&a);
                    }
                }
            }
        }

        let mut now_active = active;
        match state.as_str() {
            "active" if !active => {
                out.changed = true;
                now_active = true;
                out = out.with_diff(state_diff(st_name(status), "active"));
                steps.run(&["net-start", &name]);
            }
            "inactive" if active => {
                out.changed = true;
                now_active = false;
                out = out.with_diff(state_diff("active", "inactive"));
                steps.run(&["net-destroy", &name]);
            }
            _ => {}
        }
        if let Some(want) = p.autostart {
            if status.is_some_and(|s| s.1) != want {
                out.changed = true;
                let mut a = vec!["net-autostart", name.as_str()];
                if !want {
                    a.push("--disable");
                }
                steps.run(&a);
            }
        }
        Ok(steps.plan(
            out.with("state", if now_active { "active" } else { "inactive" })
                .with("live_updates", json!(live_updates)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Params {
        let Value::Object(m) = v else { panic!() };
        parse_params(&DOC, m).unwrap()
    }

    #[test]
    fn nat_network_xml_and_host_swap() {
        let p = params(json!({
            "name": "lab", "ip": "10.9.0.1", "dhcp_start": "10.9.0.100", "dhcp_end": "10.9.0.200",
            "hosts": [{"mac": "52:54:00:AA:00:01", "ip": "10.9.0.11", "name": "web1"}],
            "dns_hosts": [{"ip": "10.9.0.5", "hostnames": ["nas"]}]
        }));
        let x = wanted_xml("lab", &p).unwrap().unwrap();
        assert_eq!(x.path("forward").and_then(|f| f.attr("mode")), Some("nat"));
        let h = dhcp_hosts(&x);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].attr("mac"), Some("52:54:00:aa:00:01"));
        assert_eq!(x.path("dns/host/hostname").map(Elem::text).as_deref(), Some("nas"));
        let none = with_hosts(&x, &[]);
        assert!(dhcp_hosts(&none).is_empty());
        assert!(none.path("ip/dhcp/range").is_some());
        // Isolated: no <forward>.
        let iso = wanted_xml("i", &params(json!({"name": "i", "mode": "isolated", "ip": "10.8.0.1"})))
            .unwrap()
            .unwrap();
        assert!(iso.child("forward").is_none());
        assert!(wanted_xml("b", &params(json!({"name": "b", "mode": "bridge"}))).is_err());
    }
}
