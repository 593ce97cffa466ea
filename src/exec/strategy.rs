//! The strategy: one walker per host of a batch ([`super::walker`]), and
//! the coordinator that decides which host runs which task when. Walkers do
//! not run a task on their own: they announce it with the task's *key* (its
//! position in document order) and wait for a [`Go`]. `linear` lets the
//! hosts that are at the smallest key run it together and waits for them
//! (lockstep, output grouped by task, as Ansible does); `free` lets every
//! host run at once. `run_once`, `any_errors_fatal` and
//! `max_fail_percentage` are decisions of the coordinator too.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::context::{Go, PlayCtx, PlayHost, Waiting, WalkerMsg};
use super::runner::{Runner, INTERRUPTED};
use super::walker::Walker;
use crate::output::Event;
use crate::playbook::Strategy;

/// strategy free + run_once, per task key: (host running it, hosts waiting
/// for its result), or `None` once done.
type OnceStates = HashMap<Vec<u32>, Option<(usize, Vec<oneshot::Sender<Go>>)>>;

/// The hosts waiting at a task, by their position in the batch, and by
/// the task's key: the smallest key and the hosts at it, in batch order,
/// are found without looking at every host (100,000 hosts wait at each
/// task of a large batch).
struct Pending {
    slots: Vec<Option<Waiting>>,
    by_key: BTreeMap<Vec<u32>, BTreeSet<usize>>,
    count: usize,
}

impl Pending {
    fn new(hosts: usize) -> Pending {
        Pending {
            slots: std::iter::repeat_with(|| None).take(hosts).collect(),
            by_key: BTreeMap::new(),
            count: 0,
        }
    }

    fn len(&self) -> usize {
        self.count
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn get(&self, host: usize) -> Option<&Waiting> {
        self.slots.get(host).and_then(Option::as_ref)
    }

    fn insert(&mut self, host: usize, waiting: Waiting) {
        if host >= self.slots.len() {
            return;
        }
        self.remove(host);
        match self.by_key.get_mut(&waiting.key) {
            Some(hosts) => {
                hosts.insert(host);
            }
            None => {
                self.by_key.insert(waiting.key.clone(), BTreeSet::from([host]));
            }
        }
        self.slots[host] = Some(waiting);
        self.count += 1;
    }

    fn remove(&mut self, host: usize) -> Option<Waiting> {
        let waiting = self.slots.get_mut(host)?.take()?;
        self.count -= 1;
        if let Some(hosts) = self.by_key.get_mut(&waiting.key) {
            hosts.remove(&host);
            if hosts.is_empty() {
                self.by_key.remove(&waiting.key);
            }
        }
        Some(waiting)
    }

    /// The smallest key any host waits at, and the hosts waiting there in
    /// batch order.
    fn at_min_key(&self) -> Option<(Vec<u32>, Vec<usize>)> {
        let (key, hosts) = self.by_key.first_key_value()?;
        Some((key.clone(), hosts.iter().copied().collect()))
    }

    /// Every waiting host, in no particular order.
    fn hosts(&self) -> Vec<usize> {
        self.by_key.values().flatten().copied().collect()
    }
}

/// The hosts of a batch still walking the play.
struct Active {
    hosts: Vec<bool>,
    count: usize,
}

impl Active {
    fn all(hosts: usize) -> Active {
        Active {
            hosts: vec![true; hosts],
            count: hosts,
        }
    }

    fn remove(&mut self, host: usize) {
        if let Some(a) = self.hosts.get_mut(host).filter(|a| **a) {
            *a = false;
            self.count -= 1;
        }
    }

    fn len(&self) -> usize {
        self.count
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl Runner {
    /// Walk every host of a batch through the play, coordinated.
    pub(super) async fn run_batch(self: &Arc<Self>, pctx: Arc<PlayCtx>) {
        let (tx, rx) = mpsc::unbounded_channel::<WalkerMsg>();
        let mut handles = Vec::new();
        for (idx, host) in pctx.batch.iter().enumerate() {
            let w = Walker {
                play_host: PlayHost {
                    runner: self.clone(),
                    pctx: pctx.clone(),
                    host: host.clone(),
                },
                idx,
                tx: tx.clone(),
                in_handler: Default::default(),
            };
            handles.push(tokio::spawn(async move { w.run().await }));
        }
        drop(tx);
        self.coordinate(&pctx, rx).await;
        for h in handles {
            let _ = h.await;
        }
    }

    /// The strategy: decides which host runs which task when.
    async fn coordinate(&self, pctx: &PlayCtx, mut rx: mpsc::UnboundedReceiver<WalkerMsg>) {
        let mut active = Active::all(pctx.batch.len());
        let mut pending = Pending::new(pctx.batch.len());
        let free = pctx.play.strategy == Strategy::Free;
        let mut last_header: Option<(Vec<u32>, String)> = None;
        let mut aborted = false;
        // strategy free + run_once: per task key, the host running it and the
        // hosts waiting for its result (`None` once it is done).
        let mut once: OnceStates = HashMap::new();
        // Hosts through an `any_errors_fatal` task, waiting for the step's
        // verdict: (host, failed here, verdict).
        let mut step: Vec<(usize, bool, oneshot::Sender<bool>)> = Vec::new();
        // An aborted play (any_errors_fatal, max_fail_percentage) fails its
        // hosts; with force_handlers they still run their notified handlers,
        // as Ansible's iterator moves a failed host to its handlers.
        let force_handlers = pctx.play.force_handlers || self.opts.force_handlers;
        let release_once = |once: &mut OnceStates, host: usize| {
            for state in once.values_mut() {
                if state.as_ref().is_some_and(|(leader, _)| *leader == host) {
                    if let Some((_, waiters)) = state.take() {
                        for w in waiters {
                            let _ = w.send(Go::Follow);
                        }
                    }
                }
            }
        };
        loop {
            // Wait until every active host is waiting (linear), or for any message (free).
            while !active.is_empty() && (pending.len() + step.len() < active.len() || free && pending.is_empty()) {
                match rx.recv().await {
                    Some(WalkerMsg::Ready { host, waiting }) => {
                        if free {
                            release_once(&mut once, host);
                        }
                        if INTERRUPTED.load(Ordering::SeqCst) || aborted && !(force_handlers && waiting.handler) {
                            let _ = waiting.reply.send(Go::Abort);
                            continue;
                        }
                        pending.insert(host, waiting);
                        if free {
                            break;
                        }
                    }
                    Some(WalkerMsg::Finished { host }) => {
                        if free {
                            release_once(&mut once, host);
                        }
                        active.remove(host);
                        pending.remove(host);
                    }
                    Some(WalkerMsg::StepDone { host, failed, verdict }) => step.push((host, failed, verdict)),
                    None => return,
                }
            }
            if !step.is_empty() {
                // The step of an `any_errors_fatal` task is complete: when
                // a host failed it, every other host of the step is failed
                // (Ansible's linear strategy, `mark_host_failed`).
                let fatal = step.iter().any(|(_, failed, _)| *failed);
                for (_, failed, verdict) in step.drain(..) {
                    let _ = verdict.send(fatal && !failed);
                }
                continue;
            }
            if active.is_empty() {
                return;
            }
            if pending.is_empty() {
                continue;
            }
            // Check failure thresholds once the previous step is complete.
            if !free && !aborted {
                let failed = {
                    let states = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
                    pctx.batch
                        .iter()
                        .filter(|h| states.get(*h).is_some_and(|s| s.failed || s.unreachable))
                        .count()
                };
                if let Some(pct) = pctx.play.max_fail_percentage {
                    if failed as f64 * 100.0 / pctx.batch.len() as f64 > pct {
                        aborted = true;
                    }
                }
                if pctx.play.any_errors_fatal && failed > 0 {
                    aborted = true;
                }
                if self.stop_playbook.load(Ordering::SeqCst) {
                    aborted = true;
                }
                if aborted {
                    self.stop_playbook.store(true, Ordering::SeqCst);
                    self.out.emit(&Event::Warning {
                        message: "NO MORE HOSTS LEFT: the play was aborted".into(),
                    });
                }
            }
            if aborted || INTERRUPTED.load(Ordering::SeqCst) {
                let keep = !INTERRUPTED.load(Ordering::SeqCst) && force_handlers;
                for h in pending.hosts() {
                    if pending.get(h).is_some_and(|w| !(keep && w.handler)) {
                        if let Some(waiting) = pending.remove(h) {
                            let _ = waiting.reply.send(Go::Abort);
                        }
                    }
                }
                if pending.is_empty() {
                    continue;
                }
            }
            let Some((min_key, mut chosen)) = pending.at_min_key() else {
                continue;
            };
            let Some((title, loc, handler, run_once)) = pending
                .get(chosen[0])
                .map(|w| (w.title.clone(), w.loc.clone(), w.handler, w.run_once))
            else {
                continue;
            };
            if last_header.as_ref().is_none_or(|(k, t)| *k != min_key || *t != title) {
                self.out.emit(&Event::TaskStart {
                    task: title.clone(),
                    location: loc,
                    handler,
                });
                last_header = Some((min_key.clone(), title));
            }
            if run_once && !free {
                let leader = chosen.remove(0);
                if let Some(waiting) = pending.remove(leader) {
                    let _ = waiting.reply.send(Go::Run);
                }
                // Wait for the leader to come back, then release the followers.
                loop {
                    match rx.recv().await {
                        Some(WalkerMsg::Ready { host, waiting }) => {
                            let back = host == leader;
                            pending.insert(host, waiting);
                            if back {
                                break;
                            }
                        }
                        Some(WalkerMsg::Finished { host }) => {
                            let back = host == leader;
                            active.remove(host);
                            pending.remove(host);
                            if back {
                                break;
                            }
                        }
                        Some(WalkerMsg::StepDone { host, failed, verdict }) => {
                            let back = host == leader;
                            step.push((host, failed, verdict));
                            if back {
                                break;
                            }
                        }
                        None => return,
                    }
                }
                for h in chosen {
                    if let Some(waiting) = pending.remove(h) {
                        let _ = waiting.reply.send(Go::Follow);
                    }
                }
            } else if run_once {
                // strategy free: the first host to get here runs it, later ones follow.
                for h in chosen {
                    if let Some(Waiting { reply, .. }) = pending.remove(h) {
                        match once.get_mut(&min_key) {
                            None => {
                                once.insert(min_key.clone(), Some((h, Vec::new())));
                                let _ = reply.send(Go::Run);
                            }
                            Some(Some((_, waiters))) => waiters.push(reply),
                            Some(None) => {
                                let _ = reply.send(Go::Follow);
                            }
                        }
                    }
                }
            } else if !free && chosen.len() > self.opts.forks.max(1) {
                // More hosts than forks: they start in the play's order, the
                // next one when one is done (Ansible's linear strategy queues
                // them to its workers in this order), so `order:` holds.
                let mut queue = chosen.into_iter();
                let mut running: HashSet<usize> = HashSet::new();
                for h in queue.by_ref().take(self.opts.forks.max(1)) {
                    if let Some(waiting) = pending.remove(h) {
                        let _ = waiting.reply.send(Go::Run);
                        running.insert(h);
                    }
                }
                while !running.is_empty() {
                    let host = match rx.recv().await {
                        Some(WalkerMsg::Ready { host, waiting }) => {
                            pending.insert(host, waiting);
                            host
                        }
                        Some(WalkerMsg::Finished { host }) => {
                            active.remove(host);
                            pending.remove(host);
                            host
                        }
                        Some(WalkerMsg::StepDone { host, failed, verdict }) => {
                            step.push((host, failed, verdict));
                            host
                        }
                        None => return,
                    };
                    if running.remove(&host) {
                        for h in queue.by_ref() {
                            if let Some(waiting) = pending.remove(h) {
                                let _ = waiting.reply.send(Go::Run);
                                running.insert(h);
                                break;
                            }
                        }
                    }
                }
            } else {
                for h in chosen {
                    if let Some(waiting) = pending.remove(h) {
                        let _ = waiting.reply.send(Go::Run);
                    }
                }
            }
        }
    }
}
