//! Command-line interface (clap derive). Flags follow ansible / ansible-playbook.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "rigger",
    version,
    about = "Fast, agentless infrastructure automation: Ansible-compatible playbooks over SSH"
)]
pub struct Cli {
    /// More output (-v results, -vv task paths, -vvv connection details).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
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
}

/// Connection and target selection, shared by `run` and `adhoc`.
#[derive(Debug, Args, Clone)]
pub struct TargetArgs {
    /// Inventory file, directory, script, or comma-separated host list (repeatable).
    #[arg(short = 'i', long = "inventory", env = "ANSIBLE_INVENTORY", value_delimiter = ':')]
    pub inventory: Vec<String>,
    /// Further limit the hosts with a pattern (or @file).
    #[arg(short = 'l', long)]
    pub limit: Option<String>,
    /// Parallel hosts.
    #[arg(short = 'f', long, env = "ANSIBLE_FORKS", default_value_t = 50)]
    pub forks: usize,
    /// Extra variables: key=value, YAML/JSON, or @file (repeatable; highest precedence).
    #[arg(short = 'e', long = "extra-vars")]
    pub extra_vars: Vec<String>,
    /// Remote user.
    #[arg(short = 'u', long = "user", env = "ANSIBLE_REMOTE_USER")]
    pub user: Option<String>,
    /// Private key file.
    #[arg(long = "private-key", alias = "key-file", env = "ANSIBLE_PRIVATE_KEY_FILE")]
    pub private_key: Option<PathBuf>,
    /// Connection type for every host (ssh or local).
    #[arg(short = 'c', long)]
    pub connection: Option<String>,
    /// Connection timeout in seconds.
    #[arg(short = 'T', long = "timeout", env = "ANSIBLE_TIMEOUT", default_value_t = 10)]
    pub timeout: u64,
    /// Host key checking: strict, accept-new or off.
    #[arg(
        long = "host-key-checking",
        env = "RIGGER_HOST_KEY_CHECKING",
        default_value = "strict"
    )]
    pub host_key_checking: String,
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
    /// Accepted for compatibility: rigger caches facts for one run only.
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
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    #[arg(short = 'i', long = "inventory", env = "ANSIBLE_INVENTORY", value_delimiter = ':')]
    pub inventory: Vec<String>,
    /// Everything as JSON (like ansible-inventory --list).
    #[arg(long, conflicts_with_all = ["graph", "host"])]
    pub list: bool,
    /// A tree of groups and hosts, optionally from GROUP.
    #[arg(long, num_args = 0..=1, default_missing_value = "all")]
    pub graph: Option<String>,
    /// Variables of one host.
    #[arg(long)]
    pub host: Option<String>,
    /// With --graph: show variables.
    #[arg(long)]
    pub vars: bool,
    /// Extra directories with group_vars/ and host_vars/ (the playbook's).
    #[arg(long = "playbook-dir")]
    pub playbook_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DocArgs {
    /// Module name.
    pub module: Option<String>,
    /// List all modules.
    #[arg(short, long)]
    pub list: bool,
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
    /// SQLite state file (default: `state:` of the configuration).
    #[arg(long, global = true)]
    pub state: Option<PathBuf>,
    /// Inventory file, directory, script, or comma-separated host list (repeatable).
    #[arg(short = 'i', long = "inventory", env = "ANSIBLE_INVENTORY", value_delimiter = ':')]
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
    /// Serve /health, /alerts and /metrics on this address (e.g. 127.0.0.1:9464).
    #[arg(long)]
    pub listen: Option<String>,
    /// Remote user.
    #[arg(short = 'u', long = "user", env = "ANSIBLE_REMOTE_USER")]
    pub user: Option<String>,
    /// Private key file.
    #[arg(long = "private-key", env = "ANSIBLE_PRIVATE_KEY_FILE")]
    pub private_key: Option<PathBuf>,
    /// Connection timeout in seconds.
    #[arg(short = 'T', long = "timeout", default_value_t = 10)]
    pub timeout: u64,
    /// Host key checking: strict, accept-new or off.
    #[arg(
        long = "host-key-checking",
        env = "RIGGER_HOST_KEY_CHECKING",
        default_value = "strict"
    )]
    pub host_key_checking: String,
    /// known_hosts file to use instead of ~/.ssh/known_hosts.
    #[arg(long = "known-hosts", env = "RIGGER_KNOWN_HOSTS")]
    pub known_hosts: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum WatchCommand {
    /// Manage silences (stored in the state file).
    Silence(SilenceArgs),
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
        #[arg(long)]
        comment: Option<String>,
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
