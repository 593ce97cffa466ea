//! Loop items: what `loop`, `with_items`/`with_list`, `with_dict`,
//! `with_fileglob` and `with_<lookup>` iterate over, for a task
//! ([`super::task`]) or an include ([`super::walker`]).

use serde_json::Value;

use super::context::PlayHost;
use crate::error::LocError;
use crate::playbook::LoopSpec;

impl PlayHost {
    /// The items of a loop, rendered in `ctx`.
    pub(super) fn loop_items(&self, spec: &LoopSpec, ctx: &minijinja::Value) -> Result<Vec<Value>, LocError> {
        match spec {
            LoopSpec::Items { value, flatten, loc } => {
                let v = self.runner.templar.render_value(value, ctx, loc)?;
                let items = match v {
                    Value::Array(a) => a,
                    Value::Null => Vec::new(),
                    Value::String(s) if !*flatten => {
                        return Err(
                            LocError::new(loc.clone(), format!("loop needs a list, got the string `{s}`"))
                                .with_hint("use `loop: \"{{ var }}\"` with a list variable"),
                        )
                    }
                    other => vec![other],
                };
                if *flatten {
                    let mut out = Vec::new();
                    for i in items {
                        match i {
                            Value::Array(inner) => out.extend(inner),
                            other => out.push(other),
                        }
                    }
                    Ok(out)
                } else {
                    Ok(items)
                }
            }
            LoopSpec::Dict { value, loc } => {
                // The `dict` lookup: its terms are the list given, or the one
                // value; every term must be a mapping, and their items chain.
                let terms = match self.runner.templar.render_value(value, ctx, loc)? {
                    Value::Array(terms) => terms,
                    other => vec![other],
                };
                let mut out = Vec::new();
                for term in terms {
                    match term {
                        Value::Object(m) => {
                            out.extend(m.into_iter().map(|(k, v)| serde_json::json!({"key": k, "value": v})))
                        }
                        other => {
                            return Err(LocError::new(
                                loc.clone(),
                                format!(
                                    "the 'dict' lookup plugin expects a dictionary, got '{}' of type <class '{}'>",
                                    crate::inventory::value::py_str(&other),
                                    crate::template::py_type(&other)
                                ),
                            ))
                        }
                    }
                }
                Ok(out)
            }
            LoopSpec::Fileglob { value, loc } => {
                let v = self.runner.templar.render_value(value, ctx, loc)?;
                let pats: Vec<String> = match v {
                    Value::Array(a) => a.into_iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
                    Value::String(s) => vec![s],
                    _ => Vec::new(),
                };
                // `with_fileglob` is the `fileglob` lookup: the same search paths.
                let search: Vec<std::path::PathBuf> = ctx
                    .get_attr(crate::template::SEARCH_PATHS_VAR)
                    .ok()
                    .and_then(|v| v.try_iter().ok())
                    .map(|it| it.filter_map(|d| d.as_str().map(std::path::PathBuf::from)).collect())
                    .unwrap_or_default();
                let mut out = Vec::new();
                for p in pats {
                    let found = crate::template::fileglob_paths(&p, &search)
                        .map_err(|e| LocError::new(loc.clone(), e.detail().unwrap_or("fileglob failed").to_string()))?;
                    out.extend(found.into_iter().map(Value::String));
                }
                Ok(out)
            }
            LoopSpec::Lookup { name, value, loc } => {
                // As Ansible's `with_<lookup>`: the rendered value, a list of
                // terms (or one term), run through the lookup as a list.
                let terms = match self.runner.templar.render_value(value, ctx, loc)? {
                    Value::Array(a) => a,
                    other => vec![other],
                };
                let terms = crate::template::from_json_value(&Value::Array(terms));
                let ctx =
                    minijinja::value::merge_maps([ctx.clone(), minijinja::context! { __rigger_loop_terms => terms }]);
                match self
                    .runner
                    .templar
                    .eval(&format!("query('{name}', *__rigger_loop_terms)"), &ctx, loc)?
                {
                    Value::Array(a) => Ok(a),
                    Value::Null => Ok(Vec::new()),
                    other => Ok(vec![other]),
                }
            }
        }
    }
}
