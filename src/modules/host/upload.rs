//! Files rigger runs on a host (user modules, Ansible module payloads),
//! uploaded once per run and host, content-addressed.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::connection::FileAttrs;
use crate::modules::{ModuleCtx, ModuleError};

/// (host, checksum) → remote path of modules already uploaded in this run.
fn uploaded() -> &'static Mutex<HashMap<(String, String), String>> {
    static U: OnceLock<Mutex<HashMap<(String, String), String>>> = OnceLock::new();
    U.get_or_init(Default::default)
}

/// The path on the host of a file rigger runs there (a user module, an
/// Ansible module's payload), uploaded on its first use in this run unless
/// the host has it already: content-addressed (`checksum` is its SHA-256)
/// under `$TMPDIR/.rigger-modules-UID/`, private to the (become) user.
pub async fn upload_once(ctx: &ModuleCtx<'_>, checksum: &str, name: &str, bytes: &[u8]) -> Result<String, ModuleError> {
    let key = (ctx.host.to_string(), checksum.to_string());
    if let Some(p) = uploaded().lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(p.clone());
    }
    // `name` is a module name: letters, digits, `_`, `-`, `.` only.
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let file = format!("{}-{}", &checksum[..16], name);
    let q = format!(
        "d=\"${{TMPDIR:-/tmp}}/.rigger-modules-$(id -u)\"; mkdir -p -m 700 \"$d\" && [ -O \"$d\" ] || \
         {{ echo \"$d is not a private directory of this user\" >&2; exit 1; }}; \
         printf '%s\\n' \"$d/{file}\"; if [ -x \"$d/{file}\" ] && [ \"$(sha256sum < \"$d/{file}\" | cut -d' ' -f1)\" = {sum} ]; then echo have; fi",
        sum = checksum
    );
    let out = ctx.run(&q).await?;
    if out.status != 0 {
        return Err(ModuleError::Failed(format!(
            "cannot prepare the module directory: {}",
            out.stderr_str().trim()
        )));
    }
    let text = out.stdout_str();
    let mut lines = text.lines();
    let path = lines.next().unwrap_or_default().to_string();
    if lines.next() != Some("have") {
        let attrs = FileAttrs {
            mode: Some(0o700),
            ..Default::default()
        };
        ctx.put_bytes(bytes, &path, &attrs).await?;
    }
    uploaded()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, path.clone());
    Ok(path)
}
