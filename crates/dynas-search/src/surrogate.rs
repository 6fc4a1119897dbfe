//! Surrogate-assisted (predictor-guided) multi-objective search, for problems whose
//! evaluations are expensive (a subnet trained or scored on a supernet, a board measurement).
//!
//! Every step fits one Gaussian-process regressor per objective (and one for the constraint
//! violation when some evaluated architecture violates a constraint) on the archive, scores
//! candidate architectures by the hypervolume improvement of their *optimistic* prediction
//! (`mean - exploration x sd`, an upper-confidence-bound analogue of expected hypervolume
//! improvement) over the evaluated front, and evaluates the best batch. Candidates are every
//! unevaluated genotype when the space has at most [`SurrogateParams::enumerate_limit`] of them
//! (NAS-Bench-201's 15,625), otherwise the front's single-gene neighbours plus a population
//! evolved on the acquisition. Most of each batch is picked among *local* candidates (a few
//! genes away from the evaluated front, where the models are most reliable; on NAS-Bench-201
//! this took the hypervolume share from about 98 % to 99.3 %), the rest among all. The batch is
//! picked greedily with *fantasised* observations (kriging believer): each pick joins the models
//! at its predicted mean, which shrinks the sd of similar candidates, and its optimistic point
//! joins the front, so one batch does not spend several evaluations on one uncertain region.
//! Over the last quarter of an evaluation budget the exploration weight falls to 0
//! ([`SurrogateParams::exploit_share`]).
//! The first step evaluates a space-filling design: each gene's choices balanced (like a Latin
//! hypercube), and of several such draws the one whose closest pair is farthest apart.
//!
//! The kernel works on choice indices, so any [`crate::Problem`] fits: it mixes an additive
//! kernel (one term per gene: suits near-additive costs such as latency) with an exponential
//! kernel on the Hamming distance (interactions between genes: suits accuracy); the mix, the
//! length scale and the noise are chosen by maximum marginal likelihood on a small grid.
//! Models are refitted from the archive at each step, so the strategy's state is only a
//! counter and checkpoint/resume is exact.

use dynas_cost::parallel::*;
use dynas_space::{Genotype, SearchSpace};
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SearchError};
use crate::executor::{Context, Record, Step, Strategy, Unseen};
use crate::pareto::fast_non_dominated_sort;
use batch::select_batch;
use gp::hamming;
use models::Models;

/// Hyper-parameters of [`Surrogate`]; [`SurrogateParams::check`] turns them into a
/// [`SurrogateConfig`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SurrogateParams {
    /// Architectures of the space-filling initial design (at least 2).
    pub initial: usize,
    /// Architectures evaluated per step, between two refits (at least 1).
    pub batch: usize,
    /// Weight of the predicted standard deviation in the optimistic point (>= 0; 0 = greedy).
    pub exploration: f64,
    /// Share of an evaluation budget, at its end, over which the exploration weight falls
    /// linearly to 0 (in `[0, 1]`; 0 = constant): the last evaluations refine the front
    /// instead of probing regions they can no longer follow up. No effect without an
    /// evaluation budget.
    #[serde(default = "default_exploit_share")]
    pub exploit_share: f64,
    /// Candidates within this many changed genes of an evaluated front member are *local*.
    pub local_radius: usize,
    /// Architectures per batch picked among all candidates; the rest of the batch is picked
    /// among local ones (the model is most reliable next to evaluated architectures).
    pub global_per_batch: usize,
    /// Spaces with at most this many genotypes are enumerated; larger ones are searched by
    /// evolving candidates on the acquisition.
    pub enumerate_limit: u64,
    /// Candidates per evolution round (large spaces only; at least `batch`).
    pub pool: usize,
    /// Evolution rounds per step (large spaces only; at least 1).
    pub evolve_rounds: usize,
    /// At most this many archive records train the models (those of the best non-dominated
    /// ranks; at least 4): the Gaussian process costs the cube of this number.
    pub max_train: usize,
}

impl Default for SurrogateParams {
    /// Tuned on NAS-Bench-201 with 200 evaluations (see `docs/benchmarks.md`).
    fn default() -> Self {
        Self {
            initial: 20,
            batch: 8,
            exploration: 1.0,
            exploit_share: default_exploit_share(),
            local_radius: 1,
            global_per_batch: 2,
            enumerate_limit: 100_000,
            pool: 2_000,
            evolve_rounds: 5,
            max_train: 500,
        }
    }
}

fn default_exploit_share() -> f64 {
    0.25
}

impl SurrogateParams {
    /// Checks ranges.
    pub fn check(&self) -> Result<SurrogateConfig> {
        if self.initial < 2 {
            return Err(SearchError::invalid("initial", "must be at least 2"));
        }
        if self.batch == 0 {
            return Err(SearchError::invalid("batch", "must be at least 1"));
        }
        if !(self.exploration.is_finite() && self.exploration >= 0.0) {
            return Err(SearchError::invalid(
                "exploration",
                format!("must be finite and >= 0, got {}", self.exploration),
            ));
        }
        if !(0.0..=1.0).contains(&self.exploit_share) {
            return Err(SearchError::invalid(
                "exploit share",
                format!("must be in [0, 1], got {}", self.exploit_share),
            ));
        }
        if self.pool < self.batch {
            return Err(SearchError::invalid(
                "pool",
                format!("must be at least the batch ({})", self.batch),
            ));
        }
        if self.evolve_rounds == 0 {
            return Err(SearchError::invalid("evolve rounds", "must be at least 1"));
        }
        if self.max_train < 4 {
            return Err(SearchError::invalid("max train", "must be at least 4"));
        }
        Ok(SurrogateConfig(self.clone()))
    }
}

/// Checked hyper-parameters of [`Surrogate`] (from [`SurrogateParams::check`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SurrogateConfig(SurrogateParams);

impl SurrogateConfig {
    /// The checked values.
    pub fn params(&self) -> &SurrogateParams {
        &self.0
    }
}

/// What the surrogate search remembers between steps (the models are refitted from the
/// archive).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SurrogateState {
    /// Steps run, the initial design included.
    pub batches: usize,
    /// Batches chosen at random because too few evaluations could train a model.
    pub random_batches: usize,
}

/// Surrogate-assisted multi-objective search (see the module documentation).
#[derive(Clone, Debug, Default)]
pub struct Surrogate {
    config: SurrogateConfig,
}

impl Surrogate {
    /// The search with checked hyper-parameters.
    pub fn new(config: SurrogateConfig) -> Self {
        Self { config }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &SurrogateConfig {
        &self.config
    }
}

/// How spread a design is: its closest pair's distance, then `usize::MAX` minus the number of
/// pairs at that distance (larger is better on both).
type DesignScore = (usize, usize);

/// Balanced initial designs drawn; the most spread one is evaluated.
const DESIGN_DRAWS: usize = 64;

// ---------------------------------------------------------------------------------------------
// Candidates

impl Surrogate {
    /// A space-filling design: every gene's choices appear equally often (shuffled per gene),
    /// duplicates redrawn at random.
    fn initial_design(&self, ctx: &mut Context<'_>) -> Vec<Genotype> {
        let space = ctx.problem().space();
        let n = (self.config.0.initial as u128).min(
            space
                .cardinality()
                .saturating_sub(ctx.archive().len() as u128),
        ) as usize;
        let dims: Vec<usize> = space.dimensions().iter().map(|d| d.len()).collect();
        // Of several balanced designs, the one whose closest pair is farthest apart (then the
        // fewest pairs at that distance): no two early points waste evaluations on one region.
        let mut best: Option<(DesignScore, Vec<Vec<usize>>)> = None;
        for _ in 0..DESIGN_DRAWS {
            let columns: Vec<Vec<usize>> = dims
                .iter()
                .map(|&c| {
                    let mut column: Vec<usize> = (0..n).map(|i| i % c.max(1)).collect();
                    column.shuffle(ctx.rng());
                    column
                })
                .collect();
            let mut closest = (usize::MAX, 0);
            for i in 0..n {
                for j in 0..i {
                    let h = columns.iter().filter(|c| c[i] != c[j]).count();
                    if h < closest.0 {
                        closest = (h, 1);
                    } else if h == closest.0 {
                        closest.1 += 1;
                    }
                }
            }
            let score = (closest.0, usize::MAX - closest.1);
            if best.as_ref().is_none_or(|b| score > b.0) {
                best = Some((score, columns));
            }
        }
        let columns = best.map(|b| b.1).unwrap_or_default();
        let mut unseen = Unseen::new();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let g = Genotype::new(columns.iter().map(|c| c[i]).collect());
            if unseen.admit(&g, ctx.archive()) {
                out.push(g);
            } else {
                // A duplicate: one new genotype at random instead.
                out.extend(ctx.draw_unseen(1, 1000, &mut unseen));
            }
        }
        out
    }

    /// Mutants of `parent`: one or two genes changed.
    fn mutate(space: &dyn SearchSpace, parent: &Genotype, ctx: &mut Context<'_>) -> Genotype {
        let dims = space.dimensions();
        let mutable: Vec<usize> = (0..dims.len()).filter(|&i| dims[i].len() > 1).collect();
        let mut child = parent.clone();
        if mutable.is_empty() {
            return child;
        }
        let changes = if ctx.rng().random_bool(0.5) { 1 } else { 2 };
        for _ in 0..changes {
            let pos = mutable[ctx.rng().random_range(0..mutable.len())];
            let n = dims[pos].len();
            let current = child.genes()[pos];
            let d = ctx.rng().random_range(0..n - 1);
            child.genes_mut()[pos] = if d >= current { d + 1 } else { d };
        }
        child
    }

    /// Candidates of a large space: random genotypes and mutants of the evaluated front,
    /// evolved for a few rounds on the acquisition (each round keeps the best tenth and adds
    /// its mutants).
    fn evolve(
        &self,
        models: &Models,
        front_genotypes: &[Genotype],
        ctx: &mut Context<'_>,
    ) -> Vec<Genotype> {
        let p = &self.config.0;
        let space = ctx.problem().space();
        let mut unseen = Unseen::new();
        let mut all: Vec<Genotype> = Vec::new();
        let mut push = |g: Genotype, ctx: &Context<'_>, all: &mut Vec<Genotype>| {
            if unseen.admit(&g, ctx.archive()) {
                all.push(g);
            }
        };
        // Every single-gene neighbour of the front, then random genotypes and mutants.
        let dims: Vec<usize> = space.dimensions().iter().map(|d| d.len()).collect();
        for parent in front_genotypes {
            for (k, &c) in dims.iter().enumerate() {
                for v in (0..c).filter(|&v| v != parent.genes()[k]) {
                    let mut g = parent.clone();
                    g.genes_mut()[k] = v;
                    push(g, ctx, &mut all);
                }
            }
        }
        let mut round: Vec<Genotype> = Vec::new();
        for i in 0..p.pool {
            let g = if !front_genotypes.is_empty() && i % 2 == 0 {
                let parent = &front_genotypes[ctx.rng().random_range(0..front_genotypes.len())];
                Self::mutate(space, parent, ctx)
            } else {
                space.sample(ctx.rng())
            };
            round.push(g);
        }
        for r in 0..p.evolve_rounds {
            let before = all.len();
            for g in round.drain(..) {
                push(g, ctx, &mut all);
            }
            if r + 1 == p.evolve_rounds {
                break;
            }
            let fresh = &all[before..];
            let elite: Vec<Genotype> = models
                .best_exact(fresh, (p.pool / 10).max(1))
                .into_iter()
                .map(|i| fresh[i].clone())
                .collect();
            if elite.is_empty() {
                break;
            }
            for i in 0..p.pool {
                let parent = &elite[i % elite.len()];
                round.push(Self::mutate(space, parent, ctx));
            }
        }
        all
    }

    fn candidates(
        &self,
        models: &Models,
        front_genotypes: &[Genotype],
        ctx: &mut Context<'_>,
    ) -> Vec<Genotype> {
        let space = ctx.problem().space();
        match space.enumerate(u128::from(self.config.0.enumerate_limit)) {
            Ok(all) => all.filter(|g| !ctx.archive().contains(g)).collect(),
            Err(_) => self.evolve(models, front_genotypes, ctx),
        }
    }

    /// The archive records that train the models: all, or the best non-dominated ranks.
    fn training_records<'a>(&self, ctx: &'a Context<'_>) -> Vec<&'a Record> {
        let records = ctx.archive().records();
        let max = self.config.0.max_train;
        if records.len() <= max {
            return records.iter().collect();
        }
        let objectives = ctx.problem().objectives();
        let points: Vec<Vec<f64>> = records
            .iter()
            .map(|r| {
                if r.evaluation.is_feasible() && r.evaluation.values.iter().all(|v| v.is_finite()) {
                    r.evaluation.minimised(objectives)
                } else {
                    vec![f64::INFINITY; objectives.len()]
                }
            })
            .collect();
        fast_non_dominated_sort(&points)
            .into_iter()
            .flatten()
            .take(max)
            .map(|i| &records[i])
            .collect()
    }

    /// The exploration weight for the next batch (see [`SurrogateParams::exploit_share`]).
    fn exploration(&self, ctx: &Context<'_>) -> f64 {
        let p = &self.config.0;
        let remaining = ctx.remaining_evaluations();
        if remaining == usize::MAX || p.exploit_share <= 0.0 {
            return p.exploration;
        }
        let total = ctx.archive().len().saturating_add(remaining).max(1) as f64;
        p.exploration * (remaining as f64 / (p.exploit_share * total)).min(1.0)
    }

    fn random_batch(&self, ctx: &mut Context<'_>, n: usize) -> Vec<Genotype> {
        ctx.draw_unseen(n, n.saturating_mul(1000), &mut Unseen::new())
    }
}

impl Strategy for Surrogate {
    type State = SurrogateState;

    fn name(&self) -> &str {
        "surrogate"
    }

    type Config = SurrogateParams;

    fn params(&self) -> &Self::Config {
        self.config.params()
    }

    fn init(&self, ctx: &mut Context<'_>) -> Result<SurrogateState> {
        let design = self.initial_design(ctx);
        ctx.evaluate(&design)?;
        Ok(SurrogateState {
            batches: 1,
            random_batches: 0,
        })
    }

    fn step(&self, state: &mut SurrogateState, ctx: &mut Context<'_>) -> Result<Step> {
        let n = self.config.0.batch.min(ctx.remaining_evaluations());
        let objectives = ctx.problem().objectives().to_vec();
        let records = self.training_records(ctx);
        let fitted = Models::fit(&records, &objectives);
        let batch = match fitted {
            Some(mut models) => {
                models.exploration = self.exploration(ctx);
                let front_genotypes: Vec<Genotype> = {
                    let front = ctx.archive().front(&objectives);
                    front.points.into_iter().map(|p| p.genotype).collect()
                };
                let candidates = self.candidates(&models, &front_genotypes, ctx);
                let radius = self.config.0.local_radius;
                let local: Vec<bool> = candidates
                    .par_iter()
                    .map(|g| {
                        front_genotypes
                            .iter()
                            .any(|f| hamming(f.genes(), g.genes()) <= radius)
                    })
                    .collect();
                let predictions = models.bounds(&candidates);
                let n_local = n.saturating_sub(self.config.0.global_per_batch);
                select_batch(&models, &candidates, predictions, &local, n_local, n)
                    .into_iter()
                    .map(|i| candidates[i].clone())
                    .collect()
            }
            None => {
                state.random_batches += 1;
                self.random_batch(ctx, n)
            }
        };
        state.batches += 1;
        if batch.is_empty() {
            return Ok(Step::Done);
        }
        ctx.evaluate(&batch)?;
        Ok(Step::Continue)
    }
}

mod batch;
mod gp;
mod hvi;
mod models;

#[cfg(test)]
mod tests;
