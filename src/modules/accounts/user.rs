//! Accounts: `user` and `group`.
//!
//! The account is read with `getent passwd/shadow/group` in one round trip;
//! the exact `useradd`/`usermod`/`userdel` (or `groupadd`/`groupmod`/
//! `groupdel`) command is computed on the controller and run only when
//! something differs.

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

const USER_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("name", OptKind::Str, "Name of the user.")
        .required()
        .aliases(&["user"]),
    OptionDoc::new("state", OptKind::Str, "Whether the account exists.")
        .default("present")
        .choices(&["absent", "present"]),
    OptionDoc::new("uid", OptKind::Int, "The user's uid."),
    OptionDoc::new("non_unique", OptKind::Bool, "Allow a uid that another user has (`-o`).").default("no"),
    OptionDoc::new("group", OptKind::Str, "Primary group (name or gid)."),
    OptionDoc::new(
        "groups",
        OptKind::List,
        "Supplementary groups. With `append: no` the user ends up in exactly these; an empty list or string \
removes every supplementary group.",
    ),
    OptionDoc::new(
        "append",
        OptKind::Bool,
        "Add `groups` to the user's groups instead of replacing them.",
    )
    .default("no"),
    OptionDoc::new("shell", OptKind::Str, "Login shell."),
    OptionDoc::new("home", OptKind::Path, "Home directory."),
    OptionDoc::new("create_home", OptKind::Bool, "Create the home directory of a new user.")
        .default("yes")
        .aliases(&["createhome"]),
    OptionDoc::new(
        "move_home",
        OptKind::Bool,
        "With a new `home`, move the old home directory there.",
    )
    .default("no"),
    OptionDoc::new("system", OptKind::Bool, "Create a system account (only when creating).").default("no"),
    OptionDoc::new("comment", OptKind::Str, "The GECOS field (full name)."),
    OptionDoc::new("password", OptKind::Str, "The password *hash* (as in /etc/shadow)."),
    OptionDoc::new(
        "update_password",
        OptKind::Str,
        "`always` sets `password` when it differs; `on_create` only for new users.",
    )
    .default("always")
    .choices(&["always", "on_create"]),
    OptionDoc::new(
        "password_lock",
        OptKind::Bool,
        "Lock (`yes`) or unlock (`no`) the password.",
    ),
    OptionDoc::new(
        "expires",
        OptKind::Float,
        "Account expiry as epoch seconds; negative removes the expiry.",
    ),
    OptionDoc::new(
        "password_expire_min",
        OptKind::Int,
        "Minimum days between password changes (`chage -m`).",
    ),
    OptionDoc::new(
        "password_expire_max",
        OptKind::Int,
        "Maximum days a password is valid (`chage -M`).",
    ),
    OptionDoc::new(
        "password_expire_warn",
        OptKind::Int,
        "Days of warning before the password expires (`chage -W`).",
    ),
    OptionDoc::new(
        "remove",
        OptKind::Bool,
        "With `state=absent`, remove the home directory and mail spool.",
    )
    .default("no"),
    OptionDoc::new(
        "force",
        OptKind::Bool,
        "With `state=absent`, remove even if the user is logged in.",
    )
    .default("no"),
    OptionDoc::new(
        "generate_ssh_key",
        OptKind::Bool,
        "Generate an SSH key pair for the user if none exists.",
    )
    .default("no"),
    OptionDoc::new("ssh_key_type", OptKind::Str, "Type of the generated key.").default("rsa"),
    OptionDoc::new(
        "ssh_key_bits",
        OptKind::Int,
        "Bits of the generated key (ssh-keygen's default if unset).",
    ),
    OptionDoc::new(
        "ssh_key_file",
        OptKind::Path,
        "Key file, relative to the home directory.",
    )
    .default(".ssh/id_<type>"),
    OptionDoc::new("ssh_key_comment", OptKind::Str, "Comment of the generated key.")
        .default("ansible-generated on <hostname>"),
    OptionDoc::new("ssh_key_passphrase", OptKind::Str, "Passphrase of the generated key."),
];

static USER_DOC: ModuleDoc = ModuleDoc {
    name: "user",
    aliases: &[],
    short: "Manage user accounts",
    description: "Creates, changes and removes user accounts with useradd/usermod/userdel. The account is \
read with `getent` first; only the attributes that differ are changed.",
    free_form: false,
    options: USER_OPTIONS,
    examples: "- user:\n    name: deploy\n    uid: 1040\n    group: admin\n    groups: [sudo, adm]\n    shell: /bin/bash\n\n\
- user:\n    name: deploy\n    generate_ssh_key: yes\n    ssh_key_bits: 2048\n\n- user:\n    name: olduser\n    state: absent\n    remove: yes\n",
    returns: &[
        ReturnDoc { name: "uid", description: "the user's uid" },
        ReturnDoc { name: "group", description: "the primary gid" },
        ReturnDoc { name: "groups", description: "supplementary groups, comma-separated" },
        ReturnDoc { name: "home", description: "home directory" },
        ReturnDoc { name: "shell", description: "login shell" },
        ReturnDoc { name: "comment", description: "GECOS field" },
        ReturnDoc { name: "ssh_public_key", description: "the public key, with generate_ssh_key" },
        ReturnDoc { name: "ssh_key_file", description: "path of the private key, with generate_ssh_key" },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserParams {
    name: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    uid: Option<i64>,
    #[serde(default)]
    non_unique: bool,
    #[serde(default)]
    group: Option<String>,
    #[serde(default, deserialize_with = "de_opt_groups")]
    groups: Option<Vec<String>>,
    #[serde(default)]
    append: bool,
    #[serde(default)]
    shell: Option<String>,
    #[serde(default)]
    home: Option<String>,
    #[serde(default)]
    create_home: Option<bool>,
    #[serde(default)]
    move_home: bool,
    #[serde(default)]
    system: bool,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    update_password: Option<String>,
    #[serde(default)]
    password_lock: Option<bool>,
    #[serde(default)]
    expires: Option<Value>,
    #[serde(default)]
    password_expire_min: Option<i64>,
    #[serde(default)]
    password_expire_max: Option<i64>,
    #[serde(default)]
    password_expire_warn: Option<i64>,
    #[serde(default)]
    remove: bool,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    generate_ssh_key: bool,
    #[serde(default)]
    ssh_key_type: Option<String>,
    #[serde(default)]
    ssh_key_bits: Option<i64>,
    #[serde(default)]
    ssh_key_file: Option<String>,
    #[serde(default)]
    ssh_key_comment: Option<String>,
    #[serde(default)]
    ssh_key_passphrase: Option<String>,
}

/// `groups` as given: `None` when unset, `Some([])` for an empty list or string.
fn de_opt_groups<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(match v {
        Value::Null => None,
        Value::String(s) => Some(
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect(),
        ),
        Value::Array(a) => Some(
            a.into_iter()
                .map(|x| match x {
                    Value::String(s) => s.trim().to_string(),
                    other => other.to_string(),
                })
                .filter(|x| !x.is_empty())
                .collect(),
        ),
        other => Some(vec![other.to_string()]),
    })
}

/// An account as read from `getent`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Account {
    pub uid: u32,
    pub gid: u32,
    pub comment: String,
    pub home: String,
    pub shell: String,
    /// The shadow password field (`!` prefix: locked).
    pub password: String,
    /// Shadow field 8: days since the epoch, empty for none.
    pub expire_days: Option<i64>,
    /// Shadow fields 4 to 6: minimum and maximum password age and warning days (-1: empty).
    pub password_ages: [i64; 3],
    pub supplementary: Vec<String>,
    pub ssh_public_key: Option<String>,
}

/// What the user query learns: the account (if any), the named groups as
/// `(name, gid)`, and the host name.
#[derive(Debug, Clone, Default)]
pub(crate) struct UserState {
    pub account: Option<Account>,
    pub groups: Vec<(String, u32)>,
    pub hostname: String,
}

pub(crate) fn user_query_script(name: &str, groups: &[String], key_file: Option<&str>) -> String {
    let n = sh_quote(name);
    let mut s = format!(
        "echo \"HOST|$(hostname)\"\n\
         if pw=$(getent passwd {n}); then echo \"PW|$pw\"; echo \"SH|$(getent shadow {n})\"; \
         getent group | awk -F: -v u={n} '{{k=split($4,a,\",\"); for(i=1;i<=k;i++) if(a[i]==u) {{print \"SG|\" $1; break}}}}'; \
         "
    );
    if let Some(kf) = key_file {
        s.push_str(&format!(
            "h=$(printf '%s' \"$pw\" | cut -d: -f6); kf={}; case $kf in /*) ;; *) kf=\"$h/$kf\";; esac; \
             [ -f \"$kf.pub\" ] && [ -f \"$kf\" ] && echo \"KEY|$(cat \"$kf.pub\")\"; ",
            sh_quote(kf)
        ));
    }
    s.push_str("fi\n");
    for g in groups {
        s.push_str(&format!("getent group {} | sed 's/^/GR|/'\n", sh_quote(g)));
    }
    s
}

pub(crate) fn parse_user_state(out: &str) -> UserState {
    let mut st = UserState {
        hostname: tagged(out, "HOST|").next().unwrap_or("").to_string(),
        ..Default::default()
    };
    if let Some(pw) = tagged(out, "PW|").next() {
        let f: Vec<&str> = pw.split(':').collect();
        if f.len() >= 7 {
            let sh: Vec<&str> = tagged(out, "SH|").next().unwrap_or("").split(':').collect();
            st.account = Some(Account {
                uid: f[2].parse().unwrap_or(0),
                gid: f[3].parse().unwrap_or(0),
                comment: f[4].to_string(),
                home: f[5].to_string(),
                shell: f[6].to_string(),
                password: sh.get(1).unwrap_or(&"").to_string(),
                expire_days: sh.get(7).and_then(|d| d.parse().ok()),
                password_ages: [3, 4, 5].map(|i| sh.get(i).and_then(|d| d.parse().ok()).unwrap_or(-1)),
                supplementary: tagged(out, "SG|").map(str::to_string).collect(),
                ssh_public_key: tagged(out, "KEY|").next().map(str::to_string),
            });
        }
    }
    for g in tagged(out, "GR|") {
        let f: Vec<&str> = g.split(':').collect();
        if f.len() >= 3 {
            if let Ok(gid) = f[2].parse() {
                st.groups.push((f[0].to_string(), gid));
            }
        }
    }
    st
}

/// Proleptic Gregorian `YYYY-MM-DD` of a day count since 1970-01-01.
pub(crate) fn date_of_days(days: i64) -> String {
    let (y, m, d) = crate::calendar::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The wanted attributes, normalized.
#[derive(Debug, Clone, Default)]
pub(crate) struct UserSpec {
    pub name: String,
    pub uid: Option<u32>,
    pub non_unique: bool,
    pub group: Option<String>,
    pub groups: Option<Vec<String>>,
    pub append: bool,
    pub shell: Option<String>,
    pub home: Option<String>,
    pub create_home: bool,
    pub move_home: bool,
    pub system: bool,
    pub comment: Option<String>,
    pub password: Option<String>,
    pub update_always: bool,
    pub password_lock: Option<bool>,
    /// Days since the epoch; `Some(None)`: remove the expiry.
    pub expires: Option<Option<i64>>,
    /// password_expire_min, _max, _warn.
    pub password_ages: [Option<i64>; 3],
}

/// `chage` for the password ages that differ from the shadow entry's (`current`; all given ones for a
/// new account), as Ansible's user module: one command after the account's other changes.
fn plan_password_ages(spec: &UserSpec, current: Option<[i64; 3]>, cmds: &mut Vec<String>, fields: &mut FieldChanges) {
    let mut args = Vec::new();
    for ((flag, field), (want, cur)) in [
        ("-m", "password_expire_min"),
        ("-M", "password_expire_max"),
        ("-W", "password_expire_warn"),
    ]
    .into_iter()
    .zip(
        spec.password_ages
            .into_iter()
            .zip(current.map_or([None; 3], |c| c.map(Some))),
    ) {
        let Some(want) = want else { continue };
        if cur == Some(want) {
            continue;
        }
        args.push(format!("{flag} {want}"));
        if let Some(cur) = cur {
            fields.push((field.into(), cur.to_string(), want.to_string()));
        }
    }
    if !args.is_empty() {
        cmds.push(format!("chage {} {}", args.join(" "), sh_quote(&spec.name)));
    }
}

/// Resolve a group given by name or gid against the queried groups.
fn resolve_group<'a>(st: &'a UserState, g: &str) -> Option<&'a (String, u32)> {
    st.groups
        .iter()
        .find(|(n, gid)| n == g || g.parse::<u32>().ok() == Some(*gid))
}

/// Changed fields as (name, before, after).
pub(crate) type FieldChanges = Vec<(String, String, String)>;

/// The commands bringing the account to `spec` (state present) and the
/// changed fields as (name, before, after) for the diff.
pub(crate) fn plan_user(spec: &UserSpec, st: &UserState) -> Result<(Vec<String>, FieldChanges), String> {
    let n = sh_quote(&spec.name);
    for g in spec.group.iter().chain(spec.groups.iter().flatten()) {
        if resolve_group(st, g).is_none() {
            return Err(format!("Group {g} does not exist"));
        }
    }
    let mut fields = Vec::new();
    let mut cmds = Vec::new();
    let mut a: Vec<String> = Vec::new();
    let Some(cur) = &st.account else {
        // useradd
        if let Some(u) = spec.uid {
            a.push(format!("-u {u}"));
            if spec.non_unique {
                a.push("-o".into());
            }
        }
        if let Some(g) = &spec.group {
            a.push(format!("-g {}", sh_quote(g)));
        }
        if let Some(gs) = spec.groups.as_ref().filter(|g| !g.is_empty()) {
            a.push(format!("-G {}", sh_quote(&gs.join(","))));
        }
        if let Some(c) = &spec.comment {
            a.push(format!("-c {}", sh_quote(c)));
        }
        if let Some(h) = &spec.home {
            a.push(format!("-d {}", sh_quote(h)));
        }
        if let Some(s) = &spec.shell {
            a.push(format!("-s {}", sh_quote(s)));
        }
        if let Some(p) = &spec.password {
            a.push(format!("-p {}", sh_quote(p)));
        }
        if let Some(Some(d)) = spec.expires {
            a.push(format!("-e {}", date_of_days(d)));
        }
        if spec.system {
            a.push("-r".into());
        }
        a.push(if spec.create_home { "-m".into() } else { "-M".into() });
        cmds.push(format!("useradd {} {n}", a.join(" ")));
        if spec.password_lock == Some(true) {
            cmds.push(format!("usermod -L {n}"));
        }
        plan_password_ages(spec, None, &mut cmds, &mut fields);
        fields.push(("state".into(), "absent".into(), "present".into()));
        return Ok((cmds, fields));
    };
    if let Some(u) = spec.uid {
        if u != cur.uid {
            a.push(format!("-u {u}"));
            if spec.non_unique {
                a.push("-o".into());
            }
            fields.push(("uid".into(), cur.uid.to_string(), u.to_string()));
        }
    }
    if let Some(g) = &spec.group {
        if let Some((gname, gid)) = resolve_group(st, g) {
            if *gid != cur.gid {
                a.push(format!("-g {}", sh_quote(g)));
                fields.push(("group".into(), cur.gid.to_string(), format!("{gid} ({gname})")));
            }
        }
    }
    if let Some(gs) = &spec.groups {
        // Names as the system knows them (a gid may have been given); the primary group does not count.
        let primary = spec
            .group
            .as_deref()
            .and_then(|g| resolve_group(st, g))
            .map_or(cur.gid, |(_, gid)| *gid);
        let wanted: Vec<String> = gs
            .iter()
            .filter_map(|g| resolve_group(st, g))
            .filter(|(_, gid)| *gid != primary)
            .map(|(n, _)| n.clone())
            .collect();
        let mut current = cur.supplementary.clone();
        current.sort();
        let mut want_sorted = wanted.clone();
        want_sorted.sort();
        want_sorted.dedup();
        let differs = if spec.append {
            want_sorted.iter().any(|g| !current.contains(g))
        } else {
            want_sorted != current
        };
        if differs {
            let after: Vec<String> = if spec.append {
                let mut v = current.clone();
                v.extend(want_sorted.iter().filter(|g| !current.contains(g)).cloned());
                v
            } else {
                want_sorted.clone()
            };
            if spec.append {
                a.push(format!("-a -G {}", sh_quote(&wanted.join(","))));
            } else {
                a.push(format!("-G {}", sh_quote(&wanted.join(","))));
            }
            fields.push(("groups".into(), current.join(","), after.join(",")));
        }
    }
    if let Some(c) = spec.comment.as_ref().filter(|c| **c != cur.comment) {
        a.push(format!("-c {}", sh_quote(c)));
        fields.push(("comment".into(), cur.comment.clone(), c.clone()));
    }
    if let Some(h) = spec
        .home
        .as_ref()
        .filter(|h| h.trim_end_matches('/') != cur.home.trim_end_matches('/'))
    {
        a.push(format!("-d {}", sh_quote(h)));
        if spec.move_home {
            a.push("-m".into());
        }
        fields.push(("home".into(), cur.home.clone(), h.clone()));
    }
    if let Some(s) = spec.shell.as_ref().filter(|s| **s != cur.shell) {
        a.push(format!("-s {}", sh_quote(s)));
        fields.push(("shell".into(), cur.shell.clone(), s.clone()));
    }
    let locked = cur.password.starts_with('!');
    if let Some(p) = &spec.password {
        if spec.update_always && cur.password.trim_start_matches('!') != p {
            // Keep a lock the user has unless the task says otherwise.
            let keep_lock = locked && spec.password_lock != Some(false);
            let hash = if keep_lock { format!("!{p}") } else { p.clone() };
            a.push(format!("-p {}", sh_quote(&hash)));
            fields.push(("password".into(), "(hash)".into(), "(new hash)".into()));
        }
    }
    if let Some(e) = spec.expires {
        if e != cur.expire_days {
            match e {
                Some(d) => a.push(format!("-e {}", date_of_days(d))),
                None => a.push("-e ''".into()),
            }
            let show = |d: Option<i64>| d.map_or("never".to_string(), date_of_days);
            fields.push(("expires".into(), show(cur.expire_days), show(e)));
        }
    }
    if !a.is_empty() {
        cmds.push(format!("usermod {} {n}", a.join(" ")));
    }
    match spec.password_lock {
        Some(true) if !locked => {
            cmds.push(format!("usermod -L {n}"));
            fields.push(("password_lock".into(), "false".into(), "true".into()));
        }
        Some(false) if locked => {
            cmds.push(format!("usermod -U {n}"));
            fields.push(("password_lock".into(), "true".into(), "false".into()));
        }
        _ => {}
    }
    plan_password_ages(spec, Some(cur.password_ages), &mut cmds, &mut fields);
    Ok((cmds, fields))
}

fn expires_days(v: &Value) -> Result<Option<i64>, String> {
    let f = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("user: expires must be a number of epoch seconds, got {v}"))?;
    Ok((f >= 0.0).then(|| (f / 86400.0).floor() as i64))
}

pub(crate) struct UserModule;

#[async_trait]
impl Module for UserModule {
    fn doc(&self) -> &'static ModuleDoc {
        &USER_DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: UserParams = parse_params(&USER_DOC, args)?;
        let name = p.name.clone();
        if name.is_empty() {
            return Err(ModuleError::Args("user: `name` is required".into()));
        }
        let state = p.state.as_deref().unwrap_or("present");
        if !matches!(state, "present" | "absent") {
            return Err(ModuleError::Args(format!(
                "user: state must be present or absent, got `{state}`"
            )));
        }
        let update = p.update_password.as_deref().unwrap_or("always");
        if !matches!(update, "always" | "on_create") {
            return Err(ModuleError::Args(format!(
                "user: update_password must be always or on_create, got `{update}`"
            )));
        }
        let key_type = p.ssh_key_type.clone().unwrap_or_else(|| "rsa".into());
        let key_file = p.ssh_key_file.clone().unwrap_or_else(|| format!(".ssh/id_{key_type}"));
        let uid = match p.uid {
            Some(u) => Some(u32::try_from(u).map_err(|_| ModuleError::Args(format!("user: invalid uid {u}")))?),
            None => None,
        };
        let spec = UserSpec {
            name: name.clone(),
            uid,
            non_unique: p.non_unique,
            group: p.group.clone(),
            groups: p.groups.clone(),
            append: p.append,
            shell: p.shell.clone(),
            home: p.home.clone(),
            create_home: p.create_home.unwrap_or(true),
            move_home: p.move_home,
            system: p.system,
            comment: p.comment.clone(),
            password: p.password.clone(),
            update_always: update == "always",
            password_lock: p.password_lock,
            expires: match &p.expires {
                None | Some(Value::Null) => None,
                Some(v) => Some(expires_days(v).map_err(ModuleError::Args)?),
            },
            password_ages: [p.password_expire_min, p.password_expire_max, p.password_expire_warn],
        };
        let mut groups: Vec<String> = p.group.iter().cloned().collect();
        groups.extend(p.groups.iter().flatten().cloned());
        let script = user_query_script(&name, &groups, p.generate_ssh_key.then_some(key_file.as_str()));
        let st = parse_user_state(&run_checked(ctx, "user query", &script).await?.stdout_str());
        let n = sh_quote(&name);

        let mut res = ModuleOutcome::ok();
        res.ret.insert("name".into(), name.clone().into());
        res.ret.insert("state".into(), state.into());
        if state == "absent" {
            res.ret.insert("remove".into(), p.remove.into());
            res.ret.insert("force".into(), p.force.into());
            if st.account.is_none() {
                return Ok(Plan::Done(res));
            }
            let cmd = format!(
                "userdel{}{} {n}",
                if p.remove { " -r" } else { "" },
                if p.force { " -f" } else { "" }
            );
            if ctx.diff_mode {
                res.diff.push(record_diff(
                    &format!("user {name}"),
                    &[("state".into(), "present".into())],
                    &[("state".into(), "absent".into())],
                ));
            }
            return Ok(Plan::change(res, DeleteUser { cmd }));
        }

        let (mut cmds, mut fields) = plan_user(&spec, &st).map_err(ModuleError::Failed)?;
        let key_missing = p.generate_ssh_key && st.account.as_ref().is_none_or(|a| a.ssh_public_key.is_none());
        if key_missing {
            let comment = p
                .ssh_key_comment
                .clone()
                .unwrap_or_else(|| format!("ansible-generated on {}", st.hostname));
            let bits = p.ssh_key_bits.map(|b| format!(" -b {b}")).unwrap_or_default();
            cmds.push(format!(
                "h=$(getent passwd {n} | cut -d: -f6); g=$(id -g {n}); kf={kf}; case $kf in /*) ;; *) kf=\"$h/$kf\";; esac; \
                 d=$(dirname \"$kf\"); if [ ! -d \"$d\" ]; then mkdir -p \"$d\" && chmod 0700 \"$d\" && chown {n}:\"$g\" \"$d\" || exit 1; fi; \
                 ssh-keygen -q -t {t}{bits} -C {c} -N {pp} -f \"$kf\" </dev/null >/dev/null && chown {n}:\"$g\" \"$kf\" \"$kf.pub\"",
                kf = sh_quote(&key_file),
                t = sh_quote(&key_type),
                c = sh_quote(&comment),
                pp = sh_quote(p.ssh_key_passphrase.as_deref().unwrap_or("")),
            ));
            fields.push(("ssh_key_file".into(), "absent".into(), key_file.clone()));
        }
        res.changed = !cmds.is_empty();
        if ctx.diff_mode && res.changed {
            let before: Vec<(String, String)> = fields.iter().map(|f| (f.0.clone(), f.1.clone())).collect();
            let after: Vec<(String, String)> = fields.iter().map(|f| (f.0.clone(), f.2.clone())).collect();
            res.diff.push(record_diff(&format!("user {name}"), &before, &after));
        }
        let returns = UserReturns {
            system: p.system,
            create_home: spec.create_home,
            append: p.append,
            move_home: p.move_home,
            ssh_key_file: p.generate_ssh_key.then_some(key_file),
            password: p.password.is_some(),
        };
        // Check mode describes the account as it is; a real run reads it
        // again after the change (see `SetUser`).
        returns.fill(&mut res.ret, st.account.as_ref());
        if !res.changed {
            return Ok(Plan::Done(res));
        }
        Ok(Plan::change(res, SetUser { cmds, script, returns }))
    }
}

/// The return values after `name` and `state`: the account's attributes,
/// then the options that describe the task.
struct UserReturns {
    system: bool,
    create_home: bool,
    append: bool,
    move_home: bool,
    ssh_key_file: Option<String>,
    password: bool,
}

impl UserReturns {
    fn fill(&self, ret: &mut Map<String, Value>, account: Option<&Account>) {
        if let Some(a) = account {
            ret.insert("uid".into(), a.uid.into());
            ret.insert("group".into(), a.gid.into());
            ret.insert("groups".into(), a.supplementary.join(",").into());
            ret.insert("home".into(), a.home.clone().into());
            ret.insert("shell".into(), a.shell.clone().into());
            ret.insert("comment".into(), a.comment.clone().into());
            if let Some(k) = &a.ssh_public_key {
                ret.insert("ssh_public_key".into(), k.clone().into());
            }
        }
        ret.insert("system".into(), self.system.into());
        ret.insert("create_home".into(), self.create_home.into());
        ret.insert("append".into(), self.append.into());
        ret.insert("move_home".into(), self.move_home.into());
        if let Some(f) = &self.ssh_key_file {
            ret.insert("ssh_key_file".into(), f.clone().into());
        }
        if self.password {
            ret.insert("password".into(), "NOT_LOGGING_PASSWORD".into());
        }
    }
}

/// `userdel` an existing account.
struct DeleteUser {
    cmd: String,
}

#[async_trait]
impl Change for DeleteUser {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        run_checked(ctx, "userdel", &self.cmd).await?;
        Ok(planned)
    }
}

/// Run the `useradd`/`usermod`/`ssh-keygen` commands in order, then read the
/// account again for the return values.
struct SetUser {
    cmds: Vec<String>,
    /// The query script.
    script: String,
    returns: UserReturns,
}

#[async_trait]
impl Change for SetUser {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        for c in &self.cmds {
            let what = c.split_whitespace().next().unwrap_or("command").to_string();
            run_checked(ctx, &what, c).await?;
        }
        let fin = parse_user_state(&run_checked(ctx, "user query", &self.script).await?.stdout_str());
        let mut res = planned;
        // Rebuild the return values after `name` and `state` in their order.
        let mut ret = Map::new();
        for k in ["name", "state"] {
            if let Some(v) = res.ret.get(k) {
                ret.insert(k.into(), v.clone());
            }
        }
        self.returns.fill(&mut ret, fin.account.as_ref());
        res.ret = ret;
        Ok(res)
    }
}

// ---------------------------------------------------------------- group

static GROUP_DOC: ModuleDoc = ModuleDoc {
    name: "group",
    aliases: &[],
    short: "Manage groups",
    description: "Creates, changes the gid of, and removes groups with groupadd/groupmod/groupdel.",
    free_form: false,
    options: &[
        OptionDoc::new("name", OptKind::Str, "Name of the group.").required(),
        OptionDoc::new("gid", OptKind::Int, "The group's gid."),
        OptionDoc::new("state", OptKind::Str, "Whether the group exists.")
            .default("present")
            .choices(&["absent", "present"]),
        OptionDoc::new("system", OptKind::Bool, "Create a system group (only when creating).").default("no"),
        OptionDoc::new(
            "non_unique",
            OptKind::Bool,
            "Allow a gid that another group has (`-o`); needs `gid`.",
        )
        .default("no"),
        OptionDoc::new(
            "force",
            OptKind::Bool,
            "Remove the group even when it is the primary group of a user (`groupdel -f`).",
        )
        .default("no"),
        OptionDoc::new(
            "local",
            OptKind::Bool,
            "Manage the group in the local /etc/group with libuser's lgroupadd/lgroupmod/lgroupdel (for hosts \
whose groups also come from a directory). A gid another group has is refused. Not with `force`, `gid_min`, \
`gid_max`.",
        )
        .default("no"),
        OptionDoc::new(
            "gid_min",
            OptKind::Int,
            "Lowest gid for a new group without `gid` (`groupadd -K GID_MIN=`), instead of login.defs'.",
        ),
        OptionDoc::new(
            "gid_max",
            OptKind::Int,
            "Highest gid for a new group without `gid` (`groupadd -K GID_MAX=`), instead of login.defs'.",
        ),
    ],
    examples: "- group:\n    name: deploy\n    gid: 1050\n",
    returns: &[
        ReturnDoc {
            name: "gid",
            description: "the group's gid",
        },
        ReturnDoc {
            name: "name",
            description: "the group's name",
        },
        ReturnDoc {
            name: "system",
            description: "whether it is a system group",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupParams {
    name: String,
    #[serde(default)]
    gid: Option<i64>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    system: bool,
    #[serde(default)]
    non_unique: bool,
    #[serde(default)]
    local: bool,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    gid_min: Option<i64>,
    #[serde(default)]
    gid_max: Option<i64>,
}

/// How a group's commands are run: Ansible's `local` (libuser's
/// `lgroup*` on /etc/group), `force` and `gid_min`/`gid_max`.
#[derive(Default)]
pub(crate) struct GroupTools {
    local: bool,
    force: bool,
    gid_min: Option<i64>,
    gid_max: Option<i64>,
}

impl GroupTools {
    /// Ansible's refusals of combinations its group module cannot run.
    fn check(&self, non_unique: bool, gid: Option<i64>) -> Result<(), ModuleError> {
        if non_unique && gid.is_none() {
            return Err(ModuleError::Args(
                "non_unique is True but all of the following are missing: gid".into(),
            ));
        }
        if self.force && self.local {
            return Err(ModuleError::Args(
                "force is not a valid option for local, force=True and local=True are mutually exclusive".into(),
            ));
        }
        for (name, v) in [("gid_min", self.gid_min), ("gid_max", self.gid_max)] {
            if self.local && v.is_some() {
                return Err(ModuleError::Args(format!("'{name}' can not be used with 'local'")));
            }
        }
        Ok(())
    }

    fn tool(&self, action: &str) -> String {
        if self.local {
            format!("lgroup{action}")
        } else {
            format!("group{action}")
        }
    }
}

/// The command for a group currently at `current_gid` (None: absent).
pub(crate) fn plan_group(
    name: &str,
    state: &str,
    gid: Option<i64>,
    system: bool,
    non_unique: bool,
    current_gid: Option<i64>,
    tools: &GroupTools,
) -> Option<String> {
    let n = sh_quote(name);
    let o = if non_unique { " -o" } else { "" };
    match (state, current_gid) {
        ("absent", Some(_)) => {
            let f = if tools.force && !tools.local { " -f" } else { "" };
            Some(format!("{}{f} {n}", tools.tool("del")))
        }
        ("absent", None) => None,
        (_, None) => {
            let g = gid.map(|g| format!(" -g {g}{o}")).unwrap_or_default();
            let r = if system { " -r" } else { "" };
            let range: String = [("GID_MIN", tools.gid_min), ("GID_MAX", tools.gid_max)]
                .iter()
                .filter_map(|(k, v)| v.map(|v| format!(" -K {k}={v}")))
                .collect();
            Some(format!("{}{g}{r}{range} {n}", tools.tool("add")))
        }
        (_, Some(cur)) => match gid {
            Some(g) if g != cur => Some(format!("{} -g {g}{o} {n}", tools.tool("mod"))),
            _ => None,
        },
    }
}

pub(crate) struct GroupModule;

#[async_trait]
impl Module for GroupModule {
    fn doc(&self) -> &'static ModuleDoc {
        &GROUP_DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: GroupParams = parse_params(&GROUP_DOC, args)?;
        let name = p.name.clone();
        if name.is_empty() {
            return Err(ModuleError::Args("group: `name` is required".into()));
        }
        let state = p.state.as_deref().unwrap_or("present");
        if !matches!(state, "present" | "absent") {
            return Err(ModuleError::Args(format!(
                "group: state must be present or absent, got `{state}`"
            )));
        }
        let tools = GroupTools {
            local: p.local,
            force: p.force,
            gid_min: p.gid_min,
            gid_max: p.gid_max,
        };
        tools.check(p.non_unique, p.gid)?;
        let q = format!("getent group {} | cut -d: -f3", sh_quote(&name));
        // `local`: the group exists when /etc/group has it (a directory's
        // group of that name does not count), and a gid another group has
        // (in /etc/group or the directory) is refused, as in Ansible.
        let probe = match (tools.local, p.gid) {
            (false, _) => q.clone(),
            (true, gid) => format!(
                "if cut -d: -f1 /etc/group | grep -qxF -- {n}; then {q}; else echo; fi; echo \"|$({owner})\"",
                n = sh_quote(&name),
                owner = gid
                    .map(|g| format!("getent group {g} | cut -d: -f1"))
                    .unwrap_or_default(),
            ),
        };
        let out = ctx.run(&probe).await?;
        let text = out.stdout_str();
        let cur: Option<i64> = text.lines().next().unwrap_or("").trim().parse().ok();
        let owner = text
            .lines()
            .find_map(|l| l.strip_prefix('|'))
            .map(str::trim)
            .filter(|o| !o.is_empty() && *o != name);
        if let (Some(owner), Some(g), "present") = (owner, p.gid, state) {
            if cur != Some(g) {
                return Err(ModuleError::Failed(format!(
                    "GID '{g}' already exists with group '{owner}'"
                )));
            }
        }
        let cmd = plan_group(&name, state, p.gid, p.system, p.non_unique, cur, &tools);
        let mut res = ModuleOutcome::changed(cmd.is_some());
        if cmd.is_some() && ctx.diff_mode {
            let side = |g: Option<i64>| match g {
                Some(g) => vec![
                    ("state".to_string(), "present".to_string()),
                    ("gid".to_string(), g.to_string()),
                ],
                None => vec![("state".to_string(), "absent".to_string())],
            };
            let after = if state == "absent" {
                None
            } else {
                p.gid.or(cur).or(Some(-1))
            };
            let mut a = side(after);
            if after == Some(-1) {
                a.truncate(1);
            }
            res.diff.push(record_diff(&format!("group {name}"), &side(cur), &a));
        }
        res.ret.insert("name".into(), name.clone().into());
        res.ret.insert("state".into(), state.into());
        res.ret.insert("system".into(), p.system.into());
        if state == "present" {
            if let Some(g) = p.gid.or(cur) {
                res.ret.insert("gid".into(), g.into());
            }
        }
        let Some(cmd) = cmd else {
            return Ok(Plan::Done(res));
        };
        let requery = (state == "present").then_some(q);
        Ok(Plan::change(res, SetGroup { cmd, requery }))
    }
}

/// Run the `groupadd`/`groupmod`/`groupdel` command; a present group's gid
/// is read again for the return values.
struct SetGroup {
    cmd: String,
    /// The query printing the gid.
    requery: Option<String>,
}

#[async_trait]
impl Change for SetGroup {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let c = &self.cmd;
        run_checked(ctx, c.split_whitespace().next().unwrap_or("group"), c).await?;
        let mut res = planned;
        if let Some(q) = &self.requery {
            // `gid` is the last return value.
            res.ret.remove("gid");
            if let Ok(g) = ctx.run(q).await?.stdout_str().trim().parse::<i64>() {
                res.ret.insert("gid".into(), g.into());
            }
        }
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str =
        "HOST|box\nPW|alice:x:1001:1001:Alice:/home/alice:/bin/sh\nSH|alice:!$6$abc:19000:0:99999:7::19500:\n\
SG|adm\nGR|alice:x:1001:\nGR|adm:x:4:alice\nGR|staff:x:50:\n";

    #[test]
    fn parses_accounts() {
        let st = parse_user_state(OUT);
        let a = st.account.as_ref().unwrap();
        assert_eq!((a.uid, a.gid, a.home.as_str()), (1001, 1001, "/home/alice"));
        assert_eq!(a.password, "!$6$abc");
        assert_eq!(a.expire_days, Some(19500));
        assert_eq!(a.supplementary, vec!["adm"]);
        assert_eq!(st.groups.len(), 3);
        assert_eq!(date_of_days(0), "1970-01-01");
        assert_eq!(date_of_days(19723), "2024-01-01");
    }

    #[test]
    fn usermod_only_what_differs() {
        let st = parse_user_state(OUT);
        let spec = UserSpec {
            name: "alice".into(),
            shell: Some("/bin/sh".into()),
            groups: Some(vec!["adm".into(), "staff".into()]),
            append: true,
            password: Some("$6$abc".into()),
            update_always: true,
            ..Default::default()
        };
        let (cmds, fields) = plan_user(&spec, &st).unwrap();
        assert_eq!(cmds, vec!["usermod -a -G adm,staff alice"]);
        assert_eq!(fields[0], ("groups".into(), "adm".into(), "adm,staff".into()));
        let spec = UserSpec {
            name: "alice".into(),
            groups: Some(vec![]),
            password_lock: Some(false),
            expires: Some(None),
            ..Default::default()
        };
        let (cmds, _) = plan_user(&spec, &st).unwrap();
        assert_eq!(cmds, vec!["usermod -G '' -e '' alice", "usermod -U alice"]);
        let spec = UserSpec {
            name: "alice".into(),
            group: Some("nosuch".into()),
            ..Default::default()
        };
        assert!(plan_user(&spec, &st).unwrap_err().contains("nosuch"));
        let spec = UserSpec {
            name: "alice".into(),
            shell: Some("/bin/sh".into()),
            group: Some("1001".into()),
            groups: Some(vec!["adm".into(), "alice".into()]),
            ..Default::default()
        };
        assert!(plan_user(&spec, &st).unwrap().0.is_empty());
    }

    #[test]
    fn password_ages_with_chage() {
        let st = parse_user_state("PW|alice:x:1001:1001::/home/alice:/bin/sh\nSH|alice:$6$x:19000:0:99999:7:::\n");
        assert_eq!(st.account.as_ref().unwrap().password_ages, [0, 99999, 7]);
        let spec = UserSpec {
            name: "alice".into(),
            password_ages: [Some(7), Some(99999), Some(14)],
            ..Default::default()
        };
        let (cmds, fields) = plan_user(&spec, &st).unwrap();
        assert_eq!(cmds, vec!["chage -m 7 -W 14 alice"]);
        assert_eq!(fields[0], ("password_expire_min".into(), "0".into(), "7".into()));
        let spec = UserSpec {
            name: "alice".into(),
            password_ages: [Some(0), None, Some(7)],
            ..Default::default()
        };
        assert!(plan_user(&spec, &st).unwrap().0.is_empty());
        // Empty shadow fields differ from any value.
        let st = parse_user_state("PW|bob:x:1002:1002::/home/bob:/bin/sh\nSH|bob:!:19000::::::\n");
        let spec = UserSpec {
            name: "bob".into(),
            password_ages: [None, Some(60), None],
            ..Default::default()
        };
        assert_eq!(plan_user(&spec, &st).unwrap().0, vec!["chage -M 60 bob"]);
    }

    #[test]
    fn useradd_and_groups() {
        let st = UserState {
            groups: vec![("staff".into(), 50)],
            ..Default::default()
        };
        let spec = UserSpec {
            name: "bob".into(),
            uid: Some(2001),
            groups: Some(vec!["staff".into()]),
            comment: Some("Bob B".into()),
            create_home: true,
            system: true,
            expires: Some(Some(19723)),
            ..Default::default()
        };
        let (cmds, _) = plan_user(&spec, &st).unwrap();
        assert_eq!(
            cmds,
            vec!["useradd -u 2001 -G staff -c 'Bob B' -e 2024-01-01 -r -m bob"]
        );
        assert_eq!(
            plan_group("g", "present", Some(5), false, false, None, &GroupTools::default()).unwrap(),
            "groupadd -g 5 g"
        );
        assert_eq!(
            plan_group("g", "present", None, true, false, None, &GroupTools::default()).unwrap(),
            "groupadd -r g"
        );
        assert_eq!(
            plan_group("g", "present", Some(6), false, false, Some(5), &GroupTools::default()).unwrap(),
            "groupmod -g 6 g"
        );
        assert!(plan_group("g", "present", Some(5), false, false, Some(5), &GroupTools::default()).is_none());
        assert!(plan_group("g", "present", None, false, false, Some(5), &GroupTools::default()).is_none());
        assert_eq!(
            plan_group("g", "absent", None, false, false, Some(5), &GroupTools::default()).unwrap(),
            "groupdel g"
        );
        assert!(plan_group("g", "absent", None, false, false, None, &GroupTools::default()).is_none());
    }

    #[test]
    fn group_local_force_and_gid_range_as_ansible() {
        let local = GroupTools {
            local: true,
            ..Default::default()
        };
        assert_eq!(
            plan_group("g", "present", Some(7), false, true, None, &local).unwrap(),
            "lgroupadd -g 7 -o g"
        );
        assert_eq!(
            plan_group("g", "present", Some(8), false, false, Some(7), &local).unwrap(),
            "lgroupmod -g 8 g"
        );
        assert_eq!(
            plan_group("g", "absent", None, false, false, Some(7), &local).unwrap(),
            "lgroupdel g"
        );
        let force = GroupTools {
            force: true,
            ..Default::default()
        };
        assert_eq!(
            plan_group("g", "absent", None, false, false, Some(7), &force).unwrap(),
            "groupdel -f g"
        );
        let range = GroupTools {
            gid_min: Some(1500),
            gid_max: Some(1501),
            ..Default::default()
        };
        assert_eq!(
            plan_group("g", "present", None, false, false, None, &range).unwrap(),
            "groupadd -K GID_MIN=1500 -K GID_MAX=1501 g"
        );
        // Ansible's refusals, in its words.
        let msg = |r: Result<(), ModuleError>| match r {
            Err(ModuleError::Args(m)) => m,
            other => panic!("{:?}", other.is_ok()),
        };
        assert_eq!(
            msg(GroupTools::default().check(true, None)),
            "non_unique is True but all of the following are missing: gid"
        );
        let both = GroupTools {
            local: true,
            force: true,
            ..Default::default()
        };
        assert!(msg(both.check(false, None)).starts_with("force is not a valid option for local"));
        let local_min = GroupTools {
            local: true,
            gid_min: Some(1),
            ..Default::default()
        };
        assert_eq!(
            msg(local_min.check(false, None)),
            "'gid_min' can not be used with 'local'"
        );
        assert!(range.check(false, None).is_ok());
    }
}
