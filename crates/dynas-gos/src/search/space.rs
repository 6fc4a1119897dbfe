//! The search space of replacement plans: one dimension per replaceable unit.

use std::collections::BTreeMap;

use dynas_space::{
    Dimension, Genotype, Layer, LayerExpr, Network, OpKind, SearchSpace, SpaceError,
};
use serde::{Deserialize, Serialize};

use super::{CandidateConfig, Replacement, Unit, candidates};
use dynas_search::{Result, SearchError};

/// The layers whose terms GOS replaces: plain convs, residual blocks and linear layers.
fn has_units(layer: &Layer) -> bool {
    matches!(
        layer.kind,
        OpKind::Conv | OpKind::ResidualBlock | OpKind::Linear
    )
}

/// The per-unit choice of replacement: what a genotype of a [`GosSpace`] decodes to, and what
/// the tch side builds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GosPlan {
    /// Replacement by unit name (`layer.term`); units not listed are kept.
    pub replacements: BTreeMap<String, Replacement>,
}

impl GosPlan {
    /// The replacement of unit `name` (keep when unlisted).
    pub fn get(&self, name: &str) -> Replacement {
        self.replacements
            .get(name)
            .copied()
            .unwrap_or(Replacement::Keep)
    }
}

/// The space of per-unit replacements of one network.
#[derive(Clone, Debug)]
pub struct GosSpace {
    network: Network,
    units: Vec<Unit>,
    dimensions: Vec<Dimension>,
    exprs: Vec<LayerExpr>,
}

impl GosSpace {
    /// The space of `network`'s replacements within `config`'s bounds; units with no legal
    /// candidate are left out. Errors when nothing can be replaced.
    pub fn new(network: Network, config: &CandidateConfig) -> Result<Self> {
        let exprs: Vec<LayerExpr> = network.layers.iter().map(LayerExpr::from_layer).collect();
        let mut units = Vec::new();
        for (li, (layer, expr)) in network.layers.iter().zip(&exprs).enumerate() {
            if !has_units(layer) {
                continue;
            }
            for (ti, term) in expr.terms.iter().enumerate() {
                let mut choices = candidates(term, config);
                if choices.is_empty() {
                    continue;
                }
                choices.push(Replacement::Keep);
                units.push(Unit {
                    layer: li,
                    term: ti,
                    expr: term.clone(),
                    choices,
                });
            }
        }
        if units.is_empty() {
            return Err(SearchError::invalid(
                "network",
                "no operator of the network has a legal replacement",
            ));
        }
        let dimensions = units
            .iter()
            .map(|u| {
                Dimension::new(
                    u.name(&network),
                    u.choices.iter().map(ToString::to_string).collect(),
                )
            })
            .collect::<std::result::Result<Vec<_>, SpaceError>>()?;
        Ok(Self {
            network,
            units,
            dimensions,
            exprs,
        })
    }

    /// The original network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The replaceable units, in dimension order.
    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    /// The genotype that keeps every operator.
    pub fn original(&self) -> Genotype {
        self.largest()
    }

    /// The plan a genotype picks (kept units are not listed).
    pub fn plan(&self, genotype: &Genotype) -> Result<GosPlan> {
        self.validate(genotype)?;
        let mut plan = GosPlan::default();
        for (unit, &gene) in self.units.iter().zip(genotype.genes()) {
            let choice = unit.choices[gene];
            if choice != Replacement::Keep {
                plan.replacements.insert(unit.name(&self.network), choice);
            }
        }
        Ok(plan)
    }

    /// The genotype of `plan`; errors on a unit or replacement the space does not have.
    pub fn genotype(&self, plan: &GosPlan) -> Result<Genotype> {
        let names: Vec<String> = self.units.iter().map(|u| u.name(&self.network)).collect();
        for name in plan.replacements.keys() {
            if !names.contains(name) {
                return Err(SearchError::invalid(
                    "plan",
                    format!("unit `{name}` is not a replaceable unit of the network"),
                ));
            }
        }
        let genes = self
            .units
            .iter()
            .zip(&names)
            .map(|(unit, name)| {
                let choice = plan.get(name);
                unit.choices
                    .iter()
                    .position(|c| *c == choice)
                    .ok_or_else(|| {
                        SearchError::invalid(
                            "plan",
                            format!("`{choice}` is not a candidate for unit `{name}`"),
                        )
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Genotype::new(genes))
    }

    /// The adapted network as layers for cost models: layers without a replaced unit stay
    /// whole; a layer with one is written as the layers of its terms (a residual block's
    /// addition is free in every counter).
    pub fn adapted_network(&self, plan: &GosPlan) -> Result<Network> {
        let mut layers = Vec::new();
        for (li, (layer, expr)) in self.network.layers.iter().zip(&self.exprs).enumerate() {
            let replaced: Vec<(&Unit, Replacement)> = self
                .units
                .iter()
                .filter(|u| u.layer == li)
                .map(|u| (u, plan.get(&u.name(&self.network))))
                .filter(|(_, r)| *r != Replacement::Keep)
                .collect();
            if replaced.is_empty() {
                layers.push(layer.clone());
                continue;
            }
            for (ti, term) in expr.terms.iter().enumerate() {
                let choice = replaced
                    .iter()
                    .find(|(u, _)| u.term == ti)
                    .map_or(Replacement::Keep, |(_, r)| *r);
                let mut term = term.clone();
                term.name = format!("{}.{}", layer.name, term.name);
                let parts = choice.layers(&term).map_err(|reason| {
                    SearchError::invalid("plan", format!("unit `{}`: {reason}", term.name))
                })?;
                layers.extend(parts);
            }
        }
        let mut network = Network::new(self.network.input, layers);
        network.arch_id = None;
        Ok(network)
    }
}

impl SearchSpace for GosSpace {
    fn name(&self) -> &str {
        "gos"
    }

    fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }

    fn decode(&self, genotype: &Genotype) -> dynas_space::Result<Network> {
        self.validate(genotype)?;
        let plan = self
            .plan(genotype)
            .map_err(|e| SpaceError::InvalidSpace(e.to_string()))?;
        self.adapted_network(&plan)
            .map_err(|e| SpaceError::InvalidSpace(e.to_string()))
    }
}
