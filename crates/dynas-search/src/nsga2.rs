//! NSGA-II for integer/choice genotypes with pymoo's reference ranking: non-dominated sorting,
//! crowding distance (`calc_crowding_distance`), rank-and-crowding survival with randomised
//! tie-breaking, infeasible solutions ranked after feasible ones by constraint violation, and
//! pymoo's binary tournament (`compare` by violation, then dominance, then crowding).

use dynas_space::{Crossover, Genotype, Mutation, MutationKind};
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SearchError};
use crate::executor::{Archive, Context, Step, Strategy, Unseen, check_population};
use crate::pareto::{crowding_distance, dominance, fast_non_dominated_sort};
use crate::problem::Problem;
use crate::problem::{Evaluation, Objective};

/// Which duplicates a new generation's offspring must avoid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Duplicates {
    /// Keep duplicates.
    Keep,
    /// Offspring differ from each other and from the current population (pymoo's
    /// `eliminate_duplicates=True`).
    Population,
    /// Offspring differ from everything evaluated so far, so every offspring costs one
    /// evaluation of the budget (the best choice when the budget counts distinct archs).
    History,
}

/// Validated NSGA-II hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Nsga2Config {
    /// Population size (at least 2).
    pub population: usize,
    /// Offspring per generation (at least 1; pymoo's default equals the population).
    pub offspring: usize,
    /// Per-gene mutation.
    pub mutation: Mutation,
    /// Recombination.
    pub crossover: Crossover,
    /// Probability of applying crossover to a mating (otherwise the parents are copied).
    pub crossover_probability: f64,
    /// Duplicate elimination.
    pub duplicates: Duplicates,
    /// Mating rounds per generation before giving up on filling the offspring (pymoo: 100).
    pub max_mating_rounds: usize,
}

impl Default for Nsga2Config {
    /// Tuned on NAS-Bench-201 (see `docs/benchmarks.md`).
    fn default() -> Self {
        Self {
            population: 24,
            offspring: 24,
            mutation: Mutation::new(MutationKind::ChangeValue, 0.1)
                .expect("0.1 is a valid probability"),
            crossover: Crossover::Uniform {
                swap_probability: 0.5,
            },
            crossover_probability: 0.9,
            duplicates: Duplicates::History,
            max_mating_rounds: 100,
        }
    }
}

impl Nsga2Config {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        if self.population < 2 {
            return Err(SearchError::invalid("population", "must be at least 2"));
        }
        if self.offspring == 0 {
            return Err(SearchError::invalid("offspring", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.crossover_probability) {
            return Err(SearchError::invalid(
                "crossover probability",
                format!("{} is not in [0, 1]", self.crossover_probability),
            ));
        }
        if self.max_mating_rounds == 0 {
            return Err(SearchError::invalid(
                "max mating rounds",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// The most random draws for the initial population (a huge population in a small space would
/// otherwise draw for hours).
const MAX_INITIAL_DRAWS: usize = 1_000_000;

/// One member of the population with its survival attributes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The genotype.
    pub genotype: Genotype,
    /// Objective values in minimisation form.
    #[serde(with = "crate::floats::vec")]
    pub f: Vec<f64>,
    /// Constraint violation.
    #[serde(with = "crate::floats::scalar")]
    pub cv: f64,
    /// Non-dominated rank (meaningless for infeasible members).
    pub rank: usize,
    /// Crowding distance (meaningless for infeasible members).
    #[serde(with = "crate::floats::scalar")]
    pub crowding: f64,
}

impl Member {
    fn new(genotype: Genotype, evaluation: &Evaluation, objectives: &[Objective]) -> Self {
        Self {
            genotype,
            f: evaluation.minimised(objectives),
            cv: if evaluation.violation.is_nan() {
                f64::INFINITY
            } else {
                evaluation.violation
            },
            rank: usize::MAX,
            crowding: 0.0,
        }
    }
}

/// The NSGA-II population.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Nsga2State {
    /// Current population, survivors in survival order.
    pub population: Vec<Member>,
}

/// NSGA-II.
#[derive(Clone, Debug)]
pub struct Nsga2 {
    config: Nsga2Config,
}

impl Nsga2 {
    /// NSGA-II with validated hyper-parameters.
    pub fn new(config: Nsga2Config) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &Nsga2Config {
        &self.config
    }
}

/// pymoo's rank-and-crowding survival: keeps `n_survive` of `pool`, feasible members by front
/// and (in the split front) by crowding distance with random tie-breaking, then infeasible
/// members by ascending violation. Sets `rank` and `crowding` of the survivors.
pub fn rank_and_crowding_survival<R: Rng + ?Sized>(
    pool: Vec<Member>,
    n_survive: usize,
    rng: &mut R,
) -> Vec<Member> {
    let (feasible, mut infeasible): (Vec<Member>, Vec<Member>) =
        pool.into_iter().partition(|m| m.cv <= 0.0);
    let mut survivors: Vec<Member> = Vec::with_capacity(n_survive);
    let target = n_survive.min(feasible.len());
    if target > 0 {
        let f: Vec<Vec<f64>> = feasible.iter().map(|m| m.f.clone()).collect();
        let mut chosen: Vec<(usize, usize, f64)> = Vec::with_capacity(target);
        for (k, front) in fast_non_dominated_sort(&f).into_iter().enumerate() {
            if chosen.len() >= target {
                break;
            }
            let front_f: Vec<Vec<f64>> = front.iter().map(|&i| f[i].clone()).collect();
            let cd = crowding_distance(&front_f);
            let mut order: Vec<usize> = (0..front.len()).collect();
            if chosen.len() + front.len() > target {
                // randomized_argsort(cd, descending): shuffle, then stable sort.
                order.shuffle(rng);
                order.sort_by(|&a, &b| cd[b].total_cmp(&cd[a]));
                order.truncate(target - chosen.len());
            }
            chosen.extend(order.into_iter().map(|j| (front[j], k, cd[j])));
        }
        let mut slots: Vec<Option<Member>> = feasible.into_iter().map(Some).collect();
        for (i, rank, crowding) in chosen {
            if let Some(mut m) = slots[i].take() {
                m.rank = rank;
                m.crowding = crowding;
                survivors.push(m);
            }
        }
    }
    infeasible.sort_by(|a, b| a.cv.total_cmp(&b.cv));
    let room = n_survive - survivors.len();
    survivors.extend(infeasible.into_iter().take(room).map(|mut m| {
        m.rank = usize::MAX;
        m.crowding = 0.0;
        m
    }));
    survivors
}

/// pymoo's NSGA-II binary tournament between members `a` and `b`: the smaller violation wins
/// if either is infeasible; else a dominating member wins; else the larger crowding distance;
/// exact ties are broken at random.
pub fn binary_tournament<R: Rng + ?Sized>(
    population: &[Member],
    a: usize,
    b: usize,
    rng: &mut R,
) -> usize {
    let (ma, mb) = (&population[a], &population[b]);
    let pick = |x: f64, y: f64, smaller: bool, rng: &mut R| {
        if x == y {
            if rng.random_bool(0.5) { a } else { b }
        } else if (x < y) == smaller {
            a
        } else {
            b
        }
    };
    if ma.cv > 0.0 || mb.cv > 0.0 {
        return pick(ma.cv, mb.cv, true, rng);
    }
    match dominance(&ma.f, &mb.f) {
        1 => a,
        -1 => b,
        _ => pick(ma.crowding, mb.crowding, false, rng),
    }
}

impl Nsga2 {
    /// The architectures already in the archive (an [`Executor::warm_start`](crate::Executor::warm_start)),
    /// then distinct-as-configured random genotypes, `population` in all.
    fn initial(&self, ctx: &mut Context<'_>) -> Vec<Genotype> {
        let n = self.config.population;
        let mut out: Vec<Genotype> = ctx
            .archive()
            .records()
            .iter()
            .take(n)
            .map(|r| r.genotype.clone())
            .collect();
        // At most 100 draws per member, and never more than `MAX_INITIAL_DRAWS` in all:
        // what could be drawn is the initial population.
        let max_draws = n.saturating_mul(100).min(MAX_INITIAL_DRAWS);
        let mut unseen = self.unseen().with_seen(&out);
        let drawn = ctx.draw_unseen(n - out.len(), max_draws, &mut unseen);
        out.extend(drawn);
        out
    }

    /// Which genotypes are new under [`Nsga2Config::duplicates`].
    fn unseen(&self) -> Unseen {
        match self.config.duplicates {
            Duplicates::Keep => Unseen::any(),
            Duplicates::Population => Unseen::distinct(),
            Duplicates::History => Unseen::new(),
        }
    }

    fn mating(&self, population: &[Member], ctx: &mut Context<'_>) -> Result<Vec<Genotype>> {
        let cfg = &self.config;
        let wanted = cfg.offspring;
        let mut unseen = self
            .unseen()
            .with_seen(population.iter().map(|m| &m.genotype));
        let mut offspring: Vec<Genotype> = Vec::with_capacity(wanted);
        let n = population.len();
        if n == 0 {
            return Ok(offspring);
        }
        for _ in 0..cfg.max_mating_rounds {
            let remaining = wanted - offspring.len();
            if remaining == 0 {
                break;
            }
            let n_matings = remaining.div_ceil(2);
            // Tournament pairs from concatenated random permutations (pymoo's
            // random_permuations), two tournaments per mating.
            let needed = n_matings * 4;
            let mut competitors: Vec<usize> = Vec::with_capacity(needed + n);
            while competitors.len() < needed {
                let mut perm: Vec<usize> = (0..n).collect();
                perm.shuffle(ctx.rng());
                competitors.extend(perm);
            }
            let mut batch: Vec<Genotype> = Vec::with_capacity(n_matings * 2);
            for m in 0..n_matings {
                let c = &competitors[m * 4..m * 4 + 4];
                let p1 = binary_tournament(population, c[0], c[1], ctx.rng());
                let p2 = binary_tournament(population, c[2], c[3], ctx.rng());
                let (ga, gb) = (&population[p1].genotype, &population[p2].genotype);
                let (mut x, mut y) = if ctx.rng().random_bool(cfg.crossover_probability) {
                    cfg.crossover.apply(ga, gb, ctx.rng())?
                } else {
                    (ga.clone(), gb.clone())
                };
                let space = ctx.problem().space();
                x = cfg.mutation.apply(space, &x, ctx.rng());
                y = cfg.mutation.apply(space, &y, ctx.rng());
                batch.push(x);
                batch.push(y);
            }
            // Duplicate elimination (within the batch, against population / history).
            let mut fresh: Vec<Genotype> = Vec::with_capacity(batch.len());
            for g in batch {
                if unseen.admit(&g, ctx.archive()) {
                    fresh.push(g);
                }
            }
            if fresh.len() > remaining {
                fresh.shuffle(ctx.rng());
                fresh.truncate(remaining);
            }
            offspring.extend(fresh);
        }
        Ok(offspring)
    }
}

impl Strategy for Nsga2 {
    type State = Nsga2State;

    fn name(&self) -> &str {
        "nsga2"
    }

    type Config = Nsga2Config;

    fn params(&self) -> &Self::Config {
        &self.config
    }

    fn init(&self, ctx: &mut Context<'_>) -> Result<Nsga2State> {
        // Distinct members cannot outnumber the space: refuse instead of drawing forever.
        let cardinality = ctx.problem().space().cardinality();
        if self.config.duplicates != Duplicates::Keep
            && self.config.population as u128 > cardinality
        {
            return Err(SearchError::invalid(
                "population",
                format!(
                    "{} distinct members were asked for, the space has only {cardinality} \
                     architectures (lower the population, or keep duplicates)",
                    self.config.population
                ),
            ));
        }
        let genotypes = self.initial(ctx);
        let evaluations = ctx.evaluate(&genotypes)?;
        let objectives = ctx.problem().objectives().to_vec();
        let pool: Vec<Member> = genotypes
            .into_iter()
            .zip(evaluations)
            .filter_map(|(g, e)| e.map(|e| Member::new(g, &e, &objectives)))
            .collect();
        let n = pool.len();
        Ok(Nsga2State {
            population: rank_and_crowding_survival(pool, n, ctx.rng()),
        })
    }

    fn step(&self, state: &mut Nsga2State, ctx: &mut Context<'_>) -> Result<Step> {
        let offspring = self.mating(&state.population, ctx)?;
        if offspring.is_empty() {
            // Every neighbour of the population is known: nothing new can be produced.
            return Ok(Step::Done);
        }
        let evaluations = ctx.evaluate(&offspring)?;
        let objectives = ctx.problem().objectives().to_vec();
        let mut pool = std::mem::take(&mut state.population);
        pool.extend(
            offspring
                .into_iter()
                .zip(evaluations)
                .filter_map(|(g, e)| e.map(|e| Member::new(g, &e, &objectives))),
        );
        let n = self.config.population.min(pool.len());
        state.population = rank_and_crowding_survival(pool, n, ctx.rng());
        Ok(Step::Continue)
    }

    fn check_state(
        &self,
        state: &Nsga2State,
        problem: &dyn Problem,
        archive: &Archive,
    ) -> Result<()> {
        check_population(
            state.population.iter().map(|m| &m.genotype),
            self.config.population,
            problem,
            archive,
        )?;
        let n_objectives = problem.objectives().len();
        for (i, m) in state.population.iter().enumerate() {
            if m.f.len() != n_objectives {
                return Err(SearchError::invalid(
                    format!("population[{i}].f"),
                    format!("{} values for {n_objectives} objectives", m.f.len()),
                ));
            }
            if m.cv.is_nan() {
                return Err(SearchError::invalid(
                    format!("population[{i}].cv"),
                    "is NaN",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynas_space::seeded_rng;

    fn member(f: &[f64], cv: f64) -> Member {
        Member {
            genotype: Genotype::new(vec![(f[0] * 100.0) as usize]),
            f: f.to_vec(),
            cv,
            rank: usize::MAX,
            crowding: 0.0,
        }
    }

    #[test]
    fn survival_keeps_fronts_in_order_and_extremes_of_the_split_front() {
        let pool = vec![
            member(&[0.0, 1.0], 0.0),   // front 0
            member(&[1.0, 0.0], 0.0),   // front 0
            member(&[0.5, 0.5], 0.0),   // front 0
            member(&[0.1, 1.1], 0.0),   // front 1 extreme
            member(&[0.6, 0.6], 0.0),   // front 1 middle
            member(&[0.62, 0.61], 0.0), // front 1, crowded
            member(&[1.1, 0.1], 0.0),   // front 1 extreme
            member(&[0.0, 0.0], 2.0),   // infeasible
        ];
        let mut rng = seeded_rng(1);
        let kept = rank_and_crowding_survival(pool.clone(), 5, &mut rng);
        let names: Vec<Vec<f64>> = kept.iter().map(|m| m.f.clone()).collect();
        assert_eq!(
            &names[..3],
            &[vec![0.0, 1.0], vec![1.0, 0.0], vec![0.5, 0.5]]
        );
        // From front 1 the two extremes (infinite crowding) survive.
        assert!(names[3..].contains(&vec![0.1, 1.1]) && names[3..].contains(&vec![1.1, 0.1]));
        assert!(kept[..3].iter().all(|m| m.rank == 0));
        assert!(
            kept[3..]
                .iter()
                .all(|m| m.rank == 1 && m.crowding.is_infinite())
        );
        // With room for everyone, the infeasible member comes last.
        let all = rank_and_crowding_survival(pool, 8, &mut rng);
        assert_eq!(all[7].cv, 2.0);
    }

    #[test]
    fn tournament_follows_pymoo_compare() {
        let mut pop = vec![
            member(&[0.0, 0.0], 0.0),
            member(&[1.0, 1.0], 0.0),
            member(&[0.0, 2.0], 0.5),
            member(&[2.0, 0.0], 0.0),
        ];
        pop[1].crowding = 3.0;
        pop[3].crowding = 1.0;
        let mut rng = seeded_rng(2);
        assert_eq!(binary_tournament(&pop, 0, 1, &mut rng), 0); // dominance
        assert_eq!(binary_tournament(&pop, 1, 0, &mut rng), 0);
        assert_eq!(binary_tournament(&pop, 2, 1, &mut rng), 1); // feasible beats infeasible
        assert_eq!(binary_tournament(&pop, 1, 3, &mut rng), 1); // crowding
        // Equal crowding: both win sometimes.
        pop[3].crowding = 3.0;
        let wins: usize = (0..200)
            .map(|_| usize::from(binary_tournament(&pop, 1, 3, &mut rng) == 1))
            .sum();
        assert!((50..150).contains(&wins), "{wins}");
    }

    #[test]
    fn config_is_validated() {
        let bad = Nsga2Config {
            population: 1,
            ..Nsga2Config::default()
        };
        assert!(Nsga2::new(bad).is_err());
        let bad = Nsga2Config {
            crossover_probability: 1.5,
            ..Nsga2Config::default()
        };
        assert!(matches!(
            Nsga2::new(bad),
            Err(SearchError::InvalidParameter { .. })
        ));
    }
}
