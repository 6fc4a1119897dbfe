//! Unit tests of `manager`.

use super::*;
use crate::config::Configuration;
use crate::testutil::set;
use approx::assert_relative_eq;

fn brute_best(set: &ConfigurationSet, budget: f64, floor: f64) -> Option<ConfigId> {
    set.iter()
        .filter(|(_, c)| c.latency_ms <= budget && c.accuracy >= floor)
        .min_by(|(_, a), (_, b)| {
            a.energy_mj
                .total_cmp(&b.energy_mj)
                .then(b.accuracy.total_cmp(&a.accuracy))
        })
        .map(|(id, _)| id)
}

fn obs(current: ConfigId, lat: &[f64]) -> Observation<'_> {
    Observation {
        current,
        latencies_ms: lat,
        utilisation: 0.5,
        co_runner_load: None,
        energy_mj: None,
    }
}

#[test]
fn pareto_front_matches_brute_force() {
    let s = set();
    let c = s.configurations();
    let front = pareto_front(&s);
    for (i, x) in c.iter().enumerate() {
        let dominated = c.iter().any(|y| {
            y.latency_ms <= x.latency_ms
                && y.energy_mj <= x.energy_mj
                && y.accuracy >= x.accuracy
                && (y.latency_ms < x.latency_ms
                    || y.energy_mj < x.energy_mj
                    || y.accuracy > x.accuracy)
        });
        let in_front = front.contains(&ConfigId(i));
        // Exact duplicates keep one representative.
        if dominated {
            assert!(!in_front, "{i} is dominated but kept");
        } else if !in_front {
            assert!(
                front.iter().any(|f| c[f.0].latency_ms == x.latency_ms
                    && c[f.0].energy_mj == x.energy_mj
                    && c[f.0].accuracy == x.accuracy),
                "{i} is non-dominated but missing"
            );
        }
    }
    assert!(front.len() < c.len());
}

#[test]
fn a_miss_moves_at_once_to_the_brute_force_best_within_the_budget() {
    let s = set();
    for (target, floor, load) in [(16.0, 73.0, 0.3), (9.6, 70.0, 0.5), (32.0, 75.0, 0.2)] {
        let cons = Constraints::new(target, Some(floor), None).expect("constraints");
        let params = ManagerSettings {
            history: 5,
            headroom: 0.0,
            up_margin: 0.1,
            up_patience: 3,
            objective: ManagerObjective::MinEnergy,
            fallback: Fallback::PreferDeadline,
            ..ManagerSettings::default()
        }
        .check()
        .expect("params");
        let mut m = RuntimeManager::new(s.clone(), params, &cons);
        let start = m.initial();
        assert_eq!(Some(start), brute_best(&s, target, floor));
        let nominal = s.configurations()[start.0].latency_ms;
        let measured = nominal / (1.0 - load);
        if measured <= target {
            continue;
        }
        let d = m.decide(&obs(start, &[measured; 5]), &cons);
        assert_eq!(d.reason, DecisionReason::LatencyMiss);
        let expect = brute_best(&s, target * (1.0 - load), floor).expect("feasible");
        assert_eq!(
            s.configurations()[d.config.0].energy_mj,
            s.configurations()[expect.0].energy_mj
        );
    }
}

#[test]
fn staircase_lookups_agree_with_brute_force_on_random_constraints() {
    use rand::Rng;
    let s = set();
    let mut rng = dynas_space::seeded_rng(11);
    let params = ManagerSettings {
        history: 1,
        headroom: 0.0,
        up_margin: 0.0,
        up_patience: 1,
        objective: ManagerObjective::MinEnergy,
        fallback: Fallback::PreferDeadline,
        ..ManagerSettings::default()
    }
    .check()
    .expect("params");
    for _ in 0..200 {
        let target = rng.random_range(3.0..60.0);
        let floor = rng.random_range(69.0..78.0);
        let load = rng.random_range(0.0..0.8);
        let cons = Constraints::new(target, Some(floor), None).expect("constraints");
        let mut m = RuntimeManager::new(s.clone(), params, &cons);
        // Observe the slowest configuration missing badly: the manager must move to the
        // brute-force best within target x (1 - load) when one exists.
        let slow = ConfigId(s.len() - 1);
        let nominal = s.configurations()[slow.0].latency_ms;
        let measured = (nominal / (1.0 - load)).max(target * 1.01);
        let slowdown = measured / nominal;
        let d = m.decide(&obs(slow, &[measured]), &cons);
        match brute_best(&s, target / slowdown, floor) {
            Some(best) => {
                assert_ne!(d.reason, DecisionReason::Infeasible);
                assert_eq!(
                    s.configurations()[d.config.0].energy_mj,
                    s.configurations()[best.0].energy_mj
                );
            }
            None => assert_eq!(d.reason, DecisionReason::Infeasible),
        }
    }
}

#[test]
fn hysteresis_waits_for_patience_and_does_not_oscillate() {
    let s = set();
    let cons = Constraints::new(16.0, Some(73.0), None).expect("constraints");
    let params = ManagerSettings {
        history: 3,
        headroom: 0.0,
        up_margin: 0.1,
        up_patience: 3,
        objective: ManagerObjective::MinEnergy,
        fallback: Fallback::PreferDeadline,
        ..ManagerSettings::default()
    }
    .check()
    .expect("params");
    let mut m = RuntimeManager::new(s.clone(), params, &cons);
    let start = m.initial();
    let nominal = s.configurations()[start.0].latency_ms;
    // Heavy load: move to a faster configuration.
    let d = m.decide(&obs(start, &[nominal / 0.4; 3]), &cons);
    assert_ne!(d.config, start);
    let fast = d.config;
    // Load gone: the slack move back needs 3 consecutive proposals.
    let fast_nominal = s.configurations()[fast.0].latency_ms;
    let mut moved_at = None;
    for w in 1..=6 {
        let d = m.decide(&obs(fast, &[fast_nominal; 3]), &cons);
        if d.config != fast {
            moved_at = Some(w);
            assert_eq!(d.reason, DecisionReason::Slack);
            break;
        }
    }
    assert_eq!(moved_at, Some(3));
    // Steady conditions afterwards: no more switches.
    let (_, switches_before) = m.stats();
    let here = m.initial();
    let lat = s.configurations()[here.0].latency_ms;
    for _ in 0..20 {
        let d = m.decide(&obs(here, &[lat; 3]), &cons);
        assert_eq!(d.config, here);
    }
    assert_eq!(m.stats().1, switches_before);
}

#[test]
fn infeasible_constraints_use_the_documented_fallback() {
    let s = set();
    // No configuration reaches 80 % accuracy.
    let cons = Constraints::new(16.0, Some(80.0), None).expect("constraints");
    let deadline = RuntimeManager::new(s.clone(), ManagerParams::default(), &cons);
    let id = deadline.initial();
    let best_acc_in_time = s
        .iter()
        .filter(|(_, c)| c.latency_ms <= 14.4)
        .map(|(_, c)| c.accuracy)
        .fold(f64::MIN, f64::max);
    assert_eq!(s.configurations()[id.0].accuracy, best_acc_in_time);
    let mut accuracy = RuntimeManager::new(
        s.clone(),
        ManagerSettings {
            history: 5,
            headroom: 0.1,
            up_margin: 0.1,
            up_patience: 3,
            objective: ManagerObjective::MinEnergy,
            fallback: Fallback::PreferAccuracy,
            ..ManagerSettings::default()
        }
        .check()
        .expect("params"),
        &cons,
    );
    assert_eq!(accuracy.initial(), s.most_accurate());
    let d = accuracy.decide(&obs(accuracy.initial(), &[80.0]), &cons);
    assert_eq!(d.reason, DecisionReason::Infeasible);
    // Impossible deadline, prefer-deadline: the fastest configuration.
    let tight = Constraints::new(0.16, None, None).expect("constraints");
    let mut m = RuntimeManager::new(s.clone(), ManagerParams::default(), &tight);
    assert_eq!(m.initial(), s.fastest());
    let d = m.decide(&obs(ConfigId(0), &[8.0]), &tight);
    assert_eq!(
        (d.config, d.reason),
        (s.fastest(), DecisionReason::Infeasible)
    );
    // Energy budget violations are flagged.
    let budget = Constraints::new(16.0, None, Some(8.0)).expect("constraints");
    let mut m = RuntimeManager::new(s, ManagerParams::default(), &budget);
    assert!(
        m.decide(&obs(m.initial(), &[1.6]), &budget)
            .over_energy_budget
    );
}

#[test]
fn changing_the_floor_rebuilds_the_frontier() {
    let s = set();
    let low = Constraints::new(32.0, Some(70.0), None).expect("constraints");
    let high = Constraints::new(32.0, Some(77.0), None).expect("constraints");
    let mut m = RuntimeManager::new(
        s.clone(),
        ManagerSettings {
            history: 2,
            headroom: 0.0,
            up_margin: 0.0,
            up_patience: 1,
            objective: ManagerObjective::MinEnergy,
            fallback: Fallback::PreferDeadline,
            ..ManagerSettings::default()
        }
        .check()
        .expect("p"),
        &low,
    );
    let start = m.initial();
    assert!(s.configurations()[start.0].accuracy < 77.0);
    let lat = s.configurations()[start.0].latency_ms;
    let d = m.decide(&obs(start, &[lat]), &high);
    assert_eq!(d.reason, DecisionReason::AccuracyBelowFloor);
    assert!(s.configurations()[d.config.0].accuracy >= 77.0);
}

fn obs_load(current: ConfigId, lat: &[f64], load: f64) -> Observation<'_> {
    Observation {
        co_runner_load: Some(load),
        ..obs(current, lat)
    }
}

#[test]
fn predictive_mode_moves_on_a_load_rise_before_the_latencies_miss() {
    let s = set();
    let cons = Constraints::new(16.0, None, None).expect("constraints");
    let reactive = ManagerSettings {
        history: 5,
        headroom: 0.1,
        up_margin: 0.1,
        up_patience: 3,
        objective: ManagerObjective::MaxAccuracy,
        fallback: Fallback::PreferDeadline,
        ..ManagerSettings::default()
    }
    .check()
    .expect("params");
    let predictive = reactive.with_mode(ManagerMode::Predictive);
    let mut r = RuntimeManager::new(s.clone(), reactive, &cons);
    let mut p = RuntimeManager::new(s.clone(), predictive, &cons);
    let start = p.initial();
    assert_eq!(start, r.initial());
    let nominal = s.configurations()[start.0].latency_ms;
    // The start configuration fits 16 ms x 0.9; at 1.5x it would miss.
    assert!(nominal * 1.5 > 16.0 * 0.95, "nominal {nominal}");
    // An idle window, then a window whose latencies were still nominal but whose load
    // reading at its end shows a co-runner taking half the device.
    for (m, expect_move) in [(&mut r, false), (&mut p, true)] {
        let d = m.decide(&obs_load(start, &[nominal; 5], 0.0), &cons);
        assert_eq!(d.config, start);
        let d = m.decide(&obs_load(start, &[nominal; 5], 0.5), &cons);
        assert_eq!(d.config != start, expect_move, "{:?}", d);
        if expect_move {
            assert_eq!(d.reason, DecisionReason::PredictedMiss);
            // The most accurate configuration within the budget at slowdown 1 + 1 x 0.5.
            let best = s
                .configurations()
                .iter()
                .filter(|c| c.latency_ms <= 16.0 * 0.9 / 1.5)
                .map(|c| c.accuracy)
                .fold(f64::MIN, f64::max);
            assert_relative_eq!(s.configurations()[d.config.0].accuracy, best);
        }
    }
}

#[test]
fn predictive_mode_learns_the_load_gain_and_follows_the_latency_trend() {
    let s = set();
    let cons = Constraints::new(16.0, None, None).expect("constraints");
    let params = ManagerParams::default().with_mode(ManagerMode::Predictive);
    let mut m = RuntimeManager::new(s.clone(), params, &cons);
    let here = ConfigId(0);
    let nominal = s.configurations()[here.0].latency_ms;
    // Load 0.4 slows the device by only 1.2x (gain 0.5), repeatedly.
    for _ in 0..10 {
        m.decide(&obs_load(here, &[1.2 * nominal; 4], 0.4), &cons);
    }
    assert_relative_eq!(m.predictor.load_gain(), 0.5, max_relative = 1e-9);
    assert_relative_eq!(
        m.predictor.predict(Some(0.8)).expect("prediction"),
        1.4,
        max_relative = 1e-9
    );
    // Without a load signal: a rising slowdown is extrapolated by half its last rise.
    let mut t = SlowdownPredictor::default();
    t.observe(1.0, None);
    t.observe(1.4, None);
    assert_relative_eq!(t.predict(None).expect("trend"), 1.6, max_relative = 1e-12);
    t.observe(1.2, None);
    assert_relative_eq!(t.predict(None).expect("trend"), 1.2, max_relative = 1e-12);
}

#[test]
fn reactive_and_predictive_choices_on_a_recorded_latency_sequence() {
    // A hand-written sequence shaped like a co-runner step from 0 to 0.7 and back: per
    // window, the latencies of the 5.0 ms member (scaled to the member that ran) and the
    // load reading at the window's end, which rises one window before the latencies do.
    let family = family(&[(2.1, 88.0), (3.4, 90.0), (5.0, 91.0)]);
    let cons = Constraints::new(6.0, None, None).expect("constraints");
    let windows: [(&[f64], f64); 5] = [
        (&[5.1, 4.9, 5.0, 5.2], 0.02),
        (&[5.0, 5.1, 4.9, 5.3], 0.65),
        (&[8.7, 9.4, 8.9, 9.1], 0.70),
        (&[9.0, 9.2, 8.8, 9.3], 0.69),
        (&[5.0, 5.2, 5.1, 4.9], 0.03),
    ];
    let run = |mode| {
        let params = ManagerSettings {
            history: 4,
            headroom: 0.1,
            up_margin: 0.1,
            up_patience: 2,
            objective: ManagerObjective::MaxAccuracy,
            fallback: Fallback::PreferDeadline,
            ..ManagerSettings::default()
        }
        .check()
        .expect("params")
        .with_mode(mode);
        let mut m = RuntimeManager::new(family.clone(), params, &cons);
        let mut current = m.initial();
        let mut chosen = vec![current];
        for (lat, load) in windows {
            let scaled: Vec<f64> = lat
                .iter()
                .map(|l| l * family.configurations()[current.0].latency_ms / 5.0)
                .collect();
            current = m.decide(&obs_load(current, &scaled, load), &cons).config;
            chosen.push(current);
        }
        chosen.into_iter().map(|c| c.0).collect::<Vec<_>>()
    };
    // Both start on the most accurate member (5.0 ms fits 5.4 ms). Reactive leaves it
    // after the first slow window; predictive already on the load reading.
    let reactive = run(ManagerMode::Reactive);
    let predictive = run(ManagerMode::Predictive);
    assert_eq!(reactive[..4], [2, 2, 2, 0]);
    assert_eq!(predictive[..3], [2, 2, 0]);
}

#[test]
fn params_are_validated() {
    assert!(
        ManagerSettings {
            history: 0,
            headroom: 0.1,
            up_margin: 0.1,
            up_patience: 1,
            objective: ManagerObjective::MinEnergy,
            fallback: Fallback::PreferDeadline,
            ..ManagerSettings::default()
        }
        .check()
        .is_err()
    );
    assert!(
        ManagerSettings {
            history: 1,
            headroom: 0.1,
            up_margin: 1.0,
            up_patience: 1,
            objective: ManagerObjective::MinEnergy,
            fallback: Fallback::PreferDeadline,
            ..ManagerSettings::default()
        }
        .check()
        .is_err()
    );
    assert!(
        ManagerSettings {
            history: 1,
            headroom: 0.1,
            up_margin: 0.1,
            up_patience: 0,
            objective: ManagerObjective::MinEnergy,
            fallback: Fallback::PreferDeadline,
            ..ManagerSettings::default()
        }
        .check()
        .is_err()
    );
    assert!(Constraints::new(0.0, None, None).is_err());
    assert!(Constraints::new(1.0, Some(f64::NAN), None).is_err());
    assert!(Constraints::new(1.0, None, Some(-1.0)).is_err());
}

/// Three members of 2, 3 and 4 ms (more accurate when slower), no energy.
fn three_members() -> ConfigurationSet {
    family(&[(2.0, 88.0), (3.0, 90.0), (4.0, 91.0)])
}

/// A subnet family of `(latency ms, accuracy)` members at one operating point, no energy.
fn family(members: &[(f64, f64)]) -> ConfigurationSet {
    ConfigurationSet::new(
        members
            .iter()
            .enumerate()
            .map(|(i, &(latency_ms, accuracy))| Configuration {
                genotype: dynas_space::Genotype::new(vec![i]),
                label: String::new(),
                exits: vec![],
                point: dynas_cost::OperatingPoint::default(),
                accuracy,
                latency_ms,
                energy_mj: 0.0,
            })
            .collect(),
    )
    .expect("family")
}

fn guarded(guard: Option<MissGuard>) -> ManagerParams {
    ManagerSettings {
        history: 8,
        objective: ManagerObjective::MaxAccuracy,
        miss_guard: guard,
        ..ManagerSettings::default()
    }
    .check()
    .expect("params")
}

#[test]
fn the_miss_guard_leaves_a_member_whose_latency_tail_misses_though_its_mean_fits() {
    // Target 5.5 ms. The 4 ms member runs at nominal speed except one inference in eight,
    // delayed by 2 ms (a preemption): mean 4.25 ms fits the mean budget (0.9 x 5.5 = 4.95),
    // but one in eight inferences misses. The same 2 ms delay would not make the 3 ms member
    // miss (5.0 <= 5.5).
    let family = three_members();
    let cons = Constraints::new(5.5, None, None).expect("constraints");
    let window = [4.0, 4.0, 4.0, 6.0, 4.0, 4.0, 4.0, 4.0];
    let run = |guard| {
        let mut m = RuntimeManager::new(family.clone(), guarded(guard), &cons);
        let mut current = m.initial();
        assert_eq!(
            current,
            ConfigId(2),
            "idle choice: the most accurate member"
        );
        let mut chosen = Vec::new();
        for _ in 0..3 {
            let lat: Vec<f64> = window
                .iter()
                .map(|l| l - 4.0 + family.configurations()[current.0].latency_ms)
                .collect();
            current = m.decide(&obs(current, &lat), &cons).config;
            chosen.push(current.0);
        }
        chosen
    };
    // Means only: stays on the 4 ms member (12.5 % of its inferences miss).
    assert_eq!(run(None), [2, 2, 2]);
    // A 5 % miss budget: the tail (1 of 8 samples) rules out 4 ms at once, not 3 ms.
    let guard = MissGuard {
        miss_budget: 0.05,
        samples: 64,
    };
    assert_eq!(run(Some(guard)), [1, 1, 1]);
    // A 20 % budget tolerates one miss in eight: the guard does not act.
    let loose = MissGuard {
        miss_budget: 0.2,
        samples: 64,
    };
    assert_eq!(run(Some(loose)), [2, 2, 2]);
}

#[test]
fn the_miss_guard_falls_back_to_the_fastest_when_every_member_would_miss_and_forgets_old_tails() {
    let family = three_members();
    let cons = Constraints::new(5.5, None, None).expect("constraints");
    let guard = MissGuard {
        miss_budget: 0.0,
        samples: 16,
    };
    let mut m = RuntimeManager::new(family.clone(), guarded(Some(guard)), &cons);
    // A 4 ms delay would make even the 2 ms member miss (6.0 > 5.5).
    let d = m.decide(&obs(ConfigId(2), &[4.0, 8.0, 4.0, 4.0]), &cons);
    assert_eq!(d.config, ConfigId(0));
    assert_eq!(d.reason, DecisionReason::Infeasible);
    // Quiet windows at the fastest member: once the delayed sample left the 16-sample
    // memory, the guard allows the slower members again and the manager climbs (patience 3).
    let mut current = d.config;
    let mut seen = vec![];
    for _ in 0..8 {
        current = m.decide(&obs(current, &[2.0; 4]), &cons).config;
        seen.push(current.0);
    }
    // The delayed sample ages out after 16 - 3 = 13 more samples (4 windows); moves up
    // need 3 agreeing windows after that.
    assert_eq!(seen[..3], [0, 0, 0]);
    assert_eq!(*seen.last().expect("windows"), 2);
}

#[test]
fn miss_guard_settings_are_validated_and_the_target_can_change() {
    for (budget, samples) in [(1.0, 16), (-0.1, 16), (f64::NAN, 16), (0.01, 0)] {
        let settings = ManagerSettings {
            miss_guard: Some(MissGuard {
                miss_budget: budget,
                samples,
            }),
            ..ManagerSettings::default()
        };
        assert!(settings.check().is_err(), "{budget} / {samples} accepted");
        assert!(
            ManagerParams::default()
                .with_miss_guard(settings.miss_guard)
                .is_err()
        );
    }
    assert!(
        ManagerSettings {
            miss_guard: Some(MissGuard::default()),
            ..ManagerSettings::default()
        }
        .check()
        .is_ok()
    );
    // The samples are re-binned for a new target: the 2 ms delay that ruled out the 4 ms
    // member at 5.5 ms does not at 7 ms.
    let family = three_members();
    let guard = MissGuard {
        miss_budget: 0.05,
        samples: 64,
    };
    let tight = Constraints::new(5.5, None, None).expect("constraints");
    let loose = Constraints::new(7.0, None, None).expect("constraints");
    let mut m = RuntimeManager::new(family, guarded(Some(guard)), &tight);
    let window = [4.0, 4.0, 4.0, 6.0, 4.0, 4.0, 4.0, 4.0];
    assert_eq!(
        m.decide(&obs(ConfigId(2), &window), &tight).config,
        ConfigId(1)
    );
    let mut m2 = m.clone();
    m2.reset();
    assert_eq!(
        m2.decide(&obs(ConfigId(2), &window), &loose).config,
        ConfigId(2)
    );
    // Same memory, target relaxed: re-binned, the 4 ms member is admissible again.
    let d = m.decide(&obs(ConfigId(1), &[3.0; 8]), &loose);
    assert_eq!(d.reason, DecisionReason::Hold);
    let tail = m.tail.as_mut().expect("guard state");
    assert_relative_eq!(tail.latency_cap(None), 4.0);
}

#[test]
fn the_predictive_miss_guard_remembers_the_tail_of_each_load_level() {
    // Target 5.5 ms. Under a load reading of 0.8 one inference in eight is delayed by 2 ms
    // (enough to make the 4 ms member miss, not the 3 ms one); at reading 0 none is.
    let family = three_members();
    let cons = Constraints::new(5.5, None, None).expect("constraints");
    let run = |guard: Option<MissGuard>| {
        let params = guarded(guard).with_mode(ManagerMode::Predictive);
        let mut m = RuntimeManager::new(family.clone(), params, &cons);
        let mut current = m.initial();
        let mut step = |current: ConfigId, delayed: bool, reading: f64| {
            let nominal = family.configurations()[current.0].latency_ms;
            let lat: Vec<f64> = (0..8)
                .map(|i| nominal + if delayed && i == 3 { 2.0 } else { 0.0 })
                .collect();
            let d = m.decide(&obs_load(current, &lat, reading), &cons);
            d.config
        };
        // Idle, then a loaded phase (the delayed windows run under reading 0.8), then idle
        // again until the manager is back on the 4 ms member.
        current = step(current, false, 0.0);
        current = step(current, false, 0.8);
        for _ in 0..6 {
            current = step(current, true, 0.8);
        }
        current = step(current, true, 0.0);
        for _ in 0..12 {
            current = step(current, false, 0.0);
        }
        assert_eq!(
            current,
            ConfigId(2),
            "back on the most accurate member when idle"
        );
        // The reading rises again; the window just observed ran idle and was clean.
        step(current, false, 0.8)
    };
    // Without the guard the learnt load gain (delays are rare, so the mean slowdown is small)
    // keeps the 4 ms member; with it, the 0.8 bucket's tail moves to the 3 ms one at once.
    assert_eq!(run(None), ConfigId(2));
    let guard = MissGuard {
        miss_budget: 0.0,
        samples: 32,
    };
    assert_eq!(run(Some(guard)), ConfigId(1));
}
