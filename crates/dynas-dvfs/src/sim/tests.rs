use super::*;
use crate::manager::{Fallback, ManagerObjective, ManagerSettings};
use crate::testutil::set;

#[test]
fn a_delay_profile_draws_from_the_loads_bin_or_the_nearest_filled_one() {
    let mut p = DelayProfile::new(4).expect("bins");
    assert!(p.is_empty());
    let mut rng = dynas_space::seeded_rng(0);
    assert_eq!(p.sample(0.5, &mut rng), None);
    p.push(0.1, 1.0);
    p.push(0.9, 5.0);
    p.push(1.0, 5.0);
    p.push(f64::NAN, 7.0);
    p.push(0.5, f64::INFINITY);
    assert_eq!(p.len(), 3);
    for _ in 0..20 {
        assert_eq!(p.sample(0.0, &mut rng), Some(1.0));
        assert_eq!(p.sample(0.8, &mut rng), Some(5.0));
        // 0.3 is bin 1 (empty): bins 0 and 2 are as near; 0 holds delays.
        assert_eq!(p.sample(0.3, &mut rng), Some(1.0));
        // 0.6 is bin 2 (empty): bin 3 is nearer than bin 0.
        assert_eq!(p.sample(0.6, &mut rng), Some(5.0));
    }
    assert!(DelayProfile::new(0).is_err());
    // Without a reference latency one draw, whatever the nominal latency.
    assert_eq!(p.sample_for(10.0, 0.0, &mut rng), Some(1.0));
    // Measured on 2 ms inferences: a 4 ms one sums two draws, a 3 ms one one or two
    // (about half each), a 0 ms one none.
    let p = p.measured_at(2.0).expect("reference");
    assert_eq!(p.sample_for(4.0, 0.0, &mut rng), Some(2.0));
    assert_eq!(p.sample_for(0.0, 0.0, &mut rng), Some(0.0));
    let twos = (0..1000)
        .filter(|_| p.sample_for(3.0, 0.0, &mut rng) == Some(2.0))
        .count();
    assert!((400..600).contains(&twos), "{twos}");
    assert!(DelayProfile::default().measured_at(0.0).is_err());
    assert!(DelayProfile::default().measured_at(f64::NAN).is_err());
}

#[test]
fn measured_delays_replace_processor_sharing_in_the_simulator() {
    let s = set();
    let (fastest_id, fastest) = s
        .configurations()
        .iter()
        .enumerate()
        .map(|(i, c)| (ConfigId(i), c.latency_ms))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("configurations");
    let target = 1.5 * fastest;
    let cons = Constraints::new(target, None, None).expect("constraints");
    let trace = LoadTrace::shipped("step").expect("trace");
    let run = |contention: Contention| {
        let mut g = StaticGovernor::new(s.clone(), fastest_id).expect("static");
        Simulator::new(s.clone(), SimParams::for_target(&cons))
            .with_contention(contention)
            .run(&mut g, &trace, &cons)
            .expect("run")
    };
    // No measured delay: every inference takes its nominal latency, whatever the load.
    let idle = run(Contention::MeasuredDelays(DelayProfile::default()));
    assert_eq!(idle.deadline_misses, 0);
    // A delay that always pushes the fastest past the target: every inference misses.
    let mut late = DelayProfile::default();
    late.push(0.5, target + 0.5 - fastest);
    let all = run(Contention::MeasuredDelays(late));
    assert_eq!(all.deadline_misses, all.inferences);
    // Processor sharing stretches by the load instead: misses only above a third.
    let shared = run(Contention::ProcessorSharing);
    assert!(shared.deadline_misses > 0 && shared.deadline_misses < shared.inferences);
}

fn run_all(trace: &str) -> Vec<SimReport> {
    let s = set();
    let cons = Constraints::new(16.0, Some(73.0), None).expect("constraints");
    compare_policies(
        &s,
        &LoadTrace::shipped(trace).expect("trace"),
        &cons,
        ManagerParams::default(),
        SimParams::for_target(&cons),
    )
    .expect("compare")
}

#[test]
fn joint_uses_less_energy_than_subnet_switching_at_no_more_misses() {
    for trace in ["step", "periodic", "bursty", "steady"] {
        let r = run_all(trace);
        let (stat, subnet, dvfs, joint) = (&r[0], &r[1], &r[2], &r[3]);
        for x in &r {
            eprintln!(
                "{trace:9} {:12} misses {:4} acc {:.2} E/inf {:.3} switches {}",
                x.policy, x.deadline_misses, x.mean_accuracy, x.energy_per_inference_mj, x.switches
            );
        }
        assert!(joint.energy_mj < 0.95 * subnet.energy_mj, "{trace}");
        assert!(joint.energy_mj <= dvfs.energy_mj * 1.001, "{trace}");
        assert!(
            joint.deadline_misses <= subnet.deadline_misses + joint.inferences / 100,
            "{trace}"
        );
        // Both managers drop the floor only through the same fallback at peak load.
        assert!(joint.mean_accuracy >= subnet.mean_accuracy - 0.5, "{trace}");
        assert_eq!(stat.switches, 0);
    }
    // Static at max clocks cannot absorb the 55 % step.
    let step = run_all("step");
    assert!(step[0].deadline_misses > step[3].deadline_misses);
}

#[test]
fn reports_are_deterministic_per_seed_and_consistent() {
    let s = set();
    let cons = Constraints::new(16.0, None, None).expect("constraints");
    let trace = LoadTrace::shipped("bursty").expect("trace");
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
    .expect("params");
    let run = |seed| {
        let mut g = RuntimeManager::new(s.clone(), params, &cons);
        Simulator::new(s.clone(), SimParams::for_target(&cons).with_seed(seed))
            .run(&mut g, &trace, &cons)
            .expect("run")
    };
    let (a, b) = (run(1), run(1));
    assert_eq!(a, b);
    assert_eq!(a.inferences, 2000);
    let window_sum: f64 = a.timeline.iter().map(|w| w.energy_mj).sum();
    approx::assert_relative_eq!(window_sum, a.energy_mj, max_relative = 1e-9);
    assert_eq!(
        a.switches,
        a.timeline
            .windows(2)
            .filter(|w| w[0].config != w[1].config)
            .count()
    );
    assert!(SimParams::new(0, 1.0, 0.0, 0, SwitchingCost::default()).is_err());
    assert!(SwitchingCost::new(-1.0, 0.0, 0.0, 0.0).is_err());
    assert!(Policy::from_name("joint").is_ok() && Policy::from_name("x").is_err());
}
