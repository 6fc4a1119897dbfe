//! HADAS bi-level search with a simple, fully specified stand-in for exits and DVFS.

use dynas_cost::{ComputeUnit, DeviceProfile, OperatingPoint};
use dynas_hadas::{DynamicEvaluator, DynamicMetrics, Hadas, HadasConfig};
use dynas_search::{
    Budget, Control, Evaluation, Event, Executor, Nsga2Config, Objective, Problem, Result,
    SearchError, TableSpace,
};
use dynas_space::{Dimension, Genotype, SearchSpace};

/// Backbone of 4 blocks, block `i` costs `1 + g_i` units and adds `5 g_i` accuracy points.
/// Exit after block `p` (p < 3) catches 20 % of the remaining inputs with accuracy
/// `acc - 8 (3 - p)`; each evaluated exit head costs 0.1 units. Latency is units / GHz of the
/// GPU, power is `1 + 2 (f / f_max)^2 + 0.3 mem / mem_max` W.
struct StandIn {
    device: DeviceProfile,
}

impl StandIn {
    fn new() -> Self {
        Self {
            device: DeviceProfile::new(
                "toy",
                ComputeUnit::Gpu,
                vec![],
                vec![500_000_000, 1_000_000_000, 1_400_000_000],
                vec![1_000_000_000, 2_000_000_000],
            )
            .unwrap(),
        }
    }

    fn metrics(&self, g: &Genotype, exits: &[usize], point: &OperatingPoint) -> DynamicMetrics {
        let cost: Vec<f64> = g.genes().iter().map(|&x| 1.0 + x as f64).collect();
        let acc = 60.0 + 5.0 * g.genes().iter().sum::<usize>() as f64;
        let (mut units, mut correct, mut remaining, mut prefix, mut heads) =
            (0.0, 0.0, 1.0, 0.0, 0.0);
        for (p, c) in cost.iter().enumerate() {
            prefix += c;
            if exits.contains(&p) {
                heads += 0.1;
                let take = 0.2 * remaining;
                units += take * (prefix + heads);
                correct += take * (acc - 8.0 * (3 - p) as f64);
                remaining -= take;
            }
        }
        units += remaining * (prefix + heads);
        correct += remaining * acc;
        let ghz = point.gpu_hz().unwrap() as f64 / 1e9;
        let latency = units / ghz;
        let power = 1.0 + 2.0 * (ghz / 1.4).powi(2) + 0.3 * point.memory_hz().unwrap() as f64 / 2e9;
        DynamicMetrics {
            error: 100.0 - correct,
            latency_ms: latency,
            energy_mj: latency * power,
        }
    }
}

impl DynamicEvaluator for StandIn {
    fn exit_positions(&self, _backbone: &Genotype) -> Result<usize> {
        Ok(3)
    }
    fn device(&self) -> &DeviceProfile {
        &self.device
    }
    fn evaluate(
        &self,
        b: &Genotype,
        exits: &[usize],
        point: &OperatingPoint,
    ) -> Result<DynamicMetrics> {
        Ok(self.metrics(b, exits, point))
    }
    fn deployed_exits(
        &self,
        _backbone: &Genotype,
        exits: &[usize],
        _point: &OperatingPoint,
    ) -> Result<Vec<dynas_search::DeployedExit>> {
        // Candidate exit `e` reads layer `2e + 1`; a fixed threshold and rate per position.
        Ok(exits
            .iter()
            .map(|&e| dynas_search::DeployedExit {
                after_layer: dynas_space::LayerIndex::new(2 * e + 1),
                threshold: 0.5 + 0.1 * e as f64,
                exit_rate: 0.2,
            })
            .collect())
    }
}

/// The static backbones at the highest clocks.
struct Backbones<'a> {
    stand_in: &'a StandIn,
    space: TableSpace,
    objectives: Vec<Objective>,
}

impl<'a> Backbones<'a> {
    fn new(stand_in: &'a StandIn) -> Self {
        let dims = (0..4)
            .map(|i| Dimension::from_values(format!("block{i}"), &[0, 1, 2]).unwrap())
            .collect();
        Self {
            stand_in,
            space: TableSpace::new("toy-backbones", dims),
            objectives: vec![
                Objective::minimize("error"),
                Objective::minimize("latency_ms"),
                Objective::minimize("energy_mj"),
            ],
        }
    }
}

impl Problem for Backbones<'_> {
    fn name(&self) -> &str {
        "toy-backbones"
    }
    fn space(&self) -> &dyn SearchSpace {
        &self.space
    }
    fn objectives(&self) -> &[Objective] {
        &self.objectives
    }
    fn evaluate(&self, g: &Genotype) -> Result<Evaluation> {
        let m = self
            .stand_in
            .metrics(g, &[], &self.stand_in.device.max_operating_point());
        Ok(Evaluation::feasible(vec![
            m.error,
            m.latency_ms,
            m.energy_mj,
        ]))
    }
}

fn small_config() -> HadasConfig {
    HadasConfig {
        outer: Nsga2Config {
            population: 16,
            offspring: 16,
            ..Nsga2Config::default()
        },
        ..HadasConfig::default()
    }
}

#[test]
fn inner_search_finds_cheaper_dynamic_configurations_and_writes_them_back() {
    let stand_in = StandIn::new();
    let problem = Backbones::new(&stand_in);
    let hadas = Hadas::new(small_config(), &stand_in).unwrap();
    let result = Executor::new(&problem, hadas, Budget::generations(3).unwrap())
        .seed(1)
        .run()
        .unwrap();
    let state = &result.state;
    // ceil(0.15 * 16) = 3 backbones per generation at least once.
    assert!(state.inner.len() >= 3, "{}", state.inner.len());
    // Inner NSGA-II: population 10, 5 generations -> at most 50 evaluations per backbone.
    assert!(state.inner_evaluations <= 50 * state.inner.len());
    for (backbone, front) in &state.inner {
        let static_eval = problem.evaluate(backbone).unwrap();
        assert!(!front.is_empty());
        // DVFS alone (no exits, slower clocks) lowers energy at the same error; the inner
        // search must find at least that.
        let best_energy = front
            .iter()
            .map(|p| p.metrics.energy_mj)
            .fold(f64::INFINITY, f64::min);
        assert!(
            best_energy < static_eval.values[2],
            "{backbone}: {best_energy}"
        );
        for p in front {
            assert!(stand_in.device.supports(&p.point));
            assert_eq!(p.metrics, stand_in.metrics(backbone, &p.exits, &p.point));
        }
    }
    // Written back: some member carries objectives better than its static evaluation.
    assert!(state.outer.population.iter().any(|m| {
        let s = problem.evaluate(&m.genotype).unwrap().values;
        m.f.iter().zip(&s).any(|(d, s)| d < s)
    }));
    assert!(!state.dynamic_front().is_empty());
}

#[test]
fn hadas_resumes_exactly_and_checks_its_objectives() {
    let stand_in = StandIn::new();
    let problem = Backbones::new(&stand_in);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hadas.json");
    let budget = Budget::generations(3).unwrap();
    let full = Executor::new(
        &problem,
        Hadas::new(small_config(), &stand_in).unwrap(),
        budget,
    )
    .seed(5)
    .run()
    .unwrap();
    let killed = Executor::new(
        &problem,
        Hadas::new(small_config(), &stand_in).unwrap(),
        budget,
    )
    .seed(5)
    .checkpoint(&path, 1)
    .unwrap()
    .observe(|e: &Event<'_>| match e {
        Event::Evaluated { index: 20, .. } => Control::Stop("kill".into()),
        _ => Control::Continue,
    })
    .run();
    assert!(matches!(killed, Err(SearchError::Interrupted(_))));
    let resumed = Executor::new(
        &problem,
        Hadas::new(small_config(), &stand_in).unwrap(),
        budget,
    )
    .resume_from(&path)
    .unwrap()
    .run()
    .unwrap();
    assert_eq!(resumed.state, full.state);
    assert_eq!(resumed.archive, full.archive);

    struct TwoObjectives<'a>(Backbones<'a>, Vec<Objective>);
    impl Problem for TwoObjectives<'_> {
        fn name(&self) -> &str {
            "two"
        }
        fn space(&self) -> &dyn SearchSpace {
            self.0.space()
        }
        fn objectives(&self) -> &[Objective] {
            &self.1
        }
        fn evaluate(&self, g: &Genotype) -> Result<Evaluation> {
            let e = self.0.evaluate(g)?;
            Ok(Evaluation::feasible(e.values[..2].to_vec()))
        }
    }
    let two = TwoObjectives(
        Backbones::new(&stand_in),
        vec![
            Objective::minimize("error"),
            Objective::minimize("latency_ms"),
        ],
    );
    let err = Executor::new(&two, Hadas::new(small_config(), &stand_in).unwrap(), budget)
        .run()
        .unwrap_err();
    assert!(err.to_string().contains("error, latency, energy"), "{err}");
    let bad = HadasConfig {
        top_fraction: 0.0,
        ..HadasConfig::default()
    };
    assert!(Hadas::new(bad, &stand_in).is_err());
}

#[test]
fn any_outer_strategy_searches_dynamic_backbones() {
    use dynas_hadas::{DynamicBackbones, best_within_tolerance};
    use dynas_search::{Provenance, Surrogate, SurrogateParams};
    let stand_in = StandIn::new();
    let space = Backbones::new(&stand_in).space.clone();
    let run = || {
        let problem = DynamicBackbones::new(space.clone(), &stand_in, small_config(), 7).unwrap();
        let params = SurrogateParams {
            initial: 6,
            batch: 3,
            ..SurrogateParams::default()
        };
        let result = Executor::new(
            &problem,
            Surrogate::new(params.check().unwrap()),
            Budget::evaluations(12).unwrap(),
        )
        .seed(1)
        .run()
        .unwrap();
        (problem, result)
    };
    let (problem, result) = run();
    assert_eq!(result.archive.len(), 12);
    assert!(problem.inner_evaluations() > 0);
    // Each backbone is scored by its best dynamic configuration within the tolerance, which
    // is never worse in energy than the static backbone at the highest clocks.
    for r in result.archive.records() {
        let front = problem.inner_front(&r.genotype).unwrap();
        let best = best_within_tolerance(&stand_in, &r.genotype, &front, 0.5)
            .unwrap()
            .unwrap();
        assert_eq!(
            r.evaluation.values,
            vec![
                best.metrics.error,
                best.metrics.latency_ms,
                best.metrics.energy_mj
            ]
        );
        let at_max = stand_in.metrics(&r.genotype, &[], &stand_in.device.max_operating_point());
        assert!(best.metrics.energy_mj <= at_max.energy_mj);
    }
    let backbones: Vec<Genotype> = result
        .front
        .points
        .iter()
        .map(|p| p.genotype.clone())
        .collect();
    let deployment = problem
        .deployment(
            &backbones,
            Some(stand_in.device.clone()),
            Provenance::modelled("stand-in"),
            Provenance::modelled("stand-in"),
        )
        .unwrap();
    assert!(!deployment.points.is_empty());
    // The hand-off: written, read by the runtime, nothing of any exit dropped.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deployment.json");
    deployment.write_json(&file).unwrap();
    let runtime = dynas_dvfs::ConfigurationSet::from_file(&file).unwrap();
    assert_eq!(runtime.len(), deployment.points.len());
    assert!(
        deployment.points.iter().any(|p| !p.exits.is_empty()),
        "the stand-in deploys exits"
    );
    for (c, p) in runtime.configurations().iter().zip(&deployment.points) {
        assert_eq!(c.genotype, p.genotype);
        assert_eq!(c.exits, p.exits, "positions, thresholds and rates");
        assert_eq!(c.point, p.point);
    }
    // Inner searches are seeded from the backbone: the same run gives the same deployment.
    let (again, again_result) = run();
    assert_eq!(again_result.front, result.front);
    assert_eq!(
        again
            .deployment(
                &backbones,
                Some(stand_in.device.clone()),
                Provenance::modelled("stand-in"),
                Provenance::modelled("stand-in"),
            )
            .unwrap(),
        deployment
    );
}

/// The stand-in, with one operating point offered as the inner search's seed.
struct Seeded<'a> {
    stand_in: &'a StandIn,
    seed: OperatingPoint,
}

impl DynamicEvaluator for Seeded<'_> {
    fn exit_positions(&self, backbone: &Genotype) -> Result<usize> {
        self.stand_in.exit_positions(backbone)
    }
    fn device(&self) -> &DeviceProfile {
        self.stand_in.device()
    }
    fn evaluate(
        &self,
        b: &Genotype,
        exits: &[usize],
        point: &OperatingPoint,
    ) -> Result<DynamicMetrics> {
        self.stand_in.evaluate(b, exits, point)
    }
    fn seed_points(&self, _backbone: &Genotype) -> Result<Vec<OperatingPoint>> {
        Ok(vec![self.seed.clone()])
    }
}

#[test]
fn inner_genotypes_encode_and_decode_exits_and_clocks() {
    use dynas_hadas::InnerProblem;
    let stand_in = StandIn::new();
    let inner = InnerProblem::new(Genotype::new(vec![1, 1, 1, 1]), &stand_in).unwrap();
    let point = OperatingPoint::new(None, Some(1_000_000_000), Some(2_000_000_000)).unwrap();
    let genotype = inner.encode(&[0, 2], &point).unwrap();
    assert_eq!(genotype.genes(), &[1, 0, 1, 1, 1]);
    assert_eq!(
        inner.decode(&genotype).unwrap(),
        (vec![0, 2], point.clone())
    );
    // A clock the device does not have, or an exit position it lacks, has no genotype.
    let unknown = OperatingPoint::new(None, Some(1_200_000_000), Some(2_000_000_000)).unwrap();
    assert!(inner.encode(&[], &unknown).is_none());
    assert!(inner.encode(&[3], &point).is_none());
}

#[test]
fn inner_search_starts_from_the_evaluators_seed_points() {
    use dynas_hadas::inner_search;
    let stand_in = StandIn::new();
    let backbone = Genotype::new(vec![2, 2, 2, 2]);
    // The static backbone's lowest-energy point (GPU 1.0 GHz, memory 1 GHz; see StandIn).
    let seed = OperatingPoint::new(None, Some(1_000_000_000), Some(1_000_000_000)).unwrap();
    let seeded_energy = stand_in.metrics(&backbone, &[], &seed).energy_mj;
    let config = HadasConfig {
        inner: Nsga2Config {
            population: 2,
            offspring: 2,
            ..Nsga2Config::default()
        },
        inner_generations: 1,
        ..HadasConfig::default()
    };
    // Over many search seeds, the front always reaches the seed's energy (the seed is
    // evaluated first); without it, a 4-evaluation search of 48 configurations often does not.
    let (mut with_seed_misses, mut without_seed_misses) = (0, 0);
    for search_seed in 0..20 {
        let seeded = Seeded {
            stand_in: &stand_in,
            seed: seed.clone(),
        };
        let (front, evaluations) = inner_search(&seeded, &backbone, &config, search_seed).unwrap();
        assert!(evaluations <= 4, "{evaluations}");
        let lowest = front
            .iter()
            .map(|p| p.metrics.energy_mj)
            .fold(f64::MAX, f64::min);
        with_seed_misses += usize::from(lowest > seeded_energy + 1e-12);
        let (front, _) = inner_search(&stand_in, &backbone, &config, search_seed).unwrap();
        let lowest = front
            .iter()
            .map(|p| p.metrics.energy_mj)
            .fold(f64::MAX, f64::min);
        without_seed_misses += usize::from(lowest > seeded_energy + 1e-12);
    }
    assert_eq!(with_seed_misses, 0);
    assert!(without_seed_misses > 0);
}

/// The stand-in on a board with a DLA clock domain: the DLA clock adds `0.5 (f / f_max)`
/// W, so lower DLA clocks save energy and the inner search has a reason to move it.
struct WithDla {
    stand_in: StandIn,
    device: DeviceProfile,
}

impl WithDla {
    fn new() -> Self {
        let stand_in = StandIn::new();
        let device = stand_in
            .device
            .clone()
            .with_domain(
                dynas_cost::DomainName::new("dla0").unwrap(),
                vec![640_000_000, 1_395_200_000],
            )
            .unwrap();
        Self { stand_in, device }
    }
}

impl DynamicEvaluator for WithDla {
    fn exit_positions(&self, backbone: &Genotype) -> Result<usize> {
        self.stand_in.exit_positions(backbone)
    }
    fn device(&self) -> &DeviceProfile {
        &self.device
    }
    fn evaluate(
        &self,
        b: &Genotype,
        exits: &[usize],
        point: &OperatingPoint,
    ) -> Result<DynamicMetrics> {
        let dla = dynas_cost::ClockDomain::named("dla0").unwrap();
        let hz = point
            .hz(&dla)
            .ok_or_else(|| SearchError::invalid("point", "no DLA clock"))?;
        let mut m = self.stand_in.metrics(b, exits, point);
        m.energy_mj += m.latency_ms * 0.5 * hz as f64 / 1.3952e9;
        Ok(m)
    }
}

#[test]
fn the_inner_search_has_one_gene_per_clock_domain_of_the_board() {
    use dynas_cost::ClockDomain;
    use dynas_hadas::{InnerProblem, inner_search};
    let board = WithDla::new();
    let inner = InnerProblem::new(Genotype::new(vec![1, 1, 1, 1]), &board).unwrap();
    let names: Vec<&str> = inner
        .space()
        .dimensions()
        .iter()
        .map(|d| d.name())
        .collect();
    assert_eq!(
        names,
        ["exit0", "exit1", "exit2", "gpu_hz", "memory_hz", "dla0_hz"]
    );
    let dla = ClockDomain::named("dla0").unwrap();
    let point = OperatingPoint::new(None, Some(1_000_000_000), Some(2_000_000_000))
        .unwrap()
        .with_clock(dla.clone(), 640_000_000)
        .unwrap();
    let genotype = inner.encode(&[1], &point).unwrap();
    assert_eq!(genotype.genes(), &[0, 1, 0, 1, 1, 0]);
    assert_eq!(inner.decode(&genotype).unwrap(), (vec![1], point.clone()));
    // Without its DLA clock the point is not one of the board's, so it has no genotype.
    let no_dla = OperatingPoint::new(None, Some(1_000_000_000), Some(2_000_000_000)).unwrap();
    assert!(inner.encode(&[1], &no_dla).is_none());
    // A full inner search: every configuration on the front carries a DLA clock.
    let (front, _) = inner_search(
        &board,
        &Genotype::new(vec![2, 2, 2, 2]),
        &HadasConfig::default(),
        0,
    )
    .unwrap();
    assert!(!front.is_empty());
    assert!(front.iter().all(|p| p.point.hz(&dla).is_some()));
}
