//! The variables Ansible adds while it renders a template file (the
//! `template` module, `lookup('template')`): `template_host`,
//! `template_path`, `template_fullpath`, `template_destpath`,
//! `template_uid`, `template_mtime`, `template_run_date`, and
//! `ansible_managed` unless the play defines that variable itself.
//!
//! `ansible_managed` is the `[defaults] ansible_managed` setting of
//! ansible.cfg (default "Ansible managed"), as ansible-core 2.19 builds it:
//! `{host}`, `{uid}` and `{file}` become `{{ template_host }}`,
//! `{{ template_uid }}` and `{{ template_path }}`, strftime directives take
//! the template file's modification time, and the result is rendered as a
//! template (so those three expand).

use std::path::Path;

use minijinja::Value;

use super::datetime::DateTime;

/// The `template_*` variables of rendering `path` (as written, `shown`) to `dest`.
pub(crate) fn file_vars(path: &Path, shown: &str, dest: Option<&str>) -> Vec<(&'static str, Value)> {
    let meta = std::fs::metadata(path).ok();
    let mtime = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let uid = meta.as_ref().map(std::os::unix::fs::MetadataExt::uid);
    let owner = uid.map(|u| match crate::os_user::name(u) {
        Some(n) => Value::from(n),
        None => Value::from(u),
    });
    let full = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    vec![
        ("template_host", Value::from(host_name())),
        ("template_path", Value::from(shown)),
        ("template_fullpath", Value::from(full.display().to_string())),
        ("template_destpath", dest.map(Value::from).unwrap_or(Value::from(()))),
        ("template_uid", owner.unwrap_or(Value::from(()))),
        ("template_mtime", Value::from_object(DateTime::from_epoch(mtime))),
        ("template_run_date", Value::from_object(DateTime::now())),
    ]
}

/// The template source of `ansible_managed` for the file at `path`: the
/// configured text with `{host}`/`{uid}`/`{file}` replaced and strftime
/// directives expanded with the file's modification time.
pub(crate) fn managed_source(path: &Path) -> String {
    let configured =
        crate::ansible_cfg::value("defaults", "ansible_managed").unwrap_or_else(|| "Ansible managed".into());
    let text = configured
        .replace("{host}", "{{ template_host }}")
        .replace("{uid}", "{{ template_uid }}")
        .replace("{file}", "{{ template_path }}");
    if !text.contains('%') {
        return text;
    }
    let mtime = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    DateTime::from_epoch(mtime).strftime(&text)
}

/// The controller's host name, as Python's `os.uname()[1]`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// `ctx` with the variables of rendering the template file `path` to
/// `dest` (see [`file_vars`]); `ansible_managed` only where `ctx` has none.
/// `Err` says why the configured `ansible_managed` does not render (a
/// broken setting is a visible error, never shown as written).
pub(crate) fn file_context(
    env: &minijinja::Environment<'_>,
    path: &std::path::Path,
    shown: &str,
    dest: Option<&str>,
    ctx: &minijinja::Value,
) -> Result<minijinja::Value, String> {
    let vars = file_vars(path, shown, dest);
    let extra: std::collections::BTreeMap<String, minijinja::Value> =
        vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let extra = minijinja::Value::from(extra);
    // The last map wins: the template's variables over the task's, as in
    // Ansible's template action.
    let with_vars = minijinja::value::merge_maps([ctx.clone(), extra.clone()]);
    let has_managed = ctx.get_attr("ansible_managed").is_ok_and(|v| !v.is_undefined());
    if has_managed {
        return Ok(with_vars);
    }
    let source = managed_source(path);
    let managed = env.render_str(&source, &with_vars).map_err(|e| {
        let cfg = crate::ansible_cfg::ansible_cfg_path()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "ansible.cfg".into());
        format!("the ansible_managed setting ([defaults] in {cfg}) does not render: {e}")
    })?;
    let managed: std::collections::BTreeMap<String, minijinja::Value> =
        [("ansible_managed".to_string(), minijinja::Value::from(managed))].into();
    Ok(minijinja::value::merge_maps([
        ctx.clone(),
        extra,
        minijinja::Value::from(managed),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_default_and_placeholders() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.j2");
        std::fs::write(&p, "x").unwrap();
        // No ansible.cfg in the test's working directory names ansible_managed.
        if crate::ansible_cfg::value("defaults", "ansible_managed").is_none() {
            assert_eq!(managed_source(&p), "Ansible managed");
        }
        let vars = file_vars(&p, "t.j2", Some("/etc/x"));
        let get = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        assert_eq!(get("template_path").as_deref(), Some("t.j2"));
        assert_eq!(get("template_destpath").as_deref(), Some("/etc/x"));
        assert_eq!(get("template_uid").as_deref(), Some("root"));
    }
}
