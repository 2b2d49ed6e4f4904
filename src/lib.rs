//! # ringfence
//!
//! ringfence sits in front of an LLM API and stops *distillation campaigns*:
//! one actor querying a model millions of times through thousands of
//! accounts, each under its own rate limit, to train a copy of the model on
//! the answers. It rate-limits per account, per fingerprint and per cluster of
//! linked accounts, and keeps everything it remembers in bounded memory.
//!
//! ## What is here
//!
//! - [`guard`]: the one entry point. [`Guard::check`](guard::Guard::check)
//!   links the request's account to the accounts it shares rare fingerprints
//!   with ([`link`]), scores the cluster for distillation ([`score`]) and
//!   applies the per-account, per-fingerprint and per-cluster limits at once
//!   ([`limit`]); the verdict says why.
//! - [`sketch`]: the mergeable, bounded-memory sketches everything else is
//!   built on: [`CountMin`](sketch::CountMin) (how often),
//!   [`HyperLogLog`](sketch::HyperLogLog) (how many distinct),
//!   [`MinHash`](sketch::MinHash) / [`Signature`](sketch::Signature) (how
//!   similar), and [`LshIndex`](sketch::LshIndex) (which stored sets are
//!   similar to this one). Each is usable on its own.
//!
//! ## Guarantees the sketches keep
//!
//! - **Bounded memory**: every sketch's size is fixed when it is built (the
//!   LSH index by its capacity), whatever the traffic.
//! - **Lock-free updates through `&self`**: many threads can feed one sketch;
//!   the result equals what one thread would have built.
//! - **Stable hashing**: xxh3 with a configurable 64-bit seed, so sketches
//!   built by different processes and machines merge and compare. (In-memory
//!   maps use `ahash`, whose output is never stored.)
//! - **Exact merges**: `merge(sketch(A), sketch(B)) == sketch(A ∪ B)`.
//! - **Safe decoding**: `from_bytes` rejects truncated, corrupted or foreign
//!   input with an error naming the sketch and byte offset; it never panics.
//!
//! ## Example: a fleet of accounts sharing one card
//!
//! ```
//! use ringfence::guard::{Guard, GuardConfig, Reason, Request};
//! use std::time::Duration;
//!
//! let (guard, clock) = Guard::for_replay(GuardConfig::for_accounts(1_000));
//! let prompt = "Think step by step and show all of your reasoning: prove that the square root of 2 is irrational";
//! let mut refused = 0;
//! for i in 0..200u64 {
//!     clock.set(Duration::from_secs(i * 5));
//!     let account = format!("acct-{}", i % 20);
//!     let verdict = guard.check(&Request {
//!         account: &account,
//!         fingerprints: &[("payment", "card-shared"), ("ja4", "t13d_rare_client")],
//!         prompt: Some(prompt),
//!         system: None,
//!         model: Some("big-model"),
//!         input_tokens: 30,
//!         max_tokens: 2000,
//!     });
//!     if verdict.allowed() {
//!         guard.settle(&verdict, 1800);
//!     } else {
//!         assert!(verdict.reasons.contains(&Reason::SuspectedDistillation));
//!         refused += 1;
//!     }
//! }
//! // Each account sent one request a minute and a half, far under its own
//! // limit; as one cluster, most of them were refused.
//! assert!(refused > 150, "{refused}");
//! println!("{}", guard.explain("acct-3").unwrap());
//! ```
//!
//! ## Example: how many accounts share one card, and do their prompts match?
//!
//! ```
//! use ringfence::sketch::{HyperLogLog, Signature};
//!
//! // Distinct accounts seen paying with one card.
//! let accounts = HyperLogLog::new(10)?;
//! for account in ["acct-1", "acct-2", "acct-3", "acct-2"] {
//!     accounts.insert(account);
//! }
//! assert_eq!(accounts.estimate().round(), 3.0);
//!
//! // Two prompts from one template, with different content.
//! let a = Signature::from_text(128, 0, "You are a math tutor. Think step by step and show every step. Problem: integrate x^2 from 0 to 3", 3)?;
//! let b = Signature::from_text(128, 0, "You are a math tutor. Think step by step and show every step. Problem: differentiate sin(x) cos(x)", 3)?;
//! assert!(a.jaccard(&b)? > 0.4);
//! # Ok::<(), ringfence::sketch::Error>(())
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod codec;
pub mod crowd;
pub mod guard;
pub mod intel;
pub mod limit;
pub mod link;
mod model;
pub mod persist;
mod request;
pub mod score;
pub mod sketch;
mod slots;
mod sync;
