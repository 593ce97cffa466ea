//! `vmware_portgroup_info` (alias `community.vmware.vmware_portgroup_info`):
//! the standard port groups (the networks VMs attach to) of ESXi hosts,
//! read only.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::conn::{self, failed, vmware_options};
use super::infra;
use super::soap::Node;
use crate::modules::args::{de_opt_bool, de_opt_string};
use crate::modules::{Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc};

const OWN_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "cluster_name",
        OptKind::Str,
        "The port groups of every host of this cluster (give it or `esxi_hostname`).",
    ),
    OptionDoc::new("esxi_hostname", OptKind::Str, "The port groups of this host."),
    OptionDoc::new(
        "policies",
        OptKind::Bool,
        "Add the security, traffic shaping and teaming policies of each port group.",
    )
    .default("false"),
];
const OPTIONS: &[OptionDoc] = vmware_options!(conn::CONNECTION, OWN_OPTIONS);

static DOC: ModuleDoc = ModuleDoc {
    name: "vmware_portgroup_info",
    aliases: &["community.vmware.vmware_portgroup_info"],
    short: "Gather information about the port groups of VMware ESXi hosts",
    description: "Lists the standard port groups (name, vSwitch, VLAN, and with `policies` their security, \
shaping and teaming policies) of one ESXi host or of every host of a cluster, through the vSphere API from the \
controller; changes nothing.",
    free_form: false,
    options: OPTIONS,
    examples: "- community.vmware.vmware_portgroup_info:\n    hostname: \"{{ vcenter }}\"\n    username: \"{{ vcenter_user }}\"\n    password: \"{{ vcenter_password }}\"\n    cluster_name: DC0_C0\n  delegate_to: localhost\n  register: pgs\n- debug:\n    msg: \"{{ pgs.hosts_portgroup_info['DC0_C0_H0'] | map(attribute='portgroup') | list }}\"\n",
    returns: &[ReturnDoc {
        name: "hosts_portgroup_info",
        description: "by ESXi host name: list of {portgroup, vswitch, vlan_id}, with `policies` also promiscuous, mac_changes, forged_transmits, traffic_shaping, lb, notify, failback",
    }],
    controller_only: true,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default, deserialize_with = "de_opt_string")]
    cluster_name: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    esxi_hostname: Option<String>,
    #[serde(default, deserialize_with = "de_opt_bool")]
    policies: Option<bool>,
}

fn portgroup(pg: &Node, policies: bool) -> Value {
    let spec = pg.child("spec");
    let get = |p: &str| spec.and_then(|s| s.get(p)).unwrap_or("");
    let mut out = json!({
        "portgroup": get("name"),
        "vswitch": get("vswitchName"),
        "vlan_id": spec.and_then(|s| s.int("vlanId")).unwrap_or(0),
    });
    if policies {
        // The effective policy (inherited from the vSwitch), as Ansible reports it.
        let pol = pg
            .child("computedPolicy")
            .or_else(|| spec.and_then(|s| s.child("policy")));
        let b = |p: &str| pol.and_then(|n| n.bool(p)).unwrap_or(false);
        let extra = json!({
            "promiscuous": b("security/allowPromiscuous"),
            "mac_changes": b("security/macChanges"),
            "forged_transmits": b("security/forgedTransmits"),
            "traffic_shaping": b("shapingPolicy/enabled"),
            "lb": pol.and_then(|n| n.get("nicTeaming/policy")).unwrap_or(""),
            "notify": b("nicTeaming/notifySwitches"),
            "failback": !b("nicTeaming/rollingOrder"),
        });
        if let (Some(o), Value::Object(e)) = (out.as_object_mut(), extra) {
            o.extend(e);
        }
    }
    out
}

pub struct VmwarePortgroupInfoModule;

#[async_trait]
impl Module for VmwarePortgroupInfoModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, _ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let (ep, args) = conn::split(&DOC, args)?;
        let p: Params =
            serde_json::from_value(Value::Object(args)).map_err(|e| ModuleError::Args(format!("{}: {e}", DOC.name)))?;
        if p.cluster_name.is_none() == p.esxi_hostname.is_none() {
            return Err(ModuleError::Args(format!(
                "{}: give cluster_name or esxi_hostname (one of them)",
                DOC.name
            )));
        }
        let policies = p.policies.unwrap_or(false);
        let info = conn::with_session(&ep, move |s| {
            Box::pin(async move {
                let root = s.content.root_folder.clone();
                let hosts = match (&p.cluster_name, &p.esxi_hostname) {
                    (Some(c), _) => {
                        let cl = s
                            .list(&root, "ClusterComputeResource", &["name", "host"])
                            .await
                            .map_err(failed)?
                            .into_iter()
                            .find(|(_, pr)| infra::text(pr, "name") == c)
                            .ok_or_else(|| ModuleError::Failed(format!("{}: cluster `{c}` not found", DOC.name)))?;
                        infra::refs(&cl.1, "host")
                    }
                    (None, Some(h)) => {
                        let found = s.find(&root, "HostSystem", h).await.map_err(failed)?;
                        if found.is_empty() {
                            return Err(ModuleError::Failed(format!("{}: ESXi host `{h}` not found", DOC.name)));
                        }
                        found
                    }
                    (None, None) => Vec::new(),
                };
                let mut out = Map::new();
                for h in hosts {
                    let hp = s
                        .props(&h, &["name", "config.network.portgroup"])
                        .await
                        .map_err(failed)?;
                    let pgs: Vec<Value> = hp
                        .get("config.network.portgroup")
                        .map(|n| n.children.iter().map(|pg| portgroup(pg, policies)).collect())
                        .unwrap_or_default();
                    out.insert(infra::text(&hp, "name").to_string(), Value::Array(pgs));
                }
                Ok(out)
            })
        })
        .await?;
        Ok(Plan::Done(
            ModuleOutcome::ok().with("hosts_portgroup_info", Value::Object(info)),
        ))
    }
}
