//! `raw`: send a command line over the connection as it is.

use std::time::Instant;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::output::{shape_output, timestamp, COMMON_RETURNS};
use crate::connection::sh_quote;
use crate::modules::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan,
};
use crate::shell::sh_quote_command;

static RAW_DOC: ModuleDoc = ModuleDoc {
    name: "raw",
    aliases: &[],
    short: "Run a command line over the connection as it is",
    description: "Sends the text to the host's login shell without any processing. Useful to \
bootstrap hosts. Skipped in check mode.",
    free_form: true,
    options: &[OptionDoc::new(
        "executable",
        OptKind::Path,
        "Shell to run the command with: the path of a program, passed quoted. The command itself (the \
free-form text) is shell code by design.",
    )],
    examples: "- raw: test -e /usr/bin/python3 || apt-get install -y python3-minimal\n",
    returns: COMMON_RETURNS,
    controller_only: false,
};

pub(super) struct RawModule;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParams {
    #[serde(default)]
    _raw_params: Option<String>,
    executable: Option<String>,
}

#[async_trait]
impl Module for RawModule {
    fn doc(&self) -> &'static ModuleDoc {
        &RAW_DOC
    }

    /// Nothing tells what the text does: the plan reports it skipped (as
    /// check mode shows it) and [`RunRaw`] runs it.
    async fn query(&self, _ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: RawParams = parse_params(&RAW_DOC, args)?;
        let text = p
            ._raw_params
            .ok_or_else(|| ModuleError::Args("raw: no command given".into()))?;
        let line = match &p.executable {
            Some(exe) => format!("{} -c {}", sh_quote_command(exe), sh_quote(&text)),
            None => text.clone(),
        };
        let planned = ModuleOutcome {
            skipped: true,
            msg: Some("skipped in check mode".into()),
            ..Default::default()
        };
        // Not `Plan::change`: the planned (check mode) outcome is a skip, not a change.
        Ok(Plan::Change(planned, Box::new(RunRaw { text, line })))
    }
}

/// Send a `raw` command line.
struct RunRaw {
    /// The text as given (the result's `cmd`).
    text: String,
    /// What is sent: the text, or `EXECUTABLE -c TEXT`.
    line: String,
}

#[async_trait]
impl Change for RunRaw {
    async fn apply(
        self: Box<Self>,
        ctx: &ModuleCtx<'_>,
        _planned: ModuleOutcome,
    ) -> Result<ModuleOutcome, ModuleError> {
        let start = Instant::now();
        let ts = timestamp();
        let out = ctx.run_user(&self.line, None).await?;
        // raw keeps stdout as is (no stripping), like Ansible.
        Ok(shape_output(&self.text, out, false, ctx.max_output, start, ts))
    }
}
