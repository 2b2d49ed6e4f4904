//! `check_many`'s batches: read under the GIL into Rust-owned text (one
//! buffer for every string of the batch), checked against the core's
//! request contract as a whole, then decided without the GIL.

use crate::convert::{for_each_fingerprint, model_named, text_named, uint32};
use crate::errors::{input_error, request_error, type_error};
use crate::guard::default_tokens;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use ringfence::guard::{Guard, Request, Verdict};
use ringfence_fleet::Node;
use std::ops::Range;

/// One request of a batch: ranges into the batch's text.
struct Item {
    account: Range<usize>,
    fingerprints: Range<usize>,
    prompt: Option<Range<usize>>,
    system: Option<Range<usize>>,
    model: Option<Range<usize>>,
    tokens: Option<u32>,
    max_tokens: u32,
}

/// Requests owned by Rust, ready to be decided without the GIL.
#[derive(Default)]
pub struct Batch {
    text: String,
    /// (kind, value) ranges into `text`.
    pairs: Vec<(Range<usize>, Range<usize>)>,
    items: Vec<Item>,
}

/// `check_many`'s column arguments (each `None` when not given).
#[derive(Default, Clone, Copy)]
pub struct Columns<'a, 'py> {
    pub accounts: Option<&'a Bound<'py, PyAny>>,
    pub fingerprints: Option<&'a Bound<'py, PyAny>>,
    pub prompts: Option<&'a Bound<'py, PyAny>>,
    pub systems: Option<&'a Bound<'py, PyAny>>,
    pub models: Option<&'a Bound<'py, PyAny>>,
    pub tokens: Option<&'a Bound<'py, PyAny>>,
    pub max_tokens: Option<&'a Bound<'py, PyAny>>,
}

impl Columns<'_, '_> {
    /// Whether any column is given (not `None`).
    pub fn any(&self) -> bool {
        [
            self.accounts,
            self.fingerprints,
            self.prompts,
            self.systems,
            self.models,
            self.tokens,
            self.max_tokens,
        ]
        .iter()
        .any(|c| c.is_some_and(|c| !c.is_none()))
    }
}

/// A column argument: `None`, or a sequence of one entry per request.
fn column<'py>(
    obj: Option<&Bound<'py, PyAny>>,
    what: &str,
    n: usize,
) -> PyResult<Option<Vec<Bound<'py, PyAny>>>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyDict>() {
        return Err(type_error(what, "a list with one entry per request", obj));
    }
    let items: Vec<Bound<'py, PyAny>> = obj
        .try_iter()
        .map_err(|_| type_error(what, "a list with one entry per request", obj))?
        .collect::<PyResult<_>>()?;
    if items.len() != n {
        return Err(input_error(format!(
            "{what} has {} entries for {n} accounts; give one per request",
            items.len()
        )));
    }
    Ok(Some(items))
}

/// A token column: `None`, one int for every request, or one entry per request.
enum Tokens<'py> {
    None,
    All(u32),
    Each(Vec<Bound<'py, PyAny>>),
}

fn tokens_column<'py>(
    obj: Option<&Bound<'py, PyAny>>,
    what: &str,
    n: usize,
) -> PyResult<Tokens<'py>> {
    match obj.filter(|o| !o.is_none()) {
        None => Ok(Tokens::None),
        Some(o) if o.is_instance_of::<pyo3::types::PyInt>() => Ok(Tokens::All(uint32(o, what)?)),
        Some(o) => Ok(Tokens::Each(column(Some(o), what, n)?.unwrap_or_default())),
    }
}

impl Batch {
    fn push(&mut self, s: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(s);
        start..self.text.len()
    }

    /// An optional text (a model name when `model`: bounded in length).
    fn push_opt(
        &mut self,
        obj: Option<&Bound<'_, PyAny>>,
        what: &dyn Fn() -> String,
        model: bool,
    ) -> PyResult<Option<Range<usize>>> {
        match obj.filter(|o| !o.is_none()) {
            None => Ok(None),
            Some(o) => {
                let s = if model {
                    model_named(o, what)?
                } else {
                    text_named(o, what)?
                };
                Ok(Some(self.push(s)))
            }
        }
    }

    fn push_account(
        &mut self,
        obj: &Bound<'_, PyAny>,
        what: &dyn Fn() -> String,
    ) -> PyResult<Range<usize>> {
        let s = text_named(obj, what)?;
        Ok(self.push(s))
    }

    fn push_fingerprints(
        &mut self,
        obj: Option<&Bound<'_, PyAny>>,
        what: &dyn Fn() -> String,
    ) -> PyResult<Range<usize>> {
        let start = self.pairs.len();
        for_each_fingerprint(obj, what, |k, v| {
            let (k, v) = crate::convert::fingerprint_texts(&k, &v, what)?;
            let k = self.push(k);
            let v = self.push(v);
            self.pairs.push((k, v));
            Ok(())
        })?;
        Ok(start..self.pairs.len())
    }

    /// A batch from a list of request dicts, each with the keys of
    /// `Guard.check`'s arguments (`account` required).
    pub fn from_requests(requests: &Bound<'_, PyAny>) -> PyResult<Batch> {
        if requests.is_instance_of::<PyString>() || requests.is_instance_of::<PyDict>() {
            return Err(type_error("requests", "a list of dicts", requests));
        }
        let iter = requests
            .try_iter()
            .map_err(|_| type_error("requests", "a list of dicts", requests))?;
        let mut b = Batch::default();
        for (i, r) in iter.enumerate() {
            let r = r?;
            let what = |field: &'static str| move || format!("requests[{i}][{field:?}]");
            let d = r
                .cast::<PyDict>()
                .map_err(|_| type_error(&format!("requests[{i}]"), "a dict", &r))?;
            let mut account = None;
            let mut fingerprints = None;
            let mut prompt = None;
            let mut system = None;
            let mut model = None;
            let mut tokens = None;
            let mut max_tokens = None;
            for (k, v) in d.iter() {
                let name = text_named(&k, &|| format!("a key of requests[{i}]"))?;
                let slot = match name {
                    "account" => &mut account,
                    "fingerprints" => &mut fingerprints,
                    "prompt" => &mut prompt,
                    "system" => &mut system,
                    "model" => &mut model,
                    "tokens" => &mut tokens,
                    "max_tokens" => &mut max_tokens,
                    other => {
                        return Err(input_error(format!(
                            "requests[{i}] has an unknown key {other:?} (known: account, fingerprints, prompt, system, model, tokens, max_tokens)"
                        )))
                    }
                };
                *slot = Some(v);
            }
            let Some(account) = account else {
                return Err(input_error(format!("requests[{i}] has no \"account\"")));
            };
            let account = b.push_account(&account, &what("account"))?;
            let fingerprints = b.push_fingerprints(fingerprints.as_ref(), &what("fingerprints"))?;
            let prompt = b.push_opt(prompt.as_ref(), &what("prompt"), false)?;
            let system = b.push_opt(system.as_ref(), &what("system"), false)?;
            let model = b.push_opt(model.as_ref(), &what("model"), true)?;
            let tokens = match tokens.filter(|t| !t.is_none()) {
                Some(t) => Some(uint32(&t, &what("tokens")())?),
                None => None,
            };
            let max_tokens = match max_tokens.filter(|t| !t.is_none()) {
                Some(t) => uint32(&t, &what("max_tokens")())?,
                None => 0,
            };
            b.items.push(Item {
                account,
                fingerprints,
                prompt,
                system,
                model,
                tokens,
                max_tokens,
            });
        }
        b.validate()?;
        Ok(b)
    }

    /// A batch from columns: `accounts` (required) and optional columns of
    /// the same length. `fingerprints` is either a list of one fingerprints
    /// argument per request, or a dict of kind to a list of values (one per
    /// request, `None` for none); `tokens` and `max_tokens` may be one int
    /// for every request.
    pub fn from_columns(columns: Columns<'_, '_>) -> PyResult<Batch> {
        let Some(accounts) = columns.accounts.filter(|a| !a.is_none()) else {
            return Err(input_error(
                "check_many needs a list of requests, or accounts= with optional columns",
            ));
        };
        if accounts.is_instance_of::<PyString>() {
            return Err(type_error("accounts", "a list of str", accounts));
        }
        let accounts: Vec<Bound<'_, PyAny>> = accounts
            .try_iter()
            .map_err(|_| type_error("accounts", "a list of str", accounts))?
            .collect::<PyResult<_>>()?;
        let n = accounts.len();
        // Fingerprints by kind: (kind, one value per request).
        let mut by_kind: Vec<(Bound<'_, PyAny>, Vec<Bound<'_, PyAny>>)> = Vec::new();
        let mut per_request = None;
        if let Some(f) = columns.fingerprints.filter(|f| !f.is_none()) {
            if let Ok(d) = f.cast::<PyDict>() {
                // The entries first: reading a column runs its `__iter__`.
                let entries: Vec<_> = d.iter().collect();
                for (kind, values) in entries {
                    let label = format!("fingerprints[{}]", crate::convert::short_repr(&kind));
                    let values = column(Some(&values), &label, n)?.unwrap_or_default();
                    by_kind.push((kind, values));
                }
            } else {
                per_request = column(Some(f), "fingerprints", n)?;
            }
        }
        let prompts = column(columns.prompts, "prompts", n)?;
        let systems = column(columns.systems, "systems", n)?;
        let models = column(columns.models, "models", n)?;
        let tokens = tokens_column(columns.tokens, "tokens", n)?;
        let max_tokens = tokens_column(columns.max_tokens, "max_tokens", n)?;
        let mut b = Batch {
            text: String::with_capacity(n * 24),
            pairs: Vec::with_capacity(n * by_kind.len().max(1)),
            items: Vec::with_capacity(n),
        };
        let at = |col: &'static str, i: usize| move || format!("{col}[{i}]");
        for (i, account) in accounts.iter().enumerate() {
            let account = b.push_account(account, &at("accounts", i))?;
            let fingerprints = if let Some(per) = &per_request {
                b.push_fingerprints(Some(&per[i]), &at("fingerprints", i))?
            } else {
                let start = b.pairs.len();
                for (kind, values) in &by_kind {
                    let v = &values[i];
                    if v.is_none() {
                        continue;
                    }
                    let k = text_named(kind, &|| "a kind in fingerprints".to_string())?;
                    let v = text_named(v, &|| {
                        format!("fingerprints[{}][{i}]", crate::convert::short_repr(kind))
                    })?;
                    let k = b.push(k);
                    let v = b.push(v);
                    b.pairs.push((k, v));
                }
                start..b.pairs.len()
            };
            let prompt = b.push_opt(prompts.as_ref().map(|c| &c[i]), &at("prompts", i), false)?;
            let system = b.push_opt(systems.as_ref().map(|c| &c[i]), &at("systems", i), false)?;
            let model = b.push_opt(models.as_ref().map(|c| &c[i]), &at("models", i), true)?;
            let tokens = match &tokens {
                Tokens::None => None,
                Tokens::All(t) => Some(*t),
                Tokens::Each(c) if c[i].is_none() => None,
                Tokens::Each(c) => Some(uint32(&c[i], &at("tokens", i)())?),
            };
            let max_tokens = match &max_tokens {
                Tokens::None => 0,
                Tokens::All(t) => *t,
                Tokens::Each(c) if c[i].is_none() => 0,
                Tokens::Each(c) => uint32(&c[i], &at("max_tokens", i)())?,
            };
            b.items.push(Item {
                account,
                fingerprints,
                prompt,
                system,
                model,
                tokens,
                max_tokens,
            });
        }
        b.validate()?;
        Ok(b)
    }

    /// Every fingerprint of the batch, as texts.
    fn pair_texts(&self) -> Vec<(&str, &str)> {
        let t = &self.text;
        self.pairs
            .iter()
            .map(|(k, v)| (&t[k.clone()], &t[v.clone()]))
            .collect()
    }

    /// One request of the batch; `pairs` is [`Batch::pair_texts`].
    fn request<'a>(&'a self, item: &Item, pairs: &'a [(&'a str, &'a str)]) -> Request<'a> {
        let t = &self.text;
        let opt = |r: &Option<Range<usize>>| r.as_ref().map(|r| &t[r.clone()]);
        let prompt = opt(&item.prompt);
        let system = opt(&item.system);
        Request {
            account: &t[item.account.clone()],
            fingerprints: &pairs[item.fingerprints.clone()],
            prompt,
            system,
            model: opt(&item.model),
            input_tokens: item
                .tokens
                .unwrap_or_else(|| default_tokens(prompt, system)),
            max_tokens: item.max_tokens,
        }
    }

    /// Checks every request against the core's request contract
    /// (`Request::validate`); the first that breaks it raises, named by its
    /// position.
    fn validate(&self) -> PyResult<()> {
        let pairs = self.pair_texts();
        for (i, item) in self.items.iter().enumerate() {
            if let Err(e) = self.request(item, &pairs).validate() {
                return Err(request_error(&e, Some(&format!("requests[{i}]"))));
            }
        }
        Ok(())
    }

    /// Seconds per `Guard::check`, timed natively over `rounds` passes of the
    /// batch (for the benchmark of the Python call's overhead). Needs no GIL.
    pub fn time_native(&self, guard: &Guard, rounds: usize) -> f64 {
        let pairs = self.pair_texts();
        let requests: Vec<Request<'_>> = self
            .items
            .iter()
            .map(|item| self.request(item, &pairs))
            .collect();
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            for r in &requests {
                std::hint::black_box(guard.check(std::hint::black_box(r)));
            }
        }
        start.elapsed().as_secs_f64() / (rounds * requests.len()).max(1) as f64
    }

    /// Decides every request (already checked against the contract), in
    /// order, on `threads` threads (each takes a contiguous share of the
    /// batch). Needs no GIL.
    pub fn check(&self, node: &Node, threads: usize) -> Vec<Verdict> {
        let pairs = self.pair_texts();
        let decide = |item: &Item| node.check(&self.request(item, &pairs));
        let threads = threads.min(self.items.len() / 64).max(1);
        if threads == 1 {
            return self.items.iter().map(&decide).collect();
        }
        let chunk = self.items.len().div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = self
                .items
                .chunks(chunk)
                .map(|part| s.spawn(|| part.iter().map(&decide).collect::<Vec<_>>()))
                .collect();
            let mut out = Vec::with_capacity(self.items.len());
            for h in handles {
                match h.join() {
                    Ok(v) => out.extend(v),
                    Err(p) => std::panic::resume_unwind(p),
                }
            }
            out
        })
    }
}
