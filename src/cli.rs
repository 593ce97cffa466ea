//! Command-line interface (clap derive). Flags follow ansible / ansible-playbook.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "rigger",
    version = crate::version::VERSION,
    about = "Fast, agentless infrastructure automation: Ansible-compatible playbooks over SSH"
)]
pub struct Cli {
    /// More output (-v results, -vv task paths, -vvv the commands and uploads on each host as
    /// Ansible's `<host> EXEC` / `<host> PUT` lines, secrets masked, and debug events on
    /// stderr, -vvvv trace). RIGGER_LOG=FILTER (e.g. rigger::connection=debug) replaces the
    /// debug filter.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Append an audit record of this command (who, what, per host and task) to FILE, a
    /// hash-chained JSON-lines log (created 0600); `rigger audit verify` checks it.
    #[arg(long = "audit-log", env = "RIGGER_AUDIT_LOG", global = true, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Colour the output: auto (when stdout is a terminal and NO_COLOR is not set; also
    /// ANSIBLE_NOCOLOR / ANSIBLE_FORCE_COLOR and ansible.cfg's nocolor / force_color),
    /// always, or never.
    #[arg(long, value_enum, default_value_t = crate::output::color::ColorChoice::Auto, global = true, value_name = "WHEN")]
    pub color: crate::output::color::ColorChoice,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run playbooks against an inventory (like ansible-playbook).
    Run(RunArgs),
    /// Run one module on the hosts matching a pattern (like ansible).
    Adhoc(AdhocArgs),
    /// Show the inventory (like ansible-inventory).
    Inventory(InventoryArgs),
    /// Show module documentation.
    Doc(DocArgs),
    /// Run the built-in quickstart playbook against this machine.
    Quickstart(QuickstartArgs),
    /// Watch hosts: collect metrics over SSH, evaluate rules, send alerts.
    Watch(WatchArgs),
    /// Detect drift: run a playbook in check + diff mode and report which hosts differ (for cron).
    Check(Box<CheckArgs>),
    /// Encrypt and decrypt ansible-vault files and strings (like ansible-vault).
    Vault(VaultArgs),
    /// Check and read the audit log (--audit-log FILE or RIGGER_AUDIT_LOG).
    Audit(AuditArgs),
    /// Print a shell completion script generated from these options
    /// (e.g. `rigger completions bash > /etc/bash_completion.d/rigger`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; `rigger man | man -l -`), or write one page per command into DIR.
    Man {
        /// Write rigger.1 and a rigger-COMMAND.1 for each command into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Show the settings (rigger.toml, RIGGER_*/ANSIBLE_* variables, ansible.cfg).
    Config(ConfigArgs),
    /// Create a new project in DIR (default: here): rigger.toml, inventory/, playbooks/site.yml,
    /// roles/, modules/, .gitignore and a commented watch configuration. Never overwrites a file.
    Init {
        /// The project directory (created if missing).
        dir: Option<PathBuf>,
    },
    /// Check playbooks, roles, task and vars files for mistakes (deprecated forms, commands where
    /// a module exists, files without mode, plaintext secrets, ...): `file:line:column: ID message`.
    /// Exit 0 clean (or warnings only), 2 on errors, 1 when a file cannot be read or parsed.
    Lint(LintArgs),
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Playbooks, roles, task or vars files, or directories (every playbook, role and vars file
    /// under them). Default: the working directory.
    pub paths: Vec<PathBuf>,
    /// Output format (SARIF 2.1.0 for code-scanning tools).
    #[arg(short = 'f', long, value_enum, default_value = "text")]
    pub format: LintFormat,
    /// List the rules (id, level, the ansible-lint equivalent, summary) and exit.
    #[arg(short = 'L', long = "list-rules")]
    pub list_rules: bool,
    /// Do not check these rules (rigger or ansible-lint ids; repeatable or comma-separated).
    #[arg(short = 'x', long, value_name = "ID", value_delimiter = ',')]
    pub skip: Vec<String>,
    /// Report these rules as warnings, which do not fail the lint.
    #[arg(short = 'w', long, value_name = "ID", value_delimiter = ',')]
    pub warn: Vec<String>,
    /// The lint configuration (default: the nearest .rigger-lint.toml, else rigger.toml's [lint]).
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LintFormat {
    Text,
    Json,
    Sarif,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub action: ConfigAction,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print every setting, its value and where it came from (file:line, env VAR or default).
    /// Precedence: command line > RIGGER_*/ANSIBLE_* environment > rigger.toml > ansible.cfg > default.
    Dump {
        /// JSON instead of TOML.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub action: AuditAction,
}

#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Check the hash chain: exit 0 with the record count and head hash, or 1
    /// naming the first record where it breaks (a changed byte, a deleted line).
    Verify {
        /// The head hash printed by an earlier verify (kept elsewhere): also
        /// catches records cut off the end and an edit of the last record.
        #[arg(long)]
        head: Option<String>,
    },
    /// Show records, filtered.
    Show {
        /// Only records about this inventory host.
        #[arg(long)]
        host: Option<String>,
        /// Only records of runs by this OS user.
        #[arg(long)]
        user: Option<String>,
        /// From this time (2026-12-07T03:00:00Z, 2026-12-07, or 2h for two hours ago).
        #[arg(long)]
        since: Option<String>,
        /// Up to this time (same forms as --since).
        #[arg(long)]
        until: Option<String>,
        /// Only records of this kind (run_start, task, run_end, silence_add, ...).
        #[arg(long)]
        kind: Option<String>,
        /// The records as JSON lines.
        #[arg(long)]
        json: bool,
    },
}

/// Where vault passwords come from (as ansible-playbook's options); also
/// `ANSIBLE_VAULT_PASSWORD_FILE`, `ANSIBLE_VAULT_IDENTITY_LIST` and
/// ansible.cfg's `vault_password_file` / `vault_identity_list`.
#[derive(Debug, Args, Clone, Default)]
pub struct VaultPasswordArgs {
    /// A vault identity: LABEL@SOURCE or SOURCE, where SOURCE is a password file, an
    /// executable printing the password (a `*-client` script gets `--vault-id LABEL`), or
    /// `prompt` (repeatable).
    #[arg(long = "vault-id", value_name = "LABEL@SOURCE")]
    pub vault_id: Vec<String>,
    /// A vault password file, or an executable printing the password (repeatable).
    #[arg(long = "vault-password-file", alias = "vault-pass-file", value_name = "FILE")]
    pub vault_password_file: Vec<PathBuf>,
    /// Ask for the vault password on the terminal.
    #[arg(short = 'J', long = "ask-vault-pass", alias = "ask-vault-password")]
    pub ask_vault_pass: bool,
}

impl VaultPasswordArgs {
    pub fn sources(&self) -> crate::vault::Sources {
        crate::vault::Sources {
            vault_ids: self.vault_id.clone(),
            password_files: self.vault_password_file.clone(),
            ask: self.ask_vault_pass,
        }
    }
}

#[derive(Debug, Args)]
pub struct VaultArgs {
    #[command(subcommand)]
    pub action: VaultAction,
}

/// Options of the vault actions that write vaulted data.
#[derive(Debug, Args, Clone)]
pub struct VaultCommon {
    #[command(flatten)]
    pub passwords: VaultPasswordArgs,
    /// The vault id to encrypt with (when several are given).
    #[arg(long = "encrypt-vault-id", env = "ANSIBLE_VAULT_ENCRYPT_IDENTITY")]
    pub encrypt_vault_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum VaultAction {
    /// Encrypt files in place (or standard input to standard output).
    Encrypt {
        files: Vec<PathBuf>,
        /// Write the result here (`-` for standard output) instead of in place.
        #[arg(long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        common: VaultCommon,
    },
    /// Decrypt files in place (or standard input to standard output).
    Decrypt {
        files: Vec<PathBuf>,
        /// Write the result here (`-` for standard output) instead of in place.
        #[arg(long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        common: VaultCommon,
    },
    /// Print the plaintext of vaulted files.
    View {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        common: VaultCommon,
    },
    /// Edit a vaulted file in $EDITOR (the plaintext lives only in a 0600 temporary file, removed after).
    Edit {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        common: VaultCommon,
    },
    /// Create a new vaulted file with $EDITOR.
    Create {
        file: PathBuf,
        /// Open the editor even when standard output is not a terminal.
        #[arg(long = "skip-tty-check")]
        skip_tty_check: bool,
        #[command(flatten)]
        common: VaultCommon,
    },
    /// Re-encrypt vaulted files with a new password, all or nothing: files, and every vaulted file and
    /// inline `!vault` value under directories (an interrupted rekey is finished by the next one).
    Rekey {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The new password's file (or executable).
        #[arg(long = "new-vault-password-file")]
        new_vault_password_file: Option<PathBuf>,
        /// The new vault identity (LABEL@SOURCE).
        #[arg(long = "new-vault-id")]
        new_vault_id: Option<String>,
        #[command(flatten)]
        common: VaultCommon,
    },
    /// Show vaulted files decrypted, for review, without writing them to disk: one FILE prints its
    /// reading (a git textconv), OLD NEW a unified diff, git's seven external-diff arguments a labelled diff.
    Diff {
        #[arg(required = true, num_args = 1..=7)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        common: VaultCommon,
    },
    /// Encrypt strings as `!vault` YAML values (from arguments, else standard input).
    #[command(name = "encrypt_string", alias = "encrypt-string")]
    EncryptString {
        strings: Vec<String>,
        /// The variable name of each string, in order (repeatable).
        #[arg(short = 'n', long = "name")]
        names: Vec<String>,
        /// The variable name of the string read from standard input.
        #[arg(long = "stdin-name")]
        stdin_name: Option<String>,
        /// Ask for the string on the terminal.
        #[arg(short = 'p', long = "prompt")]
        prompt: bool,
        /// Write the result here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        common: VaultCommon,
    },
}

/// Connection and target selection, shared by `run` and `adhoc`.
#[derive(Debug, Args, Clone)]
pub struct TargetArgs {
    /// Inventory file, directory, script, or comma-separated host list (repeatable; default:
    /// the `inventory` setting, see `rigger config dump`).
    #[arg(short = 'i', long = "inventory", value_delimiter = ':')]
    pub inventory: Vec<String>,
    /// Further limit the hosts with a pattern (or @file).
    #[arg(short = 'l', long)]
    pub limit: Option<String>,
    /// Only this shard of the hosts: shard K of N by a fixed hash of each host name, so that N
    /// runs (on any machines) cover every host exactly once (docs/state.md).
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::shard::Shard>,
    /// Parallel hosts (default: the `forks` setting, 50).
    #[arg(short = 'f', long)]
    pub forks: Option<usize>,
    /// Extra variables: key=value, YAML/JSON, or @file (repeatable; highest precedence).
    #[arg(short = 'e', long = "extra-vars")]
    pub extra_vars: Vec<String>,
    /// Remote user (default: the `remote_user` setting).
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Private key file (default: the `private_key_file` setting).
    #[arg(long = "private-key", alias = "key-file")]
    pub private_key: Option<PathBuf>,
    /// Connection type for every host (ssh or local).
    #[arg(short = 'c', long)]
    pub connection: Option<String>,
    /// Connection timeout in seconds (default: the `timeout` setting, 10).
    #[arg(short = 'T', long = "timeout")]
    pub timeout: Option<u64>,
    /// Attempts to connect again after a failed connection setup (refused, reset,
    /// timed out), pausing 0, 1, 3, 7, 15, then 30 s between them as Ansible's ssh
    /// `retries` (default: ansible.cfg's `[ssh_connection] retries`, else 0); a
    /// host's `ansible_ssh_retries` overrides it. Not the task keyword `retries`.
    #[arg(long = "retries", env = "ANSIBLE_SSH_RETRIES", value_name = "N")]
    pub retries: Option<u32>,
    /// Limit for the whole run (`90s`, `30m`, `1h`): then no new task starts, tasks still
    /// running fail as timed out, the recap is printed and the exit code is 124.
    #[arg(long = "run-timeout", value_name = "DURATION", value_parser = parse_run_timeout)]
    pub run_timeout: Option<std::time::Duration>,
    /// Host key checking: strict, accept-new or off (default: the `host_key_checking` setting, strict).
    #[arg(long = "host-key-checking")]
    pub host_key_checking: Option<String>,
    /// known_hosts file to use instead of ~/.ssh/known_hosts.
    #[arg(long = "known-hosts", env = "RIGGER_KNOWN_HOSTS")]
    pub known_hosts: Option<PathBuf>,
    /// Run operations with become (sudo by default).
    #[arg(short = 'b', long = "become")]
    pub become_: bool,
    /// User to become.
    #[arg(long = "become-user")]
    pub become_user: Option<String>,
    /// Privilege escalation method: sudo or su.
    #[arg(long = "become-method")]
    pub become_method: Option<String>,
    /// Ask for the become password (needs a terminal; or set RIGGER_BECOME_PASSWORD).
    #[arg(short = 'K', long = "ask-become-pass")]
    pub ask_become_pass: bool,
    /// Check mode: report what would change, change nothing.
    #[arg(short = 'C', long)]
    pub check: bool,
    /// Show differences of changed files and attributes.
    #[arg(short = 'D', long)]
    pub diff: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Keep at most this much of each command's stdout and of its stderr (e.g. 512K, 16M, 1G);
    /// the rest is read and dropped, and the result says so (`stdout_truncated`). A user
    /// module printing more JSON than this fails.
    #[arg(
        long = "max-output",
        env = "RIGGER_MAX_OUTPUT",
        default_value = "16M",
        value_name = "SIZE"
    )]
    pub max_output: String,
    #[command(flatten)]
    pub vault: VaultPasswordArgs,
    /// Show vault values (and what is computed from them) in `debug` output on this terminal
    /// instead of masking them. Only interactively: with stdout not a terminal, or JSON
    /// output, it is ignored with a warning. Every other output stays masked.
    #[arg(long = "show-secrets")]
    pub show_secrets: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Playbook files.
    #[arg(required = true)]
    pub playbooks: Vec<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Only run tasks with these tags.
    #[arg(short = 't', long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Skip tasks with these tags.
    #[arg(long = "skip-tags", value_delimiter = ',')]
    pub skip_tags: Vec<String>,
    /// Start at the task with this name.
    #[arg(long = "start-at-task")]
    pub start_at_task: Option<String>,
    /// Run handlers even when a task failed.
    #[arg(long = "force-handlers")]
    pub force_handlers: bool,
    /// Clear the fact cache of every host of the inventory (with
    /// ANSIBLE_CACHE_PLUGIN=jsonfile; the `memory` cache starts empty).
    #[arg(long = "flush-cache")]
    pub flush_cache: bool,
    /// Only check the playbook: syntax, keywords, modules and arguments.
    #[arg(long = "syntax-check")]
    pub syntax_check: bool,
    /// List the hosts each play would run on.
    #[arg(long = "list-hosts")]
    pub list_hosts: bool,
    /// List the tasks of each play.
    #[arg(long = "list-tasks")]
    pub list_tasks: bool,
    /// List the tags used.
    #[arg(long = "list-tags")]
    pub list_tags: bool,
    /// Per-task timeout in seconds (0 = none).
    #[arg(long = "task-timeout", env = "ANSIBLE_TASK_TIMEOUT", default_value_t = 0)]
    pub task_timeout: u64,
    /// Time every task: a clock line under each task and, after the recap, the tasks
    /// slowest first with their total (Ansible's profile_tasks callback, also turned on by
    /// profile_tasks in ANSIBLE_CALLBACKS_ENABLED or ansible.cfg's callbacks_enabled).
    #[arg(long)]
    pub profile: bool,
}

#[derive(Debug, Args)]
pub struct AdhocArgs {
    /// Host pattern.
    pub pattern: String,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Module name.
    #[arg(short = 'm', long = "module-name", default_value = "command")]
    pub module: String,
    /// Module arguments (free form or key=value).
    #[arg(short = 'a', long = "args", default_value = "")]
    pub args: String,
    /// One JSON object per host on stdout (same as --output json).
    #[arg(long)]
    pub json: bool,
    /// Only list the matching hosts.
    #[arg(long = "list-hosts")]
    pub list_hosts: bool,
    /// Per-task timeout in seconds (0 = none).
    #[arg(long = "task-timeout", default_value_t = 0)]
    pub task_timeout: u64,
    /// The directory that stands for the playbook's (Ansible's ad-hoc
    /// `--playbook-dir`): its roles/, library/, collections/,
    /// group_vars/ and host_vars/ are used as a playbook's there would be.
    #[arg(long = "playbook-dir", value_name = "DIR")]
    pub playbook_dir: Option<PathBuf>,
    /// Clear the fact cache of every host of the inventory (with
    /// ANSIBLE_CACHE_PLUGIN=jsonfile; the `memory` cache starts empty).
    #[arg(long = "flush-cache")]
    pub flush_cache: bool,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Inventory file, directory, script, or comma-separated host list (repeatable; default:
    /// the `inventory` setting).
    #[arg(short = 'i', long = "inventory", value_delimiter = ':')]
    pub inventory: Vec<String>,
    /// Everything as JSON (like ansible-inventory --list).
    #[arg(long, conflicts_with_all = ["graph", "host"])]
    pub list: bool,
    /// A tree of groups and hosts, from GROUP (or the positional group; default `all`).
    #[arg(long, num_args = 0..=1, default_missing_value = "", conflicts_with = "host")]
    pub graph: Option<String>,
    /// Variables of one host.
    #[arg(long)]
    pub host: Option<String>,
    /// The group to start --graph from (ansible-inventory's positional `group`).
    #[arg(value_name = "GROUP")]
    pub group: Option<String>,
    /// With --graph: show variables.
    #[arg(long)]
    pub vars: bool,
    /// With --list or --host: YAML instead of JSON.
    #[arg(short = 'y', long)]
    pub yaml: bool,
    /// With --list: each group's own vars and each host's own vars, not the
    /// merged view (ansible-inventory --export).
    #[arg(long, env = "ANSIBLE_INVENTORY_EXPORT", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    pub export: bool,
    /// Write the result to FILE instead of standard output.
    #[arg(long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only hosts matching this pattern (ignored by --host and --graph).
    #[arg(short = 'l', long)]
    pub limit: Option<String>,
    /// Extra directories with group_vars/ and host_vars/ (the playbook's).
    #[arg(long = "playbook-dir")]
    pub playbook_dir: Option<PathBuf>,
    /// Extra variables (key=value, YAML/JSON, or @file), which the
    /// `constructed` plugin sees with `use_extra_vars`.
    #[arg(short = 'e', long = "extra-vars")]
    pub extra_vars: Vec<String>,
    #[command(flatten)]
    pub vault: VaultPasswordArgs,
}

#[derive(Debug, Args)]
pub struct DocArgs {
    /// Module name.
    pub module: Option<String>,
    /// List all modules.
    #[arg(short, long)]
    pub list: bool,
    /// Markdown instead of text: MODULE's reference page, or with --list the index of the
    /// built-in modules (what scripts/gen-module-docs.sh writes to docs/modules/).
    #[arg(long)]
    pub markdown: bool,
}

#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// Directory the quickstart playbook manages (default: a new temporary directory).
    #[arg(long)]
    pub dest: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Print the embedded playbook and exit.
    #[arg(long)]
    pub show: bool,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(subcommand)]
    pub command: Option<WatchCommand>,
    /// The watch configuration (rules, routes, receivers).
    #[arg(short = 'c', long = "config", global = true)]
    pub config: Option<PathBuf>,
    /// State database: a SQLite file or a `postgres://` URL, see docs/state.md (default:
    /// `state:` of the configuration).
    #[arg(long, global = true, env = "RIGGER_WATCH_STATE", hide_env_values = true)]
    pub state: Option<PathBuf>,
    /// Inventory file, directory, script, or comma-separated host list (repeatable; default:
    /// the `inventory` setting).
    #[arg(short = 'i', long = "inventory", value_delimiter = ':')]
    pub inventory: Vec<String>,
    /// Further limit the watched hosts with a pattern.
    #[arg(short = 'l', long)]
    pub limit: Option<String>,
    /// Only validate the configuration.
    #[arg(long = "check-config")]
    pub check_config: bool,
    /// Collect one round, evaluate the rules, deliver, exit (2 when an alert fires).
    #[arg(long)]
    pub once: bool,
    /// Serve /health, /alerts, /metrics and the status page (/status) on this address: PORT
    /// alone listens on 127.0.0.1; another address (e.g. 0.0.0.0:9464) needs a token.
    #[arg(long)]
    pub listen: Option<String>,
    /// File holding the bearer token that --listen requires (`Authorization:
    /// Bearer TOKEN`); or set RIGGER_WATCH_TOKEN. Never on the command line.
    #[arg(long = "listen-token-file")]
    pub listen_token_file: Option<PathBuf>,
    /// File holding the token that lets the status page (--listen, /status) create and
    /// expire silences; default: the --listen-token-file token. Without either the page is
    /// read-only.
    #[arg(long = "status-token-file")]
    pub status_token_file: Option<PathBuf>,
    /// The `rigger check` history whose recent runs the status page lists (default: the
    /// default of `rigger check --db`).
    #[arg(long = "check-db", env = "RIGGER_CHECK_DB")]
    pub check_db: Option<PathBuf>,
    /// Remote user (default: the `remote_user` setting).
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Private key file (default: the `private_key_file` setting).
    #[arg(long = "private-key")]
    pub private_key: Option<PathBuf>,
    /// Connection timeout in seconds (default: the `timeout` setting, 10).
    #[arg(short = 'T', long = "timeout")]
    pub timeout: Option<u64>,
    /// Host key checking: strict, accept-new or off (default: the `host_key_checking` setting).
    #[arg(long = "host-key-checking")]
    pub host_key_checking: Option<String>,
    /// known_hosts file to use instead of ~/.ssh/known_hosts.
    #[arg(long = "known-hosts", env = "RIGGER_KNOWN_HOSTS")]
    pub known_hosts: Option<PathBuf>,
    /// Vault passwords for vaulted inventory variables and `!vault` values of
    /// the watch configuration (what they taint is masked in every alert,
    /// notification, status page and log line).
    #[command(flatten)]
    pub vault: VaultPasswordArgs,
}

#[derive(Debug, Subcommand)]
pub enum WatchCommand {
    /// Manage silences (stored in the state file).
    Silence(SilenceArgs),
    /// List, approve or reject the actions of rules (stored in the state file).
    Action(ActionArgs),
}

#[derive(Debug, Args)]
pub struct ActionArgs {
    #[command(subcommand)]
    pub action: ActionCommand,
}

#[derive(Debug, Subcommand)]
pub enum ActionCommand {
    /// List the actions awaiting approval, queued or running.
    List {
        /// Also the finished, skipped, expired and rejected ones (the newest 200).
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Approve an action awaiting approval: the running `rigger watch` starts it.
    Approve {
        id: i64,
        /// Who approves (default: the current user).
        #[arg(long)]
        by: Option<String>,
    },
    /// Reject an action awaiting approval: it never runs.
    Reject {
        id: i64,
        /// Who rejects (default: the current user).
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct SilenceArgs {
    #[command(subcommand)]
    pub action: SilenceAction,
}

#[derive(Debug, Subcommand)]
pub enum SilenceAction {
    /// Silence alerts matching all matchers (name=value, name!=value, name=~re, name!~re).
    Add {
        #[arg(required = true)]
        matchers: Vec<String>,
        /// How long (e.g. 30m, 2h).
        #[arg(short, long, default_value = "1h")]
        duration: String,
        /// Why (required; Alertmanager requires a comment too).
        #[arg(long)]
        comment: Option<String>,
        /// Who (default: the current user).
        #[arg(long)]
        author: Option<String>,
    },
    /// List active silences.
    List {
        /// Include expired silences.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// End a silence now.
    Expire { id: i64 },
}

/// `rigger check`: exit codes 0 in sync, 1 error or failed task, 2 drift, 3 lock timeout,
/// 4 unreachable, 6 drift and unreachable, plus 8 when the report could not be mailed
/// (see docs/check-report.md).
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CheckArgs {
    #[command(subcommand)]
    pub action: Option<CheckAction>,
    /// The playbook that declares the desired state.
    #[arg(required = true)]
    pub playbook: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Only check tasks with these tags (and only remediate those).
    #[arg(short = 't', long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Skip tasks with these tags.
    #[arg(long = "skip-tags", value_delimiter = ',')]
    pub skip_tags: Vec<String>,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
    /// History database: a SQLite file or a `postgres://` URL (default: the `state` setting,
    /// else $XDG_STATE_HOME/rigger/check.db; docs/state.md).
    #[arg(long, env = "RIGGER_CHECK_DB", hide_env_values = true)]
    pub db: Option<PathBuf>,
    /// With --shard: the id that every shard of one run is given (the job's name; `%Y %m %d
    /// %H %M` take the start time, UTC: `nightly-%Y%m%d`), so that `rigger check history`
    /// shows their results as one run.
    #[arg(long = "run-id", value_name = "ID", env = "RIGGER_RUN_ID")]
    pub run_id: Option<String>,
    /// Configuration file (default ./rigger.toml, then $XDG_CONFIG_HOME/rigger/rigger.toml).
    #[arg(long, env = "RIGGER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Mail the report to this address (repeatable).
    #[arg(long = "mail-to")]
    pub mail_to: Vec<String>,
    /// Sender address of the mail report.
    #[arg(long = "mail-from")]
    pub mail_from: Option<String>,
    /// Mail the report even when every host is in sync.
    #[arg(long = "mail-always")]
    pub mail_always: bool,
    /// SMTP server (overrides [check.smtp] host).
    #[arg(long = "smtp-host")]
    pub smtp_host: Option<String>,
    /// SMTP port (default 25, 587 with starttls, 465 with tls).
    #[arg(long = "smtp-port")]
    pub smtp_port: Option<u16>,
    /// SMTP transport security: none, starttls or tls.
    #[arg(long = "smtp-tls")]
    pub smtp_tls: Option<String>,
    /// SMTP user name.
    #[arg(long = "smtp-username")]
    pub smtp_username: Option<String>,
    /// SMTP password (prefer the config file or this variable over the command line).
    #[arg(long = "smtp-password", env = "RIGGER_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// Wait at most this many seconds for another run of the same check to finish (then exit 3).
    #[arg(long = "lock-timeout", default_value_t = 0)]
    pub lock_timeout: u64,
    /// Sleep a random time of up to SECS before starting (spreads cron jobs).
    #[arg(long, default_value_t = 0)]
    pub splay: u64,
    /// Append the run log (and the task-by-task output) to this file.
    #[arg(long = "log-file")]
    pub log_file: Option<PathBuf>,
    /// Rotate the log file when it grows beyond this many bytes (keeps 3 old files).
    #[arg(long = "log-max-size", default_value_t = 10 * 1024 * 1024)]
    pub log_max_size: u64,
    /// After reporting, apply the playbook for real to the drifted hosts only.
    #[arg(long)]
    pub remediate: bool,
    /// Schedule (cron syntax, e.g. "0 3 * * *") for --install.
    #[arg(long, requires = "install")]
    pub cron: Option<String>,
    /// Install this check as a crontab entry (or a systemd timer) instead of running it.
    #[arg(long, requires = "cron", conflicts_with = "uninstall")]
    pub install: bool,
    /// Remove the crontab entry (or systemd timer) of this check.
    #[arg(long)]
    pub uninstall: bool,
    /// Where --install writes the schedule: auto (systemd timer when systemd runs, else crontab), cron, systemd.
    #[arg(long, default_value = "auto")]
    pub scheduler: String,
    /// Per-task timeout in seconds (0 = none).
    #[arg(long = "task-timeout", default_value_t = 0)]
    pub task_timeout: u64,
    /// Resolve everything this check would use (config file, history database, known_hosts,
    /// inventory and its hosts, playbook, mail settings, environment) and print it as JSON;
    /// connect to no host, send no mail, record nothing. `--install` runs the scheduled entry
    /// this way, as the scheduler would, before installing it.
    #[arg(long = "dry-run", conflicts_with_all = ["install", "uninstall", "remediate"])]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
    Junit,
}

#[derive(Debug, Subcommand)]
pub enum CheckAction {
    /// List recorded check runs.
    History(CheckHistoryArgs),
    /// Show new and resolved drift between two runs.
    Diff(CheckDiffArgs),
}

#[derive(Debug, Args)]
pub struct CheckHistoryArgs {
    /// History database (default $XDG_STATE_HOME/rigger/check.db).
    #[arg(long, env = "RIGGER_CHECK_DB")]
    pub db: Option<PathBuf>,
    /// Show at most this many runs (newest first).
    #[arg(short = 'n', long, default_value_t = 20)]
    pub last: usize,
    /// Output format (text or json).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct CheckDiffArgs {
    /// The older run id.
    pub run1: i64,
    /// The newer run id.
    pub run2: i64,
    /// History database (default $XDG_STATE_HOME/rigger/check.db).
    #[arg(long, env = "RIGGER_CHECK_DB")]
    pub db: Option<PathBuf>,
    /// Output format (text or json).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

fn parse_run_timeout(s: &str) -> Result<std::time::Duration, String> {
    match crate::watch::config::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be more than zero".into()),
        Err(e) => Err(e.to_string()),
    }
}
