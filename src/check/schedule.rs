//! `--install` / `--uninstall`: schedule a check with cron (the current user's
//! crontab, through `crontab -l` / `crontab -`) or, when systemd runs, with a
//! systemd service + timer pair. Entries carry a marker naming the check, so
//! installing again replaces the entry and uninstalling removes only it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::context::Entry;
use crate::error::AppError;

/// The comment line above a managed crontab entry.
pub fn marker(check_key: &str) -> String {
    format!("# rigger-check {check_key} (managed by `rigger check --install`; remove with --uninstall)")
}

/// Validate a cron schedule: five fields, or one of cron's `@` keywords.
pub fn validate_cron(expr: &str) -> Result<(), AppError> {
    let expr = expr.trim();
    if expr.starts_with('@') {
        return match expr {
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight" | "@hourly" | "@reboot" => Ok(()),
            _ => Err(AppError::Usage(format!("--cron {expr}: unknown cron keyword"))),
        };
    }
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(AppError::Usage(format!(
            "--cron \"{expr}\": expected 5 fields (minute hour day-of-month month day-of-week), got {}",
            fields.len()
        )));
    }
    let ok = |f: &str| {
        f.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '*' | ',' | '-' | '/'))
    };
    if let Some(bad) = fields.iter().find(|f| !ok(f)) {
        return Err(AppError::Usage(format!("--cron \"{expr}\": invalid field `{bad}`")));
    }
    Ok(())
}

/// The crontab line: `%` is special in crontab commands and must be escaped.
pub fn cron_line(expr: &str, entry: &Entry) -> String {
    format!("{} {}", expr.trim(), entry.shell_command().replace('%', "\\%"))
}

/// `existing` without the entry of `marker` (the marker line and the line after it).
pub fn remove_entry(existing: &str, marker: &str) -> (String, bool) {
    let mut out = String::new();
    let mut skip_next = false;
    let mut found = false;
    for line in existing.lines() {
        if skip_next {
            skip_next = false;
            continue;
        }
        if line == marker {
            skip_next = true;
            found = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    (out, found)
}

fn crontab_program() -> String {
    std::env::var("RIGGER_CRONTAB").unwrap_or_else(|_| "crontab".into())
}

fn read_crontab() -> Result<String, AppError> {
    let out = Command::new(crontab_program())
        .arg("-l")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| AppError::Other(format!("cannot run `crontab -l`: {e} (is cron installed?)")))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("no crontab") {
        return Ok(String::new());
    }
    Err(AppError::Other(format!("`crontab -l` failed: {}", err.trim())))
}

fn write_crontab(text: &str) -> Result<(), AppError> {
    let mut child = Command::new(crontab_program())
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| AppError::Other(format!("cannot run `crontab -`: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| AppError::Other(format!("cannot write to `crontab -`: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| AppError::Other(format!("`crontab -`: {e}")))?;
    if !out.status.success() {
        return Err(AppError::Other(format!(
            "`crontab -` refused the new crontab: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

pub fn install_cron(check_key: &str, line: &str) -> Result<(), AppError> {
    let m = marker(check_key);
    let (mut text, _) = remove_entry(&read_crontab()?, &m);
    text.push_str(&m);
    text.push('\n');
    text.push_str(line);
    text.push('\n');
    write_crontab(&text)
}

/// Returns whether an entry was there.
pub fn uninstall_cron(check_key: &str) -> Result<bool, AppError> {
    let (text, found) = remove_entry(&read_crontab()?, &marker(check_key));
    if found {
        write_crontab(&text)?;
    }
    Ok(found)
}

/// systemd is the init system (the check sd_booted() does).
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Translate a cron schedule to a systemd `OnCalendar=` value.
pub fn on_calendar(expr: &str) -> Result<String, AppError> {
    let expr = expr.trim();
    let keyword = match expr {
        "@yearly" | "@annually" => Some("yearly"),
        "@monthly" => Some("monthly"),
        "@weekly" => Some("weekly"),
        "@daily" | "@midnight" => Some("daily"),
        "@hourly" => Some("hourly"),
        _ => None,
    };
    if let Some(k) = keyword {
        return Ok(k.into());
    }
    validate_cron(expr)?;
    let f: Vec<&str> = expr.split_whitespace().collect();
    let unsupported = || {
        AppError::Usage(format!(
            "--cron \"{expr}\" cannot be translated to a systemd timer; use --scheduler cron"
        ))
    };
    let field = |s: &str| -> Result<String, AppError> {
        // systemd: `*`, lists `1,2`, ranges `1..5`, steps `0/15`.
        if s == "*" {
            return Ok("*".into());
        }
        if let Some(step) = s.strip_prefix("*/") {
            return Ok(format!("0/{step}"));
        }
        if s.chars().any(|c| c.is_ascii_alphabetic()) {
            return Err(unsupported());
        }
        Ok(s.replace('-', ".."))
    };
    // `@reboot` is valid cron but has no calendar form.
    let [f_min, f_hour, f_dom, f_mon, f_dow] = f[..] else {
        return Err(unsupported());
    };
    let (min, hour, dom, mon) = (field(f_min)?, field(f_hour)?, field(f_dom)?, field(f_mon)?);
    let dow = if f_dow == "*" {
        String::new()
    } else {
        const DAYS: [&str; 8] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let day = |d: &str| -> Result<&str, AppError> {
            d.parse::<usize>()
                .ok()
                .and_then(|n| DAYS.get(n).copied())
                .ok_or_else(unsupported)
        };
        let mut parts = Vec::new();
        for item in f_dow.split(',') {
            match item.split_once('-') {
                Some((a, b)) => parts.push(format!("{}..{}", day(a)?, day(b)?)),
                None => parts.push(day(item)?.to_string()),
            }
        }
        format!("{} ", parts.join(","))
    };
    let min = if min.len() == 1 && min != "*" {
        format!("0{min}")
    } else {
        min
    };
    Ok(format!("{dow}*-{mon}-{dom} {hour}:{min}:00"))
}

/// The unit directory: system units for root, user units otherwise.
fn unit_dir() -> Result<(PathBuf, bool), AppError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return Ok((PathBuf::from("/etc/systemd/system"), false));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| AppError::Usage("cannot find the systemd user unit directory: set HOME".into()))?;
    Ok((base.join("systemd/user"), true))
}

/// A word of a unit file's `ExecStart=` or `Environment=`: quoted when needed.
fn unit_word(a: &str) -> String {
    if a.is_empty()
        || a.chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\\' || c == '\'')
    {
        format!("\"{}\"", a.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        a.to_string()
    }
}

/// The service and timer units of a check.
pub fn units(check_key: &str, calendar: &str, entry: &Entry) -> (String, String) {
    let exec: Vec<String> = entry.argv.iter().map(|a| unit_word(a)).collect();
    let env: String = entry
        .env
        .iter()
        .map(|(k, v)| format!("Environment={}\n", unit_word(&format!("{k}={v}")).replace('%', "%%")))
        .collect();
    let service = format!(
        "# rigger-check {check_key}\n[Unit]\nDescription=rigger drift check {check_key}\n\n\
         [Service]\nType=oneshot\n# Exit codes 2, 4 and 6 report drift/unreachable hosts, not a failure of the unit;\n\
         # 8 is added when the report could not be mailed.\n\
         SuccessExitStatus=2 4 6\nWorkingDirectory={}\n{env}ExecStart={}\n",
        unit_word(&entry.cwd.display().to_string()).replace('%', "%%"),
        exec.join(" ").replace('%', "%%")
    );
    let timer = format!(
        "# rigger-check {check_key}\n[Unit]\nDescription=rigger drift check {check_key}\n\n\
         [Timer]\nOnCalendar={calendar}\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n"
    );
    (service, timer)
}

fn systemctl(user: bool, args: &[&str]) -> Result<(), AppError> {
    let mut c = Command::new("systemctl");
    if user {
        c.arg("--user");
    }
    let out = c
        .args(args)
        .output()
        .map_err(|e| AppError::Other(format!("cannot run systemctl: {e}")))?;
    if !out.status.success() {
        return Err(AppError::Other(format!(
            "systemctl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Write and enable the units. When systemd refuses them (daemon-reload or
/// enable fails), the unit files are put back as they were: removed when
/// this install wrote them, restored when it replaced older ones.
pub fn install_systemd(check_key: &str, calendar: &str, entry: &Entry) -> Result<PathBuf, AppError> {
    let (dir, user) = unit_dir()?;
    std::fs::create_dir_all(&dir).map_err(|e| AppError::Other(format!("cannot create {}: {e}", dir.display())))?;
    let name = format!("rigger-check-{check_key}");
    let (service, timer) = units(check_key, calendar, entry);
    let paths = [dir.join(format!("{name}.service")), dir.join(format!("{name}.timer"))];
    let before: Vec<Option<Vec<u8>>> = paths.iter().map(|p| std::fs::read(p).ok()).collect();
    let undo = || {
        for (p, old) in paths.iter().zip(&before) {
            let _ = match old {
                Some(data) => std::fs::write(p, data),
                None => std::fs::remove_file(p).or_else(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        Ok(())
                    } else {
                        Err(e)
                    }
                }),
            };
        }
    };
    let steps = || -> Result<(), AppError> {
        for (p, text) in paths.iter().zip([&service, &timer]) {
            std::fs::write(p, text).map_err(|e| AppError::Other(format!("cannot write {}: {e}", p.display())))?;
        }
        systemctl(user, &["daemon-reload"])?;
        systemctl(user, &["enable", "--now", &format!("{name}.timer")])
    };
    if let Err(e) = steps() {
        undo();
        let what = if before.iter().any(Option::is_some) {
            "restored the previous unit files"
        } else {
            "removed the unit files it wrote"
        };
        return Err(AppError::Other(format!(
            "{e}; not installed ({what} in {})",
            dir.display()
        )));
    }
    Ok(paths[1].clone())
}

pub fn uninstall_systemd(check_key: &str) -> Result<bool, AppError> {
    let (dir, user) = unit_dir()?;
    let name = format!("rigger-check-{check_key}");
    let timer = dir.join(format!("{name}.timer"));
    if !timer.exists() {
        return Ok(false);
    }
    let _ = systemctl(user, &["disable", "--now", &format!("{name}.timer")]);
    for ext in ["timer", "service"] {
        let p = dir.join(format!("{name}.{ext}"));
        std::fs::remove_file(&p).map_err(|e| AppError::Other(format!("cannot remove {}: {e}", p.display())))?;
    }
    systemctl(user, &["daemon-reload"])?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_validation_and_lines() {
        assert!(validate_cron("0 3 * * *").is_ok());
        assert!(validate_cron("@daily").is_ok());
        assert!(validate_cron("0 3 * *").is_err());
        assert!(validate_cron("0 3 * * ;rm").is_err());
        let line = cron_line(
            "0 3 * * *",
            &Entry {
                cwd: "/srv/ops".into(),
                env: vec![("HOME".into(), "/root".into())],
                argv: vec![
                    "/usr/bin/rigger".into(),
                    "check".into(),
                    "my site.yml".into(),
                    "-e".into(),
                    "x=5%".into(),
                ],
            },
        );
        assert_eq!(
            line,
            "0 3 * * * cd /srv/ops && HOME=/root /usr/bin/rigger check 'my site.yml' -e 'x=5\\%'"
        );
    }

    #[test]
    fn entries_are_replaced_and_removed_by_marker() {
        let m = marker("abc");
        let existing = format!("MAILTO=x\n{m}\n0 1 * * * old\n5 5 * * * other\n");
        let (rest, found) = remove_entry(&existing, &m);
        assert!(found);
        assert_eq!(rest, "MAILTO=x\n5 5 * * * other\n");
        assert!(!remove_entry(&rest, &m).1);
    }

    #[test]
    fn systemd_calendars() {
        assert_eq!(on_calendar("0 3 * * *").unwrap(), "*-*-* 3:00:00");
        assert_eq!(on_calendar("*/15 * * * 1-5").unwrap(), "Mon..Fri *-*-* *:0/15:00");
        assert_eq!(on_calendar("@hourly").unwrap(), "hourly");
        assert!(on_calendar("0 3 * jan *").is_err());
        assert!(on_calendar("@reboot").is_err(), "@reboot has no systemd calendar form");
        let entry = Entry {
            cwd: "/srv/my ops".into(),
            env: vec![("HOME".into(), "/root".into()), ("PATH".into(), "/a b:/c".into())],
            argv: vec!["/bin/rigger".into(), "check".into(), "a b.yml".into()],
        };
        let (service, timer) = units("k1", "daily", &entry);
        assert!(
            service.contains("ExecStart=/bin/rigger check \"a b.yml\"\n"),
            "{service}"
        );
        assert!(service.contains("WorkingDirectory=\"/srv/my ops\"\n"), "{service}");
        assert!(
            service.contains("Environment=HOME=/root\nEnvironment=\"PATH=/a b:/c\"\n"),
            "{service}"
        );
        assert!(service.contains("SuccessExitStatus=2 4 6"));
        assert!(timer.contains("OnCalendar=daily"));
    }
}
