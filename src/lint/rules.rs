//! The rule catalogue: each rule's stable id, what it catches, and the
//! ansible-lint rule that catches the same thing (so a `# noqa:` or a skip
//! list written for ansible-lint keeps working).

/// How a finding counts: errors make `rigger lint` exit 2, warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
        }
    }
}

/// One rule.
#[derive(Debug)]
pub struct Rule {
    /// The stable id (used by `# noqa:`, `skip`, `warn` and every output).
    pub id: &'static str,
    /// ansible-lint's id for the same check, when it has one.
    pub ansible_lint: Option<&'static str>,
    /// One line: what is wrong.
    pub summary: &'static str,
    /// Why it matters and what to write instead.
    pub description: &'static str,
}

impl Rule {
    /// Whether `token` (from a `# noqa:`, `skip` or `warn`) names this rule:
    /// its id, its ansible-lint id, or that id's family (`name` for
    /// `name[missing]`).
    pub fn named_by(&self, token: &str) -> bool {
        if token == self.id {
            return true;
        }
        match self.ansible_lint {
            Some(a) => a == token || a.split_once('[').is_some_and(|(family, _)| family == token),
            None => false,
        }
    }
}

pub const DEPRECATED_INCLUDE: &str = "deprecated-include";
pub const DEPRECATED_SUDO: &str = "deprecated-sudo";
pub const DEPRECATED_ALWAYS_RUN: &str = "deprecated-always-run";
pub const DEPRECATED_BARE_VARS: &str = "deprecated-bare-vars";
pub const DEPRECATED_LOCAL_ACTION: &str = "deprecated-local-action";
pub const COMMAND_INSTEAD_OF_MODULE: &str = "command-instead-of-module";
pub const PIPE_TO_SHELL: &str = "pipe-to-shell";
pub const RISKY_FILE_PERMISSIONS: &str = "risky-file-permissions";
pub const TASK_NAME_MISSING: &str = "task-name-missing";
pub const PLAY_NAME_MISSING: &str = "play-name-missing";
pub const PACKAGE_LATEST: &str = "package-latest";
pub const PLAINTEXT_SECRET: &str = "plaintext-secret";
pub const BECOME_PASSWORD_PLAINTEXT: &str = "become-password-plaintext";
pub const IGNORE_ERRORS: &str = "ignore-errors";
pub const PARTIAL_BECOME: &str = "partial-become";

/// Every rule, in the order `--list-rules` and SARIF show them.
pub const RULES: &[Rule] = &[
    Rule {
        id: DEPRECATED_INCLUDE,
        ansible_lint: None,
        summary: "`include:` is removed from Ansible (2.16)",
        description: "`include:` was deprecated in Ansible 2.4 and removed in ansible-core 2.16. Use \
            `import_tasks:` (static) or `include_tasks:` (dynamic) in a task list, `import_playbook:` \
            at the top of a playbook. (ansible-lint reports it through ansible-core's syntax check.)",
    },
    Rule {
        id: DEPRECATED_SUDO,
        ansible_lint: None,
        summary: "`sudo`/`sudo_user`/`su`/`su_user` keywords are removed from Ansible",
        description: "The `sudo` and `su` keyword families were replaced by `become`, `become_user` and \
            `become_method` in Ansible 1.9 and removed in 2.9; Ansible now rejects them. \
            (ansible-lint reports them as `schema` violations.)",
    },
    Rule {
        id: DEPRECATED_ALWAYS_RUN,
        ansible_lint: None,
        summary: "`always_run` is removed from Ansible",
        description: "`always_run: true` was replaced by `check_mode: false` in Ansible 2.2 and removed in 2.4.",
    },
    Rule {
        id: DEPRECATED_BARE_VARS,
        ansible_lint: Some("deprecated-bare-vars"),
        summary: "a bare variable name in a `with_*` loop",
        description: "`with_items: packages` loops over the one string \"packages\", not over the \
            variable: bare variables in loops stopped being expanded in Ansible 2.0. Write \
            `with_items: \"{{ packages }}\"` (or `loop:`).",
    },
    Rule {
        id: DEPRECATED_LOCAL_ACTION,
        ansible_lint: Some("deprecated-local-action"),
        summary: "`local_action:` instead of `delegate_to: localhost`",
        description: "`local_action: module args` hides the module in a string (or a nested mapping) \
            where neither Ansible's argument checks nor a reader see it. Write the module as usual \
            and add `delegate_to: localhost`.",
    },
    Rule {
        id: COMMAND_INSTEAD_OF_MODULE,
        ansible_lint: Some("command-instead-of-module"),
        summary: "`command`/`shell` runs a program a module manages",
        description: "A module (apt, dnf, systemd, git, get_url, file, ...) reports `changed` \
            truthfully, supports check and diff mode and is idempotent; a command is run every time \
            and always reports a change. Read-only subcommands (`systemctl status`, `git log`, \
            `rpm -q`, ...) are not reported. (ansible-lint's older `deprecated-command-syntax` \
            reported the `file` cases: mkdir, chmod, chown, ln, rm.)",
    },
    Rule {
        id: PIPE_TO_SHELL,
        ansible_lint: None,
        summary: "a script downloaded and piped into a shell",
        description: "`curl URL | sh` (or `bash <(wget ...)`) runs whatever the server sends, unverified, \
            with the task's privileges (root under `become`). Download with `get_url` and a \
            `checksum:`, then run the file.",
    },
    Rule {
        id: RISKY_FILE_PERMISSIONS,
        ansible_lint: Some("risky-file-permissions"),
        summary: "a module that creates a file or directory without `mode`",
        description: "Without `mode`, a new file's permissions come from the remote umask (and for \
            copy/template, from older Ansible versions' defaults): a secret may end up world-readable. \
            Applies to copy, template, file (state: directory/touch), get_url, assemble, archive, and \
            lineinfile/blockinfile/ini_file/htpasswd when they may create the file.",
    },
    Rule {
        id: TASK_NAME_MISSING,
        ansible_lint: Some("name[missing]"),
        summary: "a task without `name`",
        description: "The name is what the run's output, `--start-at-task`, `--list-tasks`, the audit \
            log and a reviewer see.",
    },
    Rule {
        id: PLAY_NAME_MISSING,
        ansible_lint: Some("name[play]"),
        summary: "a play without `name`",
        description: "The name is what the run's output and the audit log show for the play.",
    },
    Rule {
        id: PACKAGE_LATEST,
        ansible_lint: Some("package-latest"),
        summary: "`state: latest` on a package module",
        description: "Each run may upgrade packages (and pull in new dependencies) to whatever the \
            repository has that day: runs stop being repeatable and a routine run can restart services. \
            Pin a version with `state: present`, or add `update_only: true` / `only_upgrade: true` \
            for a deliberate upgrade task.",
    },
    Rule {
        id: PLAINTEXT_SECRET,
        ansible_lint: None,
        summary: "a password, token, secret or key written in plain text",
        description: "A variable or module argument named like a secret (password, passwd, passphrase, \
            secret, token, api_key, private_key, access_key, ...) with a literal value ends up in \
            version control and every copy of it. Encrypt it (`ansible-vault encrypt_string`, a \
            `!vault` value or a vaulted vars file) or look it up at run time. Values that are \
            templates, vaulted, crypt hashes or file paths (`*_file`, `*_path`) are not reported.",
    },
    Rule {
        id: BECOME_PASSWORD_PLAINTEXT,
        ansible_lint: None,
        summary: "the privilege-escalation (sudo/su) password written in plain text",
        description: "`ansible_become_password` (or `ansible_become_pass`, `ansible_sudo_pass`, \
            `ansible_su_pass`) with a literal value gives root on every host it applies to to anyone \
            who can read the repository. Vault it, or use `--ask-become-pass`.",
    },
    Rule {
        id: IGNORE_ERRORS,
        ansible_lint: Some("ignore-errors"),
        summary: "`ignore_errors: true` without a reason",
        description: "It hides every failure of the task, including ones nobody expected. Say why in a \
            comment on the same line or the line above, or use `failed_when:` with the failures that \
            are acceptable.",
    },
    Rule {
        id: PARTIAL_BECOME,
        ansible_lint: Some("partial-become"),
        summary: "`become_user` without `become: true`",
        description: "`become_user` alone does nothing: the task still runs as the connection's user. \
            Add `become: true` at the same level (checked in playbooks, where the play is known; a \
            role's tasks may rely on the play's `become`).",
    },
];

/// The rule with this id.
pub fn rule(id: &str) -> &'static Rule {
    RULES
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| unreachable!("no lint rule {id}"))
}

/// The rules a `skip`/`warn`/`--skip` token names (none: not a rule).
pub fn named(token: &str) -> Vec<&'static Rule> {
    RULES.iter().filter(|r| r.named_by(token)).collect()
}
