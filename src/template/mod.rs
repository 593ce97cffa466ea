//! Templating with minijinja, made to behave like Ansible's Jinja:
//! strict undefined, Ansible's filters/tests/lookups, and native types for
//! strings that are a single expression (`"{{ port }}"` stays an integer).
//!
//! Undefined handling needs two environments. Ansible's `AnsibleUndefined` is
//! strict (printing, iterating or comparing an undefined variable is an error)
//! but lets attribute lookups chain through it, so `x.y is defined` and
//! `x.y | default(1)` work when `x` itself is undefined. minijinja offers
//! either strict or chainable, not both, so everything runs in the strict
//! environment first and a template that failed on an undefined value while
//! testing for definedness is retried once in a chainable one whose formatter
//! still refuses to print undefined values.

mod crypt;
mod datetime;
mod file_source;
mod filters;
mod ini;
mod jtests;
mod lookups;
mod managed;
mod netaddr;
mod output_nodes;
mod overrides;
mod plugins;
mod pyjson;
mod pymethods;
mod pystd;
pub mod resolve;
mod syntax;
pub mod taint;
mod value;
pub(crate) mod vaulted;
mod yamlout;
pub(crate) use yamlout::dump as yaml_dump;

#[cfg(test)]
mod tests;

pub use lookups::{fileglob_paths, LOOKUP_NAMES, LOOKUP_SUBDIR_VAR, SEARCH_PATHS_VAR};
pub use plugins::{
    add_role_dir as add_plugin_role_dir, context_json, lookup_exists as python_lookup_exists, run_action,
    shutdown as shutdown_plugins,
};
pub(crate) use pystd::py_type;
pub use syntax::has_template_syntax;
pub(crate) use value::from_json_value;
pub use value::{parse_bool, truthy};

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use minijinja::{Environment, Error as JinjaError, ErrorKind, UndefinedBehavior};
use serde_json::Value;

use crate::error::LocError;
use crate::yaml::Loc;

/// The placeholder `{{ omit }}` renders to; the engine drops arguments whose
/// value is exactly this string. It holds a random part chosen once per run,
/// as Ansible's does: a fixed one could be printed by a host to make an
/// argument vanish.
pub fn omit() -> &'static str {
    static OMIT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    OMIT.get_or_init(|| format!("__omit_place_holder__{:016x}", rand::random::<u64>()))
}

/// A configured template environment, shared by every host of a run
/// (cloning it shares the environments).
#[derive(Clone)]
pub struct Templar {
    envs: Arc<RwLock<Envs>>,
}

/// The two environments (see the module's doc), as of a generation of the
/// plugin bridge's names (see [`plugins::generation`]).
#[derive(Clone)]
struct Envs {
    generation: usize,
    strict: Arc<Environment<'static>>,
    chainable: Arc<Environment<'static>>,
}

impl std::fmt::Debug for Templar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templar")
    }
}

impl Default for Templar {
    fn default() -> Self {
        Self::new()
    }
}

fn build_env(behavior: UndefinedBehavior) -> Environment<'static> {
    build_env_with(behavior, default_syntax())
}

/// Ansible's Templar uses trim_blocks. The trailing newline is kept here
/// because callers drop the source's last newline themselves, as Jinja
/// does without keep_trailing_newline (see [`strip_one_newline`]).
fn default_syntax() -> minijinja::syntax::SyntaxConfig {
    minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .unwrap_or_default()
}

fn build_env_with(behavior: UndefinedBehavior, syntax: minijinja::syntax::SyntaxConfig) -> Environment<'static> {
    // Template files' `#jinja2:` headers build their environments with this.
    let _ = file_source::ENV_BUILDER.set(build_env_with);
    let mut env = Environment::new();
    env.set_undefined_behavior(behavior);
    env.set_syntax(syntax);
    env.set_unknown_method_callback(pymethods::call);
    let chainable = behavior == UndefinedBehavior::Chainable;
    env.set_formatter(move |out, state, value| {
        if chainable && value.is_undefined() {
            return Err(JinjaError::new(ErrorKind::UndefinedError, "value is undefined"));
        }
        // Ansible finalizes each output value: an undefined value inside
        // a list or dict (`{{ [x] }} text`) fails the render, as it does
        // for a whole-expression template.
        if !value.is_undefined() && holds_undefined(value) {
            return Err(JinjaError::new(ErrorKind::UndefinedError, UNDEFINED_INSIDE));
        }
        output_nodes::record(value);
        taint::record_node(value);
        minijinja::escape_formatter(out, state, value)
    });
    env.add_global("omit", omit());
    // Ansible's `undef(hint)`: an undefined value (minijinja's undefined
    // carries no hint, so the hint is checked and dropped).
    env.add_function("undef", |hint: Option<String>| -> minijinja::Value {
        let _ = hint;
        minijinja::Value::UNDEFINED
    });
    filters::register(&mut env);
    jtests::register(&mut env);
    lookups::register(&mut env);
    datetime::register(&mut env);
    pystd::register(&mut env);
    vaulted::register(&mut env);
    plugins::register(&mut env);
    env
}

/// Whether a strict failure is worth retrying with chainable undefined: the
/// template must have failed on an undefined value and be checking for one.
fn retry_chainable(e: &JinjaError, src: &str) -> bool {
    e.kind() == ErrorKind::UndefinedError && (src.contains("defined") || src.contains("default") || src.contains("d("))
}

/// If `s` is exactly one `{{ expr }}` (surrounding whitespace allowed),
/// return `expr`. For conditionals, where the whitespace means nothing.
pub(crate) fn single_expression(s: &str) -> Option<&str> {
    whole_expression(s.trim())
}

/// If `s` is one `{{ expr }}` and nothing else, return `expr`: Ansible's
/// native-types rule, where only a template that is exactly one expression
/// yields the expression's value (`" {{ 1 }}"` is the string `" 1"`).
fn whole_expression(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix(['-', '+']).unwrap_or(inner);
    let inner = inner.strip_suffix(['-', '+']).unwrap_or(inner);
    if syntax::has_template_syntax(inner) {
        return None;
    }
    Some(inner.trim())
}

pub(crate) use file_source::FileSource;
use file_source::{describe, pad_newlines, strip_one_newline, undefined_name};

/// The root name of an undefined variable named by an error, if any.
fn undefined_root(e: &JinjaError) -> Option<String> {
    if e.kind() != ErrorKind::UndefinedError {
        return None;
    }
    let name = e.detail()?.strip_prefix('`')?.strip_suffix("` is undefined")?;
    let root = name.split(['.', '[']).next()?;
    (!root.is_empty()).then(|| root.to_string())
}

/// The 1-based column of an error's span inside `src`.
fn error_column(e: &JinjaError, src: &str) -> u32 {
    match e.range() {
        Some(r) => {
            let start = r.start.min(src.len());
            let line_start = src[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
            src.get(line_start..start)
                .map(|s| s.chars().count() as u32 + 1)
                .unwrap_or(1)
        }
        None => 1,
    }
}

/// The formatter's error for an output value holding an undefined one.
const UNDEFINED_INSIDE: &str = "a value inside an output value is undefined";

/// Whether an undefined value sits anywhere inside a list or map.
fn holds_undefined(v: &minijinja::Value) -> bool {
    use minijinja::value::ValueKind;
    match v.kind() {
        ValueKind::Undefined => true,
        ValueKind::Seq => v.try_iter().is_ok_and(|mut it| it.any(|x| holds_undefined(&x))),
        ValueKind::Map => v
            .try_iter()
            .is_ok_and(|mut it| it.any(|k| v.get_item(&k).map_or(true, |x| holds_undefined(&x)))),
        _ => false,
    }
}

/// Convert a minijinja value to JSON, refusing undefined values.
fn to_json(v: &minijinja::Value) -> Result<Value, JinjaError> {
    if v.is_undefined() {
        return Err(JinjaError::new(
            ErrorKind::UndefinedError,
            "the expression is undefined",
        ));
    }
    serde_json::to_value(v).map_err(|e| JinjaError::new(ErrorKind::BadSerialization, e.to_string()))
}

impl Templar {
    pub fn new() -> Self {
        let generation = plugins::generation();
        Templar {
            envs: Arc::new(RwLock::new(Envs {
                generation,
                strict: Arc::new(build_env(UndefinedBehavior::Strict)),
                chainable: Arc::new(build_env(UndefinedBehavior::Chainable)),
            })),
        }
    }

    /// The environments, with every plugin the bridge has resolved so far.
    fn envs(&self) -> Envs {
        let generation = plugins::generation();
        {
            let r = self.envs.read().unwrap_or_else(|p| p.into_inner());
            if r.generation == generation {
                return r.clone();
            }
        }
        let mut w = self.envs.write().unwrap_or_else(|p| p.into_inner());
        if w.generation != generation {
            let mut strict = (*w.strict).clone();
            plugins::register(&mut strict);
            let mut chainable = (*w.chainable).clone();
            plugins::register(&mut chainable);
            *w = Envs {
                generation,
                strict: Arc::new(strict),
                chainable: Arc::new(chainable),
            };
        }
        w.clone()
    }

    /// Run `f`; when it fails on a filter or test the engine does not know,
    /// and a Python plugin provides it (see [`plugins`]), run `f` again with
    /// the plugin registered.
    fn with_plugins<T>(&self, mut f: impl FnMut() -> Result<T, JinjaError>) -> Result<T, JinjaError> {
        let mut tried = Vec::new();
        loop {
            let e = match f() {
                Err(e) => e,
                ok => return ok,
            };
            let Some((kind, name)) = plugins::unknown_plugin(&e) else {
                return Err(e);
            };
            if tried.contains(&name) {
                return Err(e);
            }
            match plugins::resolve(kind, &name) {
                Ok(true) => tried.push(name),
                Ok(false) => return Err(e),
                Err(why) => return Err(JinjaError::new(ErrorKind::InvalidOperation, why)),
            }
        }
    }

    fn locate(&self, e: &JinjaError, src: &str, ctx: &minijinja::Value, loc: &Loc) -> LocError {
        let what = if src.len() > 200 {
            format!("{}...", src.chars().take(200).collect::<String>())
        } else {
            src.to_string()
        };
        let mut msg = format!("template error while templating `{what}`: {}", describe(e, Some(ctx)));
        if src.contains('\n') {
            if let Some(line) = e.line() {
                msg.push_str(&format!(" (template line {line})"));
            }
        }
        let mut err = LocError::new(loc.clone(), msg);
        if let Some(hint) = self.hint_for(e, ctx) {
            err = err.with_hint(hint);
        }
        err
    }

    /// "did you mean" for undefined variables.
    fn hint_for(&self, e: &JinjaError, ctx: &minijinja::Value) -> Option<String> {
        let root = undefined_root(e)?;
        if ctx.get_attr(&root).is_ok_and(|v| !v.is_undefined()) {
            return None;
        }
        let keys: Vec<String> = ctx
            .try_iter()
            .ok()?
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect();
        crate::error::did_you_mean(&root, keys.iter().map(String::as_str)).map(|s| format!("did you mean '{s}'?"))
    }

    /// Render a template string to text (no native types).
    fn render_text(&self, src: &str, ctx: &minijinja::Value) -> Result<String, JinjaError> {
        self.render_nodes(src, ctx).map(|(text, _)| text)
    }

    /// Render a template string to text, with the one value it output when
    /// its output was exactly one `{{ }}` node (see [`output_nodes`]).
    fn render_nodes(
        &self,
        src: &str,
        ctx: &minijinja::Value,
    ) -> Result<(String, Option<minijinja::Value>), JinjaError> {
        let recorder = output_nodes::Recorder::start();
        let _ = value::take_undefined_reason();
        let envs = self.envs();
        let text = match envs.strict.render_str(src, ctx) {
            Err(e) if retry_chainable(&e, src) => {
                recorder.reset();
                envs.chainable.render_str(src, ctx).map_err(|_| e)
            }
            r => r,
        }
        .map_err(|e| self.name_undefined_inside(e, src, ctx))?;
        if let Some(why) = vaulted::used_in_text(&text) {
            return Err(vaulted::use_error(why));
        }
        let single = recorder.single_node().filter(|v| v.to_string() == text);
        Ok((text, single))
    }

    /// An error about an undefined value inside an output value (see the
    /// formatter) names the variable of `src` that is not set, if one is.
    fn name_undefined_inside(&self, e: JinjaError, src: &str, ctx: &minijinja::Value) -> JinjaError {
        if e.kind() != ErrorKind::UndefinedError || e.detail() != Some(UNDEFINED_INSIDE) {
            return e;
        }
        let envs = self.envs();
        let missing = envs.strict.template_from_str(src).ok().and_then(|t| {
            t.undeclared_variables(false)
                .into_iter()
                .filter(|n| ctx.get_attr(n).map_or(true, |v| v.is_undefined()))
                .min()
        });
        match missing {
            Some(name) => JinjaError::new(ErrorKind::UndefinedError, format!("`{name}` is undefined")),
            None => match value::take_undefined_reason() {
                Some(reason) => JinjaError::new(ErrorKind::UndefinedError, reason),
                None => e,
            },
        }
    }

    /// Evaluate a bare expression to a minijinja value.
    fn eval_value(&self, expr: &str, ctx: &minijinja::Value) -> Result<minijinja::Value, JinjaError> {
        self.with_plugins(|| {
            let envs = self.envs();
            let compiled = envs.strict.compile_expression(expr)?;
            let scope = taint::Scope::start();
            let v = self.eval_compiled(&envs, &compiled, expr, ctx)?;
            if taint::tracking() {
                let result = to_json(&v).unwrap_or(Value::Null);
                scope.settle(
                    || compiled.undeclared_variables(true).into_iter().collect(),
                    ctx,
                    &result,
                );
            }
            Ok(v)
        })
    }

    /// Evaluate an expression compiled in the strict environment, retrying
    /// in the chainable one when it tests for an undefined value.
    fn eval_compiled(
        &self,
        envs: &Envs,
        compiled: &minijinja::Expression<'_, '_>,
        expr: &str,
        ctx: &minijinja::Value,
    ) -> Result<minijinja::Value, JinjaError> {
        let defined = |v: minijinja::Value| {
            vaulted::check(&v)?;
            if v.is_undefined() {
                // Name the variable the way the engine does for `{{ x }}`.
                let detail = format!("`{}` is undefined", expr.trim());
                return Err(JinjaError::new(ErrorKind::UndefinedError, detail));
            }
            if holds_undefined(&v) {
                // Ansible finalizes the whole result: an undefined value
                // inside a list or dict (`[{'k': nope}]`) fails too, naming
                // the variable when the expression has an unset one.
                let missing = compiled
                    .undeclared_variables(false)
                    .into_iter()
                    .filter(|n| ctx.get_attr(n).map_or(true, |v| v.is_undefined()))
                    .min();
                let detail = match missing {
                    Some(name) => format!("`{name}` is undefined"),
                    None => value::take_undefined_reason()
                        .unwrap_or_else(|| format!("a value inside the result of `{}` is undefined", expr.trim())),
                };
                return Err(JinjaError::new(ErrorKind::UndefinedError, detail));
            }
            Ok(v)
        };
        let _ = value::take_undefined_reason();
        match compiled.eval(ctx).and_then(defined) {
            Err(e) if retry_chainable(&e, expr) => envs
                .chainable
                .compile_expression(expr)
                .and_then(|c| c.eval(ctx))
                .and_then(defined)
                .map_err(|_| e),
            r => r,
        }
    }

    /// Render a string. A string that is exactly one `{{ expr }}` returns the
    /// expression's native value; otherwise the rendered text.
    pub fn render_str(&self, s: &str, ctx: &minijinja::Value, loc: &Loc) -> Result<Value, LocError> {
        self.render_str_raw(s, ctx).map_err(|e| self.locate(&e, s, ctx, loc))
    }

    /// [`Templar::render_str`], but None when the template uses an
    /// undefined variable (for what Ansible skips then, like a per-host
    /// `vars_files` entry).
    pub fn render_str_if_defined(&self, s: &str, ctx: &minijinja::Value, loc: &Loc) -> Result<Option<Value>, LocError> {
        match self.render_str_raw(s, ctx) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == ErrorKind::UndefinedError => Ok(None),
            Err(e) => Err(self.locate(&e, s, ctx, loc)),
        }
    }

    /// [`Templar::render_str`] with the engine's error.
    fn render_str_raw(&self, s: &str, ctx: &minijinja::Value) -> Result<Value, JinjaError> {
        if !syntax::has_template_syntax(s) {
            return Ok(Value::String(s.to_string()));
        }
        let scope = taint::Scope::start();
        let out = self.with_plugins(|| self.render_template_str(s, ctx));
        if let Ok(v) = &out {
            scope.settle(|| self.referenced(s), ctx, v);
        }
        out
    }

    /// The variables (with static attribute paths) the template `src` uses.
    fn referenced(&self, src: &str) -> Vec<String> {
        match self.envs().strict.template_from_str(src) {
            Ok(t) => t.undeclared_variables(true).into_iter().collect(),
            Err(_) => Vec::new(),
        }
    }

    /// [`Templar::render_str_raw`] of a string with template syntax, without
    /// taint tracking.
    fn render_template_str(&self, s: &str, ctx: &minijinja::Value) -> Result<Value, JinjaError> {
        let s = &*syntax::escape_backslashes(s);
        // As Ansible: Jinja drops the source's last newline, a template that
        // is then exactly one expression yields its native value, anything
        // else is text; a text result gets the source's trailing newlines back.
        let body = strip_one_newline(s);
        if let Some(expr) = whole_expression(body) {
            // `{{ a }} and {{ b }}` looks like one expression but does not parse
            // as one; it falls through to a normal render.
            let envs = self.envs();
            if let Ok(compiled) = envs.strict.compile_expression(expr) {
                return self
                    .eval_compiled(&envs, &compiled, expr, ctx)
                    .and_then(|v| match to_json(&v)? {
                        Value::String(text) => Ok(Value::String(pad_newlines(s, text, "\n"))),
                        other => Ok(other),
                    });
            }
        }
        // Ansible's native concat: output that is one node (`{% for x in [1] %}{{ x }}{% endfor %}`)
        // is that node's value; several nodes join to text.
        let (text, single) = self.render_nodes(body, ctx)?;
        let padded = pad_newlines(s, text.clone(), "\n");
        match single {
            Some(v) if padded == text => to_json(&v),
            _ => Ok(Value::String(padded)),
        }
    }

    /// Render every string of a template-source value, as
    /// [`Templar::render_value`] does, with the engine's error (see
    /// [`resolve::resolve`]).
    pub(crate) fn render_source(&self, v: &Value, ctx: &minijinja::Value) -> Result<Value, JinjaError> {
        render_strings(v, &|s| self.render_str_raw(s, ctx), &vaulted::use_error)
    }

    /// Render a string and always return text (e.g. for `name:` or messages).
    pub fn render_string(&self, s: &str, ctx: &minijinja::Value, loc: &Loc) -> Result<String, LocError> {
        if !syntax::has_template_syntax(s) {
            return Ok(s.to_string());
        }
        let s = &*syntax::escape_backslashes(s);
        let scope = taint::Scope::start();
        let out = self
            .with_plugins(|| self.render_text(strip_one_newline(s), ctx))
            .map(|text| pad_newlines(s, text, "\n"))
            .map_err(|e| self.locate(&e, s, ctx, loc))?;
        scope.settle(|| self.referenced(s), ctx, &Value::String(out.clone()));
        Ok(out)
    }

    /// Render every string inside a template-source JSON value (playbook
    /// arguments, variables from files). `!unsafe` text (see
    /// [`resolve::unsafe_text`]) comes out as plain text, never rendered.
    pub fn render_value(&self, v: &Value, ctx: &minijinja::Value, loc: &Loc) -> Result<Value, LocError> {
        render_strings(v, &|s| self.render_str(s, ctx, loc), &|why| {
            LocError::new(loc.clone(), vaulted::use_error(why).detail().unwrap_or(why).to_string())
        })
    }

    /// Evaluate a bare expression (`when:`, `until:`, `that:`), no braces.
    /// An expression wrapped in `{{ }}` is accepted too, as Ansible does.
    pub fn eval(&self, expr: &str, ctx: &minijinja::Value, loc: &Loc) -> Result<Value, LocError> {
        let inner = single_expression(expr).unwrap_or(expr).trim();
        let v = self
            .eval_value(inner, ctx)
            .map_err(|e| self.eval_error(&e, inner, ctx, loc))?;
        to_json(&v).map_err(|e| LocError::new(loc.clone(), format!("cannot use the value of `{inner}`: {e}")))
    }

    /// Evaluate a bare expression as [`Templar::eval`] does, except that an
    /// undefined value is not an error: it is `Ok(Err(message))`, with
    /// Ansible's message for it (`'x' is undefined`, `object of type 'dict'
    /// has no attribute 'y'`). What `debug`'s `var` shows in its place.
    pub fn eval_or_undefined(
        &self,
        expr: &str,
        ctx: &minijinja::Value,
        loc: &Loc,
    ) -> Result<Result<Value, String>, LocError> {
        let inner = single_expression(expr).unwrap_or(expr).trim();
        match self.eval_value(inner, ctx) {
            Err(e) if e.kind() == ErrorKind::UndefinedError || undefined_name(&e).is_some() => {
                Ok(Err(describe(&e, Some(ctx))))
            }
            Err(e) => Err(self.eval_error(&e, inner, ctx, loc)),
            Ok(v) => to_json(&v)
                .map(Ok)
                .map_err(|e| LocError::new(loc.clone(), format!("cannot use the value of `{inner}`: {e}"))),
        }
    }

    /// The located error of evaluating the expression `inner`.
    fn eval_error(&self, e: &JinjaError, inner: &str, ctx: &minijinja::Value, loc: &Loc) -> LocError {
        let mut err = LocError::new(
            loc.clone(),
            format!(
                "error while evaluating conditional `{}`: {}",
                inner,
                describe(e, Some(ctx))
            ),
        );
        if let Some(h) = self.hint_for(e, ctx) {
            err = err.with_hint(h);
        }
        err
    }

    /// Evaluate a condition to a boolean.
    pub fn eval_bool(&self, expr: &str, ctx: &minijinja::Value, loc: &Loc) -> Result<bool, LocError> {
        Ok(truthy(&self.eval(expr, ctx, loc)?))
    }

    /// Render a template file (the `template` module, `lookup('template')`).
    /// Errors name the template file and line.
    /// The file sees the `template_*` variables and `ansible_managed`
    /// (unless `ctx` defines it) as Ansible's template module gives them;
    /// `dest` is `template_destpath`.
    pub fn render_file(
        &self,
        path: &std::path::Path,
        dest: Option<&str>,
        ctx: &minijinja::Value,
    ) -> Result<String, LocError> {
        let name = path.display().to_string();
        let ctx = &self
            .file_context(path, dest, ctx)
            .map_err(|e| LocError::new(Loc::synthetic(&name), e))?;
        let src = std::fs::read_to_string(path)
            .map_err(|e| LocError::new(Loc::synthetic(&name), format!("cannot read template: {e}")))?;
        let scope = taint::Scope::start();
        // A vaulted template is rendered from its plaintext, as Ansible's
        // template module does: what it renders is tainted.
        let vaulted_src = crate::yaml::decrypt_vaulted_text(&src, &name)?;
        let src = match &vaulted_src {
            Some(plain) => {
                taint::mark();
                plain.to_string()
            }
            None => src,
        };
        let located = |e: &JinjaError, body: &str, offset: u32| {
            let line = e.line().unwrap_or(0) as u32;
            let col = if line > 0 { error_column(e, body) } else { 0 };
            let line = if line > 0 { line + offset } else { 0 };
            let mut err = LocError::new(
                Loc::new(name.as_str(), line, col),
                format!("template error: {}", describe(e, Some(ctx))),
            );
            if let Some(h) = self.hint_for(e, ctx) {
                err = err.with_hint(h);
            }
            err
        };
        // The `#jinja2:` header, Jinja's dropped last newline and Ansible's
        // padding of the result to the source's trailing newlines.
        let source = FileSource::new(&src).map_err(|e| located(&e, &src, 0))?;
        let render = |env: &Environment<'static>| source.render(&name, &src, env, ctx);
        let out = self.with_plugins(|| {
            let envs = self.envs();
            match render(&envs.strict) {
                Err(e) if retry_chainable(&e, &src) => render(&envs.chainable).map_err(|_| e),
                r => r,
            }
        });
        let text = out.map_err(|e| located(&e, source.body(), source.line_offset))?;
        // The values it output are secrets when it read one; the whole text
        // of a vaulted template is, line by line.
        scope.settle(|| self.referenced(source.body()), ctx, &Value::Null);
        if vaulted_src.is_some() {
            crate::output::redact::taint_lines(&text);
        }
        match vaulted::used_in_text(&text) {
            Some(why) => Err(LocError::new(
                Loc::synthetic(&name),
                format!("template error: Attempt to use undecryptable variable: {why}"),
            )),
            None => Ok(text),
        }
    }

    /// `ctx` with the variables of rendering the template file `path` (see
    /// [`managed`]).
    fn file_context(
        &self,
        path: &std::path::Path,
        dest: Option<&str>,
        ctx: &minijinja::Value,
    ) -> Result<minijinja::Value, String> {
        managed::file_context(&self.envs().strict, path, &path.display().to_string(), dest, ctx)
    }

    /// Directories searched by lookups (`file`, `template`) — set per task.
    pub fn search_paths_var() -> &'static str {
        SEARCH_PATHS_VAR
    }
}

/// `v` with every string (map keys included) replaced by `render(string)`;
/// `!unsafe` text (see [`resolve::unsafe_text`]) comes out as plain text,
/// never rendered.
fn render_strings<E>(
    v: &Value,
    render: &impl Fn(&str) -> Result<Value, E>,
    undecryptable: &impl Fn(&str) -> E,
) -> Result<Value, E> {
    if let Some(text) = syntax::unsafe_text(v) {
        return Ok(Value::String(text.to_string()));
    }
    if let Some((_, why)) = syntax::undecryptable(v) {
        return Err(undecryptable(why));
    }
    Ok(match v {
        Value::String(s) => render(s)?,
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| render_strings(x, render, undecryptable))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => {
            let mut m = serde_json::Map::with_capacity(o.len());
            for (k, x) in o {
                let key = match render(k)? {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                m.insert(key, render_strings(x, render, undecryptable)?);
            }
            Value::Object(m)
        }
        other => other.clone(),
    })
}

/// Search paths, as stored in a template context.
pub fn search_paths(paths: &[PathBuf]) -> Value {
    Value::Array(paths.iter().map(|p| Value::String(p.display().to_string())).collect())
}
