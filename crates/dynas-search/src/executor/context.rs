//! Budgets, the archive of evaluated architectures, and the context a strategy works in.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use dynas_space::{DynasRng, Genotype};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SearchError};
use crate::observer::{Control, Event, Observer};
use crate::pareto::ParetoFront;
use crate::problem::{Evaluation, Objective, Problem};

/// When to stop. At least one limit must be set; the search stops at the first one reached.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Budget {
    pub(super) max_evaluations: Option<usize>,
    pub(super) max_generations: Option<usize>,
    pub(super) max_time: Option<Duration>,
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

    pub(super) fn check(&self) -> Result<()> {
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
    pub(super) records: Vec<Record>,
    pub(super) index: HashMap<Genotype, usize>,
}

impl Archive {
    pub(super) fn from_records(records: Vec<Record>) -> Self {
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

    /// The Pareto front of everything evaluated (unlabelled; see [`Executor::run`](crate::Executor::run) for the
    /// labelled front of a search).
    pub fn front(&self, objectives: &[Objective]) -> ParetoFront {
        ParetoFront::from_evaluations(
            objectives,
            self.records.iter().map(|r| (&r.genotype, &r.evaluation)),
        )
    }
}

/// Which genotypes count as new when a strategy proposes candidates: by default those neither
/// proposed before (through this value) nor in the archive. Used by [`Context::draw_unseen`]
/// and to filter offspring.
#[derive(Clone, Debug, Default)]
pub struct Unseen {
    /// Genotypes admitted (or marked) so far; `None` admits everything.
    seen: Option<HashSet<Genotype>>,
    /// Whether archived genotypes are refused.
    archive: bool,
}

impl Unseen {
    /// New genotypes: not admitted before, not in the archive.
    pub fn new() -> Self {
        Self {
            seen: Some(HashSet::new()),
            archive: true,
        }
    }

    /// Distinct genotypes, archived ones included.
    pub fn distinct() -> Self {
        Self {
            seen: Some(HashSet::new()),
            archive: false,
        }
    }

    /// Every genotype (duplicates kept).
    pub fn any() -> Self {
        Self {
            seen: None,
            archive: false,
        }
    }

    /// Also refuses `genotypes` (e.g. the current population).
    pub fn with_seen<'g>(mut self, genotypes: impl IntoIterator<Item = &'g Genotype>) -> Self {
        if let Some(seen) = &mut self.seen {
            seen.extend(genotypes.into_iter().cloned());
        }
        self
    }

    /// Whether `genotype` is new against this and `archive`; a new one is remembered.
    pub fn admit(&mut self, genotype: &Genotype, archive: &Archive) -> bool {
        if self.archive && archive.contains(genotype) {
            return false;
        }
        match &mut self.seen {
            Some(seen) => seen.insert(genotype.clone()),
            None => true,
        }
    }
}

/// What a strategy sees during a step: the problem, the RNG and budget-aware evaluation.
pub struct Context<'a> {
    pub(super) problem: &'a dyn Problem,
    pub(super) rng: &'a mut DynasRng,
    pub(super) archive: &'a mut Archive,
    pub(super) max_evaluations: Option<usize>,
    pub(super) observers: &'a mut [Box<dyn Observer>],
    pub(super) generation: usize,
    pub(super) stop: Option<String>,
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

    /// Draws up to `n` genotypes uniformly from the space that `unseen` admits (see
    /// [`Unseen`]), with at most `max_draws` draws in all: fewer come back when the space (or
    /// what is left of it) is too small.
    pub fn draw_unseen(
        &mut self,
        n: usize,
        max_draws: usize,
        unseen: &mut Unseen,
    ) -> Vec<Genotype> {
        let space = self.problem.space();
        let mut out = Vec::with_capacity(n.min(max_draws));
        let mut draws = 0;
        while out.len() < n && draws < max_draws {
            draws += 1;
            let g = space.sample(self.rng);
            if unseen.admit(&g, self.archive) {
                out.push(g);
            }
        }
        out
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
            let mut evaluation = r?;
            // `-0.0` (an empty float sum) would be written as `"violation": -0.0`.
            evaluation.violation += 0.0;
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
