//! Files rigger runs on a host (user modules, Ansible module payloads),
//! uploaded once per run and host, content-addressed.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::connection::{ConnError, FileAttrs};
use crate::modules::{ModuleCtx, ModuleError};
use crate::shell::sh_quote;

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
        put_shared(ctx, bytes, &path, checksum).await?;
    }
    uploaded()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, path.clone());
    Ok(path)
}

/// Uploads `bytes` (SHA-256 `checksum`) to `path` in the module directory,
/// which other runs on the same machine share (a `rigger check` from cron
/// beside an operator's run, two inventory names of one machine). An upload
/// removes its destination's leftover temp files first (those of a killed
/// run), so two uploads of the same file at once can remove each other's
/// temp file and one of them fails. The content is addressed by its sum, so
/// that is no conflict: after such a failure the file is checked and taken
/// if another upload put it there; else it is uploaded under a name of its
/// own (whose temp files no other upload touches) and renamed into place.
async fn put_shared(ctx: &ModuleCtx<'_>, bytes: &[u8], path: &str, checksum: &str) -> Result<(), ModuleError> {
    let attrs = FileAttrs {
        mode: Some(0o700),
        ..Default::default()
    };
    let first = match ctx.put_bytes(bytes, path, &attrs).await {
        Ok(()) => return Ok(()),
        Err(ConnError::Io(e)) => e,
        Err(e) => return Err(e.into()),
    };
    let p = sh_quote(path);
    let check = format!(
        "[ -x {p} ] && [ \"$(sha256sum < {p} | cut -d' ' -f1)\" = {sum} ] && echo have",
        sum = sh_quote(checksum)
    );
    if ctx.run(&check).await?.stdout_str().trim() == "have" {
        return Ok(());
    }
    let own = format!("{path}.{:016x}", rand::random::<u64>());
    ctx.put_bytes(bytes, &own, &attrs)
        .await
        .map_err(|e| ModuleError::Failed(format!("cannot upload {path}: {first}; again as {own}: {e}")))?;
    let out = ctx.run(&format!("mv -f -- {} {p}", sh_quote(&own))).await?;
    if out.status != 0 {
        return Err(ModuleError::Failed(format!(
            "cannot rename {own} to {path}: {}",
            out.stderr_str().trim()
        )));
    }
    Ok(())
}
