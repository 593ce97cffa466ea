//! `vmware_datastore_info` (alias `community.vmware.vmware_datastore_info`):
//! datastores with their capacity and free space, read only.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::client::{Props, Session, VmwareError};
use super::conn::{self, failed, vmware_options};
use super::infra;
use super::inventory;
use super::soap::MoRef;
use crate::modules::args::{de_opt_bool, de_opt_string};
use crate::modules::{Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc};

const OWN_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("name", OptKind::Str, "Only the datastore of this name."),
    infra::DATACENTER,
    OptionDoc::new(
        "cluster",
        OptKind::Str,
        "Only the datastores of this cluster (of `datacenter`, or of any).",
    ),
    OptionDoc::new(
        "gather_nfs_mount_info",
        OptKind::Bool,
        "Accepted for compatibility: `true` is refused (not supported yet).",
    )
    .default("false"),
    OptionDoc::new(
        "gather_vmfs_mount_info",
        OptKind::Bool,
        "Accepted for compatibility: `true` is refused (not supported yet).",
    )
    .default("false"),
    infra::SCHEMA,
    infra::SHOW_TAG,
];
const OPTIONS: &[OptionDoc] = vmware_options!(conn::CONNECTION, OWN_OPTIONS);

static DOC: ModuleDoc = ModuleDoc {
    name: "vmware_datastore_info",
    aliases: &["community.vmware.vmware_datastore_info"],
    short: "Gather information about VMware vSphere datastores",
    description: "Lists datastores (all, of a datacenter, of a cluster, or one by name) with their type, capacity, \
free, provisioned and uncommitted bytes, through the vSphere API from the controller; changes nothing.",
    free_form: false,
    options: OPTIONS,
    examples: "- community.vmware.vmware_datastore_info:\n    hostname: \"{{ vcenter }}\"\n    username: \"{{ vcenter_user }}\"\n    password: \"{{ vcenter_password }}\"\n    datacenter: DC0\n  delegate_to: localhost\n  register: ds\n- debug:\n    msg: \"{{ item.name }}: {{ (item.freeSpace / item.capacity * 100) | round }}% free\"\n  loop: \"{{ ds.datastores }}\"\n",
    returns: &[ReturnDoc {
        name: "datastores",
        description: "list of {name, type, url, accessible, capacity, freeSpace, provisioned, uncommitted, maintenanceMode, multipleHostAccess, datastore_cluster, datacenter, moid} (sizes in bytes; datastore_cluster is `N/A` outside a datastore cluster)",
    }],
    controller_only: true,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default, deserialize_with = "de_opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    datacenter: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    cluster: Option<String>,
    #[serde(default, deserialize_with = "de_opt_bool")]
    gather_nfs_mount_info: Option<bool>,
    #[serde(default, deserialize_with = "de_opt_bool")]
    gather_vmfs_mount_info: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)]
    schema: Option<String>,
    #[serde(default, deserialize_with = "de_opt_bool")]
    show_tag: Option<bool>,
}

/// One datastore as Ansible's `datastores` entries name its fields.
pub fn datastore_facts(dc: &str, moref: &MoRef, p: &Props, storage_pod: Option<&str>) -> Value {
    let sum = p.get("summary");
    let int = |k: &str| sum.and_then(|n| n.int(k)).unwrap_or(0);
    let capacity = int("capacity");
    let free = int("freeSpace");
    let uncommitted = int("uncommitted");
    json!({
        "name": sum.and_then(|n| n.get("name")).unwrap_or(""),
        "type": sum.and_then(|n| n.get("type")).unwrap_or(""),
        "url": sum.and_then(|n| n.get("url")).unwrap_or(""),
        "accessible": sum.and_then(|n| n.bool("accessible")).unwrap_or(false),
        "capacity": capacity,
        "freeSpace": free,
        "uncommitted": uncommitted,
        "provisioned": capacity - free + uncommitted,
        "maintenanceMode": sum.and_then(|n| n.get("maintenanceMode")).unwrap_or("normal"),
        "multipleHostAccess": sum.and_then(|n| n.bool("multipleHostAccess")).unwrap_or(false),
        "datastore_cluster": storage_pod.unwrap_or("N/A"),
        "datacenter": dc,
        "moid": moref.value,
    })
}

/// Every datastore of the datacenter `dc` (optionally only those of cluster
/// `cluster`), with its facts.
pub async fn read_datastores(
    s: &mut Session,
    dc: &inventory::Datacenter,
    cluster: Option<&str>,
) -> Result<Vec<Value>, VmwareError> {
    let only: Option<Vec<MoRef>> = match cluster {
        Some(c) => {
            let cl = s
                .list(&dc.host_folder, "ClusterComputeResource", &["name", "datastore"])
                .await?
                .into_iter()
                .find(|(_, p)| infra::text(p, "name") == c);
            match cl {
                Some((_, p)) => Some(infra::refs(&p, "datastore")),
                None => Some(Vec::new()),
            }
        }
        None => None,
    };
    let all = s
        .list(&dc.datastore_folder, "Datastore", &["summary", "parent"])
        .await?;
    let mut out = Vec::new();
    for (moref, p) in all {
        if only.as_ref().is_some_and(|o| !o.contains(&moref)) {
            continue;
        }
        let pod = match p.get("parent").and_then(|n| n.as_moref()) {
            Some(parent) if parent.kind == "StoragePod" => {
                let pp = s.props(&parent, &["name"]).await?;
                Some(infra::text(&pp, "name").to_string())
            }
            _ => None,
        };
        out.push(datastore_facts(&dc.name, &moref, &p, pod.as_deref()));
    }
    Ok(out)
}

pub struct VmwareDatastoreInfoModule;

#[async_trait]
impl Module for VmwareDatastoreInfoModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, _ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let (ep, args) = conn::split(&DOC, args)?;
        let p: Params =
            serde_json::from_value(Value::Object(args)).map_err(|e| ModuleError::Args(format!("{}: {e}", DOC.name)))?;
        infra::check_show_tag(DOC.name, p.show_tag)?;
        if p.gather_nfs_mount_info.unwrap_or(false) || p.gather_vmfs_mount_info.unwrap_or(false) {
            return Err(ModuleError::Args(format!(
                "{}: gather_nfs_mount_info and gather_vmfs_mount_info are not supported yet",
                DOC.name
            )));
        }
        let list = conn::with_session(&ep, move |s| {
            Box::pin(async move {
                let mut out = Vec::new();
                for dc in infra::datacenters(s, p.datacenter.as_deref()).await.map_err(failed)? {
                    let ds = read_datastores(s, &dc, p.cluster.as_deref()).await.map_err(failed)?;
                    out.extend(
                        ds.into_iter()
                            .filter(|d| p.name.as_ref().is_none_or(|n| d["name"] == n.as_str())),
                    );
                }
                Ok(out)
            })
        })
        .await?;
        Ok(Plan::Done(ModuleOutcome::ok().with("datastores", Value::Array(list))))
    }
}
