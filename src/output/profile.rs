//! `--profile`: per-task timing as Ansible's `profile_tasks` callback shows
//! it. A clock line under each task banner (the time of day, the previous
//! task's duration, the time since the run started), and after the recap
//! the tasks sorted by duration, slowest first, with their total.
//!
//! Turned on by `--profile`, or as Ansible users do: `profile_tasks` (or
//! `ansible.posix.profile_tasks`) in `ANSIBLE_CALLBACKS_ENABLED` or
//! ansible.cfg's `[defaults] callbacks_enabled` (and their older names
//! `ANSIBLE_CALLBACK_WHITELIST` / `callback_whitelist`). Its options are
//! profile_tasks' own: `PROFILE_TASKS_SORT_ORDER` (descending, ascending,
//! none), `PROFILE_TASKS_TASK_OUTPUT_LIMIT` (a number, default 20, or
//! `all`), or `[callback_profile_tasks] sort_order` / `task_output_limit`.
//!
//! A task's time runs from its banner to the next banner (or the end of its
//! play, or the recap): with several hosts, the time until the last host
//! finished it.

use std::time::Instant;

use super::event::{Profile, TaskTiming};

/// Whether profiling was asked for through Ansible's callback settings.
pub fn enabled_by_ansible_settings() -> bool {
    let listed = |list: &str| {
        list.split(',')
            .map(str::trim)
            .any(|c| c == "profile_tasks" || c == "ansible.posix.profile_tasks")
    };
    let env = ["ANSIBLE_CALLBACKS_ENABLED", "ANSIBLE_CALLBACK_WHITELIST"]
        .iter()
        .find_map(|v| std::env::var(v).ok());
    match env {
        Some(list) => listed(&list),
        None => ["callbacks_enabled", "callback_whitelist"]
            .iter()
            .find_map(|k| crate::ansible_cfg::value("defaults", k))
            .is_some_and(|l| listed(&l)),
    }
}

/// profile_tasks' options (environment first, then ansible.cfg).
fn option(env: &str, key: &str) -> Option<String> {
    std::env::var(env)
        .ok()
        .or_else(|| crate::ansible_cfg::value("callback_profile_tasks", key))
        .map(|v| v.trim().to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortOrder {
    Descending,
    Ascending,
    None,
}

/// The timings of a run so far.
pub struct Profiler {
    started: Instant,
    /// When the last clock line was printed.
    last_clock: Instant,
    current: Option<(TaskTiming, Instant)>,
    done: Vec<TaskTiming>,
    sort: SortOrder,
    limit: Option<usize>,
}

impl Profiler {
    /// A profiler with profile_tasks' options from the environment and
    /// ansible.cfg; a bad option value is an error naming it.
    pub fn from_settings() -> Result<Profiler, String> {
        let sort = match option("PROFILE_TASKS_SORT_ORDER", "sort_order").as_deref() {
            None | Some("descending") => SortOrder::Descending,
            Some("ascending") => SortOrder::Ascending,
            Some("none") => SortOrder::None,
            Some(other) => {
                return Err(format!(
                    "PROFILE_TASKS_SORT_ORDER / [callback_profile_tasks] sort_order is {other:?}: expected \
                     descending, ascending or none"
                ))
            }
        };
        let limit = match option("PROFILE_TASKS_TASK_OUTPUT_LIMIT", "task_output_limit").as_deref() {
            None => Some(20),
            Some("all") => None,
            Some(n) => Some(n.parse::<usize>().map_err(|_| {
                format!(
                    "PROFILE_TASKS_TASK_OUTPUT_LIMIT / [callback_profile_tasks] task_output_limit is {n:?}: expected \
                     a number or `all`"
                )
            })?),
        };
        Ok(Profiler::new(sort, limit))
    }

    fn new(sort: SortOrder, limit: Option<usize>) -> Profiler {
        let now = Instant::now();
        Profiler {
            started: now,
            last_clock: now,
            current: None,
            done: Vec::new(),
            sort,
            limit,
        }
    }

    /// A task starts: the previous one ends. The clock line to show under
    /// its banner.
    pub fn task_start(&mut self, task: &str, location: &str, handler: bool) -> String {
        let now = Instant::now();
        self.close(now);
        self.current = Some((
            TaskTiming {
                task: task.to_string(),
                location: location.to_string(),
                handler,
                seconds: 0.0,
            },
            now,
        ));
        self.clock_line(now)
    }

    /// A play starts: the last task of the previous one has ended.
    pub fn play_start(&mut self) {
        self.close(Instant::now());
    }

    fn close(&mut self, now: Instant) {
        if let Some((mut t, started)) = self.current.take() {
            t.seconds = now.duration_since(started).as_secs_f64();
            self.done.push(t);
        }
    }

    /// The recap: every task's time, sorted and limited as asked, and the
    /// clock line of the end. The tasks are taken (a next playbook starts
    /// a new list).
    pub fn finish(&mut self) -> Profile {
        let now = Instant::now();
        self.close(now);
        let mut tasks = std::mem::take(&mut self.done);
        match self.sort {
            SortOrder::Descending => tasks.sort_by(|a, b| b.seconds.total_cmp(&a.seconds)),
            SortOrder::Ascending => tasks.sort_by(|a, b| a.seconds.total_cmp(&b.seconds)),
            SortOrder::None => {}
        }
        if let Some(n) = self.limit {
            tasks.truncate(n);
        }
        let clock = self.clock_line(now);
        let total = now.duration_since(self.started).as_secs_f64();
        Profile { tasks, total, clock }
    }

    /// profile_tasks' `tasktime()`: `Monday 07 December 2026  10:00:00
    /// +0000 (0:00:01.234)       0:00:05.678 ****`.
    fn clock_line(&mut self, now: Instant) -> String {
        let since_last = now.duration_since(self.last_clock).as_secs_f64();
        let total = now.duration_since(self.started).as_secs_f64();
        self.last_clock = now;
        filled(
            &format!("{} ({}){}{}", local_time(), hms(since_last), " ".repeat(7), hms(total)),
            '*',
        )
    }
}

/// profile_tasks' `secondsToStr`: `H:MM:SS.mmm`.
fn hms(secs: f64) -> String {
    let ms = (secs * 1000.0) as u64;
    format!(
        "{}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// profile_tasks' `filled`: the text, a space, and `fill` up to 79
/// columns (at least 3), and a space.
fn filled(msg: &str, fill: char) -> String {
    let msg = if msg.is_empty() {
        String::new()
    } else {
        format!("{msg} ")
    };
    let width = 79usize.saturating_sub(msg.chars().count()).max(3);
    let mut s = msg;
    s.extend(std::iter::repeat_n(fill, width));
    s.push(' ');
    s
}

/// The local time as Python's `time.strftime('%A %d %B %Y  %H:%M:%S %z')`.
fn local_time() -> String {
    // SAFETY: time() and localtime_r() write only into the values passed;
    // strftime writes at most `buf.len()` bytes and returns how many.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return String::new();
        }
        let mut buf = [0u8; 128];
        let n = libc::strftime(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%A %d %B %Y  %H:%M:%S %z".as_ptr(),
            &tm,
        );
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// The text after the recap: profile_tasks' summary, and the total as
/// profile_roles shows it.
pub fn render(p: &Profile, verbosity: u8) -> String {
    let mut s = format!(
        "\n{}\n{}\n{}\n",
        super::banner::banner("TASKS RECAP"),
        p.clock,
        filled("", '=')
    );
    for t in &p.tasks {
        s.push_str(&timing_line(&t.task, t.seconds));
        if verbosity >= 2 {
            s.push_str(&format!("{:-<79}\n", format!("{} ", t.location)));
        }
    }
    s.push_str(&filled("", '~'));
    s.push('\n');
    s.push_str(&timing_line("total", p.total));
    s
}

/// `name ------------ 1.23s`, 79 columns.
fn timing_line(name: &str, secs: f64) -> String {
    format!("{:-<70}{:->9}\n", format!("{name} "), format!(" {secs:.2}s"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_profile_tasks() {
        assert_eq!(hms(3725.5), "1:02:05.500");
        assert_eq!(hms(0.02), "0:00:00.020");
        assert_eq!(filled("", '=').len(), 80);
        assert!(filled("abc", '*').starts_with("abc ***"));
        let line = timing_line("sleep two", 2.013);
        assert_eq!(line.len(), 80, "{line}");
        assert!(
            line.starts_with("sleep two ----") && line.ends_with("- 2.01s\n"),
            "{line}"
        );
    }

    #[test]
    fn sorts_and_limits() {
        let mut p = Profiler::new(SortOrder::Descending, Some(2));
        for (name, secs) in [("a", 1.0), ("b", 3.0), ("c", 2.0)] {
            p.done.push(TaskTiming {
                task: name.into(),
                location: String::new(),
                handler: false,
                seconds: secs,
            });
        }
        let prof = p.finish();
        let clock = &prof.clock;
        let names: Vec<&str> = prof.tasks.iter().map(|t| t.task.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
        assert!(clock.contains(") ") && clock.ends_with("* "), "{clock}");
        let mut p = Profiler::new(SortOrder::Ascending, None);
        p.task_start("x", "f.yml:1:3", false);
        p.task_start("y", "f.yml:2:3", false);
        let prof = p.finish();
        assert_eq!(prof.tasks.len(), 2);
        assert!(prof.tasks[0].seconds <= prof.tasks[1].seconds);
    }
}
