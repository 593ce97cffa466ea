//! Controller-side modules: `debug`, `assert`, `fail`, `set_fact`, `pause`,
//! `meta`, `include_vars`, `add_host`, `group_by`, and the remote `ping`
//! and `setup`.
//!
//! Each computes its outcome at once and returns it as [`Plan::Done`]: there
//! is nothing on a host for the executor to apply, in check mode or not.
//! Modules that change run state (`set_fact`, `include_vars`, `add_host`,
//! `group_by`) say so with a [`ControllerEffect`] (and `meta` with `_meta`),
//! which the executor applies, as Ansible's action plugins do. `debug`'s
//! `var` stays an expression (its kind, `Expr`, is never coerced).

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

pub mod async_status;
pub(crate) mod local_facts;
mod setup;

use super::{
    parse_params, ControllerEffect, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan,
    Registry, ReturnDoc,
};

pub fn register(r: &mut Registry) {
    r.add(Arc::new(Debug));
    r.add(Arc::new(Assert));
    r.add(Arc::new(Fail));
    r.add(Arc::new(SetFact));
    r.add(Arc::new(SetStats));
    r.add(Arc::new(Pause));
    r.add(Arc::new(Meta));
    r.add(Arc::new(IncludeVars));
    r.add(Arc::new(AddHost));
    r.add(Arc::new(GroupBy));
    r.add(Arc::new(Ping));
    r.add(Arc::new(setup::Setup));
    r.add(Arc::new(async_status::AsyncStatus));
}

macro_rules! doc {
    ($name:literal, $short:literal, $desc:literal, free=$free:expr, ctl=$ctl:expr, opts=$opts:expr, ex=$ex:literal, ret=$ret:expr) => {
        ModuleDoc {
            name: $name,
            aliases: &[],
            short: $short,
            description: $desc,
            free_form: $free,
            options: $opts,
            examples: $ex,
            returns: $ret,
            controller_only: $ctl,
        }
    };
}

static DEBUG_DOC: ModuleDoc = doc!(
    "debug",
    "Print a message or a variable",
    "Prints `msg`, or the value of the variable/expression `var`, on the controller.",
    free = false,
    ctl = true,
    opts = &[
        OptionDoc::new("msg", OptKind::Raw, "The message to print.").default("Hello world!"),
        OptionDoc::new(
            "var",
            OptKind::Expr,
            "A variable name or expression to print (no braces). `{{ item }}` names the variable by a value, which must then be a variable name.",
        ),
        OptionDoc::new("verbosity", OptKind::Int, "Print only at this -v level or above.").default("0"),
    ],
    ex = "- debug:\n    msg: \"{{ inventory_hostname }} runs {{ ansible_facts.distribution }}\"\n- debug:\n    var: result.stdout_lines\n",
    ret = &[ReturnDoc { name: "msg", description: "the message" }]
);

struct Debug;

#[async_trait]
impl Module for Debug {
    fn doc(&self) -> &'static ModuleDoc {
        &DEBUG_DOC
    }
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        self.outcome(ctx, args).await.map(Plan::Done)
    }
}

impl Debug {
    async fn outcome(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<ModuleOutcome, ModuleError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct P {
            msg: Option<Value>,
            var: Option<Value>,
            verbosity: Option<i64>,
        }
        let p: P = parse_params(&DEBUG_DOC, args)?;
        // `var` is an expression: a string written in the playbook (Ansible's
        // `_check_type_str_no_conversion`), never `!unsafe` text, which is
        // data and is never evaluated.
        let var = match p.var {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(v) => {
                if let Some(text) = crate::template::resolve::unsafe_text(&v) {
                    return Err(ModuleError::Failed(format!(
                        "Encountered untrusted template or expression: the `var` expression `{text}` is `!unsafe` \
                         text, which is never evaluated"
                    )));
                }
                return Err(ModuleError::Args(format!(
                    "argument 'var' is of type {} and we were unable to convert to str: {} is not a string and \
                     conversion is not allowed",
                    match v {
                        Value::Array(_) => "list",
                        Value::Object(_) => "dict",
                        Value::Bool(_) => "bool",
                        Value::Number(ref n) if n.is_f64() => "float",
                        _ => "int",
                    },
                    v
                )));
            }
        };
        // `var` comes unrendered (OptKind::Expr). `var: "{{ item }}"`
        // names the variable to show by a value, which may come from a
        // host: it must be a variable name, never an expression. One that
        // renders to `omit` is left out, as Ansible's argument templating
        // leaves it out. As in ansible-core 2.19, a name the template
        // computes (`{{ "x" }}`, `{{ a ~ b }}`) is not trusted: the
        // template must be one variable, whose value is the name.
        let var = match var {
            Some(var) if crate::template::resolve::has_template_syntax(&var) => {
                if !crate::template::single_expression(&var).is_some_and(|e| is_variable_path(e.trim())) {
                    // The template itself is the playbook's and is rendered
                    // as Ansible renders it (its errors are the task's:
                    // `lookup('vars', 42)` fails with the lookup's words);
                    // only its result is never evaluated.
                    ctx.templar
                        .render_string(&var, ctx.vars, ctx.loc)
                        .map_err(|e| ModuleError::Failed(e.msg))?;
                    return Err(ModuleError::Failed(format!(
                        "Encountered untrusted template or expression: `var` is the template `{var}`, whose result \
                         would be evaluated; only a template that is one variable (`{{{{ item }}}}`) may name the \
                         variable to show"
                    )));
                }
                let name = ctx
                    .templar
                    .render_string(&var, ctx.vars, ctx.loc)
                    .map_err(|e| ModuleError::Failed(e.msg))?;
                if name == crate::template::omit() {
                    None
                } else if !is_variable_path(&name) {
                    return Err(ModuleError::Failed(format!(
                        "debug: `var` rendered to `{name}`, which is not a variable name (a rendered value is never evaluated as an expression)"
                    )));
                } else {
                    Some(name)
                }
            }
            other => other,
        };
        if p.msg.is_some() && var.is_some() {
            return Err(ModuleError::Args(
                "debug: parameters are mutually exclusive: msg|var".into(),
            ));
        }
        // Shown only from this many -v on (the run's count is the magic
        // variable `ansible_verbosity`), else skipped, as Ansible's debug.
        let run_verbosity = ctx
            .vars
            .get_attr("ansible_verbosity")
            .ok()
            .and_then(|v| i64::try_from(v).ok())
            .unwrap_or(0);
        if p.verbosity.unwrap_or(0) > run_verbosity {
            let mut out = ModuleOutcome {
                skipped: true,
                ..ModuleOutcome::ok()
            };
            out.ret.insert(
                "skipped_reason".into(),
                Value::String("Verbosity threshold not met.".into()),
            );
            return Ok(out);
        }
        let mut out = ModuleOutcome {
            show_result: true,
            ..ModuleOutcome::ok()
        };
        if let Some(var) = var {
            // An undefined value shows as ansible-core 2.19's numbered
            // placeholder, with a warning naming the error (its
            // `ReplacingMarkerBehavior`); any other error in the expression
            // fails the task.
            let v = match ctx.templar.eval_or_undefined(&var, ctx.vars, ctx.loc) {
                Ok(Ok(Value::String(s))) if s == crate::template::omit() => {
                    out.ret.insert(
                        "warnings".into(),
                        Value::Array(vec![Value::String(
                            "The result of the `var` expression could not be omitted; a placeholder was used instead."
                                .into(),
                        )]),
                    );
                    Value::String("<<Omit>>".into())
                }
                Ok(Ok(v)) => v,
                Ok(Err(undefined)) => {
                    out.ret.insert(
                        "warnings".into(),
                        Value::Array(vec![Value::String(format!(
                            "Encountered 1 template error.\nerror 1 - {undefined}"
                        ))]),
                    );
                    Value::String(format!("<< error 1 - {undefined} >>"))
                }
                Err(e) => {
                    return Err(ModuleError::Failed(format!(
                        "Error while resolving `var` expression: {}",
                        e.msg
                    )))
                }
            };
            out.ret.insert(var, v);
        } else {
            out.ret.insert(
                "msg".into(),
                p.msg.unwrap_or_else(|| Value::String("Hello world!".into())),
            );
        }
        Ok(out)
    }
}

/// "a list `[...]`" and the like, for messages.
fn describe_value(v: &Value) -> String {
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    };
    let text = v.to_string();
    let text = if text.chars().count() > 80 {
        format!("{}...", text.chars().take(80).collect::<String>())
    } else {
        text
    };
    format!("{kind} `{text}`")
}

/// `name`, `name.attr`, `name['key']`, `name[0]`: a variable or a path
/// into one, and nothing an expression could do more.
fn is_variable_path(s: &str) -> bool {
    static RE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(
            r#"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\]|\['[^'\\]*'\]|\["[^"\\]*"\])*$"#,
        )
        .ok()
    })
    .as_ref()
    .is_some_and(|re| re.is_match(s))
}

static ASSERT_DOC: ModuleDoc = doc!(
    "assert",
    "Fail unless expressions are true",
    "Evaluates each expression in `that`; the task fails with `fail_msg` on the first false one.",
    free = false,
    ctl = true,
    opts = &[
        OptionDoc::new(
            "that",
            OptKind::Expr,
            "An expression or a list of expressions (no braces; `{{ x }}` alone is read as `x`). Not rendered first: a conditional with a template inside (`\"'{{ x }}' == 'y'\"`) is refused, since the rendered text (which may come from a host) would be evaluated as code.",
        )
        .required(),
        OptionDoc::new("fail_msg", OptKind::Raw, "Message when an assertion fails.").aliases(&["msg"]),
        OptionDoc::new("success_msg", OptKind::Raw, "Message when all pass.").default("All assertions passed"),
        OptionDoc::new("quiet", OptKind::Bool, "Less output.").default("no"),
    ],
    ex = "- assert:\n    that:\n      - result.rc == 0\n      - \"'ok' in result.stdout\"\n    fail_msg: the service did not start\n",
    ret = &[ReturnDoc { name: "assertion", description: "the failed expression" }]
);

struct Assert;

#[async_trait]
impl Module for Assert {
    fn doc(&self) -> &'static ModuleDoc {
        &ASSERT_DOC
    }
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        self.outcome(ctx, args).await.map(Plan::Done)
    }
}

impl Assert {
    async fn outcome(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<ModuleOutcome, ModuleError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct P {
            that: Value,
            fail_msg: Option<Value>,
            success_msg: Option<Value>,
            #[serde(default)]
            #[allow(dead_code)]
            quiet: bool,
        }
        let p: P = parse_params(&ASSERT_DOC, args)?;
        let exprs: Vec<Value> = match p.that {
            Value::Array(a) => a,
            other => vec![other],
        };
        for e in exprs {
            let ok = match &e {
                Value::String(s) => {
                    // Unrendered (OptKind::Expr): `{{ x }}` alone is `x`.
                    // A template inside an expression would have its
                    // rendered text (which may come from a host) evaluated.
                    let inner = crate::template::single_expression(s).unwrap_or(s).trim();
                    if crate::template::resolve::has_template_syntax(inner) {
                        return Err(ModuleError::Failed(format!(
                            "assert: the conditional `{s}` has a template inside; write it as an expression without {{{{ }}}} (e.g. `x == 'y'` instead of `'{{{{ x }}}}' == 'y'`): rigger never evaluates rendered text as code"
                        )));
                    }
                    // A conditional must give a boolean, as in Ansible 2.19:
                    // `that: "{{ checks }}"` gives the list itself, whose
                    // truth says nothing (and whose strings are never
                    // evaluated: they may come from a host).
                    match ctx.templar.eval(inner, ctx.vars, ctx.loc).map_err(|e| ModuleError::Failed(e.msg))? {
                        Value::Bool(b) => b,
                        // Ansible 2.19 evaluates a string result again only
                        // when it is trusted; to rigger no rendered value is.
                        Value::String(text) => {
                            return Err(ModuleError::Failed(format!(
                                "Encountered untrusted template or expression: the conditional `{s}` gave the string \
                                 {text:?}, which rigger does not evaluate as an expression (a rendered value is never \
                                 trusted as code); write the condition itself in `that`"
                            )))
                        }
                        other => {
                            return Err(ModuleError::Failed(format!(
                                "assert: the conditional `{s}` gave {}, not a boolean; write each condition as an expression in `that`",
                                describe_value(&other)
                            )))
                        }
                    }
                }
                Value::Bool(b) => *b,
                other => {
                    return Err(ModuleError::Failed(format!(
                        "assert: `that` holds {}, not a conditional",
                        describe_value(other)
                    )))
                }
            };
            if !ok {
                let msg = match &p.fail_msg {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => "Assertion failed".into(),
                };
                let mut o = ModuleOutcome::failed(msg);
                o.ret.insert("assertion".into(), e.clone());
                o.ret.insert("evaluated_to".into(), Value::Bool(false));
                return Ok(o);
            }
        }
        let msg = match p.success_msg {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => "All assertions passed".into(),
        };
        Ok(ModuleOutcome::ok().with_msg(msg))
    }
}

static FAIL_DOC: ModuleDoc = doc!(
    "fail",
    "Fail with a message",
    "Fails the task with `msg`; usually combined with `when`.",
    free = false,
    ctl = true,
    opts = &[OptionDoc::new("msg", OptKind::Raw, "The failure message.").default("Failed as requested from task")],
    ex = "- fail:\n    msg: unsupported distribution\n  when: ansible_facts.os_family != 'Debian'\n",
    ret = &[]
);

struct Fail;

#[async_trait]
impl Module for Fail {
    fn doc(&self) -> &'static ModuleDoc {
        &FAIL_DOC
    }
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        self.outcome(ctx, args).await.map(Plan::Done)
    }
}

impl Fail {
    async fn outcome(&self, _ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<ModuleOutcome, ModuleError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct P {
            msg: Option<Value>,
        }
        let p: P = parse_params(&FAIL_DOC, args)?;
        Ok(ModuleOutcome::failed(match p.msg {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => "Failed as requested from task".into(),
        }))
    }
}

static SET_FACT_DOC: ModuleDoc = doc!(
    "set_fact",
    "Set host variables",
    "Every argument becomes a host variable for the rest of the run (precedence of \
set_fact/registered vars). With `cacheable: true` they are also facts of the host, kept in the \
fact cache (ANSIBLE_CACHE_PLUGIN=jsonfile) for later runs.",
    free = false,
    ctl = true,
    opts = &[],
    ex = "- set_fact:\n    app_port: 8080\n    app_url: \"http://{{ inventory_hostname }}:8080\"\n",
    ret = &[ReturnDoc {
        name: "ansible_facts",
        description: "the variables set"
    }]
);

struct SetFact;

#[async_trait]
impl Module for SetFact {
    fn doc(&self) -> &'static ModuleDoc {
        &SET_FACT_DOC
    }
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        self.outcome(ctx, args).await.map(Plan::Done)
    }
}

impl SetFact {
    async fn outcome(&self, _ctx: &ModuleCtx<'_>, mut args: Map<String, Value>) -> Result<ModuleOutcome, ModuleError> {
        let cacheable = match args.remove("cacheable") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(Value::String(s)) => crate::kv::parse_bool(&s)
                .ok_or_else(|| ModuleError::Args(format!("set_fact: cacheable is `{s}`, not a boolean")))?,
            Some(other) => {
                return Err(ModuleError::Args(format!(
                    "set_fact: cacheable is `{other}`, not a boolean"
                )));
            }
        };
        if args.is_empty() {
            return Err(ModuleError::Args("set_fact: no variables given".into()));
        }
        for k in args.keys() {
            validate_variable_name(k).map_err(|e| ModuleError::Args(format!("set_fact: {e}")))?;
        }
        Ok(ModuleOutcome::ok()
            .with("ansible_facts", Value::Object(args.clone()))
            .with_effect(if cacheable {
                ControllerEffect::CacheableFacts(args)
            } else {
                ControllerEffect::SetFacts(args)
            }))
    }
}

/// Ansible's `validate_variable_name`: an ASCII identifier that is not one
/// of the names Jinja reserves; `Err` is Ansible's message.
pub(crate) fn validate_variable_name(k: &str) -> Result<(), String> {
    const JINJA_KEYWORDS: [&str; 7] = ["true", "false", "none", "True", "False", "None", "not"];
    let ok = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !JINJA_KEYWORDS.contains(&k);
    if ok {
        return Ok(());
    }
    Err(format!(
        "Invalid variable name '{k}'. Variable names must be strings starting with a letter or underscore \
         character, and contain only letters, numbers and underscores."
    ))
}

static SET_STATS_DOC: ModuleDoc = doc!(
    "set_stats",
    "Define and display stats for the current run",
    "Sets custom statistics for the run (Ansible's `set_stats`): the values of `data` are kept per host \
(`per_host: true`) or for the whole run, added to what earlier tasks set (`aggregate`, the default: numbers \
add up, strings and lists are appended, mappings merged; a value of another type is ignored) or replacing it. \
The recap shows them in a CUSTOM STATS block when `show_custom_stats` (ansible.cfg `[defaults]`) or \
`ANSIBLE_SHOW_CUSTOM_STATS` is true; JSON output always carries them in its recap event (`custom_stats`, \
`global_custom_stats`).",
    free = false,
    ctl = true,
    opts = &[
        OptionDoc::new("data", OptKind::Raw, "A mapping of stat names to values.").default("{}"),
        OptionDoc::new(
            "per_host",
            OptKind::Raw,
            "Keep the stats per host instead of for the whole run."
        )
        .default("false"),
        OptionDoc::new(
            "aggregate",
            OptKind::Raw,
            "Add the values to those set before (true) or replace them (false)."
        )
        .default("true"),
    ],
    ex =
        "- set_stats:\n    data:\n      packages_installed: 31\n      deployed_hosts: \"{{ [inventory_hostname] }}\"\n",
    ret = &[ReturnDoc {
        name: "ansible_stats",
        description: "`data`, `per_host` and `aggregate` as the recap gets them"
    }]
);

struct SetStats;

#[async_trait]
impl Module for SetStats {
    fn doc(&self) -> &'static ModuleDoc {
        &SET_STATS_DOC
    }
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        self.outcome(ctx, args).await.map(Plan::Done)
    }
}

impl SetStats {
    async fn outcome(&self, _ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<ModuleOutcome, ModuleError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct P {
            data: Option<Value>,
            per_host: Option<Value>,
            aggregate: Option<Value>,
        }
        let p: P = parse_params(&SET_STATS_DOC, args)?;
        let data = match p.data {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Ok(ModuleOutcome::failed("The 'data' option needs to be a dictionary/hash")),
        };
        for k in data.keys() {
            validate_variable_name(k).map_err(ModuleError::Failed)?;
        }
        // Ansible's `boolean(value, strict=False)`: anything but a true
        // word or number is false.
        let flag = |v: Option<Value>, default: bool| match v {
            None | Some(Value::Null) => default,
            Some(Value::Bool(b)) => b,
            Some(Value::Number(n)) => n.as_f64() == Some(1.0),
            Some(Value::String(s)) => crate::kv::parse_bool(&s).unwrap_or(false),
            Some(_) => false,
        };
        let per_host = flag(p.per_host, false);
        let aggregate = flag(p.aggregate, true);
        Ok(ModuleOutcome::ok()
            .with(
                "ansible_stats",
                serde_json::json!({"data": data.clone(), "per_host": per_host, "aggregate": aggregate}),
            )
            .with_effect(ControllerEffect::Stats {
                data,
                per_host,
                aggregate,
            }))
    }
}

static PAUSE_DOC: ModuleDoc = doc!(
    "pause",
    "Wait for a number of seconds or minutes",
    "Sleeps on the controller. Interactive prompts are not supported: rigger runs unattended.",
    free = false,
    ctl = true,
    opts = &[
        OptionDoc::new("seconds", OptKind::Float, "Seconds to wait."),
        OptionDoc::new("minutes", OptKind::Float, "Minutes to wait."),
        OptionDoc::new("prompt", OptKind::Str, "Not supported without seconds/minutes."),
        OptionDoc::new("echo", OptKind::Bool, "Accepted for compatibility.").ignored(),
    ],
    ex = "- pause:\n    seconds: 5\n",
    ret = &[ReturnDoc {
        name: "delta",
        description: "seconds waited"
    }]
);

struct Pause;

#[async_trait]
impl Module for Pause {
    fn doc(&self) -> &'static ModuleDoc {
        &PAUSE_DOC
    }
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        self.outcome(ctx, args).await.map(Plan::Done)
    }
}

impl Pause {
    async fn outcome(&self, _ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<ModuleOutcome, ModuleError> {
        let num = |k: &str| -> Result<Option<f64>, ModuleError> {
            match args.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => Ok(n.as_f64()),
                Some(Value::String(s)) => s
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| ModuleError::Args(format!("pause: `{k}` must be a number"))),
                Some(_) => Err(ModuleError::Args(format!("pause: `{k}` must be a number"))),
            }
        };
        let secs = num("seconds")?.unwrap_or(0.0) + num("minutes")?.unwrap_or(0.0) * 60.0;
        if secs <= 0.0 && args.get("seconds").is_none() && args.get("minutes").is_none() {
            return Err(ModuleError::Args(
                "pause: interactive prompts are not supported; give `seconds` or `minutes`".into(),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_secs_f64(secs.max(0.0))).await;
        Ok(ModuleOutcome::ok().with("delta", secs))
    }
}

static META_DOC: ModuleDoc = doc!(
    "meta",
    "Control the run: flush_handlers, end_play, end_host, clear_facts, noop",
    "Executes a run-control action. Supported: flush_handlers, end_play, end_host, \
end_batch, clear_facts, clear_host_errors, refresh_inventory, noop.",
    free = true,
    ctl = true,
    opts = &[],
    ex = "- meta: flush_handlers\n",
    ret = &[]
);

struct Meta;

#[async_trait]
impl Module for Meta {
    fn doc(&self) -> &'static ModuleDoc {
        &META_DOC
    }
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        self.outcome(ctx, args).await.map(Plan::Done)
    }
}

impl Meta {
    async fn outcome(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<ModuleOutcome, ModuleError> {
        let action = args
            .get("_raw_params")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_string();
        // Ansible's messages (strategy `_execute_meta`), its `META:` line.
        let host = ctx.host;
        let msg = match action.as_str() {
            "noop" => "noop".to_string(),
            "flush_handlers" => format!("triggered running handlers for {host}"),
            "refresh_inventory" => "inventory successfully refreshed".to_string(),
            "clear_facts" => "facts cleared".to_string(),
            "clear_host_errors" => "cleared host errors".to_string(),
            "end_batch" => "ending batch".to_string(),
            "end_play" => "ending play".to_string(),
            "end_host" => format!("ending play for {host}"),
            other => return Err(ModuleError::Args(format!("meta: unsupported action `{other}`"))),
        };
        let outcome = ModuleOutcome::ok().with_msg(msg.clone()).with(META_MESSAGE, msg);
        Ok(if action == "refresh_inventory" {
            outcome
                .with("_meta", action)
                .with_effect(ControllerEffect::RefreshInventory)
        } else {
            outcome.with("_meta", action)
        })
    }
}

/// The internal result key of a `meta` task's `META:` line: such a result
/// is shown only as that line (or as skipped) and counts in no recap
/// column, as in Ansible.
pub const META_MESSAGE: &str = "_meta_message";

/// The result of a `meta` task whose `when` is false: Ansible's message and
/// skip reason for `action` on `host`.
pub fn meta_skipped(action: &str, host: &str) -> Map<String, Value> {
    let reason = format!("{action} conditional evaluated to False");
    let (msg, reason) = match action {
        "flush_handlers" => (action.to_string(), format!("{reason}, not running handlers for {host}")),
        "clear_facts" => (
            action.to_string(),
            format!("{reason}, not clearing facts and fact cache for {host}"),
        ),
        "clear_host_errors" => (
            action.to_string(),
            format!("{reason}, not clearing host error state for {host}"),
        ),
        "end_batch" => (action.to_string(), format!("{reason}, continuing current batch")),
        "end_play" => (action.to_string(), format!("{reason}, continuing play")),
        "end_host" => (
            format!("end_host conditional evaluated to false, continuing execution for {host}"),
            format!("{reason}, continuing execution for {host}"),
        ),
        _ => (action.to_string(), reason),
    };
    let mut r = Map::new();
    r.insert("msg".into(), Value::String(msg));
    r.insert("skip_reason".into(), Value::String(reason.clone()));
    r.insert("skipped".into(), Value::Bool(true));
    r.insert(META_MESSAGE.into(), Value::String(reason));
    r
}

static INCLUDE_VARS_DOC: ModuleDoc = doc!(
    "include_vars",
    "Load variables from a YAML/JSON file or directory on the controller",
    "Reads `file` (relative to a role's `vars/`, the task's directory or the playbook directory) \
or every file under `dir` (in a role: `vars/DIR` of the role, or DIR itself when it starts with \
`vars/`; else relative to the task's file), walked in sorted order and followed through symbolic \
links, and sets the variables for the host (include_vars precedence). A file that fails, or a \
file under `dir` without one of `extensions`, fails the task (result key `message`), unless \
`ignore_unknown_extensions` skips such files.",
    free = true,
    ctl = true,
    opts = &[
        OptionDoc::new("file", OptKind::Path, "File to load."),
        OptionDoc::new(
            "dir",
            OptKind::Path,
            "Directory whose files are loaded, sorted by path."
        ),
        OptionDoc::new("name", OptKind::Str, "Put the variables under this one variable."),
        OptionDoc::new(
            "files_matching",
            OptKind::Str,
            "Only load files whose name matches this regex (searched)."
        ),
        OptionDoc::new(
            "ignore_files",
            OptKind::List,
            "Regexes (anchored at the end) of file names to skip in `dir`."
        ),
        OptionDoc::new(
            "extensions",
            OptKind::List,
            "File extensions loaded from `dir` (`''` for none)."
        )
        .default("[yaml, yml, json]"),
        OptionDoc::new(
            "ignore_unknown_extensions",
            OptKind::Bool,
            "Skip files in `dir` without a listed extension instead of failing."
        )
        .default("false"),
        OptionDoc::new("depth", OptKind::Int, "Recursion depth in `dir` (0 = unlimited)."),
        OptionDoc::new(
            "hash_behaviour",
            OptKind::Str,
            "`merge` merges dictionaries into the variables' current values; `replace` replaces them."
        )
        .choices(&["replace", "merge"]),
    ],
    ex = "- include_vars: \"{{ ansible_facts.os_family }}.yml\"\n- include_vars:\n    dir: vars/\n    name: settings\n",
    ret = &[
        ReturnDoc {
            name: "ansible_included_var_files",
            description: "files loaded"
        },
        ReturnDoc {
            name: "message",
            description: "why the task failed"
        },
    ]
);

struct IncludeVars;

#[async_trait]
impl Module for IncludeVars {
    fn doc(&self) -> &'static ModuleDoc {
        &INCLUDE_VARS_DOC
    }
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        self.outcome(ctx, args).await.map(Plan::Done)
    }
}

/// The files `include_vars` walks under a directory, in Ansible's order:
/// directories sorted by path, files sorted by name in each, no deeper than
/// `depth` (0 = unlimited), symbolic links followed.
fn walk_vars_dir(root: &std::path::Path, depth: usize) -> Vec<(std::path::PathBuf, Vec<String>)> {
    fn go(dir: &std::path::Path, level: usize, depth: usize, out: &mut Vec<(std::path::PathBuf, Vec<String>)>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        for e in rd.filter_map(Result::ok) {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(name);
            }
        }
        files.sort();
        if depth == 0 || level <= depth {
            out.push((dir.to_path_buf(), files));
        }
        if depth != 0 && level >= depth {
            return;
        }
        for d in dirs {
            go(&d, level + 1, depth, out);
        }
    }
    let mut out = Vec::new();
    go(root, 1, depth, &mut out);
    out.sort_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));
    out
}

use crate::ansible_cfg::merge_hash;

impl IncludeVars {
    async fn outcome(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<ModuleOutcome, ModuleError> {
        let s = |k: &str| args.get(k).and_then(Value::as_str).map(str::to_string);
        let dir_args = [
            "dir",
            "depth",
            "files_matching",
            "ignore_files",
            "extensions",
            "ignore_unknown_extensions",
        ];
        let file_args = ["file", "_raw_params"];
        if dir_args.iter().any(|k| args.contains_key(*k)) && file_args.iter().any(|k| args.contains_key(*k)) {
            return Err(ModuleError::Args(
                "include_vars: you are mixing file only and dir only arguments, these are incompatible".into(),
            ));
        }
        let list = |k: &str| -> Vec<String> {
            match args.get(k) {
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| match x {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect(),
                Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
                _ => Vec::new(),
            }
        };
        let mut files = Vec::new();
        let mut failure: Option<String> = None;
        if let Some(d) = s("dir") {
            let role_path = ctx
                .vars
                .get_attr("role_path")
                .ok()
                .and_then(|v| v.as_str().map(std::path::PathBuf::from));
            let dir = match &role_path {
                Some(rp) if d.split('/').next() == Some("vars") && rp.join(&d).exists() => rp.join(&d),
                Some(_) if d.split('/').next() == Some("vars") => std::path::PathBuf::from(&d),
                Some(rp) => rp.join("vars").join(&d),
                None => std::path::Path::new(&*ctx.loc.file)
                    .parent()
                    .map(|p| p.join(&d))
                    .unwrap_or_else(|| std::path::PathBuf::from(&d)),
            };
            let matcher = match s("files_matching") {
                Some(r) => Some(
                    regex::Regex::new(&crate::pyregex::translate(&r))
                        .map_err(|e| ModuleError::Args(format!("include_vars: bad files_matching: {e}")))?,
                ),
                None => None,
            };
            let ignore = list("ignore_files")
                .iter()
                .map(|i| {
                    regex::Regex::new(&format!("{}$", crate::pyregex::translate(i)))
                        .map_err(|_| ModuleError::Args(format!("Invalid regular expression: {i}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let extensions = if args.contains_key("extensions") {
                list("extensions")
            } else {
                vec!["yaml".into(), "yml".into(), "json".into()]
            };
            let skip_unknown = args
                .get("ignore_unknown_extensions")
                .is_some_and(|v| crate::modules::values::value_bool(v) == Some(true));
            let depth = args
                .get("depth")
                .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                .unwrap_or(0);
            let valid_ext = |name: &str| {
                // Python's os.path.splitext: a leading dot is not an extension.
                let stem = name.trim_start_matches('.');
                let ext = stem.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
                extensions.iter().any(|e| e == ext)
            };
            if !dir.exists() {
                failure = Some(format!("{} directory does not exist", dir.display()));
            } else if !dir.is_dir() {
                failure = Some(format!("{} is not a directory", dir.display()));
            } else {
                'walk: for (root, names) in walk_vars_dir(&dir, depth as usize) {
                    for name in names {
                        if let Some(rp) = &role_path {
                            if root.join(&name) == rp.join("vars").join("main.yml") {
                                continue;
                            }
                        }
                        if matcher.as_ref().is_some_and(|m| !m.is_match(&name)) {
                            continue;
                        }
                        if ignore.iter().any(|r| r.is_match(&name)) || (skip_unknown && !valid_ext(&name)) {
                            continue;
                        }
                        if !valid_ext(&name) {
                            failure = Some(format!(
                                "{} does not have a valid extension: {}",
                                root.join(&name).display(),
                                extensions.join(", ")
                            ));
                            break 'walk;
                        }
                        files.push(root.join(&name));
                    }
                }
            }
        } else if let Some(f) = s("file").or_else(|| s("_raw_params")) {
            let f = f.trim_end_matches('\n').trim().to_string();
            match ctx.find_local("vars", &f) {
                Ok(p) => files.push(p),
                Err(_) => failure = Some(format!("Could not find file on the Ansible Controller: {f}")),
            }
        } else if args.contains_key("file") || args.contains_key("_raw_params") {
            failure = Some("Could not find file on the Ansible Controller: None".into());
        } else {
            return Err(ModuleError::Args("include_vars: give `file` or `dir`".into()));
        }
        let mut vars = Map::new();
        let mut loaded = Vec::new();
        // As Ansible: the result of loading any vaulted file is hidden (no_log).
        let mut encrypted = false;
        if failure.is_none() {
            for f in &files {
                encrypted |= std::fs::read(f).is_ok_and(|b| crate::vault::is_encrypted(&b));
                let n = crate::yaml::load_file(f).map_err(|e| ModuleError::Failed(e.to_string()))?;
                match n.to_json() {
                    Value::Object(m) => vars.extend(m),
                    Value::Null => {}
                    _ => {
                        failure = Some(format!("{} must be stored as a dictionary/hash", f.display()));
                        break;
                    }
                }
                loaded.push(Value::String(f.display().to_string()));
            }
        }
        if let Some(msg) = failure {
            return Ok(ModuleOutcome::failed(msg.clone())
                .with("message", msg)
                .with("ansible_included_var_files", loaded));
        }
        let mut facts = match s("name") {
            Some(name) => {
                let mut m = Map::new();
                m.insert(name, Value::Object(vars));
                m
            }
            None => vars,
        };
        if s("hash_behaviour").as_deref() == Some("merge") {
            for (k, v) in facts.iter_mut() {
                if let Ok(old) = ctx.vars.get_attr(k) {
                    if let Ok(old) = serde_json::to_value(&old) {
                        *v = merge_hash(&old, v);
                    }
                }
            }
        }
        let outcome = ModuleOutcome::ok()
            .with("ansible_facts", Value::Object(facts.clone()))
            .with_effect(ControllerEffect::IncludeVars(facts))
            .with("ansible_included_var_files", loaded);
        Ok(if encrypted {
            outcome.with("_ansible_no_log", true)
        } else {
            outcome
        })
    }
}

static ADD_HOST_DOC: ModuleDoc = doc!(
    "add_host",
    "Add a host (and groups) to the in-memory inventory",
    "Adds `name` to the inventory for the following plays, in `groups`, with every other \
argument as a host variable.",
    free = false,
    ctl = true,
    opts = &[
        OptionDoc::new("name", OptKind::Str, "Host name.")
            .aliases(&["host", "hostname"])
            .required(),
        OptionDoc::new("groups", OptKind::List, "Groups to add the host to.").aliases(&["group", "groupname"]),
    ],
    ex = "- add_host:\n    name: \"{{ new_ip }}\"\n    groups: just_created\n    ansible_user: debian\n",
    ret = &[]
);

struct AddHost;

#[async_trait]
impl Module for AddHost {
    fn doc(&self) -> &'static ModuleDoc {
        &ADD_HOST_DOC
    }
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        self.outcome(ctx, args).await.map(Plan::Done)
    }
}

impl AddHost {
    async fn outcome(&self, _ctx: &ModuleCtx<'_>, mut args: Map<String, Value>) -> Result<ModuleOutcome, ModuleError> {
        let name = ["name", "host", "hostname"]
            .iter()
            .find_map(|k| args.remove(*k))
            .and_then(|v| v.as_str().map(str::to_string))
            .ok_or_else(|| ModuleError::Args("add_host: `name` is required".into()))?;
        // `host:port` (Ansible's parse_address): the port becomes
        // `ansible_ssh_port`; a name that does not parse is kept as it is.
        let name = match crate::inventory::split_host_port(&name) {
            Ok((host, Some(port))) => {
                args.insert("ansible_ssh_port".into(), Value::from(port));
                host
            }
            Ok((host, None)) => host,
            Err(_) => name,
        };
        let groups = ["groups", "group", "groupname"]
            .iter()
            .find_map(|k| args.remove(*k))
            .unwrap_or(Value::Null);
        let mut groups: Vec<Value> = match groups {
            Value::Array(a) => a,
            Value::String(s) if s.is_empty() => Vec::new(),
            Value::String(s) => s.split(',').map(|x| Value::String(x.trim().to_string())).collect(),
            Value::Null => Vec::new(),
            _ => {
                return Err(ModuleError::Args(
                    "add_host: Groups must be specified as a list.".into(),
                ))
            }
        };
        let mut seen = std::collections::HashSet::new();
        groups.retain(|g| seen.insert(g.clone().to_string()));
        let mut spec = Map::new();
        spec.insert("host_name".into(), Value::String(name.clone()));
        spec.insert("groups".into(), Value::Array(groups.clone()));
        spec.insert("host_vars".into(), Value::Object(args.clone()));
        let groups = groups.iter().filter_map(|g| g.as_str().map(str::to_string)).collect();
        Ok(ModuleOutcome::changed(true)
            .with("add_host", Value::Object(spec))
            .with_effect(ControllerEffect::AddHost {
                name,
                groups,
                vars: args,
            }))
    }
}

static GROUP_BY_DOC: ModuleDoc = doc!(
    "group_by",
    "Create groups from a key",
    "Adds the host to the group named `key` (and to `parents`).",
    free = false,
    ctl = true,
    opts = &[
        OptionDoc::new("key", OptKind::Str, "Group name.").required(),
        OptionDoc::new("parents", OptKind::List, "Parent groups.").default("all"),
    ],
    ex = "- group_by:\n    key: os_{{ ansible_facts.distribution }}\n",
    ret = &[]
);

struct GroupBy;

#[async_trait]
impl Module for GroupBy {
    fn doc(&self) -> &'static ModuleDoc {
        &GROUP_BY_DOC
    }
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        self.outcome(ctx, args).await.map(Plan::Done)
    }
}

impl GroupBy {
    async fn outcome(&self, _ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<ModuleOutcome, ModuleError> {
        let key = args
            .get("key")
            .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
            .ok_or_else(|| ModuleError::Args("group_by: `key` is required".into()))?;
        // As Ansible's group_by action: spaces become dashes, nothing else
        // changes (TRANSFORM_INVALID_GROUP_CHARS defaults to `never`).
        let name = |s: &str| s.replace(' ', "-");
        let key = name(&key);
        let parents: Vec<String> = match args.get("parents") {
            None | Some(Value::Null) => vec!["all".to_string()],
            Some(Value::String(s)) => vec![name(s)],
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| name(&v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
                .collect(),
            Some(other) => {
                return Err(ModuleError::Args(format!(
                    "group_by: `parents` must be a group name or a list of them, not {other}"
                )))
            }
        };
        if key.is_empty() {
            return Err(ModuleError::Args("group_by: `key` is empty".into()));
        }
        Ok(ModuleOutcome::ok()
            .with("add_group", key.clone())
            .with("parent_groups", parents.clone())
            .with_effect(ControllerEffect::JoinGroup { group: key, parents }))
    }
}

static PING_DOC: ModuleDoc = doc!(
    "ping",
    "Check that the host can be reached and run a shell",
    "Runs a trivial command on the host; returns `ping: pong` (or `data`). `data: crash` fails.",
    free = false,
    ctl = false,
    opts = &[OptionDoc::new("data", OptKind::Str, "Value returned as `ping`.").default("pong")],
    ex = "- ping:\n",
    ret = &[ReturnDoc {
        name: "ping",
        description: "`data`, `pong` by default"
    }]
);

struct Ping;

#[async_trait]
impl Module for Ping {
    fn doc(&self) -> &'static ModuleDoc {
        &PING_DOC
    }
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        self.outcome(ctx, args).await.map(Plan::Done)
    }
}

impl Ping {
    async fn outcome(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<ModuleOutcome, ModuleError> {
        // `data` is a `str` option: a number or boolean is its Python text.
        let data = match args.get("data") {
            None | Some(Value::Null) => "pong".to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => if *b { "True" } else { "False" }.to_string(),
            Some(other) => other.to_string(),
        };
        if data == "crash" {
            // Ansible's ping raises `Exception("boom")`; ansible-core 2.19
            // words a module that raised with the chain of its errors.
            return Ok(ModuleOutcome::failed("Task failed: Module failed: boom"));
        }
        let out = ctx.run("echo pong").await?;
        if out.status != 0 || !out.stdout_str().contains("pong") {
            return Ok(ModuleOutcome::failed(format!(
                "the host's shell did not answer: {}",
                out.stderr_str().trim()
            )));
        }
        Ok(ModuleOutcome::ok().with("ping", data))
    }
}

#[cfg(test)]
mod tests {
    use super::is_variable_path;

    #[test]
    fn variable_paths_and_nothing_else() {
        for ok in [
            "x",
            "result.stdout_lines",
            "a_1['key with space']",
            "h[0].b",
            "d[\"k\"]",
        ] {
            assert!(is_variable_path(ok), "{ok}");
        }
        for bad in [
            "",
            "lookup('pipe', 'id')",
            "x ~ lookup('pipe','id')",
            "x['a'] ~ y",
            "1x",
            "x.y()",
            "x|upper",
            "{{ x }}",
            "x[''] or q('pipe','id')",
        ] {
            assert!(!is_variable_path(bad), "{bad}");
        }
    }
}
