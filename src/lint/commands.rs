//! What a `command`/`shell` line runs: the program of each command in it
//! and the module that does the same job, and downloads piped into a shell.

use std::sync::OnceLock;

use regex::Regex;

/// A command a module could replace: the program as written and the module.
#[derive(Debug, PartialEq, Eq)]
pub struct InsteadOfModule {
    pub program: String,
    pub module: &'static str,
}

/// The first command in `text` that a module could replace. `shell`: the
/// text is a shell script (each command of a `;`/`&&`/`||`/newline list is
/// looked at; the filters after a `|` are not); else one command line.
pub fn instead_of_module(text: &str, shell: bool) -> Option<InsteadOfModule> {
    let commands = if shell { shell_commands(text) } else { vec![text] };
    commands.into_iter().find_map(|c| {
        let words = words(c);
        let (program, args) = program_and_args(&words)?;
        let module = module_for(&program, &args)?;
        Some(InsteadOfModule { program, module })
    })
}

/// The simple commands of a shell list, each up to its first pipe.
fn shell_commands(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut quote: Option<u8> = None;
    let mut start = 0;
    let mut piped = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == q {
                    quote = None;
                } else if b == b'\\' && q == b'"' {
                    i += 1;
                }
            }
            None => match b {
                b'\'' | b'"' => quote = Some(b),
                b'\\' => i += 1,
                // Redirections (`2>&1`, `&>file`) are not separators.
                b'&' if (i > 0 && bytes[i - 1] == b'>') || bytes.get(i + 1) == Some(&b'>') => {}
                b';' | b'\n' | b'&' | b'|' => {
                    let double = i + 1 < bytes.len() && bytes[i + 1] == b;
                    if !piped {
                        out.push(&text[start..i]);
                    }
                    // `a | b`: b is a filter of a's output, not a command of its own.
                    piped = b == b'|' && !double;
                    if double {
                        i += 1;
                    }
                    start = i + 1;
                }
                _ => {}
            },
        }
        i += 1;
    }
    if !piped && start <= text.len() {
        out.push(&text[start.min(text.len())..]);
    }
    out
}

fn words(command: &str) -> Vec<String> {
    shlex::split(command).unwrap_or_else(|| command.split_whitespace().map(str::to_string).collect())
}

/// The program a command line runs (its base name) and its arguments,
/// past variable assignments and wrappers (`sudo -u x`, `env A=b`, `nohup`).
fn program_and_args(words: &[String]) -> Option<(String, Vec<&str>)> {
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        if is_assignment(w) {
            i += 1;
            continue;
        }
        match w {
            "sudo" | "doas" => {
                i += 1;
                while i < words.len() && words[i].starts_with('-') {
                    // The options of sudo that take a value.
                    if matches!(
                        words[i].as_str(),
                        "-u" | "-g" | "-C" | "-D" | "-h" | "-p" | "-r" | "-t" | "-U"
                    ) {
                        i += 1;
                    }
                    i += 1;
                }
            }
            "env" | "nohup" | "exec" | "time" | "command" | "nice" | "ionice" | "stdbuf" => {
                i += 1;
                while i < words.len() && words[i].starts_with('-') {
                    i += 1;
                }
            }
            _ => break,
        }
    }
    let first = words.get(i)?;
    if first.contains("{{") || first.contains('$') {
        return None;
    }
    let program = first.rsplit('/').next().unwrap_or(first).to_string();
    Some((program, words[i + 1..].iter().map(String::as_str).collect()))
}

fn is_assignment(w: &str) -> bool {
    match w.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

/// The first argument that is not an option (a subcommand).
fn subcommand<'a>(args: &[&'a str]) -> Option<&'a str> {
    args.iter().copied().find(|a| !a.starts_with('-'))
}

/// The module that does what `program args` does, when it changes state
/// a module manages (read-only subcommands are left alone: no module
/// reports them).
fn module_for(program: &str, args: &[&str]) -> Option<&'static str> {
    let sub = subcommand(args);
    let sub_in = |set: &[&str]| sub.is_some_and(|s| set.contains(&s));
    let has = |flag: &str| args.contains(&flag);
    Some(match program {
        "apt-get" | "apt" | "aptitude" => {
            if !sub_in(&[
                "install",
                "remove",
                "purge",
                "update",
                "upgrade",
                "dist-upgrade",
                "full-upgrade",
                "autoremove",
                "build-dep",
            ]) {
                return None;
            }
            "apt"
        }
        "yum" | "dnf" | "dnf5" | "microdnf" => {
            if !sub_in(&[
                "install",
                "remove",
                "erase",
                "update",
                "upgrade",
                "downgrade",
                "reinstall",
                "autoremove",
                "groupinstall",
                "groupremove",
                "localinstall",
            ]) {
                return None;
            }
            if program == "yum" {
                "yum"
            } else {
                "dnf"
            }
        }
        "rpm" => {
            if args.contains(&"--import") {
                "rpm_key"
            } else if args.iter().any(|a| {
                matches!(
                    *a,
                    "-i" | "-U" | "-F" | "-e" | "--install" | "--upgrade" | "--freshen" | "--erase"
                ) || (a.starts_with("-")
                    && !a.starts_with("--")
                    && (a.contains('i') || a.contains('U'))
                    && !a.contains('q'))
            }) {
                "dnf (or yum)"
            } else {
                return None;
            }
        }
        "pip" | "pip3" | "pip2" => {
            if !sub_in(&["install", "uninstall"]) {
                return None;
            }
            "pip"
        }
        "npm" | "yarn" | "pnpm" => {
            if !sub_in(&["install", "i", "uninstall", "add", "remove", "update"]) {
                return None;
            }
            "community.general.npm (or yarn/pnpm)"
        }
        "gem" => {
            if !sub_in(&["install", "uninstall"]) {
                return None;
            }
            "community.general.gem"
        }
        "systemctl" => {
            if !sub_in(&[
                "start",
                "stop",
                "restart",
                "reload",
                "try-restart",
                "reload-or-restart",
                "enable",
                "disable",
                "mask",
                "unmask",
                "daemon-reload",
            ]) {
                return None;
            }
            "systemd_service"
        }
        "service" => {
            // `service NAME ACTION`
            let words: Vec<&str> = args.iter().copied().filter(|a| !a.starts_with('-')).collect();
            if !words
                .get(1)
                .is_some_and(|a| ["start", "stop", "restart", "reload"].contains(a))
            {
                return None;
            }
            "service"
        }
        "chkconfig" | "update-rc.d" | "rc-update" => {
            if sub.is_none() || has("--list") {
                return None;
            }
            "service"
        }
        "git" => match sub {
            Some("clone" | "pull" | "checkout" | "fetch" | "switch") => "git",
            Some("config") if !has("--get") && !has("--list") && !has("-l") && args.len() > 2 => {
                "community.general.git_config"
            }
            _ => return None,
        },
        "hg" => {
            if !sub_in(&["clone", "pull", "update", "up"]) {
                return None;
            }
            "community.general.hg"
        }
        "svn" => {
            if !sub_in(&["checkout", "co", "update", "up", "export", "switch"]) {
                return None;
            }
            "subversion"
        }
        "curl" | "wget" => {
            if has("--version") || has("-V") || args.is_empty() {
                return None;
            }
            "get_url (or uri)"
        }
        "mkdir" => "file (state: directory)",
        "chmod" => "file (mode:)",
        "chown" => "file (owner:)",
        "chgrp" => "file (group:)",
        "ln" => "file (state: link or hard)",
        "rm" | "rmdir" | "unlink" => "file (state: absent)",
        "touch" => "file (state: touch)",
        "unzip" => {
            if has("-l") || has("-t") || has("-Z") || has("-v") {
                return None;
            }
            "unarchive"
        }
        "tar" => {
            let extract = args.first().is_some_and(|a| {
                *a == "--extract" || *a == "--get" || (!a.starts_with("--") && a.trim_start_matches('-').contains('x'))
            }) || has("-x")
                || has("--extract");
            if !extract {
                return None;
            }
            "unarchive"
        }
        "mount" => {
            let positional = args.iter().filter(|a| !a.starts_with('-')).count();
            if positional < 2 {
                return None;
            }
            "ansible.posix.mount"
        }
        "rsync" => "ansible.posix.synchronize",
        "patch" => "ansible.posix.patch",
        "mktemp" => "tempfile",
        "sed" => {
            if !args
                .iter()
                .any(|a| *a == "-i" || a.starts_with("-i") || *a == "--in-place" || a.starts_with("--in-place="))
            {
                return None;
            }
            "lineinfile, replace or template"
        }
        "useradd" | "adduser" | "usermod" | "userdel" | "deluser" => "user",
        "groupadd" | "groupmod" | "groupdel" | "addgroup" | "delgroup" => "group",
        "crontab" => {
            if has("-l") {
                return None;
            }
            "cron"
        }
        "sysctl" => {
            if !(has("-w") || args.iter().any(|a| a.contains('=') && !a.starts_with('-'))) {
                return None;
            }
            "ansible.posix.sysctl"
        }
        "hostnamectl" => {
            if !sub_in(&["set-hostname", "hostname"]) || args.len() < 2 {
                return None;
            }
            "hostname"
        }
        "hostname" => {
            subcommand(args)?;
            "hostname"
        }
        "timedatectl" => {
            if !sub_in(&["set-timezone"]) {
                return None;
            }
            "community.general.timezone"
        }
        "modprobe" => {
            subcommand(args)?;
            "community.general.modprobe"
        }
        "supervisorctl" => {
            if !sub_in(&["start", "stop", "restart", "add", "remove", "reread", "update"]) {
                return None;
            }
            "community.general.supervisorctl"
        }
        "letsencrypt" | "certbot" => {
            if !sub_in(&["certonly", "renew", "run", "certificates"]) && sub.is_some() {
                return None;
            }
            "community.crypto.acme_certificate"
        }
        "update-alternatives" => {
            if !(has("--install") || has("--set") || has("--remove")) {
                return None;
            }
            "alternatives"
        }
        "add-apt-repository" => "apt_repository",
        "locale-gen" => "community.general.locale_gen",
        "debconf-set-selections" => "debconf",
        "firewall-cmd" => {
            if !args
                .iter()
                .any(|a| a.starts_with("--add-") || a.starts_with("--remove-") || a.starts_with("--set-"))
            {
                return None;
            }
            "ansible.posix.firewalld"
        }
        "ufw" => {
            if !sub_in(&[
                "allow", "deny", "reject", "limit", "enable", "disable", "delete", "default",
            ]) {
                return None;
            }
            "community.general.ufw"
        }
        "iptables" | "ip6tables" => {
            if !args.iter().any(|a| {
                matches!(
                    *a,
                    "-A" | "-I" | "-D" | "-P" | "--append" | "--insert" | "--delete" | "--policy"
                )
            }) {
                return None;
            }
            "iptables"
        }
        "getent" => "getent",
        _ => return None,
    })
}

/// A download piped into an interpreter: `curl URL | sh`,
/// `wget -O- URL | sudo bash`, `bash <(curl URL)`, `sh -c "$(curl URL)"`.
/// The matched text, for the message.
pub fn pipe_to_shell(text: &str) -> Option<&str> {
    static PIPE: OnceLock<Regex> = OnceLock::new();
    let re = PIPE.get_or_init(|| {
        let interp = r"(?:/[\w./-]*/)?(?:ba|z|da|k|fi)?sh|(?:/[\w./-]*/)?(?:python[0-9.]*|perl|ruby|node|php)";
        Regex::new(&format!(
            r"\b(?:curl|wget|fetch)\b[^|;&\n]*\|\s*(?:sudo\s+(?:-\S+\s+)*)?(?:env\s+(?:\S+=\S*\s+)*)?(?:{interp})\b|\b(?:{interp})\s+(?:-\S+\s+)*[\x22']?(?:<\(|\$\()\s*(?:curl|wget|fetch)\b"
        ))
        .unwrap_or_else(|e| unreachable!("pipe_to_shell regex: {e}"))
    });
    re.find(text).map(|m| m.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(text: &str, shell: bool) -> Option<&'static str> {
        instead_of_module(text, shell).map(|h| h.module)
    }

    #[test]
    fn programs_with_modules_are_found() {
        assert_eq!(module("apt-get install -y nginx", false), Some("apt"));
        assert_eq!(
            module("/usr/bin/systemctl restart sshd", false),
            Some("systemd_service")
        );
        assert_eq!(module("sudo -u git git clone https://x/y", false), Some("git"));
        assert_eq!(
            module("LANG=C mkdir -p /srv/app", false),
            Some("file (state: directory)")
        );
        assert_eq!(module("cd /tmp && tar xzf app.tgz", true), Some("unarchive"));
        assert_eq!(
            module("sed -i 's/a/b/' /etc/x", true),
            Some("lineinfile, replace or template")
        );
    }

    #[test]
    fn read_only_and_filters_are_not() {
        assert_eq!(module("systemctl status sshd", false), None);
        assert_eq!(module("git log -1", false), None);
        assert_eq!(module("rpm -qa", false), None);
        assert_eq!(module("yum clean all", false), None);
        assert_eq!(module("cat /etc/passwd | sed 's/x/y/'", true), None);
        assert_eq!(module("tar czf /tmp/a.tgz /srv", true), None);
        assert_eq!(module("{{ tool }} install", false), None);
        assert_eq!(module("echo 'rm -rf /'", true), None);
    }

    #[test]
    fn downloads_into_a_shell() {
        assert!(pipe_to_shell("curl -fsSL https://get.example/x.sh | sh").is_some());
        assert!(pipe_to_shell("wget -qO- https://x | sudo -E bash -s -- --yes").is_some());
        assert!(pipe_to_shell("bash <(curl -s https://x)").is_some());
        assert!(pipe_to_shell("sh -c \"$(curl -fsSL https://x)\"").is_some());
        assert!(pipe_to_shell("curl -s https://x | jq .version").is_none());
        assert!(pipe_to_shell("curl -o /tmp/x.sh https://x && sha256sum -c sums").is_none());
    }
}
