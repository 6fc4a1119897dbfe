//! Observers: see every evaluation and generation of a search, and may stop it.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use dynas_space::Genotype;
use serde_json::json;

use crate::error::{Result, SearchError};
use crate::executor::StopReason;
use crate::problem::Evaluation;

/// Something that happened during a search.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// The search (re)started.
    Started {
        /// Strategy name.
        strategy: &'a str,
        /// Problem name.
        problem: &'a str,
        /// Whether it continues from a checkpoint.
        resumed: bool,
        /// Generations already done.
        generation: usize,
        /// Distinct architectures already evaluated.
        evaluations: usize,
    },
    /// A new architecture was evaluated.
    Evaluated {
        /// Its position in the archive (0-based).
        index: usize,
        /// The genotype.
        genotype: &'a Genotype,
        /// Its evaluation.
        evaluation: &'a Evaluation,
    },
    /// A generation finished.
    Generation {
        /// Generations done.
        generation: usize,
        /// Distinct architectures evaluated.
        evaluations: usize,
        /// Size of the archive's Pareto front.
        front_size: usize,
    },
    /// The search finished.
    Finished {
        /// Generations done.
        generation: usize,
        /// Distinct architectures evaluated.
        evaluations: usize,
        /// Size of the final Pareto front.
        front_size: usize,
        /// Why it stopped.
        reason: StopReason,
    },
}

/// What an observer wants the executor to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop now with [`SearchError::Interrupted`]; the last checkpoint is left as it was.
    Stop(String),
}

/// Watches a search.
pub trait Observer: Send {
    /// Called for each event, in order.
    fn on_event(&mut self, event: &Event<'_>) -> Result<Control>;
}

impl<F: FnMut(&Event<'_>) -> Control + Send> Observer for F {
    fn on_event(&mut self, event: &Event<'_>) -> Result<Control> {
        Ok(self(event))
    }
}

/// Appends one JSON object per event to a file (`{"event": "evaluated", ...}`).
#[derive(Debug)]
pub struct JsonLinesObserver {
    path: PathBuf,
    out: BufWriter<File>,
}

impl JsonLinesObserver {
    /// Opens `path` for appending (a resumed search continues the same log).
    pub fn append(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| SearchError::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        })
    }
}

fn finite_or_null(v: f64) -> serde_json::Value {
    if v.is_finite() {
        json!(v)
    } else {
        serde_json::Value::Null
    }
}

impl Observer for JsonLinesObserver {
    fn on_event(&mut self, event: &Event<'_>) -> Result<Control> {
        let line = match *event {
            Event::Started {
                strategy,
                problem,
                resumed,
                generation,
                evaluations,
            } => json!({"event": "started", "strategy": strategy, "problem": problem,
                "resumed": resumed, "generation": generation, "evaluations": evaluations}),
            Event::Evaluated {
                index,
                genotype,
                evaluation,
            } => json!({"event": "evaluated", "index": index, "genotype": genotype.to_string(),
                "values": evaluation.values.iter().map(|&v| finite_or_null(v)).collect::<Vec<_>>(),
                "violation": finite_or_null(evaluation.violation)}),
            Event::Generation {
                generation,
                evaluations,
                front_size,
            } => json!({"event": "generation", "generation": generation,
                "evaluations": evaluations, "front_size": front_size}),
            Event::Finished {
                generation,
                evaluations,
                front_size,
                reason,
            } => json!({"event": "finished", "generation": generation,
                "evaluations": evaluations, "front_size": front_size, "reason": reason}),
        };
        writeln!(self.out, "{line}").map_err(|e| SearchError::io(&self.path, e))?;
        if matches!(event, Event::Generation { .. } | Event::Finished { .. }) {
            self.out
                .flush()
                .map_err(|e| SearchError::io(&self.path, e))?;
        }
        Ok(Control::Continue)
    }
}

/// An indicatif progress bar over the evaluation budget (feature `progress`, on by default).
#[cfg(feature = "progress")]
#[derive(Debug)]
pub struct ProgressObserver {
    bar: indicatif::ProgressBar,
}

#[cfg(feature = "progress")]
impl ProgressObserver {
    /// A bar of `total` evaluations (drawn to stderr; hidden when stderr is not a terminal).
    pub fn new(total: usize) -> Self {
        let bar = indicatif::ProgressBar::new(total as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} evaluations, gen {msg} [{elapsed_precise}]",
        ) {
            bar.set_style(style);
        }
        Self { bar }
    }
}

#[cfg(feature = "progress")]
impl Observer for ProgressObserver {
    fn on_event(&mut self, event: &Event<'_>) -> Result<Control> {
        match *event {
            Event::Started { evaluations, .. } => self.bar.set_position(evaluations as u64),
            Event::Evaluated { .. } => self.bar.inc(1),
            Event::Generation {
                generation,
                front_size,
                ..
            } => self
                .bar
                .set_message(format!("{generation}, front {front_size}")),
            Event::Finished { .. } => self.bar.finish(),
        }
        Ok(Control::Continue)
    }
}
