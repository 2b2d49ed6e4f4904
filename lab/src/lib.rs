//! # ringfence-lab
//!
//! Everything used to evaluate a [`ringfence`] guard, kept out of the
//! embeddable core so that a gateway linking the guard pulls in no
//! simulator, no JSON and no command-line parsing:
//!
//! - [`sim`]: a deterministic traffic simulator with benign cohorts and
//!   labelled distillation campaigns, configured by scenario files (TOML);
//! - [`replay`]: the trace format (JSON Lines), the replay of a trace through
//!   a guard, and the evaluation and report against the trace's labels;
//! - the `ringfence` command (`demo`, `simulate`, `replay`, `explain`), built
//!   from `src/bin/ringfence`.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod intel;
pub mod replay;
pub mod sim;

/// The README's examples, compiled and run as doc tests (here, where both
/// the core and the lab are in scope).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The examples of `docs/guide.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/guide.md")]
pub struct GuideDoctests;

/// The examples of `docs/formats.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/formats.md")]
pub struct FormatsDoctests;
