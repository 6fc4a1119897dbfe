//! Quick start: a search space, a network, and what it costs on a board at several DVFS
//! operating points.
//!
//! Samples an AttentiveNAS subnet (the space HADAS searches), decodes it into a layer-by-layer
//! [`Network`], and prices it with the analytical latency / energy model of a Jetson AGX Xavier
//! at the highest and lowest clocks and at a few points in between; then compares the space's
//! smallest and largest subnets at the highest clocks.
//!
//! ```text
//! cargo run -p dynas --example quickstart
//! ```

use dynas::cost::analytical::{AnalyticalModel, AnalyticalParams};
use dynas::prelude::*;
use dynas::space::MbConvSpace;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A space is a list of dimensions (one gene each); a genotype picks one choice per gene.
    let space = MbConvSpace::attentive_nas();
    println!(
        "space `{}`: {} genes, {:.2e} subnets",
        space.name(),
        space.dimensions().len(),
        space.cardinality() as f64
    );
    let genotype = space.sample(&mut seeded_rng(0));
    println!("sampled: {}", space.describe(&genotype)?);

    // Decoding gives the network: layers with their shapes, MACs and parameters.
    let network = space.decode(&genotype)?;
    println!(
        "{} layers, {:.0} M MACs, {:.2} M parameters",
        network.layers.len(),
        network.macs() as f64 / 1e6,
        network.params() as f64 / 1e6
    );

    // A device profile lists the clocks a board offers; an operating point picks one of each.
    let device = DeviceProfile::jetson_agx_xavier();
    // Default parameters are order-of-magnitude values; fit them to your board with
    // `AnalyticalModel::fit` and a few measured (operating point, latency, energy) runs.
    let model = AnalyticalModel::new(device.clone(), AnalyticalParams::default())?;
    let points = device.operating_points();
    println!("{} operating points; a few of them:", points.len());
    let step = (points.len() / 4).max(1);
    for point in points.iter().step_by(step) {
        let cost = model.estimate(&network, point)?;
        println!(
            "  {point}: {:8.3} ms {:8.3} mJ",
            cost.latency_ms,
            cost.energy_mj.unwrap_or(f64::NAN)
        );
    }

    // The smallest and the largest subnet of the space at the highest clocks.
    let max = device.max_operating_point();
    for (name, g) in [("smallest", space.smallest()), ("largest", space.largest())] {
        let cost = model.estimate(&space.decode(&g)?, &max)?;
        println!("{name:>8} at max clocks: {:.3} ms", cost.latency_ms);
    }
    Ok(())
}
