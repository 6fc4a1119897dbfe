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

/// Progress over the evaluation budget (feature `progress`, on by default): an indicatif bar
/// on stderr when it is a terminal, otherwise plain lines (a log file, a CI job, `2> out`), one
/// per generation at most every [`ProgressObserver::LINE_INTERVAL`] plus the first and the last,
/// so that a long run still says how far it got.
#[cfg(feature = "progress")]
pub struct ProgressObserver {
    total: usize,
    out: Output,
}

#[cfg(feature = "progress")]
enum Output {
    Bar(indicatif::ProgressBar),
    Lines {
        writer: Box<dyn Write + Send>,
        started: std::time::Instant,
        last: Option<std::time::Instant>,
        evaluations: usize,
    },
}

#[cfg(feature = "progress")]
impl std::fmt::Debug for ProgressObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.out {
            Output::Bar(_) => "bar",
            Output::Lines { .. } => "lines",
        };
        f.debug_struct("ProgressObserver")
            .field("total", &self.total)
            .field("mode", &mode)
            .finish()
    }
}

#[cfg(feature = "progress")]
impl ProgressObserver {
    /// Shortest time between two plain progress lines (generations in between are not
    /// reported).
    pub const LINE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

    /// Progress over `total` evaluations on stderr: a bar when stderr is a terminal, plain
    /// lines otherwise.
    pub fn new(total: usize) -> Self {
        use std::io::IsTerminal as _;
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} evaluations, gen {msg} [{elapsed_precise}]",
            ) {
                bar.set_style(style);
            }
            Self {
                total,
                out: Output::Bar(bar),
            }
        } else {
            Self::lines(total, std::io::stderr())
        }
    }

    /// Plain progress lines to `writer`, whatever it is (e.g. a log file).
    pub fn lines(total: usize, writer: impl Write + Send + 'static) -> Self {
        Self {
            total,
            out: Output::Lines {
                writer: Box::new(writer),
                started: std::time::Instant::now(),
                last: None,
                evaluations: 0,
            },
        }
    }
}

#[cfg(feature = "progress")]
impl Observer for ProgressObserver {
    fn on_event(&mut self, event: &Event<'_>) -> Result<Control> {
        let total = self.total;
        match &mut self.out {
            Output::Bar(bar) => match *event {
                Event::Started { evaluations, .. } => bar.set_position(evaluations as u64),
                Event::Evaluated { .. } => bar.inc(1),
                Event::Generation {
                    generation,
                    front_size,
                    ..
                } => bar.set_message(format!("{generation}, front {front_size}")),
                Event::Finished { .. } => bar.finish(),
            },
            Output::Lines {
                writer,
                started,
                last,
                evaluations: seen,
            } => {
                let line = match *event {
                    Event::Started {
                        strategy,
                        resumed,
                        generation,
                        evaluations,
                        ..
                    } => {
                        *seen = evaluations;
                        Some(if resumed {
                            format!(
                                "{strategy}: resumed at generation {generation}, \
                                 {evaluations}/{total} evaluations"
                            )
                        } else {
                            format!("{strategy}: started, {total} evaluations budgeted")
                        })
                    }
                    Event::Evaluated { .. } => {
                        *seen += 1;
                        None
                    }
                    Event::Generation {
                        generation,
                        evaluations,
                        front_size,
                    } => {
                        *seen = evaluations;
                        let now = std::time::Instant::now();
                        last.is_none_or(|l| now - l >= Self::LINE_INTERVAL)
                            .then(|| {
                                *last = Some(now);
                                format!(
                                    "generation {generation}: {evaluations}/{total} evaluations, \
                                 front {front_size} [{:.0} s]",
                                    started.elapsed().as_secs_f64()
                                )
                            })
                    }
                    Event::Finished {
                        generation,
                        evaluations,
                        front_size,
                        reason,
                    } => Some(format!(
                        "finished after generation {generation} ({reason:?}): \
                         {evaluations}/{total} evaluations, front {front_size} [{:.0} s]",
                        started.elapsed().as_secs_f64()
                    )),
                };
                if let Some(line) = line {
                    // Progress is a courtesy: a closed stderr must not stop the search.
                    let _ = writeln!(writer, "{line}").and_then(|()| writer.flush());
                }
            }
        }
        Ok(Control::Continue)
    }
}

#[cfg(all(test, feature = "progress"))]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn without_a_terminal_progress_comes_as_plain_lines() {
        let out = Shared::default();
        let mut observer = ProgressObserver::lines(100, out.clone());
        let events = [
            Event::Started {
                strategy: "nsga2",
                problem: "p",
                resumed: false,
                generation: 0,
                evaluations: 0,
            },
            Event::Generation {
                generation: 1,
                evaluations: 24,
                front_size: 5,
            },
            // Within the interval of the previous line: not reported.
            Event::Generation {
                generation: 2,
                evaluations: 48,
                front_size: 7,
            },
            Event::Finished {
                generation: 2,
                evaluations: 48,
                front_size: 7,
                reason: StopReason::Evaluations,
            },
        ];
        for e in &events {
            assert_eq!(observer.on_event(e).unwrap(), Control::Continue);
        }
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].starts_with("nsga2: started, 100 evaluations"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("generation 1: 24/100 evaluations, front 5"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("finished after generation 2 (Evaluations): 48/100"),
            "{text}"
        );
    }
}
