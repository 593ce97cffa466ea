//! `setup` called as a task: gathers the same facts as a play's fact
//! gathering (see [`crate::exec::facts`]) and hands them to the executor
//! as the host's facts.

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::modules::{
    ControllerEffect, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "gather_subset",
        OptKind::List,
        "Subsets to gather (`all`, `min`, `hardware`, `network`, `virtual`, ...; `!name` excludes one).",
    )
    .default("all"),
    OptionDoc::new("gather_timeout", OptKind::Int, "Seconds the gathering may take.").default("10"),
    OptionDoc::new(
        "filter",
        OptKind::List,
        "Only return facts whose name (with the `ansible_` prefix) matches one of these shell-style patterns.",
    ),
    OptionDoc::new(
        "fact_path",
        OptKind::Path,
        "Directory of local facts (`*.fact` files: run when executable, else read; JSON or INI) returned as `ansible_local`.",
    )
    .default("/etc/ansible/facts.d"),
];

pub(crate) static DOC: ModuleDoc = ModuleDoc {
    name: "setup",
    aliases: &[],
    short: "Gather facts about the host",
    description: "Gathers the host's facts as a play's fact gathering does (`gather_subset`, within \
`gather_timeout` seconds) and sets them as the host's facts (`ansible_facts.NAME` and `ansible_NAME`); \
with `filter`, only the facts whose `ansible_`-prefixed name matches a pattern are returned and set.",
    free_form: false,
    options: OPTIONS,
    examples: "- setup:\n    gather_subset: ['!all', network]\n    filter: ['ansible_default_ipv4', 'ansible_*_mb']\n",
    returns: &[ReturnDoc {
        name: "ansible_facts",
        description: "the facts, each named with the `ansible_` prefix",
    }],
    controller_only: false,
};

pub(crate) struct Setup;

fn strings(v: Option<&Value>) -> Result<Vec<String>, ModuleError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s
            .split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.trim().to_string()),
                other => Err(ModuleError::Args(format!(
                    "setup: expected a list of strings, got {other}"
                ))),
            })
            .collect(),
        Some(other) => Err(ModuleError::Args(format!(
            "setup: expected a list of strings, got {other}"
        ))),
    }
}

/// Shell-style `fnmatch`: `*`, `?` and `[...]`.
fn fnmatch(pattern: &str, name: &str) -> bool {
    glob::Pattern::new(pattern).is_ok_and(|p| p.matches(name))
}

#[async_trait]
impl Module for Setup {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        if let Some(k) = args.keys().find(|k| !OPTIONS.iter().any(|o| o.name == k.as_str())) {
            return Err(ModuleError::Args(format!("setup: unsupported parameter `{k}`")));
        }
        let fact_path = match args.get("fact_path") {
            None | Some(Value::Null) => super::local_facts::DEFAULT_FACT_PATH.to_string(),
            Some(Value::String(p)) => p.clone(),
            Some(other) => {
                return Err(ModuleError::Args(format!(
                    "setup: fact_path must be a path, got {other}"
                )))
            }
        };
        let subset = strings(args.get("gather_subset"))?;
        let filters = strings(args.get("filter"))?;
        let timeout = match args.get("gather_timeout") {
            None | Some(Value::Null) => 10,
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| ModuleError::Args(format!("setup: gather_timeout must be a number, got {v}")))?,
        };
        let python = match ctx
            .templar
            .eval("ansible_python_interpreter | default('')", ctx.vars, ctx.loc)
        {
            Ok(Value::String(s)) if !s.is_empty() && !s.starts_with("auto") => Some(s),
            Ok(_) => None,
            Err(e) => return Err(ModuleError::Failed(e.to_string())),
        };
        let gathered = tokio::time::timeout(
            std::time::Duration::from_secs(timeout.max(1)),
            crate::exec::facts::gather(
                ctx.conn,
                &subset,
                ctx.become_,
                python.as_deref(),
                ctx.env.to_vec(),
                Some(&fact_path),
            ),
        )
        .await
        .map_err(|_| {
            ModuleError::Failed(format!(
                "setup: gathering facts took longer than {timeout}s (gather_timeout)"
            ))
        })??;
        let facts: Map<String, Value> = gathered
            .into_iter()
            .filter(|(k, _)| filters.is_empty() || filters.iter().any(|f| fnmatch(f, &format!("ansible_{k}"))))
            .collect();
        let prefixed: Map<String, Value> = facts.iter().map(|(k, v)| (format!("ansible_{k}"), v.clone())).collect();
        Ok(Plan::Done(
            ModuleOutcome::ok()
                .with("ansible_facts", Value::Object(prefixed))
                .with_effect(ControllerEffect::Facts(facts)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_shell_patterns_on_prefixed_names() {
        assert!(fnmatch("ansible_*_mb", "ansible_memtotal_mb"));
        assert!(fnmatch("ansible_default_ipv4", "ansible_default_ipv4"));
        assert!(!fnmatch("ansible_default_ipv4", "ansible_default_ipv6"));
        assert_eq!(
            strings(Some(&Value::String("!all, network".into()))).unwrap(),
            vec!["!all", "network"]
        );
    }
}
