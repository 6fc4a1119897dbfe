//! What to optimise: the [`Problem`] trait, objectives with directions, evaluations with
//! constraint violations, a caching wrapper and the hardware-aware evaluator that composes an
//! [`AccuracySource`] with any [`CostModel`](dynas_cost::CostModel) (in `hardware.rs`).

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use dynas_cost::parallel::*;
use dynas_space::{Genotype, SearchSpace};

use crate::error::{Result, SearchError};

mod hardware;

pub use dynas_core::{Direction, Evaluation, Objective};
pub use hardware::{
    AccuracyFn, AccuracySource, Constraint, HardwareProblem, JointHardwareProblem, JointSpace,
    Metric,
};

/// What a search optimises: genotypes of a space in, objective vectors (with directions) and a
/// constraint violation out.
///
/// Implement this for your own accuracy source and cost model, or use
/// [`HardwareProblem`] / [`crate::table::TableProblem`].
pub trait Problem: Send + Sync {
    /// Short name, used in logs and checkpoints.
    fn name(&self) -> &str;

    /// The space searched.
    fn space(&self) -> &dyn SearchSpace;

    /// The objectives, in the order of [`Evaluation::values`].
    fn objectives(&self) -> &[Objective];

    /// Evaluates one architecture.
    fn evaluate(&self, genotype: &Genotype) -> Result<Evaluation>;

    /// A cheap check made before [`Problem::evaluate`] by strategies that redraw candidates
    /// until they meet a hard limit (once-for-all's constrained evolution). `Ok(false)` means
    /// the genotype surely violates a constraint. The default accepts everything.
    fn precheck(&self, genotype: &Genotype) -> Result<bool> {
        let _ = genotype;
        Ok(true)
    }

    /// Evaluates many architectures, in parallel on all cores; results are in input order.
    fn evaluate_batch(&self, genotypes: &[Genotype]) -> Vec<Result<Evaluation>> {
        genotypes.par_iter().map(|g| self.evaluate(g)).collect()
    }

    /// A digest of the data behind the evaluations (e.g. [`content_fingerprint`] of a table's
    /// file), stored in checkpoints so that a checkpoint is not resumed against other data
    /// under the same name. The default (`None`) disables the check.
    fn fingerprint(&self) -> Option<String> {
        None
    }

    /// A human-readable label of `genotype` for exported fronts. The default is the space's
    /// [`SearchSpace::describe`] form (`name=value` pairs).
    fn label(&self, genotype: &Genotype) -> Option<String> {
        self.space().describe(genotype).ok()
    }
}

/// A stable 64-bit FNV-1a digest of `bytes`, written `fnv1a64:<16 hex digits>`: the same on
/// every platform and version, for [`Problem::fingerprint`]. Not a cryptographic hash.
pub fn content_fingerprint(bytes: &[u8]) -> String {
    format!("fnv1a64:{:016x}", fnv1a64(bytes))
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `Problem` for references and shared pointers: every method forwarded.
macro_rules! forward_problem {
    ($($pointer:ty),+) => {$(
        impl<P: Problem + ?Sized> Problem for $pointer {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn space(&self) -> &dyn SearchSpace {
                (**self).space()
            }
            fn objectives(&self) -> &[Objective] {
                (**self).objectives()
            }
            fn evaluate(&self, genotype: &Genotype) -> Result<Evaluation> {
                (**self).evaluate(genotype)
            }
            fn precheck(&self, genotype: &Genotype) -> Result<bool> {
                (**self).precheck(genotype)
            }
            fn evaluate_batch(&self, genotypes: &[Genotype]) -> Vec<Result<Evaluation>> {
                (**self).evaluate_batch(genotypes)
            }
            fn fingerprint(&self) -> Option<String> {
                (**self).fingerprint()
            }
            fn label(&self, genotype: &Genotype) -> Option<String> {
                (**self).label(genotype)
            }
        }
    )+};
}

forward_problem!(&P, std::sync::Arc<P>);

/// Wraps a problem and remembers every evaluation by genotype, so that expensive evaluations
/// (supernet accuracy, on-device latency) are made once across searches sharing the wrapper.
#[derive(Debug)]
pub struct CachedProblem<P> {
    inner: P,
    cache: RwLock<HashMap<Genotype, Evaluation>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<P: Problem> CachedProblem<P> {
    /// An empty cache around `inner`.
    pub fn new(inner: P) -> Self {
        Self {
            inner,
            cache: RwLock::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The wrapped problem.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// Number of lookups answered from the cache.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Number of evaluations passed to the wrapped problem.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Number of distinct genotypes cached.
    pub fn len(&self) -> usize {
        self.cache.read().map(|c| c.len()).unwrap_or(0)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lookup(&self, genotype: &Genotype) -> Option<Evaluation> {
        self.cache.read().ok()?.get(genotype).cloned()
    }
}

impl<P: Problem> Problem for CachedProblem<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn space(&self) -> &dyn SearchSpace {
        self.inner.space()
    }
    fn objectives(&self) -> &[Objective] {
        self.inner.objectives()
    }
    fn precheck(&self, genotype: &Genotype) -> Result<bool> {
        self.inner.precheck(genotype)
    }
    fn fingerprint(&self) -> Option<String> {
        self.inner.fingerprint()
    }
    fn label(&self, genotype: &Genotype) -> Option<String> {
        self.inner.label(genotype)
    }
    fn evaluate(&self, genotype: &Genotype) -> Result<Evaluation> {
        if let Some(e) = self.lookup(genotype) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(e);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let e = self.inner.evaluate(genotype)?;
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(genotype.clone(), e.clone());
        }
        Ok(e)
    }
    fn evaluate_batch(&self, genotypes: &[Genotype]) -> Vec<Result<Evaluation>> {
        let mut out: Vec<Option<Result<Evaluation>>> =
            genotypes.iter().map(|g| self.lookup(g).map(Ok)).collect();
        let hits = out.iter().filter(|o| o.is_some()).count() as u64;
        self.hits.fetch_add(hits, Ordering::Relaxed);
        let missing: Vec<usize> = (0..genotypes.len()).filter(|&i| out[i].is_none()).collect();
        let todo: Vec<Genotype> = missing.iter().map(|&i| genotypes[i].clone()).collect();
        self.misses.fetch_add(todo.len() as u64, Ordering::Relaxed);
        let fresh = self.inner.evaluate_batch(&todo);
        if let Ok(mut cache) = self.cache.write() {
            for (g, r) in todo.iter().zip(&fresh) {
                if let Ok(e) = r {
                    cache.insert(g.clone(), e.clone());
                }
            }
        }
        for (i, r) in missing.into_iter().zip(fresh) {
            out[i] = Some(r);
        }
        out.into_iter()
            .map(|o| {
                o.unwrap_or_else(|| Err(SearchError::invalid("cache", "internal: result lost")))
            })
            .collect()
    }
}
