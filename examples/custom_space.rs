//! Your own search space: implement [`SearchSpace`] (its dimensions and how a genotype decodes
//! into a [`Network`]) and every strategy can search it.
//!
//! The space is a small CNN for 28x28 grey images: three stride-2 conv stages, each with a width
//! and a kernel size gene (every gene changes the network: a gene that some genotypes ignore
//! would put copies of one network on the front). Sampling, validation, `describe` / `parse_described`, mutation and crossover come
//! from the trait. The program searches it with NSGA-II for a made-up accuracy (a closure of the
//! network's MACs: put your trained-network accuracy there) against the Jetson TX2's latency.
//!
//! ```text
//! cargo run -p dynas --example custom_space
//! ```

use dynas::cost::{AnalyticalModel, AnalyticalParams};
use dynas::prelude::*;
use dynas::search::{AccuracyFn, HardwareProblem, Metric, Nsga2Config};
use dynas::space::{Activation, TensorShape};
use dynas::space::{Dimension, Layer};

const WIDTHS: [usize; 3] = [16, 32, 64];
const KERNELS: [usize; 2] = [3, 5];

/// Stage `i` is a stride-2 conv of `width_i` channels with a `kernel_i` x `kernel_i` kernel.
struct SmallCnn {
    dimensions: Vec<Dimension>,
}

impl SmallCnn {
    fn new() -> dynas::space::Result<Self> {
        let mut dimensions = Vec::new();
        for i in 0..3 {
            dimensions.push(Dimension::from_values(format!("width{i}"), &WIDTHS)?);
            dimensions.push(Dimension::from_values(format!("kernel{i}"), &KERNELS)?);
        }
        Ok(Self { dimensions })
    }
}

impl SearchSpace for SmallCnn {
    fn name(&self) -> &str {
        "small-cnn"
    }

    fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }

    fn decode(&self, genotype: &Genotype) -> dynas::space::Result<Network> {
        self.validate(genotype)?; // length and ranges, from the trait
        let g = genotype.genes();
        let input = TensorShape::new(1, 28, 28);
        let (mut layers, mut shape) = (Vec::new(), input);
        for stage in 0..3 {
            let (width, kernel) = (WIDTHS[g[2 * stage]], KERNELS[g[2 * stage + 1]]);
            let conv = Layer::conv(
                format!("conv{stage}"),
                shape,
                width,
                kernel,
                2,
                Activation::Relu,
            );
            shape = conv.output();
            layers.push(conv);
        }
        layers.push(Layer::global_avg_pool("pool", shape));
        layers.push(Layer::linear("fc", shape.channels, 10));
        Ok(Network::new(input, layers))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let space = SmallCnn::new()?;
    let g = space.sample(&mut seeded_rng(0));
    let text = space.describe(&g)?;
    assert_eq!(space.parse_described(&text)?, g);
    println!("{} genotypes; sampled {text}", space.cardinality());

    // A stand-in accuracy: more MACs, more accuracy, with diminishing returns.
    let accuracy = AccuracyFn::new("macs-proxy", |_, network: &Network| {
        Ok(80.0 + 2.0 * (network.macs() as f64 / 1e4).ln().max(0.0))
    });
    let tx2 = DeviceProfile::jetson_tx2();
    let model = AnalyticalModel::new(tx2.clone(), AnalyticalParams::default())?;
    let problem = HardwareProblem::new(
        space,
        accuracy,
        model,
        tx2.max_operating_point(),
        vec![Metric::Error, Metric::LatencyMs],
    )?;
    let config = Nsga2Config {
        population: 16,
        offspring: 16,
        ..Nsga2Config::default()
    };
    let result = Executor::new(&problem, Nsga2::new(config)?, Budget::evaluations(120)?)
        .seed(1)
        .run()?;
    let (evaluated, front) = (result.archive.len(), &result.front.points);
    println!(
        "{evaluated} networks evaluated, {} on the front:",
        front.len()
    );
    for p in front.iter().step_by(front.len().div_ceil(8)) {
        let described = problem.space().describe(&p.genotype)?;
        println!(
            "  error {:5.2} %  {:.4} ms  {described}",
            p.values[0], p.values[1]
        );
    }
    Ok(())
}
