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

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dynas_space::{DynasRng, Genotype, seeded_rng};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SearchError};
use crate::observer::{Control, Event, Observer};
use crate::pareto::ParetoFront;
use crate::problem::{Objective, Problem};

mod context;
mod journal;
pub use context::{Archive, Budget, Context, Record, Unseen};
use journal::Journal;

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

const FORMAT: &str = "dynas-search-checkpoint";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct CheckpointFile<T> {
    format: String,
    version: u32,
    strategy: String,
    strategy_config: serde_json::Value,
    problem: String,
    /// [`Problem::fingerprint`]; absent in checkpoints of earlier versions.
    #[serde(default)]
    problem_fingerprint: Option<String>,
    objectives: Vec<Objective>,
    dimensions: Vec<usize>,
    seed: u64,
    rng: DynasRng,
    generation: usize,
    elapsed_s: f64,
    /// Generations in a row without a new evaluation (see [`StopReason::Stalled`]).
    #[serde(default)]
    stalled: usize,
    /// The id of the journal that continues this snapshot (see `executor/journal.rs`); absent
    /// in checkpoints of earlier versions.
    #[serde(default)]
    journal: Option<String>,
    archive: Vec<Record>,
    state: T,
}

struct Resumed<T> {
    path: PathBuf,
    seed: u64,
    rng: DynasRng,
    generation: usize,
    stalled: usize,
    elapsed: Duration,
    archive: Archive,
    state: T,
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

    fn load(&self, path: &Path) -> Result<Resumed<S::State>> {
        let text = std::fs::read_to_string(path).map_err(|e| SearchError::io(path, e))?;
        // The state is read last, once the header says whose it is.
        let mut file: CheckpointFile<serde_json::Value> =
            serde_json::from_str(&text).map_err(|e| SearchError::Parse {
                path: path.to_path_buf(),
                line: Some(e.line() as u64),
                column: None,
                reason: e.to_string(),
            })?;
        let mismatch = |field: &str, reason: String| SearchError::CheckpointMismatch {
            path: path.to_path_buf(),
            field: field.to_string(),
            reason,
        };
        if file.format != FORMAT || file.version != VERSION {
            return Err(mismatch(
                "format",
                format!(
                    "{} v{} (expected {FORMAT} v{VERSION})",
                    file.format, file.version
                ),
            ));
        }
        if file.strategy != self.strategy.name() {
            return Err(mismatch(
                "strategy",
                format!(
                    "`{}`, this search runs `{}`",
                    file.strategy,
                    self.strategy.name()
                ),
            ));
        }
        if file.strategy_config != self.strategy.config() {
            return Err(mismatch(
                "strategy_config",
                format!("{} vs {}", file.strategy_config, self.strategy.config()),
            ));
        }
        if file.problem != self.problem.name()
            || file.objectives != self.problem.objectives()
            || file.dimensions != dims(self.problem)
        {
            return Err(mismatch(
                "problem",
                format!(
                    "saved for `{}` with objectives {:?}",
                    file.problem,
                    file.objectives.iter().map(|o| &o.name).collect::<Vec<_>>()
                ),
            ));
        }
        if let (Some(saved), Some(ours)) = (&file.problem_fingerprint, self.problem.fingerprint())
            && *saved != ours
        {
            return Err(mismatch(
                "problem_fingerprint",
                match fingerprint_difference(saved, &ours) {
                    Some(parts) => format!(
                        "{parts} differ (same problem `{}`; saved: {saved}; this run: {ours})",
                        file.problem
                    ),
                    None => format!(
                        "saved for data {saved}, this problem's data is {ours} (same name `{}`, \
                         other content)",
                        file.problem
                    ),
                },
            ));
        }
        // The generations checkpointed since the snapshot.
        let journal_path = journal::journal_path(path);
        for entry in journal::read(&journal_path, file.journal.as_deref())? {
            if entry.generation <= file.generation {
                continue;
            }
            if entry.start != file.archive.len() {
                return Err(mismatch(
                    "journal",
                    format!(
                        "`{}`: generation {} continues an archive of {} records, the checkpoint \
                         has {}",
                        journal_path.display(),
                        entry.generation,
                        entry.start,
                        file.archive.len()
                    ),
                ));
            }
            file.archive.extend(entry.records);
            file.generation = entry.generation;
            file.stalled = entry.stalled;
            file.elapsed_s = entry.elapsed_s;
            file.rng = entry.rng;
            file.state = entry.state;
        }
        let n_objectives = self.problem.objectives().len();
        let mut seen: HashSet<&Genotype> = HashSet::with_capacity(file.archive.len());
        for (i, r) in file.archive.iter().enumerate() {
            let field = format!("archive[{i}]");
            self.problem
                .space()
                .validate(&r.genotype)
                .map_err(|e| mismatch(&field, e.to_string()))?;
            if r.evaluation.values.len() != n_objectives {
                return Err(mismatch(
                    &field,
                    format!(
                        "{} values for {n_objectives} objectives",
                        r.evaluation.values.len()
                    ),
                ));
            }
            if r.evaluation.violation.is_nan() {
                return Err(mismatch(&field, "the violation is NaN".into()));
            }
            if !seen.insert(&r.genotype) {
                return Err(mismatch(
                    &field,
                    format!("`{}` is recorded twice", r.genotype),
                ));
            }
        }
        if file.generation == 0 || file.generation == usize::MAX {
            return Err(mismatch(
                "generation",
                format!("{} is not a count of finished generations", file.generation),
            ));
        }
        if file.stalled > file.generation {
            return Err(mismatch(
                "stalled",
                format!(
                    "{} stalled of {} generations",
                    file.stalled, file.generation
                ),
            ));
        }
        let elapsed = Duration::try_from_secs_f64(file.elapsed_s)
            .map_err(|e| mismatch("elapsed_s", format!("{}: {e}", file.elapsed_s)))?;
        if is_degenerate(&file.rng) {
            return Err(mismatch(
                "rng",
                "the generator state is all zeros and would only ever produce 0".into(),
            ));
        }
        let archive = Archive::from_records(file.archive);
        let state: S::State =
            serde_json::from_value(file.state).map_err(|e| SearchError::Parse {
                path: path.to_path_buf(),
                line: None,
                column: Some("state".into()),
                reason: e.to_string(),
            })?;
        self.strategy
            .check_state(&state, self.problem, &archive)
            .map_err(|e| mismatch("state", e.to_string()))?;
        Ok(Resumed {
            path: path.to_path_buf(),
            seed: file.seed,
            rng: file.rng,
            generation: file.generation,
            stalled: file.stalled,
            elapsed,
            archive,
            state,
        })
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

    /// Checkpoints one generation: a line appended to the journal, or a full snapshot (the
    /// first of this run, when `full`, or when the journal outgrew the snapshot).
    #[allow(clippy::too_many_arguments)]
    fn save(
        &self,
        path: &Path,
        journal: &mut Journal,
        saved: &mut Saved,
        rng: &DynasRng,
        at: Progress,
        archive: &Archive,
        state: &S::State,
        full: bool,
    ) -> Result<()> {
        if full || !saved.snapshot || journal.bytes > saved.snapshot_bytes.max(MIN_COMPACTION) {
            let id = journal::new_id();
            saved.snapshot_bytes = self.write_checkpoint(path, rng, at, archive, state, &id)?;
            journal.reset(&id)?;
            saved.snapshot = true;
        } else {
            journal.append(&journal::EntryRef {
                generation: at.generation,
                stalled: at.stalled,
                elapsed_s: at.elapsed.as_secs_f64(),
                rng,
                start: saved.archived,
                records: &archive.records[saved.archived..],
                state,
            })?;
        }
        saved.archived = archive.len();
        Ok(())
    }

    /// Writes a full snapshot whose journal is `journal_id`; returns its size in bytes.
    fn write_checkpoint(
        &self,
        path: &Path,
        rng: &DynasRng,
        at: Progress,
        archive: &Archive,
        state: &S::State,
        journal_id: &str,
    ) -> Result<u64> {
        let file = CheckpointFile {
            format: FORMAT.to_string(),
            version: VERSION,
            strategy: self.strategy.name().to_string(),
            strategy_config: self.strategy.config(),
            problem: self.problem.name().to_string(),
            problem_fingerprint: self.problem.fingerprint(),
            objectives: self.problem.objectives().to_vec(),
            dimensions: dims(self.problem),
            seed: at.seed,
            rng: rng.clone(),
            generation: at.generation,
            elapsed_s: at.elapsed.as_secs_f64(),
            stalled: at.stalled,
            journal: Some(journal_id.to_string()),
            archive: archive.records.clone(),
            state: state.clone(),
        };
        let text =
            serde_json::to_string(&file).map_err(|e| SearchError::parse(path, e.to_string()))?;
        crate::write_atomically(path, text.as_bytes())?;
        Ok(text.len() as u64)
    }
}

/// What this run has checkpointed so far.
#[derive(Default)]
struct Saved {
    /// Whether this run wrote a snapshot (its first checkpoint always is one).
    snapshot: bool,
    /// The last snapshot's size.
    snapshot_bytes: u64,
    /// Archive records in the snapshot and the journal.
    archived: usize,
}

/// The journal is compacted into a snapshot once it is larger than the snapshot and than this.
const MIN_COMPACTION: u64 = 4 << 20;

/// Where a search stands, as saved in a checkpoint.
#[derive(Clone, Copy)]
struct Progress {
    seed: u64,
    generation: usize,
    stalled: usize,
    elapsed: Duration,
}

/// The strategy name and configuration the checkpoint at `path` was started with (`None` when
/// there is no such file), for a caller whose configuration follows its budget (e.g. an initial
/// design sized from it): a search extended to a larger budget continues with the saved
/// configuration, since the budget is not part of a search's identity.
pub fn checkpoint_strategy(path: &Path) -> Result<Option<(String, serde_json::Value)>> {
    #[derive(Deserialize)]
    struct Head {
        strategy: String,
        strategy_config: serde_json::Value,
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SearchError::io(path, e)),
    };
    let head: Head = serde_json::from_str(&text).map_err(|e| SearchError::Parse {
        path: path.to_path_buf(),
        line: Some(e.line() as u64),
        column: None,
        reason: e.to_string(),
    })?;
    Ok(Some((head.strategy, head.strategy_config)))
}

/// The parts that differ between two fingerprints made of `key=value` parts separated by `; `
/// (e.g. `supernet=...; data=...`), named by key; `None` when they are not of that form or have
/// other keys.
fn fingerprint_difference(saved: &str, ours: &str) -> Option<String> {
    let parts = |f: &str| -> Option<Vec<(String, String)>> {
        f.split("; ")
            .map(|p| {
                p.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.to_string()))
            })
            .collect()
    };
    let (a, b) = (parts(saved)?, parts(ours)?);
    if a.len() != b.len() || a.iter().zip(&b).any(|(x, y)| x.0 != y.0) {
        return None;
    }
    let differing: Vec<String> = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x.1 != y.1)
        .map(|(x, _)| format!("`{}`", x.0))
        .collect();
    (!differing.is_empty()).then(|| differing.join(", "))
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

/// Whether a xoshiro state is all zeros (a fixed point that outputs 0 forever).
fn is_degenerate(rng: &DynasRng) -> bool {
    use rand::RngCore as _;
    let mut probe = rng.clone();
    (0..4).all(|_| probe.next_u64() == 0)
}

fn dims(problem: &dyn Problem) -> Vec<usize> {
    problem
        .space()
        .dimensions()
        .iter()
        .map(|d| d.len())
        .collect()
}

#[cfg(test)]
mod tests;
