//! The search side ([`StoreProblem`]) and the problem's description kept with a study
//! ([`ProblemSpec`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dynas_search::{Evaluation, Objective, ParetoFront, Problem, SearchError, TableProblem};
use dynas_space::{Genotype, SearchSpace};
use serde::{Deserialize, Serialize};

use crate::{DEFAULT_CAPABILITY, JobOutcome, NewJob, Result, Store, StoreError, StudyInfo};

/// What a study evaluates, kept with it so that a worker needs only the store's URL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProblemSpec {
    /// A benchmark table ([`TableProblem`]): a CSV read by every worker at the same path.
    Table {
        /// The CSV's absolute path.
        csv: PathBuf,
        /// The objectives (columns with directions).
        objectives: Vec<Objective>,
    },
}

impl ProblemSpec {
    /// A table problem; a relative `csv` is made absolute against the current directory.
    pub fn table(csv: impl AsRef<Path>, objectives: Vec<Objective>) -> Self {
        let csv = csv.as_ref();
        let csv = std::path::absolute(csv).unwrap_or_else(|_| csv.to_path_buf());
        Self::Table { csv, objectives }
    }

    /// The `kind` field (`table`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Table { .. } => "table",
        }
    }

    /// The description as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Builds the problem on this machine for `study` (the name is for messages).
    pub fn load(&self, study: &str) -> Result<Box<dyn Problem>> {
        match self {
            Self::Table { csv, objectives } => {
                let table = TableProblem::from_csv(csv, objectives.clone()).map_err(|e| {
                    StoreError::Problem {
                        study: study.to_string(),
                        field: "csv",
                        reason: e.to_string(),
                    }
                })?;
                Ok(Box::new(table))
            }
        }
    }

    /// The study record for a study `name` of this problem with data `fingerprint`.
    pub fn study(&self, name: &str, fingerprint: &str) -> StudyInfo {
        StudyInfo {
            name: name.to_string(),
            problem_kind: self.kind().to_string(),
            problem_spec: self.to_json(),
            fingerprint: fingerprint.to_string(),
            created_at_ms: 0,
        }
    }
}

/// The study a worker should serve: `name`, or the store's only study when `None`; with its
/// problem built on this machine from the stored description, and refused
/// ([`StoreError::StudyMismatch`]) if the data here has another content fingerprint than the
/// study's.
pub fn study_problem(
    store: &dyn Store,
    name: Option<&str>,
) -> Result<(StudyInfo, Box<dyn Problem>)> {
    let name = match name {
        Some(n) => n.to_string(),
        None => {
            let names = store.studies()?;
            match names.as_slice() {
                [one] => one.clone(),
                [] => {
                    return Err(StoreError::MissingStudy {
                        url: store.url().to_string(),
                        study: "(the only one)".into(),
                        known: "none".into(),
                    });
                }
                _ => {
                    return Err(StoreError::AmbiguousStudy {
                        url: store.url().to_string(),
                        known: names.join(", "),
                    });
                }
            }
        }
    };
    let study = store.study(&name)?;
    let spec: ProblemSpec =
        serde_json::from_value(study.problem_spec.clone()).map_err(|e| StoreError::Problem {
            study: name.clone(),
            field: "kind",
            reason: format!(
                "`{}` is not a problem this build of dynas can evaluate: {e}",
                study.problem_kind
            ),
        })?;
    let problem = spec.load(&name)?;
    let here = problem.fingerprint().unwrap_or_default();
    if here != study.fingerprint {
        return Err(StoreError::StudyMismatch {
            url: store.url().to_string(),
            study: name,
            field: "fingerprint (the data on this machine)",
            stored: study.fingerprint.clone(),
            given: here,
        });
    }
    Ok((study, problem))
}

/// The current front of a study: the non-dominated feasible results of its done jobs, in the
/// objectives of its problem description.
pub fn study_front(store: &dyn Store, study: &str) -> Result<ParetoFront> {
    let info = store.study(study)?;
    let spec: ProblemSpec =
        serde_json::from_value(info.problem_spec.clone()).map_err(|e| StoreError::Problem {
            study: study.to_string(),
            field: "kind",
            reason: e.to_string(),
        })?;
    let ProblemSpec::Table { objectives, .. } = &spec;
    let corrupt = |key: &str, field: &'static str, reason: String| StoreError::Corrupt {
        url: store.url().to_string(),
        study: study.to_string(),
        key: key.to_string(),
        field,
        reason,
    };
    let mut records: Vec<(Genotype, Evaluation)> = Vec::new();
    for job in store.jobs(study)? {
        let Some(result) = job.result.filter(|_| job.state == "done") else {
            continue;
        };
        let genotype: Genotype = job
            .key
            .parse()
            .map_err(|e: dynas_space::SpaceError| corrupt(&job.key, "key", e.to_string()))?;
        let evaluation: Evaluation = serde_json::from_str(&result)
            .map_err(|e| corrupt(&job.key, "result", e.to_string()))?;
        records.push((genotype, evaluation));
    }
    Ok(ParetoFront::from_evaluations(
        objectives,
        records.iter().map(|(g, e)| (g, e)),
    ))
}

/// A [`Problem`] whose evaluations are made by workers through a [`Store`]: everything is
/// forwarded to the wrapped problem except [`Problem::evaluate_batch`], which enqueues the
/// batch (a genotype already in the study is not enqueued again), waits until every job is done
/// and returns the stored results in input order. Any strategy run by the executor over it
/// therefore runs over the store; a coordinator restarted with the same seed replays its
/// batches and finds their results already stored.
pub struct StoreProblem<P> {
    inner: P,
    store: Box<dyn Store>,
    study: String,
    capability: String,
    max_attempts: u32,
    poll: Duration,
    wait_limit: Option<Duration>,
}

impl<P> std::fmt::Debug for StoreProblem<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreProblem")
            .field("store", &self.store.url())
            .field("study", &self.study)
            .field("capability", &self.capability)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl<P: Problem> StoreProblem<P> {
    /// Creates the study `study` (or opens it: the same description and the same data
    /// fingerprint are required) for `inner`, described by `spec` for the workers.
    pub fn create(
        inner: P,
        store: Box<dyn Store>,
        study: &str,
        spec: &ProblemSpec,
    ) -> Result<Self> {
        let fingerprint = inner.fingerprint().unwrap_or_default();
        store.create_study(&spec.study(study, &fingerprint))?;
        Ok(Self {
            inner,
            store,
            study: study.to_string(),
            capability: DEFAULT_CAPABILITY.to_string(),
            max_attempts: 3,
            poll: Duration::from_millis(20),
            wait_limit: None,
        })
    }

    /// The capability a worker needs for this problem's jobs (default
    /// [`DEFAULT_CAPABILITY`]).
    pub fn capability(mut self, capability: impl Into<String>) -> Self {
        self.capability = capability.into();
        self
    }

    /// Claims (failures or expired leases) before a job fails for good (default 3).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// How often the store is polled while waiting for results (default 20 ms; the interval
    /// doubles while nothing changes, up to 16 times this).
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll = every;
        self
    }

    /// Gives up a batch whose results did not all come within `limit` (default: wait for
    /// ever, as for workers that are still to be started).
    pub fn wait_limit(mut self, limit: Duration) -> Self {
        self.wait_limit = Some(limit);
        self
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The study's name.
    pub fn study(&self) -> &str {
        &self.study
    }

    /// The wrapped problem.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    fn wait(&self, genotypes: &[Genotype]) -> std::result::Result<Vec<Evaluation>, SearchError> {
        let external = |e: StoreError| SearchError::external("study store", e);
        let keys: Vec<String> = genotypes.iter().map(Genotype::to_string).collect();
        let mut jobs = Vec::with_capacity(genotypes.len());
        for (g, key) in genotypes.iter().zip(&keys) {
            let genotype = serde_json::to_string(g)
                .map_err(|e| SearchError::external("genotype to JSON", e))?;
            jobs.push(NewJob {
                key: key.clone(),
                genotype,
                capability: self.capability.clone(),
                max_attempts: self.max_attempts,
            });
        }
        self.store.enqueue(&self.study, &jobs).map_err(external)?;
        let start = Instant::now();
        let mut done: HashMap<usize, Evaluation> = HashMap::new();
        let mut delay = self.poll;
        loop {
            let open: Vec<usize> = (0..keys.len()).filter(|i| !done.contains_key(i)).collect();
            if open.is_empty() {
                break;
            }
            let asked: Vec<String> = open.iter().map(|&i| keys[i].clone()).collect();
            let outcomes = self.store.outcomes(&self.study, &asked).map_err(external)?;
            let before = done.len();
            for (&i, outcome) in open.iter().zip(outcomes) {
                match outcome {
                    JobOutcome::Done(json) => {
                        let evaluation: Evaluation = serde_json::from_str(&json).map_err(|e| {
                            external(StoreError::Corrupt {
                                url: self.store.url().to_string(),
                                study: self.study.clone(),
                                key: keys[i].clone(),
                                field: "result",
                                reason: e.to_string(),
                            })
                        })?;
                        done.insert(i, evaluation);
                    }
                    JobOutcome::Failed(error) => {
                        return Err(SearchError::Evaluation {
                            genotype: keys[i].clone(),
                            reason: format!(
                                "failed on the workers after {} attempts: {error}",
                                self.max_attempts
                            ),
                        });
                    }
                    JobOutcome::Missing => {
                        // Enqueued above: only a store emptied meanwhile gets here.
                        self.store
                            .enqueue(&self.study, &jobs[i..=i])
                            .map_err(external)?;
                    }
                    JobOutcome::Pending | JobOutcome::Running => {}
                }
            }
            if done.len() == keys.len() {
                break;
            }
            if let Some(limit) = self.wait_limit
                && start.elapsed() > limit
            {
                return Err(SearchError::Evaluation {
                    genotype: keys[open[0]].clone(),
                    reason: format!(
                        "{} results still missing after {limit:?}: are workers running \
                         (`dynas worker --store {} --study {}`)?",
                        keys.len() - done.len(),
                        self.store.url(),
                        self.study
                    ),
                });
            }
            delay = if done.len() > before {
                self.poll
            } else {
                (delay * 2).min(self.poll * 16)
            };
            std::thread::sleep(delay);
        }
        Ok((0..keys.len())
            .map(|i| done.remove(&i).expect("every index is done"))
            .collect())
    }
}

impl<P: Problem> Problem for StoreProblem<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn space(&self) -> &dyn SearchSpace {
        self.inner.space()
    }
    fn objectives(&self) -> &[Objective] {
        self.inner.objectives()
    }
    fn evaluate(&self, genotype: &Genotype) -> dynas_search::Result<Evaluation> {
        self.evaluate_batch(std::slice::from_ref(genotype))
            .pop()
            .unwrap_or_else(|| {
                Err(SearchError::Evaluation {
                    genotype: genotype.to_string(),
                    reason: "no result".into(),
                })
            })
    }
    fn precheck(&self, genotype: &Genotype) -> dynas_search::Result<bool> {
        self.inner.precheck(genotype)
    }
    fn evaluate_batch(&self, genotypes: &[Genotype]) -> Vec<dynas_search::Result<Evaluation>> {
        if genotypes.is_empty() {
            return Vec::new();
        }
        match self.wait(genotypes) {
            Ok(results) => results.into_iter().map(Ok).collect(),
            Err(e) => {
                // One error for the batch: the first genotype carries it, the others say so.
                let text = e.to_string();
                let mut out = vec![Err(e)];
                out.extend(genotypes[1..].iter().map(|g| {
                    Err(SearchError::Evaluation {
                        genotype: g.to_string(),
                        reason: format!("batch abandoned: {text}"),
                    })
                }));
                out
            }
        }
    }
    fn fingerprint(&self) -> Option<String> {
        self.inner.fingerprint()
    }
    fn label(&self, genotype: &Genotype) -> Option<String> {
        self.inner.label(genotype)
    }
}
