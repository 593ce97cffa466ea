//! The connection options every vmware module shares (community.vmware's
//! `hostname`, `username`, `password`, `port`, `validate_certs`, with their
//! `VMWARE_*` environment fallbacks), rigger's `ca_file` and `thumbprint`,
//! and the session a module works in.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::client::{Endpoint, Session, VmwareError};
use super::soap::{parse_thumbprint, Trust};
use crate::modules::{normalize_args, ModuleDoc, ModuleError, OptKind, OptionDoc};

pub const HOSTNAME: OptionDoc = OptionDoc::new(
    "hostname",
    OptKind::Str,
    "The vCenter or ESXi server (name or address). Default: the VMWARE_HOST environment variable.",
);
pub const USERNAME: OptionDoc = OptionDoc::new(
    "username",
    OptKind::Str,
    "The user to log in as. Default: the VMWARE_USER environment variable.",
)
.aliases(&["admin", "user"]);
pub const PASSWORD: OptionDoc = OptionDoc::new(
    "password",
    OptKind::Str,
    "The user's password (keep it in a vault). Default: the VMWARE_PASSWORD environment variable.",
)
.aliases(&["pass", "pwd"]);
pub const PORT: OptionDoc =
    OptionDoc::new("port", OptKind::Int, "The HTTPS port. Default: VMWARE_PORT, else 443.").default("443");
pub const VALIDATE_CERTS: OptionDoc = OptionDoc::new(
    "validate_certs",
    OptKind::Bool,
    "Check the server's certificate (against `ca_file`, or the platform's trusted roots). `false` turns \
every check off and cannot be combined with `ca_file` or `thumbprint`. Default: VMWARE_VALIDATE_CERTS, else true.",
)
.default("true");
pub const CA_FILE: OptionDoc = OptionDoc::new(
    "ca_file",
    OptKind::Path,
    "PEM file of the CA certificates to trust instead of the platform's roots (rigger's option).",
);
pub const THUMBPRINT: OptionDoc = OptionDoc::new(
    "thumbprint",
    OptKind::Str,
    "Trust only a server certificate with this SHA-256 thumbprint (64 hex digits, `:` separators \
allowed), as vSphere shows it (rigger's option).",
);
pub const PROXY_HOST: OptionDoc = OptionDoc::new("proxy_host", OptKind::Str, "Not supported: a value is refused.");
pub const PROXY_PORT: OptionDoc = OptionDoc::new("proxy_port", OptKind::Int, "Not supported: a value is refused.");

/// The connection options, in the order every vmware module documents them.
pub const CONNECTION: &[OptionDoc] = &[
    HOSTNAME,
    USERNAME,
    PASSWORD,
    PORT,
    VALIDATE_CERTS,
    CA_FILE,
    THUMBPRINT,
    PROXY_HOST,
    PROXY_PORT,
];

/// `parts` one after the other, as one array of `N` options (`N` is the sum
/// of their lengths; [`vmware_options!`] computes it). Shared option lists
/// are declared once and spliced into each module's list at compile time.
pub const fn concat_options<const N: usize>(parts: &[&[OptionDoc]]) -> [OptionDoc; N] {
    let mut out = [HOSTNAME; N];
    let mut n = 0;
    let mut p = 0;
    while p < parts.len() {
        let mut i = 0;
        while i < parts[p].len() {
            out[n] = parts[p][i];
            n += 1;
            i += 1;
        }
        p += 1;
    }
    assert!(n == N, "concat_options: N is not the sum of the parts' lengths");
    out
}

/// A module's option list from shared parts and its own:
/// `vmware_options!(conn::CONNECTION, target::TARGET, OWN)`.
macro_rules! vmware_options {
    ($($part:expr),+ $(,)?) => {{
        const N: usize = 0 $(+ $part.len())+;
        const ALL: [$crate::modules::OptionDoc; N] = $crate::modules::vmware::conn::concat_options::<N>(&[$($part),+]);
        &ALL
    }};
}
pub(crate) use vmware_options;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnArgs {
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    validate_certs: Option<bool>,
    #[serde(default)]
    ca_file: Option<String>,
    #[serde(default)]
    thumbprint: Option<String>,
    #[serde(default)]
    proxy_host: Option<String>,
    #[serde(default)]
    proxy_port: Option<u16>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// How the server's certificate is checked, from `validate_certs`,
/// `ca_file` and `thumbprint` (an impossible combination is an error).
pub fn trust(validate: bool, ca_file: Option<String>, thumbprint: Option<String>) -> Result<Trust, String> {
    match (validate, ca_file, thumbprint) {
        (false, None, None) => Ok(Trust::Insecure),
        (false, _, _) => Err(
            "validate_certs: false turns certificate checks off; it cannot be combined with ca_file or thumbprint"
                .into(),
        ),
        (true, Some(_), Some(_)) => Err("give ca_file or thumbprint, not both".into()),
        (true, Some(f), None) => Ok(Trust::CaFile(f.into())),
        (true, None, Some(t)) => Ok(Trust::Thumbprint(parse_thumbprint(&t)?)),
        (true, None, None) => Ok(Trust::Platform),
    }
}

/// Split a module's templated arguments: the endpoint to log in to, and
/// the module's own arguments (checked and coerced from its doc).
pub fn split(doc: &ModuleDoc, args: Map<String, Value>) -> Result<(Endpoint, Map<String, Value>), ModuleError> {
    let mut args = normalize_args(doc, args)?;
    let mut conn = Map::new();
    for o in CONNECTION {
        if let Some(v) = args.remove(o.name) {
            if !v.is_null() {
                conn.insert(o.name.to_string(), v);
            }
        }
    }
    let c: ConnArgs =
        serde_json::from_value(Value::Object(conn)).map_err(|e| ModuleError::Args(format!("{}: {e}", doc.name)))?;
    let arg_err = |m: String| ModuleError::Args(format!("{}: {m}", doc.name));
    if c.proxy_host.is_some() || c.proxy_port.is_some() {
        return Err(arg_err(
            "proxy_host/proxy_port are not supported by rigger's vSphere client".into(),
        ));
    }
    let host = c.hostname.or_else(|| env("VMWARE_HOST")).ok_or_else(|| {
        arg_err("missing required argument: hostname (or the VMWARE_HOST environment variable)".into())
    })?;
    let username = c.username.or_else(|| env("VMWARE_USER")).ok_or_else(|| {
        arg_err("missing required argument: username (or the VMWARE_USER environment variable)".into())
    })?;
    let password = c.password.or_else(|| env("VMWARE_PASSWORD")).ok_or_else(|| {
        arg_err("missing required argument: password (or the VMWARE_PASSWORD environment variable)".into())
    })?;
    let port = match (c.port, env("VMWARE_PORT")) {
        (Some(p), _) => p,
        (None, Some(p)) => p
            .parse()
            .map_err(|_| arg_err(format!("VMWARE_PORT `{p}` is not a port number")))?,
        (None, None) => 443,
    };
    let validate = match (c.validate_certs, env("VMWARE_VALIDATE_CERTS")) {
        (Some(v), _) => v,
        (None, Some(v)) => crate::modules::values::value_bool(&Value::String(v.clone()))
            .ok_or_else(|| arg_err(format!("VMWARE_VALIDATE_CERTS `{v}` is not a boolean")))?,
        (None, None) => true,
    };
    let trust = trust(validate, c.ca_file, c.thumbprint).map_err(arg_err)?;
    // `[::1]` as written in a URL is the address ::1.
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    Ok((
        Endpoint {
            host,
            port,
            username,
            password,
            trust,
        },
        args,
    ))
}

/// A vSphere failure as a module's failure.
pub fn failed(e: VmwareError) -> ModuleError {
    ModuleError::Failed(e.to_string())
}

/// Log in to `ep`.
pub async fn login(ep: &Endpoint) -> Result<Session, ModuleError> {
    Session::login(ep).await.map_err(failed)
}

/// Run `work` in a session and log out whatever it returned; a failed
/// logout after a successful `work` is the task's failure (never dropped).
pub async fn with_session<T, F>(ep: &Endpoint, work: F) -> Result<T, ModuleError>
where
    F: for<'s> FnOnce(&'s mut Session) -> futures::future::BoxFuture<'s, Result<T, ModuleError>>,
{
    let mut s = login(ep).await?;
    let res = work(&mut s).await;
    let out = s.logout().await;
    match (res, out) {
        (Ok(v), Ok(())) => Ok(v),
        (Ok(_), Err(e)) => Err(ModuleError::Failed(format!("logout: {e}"))),
        (Err(e), _) => Err(e),
    }
}
