//! `virt_info`: facts about a hypervisor's domains, pools and networks.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::virsh::{Virsh, URI_OPTION};
use crate::modules::args::de_string_list;
use crate::modules::{
    parse_params, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("gather", OptKind::List, "What to gather.")
        .choices(&["domains", "pools", "networks"])
        .default("[domains, pools, networks]"),
    URI_OPTION,
];

static DOC: ModuleDoc = ModuleDoc {
    name: "virt_info",
    aliases: &[],
    short: "Gather facts about libvirt domains, pools and networks",
    description: "Reads (never changes) the hypervisor: every domain with its state, vcpus, memory, disks, \
interfaces and the IP addresses of its interfaces from the networks' DHCP leases; every pool with its \
state and capacity; every network with its state, bridge and leases.",
    free_form: false,
    options: OPTIONS,
    examples: "- virt_info:\n  register: hv\n- debug:\n    msg: \"{{ hv.domains['web1'].interfaces[0].addresses }}\"\n",
    returns: &[
        ReturnDoc {
            name: "domains",
            description: "name -> {state, vcpus, memory_kib, disks: [{target, source, device}], interfaces: [{mac, network, bridge, model, addresses}]}",
        },
        ReturnDoc {
            name: "pools",
            description: "name -> {state, autostart, capacity, allocation, available, path, type}",
        },
        ReturnDoc {
            name: "networks",
            description: "name -> {active, autostart, bridge, leases: [{mac, ip, hostname}]}",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default, deserialize_with = "de_string_list")]
    gather: Vec<String>,
    #[serde(default)]
    uri: Option<String>,
}

fn names(out: &str) -> Vec<String> {
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn info_field(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

pub struct VirtInfoModule;

#[async_trait]
impl Module for VirtInfoModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let virsh = Virsh::new(ctx, p.uri.as_deref(), "virt_info");
        let all = p.gather.is_empty();
        let want = |w: &str| all || p.gather.iter().any(|g| g == w);
        let mut out = ModuleOutcome::ok();

        // Networks first: domains' addresses come from their leases.
        let mut leases: Vec<Value> = Vec::new();
        let mut nets = Map::new();
        for n in names(&virsh.run(&["net-list", "--all", "--name"]).await?) {
            let info = virsh.run(&["net-info", &n]).await?;
            let active = info_field(&info, "Active:") == "yes";
            let mut net_leases = Vec::new();
            if active {
                let l = virsh.run(&["net-dhcp-leases", &n]).await?;
                for line in l.lines() {
                    // Expiry date, time, MAC, protocol, IP/prefix, hostname, client id.
                    let f: Vec<&str> = line.split_whitespace().collect();
                    if f.len() >= 5 && f[2].contains(':') {
                        let ip = f[4].split('/').next().unwrap_or_default();
                        let lease = json!({"mac": f[2], "ip": ip, "hostname": f.get(5).copied().unwrap_or("-")});
                        leases.push(lease.clone());
                        net_leases.push(lease);
                    }
                }
            }
            nets.insert(
                n.clone(),
                json!({
                    "active": active,
                    "autostart": info_field(&info, "Autostart:") == "yes",
                    "bridge": info_field(&info, "Bridge:"),
                    "leases": net_leases,
                }),
            );
        }
        if want("networks") {
            out = out.with("networks", Value::Object(nets));
        }

        if want("domains") {
            let mut doms = Map::new();
            for d in names(&virsh.run(&["list", "--all", "--name"]).await?) {
                let state = virsh.run(&["domstate", &d]).await?.trim().to_string();
                let Some(x) = virsh.xml(&["dumpxml", &d]).await? else {
                    continue;
                };
                let disks: Vec<Value> = x
                    .path("devices")
                    .map(|dev| {
                        dev.elems_named("disk")
                            .map(|k| {
                                let src = k.child("source");
                                let source = src
                                    .and_then(|s| s.attr("file").or(s.attr("dev")).map(String::from))
                                    .or_else(|| {
                                        src.and_then(|s| Some(format!("{}/{}", s.attr("pool")?, s.attr("volume")?)))
                                    });
                                json!({
                                    "device": k.attr("device"),
                                    "target": k.child("target").and_then(|t| t.attr("dev")),
                                    "bus": k.child("target").and_then(|t| t.attr("bus")),
                                    "source": source,
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let ifaces: Vec<Value> = x
                    .path("devices")
                    .map(|dev| {
                        dev.elems_named("interface")
                            .map(|i| {
                                let mac = i.child("mac").and_then(|m| m.attr("address")).unwrap_or_default();
                                let addrs: Vec<&Value> = leases
                                    .iter()
                                    .filter(|l| l["mac"].as_str().is_some_and(|m| m.eq_ignore_ascii_case(mac)))
                                    .map(|l| &l["ip"])
                                    .collect();
                                json!({
                                    "mac": mac,
                                    "type": i.attr("type"),
                                    "network": i.child("source").and_then(|s| s.attr("network")),
                                    "bridge": i.child("source").and_then(|s| s.attr("bridge")),
                                    "model": i.child("model").and_then(|m| m.attr("type")),
                                    "addresses": addrs,
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                doms.insert(
                    d.clone(),
                    json!({
                        "state": state,
                        "type": x.attr("type"),
                        "vcpus": x.child_text("vcpu").and_then(|v| v.parse::<u64>().ok()),
                        "memory_kib": x.child_text("memory").and_then(|v| v.parse::<u64>().ok()),
                        "disks": disks,
                        "interfaces": ifaces,
                    }),
                );
            }
            out = out.with("domains", Value::Object(doms));
        }

        if want("pools") {
            let mut pools = Map::new();
            for n in names(&virsh.run(&["pool-list", "--all", "--name"]).await?) {
                let Some(x) = virsh.xml(&["pool-dumpxml", &n]).await? else {
                    continue;
                };
                let info = virsh.run(&["pool-info", "--bytes", &n]).await?;
                let num = |k: &str| x.child_text(k).and_then(|v| v.parse::<u64>().ok());
                pools.insert(
                    n.clone(),
                    json!({
                        "state": info_field(&info, "State:"),
                        "autostart": info_field(&info, "Autostart:") == "yes",
                        "type": x.attr("type"),
                        "path": x.path("target/path").map(|e| e.text()),
                        "capacity": num("capacity"),
                        "allocation": num("allocation"),
                        "available": num("available"),
                    }),
                );
            }
            out = out.with("pools", Value::Object(pools));
        }
        Ok(Plan::Done(out))
    }
}
