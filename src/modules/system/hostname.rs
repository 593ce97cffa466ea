//! `hostname`: the running and the permanent host name.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::connection::sh_quote;
use crate::modules::host::command::run_checked;
use crate::modules::host::text::text_diff;
use crate::modules::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const USES: &[&str] = &[
    "alpine", "debian", "generic", "openbsd", "redhat", "sles", "systemd", "freebsd", "darwin", "solaris", "openrc",
];

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("name", OptKind::Str, "The host name.").required(),
    OptionDoc::new(
        "use",
        OptKind::Str,
        "How to set it: `systemd` (hostnamectl), or a file-based strategy (`debian`, `generic`, `alpine`, \
`openrc`: /etc/hostname plus `hostname NAME`; `redhat`: /etc/sysconfig/network too). Default: systemd when \
it runs, else the file strategy.",
    )
    .choices(USES),
];

pub(crate) static DOC: ModuleDoc = ModuleDoc {
    name: "hostname",
    aliases: &[],
    short: "Manage the host name",
    description: "Sets the running host name and the permanent one (/etc/hostname, or hostnamectl on \
systemd hosts). Nothing changes when both already equal `name`.",
    free_form: false,
    options: OPTIONS,
    examples: "- hostname:\n    name: web01\n\n- hostname:\n    name: web01\n    use: debian\n",
    returns: &[ReturnDoc {
        name: "ansible_facts",
        description: "ansible_hostname, ansible_nodename, ansible_fqdn, ansible_domain after the change",
    }],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    name: String,
    #[serde(default, rename = "use")]
    use_: Option<String>,
}

pub(crate) struct Hostname;

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

#[async_trait]
impl Module for Hostname {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let name = p.name;
        if !valid_name(&name) {
            return Err(ModuleError::Args(format!(
                "hostname: `{name}` is not a valid host name (letters, digits, `-`, dot-separated labels)"
            )));
        }
        // One round trip: running name, permanent name, and whether systemd runs.
        let q = "uname -n; if [ -r /etc/hostname ]; then head -n1 /etc/hostname; else echo; fi; \
                 if [ -d /run/systemd/system ] && command -v hostnamectl >/dev/null 2>&1; then echo systemd; else echo files; fi";
        let out = run_checked(ctx, "reading the host name", q).await?;
        let text = out.stdout_str();
        let mut it = text.lines();
        let current = it.next().unwrap_or_default().trim().to_string();
        let permanent = it.next().unwrap_or_default().trim().to_string();
        let detected = it.next().unwrap_or("files").trim().to_string();
        let strategy = p.use_.clone().unwrap_or_else(|| {
            if detected == "systemd" {
                "systemd".into()
            } else {
                "debian".into()
            }
        });

        let changed = current != name || permanent != name;
        let short = name.split('.').next().unwrap_or(&name).to_string();
        let domain = name.split_once('.').map(|(_, d)| d.to_string()).unwrap_or_default();
        let facts = json!({
            "ansible_hostname": short,
            "ansible_nodename": name,
            "ansible_fqdn": name,
            "ansible_domain": domain,
        });
        let mut res = ModuleOutcome::ok()
            .with("name", name.clone())
            .with("ansible_facts", facts);
        if !changed {
            return Ok(Plan::Done(res));
        }
        if ctx.diff_mode {
            res = res.with_diff(text_diff(
                "hostname",
                &format!("hostname = {current}\n"),
                &format!("hostname = {name}\n"),
            ));
        }
        Ok(Plan::change(res, SetHostname { name, strategy }))
    }
}

/// Set the running and the permanent host name.
struct SetHostname {
    name: String,
    strategy: String,
}

#[async_trait]
impl Change for SetHostname {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let q = sh_quote(&self.name);
        let cmd = match self.strategy.as_str() {
            "systemd" => format!("hostnamectl set-hostname {q}"),
            "redhat" => format!(
                "printf '%s\\n' {q} > /etc/hostname && hostname {q} && \
                 if [ -f /etc/sysconfig/network ]; then sed -i 's/^HOSTNAME=.*/HOSTNAME='{q}'/' /etc/sysconfig/network; fi"
            ),
            _ => format!("printf '%s\\n' {q} > /etc/hostname && hostname {q}"),
        };
        run_checked(ctx, "setting the host name", &cmd).await?;
        Ok(planned)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_name_syntax() {
        assert!(super::valid_name("web-01.example.com"));
        assert!(!super::valid_name("bad_name"));
        assert!(!super::valid_name("-x"));
        assert!(!super::valid_name(""));
    }
}
