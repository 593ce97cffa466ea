//! The hook through which `crate::inventory_plugins` reads plugin
//! configurations for the inventory loader (see [`install_plugin_loader`]).

/// Reads an inventory plugin configuration (`plugin: constructed`, ...) into
/// the inventory: `crate::inventory_plugins::load`, installed at start-up
/// (see [`install_plugin_loader`]).
pub type PluginLoader =
    fn(&mut super::model::Inventory, &crate::yaml::Node, &crate::yaml::Node) -> Result<(), crate::error::LocError>;

static PLUGIN_LOADER: std::sync::OnceLock<PluginLoader> = std::sync::OnceLock::new();

/// Install the reader of inventory plugin configurations.
pub fn install_plugin_loader(f: PluginLoader) {
    let _ = PLUGIN_LOADER.set(f);
}

pub(crate) fn plugin_loader() -> Option<PluginLoader> {
    PLUGIN_LOADER.get().copied()
}
