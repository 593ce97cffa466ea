//! Loop items: what `loop`, `with_items`/`with_list`, `with_dict`,
//! `with_fileglob` and `with_sequence` iterate over, for a task
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
            LoopSpec::Dict { value, loc } => match self.runner.templar.render_value(value, ctx, loc)? {
                Value::Object(m) => Ok(m
                    .into_iter()
                    .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
                    .collect()),
                _ => Err(LocError::new(loc.clone(), "with_dict needs a mapping")),
            },
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
            LoopSpec::Sequence { spec, loc } => sequence(spec).map_err(|m| LocError::new(loc.clone(), m)),
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

/// `with_sequence: start=1 end=5 stride=1 format=web%02d` (or `count=`).
fn sequence(spec: &str) -> Result<Vec<Value>, String> {
    let mut start = 1i64;
    let mut end: Option<i64> = None;
    let mut stride = 1i64;
    let mut format: Option<String> = None;
    for w in spec.split_whitespace() {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| format!("with_sequence: expected key=value, got `{w}`"))?;
        let num = || {
            v.parse::<i64>()
                .map_err(|_| format!("with_sequence: `{k}` must be a number"))
        };
        match k {
            "start" => start = num()?,
            "end" => end = Some(num()?),
            "count" => end = Some(start + num()? - 1),
            "stride" => stride = num()?,
            "format" => format = Some(v.to_string()),
            _ => return Err(format!("with_sequence: unknown option `{k}`")),
        }
    }
    let end = end.ok_or("with_sequence needs `end` or `count`")?;
    if stride == 0 {
        return Err("with_sequence: stride must not be 0".into());
    }
    let mut out = Vec::new();
    let mut i = start;
    while (stride > 0 && i <= end) || (stride < 0 && i >= end) {
        out.push(Value::String(match &format {
            Some(f) => crate::template::sequence_format(f, i),
            None => i.to_string(),
        }));
        i += stride;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences() {
        assert_eq!(
            sequence("start=1 end=3").unwrap(),
            vec![Value::from("1"), Value::from("2"), Value::from("3")]
        );
        assert_eq!(
            sequence("count=2 format=web%02d").unwrap(),
            vec![Value::from("web01"), Value::from("web02")]
        );
        // Python's `%` directives of any integer kind, as the lookup formats them.
        assert_eq!(
            sequence("start=9 end=10 format=%02x").unwrap(),
            vec![Value::from("09"), Value::from("0a")]
        );
        assert!(sequence("start=1").is_err());
    }
}
