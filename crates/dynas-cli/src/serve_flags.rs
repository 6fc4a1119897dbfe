//! Serving flags shared by `dynas serve` and the Dynamic-OFA example (which includes this file
//! by path), so both read the same options the same way.

// Both including crates import `MissGuard` at their root (the CLI through the facade).
use super::MissGuard;

/// How a family is served: target, load traces, policies, threads and window.
#[derive(Debug, clap::Args)]
pub struct ServeFlags {
    /// Latency target in ms (default 1.2 x the slowest member's idle latency); a target no
    /// member meets on an idle machine is refused.
    #[arg(long)]
    pub target_ms: Option<f64>,
    /// Load traces, comma-separated: shipped names or CSV files.
    #[arg(long, value_delimiter = ',', default_values = ["step", "periodic", "bursty", "steady"])]
    pub traces: Vec<String>,
    /// Trace time multiplier (0.5 plays a trace twice as fast).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Policies, comma-separated (static-largest, static-smallest, reactive, predictive), or
    /// `all`.
    #[arg(long, default_value = "all")]
    pub policies: String,
    /// libtorch threads.
    #[arg(long, default_value_t = 1)]
    pub threads: i32,
    /// Co-runner threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    pub co_threads: usize,
    /// Inferences per runtime-manager window.
    #[arg(long, default_value_t = 8)]
    pub window: usize,
    /// Deadline-miss budget of the runtime managers: the largest share of the remembered
    /// inferences whose delay would make the chosen member miss the target (0: none may).
    #[arg(long, default_value_t = 0.0)]
    pub miss_budget: f64,
    /// Serve without the deadline-miss guard (the managers act on mean latencies only).
    #[arg(long)]
    pub no_miss_guard: bool,
    /// Latency samples the deadline-miss guard remembers.
    #[arg(long, default_value_t = 2048)]
    pub miss_samples: usize,
}

impl ServeFlags {
    /// The deadline-miss guard the flags ask for, or `None` when disabled (checked when the
    /// serving parameters take it).
    pub fn miss_guard(&self) -> Option<MissGuard> {
        (!self.no_miss_guard).then_some(MissGuard {
            miss_budget: self.miss_budget,
            samples: self.miss_samples,
        })
    }
}
