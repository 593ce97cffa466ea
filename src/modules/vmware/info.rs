//! `vmware_guest_info` (alias `community.vmware.vmware_guest_info`): the
//! facts of one VM, read only.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::conn::{self, vmware_options};
use super::inventory;
use super::target::{self, Target};
use crate::modules::{Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc};

const OWN_OPTIONS: &[OptionDoc] = &[OptionDoc::new(
    "schema",
    OptKind::Str,
    "Only `summary` (Ansible's default) is supported.",
)
.choices(&["summary"])
.default("summary")];

const OPTIONS: &[OptionDoc] = vmware_options!(conn::CONNECTION, target::TARGET, OWN_OPTIONS);

static DOC: ModuleDoc = ModuleDoc {
    name: "vmware_guest_info",
    aliases: &["community.vmware.vmware_guest_info"],
    short: "Gather facts about a VMware vSphere virtual machine",
    description: "Reads (never changes) one VM through the vSphere API from the controller: its power state, \
CPU, memory, guest OS, UUIDs, network adapters, disks and snapshots. A VM that does not exist fails the task.",
    free_form: false,
    options: OPTIONS,
    examples: "- community.vmware.vmware_guest_info:\n    hostname: \"{{ vcenter }}\"\n    username: \"{{ vcenter_user }}\"\n    password: \"{{ vcenter_password }}\"\n    datacenter: DC0\n    name: web1\n  delegate_to: localhost\n  register: vm\n- debug:\n    msg: \"{{ vm.instance.hw_power_status }} {{ vm.instance.hw_memtotal_mb }} MB\"\n",
    returns: &[ReturnDoc {
        name: "instance",
        description: "hw_name, hw_power_status, hw_guest_id, hw_processor_count, hw_cores_per_socket, hw_memtotal_mb, hw_product_uuid, instance_uuid, hw_is_template, hw_interfaces and hw_eth0..., disks, snapshots, current_snapshot, moid",
    }],
    controller_only: true,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    #[allow(dead_code)]
    schema: Option<String>,
}

pub struct VmwareGuestInfoModule;

#[async_trait]
impl Module for VmwareGuestInfoModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, _ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let (ep, mut args) = conn::split(&DOC, args)?;
        let t = Target::take(DOC.name, &mut args)?;
        let _p: Params =
            serde_json::from_value(Value::Object(args)).map_err(|e| ModuleError::Args(format!("{}: {e}", DOC.name)))?;
        let vm = conn::with_session(&ep, |s| Box::pin(async move { t.get(DOC.name, s).await })).await?;
        Ok(Plan::Done(ModuleOutcome::ok().with("instance", inventory::facts(&vm))))
    }
}
