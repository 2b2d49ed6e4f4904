//! The atomics and mutexes of the lock-free cells (the limiter's table and
//! the union-find forests), swapped for `loom`'s under `--cfg loom` so that
//! the model checker can explore every interleaving of their operations
//! (see `src/limit/loom_tests.rs` and `src/link/tables/loom_tests.rs`; run
//! with `scripts/loom.sh`). In a normal build these are the standard
//! atomics and `parking_lot`'s mutex, unchanged.

#[cfg(not(loom))]
pub(crate) use parking_lot::Mutex;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64};

/// `loom`'s mutex with `parking_lot`'s signature (no poisoning).
#[cfg(loom)]
pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

#[cfg(loom)]
impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Mutex(loom::sync::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs `f` under the model checker in every interleaving it admits (with
/// at most `max_branches` scheduling choices per execution) and prints how
/// many executions that took, under `name`.
#[cfg(all(test, loom))]
pub(crate) fn explore(name: &str, max_branches: usize, f: impl Fn() + Sync + Send + 'static) {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let mut model = loom::model::Builder::new();
    model.max_branches = max_branches;
    model.check(move || {
        counted.fetch_add(1, Relaxed);
        f();
    });
    eprintln!("loom: {name}: {} executions", runs.load(Relaxed));
}
