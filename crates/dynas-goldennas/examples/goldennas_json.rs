//! Runs GoldenNAS from a JSON configuration (`GoldenNasConfig`, every field optional, the
//! defaults otherwise) without the command-line tool:
//!
//! ```text
//! cargo run --release -p dynas-goldennas --example goldennas_json -- config.json
//! ```
//!
//! `dynas goldennas` (feature `tch` of dynas-cli) runs the same pipeline from flags.

use dynas_goldennas::{GoldenNas, GoldenNasConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: goldennas_json CONFIG.json")?;
    let config: GoldenNasConfig = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    let report = GoldenNas::new(config)?.run(|line| println!("{line}"))?;
    let d = &report.depth;
    println!("depth configuration | MACs | shared BN | stored BN | stored BN + self-distillation");
    for i in 0..d.configurations.len() {
        println!(
            "{i} | {} | {:.2} | {:.2} | {:.2}",
            d.macs[i], d.shared_bn[i], d.stored_bn[i], d.stored_bn_self_distilled[i]
        );
    }
    Ok(())
}
