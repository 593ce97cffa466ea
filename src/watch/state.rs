//! The alert life cycle (pending → firing → resolved), silences, inhibition,
//! routing, grouping and the notification log, with Alertmanager's semantics:
//! a group is flushed `group_wait` after it appears and then every
//! `group_interval`; it notifies when a firing alert is new to the group's
//! last notification, when a notified alert resolved, or when
//! `repeat_interval` passed. The notification log is persisted so a restart
//! neither repeats nor forgets notifications.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::config::{matches_all, InhibitRule, Labels, Matcher, Route};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Pending,
    Firing,
    Resolved,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alert {
    pub fingerprint: String,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    pub active_since: f64,
    pub fired_at: f64,
    pub last_active: f64,
    pub resolved_at: f64,
    pub value: f64,
    /// The series whose history is charted in notifications.
    pub series: String,
    /// Why it is not notified: "silenced by 3", "inhibited by host_down".
    #[serde(default)]
    pub suppressed: Option<String>,
}

pub fn fingerprint(labels: &Labels) -> String {
    let mut h = Sha256::new();
    for (k, v) in labels {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// One evaluation result handed to the engine.
#[derive(Debug, Clone)]
pub struct Observation {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub value: f64,
    pub active: bool,
    pub series: String,
    pub for_secs: f64,
    pub keep_firing_secs: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NlogEntry {
    pub last_sent: f64,
    pub firing: BTreeSet<String>,
    /// The id of the notification that opened the group's current episode
    /// (its first firing notice): later notices of the episode (repeats,
    /// additions, the resolution) refer to it, so mail clients thread them.
    #[serde(default)]
    pub thread: Option<String>,
}

struct Group {
    receiver: String,
    group_labels: Labels,
    group_wait: f64,
    group_interval: f64,
    repeat_interval: f64,
    next_flush: f64,
    members: BTreeSet<String>,
}

/// A notification for one group and receiver.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notification {
    pub receiver: String,
    pub group_key: String,
    pub status: String,
    pub group_labels: Labels,
    pub alerts: Vec<Alert>,
    pub created: f64,
    /// Unique per notification (the email's Message-ID is made from it).
    #[serde(default)]
    pub id: String,
    /// The id of the group episode's first notification, when this is a later one.
    #[serde(default)]
    pub thread: Option<String>,
    /// The same for every instance that derives this notification from the
    /// same shared state (group, status, the notification log's last send,
    /// each alert's fingerprint, state and start): the outbox queues one
    /// row per key, so a host taken over never notifies twice.
    #[serde(default)]
    pub dedup_key: Option<String>,
}

/// See [`Notification::dedup_key`].
pub fn dedup_key(group_key: &str, status: &str, prev_sent: f64, alerts: &[Alert]) -> String {
    let mut h = Sha256::new();
    h.update(group_key.as_bytes());
    h.update([0]);
    h.update(status.as_bytes());
    h.update([0]);
    h.update(prev_sent.to_bits().to_be_bytes());
    let mut parts: Vec<String> = alerts
        .iter()
        .map(|a| format!("{}:{:?}:{}", a.fingerprint, a.state, a.active_since.to_bits()))
        .collect();
    parts.sort();
    for p in parts {
        h.update([0]);
        h.update(p.as_bytes());
    }
    h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// A notification id: the group key's hash and the creation time in ms.
pub fn notification_id(group_key: &str, now: f64) -> String {
    let mut h = Sha256::new();
    h.update(group_key.as_bytes());
    let hash: String = h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{hash}.{}", (now * 1000.0) as u64)
}

/// What changed during one step, for the log and the persistence layer.
#[derive(Default)]
pub struct StepOutput {
    pub transitions: Vec<(Alert, AlertState)>,
    pub notifications: Vec<Notification>,
    pub changed_alerts: Vec<Alert>,
    pub removed_alerts: Vec<String>,
    pub nlog_updates: Vec<(String, NlogEntry)>,
}

#[derive(Default)]
pub struct AlertEngine {
    pub alerts: BTreeMap<String, Alert>,
    groups: HashMap<String, Group>,
    pub nlog: HashMap<String, NlogEntry>,
    /// In a group of instances every notification group holds the alerts
    /// of one host (`host` joins every route's `group_by`): a host's alerts
    /// live on the instance that owns the host and move with it.
    pub split_by_host: bool,
}

/// A silence in effect: its id and matchers.
pub struct ActiveSilence {
    pub id: i64,
    pub matchers: Vec<Matcher>,
}

impl AlertEngine {
    pub fn restore(alerts: Vec<Alert>, nlog: Vec<(String, NlogEntry)>) -> AlertEngine {
        AlertEngine {
            alerts: alerts.into_iter().map(|a| (a.fingerprint.clone(), a)).collect(),
            groups: HashMap::new(),
            nlog: nlog.into_iter().collect(),
            split_by_host: false,
        }
    }

    /// Take over alerts of hosts this instance now owns (their state as the
    /// previous owner left it) and the shared notification log.
    pub fn adopt(&mut self, alerts: Vec<Alert>, nlog: Vec<(String, NlogEntry)>) {
        for a in alerts {
            self.alerts.insert(a.fingerprint.clone(), a);
        }
        // The log holds every instance's groups; ours are current in it
        // (written at each notification), others' are what we take over.
        self.nlog = nlog.into_iter().collect();
    }

    /// Forget the alerts of hosts another instance owns now, without
    /// resolving them: the new owner continues them.
    pub fn release(&mut self, gone: impl Fn(&Alert) -> bool) {
        let fps: BTreeSet<String> = self
            .alerts
            .values()
            .filter(|a| gone(a))
            .map(|a| a.fingerprint.clone())
            .collect();
        self.alerts.retain(|fp, _| !fps.contains(fp));
        for g in self.groups.values_mut() {
            g.members.retain(|fp| !fps.contains(fp));
        }
        self.groups.retain(|_, g| !g.members.is_empty());
    }

    /// Apply the observations of one evaluation round. Alerts of `owned`
    /// rules (by alertname) that got no observation count as inactive.
    pub fn observe(&mut self, obs: Vec<Observation>, owned: &BTreeSet<String>, now: f64, out: &mut StepOutput) {
        let mut seen = BTreeSet::new();
        for o in obs {
            let fp = fingerprint(&o.labels);
            seen.insert(fp.clone());
            let existing = self
                .alerts
                .get(&fp)
                .filter(|a| a.state != AlertState::Resolved)
                .cloned();
            let is_new = existing.is_none();
            let mut a = match existing {
                Some(a) => a,
                None if o.active => Alert {
                    fingerprint: fp.clone(),
                    labels: o.labels.clone(),
                    annotations: o.annotations.clone(),
                    state: AlertState::Pending,
                    active_since: now,
                    fired_at: 0.0,
                    last_active: now,
                    resolved_at: 0.0,
                    value: o.value,
                    series: o.series.clone(),
                    suppressed: None,
                },
                None => continue,
            };
            let before = a.state;
            a.value = o.value;
            a.annotations = o.annotations;
            if o.active {
                a.last_active = now;
                if a.state == AlertState::Pending && now - a.active_since >= o.for_secs {
                    a.state = AlertState::Firing;
                    a.fired_at = now;
                }
            } else {
                match a.state {
                    AlertState::Pending => {
                        self.alerts.remove(&fp);
                        out.removed_alerts.push(fp);
                        continue;
                    }
                    AlertState::Firing if now - a.last_active >= o.keep_firing_secs => {
                        a.state = AlertState::Resolved;
                        a.resolved_at = now;
                    }
                    _ => {}
                }
            }
            if is_new && a.state == before {
                // A new pending alert: persisted so that its `for:` timer
                // survives a restart.
                out.changed_alerts.push(a.clone());
            }
            self.commit(a, before, out);
        }
        // Alerts whose series vanished, or whose rule was removed.
        let stale: Vec<String> = self
            .alerts
            .values()
            .filter(|a| a.state != AlertState::Resolved && !seen.contains(&a.fingerprint))
            .filter(|a| owned.contains(a.labels.get("alertname").map(String::as_str).unwrap_or("")))
            .map(|a| a.fingerprint.clone())
            .collect();
        for fp in stale {
            let Some(mut a) = self.alerts.get(&fp).cloned() else {
                continue;
            };
            if a.state == AlertState::Pending {
                self.alerts.remove(&fp);
                out.removed_alerts.push(fp);
                continue;
            }
            let before = a.state;
            a.state = AlertState::Resolved;
            a.resolved_at = now;
            self.commit(a, before, out);
        }
    }

    fn commit(&mut self, a: Alert, before: AlertState, out: &mut StepOutput) {
        if a.state != before {
            out.transitions.push((a.clone(), before));
            out.changed_alerts.push(a.clone());
        }
        self.alerts.insert(a.fingerprint.clone(), a);
    }

    /// Mark silenced and inhibited alerts.
    pub fn suppress(&mut self, silences: &[ActiveSilence], inhibit: &[InhibitRule]) {
        let sources: Vec<Labels> = self
            .alerts
            .values()
            .filter(|a| a.state == AlertState::Firing)
            .map(|a| a.labels.clone())
            .collect();
        for a in self.alerts.values_mut() {
            a.suppressed = None;
            if let Some(s) = silences.iter().find(|s| matches_all(&s.matchers, &a.labels)) {
                a.suppressed = Some(format!("silenced by silence {}", s.id));
                continue;
            }
            for rule in inhibit {
                if !matches_all(&rule.target, &a.labels) {
                    continue;
                }
                let by = sources.iter().find(|src| {
                    **src != a.labels
                        && matches_all(&rule.source, src)
                        && rule.equal.iter().all(|l| src.get(l) == a.labels.get(l))
                });
                if let Some(src) = by {
                    a.suppressed = Some(format!(
                        "inhibited by {}",
                        src.get("alertname").map(String::as_str).unwrap_or("?")
                    ));
                    break;
                }
            }
        }
    }

    /// Route alerts into groups and flush the groups that are due.
    pub fn dispatch(&mut self, root: &Route, now: f64, out: &mut StepOutput) {
        for a in self.alerts.values() {
            if a.state == AlertState::Pending {
                continue;
            }
            let mut routes = Vec::new();
            match_routes(root, &a.labels, "0", &mut routes);
            for (path, r) in routes {
                let mut group_labels: Labels = r
                    .group_by
                    .iter()
                    .filter_map(|k| a.labels.get(k).map(|v| (k.clone(), v.clone())))
                    .collect();
                if self.split_by_host {
                    if let Some(h) = a.labels.get("host") {
                        group_labels.insert("host".into(), h.clone());
                    }
                }
                let key = format!(
                    "{path}:{}:{}",
                    r.receiver,
                    super::exposition::series_key("", &group_labels)
                );
                let g = self.groups.entry(key).or_insert_with(|| Group {
                    receiver: r.receiver.clone(),
                    group_labels,
                    group_wait: r.group_wait.as_secs_f64(),
                    group_interval: r.group_interval.as_secs_f64(),
                    repeat_interval: r.repeat_interval.as_secs_f64(),
                    next_flush: now + r.group_wait.as_secs_f64(),
                    members: BTreeSet::new(),
                });
                // Timers follow configuration reloads.
                g.group_interval = r.group_interval.as_secs_f64();
                g.repeat_interval = r.repeat_interval.as_secs_f64();
                g.group_wait = r.group_wait.as_secs_f64();
                g.members.insert(a.fingerprint.clone());
            }
        }
        let mut keys: Vec<String> = self.groups.keys().cloned().collect();
        keys.sort();
        for key in keys {
            let Some(g) = self.groups.get_mut(&key) else { continue };
            if now < g.next_flush {
                continue;
            }
            g.next_flush = now + g.group_interval.max(0.001);
            let members: Vec<&Alert> = g.members.iter().filter_map(|fp| self.alerts.get(fp)).collect();
            let firing: BTreeSet<String> = members
                .iter()
                .filter(|a| a.state == AlertState::Firing && a.suppressed.is_none())
                .map(|a| a.fingerprint.clone())
                .collect();
            let prev = self.nlog.get(&key).cloned().unwrap_or_default();
            let resolved: Vec<&Alert> = members
                .iter()
                .filter(|a| prev.firing.contains(&a.fingerprint) && a.state == AlertState::Resolved)
                .copied()
                .collect();
            let new_firing = !firing.is_subset(&prev.firing);
            let repeat = !firing.is_empty() && now - prev.last_sent >= g.repeat_interval;
            if new_firing || !resolved.is_empty() || repeat {
                let mut alerts: Vec<Alert> = firing.iter().filter_map(|fp| self.alerts.get(fp).cloned()).collect();
                alerts.extend(resolved.iter().map(|a| (*a).clone()));
                let status = if firing.is_empty() { "resolved" } else { "firing" };
                let id = notification_id(&key, now);
                // A group whose last notice had nothing firing starts a new episode.
                let thread = if prev.firing.is_empty() {
                    None
                } else {
                    prev.thread.clone()
                };
                let dedup = dedup_key(&key, status, prev.last_sent, &alerts);
                out.notifications.push(Notification {
                    receiver: g.receiver.clone(),
                    group_key: key.clone(),
                    status: status.into(),
                    group_labels: g.group_labels.clone(),
                    alerts,
                    created: now,
                    id: id.clone(),
                    thread: thread.clone(),
                    dedup_key: Some(dedup),
                });
                let entry = NlogEntry {
                    last_sent: now,
                    firing: firing.clone(),
                    thread: Some(thread.unwrap_or(id)),
                };
                self.nlog.insert(key.clone(), entry.clone());
                out.nlog_updates.push((key.clone(), entry));
            } else {
                // Alerts that ended without a notice (resolved while silenced or
                // inhibited) must count as new if they fire again; alerts that are
                // only suppressed for now stay, so lifting a silence does not repeat them.
                let still: BTreeSet<String> = prev
                    .firing
                    .iter()
                    .filter(|fp| self.alerts.get(*fp).is_some_and(|a| a.state == AlertState::Firing))
                    .cloned()
                    .collect();
                if still != prev.firing {
                    let entry = NlogEntry {
                        last_sent: prev.last_sent,
                        firing: still,
                        thread: prev.thread.clone(),
                    };
                    self.nlog.insert(key.clone(), entry.clone());
                    out.nlog_updates.push((key.clone(), entry));
                }
            }
            // Resolved alerts leave the group once it has been flushed.
            let alerts = &self.alerts;
            g.members
                .retain(|fp| alerts.get(fp).is_some_and(|a| a.state != AlertState::Resolved));
        }
        self.groups.retain(|_, g| !g.members.is_empty());
        // Resolved alerts no group holds any more are done.
        let held: BTreeSet<&String> = self.groups.values().flat_map(|g| g.members.iter()).collect();
        let done: Vec<String> = self
            .alerts
            .values()
            .filter(|a| a.state == AlertState::Resolved && !held.contains(&a.fingerprint))
            .map(|a| a.fingerprint.clone())
            .collect();
        for fp in done {
            self.alerts.remove(&fp);
            out.removed_alerts.push(fp);
        }
    }
}

/// Alertmanager routing: the deepest matching routes; siblings after a match
/// are tried only with `continue: true`.
/// The receivers an alert with `labels` is routed to (each once).
pub fn receivers_for(root: &Route, labels: &Labels) -> Vec<String> {
    let mut routes = Vec::new();
    match_routes(root, labels, "0", &mut routes);
    let mut out: Vec<String> = Vec::new();
    for (_, r) in routes {
        if !out.contains(&r.receiver) {
            out.push(r.receiver.clone());
        }
    }
    out
}

fn match_routes<'a>(r: &'a Route, labels: &Labels, path: &str, out: &mut Vec<(String, &'a Route)>) -> bool {
    if !matches_all(&r.matchers, labels) {
        return false;
    }
    let mut any = false;
    for (i, c) in r.routes.iter().enumerate() {
        if match_routes(c, labels, &format!("{path}.{i}"), out) {
            any = true;
            if !c.continue_ {
                break;
            }
        }
    }
    if !any {
        out.push((path.to_string(), r));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn route(wait: u64, interval: u64, repeat: u64) -> Route {
        Route {
            receiver: "ops".into(),
            matchers: vec![],
            group_by: vec!["alertname".into(), "host".into()],
            group_wait: Duration::from_secs(wait),
            group_interval: Duration::from_secs(interval),
            repeat_interval: Duration::from_secs(repeat),
            continue_: false,
            routes: vec![],
        }
    }

    fn obs(name: &str, host: &str, active: bool, for_secs: f64) -> Observation {
        let mut labels = Labels::new();
        labels.insert("alertname".into(), name.into());
        labels.insert("host".into(), host.into());
        Observation {
            labels,
            annotations: BTreeMap::new(),
            value: 1.0,
            active,
            series: String::new(),
            for_secs,
            keep_firing_secs: 0.0,
        }
    }

    fn step(e: &mut AlertEngine, o: Vec<Observation>, now: f64, r: &Route, sil: &[ActiveSilence]) -> StepOutput {
        let mut out = StepOutput::default();
        let owned: BTreeSet<String> = ["Disk".to_string(), "host_down".to_string()].into();
        e.observe(o, &owned, now, &mut out);
        e.suppress(
            sil,
            &[InhibitRule {
                source: vec![Matcher::eq("alertname", "host_down")],
                target: vec![Matcher::parse("alertname!=host_down").unwrap()],
                equal: vec!["host".into()],
            }],
        );
        e.dispatch(r, now, &mut out);
        out
    }

    #[test]
    fn lifecycle_grouping_repeat_and_resolve() {
        let r = route(2, 5, 20);
        let mut e = AlertEngine::default();
        // Pending for 3 s (for: 3s), then firing at t=3, notified after group_wait at t=5.
        for t in 0..3 {
            let out = step(&mut e, vec![obs("Disk", "h1", true, 3.0)], f64::from(t), &r, &[]);
            assert!(out.notifications.is_empty());
            assert_eq!(e.alerts.values().next().unwrap().state, AlertState::Pending);
        }
        let mut sent = Vec::new();
        for t in 3..=30 {
            let out = step(&mut e, vec![obs("Disk", "h1", true, 3.0)], f64::from(t), &r, &[]);
            sent.extend(out.notifications.iter().map(|n| (t, n.status.clone())));
        }
        // First at 5 (group_wait), repeat at 25 (group_interval ticks 10,15,20,25; repeat 20 s).
        assert_eq!(sent, vec![(5, "firing".to_string()), (25, "firing".to_string())]);
        // Resolve: noticed at the next group_interval flush (t=30 was the last flush → 35).
        let mut sent = Vec::new();
        for t in 31..=40 {
            let out = step(&mut e, vec![obs("Disk", "h1", false, 3.0)], f64::from(t), &r, &[]);
            sent.extend(
                out.notifications
                    .iter()
                    .map(|n| (t, n.status.clone(), n.alerts[0].state)),
            );
        }
        assert_eq!(sent, vec![(35, "resolved".to_string(), AlertState::Resolved)]);
        assert!(e.alerts.is_empty());
    }

    #[test]
    fn silence_and_inhibition_suppress() {
        let r = route(0, 1, 1000);
        let mut e = AlertEngine::default();
        let sil = [ActiveSilence {
            id: 1,
            matchers: vec![Matcher::eq("host", "h2")],
        }];
        let o = || vec![obs("Disk", "h1", true, 0.0), obs("Disk", "h2", true, 0.0)];
        let out = step(&mut e, o(), 0.0, &r, &sil);
        let hosts: Vec<&str> = out
            .notifications
            .iter()
            .map(|n| n.alerts[0].labels["host"].as_str())
            .collect();
        assert_eq!(hosts, vec!["h1"], "h2 is silenced");
        // Silence ends: h2 is notified once.
        let out = step(&mut e, o(), 1.0, &r, &[]);
        assert_eq!(out.notifications.len(), 1);
        assert_eq!(out.notifications[0].alerts[0].labels["host"], "h2");
        assert!(
            step(&mut e, o(), 2.0, &r, &[]).notifications.is_empty(),
            "no duplicates"
        );
        // host_down on h1 inhibits Disk on h1.
        let mut o3 = o();
        o3.push(obs("host_down", "h1", true, 0.0));
        let out = step(&mut e, o3.clone(), 3.0, &r, &[]);
        let names: Vec<&str> = out
            .notifications
            .iter()
            .map(|n| n.alerts[0].labels["alertname"].as_str())
            .collect();
        assert_eq!(names, vec!["host_down"]);
        let disk_h1 = e
            .alerts
            .values()
            .find(|a| a.labels["alertname"] == "Disk" && a.labels["host"] == "h1");
        assert_eq!(disk_h1.unwrap().suppressed.as_deref(), Some("inhibited by host_down"));
    }
}
