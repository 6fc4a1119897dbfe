//! The [`Executor`] owns the search loop: budgets, the seeded RNG, the archive of every
//! distinct architecture evaluated, observers and checkpoint/resume.
//!
//! A strategy ([`Strategy`]) only says *how* to propose candidates; it keeps all of its
//! memory in a serialisable state. The executor checkpoints that state, the RNG and the
//! archive after every step, so a search killed at any point and resumed from its checkpoint
//! gives exactly the result of an uninterrupted run. A checkpoint is a snapshot (written
//! atomically: temporary file, fsync, rename) plus, between snapshots, an append-only journal
//! beside it (`<checkpoint>.journal`) of what each generation added, so checkpointing every
//! generation costs about what the new records cost, not the whole archive each time; the
//! journal is folded into the snapshot when it outgrows it and at the end of the run. While a
//! run uses a checkpoint it holds an exclusive lock on it: a second run is refused with
//! [`SearchError::CheckpointLocked`].
//!
//! [`Executor::checkpoint`] resumes by itself: when the checkpoint file already exists and
//! belongs to this search (same strategy configuration, problem, data fingerprint and seed), the
//! run continues from it; when it does not match, [`Executor::run`] refuses with
//! [`SearchError::CheckpointMismatch`] instead of overwriting it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dynas_space::{DynasRng, Genotype, seeded_rng};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SearchError};
use crate::observer::{Control, Event, Observer};
use crate::pareto::ParetoFront;
use crate::problem::Problem;

mod context;
mod journal;
pub use context::{Archive, Budget, Context, Record, Unseen};
use journal::Journal;

mod checkpoint;
pub use checkpoint::checkpoint_strategy;
use checkpoint::{Progress, Resumed, Saved};

/// Whether a strategy wants another step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// More steps would make progress.
    Continue,
    /// The strategy has finished (e.g. the space is exhausted).
    Done,
}

/// How to search: proposes candidates, keeps all of its memory in [`Strategy::State`].
///
/// Steps must be deterministic given the state, the context's RNG and the archive, so that
/// checkpoint/resume is exact.
pub trait Strategy {
    /// Everything the strategy remembers between steps.
    type State: Serialize + DeserializeOwned + Clone + std::fmt::Debug;

    /// Short name, stored in checkpoints.
    fn name(&self) -> &str;

    /// The hyper-parameters' type.
    type Config: Serialize;

    /// The hyper-parameters, stored in checkpoints and checked on resume.
    fn params(&self) -> &Self::Config;

    /// The hyper-parameters as JSON (`null` if they do not serialise).
    fn config(&self) -> serde_json::Value {
        serde_json::to_value(self.params()).unwrap_or(serde_json::Value::Null)
    }

    /// Builds and evaluates the initial population (generation 1).
    fn init(&self, ctx: &mut Context<'_>) -> Result<Self::State>;

    /// One generation.
    fn step(&self, state: &mut Self::State, ctx: &mut Context<'_>) -> Result<Step>;

    /// Checks a state read from a checkpoint against the problem and the checkpoint's archive
    /// (e.g. a non-empty population of valid, evaluated genotypes), so that a damaged or
    /// foreign checkpoint is refused instead of silently steering the search. The default
    /// accepts every state that deserialises.
    fn check_state(
        &self,
        state: &Self::State,
        problem: &dyn Problem,
        archive: &Archive,
    ) -> Result<()> {
        let _ = (state, problem, archive);
        Ok(())
    }
}

/// Why a search stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The evaluation budget was spent.
    Evaluations,
    /// The generation budget was reached.
    Generations,
    /// The time budget was reached.
    Time,
    /// The strategy finished by itself.
    StrategyDone,
    /// Every architecture of the space has been evaluated: nothing new can be produced.
    SpaceExhausted,
    /// No new architecture was evaluated for [`Executor::stall_limit`] generations in a row
    /// (e.g. every candidate that meets a hard constraint is already known).
    Stalled,
}

/// The outcome of a search.
#[derive(Clone, Debug)]
pub struct SearchResult<T> {
    /// Every distinct architecture evaluated, in order.
    pub archive: Archive,
    /// The Pareto front of the archive.
    pub front: ParetoFront,
    /// The strategy's final state (its population).
    pub state: T,
    /// Generations run (including the initial population).
    pub generations: usize,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// The RNG after the search.
    pub rng: DynasRng,
    /// Wall-clock time spent, over all resumed sessions.
    pub elapsed: Duration,
    /// The seed the search started from (the checkpoint's seed when it was resumed).
    pub seed: u64,
    /// Whether the search continued from a checkpoint.
    pub resumed: bool,
}

/// What [`Executor::run`] does with an existing checkpoint file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Existing {
    /// Continue from it when it matches, refuse when it does not.
    Resume,
    /// Start over and replace it.
    Overwrite,
}

/// Runs a [`Strategy`] on a [`Problem`] under a [`Budget`].
///
/// ```
/// # use dynas_search::{Budget, Executor, Nsga2, Nsga2Config, Problem};
/// # fn demo(problem: &dyn Problem) -> dynas_search::Result<()> {
/// let strategy = Nsga2::new(Nsga2Config::default())?;
/// let result = Executor::new(problem, strategy, Budget::evaluations(500)?)
///     .seed(7)
///     .run()?;
/// println!("{} points on the front", result.front.len());
/// # Ok(()) }
/// ```
pub struct Executor<'p, S: Strategy> {
    problem: &'p dyn Problem,
    strategy: S,
    budget: Budget,
    seed: Option<u64>,
    observers: Vec<Box<dyn Observer>>,
    checkpoint: Option<(PathBuf, usize)>,
    existing: Existing,
    stall_limit: usize,
    resume: Option<Resumed<S::State>>,
    warm_start: Vec<Genotype>,
    mismatch_hint: Option<String>,
}

/// Default of [`Executor::stall_limit`].
pub const DEFAULT_STALL_LIMIT: usize = 100;

impl<'p, S: Strategy> Executor<'p, S> {
    /// A search of `problem` by `strategy`, seed 0, no observers, no checkpoint.
    pub fn new(problem: &'p dyn Problem, strategy: S, budget: Budget) -> Self {
        Self {
            problem,
            strategy,
            budget,
            seed: None,
            observers: Vec::new(),
            checkpoint: None,
            existing: Existing::Resume,
            stall_limit: DEFAULT_STALL_LIMIT,
            resume: None,
            warm_start: Vec::new(),
            mismatch_hint: None,
        }
    }

    /// How the user starts a new search over a checkpoint that does not match, as
    /// [`SearchError::CheckpointMismatch`] says it (e.g. `pass --overwrite-checkpoint` in a
    /// command-line tool; default: "use `Executor::overwrite_checkpoint`").
    pub fn mismatch_hint(mut self, hint: impl Into<String>) -> Self {
        self.mismatch_hint = Some(hint.into());
        self
    }

    /// Architectures evaluated first, before the strategy's initial design (a user's known-good
    /// designs, or a space's extremes such as its largest network). They count against the
    /// evaluation budget and sit in the archive the strategy sees: the surrogate search learns
    /// from them and NSGA-II starts its first population with them. A resumed search has them
    /// in its checkpoint already. Each is validated against the problem's space by
    /// [`Executor::run`].
    pub fn warm_start(mut self, genotypes: Vec<Genotype>) -> Self {
        self.warm_start = genotypes;
        self
    }

    /// Sets the seed of the search's RNG (default 0). A resumed search continues with the
    /// checkpoint's RNG: a seed set here that differs from the checkpoint's makes
    /// [`Executor::run`] fail with [`SearchError::CheckpointMismatch`] (field `seed`) rather
    /// than record a seed the run did not use; leave it unset to take the checkpoint's.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Stops with [`StopReason::Stalled`] after `generations` (>= 1) consecutive generations
    /// that evaluate no new architecture (default [`DEFAULT_STALL_LIMIT`]), so that a search
    /// whose strategy can only revisit known architectures ends instead of spinning.
    pub fn stall_limit(mut self, generations: usize) -> Result<Self> {
        if generations == 0 {
            return Err(SearchError::invalid("stall limit", "must be at least 1"));
        }
        self.stall_limit = generations;
        Ok(self)
    }

    /// Replaces the budget (e.g. to extend a resumed search).
    pub fn budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }

    /// Adds an observer.
    pub fn observe(mut self, observer: impl Observer + 'static) -> Self {
        self.observers.push(Box::new(observer));
        self
    }

    /// Writes a checkpoint to `path` after every `every` generations and at the end: crash-safe
    /// (a snapshot written atomically, and between snapshots a journal `<path>.journal` of the
    /// generations since; see the [module documentation](self)). The run holds a lock on the
    /// checkpoint ([`SearchError::CheckpointLocked`] for a second run) and removes temporary
    /// files that killed runs left next to it.
    ///
    /// If `path` already exists when [`Executor::run`] starts, the search continues from it
    /// exactly as [`Executor::resume_from`] would, so rerunning a killed program resumes it.
    /// A file that does not belong to this search (another strategy configuration, problem,
    /// data, or a seed set with [`Executor::seed`] that differs) is refused with
    /// [`SearchError::CheckpointMismatch`] and left untouched; use
    /// [`Executor::overwrite_checkpoint`] to start over instead.
    pub fn checkpoint(mut self, path: impl Into<PathBuf>, every: usize) -> Result<Self> {
        if every == 0 {
            return Err(SearchError::invalid(
                "checkpoint interval",
                "must be at least 1",
            ));
        }
        self.checkpoint = Some((path.into(), every));
        Ok(self)
    }

    /// Makes [`Executor::checkpoint`] start a new search and replace an existing file instead
    /// of resuming from it.
    pub fn overwrite_checkpoint(mut self) -> Self {
        self.existing = Existing::Overwrite;
        self
    }

    /// Continues the search saved in `path` (which must come from the same strategy
    /// configuration, problem and data). Every field is checked: archive genotypes, value
    /// counts and duplicates, the strategy's state ([`Strategy::check_state`]), the RNG, the
    /// generation count and the elapsed time.
    pub fn resume_from(mut self, path: impl AsRef<Path>) -> Result<Self> {
        self.resume = Some(self.load(path.as_ref())?);
        Ok(self)
    }

    /// Runs until the budget is spent or the strategy is done.
    pub fn run(mut self) -> Result<SearchResult<S::State>> {
        self.budget.check()?;
        for genotype in &self.warm_start {
            self.problem
                .space()
                .validate(genotype)
                .map_err(|e| SearchError::invalid("warm_start", format!("{genotype}: {e}")))?;
        }
        // Held until the run ends: no other run may use this checkpoint meanwhile.
        let mut journal = match &self.checkpoint {
            Some((path, _)) => Some(Journal::lock(path)?),
            None => None,
        };
        let mut saved = Saved::default();
        if self.resume.is_none()
            && self.existing == Existing::Resume
            && let Some((path, _)) = &self.checkpoint
            && path.exists()
        {
            let loaded = self.load(path).map_err(|e| match e {
                SearchError::CheckpointMismatch {
                    path,
                    field,
                    reason,
                } => SearchError::CheckpointMismatch {
                    path,
                    field,
                    reason: format!(
                        "{reason} (the file is kept; remove it or {} to start a new search)",
                        self.mismatch_hint
                            .as_deref()
                            .unwrap_or("use `Executor::overwrite_checkpoint`")
                    ),
                },
                other => other,
            })?;
            self.resume = Some(loaded);
        }
        let started = Instant::now();
        let seed = match &self.resume {
            Some(r) => {
                if let Some(asked) = self.seed
                    && asked != r.seed
                {
                    return Err(SearchError::CheckpointMismatch {
                        path: r.path.clone(),
                        field: "seed".into(),
                        reason: format!(
                            "the search was started with seed {} and continues with that \
                             seed's generator; seed {asked} was asked for (leave the seed unset \
                             to resume, or start a new search)",
                            r.seed
                        ),
                    });
                }
                r.seed
            }
            None => self.seed.unwrap_or(0),
        };
        let (mut rng, mut generation, mut stalled, previous, mut archive, mut state) =
            match self.resume.take() {
                Some(r) => (
                    r.rng,
                    r.generation,
                    r.stalled,
                    r.elapsed,
                    r.archive,
                    Some(r.state),
                ),
                None => (
                    seeded_rng(seed),
                    0,
                    0,
                    Duration::ZERO,
                    Archive::default(),
                    None,
                ),
            };
        let resumed = state.is_some();
        let cardinality = self.problem.space().cardinality();
        for o in &mut self.observers {
            o.on_event(&Event::Started {
                strategy: self.strategy.name(),
                problem: self.problem.name(),
                resumed,
                generation,
                evaluations: archive.len(),
            })?;
        }
        let stop_reason = loop {
            let elapsed = previous + started.elapsed();
            if let Some(reason) = self.limit_reached(generation, archive.len(), elapsed) {
                break reason;
            }
            if state.is_some() && archive.len() as u128 >= cardinality {
                break StopReason::SpaceExhausted;
            }
            if stalled >= self.stall_limit {
                break StopReason::Stalled;
            }
            let before = archive.len();
            let mut ctx = Context {
                problem: self.problem,
                rng: &mut rng,
                archive: &mut archive,
                max_evaluations: self.budget.max_evaluations,
                observers: &mut self.observers,
                generation: generation + 1,
                stop: None,
            };
            let outcome = match state.as_mut() {
                None => {
                    ctx.evaluate(&self.warm_start)?;
                    state = Some(self.strategy.init(&mut ctx)?);
                    Step::Continue
                }
                Some(s) => self.strategy.step(s, &mut ctx)?,
            };
            generation = generation
                .checked_add(1)
                .ok_or_else(|| SearchError::invalid("generation", "the count overflows"))?;
            stalled = if archive.len() > before {
                0
            } else {
                stalled + 1
            };
            let elapsed = previous + started.elapsed();
            let front_size = if self.observers.is_empty() {
                0
            } else {
                archive.front(self.problem.objectives()).len()
            };
            let mut stop = None;
            for o in &mut self.observers {
                if let Control::Stop(why) = o.on_event(&Event::Generation {
                    generation,
                    evaluations: archive.len(),
                    front_size,
                })? {
                    stop.get_or_insert(why);
                }
            }
            if let (Some((path, every)), Some(s)) = (&self.checkpoint, &state)
                && (generation % every == 0 || outcome == Step::Done)
            {
                let at = Progress {
                    seed,
                    generation,
                    stalled,
                    elapsed,
                };
                if let Some(journal) = journal.as_mut() {
                    self.save(path, journal, &mut saved, &rng, at, &archive, s, false)?;
                }
            }
            if let Some(why) = stop {
                return Err(SearchError::Interrupted(why));
            }
            if outcome == Step::Done {
                break StopReason::StrategyDone;
            }
        };
        let elapsed = previous + started.elapsed();
        let state = match state {
            Some(s) => s,
            None => self.strategy.init(&mut Context {
                problem: self.problem,
                rng: &mut rng,
                archive: &mut archive,
                max_evaluations: Some(0),
                observers: &mut [],
                generation: 0,
                stop: None,
            })?,
        };
        // Nothing to save before the first generation (and such a checkpoint could not resume).
        if let Some((path, _)) = &self.checkpoint
            && generation > 0
        {
            let at = Progress {
                seed,
                generation,
                stalled,
                elapsed,
            };
            if let Some(journal) = journal.as_mut() {
                self.save(path, journal, &mut saved, &rng, at, &archive, &state, true)?;
            }
        }
        // Everything is in the snapshot: the journal goes, and the lock with it.
        if let Some(journal) = journal.take() {
            journal.finish();
        }
        let mut front = archive.front(self.problem.objectives());
        label_front(self.problem, &mut front);
        for o in &mut self.observers {
            o.on_event(&Event::Finished {
                generation,
                evaluations: archive.len(),
                front_size: front.len(),
                reason: stop_reason,
            })?;
        }
        Ok(SearchResult {
            archive,
            front,
            state,
            generations: generation,
            stop_reason,
            rng,
            elapsed,
            seed,
            resumed,
        })
    }

    fn limit_reached(
        &self,
        generation: usize,
        evaluations: usize,
        elapsed: Duration,
    ) -> Option<StopReason> {
        if self
            .budget
            .max_evaluations
            .is_some_and(|m| evaluations >= m)
        {
            Some(StopReason::Evaluations)
        } else if self.budget.max_generations.is_some_and(|m| generation >= m) {
            Some(StopReason::Generations)
        } else if self.budget.max_time.is_some_and(|m| elapsed >= m) {
            Some(StopReason::Time)
        } else {
            None
        }
    }
}

/// Sets every unlabelled point's label (and its named genes) from the problem.
fn label_front(problem: &dyn Problem, front: &mut ParetoFront) {
    let dimensions = problem.space().dimensions();
    for p in &mut front.points {
        if p.label.is_none() {
            p.label = problem.label(&p.genotype);
        }
        if p.genes.is_empty() {
            p.genes = crate::pareto::named_genes(dimensions, &p.genotype);
        }
    }
}

/// Checks that a checkpointed population is non-empty, at most `max` long, and made of valid
/// genotypes that the archive holds (for [`Strategy::check_state`] implementations).
pub(crate) fn check_population<'g>(
    members: impl ExactSizeIterator<Item = &'g Genotype>,
    max: usize,
    problem: &dyn Problem,
    archive: &Archive,
) -> Result<()> {
    let n = members.len();
    if n == 0 {
        return Err(SearchError::invalid("population", "is empty"));
    }
    if n > max {
        return Err(SearchError::invalid(
            "population",
            format!("has {n} members, the configuration allows {max}"),
        ));
    }
    for (i, g) in members.enumerate() {
        problem.space().validate(g)?;
        if !archive.contains(g) {
            return Err(SearchError::invalid(
                format!("population[{i}]"),
                format!("`{g}` is not in the archive"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
