//! The modules ansible-core ships (`ansible/modules/` of ansible-core
//! 2.19), by their short names.
//!
//! A task naming one of them is a task Ansible would run, so it is never
//! taken for a typo: when rigger has no native module of that name and no
//! ansible-core is on the controller to run Ansible's, the task loads and
//! fails when it runs on a host, with its location, as a task with any
//! other missing requirement does (one that is skipped there costs
//! nothing, as under Ansible).

/// ansible-core's module names, sorted.
const CORE_MODULES: &[&str] = &[
    "add_host",
    "apt",
    "apt_key",
    "apt_repository",
    "assemble",
    "assert",
    "async_status",
    "blockinfile",
    "command",
    "copy",
    "cron",
    "deb822_repository",
    "debconf",
    "debug",
    "dnf",
    "dnf5",
    "dpkg_selections",
    "expect",
    "fail",
    "fetch",
    "file",
    "find",
    "gather_facts",
    "get_url",
    "getent",
    "git",
    "group",
    "group_by",
    "hostname",
    "import_playbook",
    "import_role",
    "import_tasks",
    "include_role",
    "include_tasks",
    "include_vars",
    "iptables",
    "known_hosts",
    "lineinfile",
    "meta",
    "mount_facts",
    "package",
    "package_facts",
    "pause",
    "ping",
    "pip",
    "raw",
    "reboot",
    "replace",
    "rpm_key",
    "script",
    "service",
    "service_facts",
    "set_fact",
    "set_stats",
    "setup",
    "shell",
    "slurp",
    "stat",
    "subversion",
    "systemd",
    "systemd_service",
    "sysvinit",
    "tempfile",
    "template",
    "unarchive",
    "uri",
    "user",
    "validate_argument_spec",
    "wait_for",
    "wait_for_connection",
    "yum_repository",
];

/// Whether `name` (bare, `ansible.builtin.` or `ansible.legacy.`) is a
/// module ansible-core ships.
/// ansible-core 2.19's action plugins (`ansible/plugins/action/`): what
/// Ansible runs for these names, whatever module of the name a `library/`
/// holds.
const CORE_ACTIONS: &[&str] = &[
    "add_host",
    "assemble",
    "assert",
    "async_status",
    "command",
    "copy",
    "debug",
    "dnf",
    "fail",
    "fetch",
    "gather_facts",
    "group_by",
    "include_vars",
    "normal",
    "package",
    "pause",
    "raw",
    "reboot",
    "script",
    "service",
    "set_fact",
    "set_stats",
    "shell",
    "template",
    "unarchive",
    "uri",
    "validate_argument_spec",
    "wait_for_connection",
];

/// Whether ansible-core runs an action plugin for the bare module name `short`.
pub fn is_core_action(short: &str) -> bool {
    CORE_ACTIONS.contains(&short)
}

pub fn is_core_module(name: &str) -> bool {
    let short = name
        .strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .unwrap_or(name);
    CORE_MODULES.binary_search(&short).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_names_are_sorted_and_found_in_every_form() {
        assert!(CORE_MODULES.windows(2).all(|w| w[0] < w[1]));
        assert!(is_core_module("pip"));
        assert!(is_core_module("ansible.builtin.rpm_key"));
        assert!(is_core_module("ansible.legacy.dnf"));
        assert!(!is_core_module("pipp"));
        assert!(!is_core_module("community.general.pip"));
    }
}
