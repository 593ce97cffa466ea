//! `vmware_guest_snapshot` (alias `community.vmware.vmware_guest_snapshot`):
//! a VM's snapshots, by name.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::client::Endpoint;
use super::conn::{self, failed, vmware_options};
use super::inventory::{self, Vm};
use super::soap::{MoRef, Xml};
use super::target::{self, Target};
use crate::modules::args::{de_opt_bool, de_opt_string};
use crate::modules::{
    Change, Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const OWN_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "state",
        OptKind::Str,
        "`present` (the snapshot exists), `absent` (it does not), `revert` (the VM goes back to it; always a \
change), `remove_all` (no snapshots).",
    )
    .choices(&["present", "absent", "revert", "remove_all"])
    .default("present"),
    OptionDoc::new(
        "snapshot_name",
        OptKind::Str,
        "The snapshot's name (all states but remove_all).",
    ),
    OptionDoc::new("description", OptKind::Str, "The description of a new snapshot.").default(""),
    OptionDoc::new(
        "memory_dump",
        OptKind::Bool,
        "Include the VM's memory in a new snapshot.",
    )
    .default("false"),
    OptionDoc::new(
        "quiesce",
        OptKind::Bool,
        "Quiesce the guest's file systems (VMware Tools).",
    )
    .default("false"),
    OptionDoc::new(
        "remove_children",
        OptKind::Bool,
        "`absent`: remove the snapshot's children too.",
    )
    .default("false"),
];

const OPTIONS: &[OptionDoc] = vmware_options!(conn::CONNECTION, target::TARGET, OWN_OPTIONS);

static DOC: ModuleDoc = ModuleDoc {
    name: "vmware_guest_snapshot",
    aliases: &["community.vmware.vmware_guest_snapshot"],
    short: "Create, remove and revert to VMware vSphere VM snapshots",
    description: "Manages a VM's snapshots by name through the vSphere API from the controller. \
Several snapshots with the same name are refused for `absent` and `revert` (the name must say which).",
    free_form: false,
    options: OPTIONS,
    examples: "- community.vmware.vmware_guest_snapshot:\n    hostname: \"{{ vcenter }}\"\n    username: \"{{ vcenter_user }}\"\n    password: \"{{ vcenter_password }}\"\n    datacenter: DC0\n    name: web1\n    snapshot_name: before-upgrade\n    description: taken by rigger\n    state: present\n  delegate_to: localhost\n",
    returns: &[ReturnDoc {
        name: "snapshot_results",
        description: "current_snapshot ({name, description, id}) and snapshots (list of {name, description, id, creation_time, state}); in check mode as they are",
    }],
    controller_only: true,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    state: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    snapshot_name: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    description: Option<String>,
    #[serde(default, deserialize_with = "de_opt_bool")]
    memory_dump: Option<bool>,
    #[serde(default, deserialize_with = "de_opt_bool")]
    quiesce: Option<bool>,
    #[serde(default, deserialize_with = "de_opt_bool")]
    remove_children: Option<bool>,
}

fn results(vm: &Vm) -> Value {
    let f = inventory::facts(vm);
    json!({"current_snapshot": f["current_snapshot"], "snapshots": f["snapshots"]})
}

enum Op {
    Create {
        name: String,
        description: String,
        memory: bool,
        quiesce: bool,
    },
    Remove {
        snapshot: MoRef,
        children: bool,
    },
    Revert {
        snapshot: MoRef,
    },
    RemoveAll,
}

struct SnapshotChange {
    ep: Endpoint,
    vm: MoRef,
    op: Op,
}

pub struct VmwareGuestSnapshotModule;

#[async_trait]
impl Module for VmwareGuestSnapshotModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, _ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let (ep, mut args) = conn::split(&DOC, args)?;
        let t = Target::take(DOC.name, &mut args)?;
        let p: Params =
            serde_json::from_value(Value::Object(args)).map_err(|e| ModuleError::Args(format!("{}: {e}", DOC.name)))?;
        let state = p.state.clone().unwrap_or_else(|| "present".into());
        let snap_name = match (&p.snapshot_name, state.as_str()) {
            (Some(n), _) => n.clone(),
            (None, "remove_all") => String::new(),
            (None, _) => {
                return Err(ModuleError::Args(format!(
                    "{}: snapshot_name is required for state {state}",
                    DOC.name
                )))
            }
        };
        let vm = conn::with_session(&ep, |s| Box::pin(async move { t.get(DOC.name, s).await })).await?;
        let out = ModuleOutcome::ok().with("snapshot_results", results(&vm));
        let named: Vec<&inventory::Snapshot> = vm.snapshots.iter().filter(|s| s.name == snap_name).collect();
        let one = || match named.as_slice() {
            [s] => Ok(Some(s.moref.clone())),
            [] => Ok(None),
            _ => Err(ModuleError::Failed(format!(
                "{}: `{}` has {} snapshots named `{snap_name}`: remove or rename the others first",
                DOC.name,
                vm.name,
                named.len()
            ))),
        };
        let names = |list: &[&inventory::Snapshot]| list.iter().map(|s| format!("- {}\n", s.name)).collect::<String>();
        let all: Vec<&inventory::Snapshot> = vm.snapshots.iter().collect();
        let (op, after) = match state.as_str() {
            "present" if named.is_empty() => {
                let mut after = names(&all);
                after.push_str(&format!("- {snap_name}\n"));
                (
                    Op::Create {
                        name: snap_name.clone(),
                        description: p.description.clone().unwrap_or_default(),
                        memory: p.memory_dump.unwrap_or(false),
                        quiesce: p.quiesce.unwrap_or(false),
                    },
                    after,
                )
            }
            "absent" => match one()? {
                Some(snapshot) => {
                    let keep: Vec<&inventory::Snapshot> = all.iter().copied().filter(|s| s.name != snap_name).collect();
                    (
                        Op::Remove {
                            snapshot,
                            children: p.remove_children.unwrap_or(false),
                        },
                        names(&keep),
                    )
                }
                None => return Ok(Plan::Done(out)),
            },
            "revert" => match one()? {
                Some(snapshot) => (
                    Op::Revert { snapshot },
                    format!("{}reverted to: {snap_name}\n", names(&all)),
                ),
                None => {
                    return Err(ModuleError::Failed(format!(
                        "{}: `{}` has no snapshot named `{snap_name}` to revert to",
                        DOC.name, vm.name
                    )))
                }
            },
            "remove_all" if !all.is_empty() => (Op::RemoveAll, String::new()),
            _ => return Ok(Plan::Done(out)),
        };
        let out = out.with_diff(Diff {
            before_header: format!("{} snapshots", vm.name),
            after_header: format!("{} snapshots", vm.name),
            before: names(&all),
            after,
        });
        Ok(Plan::change(out, SnapshotChange { ep, vm: vm.moref, op }))
    }
}

#[async_trait]
impl Change for SnapshotChange {
    async fn apply(
        self: Box<Self>,
        _ctx: &ModuleCtx<'_>,
        planned: ModuleOutcome,
    ) -> Result<ModuleOutcome, ModuleError> {
        let SnapshotChange { ep, vm, op } = *self;
        conn::with_session(&ep, move |s| {
            Box::pin(async move {
                match op {
                    Op::Create {
                        name,
                        description,
                        memory,
                        quiesce,
                    } => {
                        let mut x = Xml::new();
                        x.text("name", &name)
                            .text("description", &description)
                            .val("memory", memory)
                            .val("quiesce", quiesce);
                        s.run_task("CreateSnapshot_Task", &vm, &x.into_string(), "creating the snapshot")
                            .await
                            .map_err(failed)?;
                    }
                    Op::Remove { snapshot, children } => {
                        let mut x = Xml::new();
                        x.val("removeChildren", children);
                        s.run_task(
                            "RemoveSnapshot_Task",
                            &snapshot,
                            &x.into_string(),
                            "removing the snapshot",
                        )
                        .await
                        .map_err(failed)?;
                    }
                    Op::Revert { snapshot } => {
                        s.run_task("RevertToSnapshot_Task", &snapshot, "", "reverting to the snapshot")
                            .await
                            .map_err(failed)?;
                    }
                    Op::RemoveAll => {
                        s.run_task("RemoveAllSnapshots_Task", &vm, "", "removing all snapshots")
                            .await
                            .map_err(failed)?;
                    }
                }
                let now = inventory::read_vm(s, &vm).await.map_err(failed)?;
                Ok(planned.with("snapshot_results", results(&now)))
            })
        })
        .await
    }
}
