//! Once-for-all's constrained evolutionary search (Cai et al., 2020, `EvolutionFinder`):
//! maximise the first objective of the problem under a hard cost limit checked by
//! [`crate::Problem::precheck`]. Each generation keeps the best `parent_ratio` of the population as
//! parents and adds `population` children: `mutation_ratio` of them mutations of a random parent
//! (each gene resampled with `mutation_probability`), the rest uniform crossovers of two random
//! parents; every child is redrawn until it passes the precheck.

use dynas_space::{Genotype, Mutation, MutationKind};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SearchError};
use crate::executor::{Archive, Context, Step, Strategy, check_population};
use crate::problem::Problem;

/// Validated hyper-parameters (defaults from the once-for-all code).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OfaEvolutionConfig {
    /// Children per generation (and initial population); 100 in OFA.
    pub population: usize,
    /// Fraction kept as parents; 0.25 in OFA.
    pub parent_ratio: f64,
    /// Fraction of children made by mutation; 0.5 in OFA.
    pub mutation_ratio: f64,
    /// Per-gene resampling probability of a mutation; 0.1 in OFA.
    pub mutation_probability: f64,
    /// Redraws of one child before giving up with [`SearchError::Stuck`].
    pub max_redraws: usize,
}

impl Default for OfaEvolutionConfig {
    fn default() -> Self {
        Self {
            population: 100,
            parent_ratio: 0.25,
            mutation_ratio: 0.5,
            mutation_probability: 0.1,
            max_redraws: 10_000,
        }
    }
}

/// OFA's constrained evolution.
#[derive(Clone, Debug)]
pub struct OfaEvolution {
    config: OfaEvolutionConfig,
    mutation: Mutation,
}

/// The population, best first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OfaState {
    /// Members, best first (feasible by first objective, then infeasible by violation).
    pub population: Vec<Genotype>,
}

impl OfaEvolution {
    /// OFA evolution with validated hyper-parameters.
    pub fn new(config: OfaEvolutionConfig) -> Result<Self> {
        if config.population < 2 {
            return Err(SearchError::invalid("population", "must be at least 2"));
        }
        for (name, v) in [
            ("parent ratio", config.parent_ratio),
            ("mutation ratio", config.mutation_ratio),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(SearchError::invalid(name, format!("{v} is not in [0, 1]")));
            }
        }
        if config.parent_ratio * config.population as f64 <= 0.5 {
            return Err(SearchError::invalid(
                "parent ratio",
                "keeps no parent at this population size",
            ));
        }
        let mutation = Mutation::new(MutationKind::Resample, config.mutation_probability)?;
        Ok(Self { config, mutation })
    }

    fn redraw(
        &self,
        ctx: &mut Context<'_>,
        mut make: impl FnMut(&mut Context<'_>) -> Result<Genotype>,
    ) -> Result<Genotype> {
        for _ in 0..self.config.max_redraws {
            let g = make(ctx)?;
            if ctx.problem().precheck(&g)? {
                return Ok(g);
            }
        }
        Err(SearchError::Stuck {
            strategy: "ofa-evolution".into(),
            reason: format!(
                "no candidate met the constraint in {} draws",
                self.config.max_redraws
            ),
        })
    }

    fn sorted(&self, mut population: Vec<Genotype>, ctx: &Context<'_>) -> Vec<Genotype> {
        let objective = ctx.problem().objectives()[0].clone();
        let key = |g: &Genotype| -> (f64, f64) {
            ctx.archive()
                .get(g)
                .map_or((f64::INFINITY, f64::INFINITY), |e| {
                    let v = objective.to_min(e.values[0]);
                    (
                        if e.violation.is_nan() {
                            f64::INFINITY
                        } else {
                            e.violation
                        },
                        if v.is_nan() { f64::INFINITY } else { v },
                    )
                })
        };
        population.sort_by(|a, b| {
            let (ka, kb) = (key(a), key(b));
            ka.0.total_cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
        });
        population
    }
}

impl Strategy for OfaEvolution {
    type State = OfaState;

    fn name(&self) -> &str {
        "ofa-evolution"
    }

    type Config = OfaEvolutionConfig;

    fn params(&self) -> &Self::Config {
        &self.config
    }

    fn init(&self, ctx: &mut Context<'_>) -> Result<OfaState> {
        if ctx.problem().objectives().is_empty() {
            return Err(SearchError::invalid(
                "objectives",
                "once-for-all evolution needs an objective to rank by",
            ));
        }
        let space = ctx.problem().space();
        let mut population = Vec::with_capacity(self.config.population);
        for _ in 0..self.config.population {
            population.push(self.redraw(ctx, |c| Ok(space.sample(c.rng())))?);
        }
        let evaluated = ctx.evaluate(&population)?;
        let population: Vec<Genotype> = population
            .into_iter()
            .zip(evaluated)
            .filter_map(|(g, e)| e.map(|_| g))
            .collect();
        Ok(OfaState {
            population: self.sorted(population, ctx),
        })
    }

    fn step(&self, state: &mut OfaState, ctx: &mut Context<'_>) -> Result<Step> {
        let n_parents = ((self.config.parent_ratio * self.config.population as f64).round()
            as usize)
            .clamp(1, self.config.population);
        let mut parents = std::mem::take(&mut state.population);
        parents.truncate(n_parents);
        if parents.is_empty() {
            return Ok(Step::Done);
        }
        let n_mut = (self.config.mutation_ratio * self.config.population as f64).round() as usize;
        let space = ctx.problem().space();
        let mut children = Vec::with_capacity(self.config.population);
        for _ in 0..n_mut {
            let child = self.redraw(ctx, |c| {
                let p = &parents[c.rng().random_range(0..parents.len())];
                Ok(self.mutation.apply(space, p, c.rng()))
            })?;
            children.push(child);
        }
        for _ in n_mut..self.config.population {
            let child = self.redraw(ctx, |c| {
                let a = &parents[c.rng().random_range(0..parents.len())];
                let b = &parents[c.rng().random_range(0..parents.len())];
                let genes = a
                    .genes()
                    .iter()
                    .zip(b.genes())
                    .map(|(&x, &y)| if c.rng().random_bool(0.5) { x } else { y })
                    .collect();
                Ok(Genotype::new(genes))
            })?;
            children.push(child);
        }
        let evaluated = ctx.evaluate(&children)?;
        parents.extend(
            children
                .into_iter()
                .zip(evaluated)
                .filter_map(|(g, e)| e.map(|_| g)),
        );
        state.population = self.sorted(parents, ctx);
        Ok(Step::Continue)
    }

    fn check_state(
        &self,
        state: &OfaState,
        problem: &dyn Problem,
        archive: &Archive,
    ) -> Result<()> {
        // Parents kept plus one generation of children.
        let max = self.config.population.saturating_mul(2);
        check_population(state.population.iter(), max, problem, archive)
    }
}
