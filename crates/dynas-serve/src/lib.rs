//! The runtime that executes any deployment on this host, and **Dynamic-OFA**'s pre-sampling.
//!
//! | module | what |
//! |---|---|
//! | [`presample`](mod@presample) | Dynamic-OFA: sample subnets of a trained supernet, score them (validation top-1 with stored batch norm, host latency in deployed form), keep a Pareto family and write it as a deployment bundle |
//! | [`runtime`] | a deployment resident in memory ([`Family::from_bundle`]: HADAS points with their exit heads, a Dynamic-OFA family, a static network), served under load by a `dynas-dvfs` runtime manager ([`serve`]) |
//! | [`check`] | every point alone on held-out images: measured top-1, exit rates and host latency beside the deployment's prediction ([`check_points`]) |
//! | [`compare`] | serve runs beside the platform simulator's prediction ([`serve_and_simulate`]) |
//!
//! `dynas serve --deployment FILE` runs `check` then `compare` on the Fashion-MNIST test split.

pub mod check;
pub mod compare;
pub mod presample;
pub mod runtime;

pub use check::{PointCheck, check_points};
pub use compare::{PolicyComparison, SimulatedRun, serve_and_simulate};
pub use presample::{
    CheckedPresampleParams, PresampleParams, Presampled, PresampledSubnet, lift_genotype,
    presample, price_deployment,
};
pub use runtime::{
    Family, Member, MemberExits, ServeParams, ServePolicy, ServeReport, ServeWindow, serve,
};
