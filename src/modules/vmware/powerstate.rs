//! `vmware_guest_powerstate` (alias `community.vmware.vmware_guest_powerstate`):
//! the power state of an existing VM.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::client::Endpoint;
use super::conn::{self, failed, vmware_options};
use super::inventory;
use super::power::{self, PowerAction};
use super::soap::MoRef;
use super::target::{self, Target};
use crate::modules::args::de_opt_bool;
use crate::modules::{
    Change, Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const OWN_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "state",
        OptKind::Str,
        "`powered-on`, `powered-off`, `suspended`, `restarted` (reset; powers on a stopped VM), \
`shutdown-guest` and `reboot-guest` (through VMware Tools), `present` (nothing).",
    )
    .choices(&[
        "powered-on",
        "powered-off",
        "suspended",
        "restarted",
        "shutdown-guest",
        "reboot-guest",
        "present",
    ])
    .default("present"),
    OptionDoc::new(
        "force",
        OptKind::Bool,
        "Accepted for compatibility (power operations are never refused).",
    )
    .default("false"),
];

const OPTIONS: &[OptionDoc] = vmware_options!(conn::CONNECTION, target::TARGET, OWN_OPTIONS);

static DOC: ModuleDoc = ModuleDoc {
    name: "vmware_guest_powerstate",
    aliases: &["community.vmware.vmware_guest_powerstate"],
    short: "Set the power state of a VMware vSphere virtual machine",
    description: "Powers a VM on or off, suspends, resets it, or asks its guest to shut down or reboot, \
through the vSphere API from the controller. A VM already in the requested state is left alone \
(`restarted` and `reboot-guest` always act).",
    free_form: false,
    options: OPTIONS,
    examples: "- community.vmware.vmware_guest_powerstate:\n    hostname: \"{{ vcenter }}\"\n    username: \"{{ vcenter_user }}\"\n    password: \"{{ vcenter_password }}\"\n    datacenter: DC0\n    name: web1\n    state: powered-off\n  delegate_to: localhost\n",
    returns: &[ReturnDoc {
        name: "instance",
        description: "the VM's facts after the task (see vmware_guest_info); in check mode the VM as it is",
    }],
    controller_only: true,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    state: Option<String>,
    #[serde(default, deserialize_with = "de_opt_bool")]
    #[allow(dead_code)]
    force: Option<bool>,
}

pub struct VmwareGuestPowerstateModule;

struct PowerChange {
    ep: Endpoint,
    vm: MoRef,
    action: PowerAction,
}

#[async_trait]
impl Module for VmwareGuestPowerstateModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, _ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let (ep, mut args) = conn::split(&DOC, args)?;
        let t = Target::take(DOC.name, &mut args)?;
        let p: Params =
            serde_json::from_value(Value::Object(args)).map_err(|e| ModuleError::Args(format!("{}: {e}", DOC.name)))?;
        let action = match p.state.as_deref().unwrap_or("present") {
            "powered-on" => Some(PowerAction::On),
            "powered-off" => Some(PowerAction::Off),
            "suspended" => Some(PowerAction::Suspend),
            "restarted" => Some(PowerAction::Restart),
            "shutdown-guest" => Some(PowerAction::ShutdownGuest),
            "reboot-guest" => Some(PowerAction::RebootGuest),
            _ => None,
        };
        let vm = conn::with_session(&ep, |s| Box::pin(async move { t.get(DOC.name, s).await })).await?;
        let out = ModuleOutcome::ok().with("instance", inventory::facts(&vm));
        if vm.template && action.is_some() {
            return Err(ModuleError::Failed(format!(
                "{}: `{}` is a template: it cannot be powered",
                DOC.name, vm.name
            )));
        }
        let Some(action) = action.filter(|a| a.needed(&vm.power)) else {
            return Ok(Plan::Done(out));
        };
        let out = out.with_diff(Diff {
            before_header: vm.name.clone(),
            after_header: vm.name.clone(),
            before: format!("power_state: {}\n", vm.power),
            after: format!("power_state: {}\n", action.resulting_state()),
        });
        Ok(Plan::change(
            out,
            PowerChange {
                ep,
                vm: vm.moref,
                action,
            },
        ))
    }
}

#[async_trait]
impl Change for PowerChange {
    async fn apply(
        self: Box<Self>,
        _ctx: &ModuleCtx<'_>,
        planned: ModuleOutcome,
    ) -> Result<ModuleOutcome, ModuleError> {
        let PowerChange { ep, vm, action } = *self;
        conn::with_session(&ep, move |s| {
            Box::pin(async move {
                power::act(s, &vm, action).await.map_err(failed)?;
                let now = inventory::read_vm(s, &vm).await.map_err(failed)?;
                Ok(planned.with("instance", inventory::facts(&now)))
            })
        })
        .await
    }
}
