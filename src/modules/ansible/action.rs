//! Action plugins: Python that Ansible runs on the controller for a task
//! (`action_plugins/NAME.py` beside a playbook or role, a collection's
//! `plugins/action/`). rigger runs one through the template plugin bridge
//! (one ansible-core process per run, see `crate::template`'s plugins):
//! the plugin gets the task's arguments (`self._task.args`), its variables
//! (`task_vars`), ActionBase's controller-side helpers and `super().run()`;
//! what would act on the host through Ansible's connection
//! (`_execute_module`, `_low_level_execute_command`, file transfers) fails,
//! naming the plugin and the method.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{controller, register_module, shape};
use crate::modules::{Module, ModuleCtx, ModuleDoc, ModuleError, Plan};

struct ActionPlugin {
    doc: &'static ModuleDoc,
    name: String,
    path: PathBuf,
}

/// The `short` of every action plugin's [`ModuleDoc`].
const ACTION_PLUGIN_SHORT: &str = "Ansible action plugin";

/// Whether `doc` is an action plugin's (see [`action_plugin`]).
pub fn is_action_plugin(doc: &ModuleDoc) -> bool {
    doc.short == ACTION_PLUGIN_SHORT
}

/// The action plugin `name` in `path`, as a module of the run.
pub fn action_plugin(name: &str, path: &Path) -> &'static Arc<dyn Module> {
    let key = format!("action:{}", path.display());
    register_module(&key, name, || {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        // `supports_raw_params = True`: the task may give it free-form text.
        let free_form = text
            .lines()
            .any(|l| l.trim().replace(' ', "") == "supports_raw_params=True");
        let doc: &'static ModuleDoc = Box::leak(Box::new(ModuleDoc {
            name: Box::leak(name.to_string().into_boxed_str()),
            aliases: &[],
            short: ACTION_PLUGIN_SHORT,
            description: Box::leak(
                format!(
                    "Ansible's action plugin at {}, run on the controller with ansible-core through \
                     rigger's plugin bridge.",
                    path.display()
                )
                .into_boxed_str(),
            ),
            free_form,
            options: &[],
            examples: "",
            returns: &[],
            controller_only: true,
        }));
        Arc::new(ActionPlugin {
            doc,
            name: name.to_string(),
            path: path.to_path_buf(),
        })
    })
}

#[async_trait]
impl Module for ActionPlugin {
    fn doc(&self) -> &'static ModuleDoc {
        self.doc
    }

    /// The plugin decides itself what check mode means: its run is the
    /// query, and its result final.
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let vars = crate::template::context_json(ctx.vars);
        let result = crate::template::run_action(&self.name, &self.path, args, vars, ctx.check_mode, ctx.diff_mode)
            .map_err(|e| ModuleError::Failed(format!("{}: {e}", ctx.loc)))?;
        let version = controller().as_ref().map(|c| c.version.clone()).unwrap_or_default();
        Ok(Plan::Done(shape(result, &version)))
    }

    fn creates_files(&self) -> bool {
        false
    }
}
