//! The [`Executor`] owns the search loop: budgets, the seeded RNG, the archive of every
//! distinct architecture evaluated, observers and checkpoint/resume.
//!
//! A strategy ([`Strategy`]) only says *how* to propose candidates; it keeps all of its
//! memory in a serialisable state. The executor checkpoints that state, the RNG and the
//! archive after every step (atomically: write then rename), so a search killed at any point
//! and resumed from its checkpoint gives exactly the result of an uninterrupted run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dynas_space::{DynasRng, Genotype, seeded_rng};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SearchError};
use crate::observer::{Control, Event, Observer};
use crate::pareto::ParetoFront;
use crate::problem::{Evaluation, Objective, Problem};

/// When to stop. At least one limit must be set; the search stops at the first one reached.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Budget {
    max_evaluations: Option<usize>,
    max_generations: Option<usize>,
    max_time: Option<Duration>,
}

impl Budget {
    /// At most `n` distinct architectures evaluated (re-visits are free).
    pub fn evaluations(n: usize) -> Result<Self> {
        Self::default().and_evaluations(n)
    }

    /// At most `n` strategy steps (generations; the initial population is generation 1).
    pub fn generations(n: usize) -> Result<Self> {
        Self::default().and_generations(n)
    }

    /// At most this much wall-clock time (checked between steps).
    pub fn time(limit: Duration) -> Result<Self> {
        Self::default().and_time(limit)
    }

    /// Adds an evaluation limit.
    pub fn and_evaluations(mut self, n: usize) -> Result<Self> {
        if n == 0 {
            return Err(SearchError::invalid(
                "max evaluations",
                "must be at least 1",
            ));
        }
        self.max_evaluations = Some(n);
        Ok(self)
    }

    /// Adds a generation limit.
    pub fn and_generations(mut self, n: usize) -> Result<Self> {
        if n == 0 {
            return Err(SearchError::invalid(
                "max generations",
                "must be at least 1",
            ));
        }
        self.max_generations = Some(n);
        Ok(self)
    }

    /// Adds a time limit.
    pub fn and_time(mut self, limit: Duration) -> Result<Self> {
        if limit.is_zero() {
            return Err(SearchError::invalid("max time", "must be positive"));
        }
        self.max_time = Some(limit);
        Ok(self)
    }

    /// The evaluation limit.
    pub fn max_evaluations(&self) -> Option<usize> {
        self.max_evaluations
    }

    /// The generation limit.
    pub fn max_generations(&self) -> Option<usize> {
        self.max_generations
    }

    /// The time limit.
    pub fn max_time(&self) -> Option<Duration> {
        self.max_time
    }

    fn check(&self) -> Result<()> {
        if self.max_evaluations.is_none()
            && self.max_generations.is_none()
            && self.max_time.is_none()
        {
            return Err(SearchError::invalid(
                "budget",
                "set at least one of evaluations, generations or time",
            ));
        }
        Ok(())
    }
}

/// One evaluated architecture of the archive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The genotype.
    pub genotype: Genotype,
    /// Its evaluation.
    pub evaluation: Evaluation,
}

/// Every distinct architecture evaluated, in evaluation order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Archive {
    records: Vec<Record>,
    index: HashMap<Genotype, usize>,
}

impl Archive {
    fn from_records(records: Vec<Record>) -> Self {
        let index = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.genotype.clone(), i))
            .collect();
        Self { records, index }
    }

    /// The records, in evaluation order.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Number of distinct architectures evaluated.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing was evaluated.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Whether `genotype` was evaluated.
    pub fn contains(&self, genotype: &Genotype) -> bool {
        self.index.contains_key(genotype)
    }

    /// The evaluation of `genotype`, if it was evaluated.
    pub fn get(&self, genotype: &Genotype) -> Option<&Evaluation> {
        self.index
            .get(genotype)
            .map(|&i| &self.records[i].evaluation)
    }

    /// The Pareto front of everything evaluated.
    pub fn front(&self, objectives: &[Objective]) -> ParetoFront {
        ParetoFront::from_evaluations(
            objectives,
            self.records.iter().map(|r| (&r.genotype, &r.evaluation)),
        )
    }
}

/// What a strategy sees during a step: the problem, the RNG and budget-aware evaluation.
pub struct Context<'a> {
    problem: &'a dyn Problem,
    rng: &'a mut DynasRng,
    archive: &'a mut Archive,
    max_evaluations: Option<usize>,
    observers: &'a mut [Box<dyn Observer>],
    generation: usize,
    stop: Option<String>,
}

impl<'a> Context<'a> {
    /// The problem.
    pub fn problem(&self) -> &'a dyn Problem {
        self.problem
    }

    /// The search's random number generator (checkpointed).
    pub fn rng(&mut self) -> &mut DynasRng {
        self.rng
    }

    /// Every architecture evaluated so far.
    pub fn archive(&self) -> &Archive {
        self.archive
    }

    /// The current generation (1 for the initial population).
    pub fn generation(&self) -> usize {
        self.generation
    }

    /// How many new architectures the budget still allows (`usize::MAX` if unlimited).
    pub fn remaining_evaluations(&self) -> usize {
        self.max_evaluations
            .map_or(usize::MAX, |m| m.saturating_sub(self.archive.len()))
    }

    /// Whether the evaluation budget is spent.
    pub fn exhausted(&self) -> bool {
        self.remaining_evaluations() == 0
    }

    /// Evaluates `genotypes` (new ones in parallel via [`Problem::evaluate_batch`]; known ones
    /// from the archive, for free). New genotypes past the evaluation budget are not evaluated
    /// and come back as `None`; results are in input order.
    pub fn evaluate(&mut self, genotypes: &[Genotype]) -> Result<Vec<Option<Evaluation>>> {
        let mut remaining = self.remaining_evaluations();
        let mut fresh: Vec<Genotype> = Vec::new();
        let mut fresh_set = std::collections::HashSet::new();
        for g in genotypes {
            if remaining == 0 {
                break;
            }
            if !self.archive.contains(g) && fresh_set.insert(g) {
                fresh.push(g.clone());
                remaining -= 1;
            }
        }
        let results = self.problem.evaluate_batch(&fresh);
        for (g, r) in fresh.into_iter().zip(results) {
            let evaluation = r?;
            if evaluation.values.len() != self.problem.objectives().len() {
                return Err(SearchError::Evaluation {
                    genotype: g.to_string(),
                    reason: format!(
                        "{} values for {} objectives",
                        evaluation.values.len(),
                        self.problem.objectives().len()
                    ),
                });
            }
            let index = self.archive.len();
            self.archive.index.insert(g.clone(), index);
            self.archive.records.push(Record {
                genotype: g,
                evaluation,
            });
            let record = &self.archive.records[index];
            for o in self.observers.iter_mut() {
                if let Control::Stop(why) = o.on_event(&Event::Evaluated {
                    index,
                    genotype: &record.genotype,
                    evaluation: &record.evaluation,
                })? {
                    self.stop.get_or_insert(why);
                }
            }
            if let Some(why) = &self.stop {
                return Err(SearchError::Interrupted(why.clone()));
            }
        }
        Ok(genotypes
            .iter()
            .map(|g| self.archive.get(g).cloned())
            .collect())
    }
}

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

    /// The hyper-parameters as JSON, stored in checkpoints and checked on resume.
    fn config(&self) -> serde_json::Value;

    /// Builds and evaluates the initial population (generation 1).
    fn init(&self, ctx: &mut Context<'_>) -> Result<Self::State>;

    /// One generation.
    fn step(&self, state: &mut Self::State, ctx: &mut Context<'_>) -> Result<Step>;
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
    objectives: Vec<Objective>,
    dimensions: Vec<usize>,
    seed: u64,
    rng: DynasRng,
    generation: usize,
    elapsed_s: f64,
    archive: Vec<Record>,
    state: T,
}

struct Resumed<T> {
    rng: DynasRng,
    generation: usize,
    elapsed: Duration,
    archive: Archive,
    state: T,
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
    seed: u64,
    observers: Vec<Box<dyn Observer>>,
    checkpoint: Option<(PathBuf, usize)>,
    resume: Option<Resumed<S::State>>,
}

impl<'p, S: Strategy> Executor<'p, S> {
    /// A search of `problem` by `strategy`, seed 0, no observers, no checkpoint.
    pub fn new(problem: &'p dyn Problem, strategy: S, budget: Budget) -> Self {
        Self {
            problem,
            strategy,
            budget,
            seed: 0,
            observers: Vec::new(),
            checkpoint: None,
            resume: None,
        }
    }

    /// Sets the seed of the search's RNG (ignored when resuming: the checkpointed RNG is used).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
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

    /// Writes a checkpoint to `path` after every `every` generations and at the end.
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

    /// Continues the search saved in `path` (which must come from the same strategy
    /// configuration and problem).
    pub fn resume_from(mut self, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| SearchError::io(path, e))?;
        let file: CheckpointFile<S::State> =
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
        for (i, r) in file.archive.iter().enumerate() {
            self.problem
                .space()
                .validate(&r.genotype)
                .map_err(|e| mismatch(&format!("archive[{i}]"), e.to_string()))?;
        }
        self.seed = file.seed;
        self.resume = Some(Resumed {
            rng: file.rng,
            generation: file.generation,
            elapsed: Duration::from_secs_f64(file.elapsed_s.max(0.0)),
            archive: Archive::from_records(file.archive),
            state: file.state,
        });
        Ok(self)
    }

    /// Runs until the budget is spent or the strategy is done.
    pub fn run(mut self) -> Result<SearchResult<S::State>> {
        self.budget.check()?;
        let started = Instant::now();
        let (mut rng, mut generation, previous, mut archive, mut state) = match self.resume.take() {
            Some(r) => (r.rng, r.generation, r.elapsed, r.archive, Some(r.state)),
            None => (
                seeded_rng(self.seed),
                0,
                Duration::ZERO,
                Archive::default(),
                None,
            ),
        };
        let resumed = state.is_some();
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
                    state = Some(self.strategy.init(&mut ctx)?);
                    Step::Continue
                }
                Some(s) => self.strategy.step(s, &mut ctx)?,
            };
            generation += 1;
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
                self.write_checkpoint(path, &rng, generation, elapsed, &archive, s)?;
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
        if let Some((path, _)) = &self.checkpoint {
            self.write_checkpoint(path, &rng, generation, elapsed, &archive, &state)?;
        }
        let front = archive.front(self.problem.objectives());
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

    fn write_checkpoint(
        &self,
        path: &Path,
        rng: &DynasRng,
        generation: usize,
        elapsed: Duration,
        archive: &Archive,
        state: &S::State,
    ) -> Result<()> {
        let file = CheckpointFile {
            format: FORMAT.to_string(),
            version: VERSION,
            strategy: self.strategy.name().to_string(),
            strategy_config: self.strategy.config(),
            problem: self.problem.name().to_string(),
            objectives: self.problem.objectives().to_vec(),
            dimensions: dims(self.problem),
            seed: self.seed,
            rng: rng.clone(),
            generation,
            elapsed_s: elapsed.as_secs_f64(),
            archive: archive.records.clone(),
            state: state.clone(),
        };
        let text =
            serde_json::to_string(&file).map_err(|e| SearchError::parse(path, e.to_string()))?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, text).map_err(|e| SearchError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| SearchError::io(path, e))
    }
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
mod tests {
    use super::*;
    use crate::random::RandomSearch;
    use crate::table::TableSpace;
    use dynas_space::{Dimension, SearchSpace};

    /// Sum of genes (minimised); genotypes with first gene 3 fail to evaluate.
    struct Toy {
        space: TableSpace,
        objectives: Vec<Objective>,
    }

    impl Toy {
        fn new() -> Self {
            let dims = (0..3)
                .map(|i| Dimension::from_values(format!("g{i}"), &[0, 1, 2, 3]).unwrap())
                .collect();
            Self {
                space: TableSpace::new("toy", dims),
                objectives: vec![Objective::minimize("sum")],
            }
        }
    }

    impl Problem for Toy {
        fn name(&self) -> &str {
            "toy"
        }
        fn space(&self) -> &dyn SearchSpace {
            &self.space
        }
        fn objectives(&self) -> &[Objective] {
            &self.objectives
        }
        fn evaluate(&self, g: &Genotype) -> Result<Evaluation> {
            if g.genes()[0] == 3 {
                return Err(SearchError::Evaluation {
                    genotype: g.to_string(),
                    reason: "simulated training crash".into(),
                });
            }
            Ok(Evaluation::feasible(vec![
                g.genes().iter().sum::<usize>() as f64
            ]))
        }
    }

    #[test]
    fn budgets_are_validated_and_combined() {
        assert!(Budget::evaluations(0).is_err());
        assert!(Budget::generations(0).is_err());
        assert!(Budget::time(Duration::ZERO).is_err());
        assert!(Budget::default().check().is_err());
        let b = Budget::generations(3)
            .unwrap()
            .and_evaluations(7)
            .unwrap()
            .and_time(Duration::from_secs(60))
            .unwrap();
        assert_eq!(
            (b.max_generations(), b.max_evaluations()),
            (Some(3), Some(7))
        );
    }

    #[test]
    fn space_exhaustion_and_evaluation_errors_are_reported() {
        // The 64-point space contains genotypes that fail: the search ends with that typed error.
        let toy = Toy::new();
        let err = Executor::new(
            &toy,
            RandomSearch::new(8).unwrap(),
            Budget::generations(100).unwrap(),
        )
        .run()
        .unwrap_err();
        assert!(
            err.to_string().contains("simulated training crash"),
            "{err}"
        );

        let ok = Toy {
            space: TableSpace::new(
                "toy2",
                (0..2)
                    .map(|i| Dimension::from_values(format!("g{i}"), &[0, 1, 2]).unwrap())
                    .collect(),
            ),
            objectives: vec![Objective::minimize("sum")],
        };
        let r = Executor::new(
            &ok,
            RandomSearch::new(4).unwrap(),
            Budget::time(Duration::from_secs(60)).unwrap(),
        )
        .run()
        .unwrap();
        assert_eq!(r.stop_reason, StopReason::StrategyDone);
        assert_eq!(r.archive.len(), 9);
        assert_eq!(r.front.points[0].values, vec![0.0]);
    }
}
