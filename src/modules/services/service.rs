//! Services: `service` (any init system), `systemd_service` (alias
//! `systemd`), `sysvinit`.
//!
//! One script detects the service manager (like Ansible's `service_mgr`
//! fact: systemd when `/run/systemd/system` exists, OpenRC when
//! `/run/openrc` exists and `rc-service` is there, otherwise SysV init
//! scripts in `/etc/init.d`) and reads the service's running, enabled and
//! masked state. The commands that change it are computed on the controller
//! ([`plan`]) and run in one more round trip, never in check mode.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connection::sh_quote;
use crate::modules::host::command::run_checked;
use crate::modules::host::text::record_diff;
use crate::modules::host::text::tagged;
use crate::modules::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};
use crate::shell::quoted_args;

const NAME_OPT: OptionDoc = OptionDoc::new("name", OptKind::Str, "Name of the service (unit).")
    .required()
    .aliases(&["service", "unit"]);
const STATE_OPT: OptionDoc = OptionDoc::new(
    "state",
    OptKind::Str,
    "`started`/`stopped` are idempotent; `restarted` and `reloaded` always act.",
)
.choices(&["reloaded", "restarted", "started", "stopped"]);
const ENABLED_OPT: OptionDoc = OptionDoc::new("enabled", OptKind::Bool, "Whether the service starts on boot.");
const SLEEP_OPT: OptionDoc = OptionDoc::new(
    "sleep",
    OptKind::Int,
    "With `restarted`, seconds to wait between stop and start.",
);
const ARGS_OPT: OptionDoc = OptionDoc::new(
    "arguments",
    OptKind::Str,
    "Extra arguments for the init script (SysV, OpenRC), split into words like a shell does; each word is \
passed quoted, so nothing in them runs.",
)
.aliases(&["args"]);
const PATTERN_OPT: OptionDoc = OptionDoc::new(
    "pattern",
    OptKind::Str,
    "For init scripts without a `status` action: the service runs when a process's command line contains this.",
);
const RUNLEVEL_OPT: OptionDoc = OptionDoc::new(
    "runlevel",
    OptKind::Str,
    "OpenRC runlevel to add the service to (`enabled`).",
)
.default("default");
const DAEMON_RELOAD_OPT: OptionDoc = OptionDoc::new(
    "daemon_reload",
    OptKind::Bool,
    "Run `systemctl daemon-reload` before anything else (not in check mode).",
)
.default("no")
.aliases(&["daemon-reload"]);
const MASKED_OPT: OptionDoc = OptionDoc::new("masked", OptKind::Bool, "Whether the unit is masked (systemd).");

static SERVICE_DOC: ModuleDoc = ModuleDoc {
    name: "service",
    aliases: &[],
    short: "Manage services",
    description: "Starts, stops, restarts and reloads services and sets whether they start on boot, with the \
host's service manager: systemd (`systemctl`), OpenRC (`rc-service`, `rc-update`) or SysV init scripts \
(`/etc/init.d/NAME` with `update-rc.d` or `chkconfig`). The current state is read first; only what differs \
is changed.",
    free_form: false,
    options: &[
        NAME_OPT,
        STATE_OPT,
        ENABLED_OPT,
        SLEEP_OPT,
        ARGS_OPT,
        PATTERN_OPT,
        RUNLEVEL_OPT,
        OptionDoc::new("use", OptKind::Str, "Service manager to use instead of detecting it.")
            .default("auto")
            .choices(&["auto", "systemd", "sysvinit", "openrc"]),
    ],
    examples: "- service:\n    name: nginx\n    state: started\n    enabled: yes\n",
    returns: &[
        ReturnDoc {
            name: "name",
            description: "the service name",
        },
        ReturnDoc {
            name: "state",
            description: "`started` or `stopped` after the task",
        },
        ReturnDoc {
            name: "enabled",
            description: "whether it starts on boot after the task",
        },
    ],
    controller_only: false,
};

static SYSTEMD_DOC: ModuleDoc = ModuleDoc {
    name: "systemd_service",
    aliases: &["systemd"],
    short: "Manage systemd units",
    description: "Controls systemd units with `systemctl`: start/stop/restart/reload, enable/disable, \
mask/unmask, daemon-reload. The unit's `ActiveState`, `UnitFileState` and `LoadState` are read with one \
`systemctl show` first.",
    free_form: false,
    options: &[
        OptionDoc::new("name", OptKind::Str, "Name of the unit.").aliases(&["service", "unit"]),
        STATE_OPT,
        ENABLED_OPT,
        MASKED_OPT,
        DAEMON_RELOAD_OPT,
        OptionDoc::new("scope", OptKind::Str, "`system` or `user` units.")
            .default("system")
            .choices(&["system", "user", "global"]),
        OptionDoc::new("no_block", OptKind::Bool, "Do not wait for the job to finish.").default("no"),
    ],
    examples: "- systemd:\n    name: nginx\n    state: restarted\n    daemon_reload: yes\n\n\
- systemd:\n    name: bluetooth\n    masked: yes\n",
    returns: &[ReturnDoc {
        name: "status",
        description: "`ActiveState`, `UnitFileState`, `LoadState` of the unit before the task",
    }],
    controller_only: false,
};

static SYSVINIT_DOC: ModuleDoc = ModuleDoc {
    name: "sysvinit",
    aliases: &[],
    short: "Manage SysV init services",
    description: "Controls services with their `/etc/init.d` scripts and boot links (`update-rc.d` or \
`chkconfig`).",
    free_form: false,
    options: &[NAME_OPT, STATE_OPT, ENABLED_OPT, SLEEP_OPT, ARGS_OPT, PATTERN_OPT],
    examples: "- sysvinit:\n    name: apache2\n    state: started\n    enabled: yes\n",
    returns: &[],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    sleep: Option<i64>,
    #[serde(default)]
    arguments: Option<String>,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    runlevel: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    daemon_reload: bool,
    #[serde(default)]
    masked: Option<bool>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    no_block: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Manager {
    Systemd,
    OpenRc,
    SysV,
}

impl Manager {
    fn name(self) -> &'static str {
        match self {
            Manager::Systemd => "systemd",
            Manager::OpenRc => "openrc",
            Manager::SysV => "sysvinit",
        }
    }
}

/// The service's state as read from the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ServiceState {
    pub exists: bool,
    pub running: bool,
    pub enabled: bool,
    pub masked: bool,
    /// SysV: whether any boot link exists (else `update-rc.d defaults` comes first).
    pub has_links: bool,
    /// SysV: `update-rc.d` or `chkconfig` (empty: neither).
    pub rc_tool: String,
    /// systemd `show` properties.
    pub props: Vec<(String, String)>,
}

/// Shell snippet that prints `MGR|<manager>` (detection like Ansible's service_mgr).
const DETECT: &str = "if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then mgr=systemd; \
elif [ -d /run/openrc ] && command -v rc-service >/dev/null 2>&1; then mgr=openrc; \
else mgr=sysvinit; fi; echo \"MGR|$mgr\"\n";

fn systemctl(scope: &str) -> String {
    match scope {
        "user" => "systemctl --user".into(),
        "global" => "systemctl --global".into(),
        _ => "systemctl".into(),
    }
}

/// The query for one manager (`None`: detect first and query the detected one).
pub(crate) fn query_script(
    mgr: Option<Manager>,
    name: &str,
    pattern: Option<&str>,
    runlevel: &str,
    scope: &str,
) -> String {
    let n = sh_quote(name);
    let sc = systemctl(scope);
    let systemd =
        format!("{sc} show {n} --no-pager -p ActiveState -p UnitFileState -p LoadState 2>/dev/null | sed 's/^/S|/'\n");
    let status = match pattern {
        Some(p) => format!(
            "ps -eo args 2>/dev/null | grep -v grep | grep -F -q -- {} && echo 'R|0' || echo 'R|1'",
            sh_quote(p)
        ),
        None => "\"$s\" status >/dev/null 2>&1 </dev/null; echo \"R|$?\"".into(),
    };
    let sysv = format!(
        "s=/etc/init.d/{n}; if [ -f \"$s\" ]; then echo EXISTS; {status}; fi; \
         for d in /etc/rc2.d /etc/rc3.d /etc/rc4.d /etc/rc5.d /etc/rc.d/rc2.d /etc/rc.d/rc3.d /etc/rc.d/rc4.d /etc/rc.d/rc5.d; do \
         for l in \"$d\"/S??{n}; do [ -e \"$l\" ] && echo ENABLED; done; \
         for l in \"$d\"/[SK]??{n}; do [ -e \"$l\" ] && echo LINKS; done; done; \
         if command -v update-rc.d >/dev/null 2>&1; then echo 'T|update-rc.d'; \
         elif command -v chkconfig >/dev/null 2>&1; then echo 'T|chkconfig'; fi\n"
    );
    let openrc = format!(
        "if [ -e /etc/init.d/{n} ]; then echo EXISTS; fi; rc-service {n} status >/dev/null 2>&1; echo \"R|$?\"; \
         rc-update show {rl} 2>/dev/null | awk '{{print $1}}' | grep -qx {n} && echo ENABLED\n",
        rl = sh_quote(runlevel)
    );
    match mgr {
        Some(Manager::Systemd) => format!("echo 'MGR|systemd'\n{systemd}"),
        Some(Manager::SysV) => format!("echo 'MGR|sysvinit'\n{sysv}"),
        Some(Manager::OpenRc) => format!("echo 'MGR|openrc'\n{openrc}"),
        None => format!("{DETECT}case $mgr in\nsystemd)\n{systemd};;\nopenrc)\n{openrc};;\n*)\n{sysv};;\nesac\n"),
    }
}

pub(crate) fn parse_state(out: &str) -> Result<(Manager, ServiceState), ModuleError> {
    let mgr = match tagged(out, "MGR|").next() {
        Some("systemd") => Manager::Systemd,
        Some("openrc") => Manager::OpenRc,
        Some("sysvinit") => Manager::SysV,
        _ => return Err(ModuleError::Failed("could not detect the service manager".into())),
    };
    let mut st = ServiceState::default();
    if mgr == Manager::Systemd {
        for kv in tagged(out, "S|") {
            if let Some((k, v)) = kv.split_once('=') {
                st.props.push((k.to_string(), v.to_string()));
            }
        }
        let prop = |k: &str| {
            st.props
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let load = prop("LoadState");
        let file = prop("UnitFileState");
        st.masked = load == "masked" || file == "masked";
        st.exists = !st.props.is_empty() && (load != "not-found" || st.masked);
        st.running = matches!(prop("ActiveState"), "active" | "activating" | "reloading");
        st.enabled = matches!(
            file,
            "enabled" | "enabled-runtime" | "static" | "indirect" | "alias" | "generated"
        );
    } else {
        st.exists = out.lines().any(|l| l == "EXISTS");
        st.running = tagged(out, "R|").next() == Some("0");
        st.enabled = out.lines().any(|l| l == "ENABLED");
        st.has_links = out.lines().any(|l| l == "LINKS");
        st.rc_tool = tagged(out, "T|").next().unwrap_or("").to_string();
    }
    Ok((mgr, st))
}

/// What the task asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Wanted<'a> {
    pub state: Option<&'a str>,
    pub enabled: Option<bool>,
    pub masked: Option<bool>,
    pub sleep: Option<i64>,
    pub arguments: Option<&'a str>,
    pub runlevel: &'a str,
    pub scope: &'a str,
    pub no_block: bool,
}

/// The exact commands that bring the service from `st` to `w`, in order.
pub(crate) fn plan(mgr: Manager, name: &str, st: &ServiceState, w: &Wanted<'_>) -> Result<Vec<String>, String> {
    let n = sh_quote(name);
    let mut cmds = Vec::new();
    // Arguments are words for the init script, never shell code.
    let args = match w.arguments {
        Some(a) => quoted_args(a).ok_or_else(|| format!("unbalanced quotes in arguments `{a}`"))?,
        None => String::new(),
    };
    let act = |verb: &str| -> String {
        match mgr {
            Manager::Systemd => {
                let nb = if w.no_block { " --no-block" } else { "" };
                format!("{}{nb} {verb} {n}", systemctl(w.scope))
            }
            Manager::OpenRc => format!("rc-service {n} {verb}{args}"),
            // Output goes to a file: a daemon that keeps the script's stdout must not hold the session open.
            Manager::SysV => format!(
                "o=$(mktemp); /etc/init.d/{n} {verb}{args} </dev/null >\"$o\" 2>&1; rc=$?; cat \"$o\"; rm -f \"$o\"; exit $rc"
            ),
        }
    };
    if mgr == Manager::Systemd {
        if w.masked == Some(false) && st.masked {
            cmds.push(format!("{} unmask {n}", systemctl(w.scope)));
        }
        if w.masked == Some(true) && !st.masked {
            cmds.push(format!("{} mask {n}", systemctl(w.scope)));
        }
    }
    let masked_after = w.masked.unwrap_or(st.masked);
    if !(st.exists || mgr == Manager::Systemd && w.masked == Some(true)) && (w.state.is_some() || w.enabled.is_some()) {
        return Err(format!("Could not find the requested service {name}: host"));
    }
    if let Some(e) = w.enabled {
        if e != st.enabled {
            if e && masked_after {
                return Err(format!("cannot enable {name}: the unit is masked"));
            }
            match mgr {
                Manager::Systemd => cmds.push(format!(
                    "{} {} {n}",
                    systemctl(w.scope),
                    if e { "enable" } else { "disable" }
                )),
                Manager::OpenRc => cmds.push(format!(
                    "rc-update {} {n} {}",
                    if e { "add" } else { "del" },
                    sh_quote(w.runlevel)
                )),
                Manager::SysV => match st.rc_tool.as_str() {
                    "update-rc.d" => {
                        let defaults = if st.has_links {
                            String::new()
                        } else {
                            format!("update-rc.d {n} defaults && ")
                        };
                        cmds.push(format!(
                            "{defaults}update-rc.d {n} {}",
                            if e { "enable" } else { "disable" }
                        ));
                    }
                    "chkconfig" => {
                        let add = if st.has_links {
                            String::new()
                        } else {
                            format!("chkconfig --add {n} && ")
                        };
                        cmds.push(format!("{add}chkconfig {n} {}", if e { "on" } else { "off" }));
                    }
                    _ => return Err("neither update-rc.d nor chkconfig found to enable or disable the service".into()),
                },
            }
        }
    }
    match w.state {
        Some("started") if !st.running => cmds.push(act("start")),
        Some("stopped") if st.running => cmds.push(act("stop")),
        Some("restarted") => {
            if let (Some(s), true) = (w.sleep, mgr != Manager::Systemd) {
                cmds.push(act("stop"));
                cmds.push(format!("sleep {s}"));
                cmds.push(act("start"));
            } else {
                cmds.push(act("restart"));
            }
        }
        Some("reloaded") => cmds.push(act(if st.running { "reload" } else { "start" })),
        _ => {}
    }
    if masked_after && matches!(w.state, Some("started" | "restarted" | "reloaded")) {
        return Err(format!("cannot start {name}: the unit is masked"));
    }
    Ok(cmds)
}

async fn query_service(
    doc: &'static ModuleDoc,
    forced: Option<Manager>,
    ctx: &ModuleCtx<'_>,
    args: Map<String, Value>,
) -> Result<Plan, ModuleError> {
    let p: Params = parse_params(doc, args)?;
    let name = p.name.clone().unwrap_or_default();
    if name.is_empty() && !(p.daemon_reload && forced == Some(Manager::Systemd)) {
        return Err(ModuleError::Args(format!("{}: `name` is required", doc.name)));
    }
    if let Some(s) = p.state.as_deref() {
        if !matches!(s, "started" | "stopped" | "restarted" | "reloaded") {
            return Err(ModuleError::Args(format!(
                "{}: state must be one of started, stopped, restarted, reloaded; got `{s}`",
                doc.name
            )));
        }
    }
    let mgr = match (forced, p.use_.as_deref()) {
        (Some(m), _) => Some(m),
        (None, None | Some("auto")) => None,
        (None, Some("systemd")) => Some(Manager::Systemd),
        (None, Some("openrc")) => Some(Manager::OpenRc),
        (None, Some("sysvinit" | "sysv")) => Some(Manager::SysV),
        (None, Some(other)) => {
            return Err(ModuleError::Args(format!(
                "service: unsupported service manager `{other}`"
            )));
        }
    };
    let scope = p.scope.as_deref().unwrap_or("system");
    let runlevel = p.runlevel.as_deref().unwrap_or("default");
    let mut script = String::new();
    let reload = p.daemon_reload && !ctx.check_mode; // check_mode: the reload precedes the query (changes its answer)
    if reload {
        script.push_str(&format!("{} daemon-reload || exit 1\n", systemctl(scope)));
    }
    if name.is_empty() {
        run_checked(ctx, "systemctl daemon-reload", &script).await?;
        return Ok(Plan::Done(ModuleOutcome::ok()));
    }
    script.push_str(&query_script(mgr, &name, p.pattern.as_deref(), runlevel, scope));
    let out = run_checked(ctx, "service query", &script).await?;
    let (mgr, st) = parse_state(&out.stdout_str())?;
    // systemd's options pass the load-time check of `service` (see
    // `validate::backend_docs`); another manager chosen here cannot apply them.
    if mgr != Manager::Systemd {
        let given = [
            ("daemon_reload", p.daemon_reload),
            ("masked", p.masked.is_some()),
            ("scope", p.scope.is_some()),
            ("no_block", p.no_block),
        ];
        if let Some((opt, _)) = given.iter().find(|(_, set)| *set) {
            return Err(ModuleError::Args(format!(
                "{}: option `{opt}` is for systemd, and this host's service manager is {mgr:?}",
                doc.name
            )));
        }
    }
    let wanted = Wanted {
        state: p.state.as_deref(),
        enabled: p.enabled,
        masked: p.masked,
        sleep: p.sleep,
        arguments: p.arguments.as_deref(),
        runlevel,
        scope,
        no_block: p.no_block,
    };
    let cmds = plan(mgr, &name, &st, &wanted).map_err(|e| ModuleError::Failed(e.replace(": host", "")))?;
    let mut res = ModuleOutcome::changed(!cmds.is_empty());
    let running_after = match p.state.as_deref() {
        Some("stopped") => false,
        Some(_) => true,
        None => st.running,
    };
    let enabled_after = p.enabled.unwrap_or(st.enabled);
    if ctx.diff_mode && res.changed {
        let side = |running: bool, enabled: bool, masked: bool| {
            let mut v = vec![
                (
                    "state".to_string(),
                    if running { "started" } else { "stopped" }.to_string(),
                ),
                ("enabled".to_string(), enabled.to_string()),
            ];
            if mgr == Manager::Systemd {
                v.push(("masked".to_string(), masked.to_string()));
            }
            v
        };
        res.diff.push(record_diff(
            &format!("service {name}"),
            &side(st.running, st.enabled, st.masked),
            &side(running_after, enabled_after, p.masked.unwrap_or(st.masked)),
        ));
    }
    res.ret.insert("name".into(), name.clone().into());
    res.ret
        .insert("state".into(), if running_after { "started" } else { "stopped" }.into());
    if p.enabled.is_some() {
        res.ret.insert("enabled".into(), enabled_after.into());
    }
    res.ret.insert("service_mgr".into(), mgr.name().into());
    if mgr == Manager::Systemd {
        let status: Map<String, Value> = st
            .props
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        res.ret.insert("status".into(), Value::Object(status));
    }
    if cmds.is_empty() {
        return Ok(Plan::Done(res));
    }
    res.ret.insert("commands".into(), Value::from(cmds.clone()));
    Ok(Plan::change(res, RunServiceCommands(cmds)))
}

/// The commands [`plan`] computed, run in order.
struct RunServiceCommands(Vec<String>);

#[async_trait]
impl Change for RunServiceCommands {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        for c in &self.0 {
            run_checked(ctx, &format!("`{c}`"), c).await?;
        }
        Ok(planned)
    }
}

pub(crate) struct ServiceModule;
pub(crate) struct SystemdModule;
pub(crate) struct SysvinitModule;

#[async_trait]
impl Module for ServiceModule {
    fn doc(&self) -> &'static ModuleDoc {
        &SERVICE_DOC
    }
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        query_service(&SERVICE_DOC, None, ctx, args).await
    }
}

#[async_trait]
impl Module for SystemdModule {
    fn doc(&self) -> &'static ModuleDoc {
        &SYSTEMD_DOC
    }
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        query_service(&SYSTEMD_DOC, Some(Manager::Systemd), ctx, args).await
    }
}

#[async_trait]
impl Module for SysvinitModule {
    fn doc(&self) -> &'static ModuleDoc {
        &SYSVINIT_DOC
    }
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        query_service(&SYSVINIT_DOC, Some(Manager::SysV), ctx, args).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(state: Option<&'static str>, enabled: Option<bool>, masked: Option<bool>) -> Wanted<'static> {
        Wanted {
            state,
            enabled,
            masked,
            runlevel: "default",
            scope: "system",
            ..Default::default()
        }
    }

    #[test]
    fn systemd_plan() {
        let out = "MGR|systemd\nS|LoadState=loaded\nS|ActiveState=inactive\nS|UnitFileState=disabled\n";
        let (mgr, st) = parse_state(out).unwrap();
        assert_eq!(mgr, Manager::Systemd);
        assert!(st.exists && !st.running && !st.enabled && !st.masked);
        let cmds = plan(mgr, "nginx", &st, &w(Some("started"), Some(true), None)).unwrap();
        assert_eq!(cmds, vec!["systemctl enable nginx", "systemctl start nginx"]);
        assert!(plan(mgr, "nginx", &st, &w(Some("stopped"), Some(false), None))
            .unwrap()
            .is_empty());
        assert_eq!(
            plan(mgr, "nginx", &st, &w(None, None, Some(true))).unwrap(),
            vec!["systemctl mask nginx"]
        );
        assert!(plan(mgr, "nginx", &st, &w(Some("started"), None, Some(true))).is_err());

        let masked = "MGR|systemd\nS|LoadState=masked\nS|ActiveState=inactive\nS|UnitFileState=masked\n";
        let (_, st) = parse_state(masked).unwrap();
        assert!(st.masked);
        assert_eq!(
            plan(mgr, "nginx", &st, &w(Some("started"), None, Some(false))).unwrap(),
            vec!["systemctl unmask nginx", "systemctl start nginx"]
        );
        let missing = "MGR|systemd\nS|LoadState=not-found\nS|ActiveState=inactive\nS|UnitFileState=\n";
        let (_, st) = parse_state(missing).unwrap();
        assert!(plan(mgr, "nope", &st, &w(Some("started"), None, None))
            .unwrap_err()
            .contains("Could not find"));
        let mut running = st.clone();
        running.exists = true;
        running.running = true;
        assert_eq!(
            plan(mgr, "x", &running, &w(Some("reloaded"), None, None)).unwrap(),
            vec!["systemctl reload x"]
        );
    }

    #[test]
    fn sysv_and_openrc_plans() {
        let out = "MGR|sysvinit\nEXISTS\nR|3\nT|update-rc.d\n";
        let (mgr, st) = parse_state(out).unwrap();
        assert_eq!(mgr, Manager::SysV);
        let cmds = plan(mgr, "demo", &st, &w(None, Some(true), None)).unwrap();
        assert_eq!(cmds, vec!["update-rc.d demo defaults && update-rc.d demo enable"]);
        let out = "MGR|sysvinit\nEXISTS\nR|0\nENABLED\nLINKS\nT|chkconfig\n";
        let (_, st) = parse_state(out).unwrap();
        assert_eq!(
            plan(mgr, "demo", &st, &w(None, Some(false), None)).unwrap(),
            vec!["chkconfig demo off"]
        );
        assert!(plan(mgr, "demo", &st, &w(Some("started"), Some(true), None))
            .unwrap()
            .is_empty());
        assert!(plan(mgr, "demo", &st, &w(Some("stopped"), None, None)).unwrap()[0].contains("/etc/init.d/demo stop"));

        let out = "MGR|openrc\nEXISTS\nR|1\n";
        let (mgr, st) = parse_state(out).unwrap();
        assert_eq!(
            plan(mgr, "sshd", &st, &w(Some("started"), Some(true), None)).unwrap(),
            vec!["rc-update add sshd default", "rc-service sshd start"]
        );
        let script = query_script(None, "sshd", None, "default", "system");
        assert!(script.contains("case $mgr in"));
        assert!(script.contains("systemctl show sshd"));
    }
}
