//! Random search: distinct architectures drawn uniformly, in batches.

use dynas_space::Genotype;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SearchError};
use crate::executor::{Archive, Context, Step, Strategy, Unseen};
use crate::problem::Problem;

/// Uniform random search over distinct architectures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RandomSearch {
    batch: usize,
    max_draws_per_candidate: usize,
}

/// Random search keeps no state beyond the executor's archive.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RandomState {
    /// Batches drawn.
    pub batches: usize,
}

impl RandomSearch {
    /// Draws `batch` new architectures per step.
    pub fn new(batch: usize) -> Result<Self> {
        if batch == 0 {
            return Err(SearchError::invalid("batch", "must be at least 1"));
        }
        Ok(Self {
            batch,
            max_draws_per_candidate: 1000,
        })
    }

    fn draw(&self, ctx: &mut Context<'_>) -> Vec<Genotype> {
        let total = ctx.problem().space().cardinality();
        let known = ctx.archive().len() as u128;
        let wanted = (self.batch as u128).min(total.saturating_sub(known)) as usize;
        ctx.draw_unseen(
            wanted,
            wanted.saturating_mul(self.max_draws_per_candidate),
            &mut Unseen::new(),
        )
    }
}

impl Strategy for RandomSearch {
    type State = RandomState;

    fn name(&self) -> &str {
        "random"
    }

    type Config = Self;

    fn params(&self) -> &Self::Config {
        self
    }

    fn init(&self, ctx: &mut Context<'_>) -> Result<RandomState> {
        let mut state = RandomState::default();
        self.step(&mut state, ctx)?;
        Ok(state)
    }

    fn step(&self, state: &mut RandomState, ctx: &mut Context<'_>) -> Result<Step> {
        let batch = self.draw(ctx);
        state.batches += 1;
        if batch.is_empty() {
            return Ok(Step::Done);
        }
        ctx.evaluate(&batch)?;
        Ok(Step::Continue)
    }

    fn check_state(
        &self,
        state: &RandomState,
        _problem: &dyn Problem,
        _archive: &Archive,
    ) -> Result<()> {
        if state.batches == 0 {
            return Err(SearchError::invalid(
                "batches",
                "0: the first batch is drawn at once",
            ));
        }
        Ok(())
    }
}
