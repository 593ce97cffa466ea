//! `cloud_init_seed`: a NoCloud seed ISO (volume label `cidata`) built on the hypervisor.

use async_trait::async_trait;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::connection::{sh_quote, FileAttrs};
use crate::modules::{
    parse_params, Change, Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan,
    ReturnDoc,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("path", OptKind::Path, "Where the ISO goes on the hypervisor.")
        .required()
        .aliases(&["dest"]),
    OptionDoc::new(
        "hostname",
        OptKind::Str,
        "The guest's hostname: `local-hostname` of the default meta-data.",
    ),
    OptionDoc::new(
        "instance_id",
        OptKind::Str,
        "`instance-id` of the default meta-data (defaults to the hostname). cloud-init re-runs \
its per-instance modules when it changes.",
    ),
    OptionDoc::new(
        "user_data",
        OptKind::Raw,
        "User data: a dict (written as `#cloud-config` YAML: users, ssh_authorized_keys, packages, runcmd...) \
or a string used as is (a script, or YAML you templated).",
    ),
    OptionDoc::new(
        "meta_data",
        OptKind::Raw,
        "Meta data: a dict or string; default `instance-id` and `local-hostname` from the options above.",
    ),
    OptionDoc::new(
        "network_config",
        OptKind::Raw,
        "Network config v2 (a dict with `ethernets:`...; `version: 2` is added) or a string. Omitted: DHCP.",
    ),
];

static DOC: ModuleDoc = ModuleDoc {
    name: "cloud_init_seed",
    aliases: &[],
    short: "Build a cloud-init NoCloud seed ISO on a hypervisor",
    description: "Writes `user-data`, `meta-data` and (optionally) `network-config` and packs them with \
`genisoimage -volid cidata` on the host. Idempotent: the files inside an existing ISO are read back \
(`isoinfo`) and compared; `--diff` shows the changed file. Attach the ISO to a domain as a cdrom \
(`virt_domain: cdroms: [{path: ...}]`).",
    free_form: false,
    options: OPTIONS,
    examples: "- cloud_init_seed:\n    path: /var/lib/libvirt/images/web1-seed.iso\n    hostname: web1\n    user_data:\n      users:\n        - name: admin\n          ssh_authorized_keys: [\"{{ lookup('file', 'id_ed25519.pub') }}\"]\n      packages: [nginx]\n    network_config:\n      ethernets:\n        eth0: { dhcp4: true }\n",
    returns: &[
        ReturnDoc {
            name: "path",
            description: "the ISO's path",
        },
        ReturnDoc {
            name: "files",
            description: "names of the files in the seed",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    path: String,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    instance_id: Option<String>,
    #[serde(default)]
    user_data: Option<Value>,
    #[serde(default)]
    meta_data: Option<Value>,
    #[serde(default)]
    network_config: Option<Value>,
}

fn yaml(ctx: &ModuleCtx<'_>, v: &Value) -> Result<String, ModuleError> {
    let vars = minijinja::Value::from(minijinja::value::Serde(json!({ "v": v })));
    ctx.templar
        .render_string("{{ v | to_nice_yaml(indent=2, sort_keys=false) }}", &vars, ctx.loc)
        .map_err(|e| ModuleError::Failed(format!("cloud_init_seed: cannot write YAML: {e}")))
}

/// The seed's files, in order, as (name, content).
fn seed_files(ctx: &ModuleCtx<'_>, p: &Params) -> Result<Vec<(&'static str, String)>, ModuleError> {
    let mut files = Vec::new();
    let user = match &p.user_data {
        None | Some(Value::Null) => "#cloud-config\n{}\n".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => format!("#cloud-config\n{}", yaml(ctx, v)?),
    };
    files.push(("user-data", user));
    let meta = match &p.meta_data {
        Some(Value::String(s)) => s.clone(),
        Some(v @ Value::Object(_)) => yaml(ctx, v)?,
        _ => {
            let host = p.hostname.clone().unwrap_or_else(|| "localhost".into());
            let id = p.instance_id.clone().unwrap_or_else(|| host.clone());
            yaml(ctx, &json!({"instance-id": id, "local-hostname": host}))?
        }
    };
    files.push(("meta-data", meta));
    match &p.network_config {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => files.push(("network-config", s.clone())),
        Some(Value::Object(m)) => {
            let mut m = m.clone();
            if !m.contains_key("version") {
                let mut with_version = Map::new();
                with_version.insert("version".into(), json!(2));
                with_version.extend(m);
                m = with_version;
            }
            files.push(("network-config", yaml(ctx, &Value::Object(m))?));
        }
        Some(_) => {
            return Err(ModuleError::Args(
                "cloud_init_seed: network_config must be a dict or a string".into(),
            ))
        }
    }
    Ok(files)
}

pub struct CloudInitSeedModule;

#[async_trait]
impl Module for CloudInitSeedModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let files = seed_files(ctx, &p)?;
        let want: Vec<(String, String)> = files.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let names: Vec<&str> = files.iter().map(|(k, _)| *k).collect();
        let result = ModuleOutcome::ok()
            .with("path", p.path.clone())
            .with("files", json!(names));
        let probe = ["user-data", "meta-data", "network-config"];
        Ok(
            match plan_iso(ctx, "cloud_init_seed", &p.path, "cidata", &want, &probe).await? {
                Some((diff, build)) => Plan::change(result.with_diff(diff), build),
                None => Plan::Done(result),
            },
        )
    }
}

/// Whether the small ISO at `path` (volume label `volid`, Joliet + Rock
/// Ridge) holds exactly `want` (name, content): the files of an existing ISO
/// named in `want` or `probe` are read back with `isoinfo` and compared.
/// When they differ: the diff, and the [`BuildIso`] that rebuilds it.
pub(crate) async fn plan_iso(
    ctx: &ModuleCtx<'_>,
    module: &'static str,
    path: &str,
    volid: &str,
    want: &[(String, String)],
    probe: &[&str],
) -> Result<Option<(Diff, BuildIso)>, ModuleError> {
    let iso = sh_quote(path);
    let mut names: Vec<&str> = want.iter().map(|(k, _)| k.as_str()).collect();
    for n in probe {
        if !names.contains(n) {
            names.push(n);
        }
    }
    // Query: each file of the existing ISO, base64 on one tagged line.
    let mut script = format!("[ -f {iso} ] || {{ echo ABSENT; exit 0; }}; ");
    for name in &names {
        script.push_str(&format!(
            "printf '%s=' {q}; isoinfo -R -i {iso} -x /{q} 2>/dev/null | base64 -w0; echo; ",
            q = sh_quote(name)
        ));
    }
    let out = ctx.run(&script).await?;
    if out.status != 0 {
        return Err(ModuleError::Failed(format!(
            "{module}: cannot read {path}: {}",
            out.stderr_str().trim()
        )));
    }
    let text = out.stdout_str();
    let mut have: Vec<(String, String)> = Vec::new();
    if text.trim() != "ABSENT" {
        for line in text.lines() {
            if let Some((k, b64)) = line.split_once('=') {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .unwrap_or_default();
                if !bytes.is_empty() {
                    have.push((k.to_string(), String::from_utf8_lossy(&bytes).into_owned()));
                }
            }
        }
    }
    // Compare in `want`'s order.
    have.sort_by_key(|(k, _)| names.iter().position(|n| n == k));
    if have == want {
        return Ok(None);
    }
    let render = |fs: &[(String, String)]| {
        fs.iter()
            .map(|(k, v)| format!("--- {k}\n{v}{}", if v.ends_with('\n') { "" } else { "\n" }))
            .collect::<String>()
    };
    let diff = Diff {
        before_header: format!("{path} (before)"),
        after_header: format!("{path} (after)"),
        before: render(&have),
        after: render(want),
    };
    let build = BuildIso {
        module,
        path: path.to_string(),
        volid: volid.to_string(),
        want: want.to_vec(),
    };
    Ok(Some((diff, build)))
}

/// Build an ISO with `genisoimage` from files uploaded to a temporary directory.
pub(crate) struct BuildIso {
    module: &'static str,
    path: String,
    volid: String,
    /// (name, content), in order.
    want: Vec<(String, String)>,
}

#[async_trait]
impl Change for BuildIso {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        self.build(ctx).await?;
        Ok(planned)
    }
}

impl BuildIso {
    pub(crate) async fn build(&self, ctx: &ModuleCtx<'_>) -> Result<(), ModuleError> {
        let BuildIso {
            module,
            path,
            volid,
            want,
        } = self;
        let iso = sh_quote(path);
        self::build_iso(ctx, module, path, &iso, volid, want).await
    }
}

async fn build_iso(
    ctx: &ModuleCtx<'_>,
    module: &str,
    path: &str,
    iso: &str,
    volid: &str,
    want: &[(String, String)],
) -> Result<(), ModuleError> {
    let mk = ctx.run("mktemp -d /tmp/rigger-iso.XXXXXX").await?;
    let dir = mk.stdout_str().trim().to_string();
    if mk.status != 0 || dir.is_empty() {
        return Err(ModuleError::Failed(format!(
            "{module}: mktemp failed: {}",
            mk.stderr_str().trim()
        )));
    }
    for (name, content) in want {
        ctx.put_bytes(content.as_bytes(), &format!("{dir}/{name}"), &FileAttrs::default())
            .await?;
    }
    let d = sh_quote(&dir);
    let list: Vec<String> = want.iter().map(|(n, _)| sh_quote(n)).collect();
    let cmd = format!(
        "set -e; trap 'rm -rf {d}' EXIT; cd {d}; \
         genisoimage -quiet -output image.iso -volid {volid} -joliet -rock {files}; \
         mkdir -p \"$(dirname {iso})\"; mv -f image.iso {iso}",
        volid = sh_quote(volid),
        files = list.join(" ")
    );
    let out = ctx.run(&cmd).await?;
    if out.status != 0 {
        let err = out.stderr_str();
        let hint = if out.status == 127 || err.contains("not found") {
            " (install genisoimage on the hypervisor)"
        } else {
            ""
        };
        return Err(ModuleError::Failed(format!(
            "{module}: building {path} failed: {}{hint}",
            err.trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::files::testutil::TestEnv;

    #[tokio::test]
    async fn seed_files_render_yaml() {
        let env = TestEnv::new();
        let ctx = env.ctx(false, false);
        let Value::Object(m) = json!({
            "path": "/x.iso", "hostname": "guest1",
            "user_data": {"runcmd": ["echo hi"]},
            "network_config": {"ethernets": {"eth0": {"dhcp4": true}}}
        }) else {
            panic!()
        };
        let p: Params = parse_params(&DOC, m).unwrap();
        let f = seed_files(&ctx, &p).unwrap();
        assert_eq!(f[0].0, "user-data");
        assert!(f[0].1.starts_with("#cloud-config\nruncmd:\n"), "{}", f[0].1);
        assert!(f[1].1.contains("local-hostname: guest1\n"), "{}", f[1].1);
        assert!(f[1].1.contains("instance-id: guest1\n"), "{}", f[1].1);
        assert!(f[2].1.starts_with("version: 2\nethernets:\n"), "{}", f[2].1);
    }
}
