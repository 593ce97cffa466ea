//! `fetch`.
use async_trait::async_trait;
use serde_json::{Map, Value};
use crate::modules::{Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome};
pub struct FetchModule;
static DOC: ModuleDoc = ModuleDoc { name: "fetch", aliases: &[], short: "", description: "", free_form: false, options: &[], examples: "", returns: &[], controller_only: false };
#[async_trait]
impl Module for FetchModule {
    fn doc(&self) -> &'static ModuleDoc { &DOC }
    async fn run(&self, _ctx: &ModuleCtx<'_>, _args: Map<String, Value>) -> Result<ModuleOutcome, ModuleError> { todo!() }
}
