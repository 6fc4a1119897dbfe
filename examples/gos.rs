//! GOS operator replacement (pure-Rust part): every operator of a given network written in its
//! index form, the cheaper replacements derived from that form, and a search over which
//! operator to replace by what.
//!
//! A k x k convolution reduces over `(ci, kh, kw)`; splitting that reduction into two stages
//! gives depthwise-separable, spatially separable and low-rank replacements (plus grouped and
//! dilated ones). The program prints them for a small VGG-style network, then searches the
//! per-operator choices with NSGA-II for a latency proxy (MACs) against a
//! data-free accuracy proxy (the share of parameters a replacement drops). Training and
//! fine-tuning the adapted network need libtorch: see `dynas gos` and `examples/experiments/`.
//!
//! ```text
//! cargo run -p dynas --example gos
//! ```

use dynas::cost::MacsModel;
use dynas::gos::search::{
    CandidateParams, Factorisation, GosLatency, GosProblem, GosSpace, Replacement, UnitErrors,
};
use dynas::prelude::*;
use dynas::search::Nsga2Config;
use dynas::space::Layer;
use dynas::space::{Activation, OpExpr, TensorShape};

fn vgg() -> Network {
    let input = TensorShape::new(1, 28, 28);
    let c1 = Layer::conv("conv1", input, 32, 3, 1, Activation::Relu);
    let c2 = Layer::conv("conv2", c1.output(), 64, 3, 2, Activation::Relu);
    let c3 = Layer::conv("conv3", c2.output(), 128, 3, 2, Activation::Relu);
    let pool = Layer::global_avg_pool("pool", c3.output());
    let fc = Layer::linear("fc", 128, 10);
    Network::new(input, vec![c1, c2, c3, pool, fc])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let network = vgg();
    let space = GosSpace::new(network.clone(), &CandidateParams::default().check()?)?;

    // Each replaceable operator in its index form; the candidates of one of them.
    for unit in space.units() {
        println!("{}: {}", unit.name(&network), unit.expr);
    }
    let conv2 = &space.units()[1];
    println!("{} candidates, cheapest first:", conv2.name(&network));
    for choice in &conv2.choices {
        let terms = choice.apply(&conv2.expr)?;
        let macs: u64 = terms.iter().map(OpExpr::macs).sum();
        let percent = 100.0 * macs as f64 / conv2.expr.macs() as f64;
        let name = choice.to_string();
        println!(
            "    {name:<15} {} term(s), {percent:5.1} % of the MACs",
            terms.len()
        );
    }
    // What the classic rewrite looks like in index form.
    let separable = Replacement::Factorised(Factorisation::depthwise_separable());
    if conv2.choices.contains(&separable) {
        println!(
            "{} as {separable} (depthwise k x k, then 1 x 1):",
            conv2.name(&network)
        );
        for term in separable.apply(&conv2.expr)? {
            println!("    {term}");
        }
    }

    // Search which operators to replace by what.
    // Latency here is a MACs proxy (1 ms per 10 M MACs); use a `GosLut` timed on your host or
    // your board's cost model in practice.
    let model = MacsModel::new(1e7)?;
    let latency = GosLatency::Model(Box::new(model), OperatingPoint::default());
    let errors = UnitErrors::compression_prior(&space);
    let problem = GosProblem::new(space, latency, errors)?;
    let original = problem.gos_space().original();
    println!("original: {:.4} ms", problem.latency_ms(&original)?);
    let config = Nsga2Config {
        population: 16,
        offspring: 16,
        ..Nsga2Config::default()
    };
    let result = Executor::new(&problem, Nsga2::new(config)?, Budget::evaluations(150)?)
        .seed(0)
        .run()?;
    println!("front ({} plans):", result.front.len());
    for p in result
        .front
        .points
        .iter()
        .step_by(result.front.len().div_ceil(6))
    {
        let plan = problem.gos_space().plan(&p.genotype)?;
        let replaced: Vec<String> = plan
            .replacements
            .iter()
            .map(|(u, r)| format!("{u}={r}"))
            .collect();
        println!(
            "  {:.4} ms  proxy {:.2}  {}",
            p.values[0],
            p.values[1],
            replaced.join(" ")
        );
    }
    Ok(())
}
