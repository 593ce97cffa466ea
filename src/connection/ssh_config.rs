//! The subset of OpenSSH's `~/.ssh/config` that rigger honours.
//!
//! Supported: `Host` blocks (patterns with `*`, `?` and `!negation`),
//! `HostName`, `User`, `Port`, `IdentityFile` (with `~` and the `%h %p %r %u
//! %d %%` tokens), `ProxyJump`, `UserKnownHostsFile`, `StrictHostKeyChecking`,
//! `ConnectTimeout` and `ServerAliveInterval`. As with OpenSSH the first value
//! found for a keyword wins, except `IdentityFile`, which accumulates.
//! `Match` blocks other than `Match all` are skipped; other keywords are ignored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{default_user, home_dir, ConnError, HostKeyChecking, SshTarget};

/// A malformed line in an ssh config file.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{path}:{line}: {msg}")]
pub struct SshConfigError {
    pub path: String,
    pub line: usize,
    pub msg: String,
}

/// Why one directive's value is refused; [`SshConfigError`] adds the file
/// and line (or, for `ProxyJump`, the host alias).
#[derive(Debug, Clone, thiserror::Error)]
pub enum DirectiveError {
    #[error("unterminated quote")]
    UnterminatedQuote,
    #[error("bad port number `{0}`")]
    Port(String),
    #[error("`{keyword}` must be a number of seconds, not `{value}`")]
    Seconds { keyword: String, value: String },
    #[error("StrictHostKeyChecking must be yes, no, accept-new or ask, not `{0}`")]
    StrictHostKeyChecking(String),
    #[error("empty hop in `{0}`")]
    EmptyHop(String),
    #[error("bad hop `{0}`")]
    BadHop(String),
    /// A hop's own settings from the config file are invalid.
    #[error("{}", .0.msg)]
    Hop(SshConfigError),
}

impl From<SshConfigError> for ConnError {
    fn from(e: SshConfigError) -> Self {
        ConnError::Io(e.to_string())
    }
}

/// The settings of one host after evaluating every matching block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostConfig {
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    /// Raw values, tokens not yet expanded (see [`expand_tokens`]).
    pub identity_files: Vec<String>,
    /// `None` when not set; `Some(vec![])` never happens.
    pub proxy_jump: Option<String>,
    pub user_known_hosts_files: Option<Vec<String>>,
    pub strict_host_key_checking: Option<HostKeyChecking>,
    pub connect_timeout: Option<Duration>,
    pub server_alive_interval: Option<Duration>,
    pub server_alive_count_max: Option<usize>,
}

#[derive(Debug, Clone)]
struct Block {
    /// `None` for the options before the first `Host` line and for `Match all`.
    patterns: Option<Vec<String>>,
    /// Skipped entirely (unsupported `Match` criteria).
    never: bool,
    options: Vec<(usize, String, Vec<String>)>,
}

/// A parsed ssh config file.
#[derive(Debug, Clone)]
pub struct SshConfig {
    path: String,
    blocks: Vec<Block>,
}

impl SshConfig {
    /// Read and parse `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<SshConfig, SshConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => SshConfig::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SshConfig {
                path: path.display().to_string(),
                blocks: Vec::new(),
            }),
            Err(e) => Err(SshConfigError {
                path: path.display().to_string(),
                line: 0,
                msg: format!("cannot read: {e}"),
            }),
        }
    }

    /// Parse config text; `path` is used in error messages.
    pub fn parse(text: &str, path: &str) -> Result<SshConfig, SshConfigError> {
        let err = |line: usize, msg: String| SshConfigError {
            path: path.to_string(),
            line,
            msg,
        };
        let mut blocks = vec![Block {
            patterns: None,
            never: false,
            options: Vec::new(),
        }];
        for (idx, raw) in text.lines().enumerate() {
            let lineno = idx + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (keyword, rest) = split_keyword(line);
            let args = tokenize(rest).map_err(|m| err(lineno, m.to_string()))?;
            let keyword = keyword.to_ascii_lowercase();
            match keyword.as_str() {
                "host" => {
                    if args.is_empty() {
                        return Err(err(lineno, "`Host` needs at least one pattern".into()));
                    }
                    blocks.push(Block {
                        patterns: Some(args),
                        never: false,
                        options: Vec::new(),
                    });
                }
                "match" => {
                    let all = args.len() == 1 && args[0].eq_ignore_ascii_case("all");
                    blocks.push(Block {
                        patterns: None,
                        never: !all,
                        options: Vec::new(),
                    });
                }
                _ => {
                    if args.is_empty() {
                        return Err(err(lineno, format!("`{keyword}` needs a value")));
                    }
                    validate(&keyword, &args).map_err(|m| err(lineno, m.to_string()))?;
                    if let Some(b) = blocks.last_mut() {
                        b.options.push((lineno, keyword, args));
                    }
                }
            }
        }
        Ok(SshConfig {
            path: path.to_string(),
            blocks,
        })
    }

    /// Evaluate the config for `host` (the name given to ssh, before `HostName`).
    pub fn lookup(&self, host: &str) -> HostConfig {
        let mut hc = HostConfig::default();
        for block in &self.blocks {
            if block.never {
                continue;
            }
            if let Some(p) = &block.patterns {
                if !host_matches(host, p) {
                    continue;
                }
            }
            for (_, kw, args) in &block.options {
                // Values were validated by `parse`, so conversions cannot fail here.
                let first = args[0].as_str();
                match kw.as_str() {
                    "hostname" => set_once(&mut hc.hostname, first.to_string()),
                    "user" => set_once(&mut hc.user, first.to_string()),
                    "port" => {
                        if let Ok(p) = first.parse() {
                            set_once(&mut hc.port, p)
                        }
                    }
                    "identityfile" => hc.identity_files.push(first.to_string()),
                    "proxyjump" => set_once(&mut hc.proxy_jump, first.to_string()),
                    "userknownhostsfile" => set_once(&mut hc.user_known_hosts_files, args.clone()),
                    "stricthostkeychecking" => {
                        if let Ok(m) = parse_strict(first) {
                            set_once(&mut hc.strict_host_key_checking, m)
                        }
                    }
                    "connecttimeout" => {
                        if let Ok(s) = first.parse() {
                            set_once(&mut hc.connect_timeout, Duration::from_secs(s))
                        }
                    }
                    "serveraliveinterval" => {
                        if let Ok(s) = first.parse() {
                            set_once(&mut hc.server_alive_interval, Duration::from_secs(s))
                        }
                    }
                    "serveralivecountmax" => {
                        if let Ok(n) = first.parse() {
                            set_once(&mut hc.server_alive_count_max, n)
                        }
                    }
                    _ => {}
                }
            }
        }
        hc
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

fn set_once<T>(slot: &mut Option<T>, v: T) {
    if slot.is_none() {
        *slot = Some(v);
    }
}

fn parse_strict(v: &str) -> Result<HostKeyChecking, DirectiveError> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(HostKeyChecking::Strict),
        "accept-new" => Ok(HostKeyChecking::AcceptNew),
        "no" | "off" | "false" => Ok(HostKeyChecking::Off),
        // rigger never prompts; `ask` behaves like `yes`, as in batch mode.
        "ask" => Ok(HostKeyChecking::Strict),
        _ => Err(DirectiveError::StrictHostKeyChecking(v.to_string())),
    }
}

fn validate(keyword: &str, args: &[String]) -> Result<(), DirectiveError> {
    let v = args[0].as_str();
    match keyword {
        "port" => v
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .map(|_| ())
            .ok_or_else(|| DirectiveError::Port(v.to_string())),
        "connecttimeout" | "serveraliveinterval" | "serveralivecountmax" => {
            v.parse::<u64>().map(|_| ()).map_err(|_| DirectiveError::Seconds {
                keyword: keyword.to_string(),
                value: v.to_string(),
            })
        }
        "stricthostkeychecking" => parse_strict(v).map(|_| ()),
        _ => Ok(()),
    }
}

/// Split `Keyword value` or `Keyword=value`.
fn split_keyword(line: &str) -> (&str, &str) {
    let end = line.find(|c: char| c.is_whitespace() || c == '=').unwrap_or(line.len());
    let (kw, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim_start();
    (kw, rest)
}

/// Split arguments on whitespace, honouring double quotes; a `#` starting a
/// token begins a comment.
fn tokenize(s: &str) -> Result<Vec<String>, DirectiveError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        if c == '#' {
            break;
        }
        let mut tok = String::new();
        if c == '"' {
            chars.next();
            let mut closed = false;
            for c in chars.by_ref() {
                if c == '"' {
                    closed = true;
                    break;
                }
                tok.push(c);
            }
            if !closed {
                return Err(DirectiveError::UnterminatedQuote);
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                tok.push(c);
                chars.next();
            }
        }
        out.push(tok);
    }
    Ok(out)
}

/// OpenSSH pattern matching: `*` and `?` wildcards, case-insensitive.
pub fn match_pattern(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let (mut ti, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A pattern list as in `Host a b !c`: some positive pattern matches and no
/// negated one does.
pub fn host_matches(host: &str, patterns: &[String]) -> bool {
    let mut matched = false;
    for p in patterns {
        if let Some(neg) = p.strip_prefix('!') {
            if match_pattern(host, neg) {
                return false;
            }
        } else if match_pattern(host, p) {
            matched = true;
        }
    }
    matched
}

/// Expand a leading `~` and the tokens `%h` (remote host), `%p` (port),
/// `%r` (remote user), `%u` (local user), `%d` (local home) and `%%`.
pub fn expand_tokens(s: &str, host: &str, port: u16, remote_user: &str) -> String {
    let home = home_dir().map(|h| h.display().to_string()).unwrap_or_default();
    let mut out = String::new();
    let s = if s == "~" {
        out.push_str(&home);
        ""
    } else if let Some(rest) = s.strip_prefix("~/") {
        out.push_str(&home);
        out.push('/');
        rest
    } else {
        s
    };
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(host),
            Some('p') => out.push_str(&port.to_string()),
            Some('r') => out.push_str(remote_user),
            Some('u') => out.push_str(&default_user()),
            Some('d') => out.push_str(&home),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Which fields of an [`SshTarget`] were set explicitly (inventory variables,
/// CLI flags) and so must not be overridden by the ssh config.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExplicitFields {
    pub address: bool,
    pub port: bool,
    pub user: bool,
    pub identity_files: bool,
    pub known_hosts: bool,
    pub host_key_checking: bool,
    pub connect_timeout: bool,
    pub keepalive: bool,
    pub keepalive_max: bool,
    pub jump_hosts: bool,
}

/// Fill `target` from the ssh config at `config_path` (a missing file changes
/// nothing). The host is looked up by `target.address` (the name OpenSSH would
/// be given); fields marked in `explicit` are kept. `ProxyJump` hops become
/// `jump_hosts`, each resolved through the same config.
pub fn apply_ssh_config(
    target: &mut SshTarget,
    config_path: &Path,
    explicit: &ExplicitFields,
) -> Result<(), SshConfigError> {
    let cfg = SshConfig::load(config_path)?;
    apply_host_config(target, &cfg, explicit, true)
}

/// [`apply_ssh_config`] with an already parsed config.
pub fn apply_host_config(
    target: &mut SshTarget,
    cfg: &SshConfig,
    explicit: &ExplicitFields,
    follow_proxy_jump: bool,
) -> Result<(), SshConfigError> {
    let alias = target.address.clone();
    let hc = cfg.lookup(&alias);
    if !explicit.address {
        if let Some(h) = &hc.hostname {
            target.address = expand_tokens(h, &alias, target.port, &target.user);
        }
    }
    if !explicit.port {
        if let Some(p) = hc.port {
            target.port = p;
        }
    }
    if !explicit.user {
        if let Some(u) = &hc.user {
            target.user = u.clone();
        }
    }
    if !explicit.identity_files && !hc.identity_files.is_empty() {
        target.identity_files = hc
            .identity_files
            .iter()
            .filter(|f| !f.eq_ignore_ascii_case("none"))
            .map(|f| PathBuf::from(expand_tokens(f, &target.address, target.port, &target.user)))
            .collect();
    }
    if !explicit.known_hosts {
        if let Some(files) = &hc.user_known_hosts_files {
            target.known_hosts = files
                .iter()
                .filter(|f| !f.eq_ignore_ascii_case("none"))
                .map(|f| PathBuf::from(expand_tokens(f, &target.address, target.port, &target.user)))
                .collect();
        }
    }
    if !explicit.host_key_checking {
        if let Some(m) = hc.strict_host_key_checking {
            target.host_key_checking = m;
        }
    }
    if !explicit.connect_timeout {
        if let Some(t) = hc.connect_timeout {
            target.connect_timeout = t;
        }
    }
    if !explicit.keepalive {
        if let Some(t) = hc.server_alive_interval {
            target.keepalive = if t.is_zero() { None } else { Some(t) };
        }
    }
    if !explicit.keepalive_max {
        if let Some(n) = hc.server_alive_count_max {
            target.keepalive_max = n;
        }
    }
    if follow_proxy_jump && !explicit.jump_hosts {
        if let Some(pj) = &hc.proxy_jump {
            target.jump_hosts = parse_proxy_jump(pj, target, cfg).map_err(|msg| SshConfigError {
                path: cfg.path.clone(),
                line: 0,
                msg: format!("ProxyJump for {alias}: {msg}"),
            })?;
        }
    }
    Ok(())
}

/// Parse a `ProxyJump` value (`none` or `[user@]host[:port],...`) into hops
/// that inherit the security settings of `base`.
pub fn parse_proxy_jump(value: &str, base: &SshTarget, cfg: &SshConfig) -> Result<Vec<SshTarget>, DirectiveError> {
    if value.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut hops = Vec::new();
    for spec in value.split(',') {
        let spec = spec.trim();
        let spec = spec.strip_prefix("ssh://").unwrap_or(spec);
        if spec.is_empty() {
            return Err(DirectiveError::EmptyHop(value.to_string()));
        }
        let (user, hostport) = match spec.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, spec),
        };
        let (host, port) = split_host_port(hostport).ok_or_else(|| DirectiveError::BadHop(spec.to_string()))?;
        let mut hop = SshTarget::new(&host, &host);
        hop.identity_files = Vec::new();
        hop.key_passphrase = base.key_passphrase.clone();
        hop.use_agent = base.use_agent;
        hop.host_key_checking = base.host_key_checking;
        hop.known_hosts = base.known_hosts.clone();
        hop.connect_timeout = base.connect_timeout;
        hop.keepalive = base.keepalive;
        hop.keepalive_max = base.keepalive_max;
        let mut explicit = ExplicitFields {
            host_key_checking: true,
            known_hosts: true,
            jump_hosts: true,
            ..Default::default()
        };
        if let Some(u) = user {
            hop.user = u.to_string();
            explicit.user = true;
        }
        if let Some(p) = port {
            hop.port = p;
            explicit.port = true;
        }
        apply_host_config(&mut hop, cfg, &explicit, false).map_err(DirectiveError::Hop)?;
        if hop.identity_files.is_empty() {
            // Without an IdentityFile of its own a bastion gets the keys of the target.
            hop.identity_files = base.identity_files.clone();
        }
        hops.push(hop);
    }
    Ok(hops)
}

/// `host`, `host:port`, `[v6addr]` or `[v6addr]:port`.
fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((h.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_string(), Some(p.parse().ok()?))),
        Some(_) => Some((s.to_string(), None)),
        None => Some((s.to_string(), None)),
    }
    .filter(|(h, _)| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"
# global comment
ServerAliveInterval 30

Host web? !web9
    HostName 10.0.0.%h
    User deploy
    Port 2222
    IdentityFile ~/.ssh/web_%r_%p

Host db-*
    HostName db.internal
    ProxyJump admin@bastion:2200,jump2
    IdentityFile /keys/db
    IdentityFile /keys/db2
    StrictHostKeyChecking accept-new
    UserKnownHostsFile "/tmp/kh one" /tmp/kh2

Host bastion
    HostName 127.0.0.5
    IdentityFile /keys/bastion

Host *
    User fallback
    Port 22
    ConnectTimeout=7
    IdentityFile /keys/default
"#;

    fn conf() -> SshConfig {
        SshConfig::parse(CONF, "cfg").unwrap()
    }

    #[test]
    fn patterns() {
        assert!(match_pattern("web1", "web?"));
        assert!(!match_pattern("web12", "web?"));
        assert!(match_pattern("db-east.example", "db-*"));
        assert!(match_pattern("ANY", "*"));
        assert!(match_pattern("abc", "a*c"));
        assert!(match_pattern("axxbxxc", "a*b*c"));
        assert!(!match_pattern("axxbxx", "a*b*c"));
        assert!(host_matches("web1", &["web?".into(), "!web9".into()]));
        assert!(!host_matches("web9", &["web?".into(), "!web9".into()]));
        assert!(!host_matches("x", &["!y".into()]), "a negation alone matches nothing");
    }

    #[test]
    fn first_value_wins_and_identity_files_accumulate() {
        let c = conf();
        let w = c.lookup("web1");
        assert_eq!(w.hostname.as_deref(), Some("10.0.0.%h"));
        assert_eq!(w.user.as_deref(), Some("deploy"));
        assert_eq!(w.port, Some(2222));
        assert_eq!(w.identity_files, vec!["~/.ssh/web_%r_%p", "/keys/default"]);
        assert_eq!(w.server_alive_interval, Some(Duration::from_secs(30)));
        assert_eq!(w.connect_timeout, Some(Duration::from_secs(7)));

        let n = c.lookup("web9");
        assert_eq!(n.user.as_deref(), Some("fallback"));
        assert_eq!(n.hostname, None);

        let d = c.lookup("db-1");
        assert_eq!(d.proxy_jump.as_deref(), Some("admin@bastion:2200,jump2"));
        assert_eq!(d.strict_host_key_checking, Some(HostKeyChecking::AcceptNew));
        assert_eq!(
            d.user_known_hosts_files,
            Some(vec!["/tmp/kh one".to_string(), "/tmp/kh2".to_string()])
        );
        assert_eq!(d.identity_files, vec!["/keys/db", "/keys/db2", "/keys/default"]);
    }

    #[test]
    fn bad_values_name_the_line() {
        let e = SshConfig::parse("Host a\n  Port nope\n", "/x/config").unwrap_err();
        assert_eq!(e.to_string(), "/x/config:2: bad port number `nope`");
        let e = SshConfig::parse("StrictHostKeyChecking maybe\n", "c").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.msg.contains("accept-new"));
        assert!(SshConfig::parse("User \"unterminated\n", "c").is_err());
    }

    #[test]
    fn directive_errors_keep_the_value() {
        assert!(matches!(validate("port", &["0".into()]), Err(DirectiveError::Port(v)) if v == "0"));
        let e = validate("connecttimeout", &["soon".into()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`connecttimeout` must be a number of seconds, not `soon`"
        );
        assert!(matches!(tokenize("\"open"), Err(DirectiveError::UnterminatedQuote)));
        let cfg = SshConfig::parse("", "c").unwrap();
        let base = SshTarget::new("t", "t");
        let e = parse_proxy_jump("a,,b", &base, &cfg).unwrap_err();
        assert!(matches!(&e, DirectiveError::EmptyHop(v) if v == "a,,b"));
        assert_eq!(e.to_string(), "empty hop in `a,,b`");
    }

    #[test]
    fn tokens() {
        let home = home_dir().unwrap().display().to_string();
        assert_eq!(
            expand_tokens("~/.ssh/id_%h_%p_%r", "h1", 22, "bob"),
            format!("{home}/.ssh/id_h1_22_bob")
        );
        assert_eq!(expand_tokens("/a/100%%", "h", 1, "u"), "/a/100%");
        assert_eq!(expand_tokens("/x/%u", "h", 1, "u"), format!("/x/{}", default_user()));
    }

    #[test]
    fn apply_respects_explicit_fields() {
        let c = conf();
        let mut t = SshTarget::new("web1", "web1");
        apply_host_config(&mut t, &c, &ExplicitFields::default(), true).unwrap();
        assert_eq!(t.address, "10.0.0.web1");
        assert_eq!(t.port, 2222);
        assert_eq!(t.user, "deploy");
        let home = home_dir().unwrap().display().to_string();
        assert_eq!(
            t.identity_files[0],
            PathBuf::from(format!("{home}/.ssh/web_deploy_2222"))
        );
        assert_eq!(t.keepalive, Some(Duration::from_secs(30)));

        let mut t = SshTarget::new("web1", "web1");
        t.user = "inv".into();
        t.port = 2022;
        let explicit = ExplicitFields {
            user: true,
            port: true,
            ..Default::default()
        };
        apply_host_config(&mut t, &c, &explicit, true).unwrap();
        assert_eq!(t.user, "inv");
        assert_eq!(t.port, 2022);
        assert_eq!(t.address, "10.0.0.web1");
    }

    #[test]
    fn proxy_jump_hops_are_resolved() {
        let c = conf();
        let mut t = SshTarget::new("db-1", "db-1");
        t.key_passphrase = Some("pw".into());
        apply_host_config(&mut t, &c, &ExplicitFields::default(), true).unwrap();
        assert_eq!(t.address, "db.internal");
        assert_eq!(t.host_key_checking, HostKeyChecking::AcceptNew);
        assert_eq!(t.jump_hosts.len(), 2);
        let b = &t.jump_hosts[0];
        assert_eq!(
            (b.address.as_str(), b.port, b.user.as_str()),
            ("127.0.0.5", 2200, "admin")
        );
        assert_eq!(
            b.identity_files,
            vec![PathBuf::from("/keys/bastion"), PathBuf::from("/keys/default")]
        );
        assert_eq!(b.host_key_checking, HostKeyChecking::AcceptNew);
        assert_eq!(b.key_passphrase.as_deref(), Some("pw"));
        let j2 = &t.jump_hosts[1];
        assert_eq!(
            (j2.address.as_str(), j2.port, j2.user.as_str()),
            ("jump2", 22, "fallback")
        );

        let c = SshConfig::parse("Host *\n ProxyJump none\n", "c").unwrap();
        let mut t = SshTarget::new("x", "x");
        t.jump_hosts = vec![SshTarget::new("j", "j")];
        apply_host_config(&mut t, &c, &ExplicitFields::default(), true).unwrap();
        assert!(t.jump_hosts.is_empty());
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("h"), Some(("h".into(), None)));
        assert_eq!(split_host_port("h:22"), Some(("h".into(), Some(22))));
        assert_eq!(split_host_port("[::1]:2222"), Some(("::1".into(), Some(2222))));
        assert_eq!(split_host_port("h:x"), None);
        assert_eq!(split_host_port(""), None);
    }

    #[test]
    fn missing_file_is_empty() {
        let c = SshConfig::load(Path::new("/nonexistent/rigger/config")).unwrap();
        assert_eq!(c.lookup("x"), HostConfig::default());
    }
}
