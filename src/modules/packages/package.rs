//! Package managers: `apt`, `dnf`, `yum`, and the generic `package`.
//!
//! `apt` reads the dpkg status of every named package, the candidate
//! versions from `apt-cache policy` and the cache age in one round trip,
//! updates the cache only when it is older than `cache_valid_time`, and runs
//! one `apt-get` for everything that must change. `dnf`/`yum` do the same
//! with `rpm -q` and `dnf check-update`.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connection::sh_quote;
use crate::modules::args::de_string_list;
use crate::modules::host::command::failure_text;
use crate::modules::host::command::run_checked;
use crate::modules::host::text::record_diff;
use crate::modules::host::text::tagged;
use crate::modules::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

// ---------------------------------------------------------------- apt

const APT_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "name",
        OptKind::List,
        "Package names, optionally with a version (`foo=1.0`, `foo=1.*`). A list or a comma-separated string.",
    )
    .aliases(&["package", "pkg"]),
    OptionDoc::new(
        "state",
        OptKind::Str,
        "`present`: installed (any version, or the given one); `latest`: the candidate version; `absent`: \
removed; `build-dep`: the build dependencies are installed; `fixed`: broken dependencies are fixed.",
    )
    .default("present")
    .choices(&[
        "absent",
        "build-dep",
        "latest",
        "present",
        "fixed",
        "installed",
        "removed",
    ]),
    OptionDoc::new("update_cache", OptKind::Bool, "Run `apt-get update` first.")
        .default("no")
        .aliases(&["update-cache"]),
    OptionDoc::new(
        "cache_valid_time",
        OptKind::Int,
        "Update the cache only when it is older than this many seconds (implies `update_cache`).",
    )
    .default("0"),
    OptionDoc::new(
        "deb",
        OptKind::Path,
        "Path to a `.deb` file to install: on the target, or else on the controller (uploaded to a temporary \
file first; relative paths are searched in `files/`).",
    ),
    OptionDoc::new(
        "purge",
        OptKind::Bool,
        "With `state=absent`, also remove configuration files.",
    )
    .default("no"),
    OptionDoc::new(
        "autoremove",
        OptKind::Bool,
        "Remove packages that were installed as dependencies and are no longer needed.",
    )
    .default("no"),
    OptionDoc::new(
        "install_recommends",
        OptKind::Bool,
        "Install recommended packages too (`yes`) or not (`no`); unset: apt's configuration decides.",
    )
    .aliases(&["install-recommends"]),
    OptionDoc::new(
        "force",
        OptKind::Bool,
        "Allow unauthenticated packages, downgrades, and removal of held or essential packages.",
    )
    .default("no"),
    OptionDoc::new(
        "allow_downgrade",
        OptKind::Bool,
        "Allow installing a lower version than the installed one.",
    )
    .default("no")
    .aliases(&["allow-downgrade", "allow_downgrades", "allow-downgrades"]),
    OptionDoc::new(
        "allow_unauthenticated",
        OptKind::Bool,
        "Allow unauthenticated packages.",
    )
    .default("no")
    .aliases(&["allow-unauthenticated"]),
    OptionDoc::new(
        "only_upgrade",
        OptKind::Bool,
        "Only upgrade packages that are already installed.",
    )
    .default("no"),
    OptionDoc::new(
        "default_release",
        OptKind::Str,
        "Install from this release (`apt-get -t`), e.g. `bookworm-backports`.",
    )
    .aliases(&["default-release"]),
    OptionDoc::new(
        "dpkg_options",
        OptKind::Str,
        "Comma-separated dpkg options, each passed as `-o Dpkg::Options::=--OPTION`.",
    )
    .default("force-confdef,force-confold"),
];

static APT_DOC: ModuleDoc = ModuleDoc {
    name: "apt",
    aliases: &[],
    short: "Manage apt packages",
    description: "Installs, upgrades and removes packages with apt-get on Debian and Ubuntu. The dpkg status \
of all named packages is read with one `dpkg-query`; `present` means installed (status `ii` or `hi`). \
In check mode apt-get is not run and the result says exactly what a real run would install or remove.",
    free_form: false,
    options: APT_OPTIONS,
    examples: "- apt:\n    name: [nginx, curl]\n    update_cache: yes\n    cache_valid_time: 3600\n\n\
- apt:\n    name: foo=1.0*\n\n- apt:\n    name: nginx\n    state: absent\n    purge: yes\n\n\
- apt:\n    deb: files/tool_1.0_all.deb\n",
    returns: &[
        ReturnDoc {
            name: "cache_updated",
            description: "whether the cache was updated",
        },
        ReturnDoc {
            name: "cache_update_time",
            description: "time of the last cache update (epoch seconds)",
        },
        ReturnDoc {
            name: "stdout",
            description: "output of apt-get/dpkg",
        },
        ReturnDoc {
            name: "stderr",
            description: "error output of apt-get/dpkg",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AptParams {
    #[serde(default, deserialize_with = "de_string_list")]
    name: Vec<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    update_cache: bool,
    #[serde(default)]
    cache_valid_time: Option<i64>,
    #[serde(default)]
    deb: Option<String>,
    #[serde(default)]
    purge: bool,
    #[serde(default)]
    autoremove: bool,
    #[serde(default)]
    install_recommends: Option<bool>,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    allow_downgrade: bool,
    #[serde(default)]
    allow_unauthenticated: bool,
    #[serde(default)]
    only_upgrade: bool,
    #[serde(default)]
    default_release: Option<String>,
    #[serde(default)]
    dpkg_options: Option<String>,
}

/// A package name with an optional version (`name=version`, version may end in `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PkgSpec {
    pub name: String,
    pub version: Option<String>,
}

pub(crate) fn parse_spec(s: &str) -> PkgSpec {
    match s.split_once('=') {
        Some((n, v)) if !v.is_empty() => PkgSpec {
            name: n.trim().to_string(),
            version: Some(v.trim().to_string()),
        },
        _ => PkgSpec {
            name: s.trim().trim_end_matches('=').to_string(),
            version: None,
        },
    }
}

/// Whether `version` matches `pattern` (exact, or a prefix when it ends in `*`).
pub(crate) fn version_matches(pattern: &str, version: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => version.starts_with(prefix),
        None => pattern == version,
    }
}

/// The dpkg state of one package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DpkgStatus {
    /// Second letter of `db:Status-Abbrev`: `i` installed, `c` config files only, `n` not installed, ...
    pub status: char,
    pub version: String,
}

impl DpkgStatus {
    pub fn installed(&self) -> bool {
        self.status == 'i'
    }
    /// Anything left on disk that `remove` (or `purge`) would act on.
    pub fn removable(&self, purge: bool) -> bool {
        !matches!(self.status, 'n' | 'c') || (purge && self.status == 'c')
    }
}

/// What `apt-cache policy` says about one package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Policy {
    pub candidate: Option<String>,
    /// Every version in the version table, best first.
    pub versions: Vec<String>,
}

/// Everything the apt query learns.
#[derive(Debug, Clone, Default)]
pub(crate) struct AptState {
    pub now: i64,
    pub cache_mtime: i64,
    pub dpkg: std::collections::HashMap<String, DpkgStatus>,
    pub policy: std::collections::HashMap<String, Policy>,
    /// `Package` and `Version` of the `deb` file.
    pub deb: Option<(String, String)>,
    /// The named packages apt has marked automatically installed (`Auto-Installed: 1` in
    /// `/var/lib/apt/extended_states`).
    pub auto: std::collections::BTreeSet<String>,
}

/// The one-round-trip query script.
pub(crate) fn apt_query_script(names: &[String], with_policy: bool, deb: Option<&str>) -> String {
    let q: Vec<String> = names.iter().map(|n| sh_quote(n)).collect();
    let q = q.join(" ");
    let mut s = String::from(
        "export LC_ALL=C; echo \"T|$(date +%s)\"; command -v apt-get >/dev/null 2>&1 || echo NOAPT; \
         if [ -f /var/lib/apt/periodic/update-success-stamp ]; then \
         echo \"M|$(stat -c %Y /var/lib/apt/periodic/update-success-stamp)\"; \
         else echo \"M|$(stat -c %Y /var/lib/apt/lists 2>/dev/null || echo 0)\"; fi\n",
    );
    if !names.is_empty() {
        s.push_str(&format!(
            "dpkg-query -W -f='P|${{Package}}|${{db:Status-Abbrev}}|${{Version}}\\n' {q} 2>/dev/null\n"
        ));
        if with_policy {
            s.push_str(&format!("apt-cache policy {q} 2>/dev/null | sed 's/^/A|/'\n"));
            // Which of them are marked automatically installed (dependencies): Ansible's apt marks every
            // named package manual after `present`/`latest`.
            let want = sh_quote(&format!(" {} ", names.join(" ")));
            s.push_str(&format!(
                "awk -v want={want} '/^Package:/{{p=$2}} /^Auto-Installed: *1/{{if (index(want, \" \" p \" \")) \
                 print \"U|\" p}}' /var/lib/apt/extended_states 2>/dev/null\n"
            ));
        }
    }
    if let Some(d) = deb {
        let d = sh_quote(d);
        s.push_str(&format!(
            "if [ -f {d} ]; then printf 'D|%s|%s\\n' \"$(dpkg-deb -f {d} Package)\" \"$(dpkg-deb -f {d} Version)\"; \
             p=$(dpkg-deb -f {d} Package); \
             dpkg-query -W -f='P|${{Package}}|${{db:Status-Abbrev}}|${{Version}}\\n' \"$p\" 2>/dev/null; \
             else echo NODEB; fi\n"
        ));
    }
    // dpkg-query fails for unknown names: that is an answer, not an error.
    s.push_str("exit 0\n");
    s
}

pub(crate) fn parse_apt_state(out: &str) -> Result<AptState, ModuleError> {
    if out.lines().any(|l| l == "NOAPT") {
        return Err(ModuleError::Failed(
            "apt-get not found on the target: the apt module needs a Debian-family host".into(),
        ));
    }
    let mut st = AptState::default();
    for v in tagged(out, "T|") {
        st.now = v.trim().parse().unwrap_or(0);
    }
    for v in tagged(out, "M|") {
        st.cache_mtime = v.trim().parse().unwrap_or(0);
    }
    for v in tagged(out, "P|") {
        let f: Vec<&str> = v.splitn(3, '|').collect();
        if f.len() != 3 {
            continue;
        }
        let status = f[1].chars().nth(1).unwrap_or('n');
        let name = f[0].split(':').next().unwrap_or(f[0]).to_string();
        let entry = DpkgStatus {
            status,
            version: f[2].to_string(),
        };
        // Several architectures: keep an installed one.
        let keep = st.dpkg.get(&name).is_some_and(|e| e.installed());
        if !keep {
            st.dpkg.insert(name, entry);
        }
    }
    for v in tagged(out, "U|") {
        st.auto.insert(v.trim().to_string());
    }
    for v in tagged(out, "D|") {
        if let Some((p, ver)) = v.split_once('|') {
            if !p.is_empty() {
                st.deb = Some((p.to_string(), ver.to_string()));
            }
        }
    }
    let mut current: Option<String> = None;
    for line in tagged(out, "A|") {
        if !line.starts_with(' ') && line.ends_with(':') {
            let name = line.trim_end_matches(':');
            let name = name.split(':').next().unwrap_or(name).to_string();
            st.policy.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        let Some(name) = &current else { continue };
        let Some(p) = st.policy.get_mut(name) else { continue };
        let t = line.trim();
        if let Some(c) = t.strip_prefix("Candidate:") {
            let c = c.trim();
            p.candidate = (c != "(none)").then(|| c.to_string());
            continue;
        }
        if t.starts_with("Installed:") || t.starts_with("Version table:") {
            continue;
        }
        let toks: Vec<&str> = t.trim_start_matches("***").split_whitespace().collect();
        // A version line is `VERSION PRIORITY`; a source line is `PRIORITY URL ...`.
        if toks.len() == 2 && toks[1].parse::<i64>().is_ok() && toks[0].parse::<i64>().is_err() {
            p.versions.push(toks[0].to_string());
        }
    }
    Ok(st)
}

/// What apt must do for the named packages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AptPlan {
    /// `name` or `name=version` arguments for `apt-get install`.
    pub install: Vec<String>,
    pub remove: Vec<String>,
    /// (name, before, after) for the diff.
    pub changes: Vec<(String, String, String)>,
}

const NOT_INSTALLED: &str = "not installed";

pub(crate) fn plan_apt(specs: &[PkgSpec], state: &str, purge: bool, st: &AptState) -> Result<AptPlan, String> {
    let mut plan = AptPlan::default();
    for spec in specs {
        let cur = st.dpkg.get(&spec.name);
        let before = cur
            .filter(|c| c.installed())
            .map_or(NOT_INSTALLED.to_string(), |c| c.version.clone());
        match state {
            "absent" if cur.is_some_and(|c| c.removable(purge)) => {
                plan.remove.push(spec.name.clone());
                plan.changes.push((spec.name.clone(), before, NOT_INSTALLED.into()));
            }
            "present" | "latest" => {
                let policy = st.policy.get(&spec.name);
                let installed = cur.filter(|c| c.installed());
                let target = match (&spec.version, state) {
                    (Some(_), "latest") => {
                        return Err(format!(
                            "version number inconsistent with state=latest: {}={}",
                            spec.name,
                            spec.version.as_deref().unwrap_or("")
                        ))
                    }
                    (Some(v), _) => {
                        if installed.is_some_and(|c| version_matches(v, &c.version)) {
                            continue;
                        }
                        let found = policy.and_then(|p| p.versions.iter().find(|x| version_matches(v, x)));
                        match found {
                            Some(x) => (format!("{}={x}", spec.name), x.clone()),
                            None => return Err(format!("No package matching '{}={v}' is available", spec.name)),
                        }
                    }
                    (None, _) => {
                        let cand = policy.and_then(|p| p.candidate.clone());
                        match (installed, state) {
                            (Some(_), "present") => continue,
                            (Some(c), _) if cand.is_none() || cand.as_deref() == Some(c.version.as_str()) => continue,
                            _ => {}
                        }
                        match cand {
                            Some(c) => (spec.name.clone(), c),
                            None => return Err(format!("No package matching '{}' is available", spec.name)),
                        }
                    }
                };
                plan.install.push(target.0);
                plan.changes.push((spec.name.clone(), before, target.1));
            }
            _ => {}
        }
    }
    Ok(plan)
}

/// The common `apt-get` prefix and options.
fn apt_get(p: &AptParams) -> String {
    let mut s = String::from("DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true LC_ALL=C apt-get -y");
    let dpkg = p.dpkg_options.as_deref().unwrap_or("force-confdef,force-confold");
    for o in dpkg.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        s.push_str(&format!(" -o Dpkg::Options::=--{}", sh_quote(o)));
    }
    match p.install_recommends {
        Some(true) => s.push_str(" -o APT::Install-Recommends=yes"),
        Some(false) => s.push_str(" -o APT::Install-Recommends=no"),
        None => {}
    }
    if let Some(r) = &p.default_release {
        s.push_str(&format!(" -t {}", sh_quote(r)));
    }
    if p.force {
        s.push_str(" --allow-unauthenticated --allow-downgrades --allow-remove-essential --allow-change-held-packages");
    } else {
        if p.allow_unauthenticated {
            s.push_str(" --allow-unauthenticated");
        }
        if p.allow_downgrade {
            s.push_str(" --allow-downgrades");
        }
    }
    s
}

/// Whether an apt-get summary line reports any change.
fn apt_output_changed(out: &str) -> bool {
    out.lines().any(|l| {
        let l = l.trim();
        (l.contains(" upgraded,") && l.contains(" newly installed"))
            && !l.starts_with("0 upgraded, 0 newly installed, 0 to remove")
    })
}

pub(crate) struct AptModule;

#[async_trait]
impl Module for AptModule {
    fn doc(&self) -> &'static ModuleDoc {
        &APT_DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: AptParams = parse_params(&APT_DOC, args)?;
        let state = match p.state.as_deref().unwrap_or("present") {
            "installed" => "present",
            "removed" => "absent",
            s @ ("present" | "absent" | "latest" | "build-dep" | "fixed") => s,
            other => {
                return Err(ModuleError::Args(format!(
                    "apt: state must be one of present, absent, latest, build-dep, fixed; got `{other}`"
                )))
            }
        };
        let valid = p.cache_valid_time.unwrap_or(0);
        let want_update = p.update_cache || valid > 0;
        if p.name.is_empty() && p.deb.is_none() && !want_update && !p.autoremove && state != "fixed" {
            return Err(ModuleError::Args(
                "apt: one of name, deb, update_cache, cache_valid_time or autoremove is required".into(),
            ));
        }
        let specs: Vec<PkgSpec> = p.name.iter().map(|n| parse_spec(n)).collect();
        let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        let with_policy = matches!(state, "present" | "latest");

        // A .deb that is not on the target is uploaded to a temporary file first.
        let mut deb_path = p.deb.clone();
        let mut uploaded: Option<String> = None;
        if let Some(d) = &p.deb {
            let out = ctx.run(&format!("[ -f {} ] && echo YES", sh_quote(d))).await?;
            if !out.stdout_str().contains("YES") {
                let local = ctx.find_local("files", d)?;
                let tmp = run_checked(ctx, "mktemp", "mktemp /tmp/rigger-deb-XXXXXXXX").await?;
                let tmp = format!("{}.deb", tmp.stdout_str().trim());
                ctx.put_file(&local, &tmp, &Default::default()).await?;
                deb_path = Some(tmp.clone());
                uploaded = Some(tmp);
            }
        }
        let result = self
            .query_inner(
                ctx,
                &p,
                state,
                &specs,
                &names,
                with_policy,
                want_update,
                valid,
                deb_path.as_deref(),
            )
            .await;
        match result {
            Ok((planned, mut commands, mark)) if !commands.is_empty() => {
                commands.extend(mark);
                Ok(Plan::change(planned, AptCommands { commands, uploaded }))
            }
            // Only marking packages manual: as Ansible's apt, done outside check mode and not reported
            // as a change.
            Ok((planned, _, Some(mark))) => Ok(Plan::Change(
                planned,
                Box::new(AptCommands {
                    commands: vec![mark],
                    uploaded,
                }),
            )),
            other => {
                remove_upload(ctx, uploaded).await;
                other.map(|(planned, _, _)| Plan::Done(planned))
            }
        }
    }
}

/// Remove a .deb uploaded for the task (and its mktemp name).
async fn remove_upload(ctx: &ModuleCtx<'_>, uploaded: Option<String>) {
    if let Some(t) = uploaded {
        let base = t.trim_end_matches(".deb").to_string();
        let _ = ctx.run(&format!("rm -f {} {}", sh_quote(&t), sh_quote(&base))).await;
    }
}

/// The apt-get/dpkg commands, in order, their output added to `stdout` and
/// `stderr`; then the uploaded .deb is removed.
struct AptCommands {
    commands: Vec<String>,
    uploaded: Option<String>,
}

#[async_trait]
impl Change for AptCommands {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let result = run_apt_commands(ctx, &self.commands, planned).await;
        remove_upload(ctx, self.uploaded).await;
        result
    }

    /// Check mode: the .deb uploaded for the query is removed.
    async fn discard(self: Box<Self>, ctx: &ModuleCtx<'_>) -> Result<(), ModuleError> {
        remove_upload(ctx, self.uploaded).await;
        Ok(())
    }
}

async fn run_apt_commands(
    ctx: &ModuleCtx<'_>,
    commands: &[String],
    planned: ModuleOutcome,
) -> Result<ModuleOutcome, ModuleError> {
    let text = |k: &str| {
        planned
            .ret
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut stdout = text("stdout");
    let mut stderr = text("stderr");
    for c in commands {
        let o = ctx.run(c).await?;
        stdout.push_str(&o.stdout_str());
        stderr.push_str(&o.stderr_str());
        if o.status != 0 {
            let mut f = ModuleOutcome::failed(failure_text(c, &o));
            f.ret.insert("stdout".into(), stdout.into());
            f.ret.insert("stderr".into(), stderr.into());
            f.ret.insert("rc".into(), o.status.into());
            return Ok(f);
        }
    }
    let mut out = planned;
    out.ret.insert("stdout".into(), stdout.into());
    out.ret.insert("stderr".into(), stderr.into());
    Ok(out)
}

impl AptModule {
    /// The planned outcome and the commands to run.
    #[allow(clippy::too_many_arguments)]
    async fn query_inner(
        &self,
        ctx: &ModuleCtx<'_>,
        p: &AptParams,
        state: &str,
        specs: &[PkgSpec],
        names: &[String],
        with_policy: bool,
        want_update: bool,
        valid: i64,
        deb: Option<&str>,
    ) -> Result<(ModuleOutcome, Vec<String>, Option<String>), ModuleError> {
        let script = apt_query_script(names, with_policy, deb);
        let mut st = parse_apt_state(&run_checked(ctx, "apt query", &script).await?.stdout_str())?;
        let mut out = ModuleOutcome::ok();
        let mut stdout = String::new();
        let mut stderr = String::new();

        let mut cache_updated = false;
        if want_update && st.cache_mtime + valid < st.now {
            let predict = ctx.check_mode; // check_mode: the update precedes the query it refreshes
            if predict {
                cache_updated = true;
            } else {
                let o = ctx.run("LC_ALL=C apt-get update -q").await?;
                if o.status != 0 {
                    return Err(ModuleError::Failed(failure_text("apt-get update", &o)));
                }
                stdout.push_str(&o.stdout_str());
                stderr.push_str(&o.stderr_str());
                let before = st.cache_mtime;
                st = parse_apt_state(&run_checked(ctx, "apt query", &script).await?.stdout_str())?;
                cache_updated = st.cache_mtime > before;
            }
        }
        out.ret.insert("cache_updated".into(), cache_updated.into());
        out.ret.insert("cache_update_time".into(), st.cache_mtime.into());

        let apt = apt_get(p);
        let mut commands: Vec<String> = Vec::new();
        let mut changes: Vec<(String, String, String)> = Vec::new();
        let mut msgs: Vec<String> = Vec::new();
        // `apt-mark manual` for the named packages that are marked automatically installed.
        let mut mark: Option<String> = None;

        if let Some(d) = deb {
            let Some((pkg, ver)) = st.deb.clone() else {
                return Err(ModuleError::Failed(format!(
                    "cannot read the package name of {d} (is it a .deb?)"
                )));
            };
            let cur = st.dpkg.get(&pkg).filter(|c| c.installed());
            if cur.map(|c| c.version.as_str()) != Some(ver.as_str()) {
                let dpkg_opts: String = p
                    .dpkg_options
                    .as_deref()
                    .unwrap_or("force-confdef,force-confold")
                    .split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(|o| format!(" --{}", sh_quote(o)))
                    .collect();
                commands.push(format!(
                    "LC_ALL=C DEBIAN_FRONTEND=noninteractive dpkg{dpkg_opts} -i {}",
                    sh_quote(d)
                ));
                changes.push((
                    pkg.clone(),
                    cur.map_or(NOT_INSTALLED.into(), |c| c.version.clone()),
                    ver,
                ));
                msgs.push(format!("installed {pkg} from {d}"));
            }
        }

        match state {
            "build-dep" | "fixed" => {
                let sub = if state == "fixed" {
                    "-f install".to_string()
                } else {
                    format!(
                        "build-dep {}",
                        names.iter().map(|n| sh_quote(n)).collect::<Vec<_>>().join(" ")
                    )
                };
                // Whether anything would change is only known from a simulation.
                let sim = ctx.run(&format!("{apt} -s {sub}")).await?;
                if sim.status != 0 {
                    return Err(ModuleError::Failed(failure_text(&format!("apt-get {sub}"), &sim)));
                }
                if apt_output_changed(&sim.stdout_str()) {
                    commands.push(format!("{apt} {sub}"));
                    msgs.push(format!("apt-get {sub}"));
                }
            }
            _ if !specs.is_empty() => {
                let plan = plan_apt(specs, state, p.purge, &st).map_err(ModuleError::Failed)?;
                if !plan.install.is_empty() {
                    let only = if p.only_upgrade { " --only-upgrade" } else { "" };
                    let args: Vec<String> = plan.install.iter().map(|n| sh_quote(n)).collect();
                    commands.push(format!("{apt}{only} install {}", args.join(" ")));
                    msgs.push(format!("installed {}", plan.install.join(", ")));
                }
                if !plan.remove.is_empty() {
                    let purge = if p.purge { " --purge" } else { "" };
                    let auto = if p.autoremove { " --auto-remove" } else { "" };
                    let args: Vec<String> = plan.remove.iter().map(|n| sh_quote(n)).collect();
                    commands.push(format!("{apt} remove{purge}{auto} {}", args.join(" ")));
                    msgs.push(format!("removed {}", plan.remove.join(", ")));
                }
                changes.extend(plan.changes);
                // Ansible's apt marks every named package manual after installing (present, latest):
                // a package that came in as a dependency is then kept by `apt-get autoremove`.
                if matches!(state, "present" | "latest") {
                    let auto: Vec<String> = specs
                        .iter()
                        .filter(|s| st.auto.contains(&s.name))
                        .map(|s| sh_quote(&s.name))
                        .collect();
                    if !auto.is_empty() {
                        mark = Some(format!("LC_ALL=C apt-mark manual {}", auto.join(" ")));
                    }
                }
            }
            _ => {}
        }
        if p.autoremove && !(state == "absent" && commands.iter().any(|c| c.contains(" remove"))) {
            let purge = if p.purge { " --purge" } else { "" };
            let sim = ctx.run(&format!("{apt} -s autoremove{purge}")).await?;
            if sim.status == 0 && apt_output_changed(&sim.stdout_str()) {
                commands.push(format!("{apt} autoremove{purge}"));
                msgs.push("removed unneeded packages".into());
            }
        }

        let changed = !commands.is_empty();
        out.changed = changed || cache_updated;
        if ctx.diff_mode && !changes.is_empty() {
            let before: Vec<(String, String)> = changes.iter().map(|c| (c.0.clone(), c.1.clone())).collect();
            let after: Vec<(String, String)> = changes.iter().map(|c| (c.0.clone(), c.2.clone())).collect();
            out.diff.push(record_diff("packages", &before, &after));
        }
        out.msg = Some(if msgs.is_empty() {
            if cache_updated {
                "cache updated".into()
            } else {
                "all packages are in the requested state".into()
            }
        } else {
            msgs.join("; ")
        });
        out.ret.insert("stdout".into(), stdout.into());
        out.ret.insert("stderr".into(), stderr.into());
        Ok((out, commands, mark))
    }
}

// ---------------------------------------------------------------- dnf / yum

const RPM_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "name",
        OptKind::List,
        "Package names (a list or a comma-separated string), optionally `name-version`.",
    )
    .aliases(&["pkg"]),
    OptionDoc::new(
        "state",
        OptKind::Str,
        "Whether the packages are installed, at the newest version, or removed.",
    )
    .default("present")
    .choices(&["absent", "present", "installed", "latest", "removed"]),
    OptionDoc::new(
        "update_cache",
        OptKind::Bool,
        "Refresh the metadata cache first (`makecache`).",
    )
    .default("no")
    .aliases(&["expire-cache"]),
    OptionDoc::new(
        "enablerepo",
        OptKind::List,
        "Repositories to enable for this operation.",
    ),
    OptionDoc::new(
        "disablerepo",
        OptKind::List,
        "Repositories to disable for this operation.",
    ),
    OptionDoc::new("disable_gpg_check", OptKind::Bool, "Do not check package signatures.").default("no"),
    OptionDoc::new(
        "autoremove",
        OptKind::Bool,
        "With `state=absent`, also remove unneeded dependencies.",
    )
    .default("no"),
];

static DNF_DOC: ModuleDoc = ModuleDoc {
    name: "dnf",
    aliases: &["dnf5"],
    short: "Manage packages with dnf",
    description: "Installs, upgrades and removes packages on RHEL-family hosts. Installed packages are read \
with one `rpm -q`; `state=latest` asks `dnf check-update` which of them have updates.",
    free_form: false,
    options: RPM_OPTIONS,
    examples: "- dnf:\n    name: [httpd, mod_ssl]\n    state: latest\n",
    returns: &[ReturnDoc {
        name: "results",
        description: "output of the commands run",
    }],
    controller_only: false,
};

static YUM_DOC: ModuleDoc = ModuleDoc {
    name: "yum",
    aliases: &[],
    short: "Manage packages with yum",
    description: "Like `dnf`, with the `yum` command (RHEL/CentOS 7).",
    free_form: false,
    options: RPM_OPTIONS,
    examples: "- yum:\n    name: httpd\n    state: present\n",
    returns: &[ReturnDoc {
        name: "results",
        description: "output of the commands run",
    }],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RpmParams {
    #[serde(default, deserialize_with = "de_string_list")]
    name: Vec<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    update_cache: bool,
    #[serde(default, deserialize_with = "de_string_list")]
    enablerepo: Vec<String>,
    #[serde(default, deserialize_with = "de_string_list")]
    disablerepo: Vec<String>,
    #[serde(default)]
    disable_gpg_check: bool,
    #[serde(default)]
    autoremove: bool,
}

/// The query: `P|name|version-release` per installed package, and with
/// `latest` the `check-update` listing (`U|...`) and its status (`RC|100` means updates).
pub(crate) fn rpm_query_script(tool: &str, names: &[String], latest: bool, repo_opts: &str) -> String {
    let q: Vec<String> = names.iter().map(|n| sh_quote(n)).collect();
    let q = q.join(" ");
    let mut s = format!(
        "command -v rpm >/dev/null 2>&1 || echo NORPM; command -v {tool} >/dev/null 2>&1 || echo NOTOOL; \
         rpm -q --qf 'P|%{{NAME}}|%{{VERSION}}-%{{RELEASE}}\\n' {q} 2>/dev/null | grep '^P|'\n"
    );
    if latest {
        s.push_str(&format!(
            "{tool} -q{repo_opts} check-update {q} 2>/dev/null | sed 's/^/U|/'; echo \"RC|$?\"\n"
        ));
    }
    s
}

/// Installed versions by name, and the names with pending updates.
pub(crate) fn parse_rpm_state(out: &str) -> (std::collections::HashMap<String, String>, Vec<String>) {
    let mut installed = std::collections::HashMap::new();
    for v in tagged(out, "P|") {
        if let Some((n, ver)) = v.split_once('|') {
            installed.insert(n.to_string(), ver.to_string());
        }
    }
    let mut updates = Vec::new();
    for v in tagged(out, "U|") {
        // `name.arch  version  repo`
        if let Some(first) = v.split_whitespace().next() {
            if v.split_whitespace().count() >= 3 {
                let name = first.rsplit_once('.').map_or(first, |(n, _)| n);
                updates.push(name.to_string());
            }
        }
    }
    (installed, updates)
}

/// The exact commands that bring `names` to `state`, given what is installed
/// and which packages have updates.
pub(crate) fn rpm_plan(
    tool: &str,
    opts: &str,
    names: &[String],
    state: &str,
    installed: &std::collections::HashMap<String, String>,
    updates: &[String],
    autoremove: bool,
) -> Vec<String> {
    let is_installed = |n: &str| {
        installed.contains_key(n)
            || installed.iter().any(|(k, v)| {
                n.strip_prefix(k.as_str())
                    .and_then(|r| r.strip_prefix('-'))
                    .is_some_and(|r| v.starts_with(r))
            })
    };
    let quote = |v: Vec<&String>| v.iter().map(|n| sh_quote(n)).collect::<Vec<_>>().join(" ");
    let mut cmds = Vec::new();
    match state {
        "absent" => {
            let gone: Vec<&String> = names.iter().filter(|n| is_installed(n)).collect();
            if !gone.is_empty() {
                let auto = if autoremove { "" } else { " --noautoremove" };
                let auto = if tool == "dnf" { auto } else { "" };
                cmds.push(format!("{tool} -y{opts} remove{auto} {}", quote(gone)));
            }
        }
        _ => {
            let missing: Vec<&String> = names.iter().filter(|n| !is_installed(n)).collect();
            if !missing.is_empty() {
                cmds.push(format!("{tool} -y{opts} install {}", quote(missing)));
            }
            if state == "latest" {
                let up: Vec<&String> = names
                    .iter()
                    .filter(|n| is_installed(n) && updates.iter().any(|u| u == *n))
                    .collect();
                if !up.is_empty() {
                    cmds.push(format!("{tool} -y{opts} upgrade {}", quote(up)));
                }
            }
        }
    }
    cmds
}

fn rpm_opts(p: &RpmParams) -> String {
    let mut s = String::new();
    for r in &p.disablerepo {
        s.push_str(&format!(" --disablerepo={}", sh_quote(r)));
    }
    for r in &p.enablerepo {
        s.push_str(&format!(" --enablerepo={}", sh_quote(r)));
    }
    if p.disable_gpg_check {
        s.push_str(" --nogpgcheck");
    }
    s
}

async fn query_rpm(
    tool: &str,
    doc: &'static ModuleDoc,
    ctx: &ModuleCtx<'_>,
    args: Map<String, Value>,
) -> Result<Plan, ModuleError> {
    let p: RpmParams = parse_params(doc, args)?;
    let state = match p.state.as_deref().unwrap_or("present") {
        "installed" | "present" => "present",
        "removed" | "absent" => "absent",
        "latest" => "latest",
        other => {
            return Err(ModuleError::Args(format!(
                "{tool}: state must be one of present, absent, latest; got `{other}`"
            )))
        }
    };
    if p.name.is_empty() && !p.update_cache {
        return Err(ModuleError::Args(format!("{tool}: `name` is required")));
    }
    let opts = rpm_opts(&p);
    let mut results = Vec::new();
    let mut changed = false;
    let refresh = p.update_cache && !ctx.check_mode; // check_mode: makecache precedes the query it refreshes
    if refresh {
        let o = run_checked(ctx, &format!("{tool} makecache"), &format!("{tool} -q{opts} makecache")).await?;
        results.push(o.stdout_str());
    }
    let out = run_checked(
        ctx,
        "rpm query",
        &rpm_query_script(tool, &p.name, state == "latest", &opts),
    )
    .await?;
    let text = out.stdout_str();
    if text.lines().any(|l| l == "NORPM" || l == "NOTOOL") {
        return Err(ModuleError::Failed(format!(
            "`rpm` or `{tool}` not found on the target: the {tool} module needs a RHEL-family host"
        )));
    }
    let (installed, updates) = parse_rpm_state(&text);
    let cmds = rpm_plan(tool, &opts, &p.name, state, &installed, &updates, p.autoremove);
    if !cmds.is_empty() {
        changed = true;
    }
    let mut o = ModuleOutcome::changed(changed);
    o.msg = Some(if changed {
        cmds.join("; ")
    } else {
        "Nothing to do".into()
    });
    o.ret.insert("results".into(), Value::from(results.clone()));
    o.ret.insert("commands".into(), Value::from(cmds.clone()));
    if !changed {
        return Ok(Plan::Done(o));
    }
    Ok(Plan::change(o, RunRpm { cmds, results }))
}

/// The dnf/yum commands, in order; their output is added to `results`.
struct RunRpm {
    cmds: Vec<String>,
    /// The output so far (of makecache).
    results: Vec<String>,
}

#[async_trait]
impl Change for RunRpm {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let mut results = self.results;
        for c in &self.cmds {
            let o = run_checked(ctx, c, c).await?;
            results.push(o.stdout_str());
        }
        let mut o = planned;
        o.ret.insert("results".into(), Value::from(results));
        Ok(o)
    }
}

pub(crate) struct DnfModule;
pub(crate) struct YumModule;

#[async_trait]
impl Module for DnfModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DNF_DOC
    }
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        query_rpm("dnf", &DNF_DOC, ctx, args).await
    }
}

#[async_trait]
impl Module for YumModule {
    fn doc(&self) -> &'static ModuleDoc {
        &YUM_DOC
    }
    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        query_rpm("yum", &YUM_DOC, ctx, args).await
    }
}

// ---------------------------------------------------------------- package

static PACKAGE_DOC: ModuleDoc = ModuleDoc {
    name: "package",
    aliases: &[],
    short: "Generic package manager",
    description: "Installs or removes packages with the host's package manager: apt, dnf, yum or apk, \
detected from the commands the host has (or forced with `use`). Options beyond `name` and `state` are \
passed through to the underlying module.",
    free_form: false,
    options: &[
        OptionDoc::new("name", OptKind::List, "Package names.").required(),
        OptionDoc::new(
            "state",
            OptKind::Str,
            "`present`, `absent` or `latest`. Without it, the backend's default (`present`), as in Ansible, \
whose `package` hands its arguments to the backend module.",
        ),
        OptionDoc::new(
            "use",
            OptKind::Str,
            "Package manager module to use: `auto`, `apk`, or the name of a package module (`apt`, `dnf`, \
`dnf5`, `yum`, `ansible.builtin.dnf`...), as Ansible's `use` names any module; one rigger has no backend \
for fails the task where it runs.",
        )
        .default("auto"),
    ],
    examples: "- package:\n    name: ntpdate\n    state: present\n",
    returns: &[],
    controller_only: false,
};

pub(crate) struct PackageModule;

/// apk: `apk info -e` lists which of the names are installed.
pub(crate) fn apk_plan(names: &[String], state: &str, installed: &[String]) -> Option<String> {
    let q = |v: Vec<&String>| v.iter().map(|n| sh_quote(n)).collect::<Vec<_>>().join(" ");
    match state {
        "absent" | "removed" => {
            let gone: Vec<&String> = names.iter().filter(|n| installed.contains(n)).collect();
            (!gone.is_empty()).then(|| format!("apk del {}", q(gone)))
        }
        _ => {
            let missing: Vec<&String> = names.iter().filter(|n| !installed.contains(n)).collect();
            (!missing.is_empty()).then(|| format!("apk add {}", q(missing)))
        }
    }
}

#[async_trait]
impl Module for PackageModule {
    fn doc(&self) -> &'static ModuleDoc {
        &PACKAGE_DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, mut args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let use_ = args
            .remove("use")
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "auto".into());
        // As Ansible's `package` action: `use: auto` means the host's
        // `ansible_package_use`, else the `pkg_mgr` fact when facts were
        // gathered (no probe then), else what the host has.
        let use_ = if use_ == "auto" {
            host_package_use(ctx.vars).unwrap_or(use_)
        } else {
            use_
        };
        let tool = if use_ == "auto" {
            let out = ctx
                .run("for t in apt-get dnf yum apk; do command -v $t >/dev/null 2>&1 && { echo $t; break; }; done")
                .await?;
            match out.stdout_str().trim() {
                "apt-get" => "apt".to_string(),
                "" => {
                    return Err(ModuleError::Failed(
                        "could not detect the package manager (none of apt-get, dnf, yum, apk found); set `use`".into(),
                    ))
                }
                t => t.to_string(),
            }
        } else {
            named_backend(use_)
        };
        // Options of another backend (`enablerepo` of dnf on an apt host)
        // pass the load-time check; the backend chosen here must take them,
        // as the backend module refuses them under Ansible.
        let backend: &ModuleDoc = match tool.as_str() {
            "apt" => &APT_DOC,
            "dnf" => &DNF_DOC,
            "yum" => &YUM_DOC,
            "apk" => &PACKAGE_DOC,
            other => {
                return Err(ModuleError::Failed(format!(
                    "Could not find a matching action for the \"{other}\" package manager."
                )))
            }
        };
        let mut bad: Vec<String> = args
            .keys()
            .filter(|k| {
                !backend
                    .options
                    .iter()
                    .any(|o| o.name == *k || o.aliases.contains(&k.as_str()))
            })
            .cloned()
            .collect();
        if !bad.is_empty() {
            bad.sort();
            return Err(ModuleError::Failed(crate::modules::unsupported::unsupported_message(
                backend, &bad,
            )));
        }
        match tool.as_str() {
            "apt" => AptModule.query(ctx, args).await,
            "dnf" => DnfModule.query(ctx, args).await,
            "yum" => YumModule.query(ctx, args).await,
            "apk" => {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct ApkParams {
                    #[serde(deserialize_with = "de_string_list")]
                    name: Vec<String>,
                    #[serde(default)]
                    state: Option<String>,
                }
                let p: ApkParams = parse_params(&PACKAGE_DOC, args)?;
                let state = p.state.unwrap_or_else(|| "present".into());
                let q: Vec<String> = p.name.iter().map(|n| sh_quote(n)).collect();
                let out = ctx.run(&format!("apk info -e {} 2>/dev/null", q.join(" "))).await?;
                let installed: Vec<String> = out.stdout_str().lines().map(|l| l.trim().to_string()).collect();
                let mut cmd = apk_plan(&p.name, &state, &installed);
                if state == "latest" && cmd.is_none() {
                    let sim = ctx
                        .run(&format!("apk add --simulate --upgrade {}", q.join(" ")))
                        .await?;
                    if sim.stdout_str().contains("Upgrading") {
                        cmd = Some(format!("apk add --upgrade {}", q.join(" ")));
                    }
                }
                let Some(cmd) = cmd else {
                    return Ok(Plan::Done(ModuleOutcome::ok()));
                };
                Ok(Plan::change(
                    ModuleOutcome::changed(true).with_msg(cmd.clone()),
                    RunApk(cmd),
                ))
            }
            other => Err(ModuleError::Failed(format!(
                "Could not find a matching action for the \"{other}\" package manager."
            ))),
        }
    }
}

/// The package manager the host's variables name: `ansible_package_use`,
/// else the gathered `ansible_facts.pkg_mgr` (not `unknown`).
fn host_package_use(vars: &minijinja::Value) -> Option<String> {
    let text = |v: minijinja::Value| v.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    if let Some(u) = vars.get_attr("ansible_package_use").ok().and_then(text) {
        return Some(u);
    }
    vars.get_attr("ansible_facts")
        .ok()
        .and_then(|f| f.get_attr("pkg_mgr").ok())
        .and_then(text)
        .filter(|m| m != "unknown")
}

/// The backend `use` names: a module name (`dnf5`, `ansible.builtin.apt`)
/// stands for the module rigger runs under that name; anything else is
/// kept as given (and refused by `package` if it has no such backend).
fn named_backend(use_: String) -> String {
    // The package managers `package` drives are this file's modules; their
    // docs name them (and their aliases), so the registry is not asked.
    let short = use_
        .strip_prefix("ansible.builtin.")
        .or_else(|| use_.strip_prefix("ansible.legacy."))
        .unwrap_or(&use_);
    [&APT_DOC, &DNF_DOC, &YUM_DOC]
        .iter()
        .find(|d| d.name == short || d.aliases.contains(&short))
        .map(|d| d.name.to_string())
        .unwrap_or_else(|| short.to_string())
}

/// The `apk add`/`apk del` command.
struct RunApk(String);

#[async_trait]
impl Change for RunApk {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        run_checked(ctx, &self.0, &self.0).await?;
        Ok(planned)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn use_names_any_package_module_as_ansible_does() {
        use super::named_backend;
        assert_eq!(named_backend("dnf5".into()), "dnf");
        assert_eq!(named_backend("ansible.builtin.apt".into()), "apt");
        assert_eq!(named_backend("apk".into()), "apk");
        assert_eq!(named_backend("pacman".into()), "pacman");
        // Accepted when the playbook loads; the host decides.
        let args = crate::yaml::parse_one("name: x\nstate: present\nuse: dnf5\n", "t.yml").unwrap();
        let loc = args.loc.clone();
        crate::modules::validate::validate_args(&super::PACKAGE_DOC, &args, &loc, true, &mut Vec::new()).unwrap();
    }

    use super::*;
    use std::collections::HashMap;

    const POLICY: &str = "T|1700000000\nM|1699990000\n\
P|hello|ii |2.10-2\nP|sl|rc |5.02-1\nP|libc6:amd64|ii |2.36-9\n\
A|hello:\nA|  Installed: 2.10-2\nA|  Candidate: 2.10-3\nA|  Version table:\nA|     2.10-3 500\n\
A|        500 http://deb.debian.org/debian bookworm/main amd64 Packages\nA| *** 2.10-2 100\nA|        100 /var/lib/dpkg/status\n\
A|cowsay:\nA|  Installed: (none)\nA|  Candidate: 3.03+dfsg2-8\nA|  Version table:\nA|     3.03+dfsg2-8 500\n";

    #[test]
    fn parses_dpkg_and_policy() {
        let st = parse_apt_state(POLICY).unwrap();
        assert_eq!(st.now, 1700000000);
        assert_eq!(st.cache_mtime, 1699990000);
        assert!(st.dpkg["hello"].installed());
        assert!(!st.dpkg["sl"].installed());
        assert!(st.dpkg["sl"].removable(true) && !st.dpkg["sl"].removable(false));
        assert!(st.dpkg["libc6"].installed());
        assert_eq!(st.policy["hello"].candidate.as_deref(), Some("2.10-3"));
        assert_eq!(st.policy["hello"].versions, vec!["2.10-3", "2.10-2"]);
        assert_eq!(st.policy["cowsay"].versions, vec!["3.03+dfsg2-8"]);
        assert!(parse_apt_state("NOAPT\n").is_err());
    }

    #[test]
    fn plans_like_ansible() {
        let st = parse_apt_state(POLICY).unwrap();
        let specs = |v: &[&str]| v.iter().map(|s| parse_spec(s)).collect::<Vec<_>>();
        let p = plan_apt(&specs(&["hello", "cowsay"]), "present", false, &st).unwrap();
        assert_eq!(p.install, vec!["cowsay"]);
        assert_eq!(
            p.changes,
            vec![("cowsay".into(), NOT_INSTALLED.into(), "3.03+dfsg2-8".into())]
        );
        let p = plan_apt(&specs(&["hello"]), "latest", false, &st).unwrap();
        assert_eq!(p.install, vec!["hello"]);
        let p = plan_apt(&specs(&["hello=2.10*"]), "present", false, &st).unwrap();
        assert!(p.install.is_empty());
        let p = plan_apt(&specs(&["hello=2.10-3"]), "present", false, &st).unwrap();
        assert_eq!(p.install, vec!["hello=2.10-3"]);
        assert!(plan_apt(&specs(&["hello=9*"]), "present", false, &st).is_err());
        assert!(plan_apt(&specs(&["nosuch"]), "present", false, &st)
            .unwrap_err()
            .contains("No package matching"));
        assert!(plan_apt(&specs(&["hello=1"]), "latest", false, &st).is_err());
        let p = plan_apt(&specs(&["hello", "sl", "cowsay"]), "absent", false, &st).unwrap();
        assert_eq!(p.remove, vec!["hello"]);
        let p = plan_apt(&specs(&["hello", "sl", "cowsay"]), "absent", true, &st).unwrap();
        assert_eq!(p.remove, vec!["hello", "sl"]);
    }

    #[test]
    fn specs_and_summaries() {
        assert_eq!(parse_spec("foo=1.0").version.as_deref(), Some("1.0"));
        assert_eq!(parse_spec("foo").version, None);
        assert!(version_matches("1.*", "1.2") && !version_matches("1.*", "2.1") && version_matches("1", "1"));
        assert!(!apt_output_changed(
            "0 upgraded, 0 newly installed, 0 to remove and 3 not upgraded."
        ));
        assert!(apt_output_changed(
            "0 upgraded, 1 newly installed, 0 to remove and 3 not upgraded."
        ));
    }

    #[test]
    fn rpm_commands() {
        let script = rpm_query_script("dnf", &["httpd".into(), "vim enhanced".into()], true, "");
        assert!(script.contains("rpm -q --qf 'P|%{NAME}|%{VERSION}-%{RELEASE}\\n' httpd 'vim enhanced'"));
        assert!(script.contains("dnf -q check-update httpd 'vim enhanced'"));
        let out = "P|httpd|2.4.57-5.el9\nU|\nU|httpd.x86_64   2.4.57-8.el9   appstream\nRC|100\n";
        let (inst, up) = parse_rpm_state(out);
        assert_eq!(inst["httpd"], "2.4.57-5.el9");
        assert_eq!(up, vec!["httpd"]);
        let names: Vec<String> = vec!["httpd".into(), "mod_ssl".into()];
        assert_eq!(
            rpm_plan("dnf", "", &names, "present", &inst, &up, false),
            vec!["dnf -y install mod_ssl"]
        );
        assert_eq!(
            rpm_plan("dnf", " --enablerepo=epel", &names, "latest", &inst, &up, false),
            vec![
                "dnf -y --enablerepo=epel install mod_ssl",
                "dnf -y --enablerepo=epel upgrade httpd"
            ]
        );
        assert_eq!(
            rpm_plan("yum", "", &names, "absent", &inst, &up, false),
            vec!["yum -y remove httpd"]
        );
        assert_eq!(
            rpm_plan("dnf", "", &names, "absent", &inst, &up, false),
            vec!["dnf -y remove --noautoremove httpd"]
        );
        let none: HashMap<String, String> = HashMap::new();
        assert!(rpm_plan("dnf", "", &names, "absent", &none, &[], false).is_empty());
        let vinst: HashMap<String, String> = [("httpd".to_string(), "2.4.57-5.el9".to_string())].into();
        assert!(rpm_plan("dnf", "", &["httpd-2.4.57".into()], "present", &vinst, &[], false).is_empty());
        assert_eq!(
            apk_plan(&names, "present", &["httpd".into()]),
            Some("apk add mod_ssl".into())
        );
        assert_eq!(apk_plan(&names, "absent", &[]), None);
    }
}
