//! Templating with minijinja, made to behave like Ansible's Jinja:
//! strict undefined, Ansible's filters/tests/lookups, and native types for
//! strings that are a single expression (`"{{ port }}"` stays an integer).

use std::path::PathBuf;

use minijinja::Environment;
use serde_json::Value;

use crate::error::LocError;
use crate::yaml::Loc;

/// A configured template environment, shared by every host of a run.
pub struct Templar {
    env: Environment<'static>,
}

impl Default for Templar {
    fn default() -> Self {
        Self::new()
    }
}

impl Templar {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        Templar { env }
    }

    /// Render a string. A string that is exactly one `{{ expr }}` returns the
    /// expression's native value; otherwise the rendered text.
    pub fn render_str(&self, s: &str, ctx: &minijinja::Value, loc: &Loc) -> Result<Value, LocError> {
        if !s.contains("{{") && !s.contains("{%") {
            return Ok(Value::String(s.to_string()));
        }
        let out = self
            .env
            .render_str(s, ctx)
            .map_err(|e| LocError::new(loc.clone(), format!("template error: {e}")))?;
        Ok(Value::String(out))
    }

    /// Render every string inside a JSON value.
    pub fn render_value(&self, v: &Value, ctx: &minijinja::Value, loc: &Loc) -> Result<Value, LocError> {
        Ok(match v {
            Value::String(s) => self.render_str(s, ctx, loc)?,
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| self.render_value(x, ctx, loc))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(o) => {
                let mut m = serde_json::Map::with_capacity(o.len());
                for (k, x) in o {
                    m.insert(k.clone(), self.render_value(x, ctx, loc)?);
                }
                Value::Object(m)
            }
            other => other.clone(),
        })
    }

    /// Evaluate a bare expression (`when:`, `until:`, `that:`), no braces.
    pub fn eval(&self, expr: &str, ctx: &minijinja::Value, loc: &Loc) -> Result<Value, LocError> {
        let e = self
            .env
            .compile_expression(expr)
            .map_err(|e| LocError::new(loc.clone(), format!("invalid expression `{expr}`: {e}")))?;
        let v = e
            .eval(ctx)
            .map_err(|e| LocError::new(loc.clone(), format!("error evaluating `{expr}`: {e}")))?;
        serde_json::to_value(&v).map_err(|e| LocError::new(loc.clone(), e.to_string()))
    }

    /// Evaluate a condition to a boolean.
    pub fn eval_bool(&self, expr: &str, ctx: &minijinja::Value, loc: &Loc) -> Result<bool, LocError> {
        Ok(crate::modules::args::truthy(&self.eval(expr, ctx, loc)?))
    }

    /// Render a template file (the `template` module, `lookup('template')`).
    /// Errors name the template file and line.
    pub fn render_file(&self, path: &std::path::Path, ctx: &minijinja::Value) -> Result<String, LocError> {
        let src = std::fs::read_to_string(path).map_err(|e| {
            LocError::new(
                Loc::synthetic(&path.display().to_string()),
                format!("cannot read template: {e}"),
            )
        })?;
        self.env.render_str(&src, ctx).map_err(|e| {
            LocError::new(
                Loc::new(path.display().to_string(), e.line().unwrap_or(0) as u32, 1),
                format!("template error: {e}"),
            )
        })
    }

    /// Directories searched by lookups (`file`, `template`) — set per task.
    pub fn search_paths_var() -> &'static str {
        "__rigger_search_paths"
    }
}

/// Search paths, as stored in a template context.
pub fn search_paths(paths: &[PathBuf]) -> Value {
    Value::Array(paths.iter().map(|p| Value::String(p.display().to_string())).collect())
}

/// The value of `{{ omit }}`: an argument rendered to this is removed.
pub const OMIT: &str = "__omit_place_holder__rigger__";
