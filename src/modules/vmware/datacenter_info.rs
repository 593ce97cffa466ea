//! `vmware_datacenter_info` (alias `community.vmware.vmware_datacenter_info`):
//! the datacenters of a vCenter, read only.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::conn::{self, failed, vmware_options};
use super::infra;
use crate::modules::args::{de_opt_bool, de_opt_string};
use crate::modules::{Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptionDoc, Plan, ReturnDoc};

const OWN_OPTIONS: &[OptionDoc] = &[infra::DATACENTER, infra::SCHEMA, infra::SHOW_TAG];
const OPTIONS: &[OptionDoc] = vmware_options!(conn::CONNECTION, OWN_OPTIONS);

static DOC: ModuleDoc = ModuleDoc {
    name: "vmware_datacenter_info",
    aliases: &["community.vmware.vmware_datacenter_info"],
    short: "Gather information about VMware vSphere datacenters",
    description: "Lists the datacenters of a vCenter (or the one named by `datacenter`) through the vSphere API \
from the controller; changes nothing.",
    free_form: false,
    options: OPTIONS,
    examples: "- community.vmware.vmware_datacenter_info:\n    hostname: \"{{ vcenter }}\"\n    username: \"{{ vcenter_user }}\"\n    password: \"{{ vcenter_password }}\"\n  delegate_to: localhost\n  register: dcs\n- debug:\n    msg: \"{{ dcs.datacenter_info | map(attribute='name') | list }}\"\n",
    returns: &[ReturnDoc {
        name: "datacenter_info",
        description: "list of {name, moid, config_status, overall_status}",
    }],
    controller_only: true,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default, deserialize_with = "de_opt_string")]
    datacenter: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    schema: Option<String>,
    #[serde(default, deserialize_with = "de_opt_bool")]
    show_tag: Option<bool>,
}

pub struct VmwareDatacenterInfoModule;

#[async_trait]
impl Module for VmwareDatacenterInfoModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, _ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let (ep, args) = conn::split(&DOC, args)?;
        let p: Params =
            serde_json::from_value(Value::Object(args)).map_err(|e| ModuleError::Args(format!("{}: {e}", DOC.name)))?;
        infra::check_show_tag(DOC.name, p.show_tag)?;
        let info = conn::with_session(&ep, move |s| {
            Box::pin(async move {
                let dcs = infra::datacenters(s, p.datacenter.as_deref()).await.map_err(failed)?;
                let mut out = Vec::new();
                for dc in dcs {
                    let props = s
                        .props(&dc.moref, &["configStatus", "overallStatus"])
                        .await
                        .map_err(failed)?;
                    out.push(json!({
                        "name": dc.name,
                        "moid": dc.moref.value,
                        "config_status": infra::text(&props, "configStatus"),
                        "overall_status": infra::text(&props, "overallStatus"),
                    }));
                }
                Ok(out)
            })
        })
        .await?;
        Ok(Plan::Done(
            ModuleOutcome::ok().with("datacenter_info", Value::Array(info)),
        ))
    }
}
