//! `vmware_cluster_info` (alias `community.vmware.vmware_cluster_info`):
//! the clusters of a datacenter (or one cluster), read only.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::conn::{self, failed, vmware_options};
use super::infra;
use crate::modules::args::{de_opt_bool, de_opt_string};
use crate::modules::{Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc};

const OWN_OPTIONS: &[OptionDoc] = &[
    infra::DATACENTER,
    OptionDoc::new(
        "cluster_name",
        OptKind::Str,
        "Only this cluster (give it or `datacenter`).",
    ),
    infra::SCHEMA,
    infra::SHOW_TAG,
];
const OPTIONS: &[OptionDoc] = vmware_options!(conn::CONNECTION, OWN_OPTIONS);

static DOC: ModuleDoc = ModuleDoc {
    name: "vmware_cluster_info",
    aliases: &["community.vmware.vmware_cluster_info"],
    short: "Gather information about VMware vSphere clusters",
    description: "Reads the clusters of `datacenter`, or the cluster `cluster_name`, through the vSphere API from \
the controller: their hosts, HA, DRS and vSAN settings and a resource summary; changes nothing. \
`resource_summary` is computed from the cluster's summary (capacity), its hosts' quick statistics (use) \
and its datastores (storage).",
    free_form: false,
    options: OPTIONS,
    examples: "- community.vmware.vmware_cluster_info:\n    hostname: \"{{ vcenter }}\"\n    username: \"{{ vcenter_user }}\"\n    password: \"{{ vcenter_password }}\"\n    datacenter: DC0\n  delegate_to: localhost\n  register: clusters\n- debug:\n    msg: \"{{ clusters.clusters.DC0_C0.hosts | map(attribute='name') | list }}\"\n",
    returns: &[ReturnDoc {
        name: "clusters",
        description: "by cluster name: datacenter, moid, hosts ([{name, folder}]), enable_ha, ha_failover_level, ha_host_monitoring, ha_vm_monitoring, ha_admission_control_enabled, enabled_drs, drs_default_vm_behavior, drs_enable_vm_behavior_overrides, drs_vmotion_rate, enabled_vsan, resource_summary (cpuCapacityMHz, cpuUsedMHz, memCapacityMB, memUsedMB, storageCapacityMB, storageUsedMB)",
    }],
    controller_only: true,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default, deserialize_with = "de_opt_string")]
    datacenter: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    cluster_name: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    schema: Option<String>,
    #[serde(default, deserialize_with = "de_opt_bool")]
    show_tag: Option<bool>,
}

pub struct VmwareClusterInfoModule;

#[async_trait]
impl Module for VmwareClusterInfoModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, _ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let (ep, args) = conn::split(&DOC, args)?;
        let p: Params =
            serde_json::from_value(Value::Object(args)).map_err(|e| ModuleError::Args(format!("{}: {e}", DOC.name)))?;
        infra::check_show_tag(DOC.name, p.show_tag)?;
        if p.datacenter.is_none() && p.cluster_name.is_none() {
            return Err(ModuleError::Args(format!(
                "{}: give datacenter or cluster_name",
                DOC.name
            )));
        }
        let clusters = conn::with_session(&ep, move |s| {
            Box::pin(async move {
                let mut out = Map::new();
                for dc in infra::datacenters(s, p.datacenter.as_deref()).await.map_err(failed)? {
                    let all = s
                        .list(
                            &dc.host_folder,
                            "ClusterComputeResource",
                            &["name", "host", "datastore", "configurationEx", "summary"],
                        )
                        .await
                        .map_err(failed)?;
                    for (moref, props) in all {
                        let name = infra::text(&props, "name").to_string();
                        if p.cluster_name.as_ref().is_some_and(|c| *c != name) {
                            continue;
                        }
                        let mut hosts = Vec::new();
                        let (mut cpu_used, mut mem_used) = (0i64, 0i64);
                        for h in infra::refs(&props, "host") {
                            let hp = s
                                .props(&h, &["name", "summary.quickStats"])
                                .await
                                .map_err(failed)?;
                            let qs = hp.get("summary.quickStats");
                            cpu_used += qs.and_then(|q| q.int("overallCpuUsage")).unwrap_or(0);
                            mem_used += qs.and_then(|q| q.int("overallMemoryUsage")).unwrap_or(0);
                            hosts.push(json!({
                                "name": infra::text(&hp, "name"),
                                "folder": format!("/{}/host/{}", dc.name, name),
                            }));
                        }
                        let (mut ds_cap, mut ds_free) = (0i64, 0i64);
                        for d in infra::refs(&props, "datastore") {
                            let dp = s.props(&d, &["summary"]).await.map_err(failed)?;
                            let sum = dp.get("summary");
                            ds_cap += sum.and_then(|n| n.int("capacity")).unwrap_or(0);
                            ds_free += sum.and_then(|n| n.int("freeSpace")).unwrap_or(0);
                        }
                        let cfg = props.get("configurationEx");
                        let sum = props.get("summary");
                        let mib = 1024 * 1024;
                        out.insert(
                            name.clone(),
                            json!({
                                "datacenter": dc.name,
                                "moid": moref.value,
                                "hosts": hosts,
                                "enable_ha": infra::flag(cfg, "dasConfig/enabled"),
                                "ha_failover_level": infra::num(cfg, "dasConfig/failoverLevel"),
                                "ha_host_monitoring": cfg.and_then(|c| c.get("dasConfig/hostMonitoring")),
                                "ha_vm_monitoring": cfg.and_then(|c| c.get("dasConfig/vmMonitoring")),
                                "ha_admission_control_enabled": infra::flag(cfg, "dasConfig/admissionControlEnabled"),
                                "enabled_drs": infra::flag(cfg, "drsConfig/enabled"),
                                "drs_default_vm_behavior": cfg.and_then(|c| c.get("drsConfig/defaultVmBehavior")),
                                "drs_enable_vm_behavior_overrides": infra::flag(cfg, "drsConfig/enableVmBehaviorOverrides"),
                                "drs_vmotion_rate": infra::num(cfg, "drsConfig/vmotionRate"),
                                "enabled_vsan": cfg.and_then(|c| c.bool("vsanConfigInfo/enabled")).unwrap_or(false),
                                "resource_summary": {
                                    "cpuCapacityMHz": sum.and_then(|n| n.int("totalCpu")).unwrap_or(0),
                                    "cpuUsedMHz": cpu_used,
                                    "memCapacityMB": sum.and_then(|n| n.int("totalMemory")).unwrap_or(0) / mib,
                                    "memUsedMB": mem_used,
                                    "storageCapacityMB": ds_cap / mib,
                                    "storageUsedMB": (ds_cap - ds_free) / mib,
                                },
                            }),
                        );
                    }
                }
                if let Some(c) = &p.cluster_name {
                    if out.is_empty() {
                        return Err(ModuleError::Failed(format!("{}: cluster `{c}` not found", DOC.name)));
                    }
                }
                Ok(out)
            })
        })
        .await?;
        Ok(Plan::Done(
            ModuleOutcome::ok().with("clusters", Value::Object(clusters)),
        ))
    }
}
