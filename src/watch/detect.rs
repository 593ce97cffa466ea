//! Detectors: decide, for one rule and one series, whether the condition
//! holds now. Pure functions over the series' points, plus the EWMA state of
//! anomaly rules (kept per rule and series).

use std::collections::HashMap;

use super::config::{Cmp, RuleKind};
use super::store::{Series, Sym};

/// Exponentially weighted mean and variance.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ewma {
    pub mean: f64,
    pub var: f64,
    pub n: usize,
    pub last_ts: f64,
}

impl Ewma {
    /// Score `x` against the baseline, then fold it in. Returns the z-score
    /// (None during warm-up).
    pub fn observe(&mut self, x: f64, alpha: f64, warmup: usize, min_stddev: f64) -> Option<f64> {
        if self.n == 0 {
            self.mean = x;
            self.var = 0.0;
            self.n = 1;
            return None;
        }
        let sd = self.var.sqrt().max(min_stddev);
        let z = (x - self.mean) / sd;
        let scored = (self.n >= warmup).then_some(z);
        // West's incremental EWMA variance.
        let diff = x - self.mean;
        let incr = alpha * diff;
        self.mean += incr;
        self.var = (1.0 - alpha) * (self.var + diff * incr);
        self.n += 1;
        scored
    }
}

/// Least-squares line through `points`; returns the value at `at`.
pub fn predict_linear(points: &[(f64, f64)], at: f64) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mt = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mv = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mt).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mt) * (p.1 - mv)).sum();
    let slope = sxy / sxx;
    Some(mv + slope * (at - mt))
}

/// Anomaly state per rule and series key.
#[derive(Default)]
pub struct Detectors {
    ewma: HashMap<String, HashMap<Sym, Ewma>>,
}

/// The outcome of evaluating a rule on a series: whether it holds, and the
/// value to show (the sample, the rate, the prediction, the z-score...).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub active: bool,
    pub value: f64,
    /// Anomaly rules: the z-score of `value` against the baseline.
    pub zscore: Option<f64>,
    /// Anomaly rules: the baseline (EWMA mean) and its standard deviation
    /// (at least `min_stddev`) that `value` was scored against.
    pub baseline: Option<(f64, f64)>,
}

impl Verdict {
    /// A verdict without anomaly scores.
    pub fn plain(active: bool, value: f64) -> Verdict {
        Verdict {
            active,
            value,
            zscore: None,
            baseline: None,
        }
    }
}

impl Detectors {
    /// Forget anomaly state of rules that no longer exist.
    pub fn retain_rules(&mut self, names: &[String]) {
        self.ewma.retain(|r, _| names.contains(r));
    }

    /// Forget anomaly state of series that no longer exist.
    pub fn retain_series(&mut self, exists: impl Fn(&str) -> bool) {
        for m in self.ewma.values_mut() {
            m.retain(|k, _| exists(k));
        }
    }

    pub fn eval(&mut self, rule: &str, kind: &RuleKind, s: &Series, now: f64) -> Option<Verdict> {
        let (last_t, last_v) = s.last()?;
        match kind {
            RuleKind::Threshold(c) => Some(Verdict::plain(c.test(last_v), last_v)),
            RuleKind::Rate { window, cmp } | RuleKind::Delta { window, cmp } => {
                let mut pts = s.since(now - window.as_secs_f64());
                let first = pts.next()?;
                let last = pts.last()?;
                if last.0 <= first.0 {
                    return None;
                }
                let delta = last.1 - first.1;
                let value = if matches!(kind, RuleKind::Rate { .. }) {
                    delta / (last.0 - first.0)
                } else {
                    delta
                };
                Some(Verdict::plain(cmp.test(value), value))
            }
            RuleKind::Absent(d) => {
                let age = now - last_t;
                Some(Verdict::plain(age > d.as_secs_f64(), age))
            }
            RuleKind::Anomaly {
                alpha,
                z,
                warmup,
                min_stddev,
            } => {
                let per_rule = match self.ewma.get_mut(rule) {
                    Some(m) => m,
                    None => self.ewma.entry(rule.to_string()).or_default(),
                };
                let st = match per_rule.get_mut(&*s.key) {
                    Some(st) => st,
                    None => per_rule.entry(s.key.clone()).or_default(),
                };
                let mut last_z = None;
                let seen = st.last_ts;
                let mut fresh = s.points().filter(|p| p.0 > seen).peekable();
                if fresh.peek().is_none() {
                    // Nothing new: keep the previous verdict by re-scoring without updating.
                    let sd = st.var.sqrt().max(*min_stddev);
                    let zz = (last_v - st.mean) / sd;
                    return (st.n > *warmup).then_some(Verdict {
                        active: zz.abs() > *z,
                        value: last_v,
                        zscore: Some(zz),
                        baseline: Some((st.mean, sd)),
                    });
                }
                let mut base = (st.mean, st.var.sqrt().max(*min_stddev));
                for (t, v) in fresh {
                    base = (st.mean, st.var.sqrt().max(*min_stddev));
                    last_z = st.observe(v, *alpha, *warmup, *min_stddev);
                    st.last_ts = t;
                }
                let zz = last_z?;
                Some(Verdict {
                    active: zz.abs() > *z,
                    value: last_v,
                    zscore: Some(zz),
                    baseline: Some(base),
                })
            }
            RuleKind::Predict { window, horizon, cmp } => {
                let pts: Vec<(f64, f64)> = s.since(now - window.as_secs_f64()).collect();
                let pred = predict_linear(&pts, now + horizon.as_secs_f64())?;
                Some(Verdict::plain(pred_test(cmp, pred), pred))
            }
        }
    }
}

fn pred_test(c: &Cmp, v: f64) -> bool {
    v.is_finite() && c.test(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::config::{Labels, Op};
    use crate::watch::store::{Retention, Store};
    use std::time::Duration;

    /// Deterministic pseudo-random noise in [-1, 1] (xorshift), so counts are stable.
    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 20001) as f64 / 10000.0 - 1.0
            })
            .collect()
    }

    /// Indexes flagged by an EWMA z-score detector with the default-ish settings.
    fn flags(series: &[f64]) -> Vec<usize> {
        let mut e = Ewma::default();
        series
            .iter()
            .enumerate()
            .filter_map(|(i, &x)| e.observe(x, 0.1, 30, 0.5).filter(|z| z.abs() > 4.0).map(|_| i))
            .collect()
    }

    #[test]
    fn anomaly_on_synthetic_series() {
        let base = noise(400, 42);
        // Noise only (50 ± 1 uniform): no alarms.
        let pure: Vec<f64> = base.iter().map(|n| 50.0 + n).collect();
        let fp_noise = flags(&pure).len();
        assert_eq!(fp_noise, 0, "false positives on noise");

        // Spike: one sample +15 at 200.
        let mut spike = pure.clone();
        spike[200] += 15.0;
        let f = flags(&spike);
        assert!(f.contains(&200), "spike missed: {f:?}");
        assert_eq!(f.len(), 1, "spike: only the spike is flagged: {f:?}");

        // Step: +10 from 250 on: flagged at once, then the baseline adapts.
        let step: Vec<f64> = pure
            .iter()
            .enumerate()
            .map(|(i, x)| x + if i >= 250 { 10.0 } else { 0.0 })
            .collect();
        let f = flags(&step);
        assert_eq!(f.first(), Some(&250), "step detected on its first sample: {f:?}");
        assert!(f.iter().all(|&i| (250..300).contains(&i)), "step: alarms settle: {f:?}");

        // Slow trend (+0.01 per sample, 4 over the series): the EWMA follows it; no alarms.
        let trend: Vec<f64> = pure.iter().enumerate().map(|(i, x)| x + i as f64 * 0.01).collect();
        assert_eq!(flags(&trend).len(), 0, "false positives on a slow trend");

        // Warm-up: an early spike (index 10 < warmup 30) is not scored.
        let mut early = pure.clone();
        early[10] += 50.0;
        assert!(!flags(&early).contains(&10));
    }

    #[test]
    fn predict_linear_finds_the_trend_not_the_noise() {
        let n = noise(120, 7);
        // Disk filling 0.5 %/min with ±1 noise, sampled every 10 s from 40 %.
        let filling: Vec<(f64, f64)> = (0..120)
            .map(|i| (i as f64 * 10.0, 40.0 + i as f64 * 10.0 / 120.0 + n[i]))
            .collect();
        let now = 1190.0;
        let in4h = predict_linear(&filling, now + 4.0 * 3600.0).unwrap();
        assert!(in4h > 100.0, "filling disk predicted full within 4h: {in4h}");
        // Flat noisy disk: no prediction over 100 %.
        let flat: Vec<(f64, f64)> = (0..120).map(|i| (i as f64 * 10.0, 40.0 + n[i])).collect();
        let p = predict_linear(&flat, now + 4.0 * 3600.0).unwrap();
        assert!(p < 100.0, "flat disk not predicted full: {p}");
        assert_eq!(predict_linear(&flat[..2], 0.0), None);
    }

    #[test]
    fn rules_on_a_series() {
        let mut st = Store::new(Retention::keep_all(100, 60.0));
        let l = Labels::new();
        for i in 0..10 {
            st.push("m", &l, 100.0 + f64::from(i), f64::from(i * 10));
        }
        let s = st.series.values().next().unwrap();
        let mut d = Detectors::default();
        let gt = |v| Cmp { op: Op::Gt, value: v };
        let t = d.eval("a", &RuleKind::Threshold(gt(85.0)), s, 109.0).unwrap();
        assert_eq!(t, Verdict::plain(true, 90.0));
        let r = RuleKind::Rate {
            window: Duration::from_secs(5),
            cmp: gt(9.0),
        };
        assert_eq!(d.eval("b", &r, s, 109.0).unwrap(), Verdict::plain(true, 10.0));
        let dl = RuleKind::Delta {
            window: Duration::from_secs(5),
            cmp: gt(60.0),
        };
        assert!(!d.eval("c", &dl, s, 109.0).unwrap().active);
        let ab = RuleKind::Absent(Duration::from_secs(3));
        assert!(!d.eval("d", &ab, s, 111.0).unwrap().active);
        assert!(d.eval("d", &ab, s, 113.0).unwrap().active);
        let p = RuleKind::Predict {
            window: Duration::from_secs(60),
            horizon: Duration::from_secs(2),
            cmp: Cmp {
                op: Op::Ge,
                value: 110.0,
            },
        };
        let v = d.eval("e", &p, s, 109.0).unwrap();
        assert!(v.active && (v.value - 110.0).abs() < 1e-9, "{v:?}");
    }

    #[test]
    fn anomaly_value_is_the_sample_with_score_and_baseline_apart() {
        let mut st = Store::new(Retention::keep_all(100, 60.0));
        let l = Labels::new();
        for i in 0..20 {
            st.push("m", &l, f64::from(i), 10.0 + f64::from(i % 2));
        }
        st.push("m", &l, 20.0, 100.0);
        let s = st.series.values().next().unwrap();
        let kind = RuleKind::Anomaly {
            alpha: 0.1,
            z: 4.0,
            warmup: 5,
            min_stddev: 0.1,
        };
        let v = Detectors::default().eval("a", &kind, s, 20.0).unwrap();
        assert!(v.active, "{v:?}");
        assert_eq!(v.value, 100.0, "the metric's value, not the z-score");
        let (mean, sd) = v.baseline.unwrap();
        assert!((9.5..11.5).contains(&mean), "{v:?}");
        assert!(((v.zscore.unwrap() - (100.0 - mean) / sd).abs()) < 1e-9, "{v:?}");
    }
}
