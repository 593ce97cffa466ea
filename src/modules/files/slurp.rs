//! `slurp`.
use async_trait::async_trait;
use serde_json::{Map, Value};
use crate::modules::{Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome};
pub struct SlurpModule;
static DOC: ModuleDoc = ModuleDoc { name: "slurp", aliases: &[], short: "", description: "", free_form: false, options: &[], examples: "", returns: &[], controller_only: false };
#[async_trait]
impl Module for SlurpModule {
    fn doc(&self) -> &'static ModuleDoc { &DOC }
    async fn run(&self, _ctx: &ModuleCtx<'_>, _args: Map<String, Value>) -> Result<ModuleOutcome, ModuleError> { todo!() }
}
