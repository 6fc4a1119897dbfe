//! Regularized (aging) evolution (Real et al., 2019): tournament selection from a FIFO
//! population, the winner's mutated child replaces the oldest member. With several objectives
//! the tournament winner is a member of the sample's first non-dominated front (ties at
//! random), feasible members first.

use std::collections::VecDeque;

use dynas_space::{Genotype, MutationKind};
use rand::Rng;
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SearchError};
use crate::executor::{Archive, Context, Step, Strategy, Unseen, check_population};
use crate::pareto::non_dominated;
use crate::problem::Problem;

/// Validated aging-evolution hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgingConfig {
    /// Population (queue) size.
    pub population: usize,
    /// Tournament sample size (at most the population).
    pub sample: usize,
    /// Children per step (a step is one checkpointable unit).
    pub children_per_step: usize,
    /// How the single mutated gene changes.
    pub mutation: MutationKind,
    /// Redraws of a child that was already evaluated before it is accepted anyway.
    pub max_redraws: usize,
}

impl Default for AgingConfig {
    fn default() -> Self {
        Self {
            population: 50,
            sample: 10,
            children_per_step: 10,
            mutation: MutationKind::ChangeValue,
            max_redraws: 50,
        }
    }
}

/// Regularized evolution.
#[derive(Clone, Debug)]
pub struct AgingEvolution {
    config: AgingConfig,
}

/// The aging queue, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgingState {
    /// Members, oldest first.
    pub queue: VecDeque<Genotype>,
}

impl AgingEvolution {
    /// Aging evolution with validated hyper-parameters.
    pub fn new(config: AgingConfig) -> Result<Self> {
        if config.population < 2 {
            return Err(SearchError::invalid("population", "must be at least 2"));
        }
        if config.sample == 0 || config.sample > config.population {
            return Err(SearchError::invalid(
                "sample",
                format!("must be in 1..={}", config.population),
            ));
        }
        if config.children_per_step == 0 {
            return Err(SearchError::invalid(
                "children per step",
                "must be at least 1",
            ));
        }
        Ok(Self { config })
    }

    fn winner(&self, queue: &VecDeque<Genotype>, ctx: &mut Context<'_>) -> Option<Genotype> {
        let k = self.config.sample.min(queue.len());
        if k == 0 {
            return None;
        }
        let picked = sample(ctx.rng(), queue.len(), k).into_vec();
        let objectives = ctx.problem().objectives().to_vec();
        let evals: Vec<_> = picked
            .iter()
            .filter_map(|&i| ctx.archive().get(&queue[i]).map(|e| (i, e.clone())))
            .collect();
        let feasible: Vec<&(usize, _)> = evals.iter().filter(|(_, e)| e.is_feasible()).collect();
        let candidates: Vec<usize> = if feasible.is_empty() {
            let best = evals
                .iter()
                .map(|(_, e)| e.violation)
                .fold(f64::INFINITY, f64::min);
            evals
                .iter()
                .filter(|(_, e)| e.violation == best || best.is_infinite())
                .map(|(i, _)| *i)
                .collect()
        } else {
            let f: Vec<Vec<f64>> = feasible
                .iter()
                .map(|(_, e)| e.minimised(&objectives))
                .collect();
            non_dominated(&f)
                .into_iter()
                .map(|j| feasible[j].0)
                .collect()
        };
        if candidates.is_empty() {
            return Some(queue[picked[0]].clone());
        }
        let c = candidates[ctx.rng().random_range(0..candidates.len())];
        Some(queue[c].clone())
    }

    fn mutate(&self, parent: &Genotype, ctx: &mut Context<'_>) -> Genotype {
        let space = ctx.problem().space();
        let dims = space.dimensions();
        let mutable: Vec<usize> = (0..dims.len()).filter(|&i| dims[i].len() > 1).collect();
        let mut child = parent.clone();
        if mutable.is_empty() {
            return child;
        }
        let pos = mutable[ctx.rng().random_range(0..mutable.len())];
        let n = dims[pos].len();
        let current = child.genes()[pos];
        child.genes_mut()[pos] = match self.config.mutation {
            MutationKind::Resample => ctx.rng().random_range(0..n),
            MutationKind::ChangeValue => {
                let d = ctx.rng().random_range(0..n - 1);
                if d >= current { d + 1 } else { d }
            }
        };
        child
    }
}

impl Strategy for AgingEvolution {
    type State = AgingState;

    fn name(&self) -> &str {
        "aging"
    }

    type Config = AgingConfig;

    fn params(&self) -> &Self::Config {
        &self.config
    }

    fn init(&self, ctx: &mut Context<'_>) -> Result<AgingState> {
        let n = self.config.population;
        let genotypes = ctx.draw_unseen(n, n.saturating_mul(100), &mut Unseen::distinct());
        let evaluated = ctx.evaluate(&genotypes)?;
        let queue = genotypes
            .into_iter()
            .zip(evaluated)
            .filter_map(|(g, e)| e.map(|_| g))
            .collect();
        Ok(AgingState { queue })
    }

    fn step(&self, state: &mut AgingState, ctx: &mut Context<'_>) -> Result<Step> {
        if state.queue.is_empty() {
            return Ok(Step::Done);
        }
        let mut children = Vec::with_capacity(self.config.children_per_step);
        for _ in 0..self.config.children_per_step {
            let mut child = None;
            for _ in 0..=self.config.max_redraws {
                let Some(parent) = self.winner(&state.queue, ctx) else {
                    break;
                };
                let c = self.mutate(&parent, ctx);
                let known = ctx.archive().contains(&c) || children.contains(&c);
                child = Some(c);
                if !known {
                    break;
                }
            }
            if let Some(c) = child {
                children.push(c);
            }
        }
        let evaluated = ctx.evaluate(&children)?;
        for (c, e) in children.into_iter().zip(evaluated) {
            if e.is_some() {
                state.queue.push_back(c);
                if state.queue.len() > self.config.population {
                    state.queue.pop_front();
                }
            }
        }
        Ok(Step::Continue)
    }

    fn check_state(
        &self,
        state: &AgingState,
        problem: &dyn Problem,
        archive: &Archive,
    ) -> Result<()> {
        check_population(state.queue.iter(), self.config.population, problem, archive)
    }
}
