//! `Explanation`: why an account is treated as it is, in Python.

use crate::verdict::signals_dict;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Why an account is treated as it is.
#[pyclass(frozen, module = "ringfence", name = "Explanation")]
pub struct PyExplanation {
    pub(crate) inner: ringfence::guard::Explanation,
}

#[pymethods]
impl PyExplanation {
    /// The account explained.
    #[getter]
    fn account(&self) -> &str {
        &self.inner.account
    }

    /// Its cluster's id.
    #[getter]
    fn cluster(&self) -> u64 {
        self.inner.cluster.id
    }

    /// Accounts in the cluster.
    #[getter]
    fn cluster_size(&self) -> u32 {
        self.inner.cluster.size
    }

    /// Up to 20 other members of the cluster.
    #[getter]
    fn members(&self) -> Vec<String> {
        self.inner.members.clone()
    }

    /// The values linking it: (kind, value, accounts, weight), strongest first.
    #[getter]
    fn shared(&self) -> Vec<(String, String, f64, f64)> {
        self.inner
            .shared
            .iter()
            .map(|v| (v.kind.clone(), v.value.clone(), v.accounts, v.weight))
            .collect()
    }

    /// The cluster's score.
    #[getter]
    fn score(&self) -> f64 {
        self.inner.signals.score
    }

    /// Every signal behind the score, by name (the names in `SIGNALS`).
    #[getter]
    fn signals<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        signals_dict(py, &self.inner.signals)
    }

    /// The signals contributing most to the score, strongest first.
    #[getter]
    fn contributors(&self) -> Vec<(&'static str, f64)> {
        self.inner.contributors.clone()
    }

    /// The account's own behaviour (`suspicion`, `elicitation`,
    /// `long_output`, `busy`, `per_day`, `requests`), or `None` if none is
    /// recorded.
    #[getter]
    fn behaviour<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(b) = &self.inner.behaviour else {
            return Ok(None);
        };
        number_dict(
            py,
            &[
                ("suspicion", b.suspicion),
                ("elicitation", b.elicitation),
                ("long_output", b.long_output),
                ("busy", b.busy),
                ("per_day", b.per_day),
                ("requests", b.requests),
            ],
        )
        .map(Some)
    }

    /// The crowd whose verdict applies to the account (`id`, `kind`,
    /// `value`, `score`, `members`, `accounts`, `share`, `diversity`,
    /// `suspicion`, `elicitation`, `long_output`, `busy`; the crowd's habits
    /// `habit_elicitation` and `habit_output`; and `member_suspicion`, the
    /// account's suspicion read against them), or `None`.
    #[getter]
    fn crowd<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(c) = &self.inner.crowd else {
            return Ok(None);
        };
        let j = &c.judgement;
        let d = number_dict(
            py,
            &[
                ("score", j.score),
                ("members", j.members),
                ("accounts", j.accounts),
                ("share", j.share),
                ("diversity", j.diversity),
                ("suspicion", j.suspicion),
                ("elicitation", j.elicitation),
                ("long_output", j.long_output),
                ("busy", j.busy),
                ("habit_elicitation", j.habit_elicitation),
                ("habit_output", j.habit_output),
                ("member_suspicion", c.suspicion),
            ],
        )?;
        d.set_item("id", c.id)?;
        d.set_item("kind", &c.kind)?;
        d.set_item("value", &c.value)?;
        Ok(Some(d))
    }

    /// The imported indicator (another provider's) the account presents,
    /// while it stands: a dict of `id` (the STIX indicator id), `producer`
    /// (its identity id), `producer_name` (or `None`), `kind`, `weight`
    /// (confidence times trust) and `valid_until` (the guard's clock, in
    /// seconds); `None` if it presents none. Its requests carry
    /// `shared_indicator`.
    #[getter]
    fn indicator<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.inner
            .indicator
            .as_ref()
            .map(|m| crate::intel::indicator_dict(py, m))
            .transpose()
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "<ringfence.Explanation of {:?}: cluster {:016x} of {}, score {:.3}>",
            self.inner.account,
            self.inner.cluster.id,
            self.inner.cluster.size,
            self.inner.signals.score
        )
    }
}

/// A dict of named numbers.
fn number_dict<'py>(py: Python<'py>, items: &[(&str, f64)]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for &(k, v) in items {
        d.set_item(k, v)?;
    }
    Ok(d)
}
