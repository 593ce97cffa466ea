//! `rigger init [DIR]`: a new project laid out as an Ansible project is, so
//! that `rigger run playbooks/site.yml` works in it at once (the inventory
//! and roles are found through rigger.toml). It never overwrites a file:
//! when any of its files exists, nothing is written.

use std::path::{Path, PathBuf};

use crate::error::AppError;

const RIGGER_TOML: &str = r#"# rigger's settings for this project: `rigger config dump` shows each value and
# where it came from. Precedence: command line > RIGGER_*/ANSIBLE_* environment
# > this file > ansible.cfg > default. Relative paths are taken from this
# file's directory.
[defaults]
inventory = ["inventory/hosts.ini"]
roles_path = ["roles"]
# forks = 50                            # hosts worked on in parallel
# remote_user = "deploy"                # default: your user name
# private_key_file = "~/.ssh/id_ed25519"
# host_key_checking = "strict"          # strict | accept-new | off
# vault_password_file = "~/.vault_pass" # for `!vault` values and vaulted files
# timeout = 10                          # SSH connection timeout, seconds
# collections_path = ["collections"]

# `rigger check` (drift detection, e.g. from cron) mails its report with:
# [check]
# environment = "production"
# mail_to = ["ops@example.com"]
# mail_from = "rigger@example.com"
# [check.smtp]
# host = "smtp.example.com"
# port = 587
# tls = "starttls"
"#;

const HOSTS_INI: &str = r#"# The hosts rigger manages (`rigger inventory --graph` shows them).
# Groups in [brackets]; variables per host on its line, per group in
# group_vars/GROUP.yml, per host in host_vars/HOST.yml.
[web]
# web1.example.com ansible_host=192.0.2.10 ansible_user=deploy

[db]
# db1.example.com
"#;

const GROUP_VARS_ALL: &str = r#"---
# Variables of every host (a group's own file, e.g. web.yml, wins over this one).
greeting: Managed by rigger
"#;

const HOST_VARS_README: &str = r#"Variables of one host go in a file named after it, e.g. web1.example.com.yml;
they win over every group's.
"#;

const SITE_YML: &str = r#"---
# The whole site. Preview with `rigger run playbooks/site.yml --check --diff`,
# apply with `rigger run playbooks/site.yml`.
- name: Site
  hosts: all
  gather_facts: false
  roles:
    - common
"#;

const COMMON_TASKS: &str = r#"---
# The tasks of the `common` role, run on every host by playbooks/site.yml.
- name: Hosts answer
  ansible.builtin.ping:

- name: Greet
  ansible.builtin.debug:
    msg: "{{ greeting }} on {{ inventory_hostname }}"
"#;

const MODULES_README: &str = r#"Your own modules: an executable (or Python file) per module, named as the
module, that takes its arguments as Ansible's modules do and prints a JSON
result. rigger looks for them in modules/ and library/ next to a playbook and
in its parent directory (so here, for playbooks/*.yml), in each role's
library/, and in RIGGER_LIBRARY / ANSIBLE_LIBRARY. `rigger doc -l` lists the
built-in modules.
"#;

const GITIGNORE: &str = r#"# rigger's local state and secrets
*.retry
*.db
*.db-journal
.vault_pass
"#;

const WATCH_YML: &str = r#"# `rigger watch -c watch.yml`: collect metrics from the inventory's hosts over
# SSH, evaluate the rules, send alerts (docs/watch.md has every key).
# `rigger watch -c watch.yml --check-config` checks this file.
interval: 30s             # collection and evaluation period
hosts: all                # inventory pattern of the watched hosts
state: watch.db           # alerts, silences and samples (relative to this file)
# services: [sshd]        # `service_up` for these

rules:
  - alert: DiskAlmostFull
    metric: disk_used_pct
    match: {mount: /}
    threshold: "> 90"
    for: 5m
    severity: critical
    summary: "{{ labels.mount }} on {{ labels.host }} is {{ value | round(1) }}% full"
  - alert: MemoryLow
    metric: mem_used_pct
    threshold: "> 95"
    for: 10m
    severity: warning

route:
  receiver: ops
  group_by: [alertname, host]
  # repeat_interval: 4h

receivers:
  - name: ops
    # Alertmanager's webhook format; or mail:
    #   email: {to: [ops@example.com], from: rigger@example.com, smarthost: smtp.example.com:587, tls: starttls}
    webhook:
      url: http://127.0.0.1:9099/alerts
"#;

/// The files of a new project, relative to its directory.
const FILES: &[(&str, &str)] = &[
    ("rigger.toml", RIGGER_TOML),
    ("inventory/hosts.ini", HOSTS_INI),
    ("inventory/group_vars/all.yml", GROUP_VARS_ALL),
    ("inventory/host_vars/README", HOST_VARS_README),
    ("playbooks/site.yml", SITE_YML),
    ("roles/common/tasks/main.yml", COMMON_TASKS),
    ("modules/README", MODULES_README),
    (".gitignore", GITIGNORE),
    ("watch.yml", WATCH_YML),
];

/// `rigger init [DIR]`.
pub fn init(dir: Option<&Path>) -> Result<i32, AppError> {
    let dir = dir.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let existing: Vec<String> = FILES
        .iter()
        .map(|(rel, _)| dir.join(rel))
        .filter(|p| p.exists() || p.is_symlink())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() {
        return Err(AppError::Usage(format!(
            "rigger init writes no file over an existing one; these exist: {} (move them away or init another directory)",
            existing.join(", ")
        )));
    }
    for (rel, text) in FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| AppError::Other(format!("cannot create {}: {e}", parent.display())))?;
        }
        // create_new: a file that appeared since the check above is not overwritten either.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .map_err(|e| AppError::Other(format!("cannot write {}: {e}", path.display())))?;
        stdoutln!("created {}", path.display());
    }
    stdoutln!(
        "\nnext: add your hosts to {}, then `rigger run playbooks/site.yml` in {}",
        dir.join("inventory/hosts.ini").display(),
        dir.display()
    );
    Ok(0)
}
