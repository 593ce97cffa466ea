//! The options that name the VM a task works on (`name`, `uuid`, `moid`,
//! `use_instance_uuid`, `name_match`, `datacenter`, `folder`), shared by the
//! modules that act on an existing VM.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::client::Session;
use super::conn::failed;
use super::inventory::{self, Vm, VmSelector};
use crate::modules::args::{de_opt_bool, de_opt_string};
use crate::modules::{ModuleError, OptKind, OptionDoc};

pub const NAME: OptionDoc = OptionDoc::new("name", OptKind::Str, "The VM's name (or give `uuid` or `moid`).");
pub const NAME_MATCH: OptionDoc = OptionDoc::new(
    "name_match",
    OptKind::Str,
    "Which VM to use when several have the name.",
)
.choices(&["first", "last"])
.default("first");
pub const UUID: OptionDoc = OptionDoc::new(
    "uuid",
    OptKind::Str,
    "The VM's BIOS UUID (or instance UUID with `use_instance_uuid`).",
);
pub const MOID: OptionDoc = OptionDoc::new("moid", OptKind::Str, "The VM's managed object id (`vm-42`).");
pub const USE_INSTANCE_UUID: OptionDoc =
    OptionDoc::new("use_instance_uuid", OptKind::Bool, "`uuid` is the instance UUID.").default("false");
pub const DATACENTER: OptionDoc =
    OptionDoc::new("datacenter", OptKind::Str, "The datacenter.").default("ha-datacenter");
pub const FOLDER: OptionDoc = OptionDoc::new(
    "folder",
    OptKind::Str,
    "Accepted for compatibility: the VM is looked up by name in the whole datacenter.",
);

/// The options that name an existing VM, in the order the modules document them.
pub const TARGET: &[OptionDoc] = &[NAME, NAME_MATCH, UUID, MOID, USE_INSTANCE_UUID, DATACENTER, FOLDER];

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(default, deserialize_with = "de_opt_string")]
    pub name: Option<String>,
    #[serde(default)]
    pub name_match: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub moid: Option<String>,
    #[serde(default, deserialize_with = "de_opt_bool")]
    pub use_instance_uuid: Option<bool>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub datacenter: Option<String>,
    #[serde(default)]
    pub folder: Option<String>,
}

impl Target {
    /// Take the target's options out of `args` (already normalized).
    pub fn take(module: &str, args: &mut Map<String, Value>) -> Result<Target, ModuleError> {
        let mut m = Map::new();
        for o in TARGET {
            if let Some(v) = args.remove(o.name) {
                if !v.is_null() {
                    m.insert(o.name.to_string(), v);
                }
            }
        }
        let t: Target =
            serde_json::from_value(Value::Object(m)).map_err(|e| ModuleError::Args(format!("{module}: {e}")))?;
        if t.name.is_none() && t.uuid.is_none() && t.moid.is_none() {
            return Err(ModuleError::Args(format!("{module}: give name, uuid or moid")));
        }
        Ok(t)
    }

    /// How the VM is named in messages.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .or_else(|| self.uuid.clone())
            .or_else(|| self.moid.clone())
            .unwrap_or_default()
    }

    /// The VM, if it exists.
    pub async fn find(&self, s: &mut Session) -> Result<Option<Vm>, ModuleError> {
        let dc = inventory::datacenter(s, self.datacenter.as_deref().unwrap_or("ha-datacenter"))
            .await
            .map_err(failed)?;
        let sel = VmSelector {
            name: self.name.as_deref(),
            uuid: self.uuid.as_deref(),
            moid: self.moid.as_deref(),
            use_instance_uuid: self.use_instance_uuid.unwrap_or(false),
            name_match: self.name_match.as_deref().unwrap_or("first"),
        };
        inventory::find_vm(s, &dc, &sel).await.map_err(failed)
    }

    /// The VM; a missing one is the task's failure.
    pub async fn get(&self, module: &str, s: &mut Session) -> Result<Vm, ModuleError> {
        self.find(s).await?.ok_or_else(|| {
            ModuleError::Failed(format!(
                "{module}: VM `{}` not found in datacenter `{}`",
                self.label(),
                self.datacenter.as_deref().unwrap_or("ha-datacenter")
            ))
        })
    }
}
