//! Real contention on this host: a [`CoRunner`] that loads the CPU cores following a
//! [`LoadTrace`], and a [`HostLoadProbe`] that reads the load of the other processes from
//! `/proc/stat` (the load signal of [`crate::ManagerMode::Predictive`]).
//!
//! The co-runner runs one busy thread per core (or as many as asked). In every period of
//! `period_ms` each thread spins for `load x period` and sleeps for the rest, where `load` is
//! the trace's load for the current window (window times scaled by `time_scale`). It stops at
//! the end of the trace, after `max_duration_s`, or when stopped, whichever comes first.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{DvfsError, Result};
use crate::trace::LoadTrace;

/// Parameters of a [`CoRunner`] (unchecked; see [`CoRunnerParams::check`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CoRunnerParams {
    /// Busy threads (0: one per available core).
    pub threads: usize,
    /// Duty-cycle period, ms (> 0): the load is realised as spin `load x period`, sleep the
    /// rest.
    pub period_ms: f64,
    /// Trace time multiplier (> 0): window `i` runs from `time_scale x time_s[i]`.
    pub time_scale: f64,
    /// Hard bound on the run, s (> 0).
    pub max_duration_s: f64,
}

impl Default for CoRunnerParams {
    /// One thread per core, 10 ms period, trace time as written, at most 10 minutes.
    fn default() -> Self {
        Self {
            threads: 0,
            period_ms: 10.0,
            time_scale: 1.0,
            max_duration_s: 600.0,
        }
    }
}

/// Checked [`CoRunnerParams`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CoRunnerConfig {
    threads: usize,
    period: Duration,
    time_scale: f64,
    max_duration: Duration,
}

impl CoRunnerParams {
    /// Validates the parameters (and resolves `threads = 0` to the available cores).
    pub fn check(&self) -> Result<CoRunnerConfig> {
        if !(self.period_ms.is_finite() && self.period_ms > 0.0 && self.period_ms <= 1000.0) {
            return Err(DvfsError::invalid(
                "period_ms",
                format!("{} is not in (0, 1000]", self.period_ms),
            ));
        }
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(DvfsError::invalid(
                "time_scale",
                format!("{} is not finite and positive", self.time_scale),
            ));
        }
        if !(self.max_duration_s.is_finite() && self.max_duration_s > 0.0) {
            return Err(DvfsError::invalid(
                "max_duration_s",
                format!("{} is not finite and positive", self.max_duration_s),
            ));
        }
        let threads = if self.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.threads
        };
        let max_duration = Duration::try_from_secs_f64(self.max_duration_s).map_err(|e| {
            DvfsError::invalid("max_duration_s", format!("{} s: {e}", self.max_duration_s))
        })?;
        Ok(CoRunnerConfig {
            threads,
            period: Duration::from_secs_f64(self.period_ms / 1e3),
            time_scale: self.time_scale,
            max_duration,
        })
    }
}

impl CoRunnerConfig {
    /// Number of busy threads.
    pub fn threads(&self) -> usize {
        self.threads
    }
}

/// The load plan of a trace: which load applies at a time since the start, and when the run
/// ends.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadPlan {
    starts_s: Vec<f64>,
    loads: Vec<f64>,
    end_s: f64,
}

impl LoadPlan {
    /// The plan of `trace` with its times multiplied by `time_scale`: window `i` lasts until
    /// window `i + 1` starts; the last window lasts as long as the one before it (0.1 s for a
    /// one-window trace, scaled); times are relative to the first window's start.
    pub fn new(trace: &LoadTrace, time_scale: f64) -> Self {
        let t0 = trace.times_s()[0];
        let starts_s: Vec<f64> = trace
            .times_s()
            .iter()
            .map(|t| (t - t0) * time_scale)
            .collect();
        let n = starts_s.len();
        let last = if n >= 2 {
            starts_s[n - 1] - starts_s[n - 2]
        } else {
            0.1 * time_scale
        };
        Self {
            end_s: starts_s[n - 1] + last,
            starts_s,
            loads: trace.loads().to_vec(),
        }
    }

    /// The load at `t_s` seconds after the start (0 after the end).
    pub fn load_at(&self, t_s: f64) -> f64 {
        if t_s < 0.0 || t_s >= self.end_s {
            return 0.0;
        }
        let i = self.starts_s.partition_point(|&s| s <= t_s);
        self.loads[i.saturating_sub(1)]
    }

    /// Length of the plan, s.
    pub fn duration_s(&self) -> f64 {
        self.end_s
    }

    /// Time-weighted mean load over `[from_s, to_s)`.
    pub fn mean_load(&self, from_s: f64, to_s: f64) -> f64 {
        if to_s <= from_s {
            return self.load_at(from_s);
        }
        let mut edges = vec![from_s];
        edges.extend(
            self.starts_s
                .iter()
                .copied()
                .chain([self.end_s])
                .filter(|&s| s > from_s && s < to_s),
        );
        edges.push(to_s);
        let weighted: f64 = edges
            .windows(2)
            .map(|w| (w[1] - w[0]) * self.load_at(w[0]))
            .sum();
        weighted / (to_s - from_s)
    }
}

/// What one busy thread did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CoRunnerThreadReport {
    /// Wall time spent spinning, s.
    pub spin_s: f64,
    /// Wall time the thread ran (spinning and sleeping), s.
    pub wall_s: f64,
    /// CPU time of the thread from `/proc/thread-self/stat` (10 ms ticks), s, where readable.
    pub cpu_s: Option<f64>,
    /// The load the plan asked for over the thread's run (time-weighted mean).
    pub planned_load: f64,
    /// The load the thread asked for: the plan's load at each period's start, weighted by how
    /// long the period lasted (checks that the thread follows the trace in time, whatever the
    /// scheduler grants).
    pub scheduled_load: f64,
}

/// What a co-runner did, per thread.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CoRunnerReport {
    /// One entry per busy thread.
    pub threads: Vec<CoRunnerThreadReport>,
}

impl CoRunnerReport {
    /// Mean over threads of `spin_s / wall_s`: the load the co-runner realised in wall time.
    pub fn realised_load(&self) -> f64 {
        mean(self.threads.iter().map(|t| t.spin_s / t.wall_s.max(1e-9)))
    }

    /// Mean over threads of the planned load.
    pub fn planned_load(&self) -> f64 {
        mean(self.threads.iter().map(|t| t.planned_load))
    }

    /// Mean over threads of `cpu_s / wall_s`, when every thread could read its CPU time: the
    /// load the scheduler actually granted (lower than planned on a busy host).
    pub fn cpu_load(&self) -> Option<f64> {
        let v: Option<Vec<f64>> = self
            .threads
            .iter()
            .map(|t| t.cpu_s.map(|c| c / t.wall_s.max(1e-9)))
            .collect();
        v.map(|v| mean(v.into_iter()))
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// Busy threads loading the host's cores following a [`LoadTrace`]; stopped (and joined) by
/// [`CoRunner::stop`] or on drop.
#[derive(Debug)]
pub struct CoRunner {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<CoRunnerThreadReport>>,
    started: Instant,
    plan: Arc<LoadPlan>,
}

impl CoRunner {
    /// Starts the busy threads.
    pub fn start(trace: &LoadTrace, params: &CoRunnerParams) -> Result<Self> {
        let config = params.check()?;
        let plan = Arc::new(LoadPlan::new(trace, config.time_scale));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let length = Duration::try_from_secs_f64(plan.end_s).map_err(|e| {
            DvfsError::invalid(
                "time_scale",
                format!(
                    "trace `{}` scaled by {} lasts {} s, not a duration ({e})",
                    trace.name(),
                    config.time_scale,
                    plan.end_s
                ),
            )
        })?;
        let until = started
            .checked_add(config.max_duration.min(length))
            .ok_or_else(|| {
                DvfsError::invalid("max_duration_s", "too long to be a point in time")
            })?;
        let mut workers = Vec::with_capacity(config.threads);
        for i in 0..config.threads {
            let (plan, stop) = (Arc::clone(&plan), Arc::clone(&stop));
            let period = config.period;
            let worker = std::thread::Builder::new()
                .name(format!("co-runner-{i}"))
                .spawn(move || busy_loop(&plan, &stop, started, until, period))
                .map_err(|e| DvfsError::invalid("co-runner", format!("cannot spawn: {e}")))?;
            workers.push(worker);
        }
        Ok(Self {
            stop,
            workers,
            started,
            plan,
        })
    }

    /// Seconds since the start.
    pub fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The load the plan asks for now.
    pub fn planned_load_now(&self) -> f64 {
        self.plan.load_at(self.elapsed_s())
    }

    /// The plan.
    pub fn plan(&self) -> &LoadPlan {
        &self.plan
    }

    /// Whether every busy thread has finished (end of the trace or of `max_duration_s`).
    pub fn is_finished(&self) -> bool {
        self.workers.iter().all(JoinHandle::is_finished)
    }

    /// Stops the threads and reports what they did.
    pub fn stop(mut self) -> CoRunnerReport {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> CoRunnerReport {
        self.stop.store(true, Ordering::Relaxed);
        CoRunnerReport {
            threads: self
                .workers
                .drain(..)
                .map(|w| w.join().unwrap_or_default())
                .collect(),
        }
    }
}

impl Drop for CoRunner {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

fn busy_loop(
    plan: &LoadPlan,
    stop: &AtomicBool,
    started: Instant,
    until: Instant,
    period: Duration,
) -> CoRunnerThreadReport {
    let cpu_start = thread_cpu_seconds();
    let begin = Instant::now();
    let mut spin = Duration::ZERO;
    let (mut scheduled, mut periods) = (Duration::ZERO, Duration::ZERO);
    let mut sink = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= until {
            break;
        }
        let load = plan.load_at(now.duration_since(started).as_secs_f64());
        let period_end = (now + period).min(until);
        let spin_end = now + period.mul_f64(load.clamp(0.0, 1.0)).min(period_end - now);

        while Instant::now() < spin_end {
            // Work the optimiser cannot remove.
            sink = std::hint::black_box(sink.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        spin += Instant::now().saturating_duration_since(now);
        let rest = period_end.saturating_duration_since(Instant::now());
        if !rest.is_zero() {
            std::thread::sleep(rest);
        }
        // The load asked for, weighted by how long the period really lasted.
        let lasted = Instant::now().saturating_duration_since(now);
        scheduled += lasted.mul_f64(load.clamp(0.0, 1.0));
        periods += lasted;
    }
    std::hint::black_box(sink);
    let end = Instant::now();
    let from_s = begin.duration_since(started).as_secs_f64();
    let to_s = end.duration_since(started).as_secs_f64();
    CoRunnerThreadReport {
        spin_s: spin.as_secs_f64(),
        wall_s: end.duration_since(begin).as_secs_f64(),
        cpu_s: match (cpu_start, thread_cpu_seconds()) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        },
        planned_load: plan.mean_load(from_s, to_s),
        scheduled_load: scheduled.as_secs_f64() / periods.as_secs_f64().max(1e-9),
    }
}

/// Clock ticks per second of `/proc` CPU times (`USER_HZ`; 100 on every Linux ABI).
const USER_HZ: f64 = 100.0;

/// CPU time of the calling thread, s, from `/proc/thread-self/stat`.
fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    parse_pid_stat_ticks(&text, Path::new("/proc/thread-self/stat"))
        .ok()
        .map(|t| t as f64 / USER_HZ)
}

/// Aggregate CPU times of the host from the first (`cpu`) line of `/proc/stat`, in ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// Ticks spent on anything but idle and I/O wait (all cores).
    pub busy: u64,
    /// All ticks (all cores).
    pub total: u64,
}

/// Parses the aggregate `cpu` line of `/proc/stat` text; `origin` names the source in errors.
pub fn parse_proc_stat(text: &str, origin: &Path) -> Result<CpuTimes> {
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| DvfsError::parse(origin, None, "no aggregate `cpu` line"))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| {
            f.parse::<u64>().map_err(|e| {
                DvfsError::parse(origin, Some(1), format!("field `{f}` of the cpu line: {e}"))
            })
        })
        .collect::<Result<_>>()?;
    if fields.len() < 4 {
        return Err(DvfsError::parse(
            origin,
            Some(1),
            format!("the cpu line has {} fields, expected >= 4", fields.len()),
        ));
    }
    // user nice system idle iowait irq softirq steal (guest times are included in user).
    // Checked sums: counters near 2^64 are not real tick counts, and must not wrap or panic.
    let overflow = || {
        DvfsError::parse(
            origin,
            Some(1),
            "the cpu line's tick counts overflow 64 bits: not real counters",
        )
    };
    let total = fields
        .iter()
        .take(8)
        .try_fold(0u64, |a, &f| a.checked_add(f))
        .ok_or_else(overflow)?;
    let idle = fields[3]
        .checked_add(fields.get(4).copied().unwrap_or(0))
        .ok_or_else(overflow)?;
    Ok(CpuTimes {
        busy: total.saturating_sub(idle),
        total,
    })
}

/// Parses `utime + stime` (ticks) from a `/proc/<pid>/stat` line; `origin` names the source.
pub fn parse_pid_stat_ticks(text: &str, origin: &Path) -> Result<u64> {
    // The command name may contain spaces and parentheses: fields start after the last `)`.
    let rest = text
        .rfind(')')
        .map(|i| &text[i + 1..])
        .ok_or_else(|| DvfsError::parse(origin, None, "no `)` after the command name"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) ... utime(14) stime(15), i.e. indices 11 and 12 here.
    let field = |i: usize, name: &str| -> Result<u64> {
        fields
            .get(i)
            .ok_or_else(|| DvfsError::parse(origin, None, format!("no `{name}` field")))?
            .parse::<u64>()
            .map_err(|e| DvfsError::parse(origin, None, format!("field `{name}`: {e}")))
    };
    field(11, "utime")?
        .checked_add(field(12, "stime")?)
        .ok_or_else(|| {
            DvfsError::parse(
                origin,
                None,
                "utime + stime overflow 64 bits: not real tick counts",
            )
        })
}

/// Reads the share of the host's CPU time taken by *other* processes since the previous
/// reading: `(busy ticks of all cores - ticks of this process) / all ticks`, from `/proc/stat`
/// and `/proc/self/stat`. Resolution is one tick (10 ms of one core); a reading over less than
/// a tick repeats the previous value.
#[derive(Clone, Debug)]
pub struct HostLoadProbe {
    root: PathBuf,
    last_host: CpuTimes,
    last_self: u64,
    last_load: f64,
}

impl HostLoadProbe {
    /// A probe on this host's `/proc`.
    pub fn new() -> Result<Self> {
        Self::with_root("/proc")
    }

    /// A probe on another `proc` root (tests).
    pub fn with_root(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let (host, own) = Self::read(&root)?;
        Ok(Self {
            root,
            last_host: host,
            last_self: own,
            last_load: 0.0,
        })
    }

    fn read(root: &Path) -> Result<(CpuTimes, u64)> {
        let stat = root.join("stat");
        let own = root.join("self/stat");
        let host_text =
            std::fs::read_to_string(&stat).map_err(|e| DvfsError::io(&stat, "read", e))?;
        let own_text = std::fs::read_to_string(&own).map_err(|e| DvfsError::io(&own, "read", e))?;
        Ok((
            parse_proc_stat(&host_text, &stat)?,
            parse_pid_stat_ticks(&own_text, &own)?,
        ))
    }

    /// The other processes' share of the host since the previous reading, in `[0, 0.99]`.
    pub fn sample(&mut self) -> Result<f64> {
        let (host, own) = Self::read(&self.root)?;
        let total = host.total.saturating_sub(self.last_host.total);
        if total == 0 {
            return Ok(self.last_load);
        }
        let busy = host.busy.saturating_sub(self.last_host.busy);
        let mine = own.saturating_sub(self.last_self);
        let load = (busy.saturating_sub(mine) as f64 / total as f64).clamp(0.0, 0.99);
        self.last_host = host;
        self.last_self = own;
        self.last_load = load;
        Ok(load)
    }

    /// The last value [`HostLoadProbe::sample`] returned.
    pub fn last(&self) -> f64 {
        self.last_load
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    fn trace(loads: &[f64]) -> LoadTrace {
        LoadTrace::new(
            "t",
            (0..loads.len()).map(|i| i as f64 * 0.1).collect(),
            loads.to_vec(),
        )
        .expect("trace")
    }

    #[test]
    fn plan_follows_the_trace_scaled_in_time() {
        let plan = LoadPlan::new(&trace(&[0.0, 0.5, 0.2]), 2.0);
        assert_relative_eq!(plan.duration_s(), 0.6, max_relative = 1e-12);
        assert_relative_eq!(plan.load_at(0.1), 0.0);
        assert_relative_eq!(plan.load_at(0.25), 0.5);
        assert_relative_eq!(plan.load_at(0.59), 0.2);
        assert_relative_eq!(plan.load_at(0.61), 0.0);
        // Time-weighted mean over the whole plan and over a straddling interval.
        assert_relative_eq!(plan.mean_load(0.0, 0.6), 0.7 / 3.0, max_relative = 1e-12);
        assert_relative_eq!(
            plan.mean_load(0.1, 0.3),
            (0.1 * 0.0 + 0.1 * 0.5) / 0.2,
            max_relative = 1e-12
        );
    }

    #[test]
    fn proc_files_parse_and_bad_ones_name_the_field() {
        let stat = "cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 50 2 25 400 10 1 1 0 0 0\n";
        let t = parse_proc_stat(stat, Path::new("stat")).expect("stat");
        assert_eq!(t.total, 980);
        assert_eq!(t.busy, 980 - 820);
        let e = parse_proc_stat("cpu  1 x 3 4\n", Path::new("stat"))
            .expect_err("x")
            .to_string();
        assert!(e.contains("stat") && e.contains("`x`"), "{e}");
        assert!(parse_proc_stat("intr 1\n", Path::new("stat")).is_err());
        let own = "4242 (my (odd) name) R 1 2 3 4 5 6 7 8 9 10 70 30 0 0 20 0 1 0";
        assert_eq!(
            parse_pid_stat_ticks(own, Path::new("s")).expect("pid stat"),
            100
        );
        assert!(parse_pid_stat_ticks("1 (x) R 1", Path::new("s")).is_err());
    }

    #[test]
    fn tick_counts_that_overflow_are_typed_errors_not_panics() {
        // Found by the `proc_stat_files` fuzz target: sums of counters near 2^64 panicked in
        // debug builds and wrapped silently in release.
        let max = u64::MAX;
        let stat = format!("cpu  {max} 1 0 0 0 0 0 0 0 0\n");
        let e = parse_proc_stat(&stat, Path::new("/proc/stat"))
            .expect_err("overflow")
            .to_string();
        assert!(e.contains("/proc/stat") && e.contains("overflow"), "{e}");
        let idle = format!("cpu  0 0 0 {max} 1 0 0 0 0 0\n");
        assert!(parse_proc_stat(&idle, Path::new("/proc/stat")).is_err());
        let own = format!("4242 (x) R 1 2 3 4 5 6 7 8 9 10 {max} 1 0 0 20 0 1 0");
        let e = parse_pid_stat_ticks(&own, Path::new("/proc/self/stat"))
            .expect_err("overflow")
            .to_string();
        assert!(
            e.contains("/proc/self/stat") && e.contains("overflow"),
            "{e}"
        );
    }

    #[test]
    fn probe_subtracts_this_process_from_the_host_busy_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("self")).expect("mkdir");
        let write = |busy_user: u64, idle: u64, own: u64| {
            std::fs::write(
                dir.path().join("stat"),
                format!("cpu  {busy_user} 0 0 {idle} 0 0 0 0 0 0\n"),
            )
            .expect("w");
            std::fs::write(
                dir.path().join("self/stat"),
                format!("1 (serve) R 1 1 1 1 1 1 1 1 1 1 {own} 0 0 0\n"),
            )
            .expect("w");
        };
        write(100, 100, 10);
        let mut probe = HostLoadProbe::with_root(dir.path()).expect("probe");
        // 200 new ticks: 120 busy of which 40 are ours -> others 80 / 200.
        write(220, 180, 50);
        assert_relative_eq!(probe.sample().expect("sample"), 0.4, max_relative = 1e-12);
        // No tick elapsed: the previous value.
        assert_relative_eq!(probe.sample().expect("sample"), 0.4, max_relative = 1e-12);
        assert!(HostLoadProbe::with_root(dir.path().join("missing")).is_err());
    }

    #[test]
    fn co_runner_realises_the_planned_load_and_stops_in_time() {
        // 2 windows of 0.15 s: 0.2 then 0.7.
        let t = LoadTrace::new("t", vec![0.0, 0.15], vec![0.2, 0.7]).expect("trace");
        let params = CoRunnerParams {
            threads: 1,
            period_ms: 5.0,
            time_scale: 1.0,
            max_duration_s: 5.0,
        };
        let runner = CoRunner::start(&t, &params).expect("start");
        while !runner.is_finished() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let report = runner.stop();
        assert_eq!(report.threads.len(), 1);
        let th = &report.threads[0];
        // Between the two windows' loads whenever the thread started (spawning may be late on
        // a busy host).
        assert!(
            (0.2..=0.7).contains(&th.planned_load),
            "{}",
            th.planned_load
        );
        // The duty cycle the thread scheduled follows the plan (what the scheduler then
        // grants on a busy host is a measurement: `realised_load`, `cpu_load`, recorded in
        // docs/benchmarks.md).
        assert!(
            (th.scheduled_load - th.planned_load).abs() < 0.1,
            "scheduled {} planned {}",
            th.scheduled_load,
            th.planned_load
        );
        assert!(th.spin_s <= th.wall_s && th.spin_s > 0.0);
        assert!(
            CoRunnerParams {
                period_ms: 0.0,
                ..params
            }
            .check()
            .is_err()
        );
        assert!(
            CoRunnerParams {
                max_duration_s: f64::NAN,
                ..params
            }
            .check()
            .is_err()
        );
    }

    #[test]
    fn max_duration_bounds_the_run() {
        let t = LoadTrace::new("long", vec![0.0, 100.0], vec![0.3, 0.3]).expect("trace");
        let params = CoRunnerParams {
            threads: 2,
            period_ms: 5.0,
            time_scale: 1.0,
            max_duration_s: 0.05,
        };
        let runner = CoRunner::start(&t, &params).expect("start");
        while !runner.is_finished() {
            std::thread::sleep(Duration::from_millis(10));
        }
        let report = runner.stop();
        assert_eq!(report.threads.len(), 2);
        // Finished on its own long before the trace's 200 s.
        assert!(report.threads.iter().all(|t| t.wall_s < 100.0));
    }
}
