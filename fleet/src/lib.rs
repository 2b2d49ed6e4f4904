//! ringfence across a fleet of gateway nodes.
//!
//! A guard on one node limits what that node sees. Behind a load
//! balancer, N nodes would grant N times every quota. This crate keeps the
//! quotas fleet-wide in Redis or Valkey (the engine gateways already run
//! for rate limiting), without a round trip per request: see
//! [`GlobalLimits`] for the leases, the node's share, the overshoot bound
//! and the failure modes, and [`FleetGuard`] for a guard whose account,
//! cluster and fingerprint quotas hold across the fleet.
//!
//! It is a separate crate so that the core stays free of network code.
//! Configuration is the guard's TOML with a `[fleet]` table
//! ([`FleetConfig`]).
//!
//! Keys: `{prefix}:q:{<hash>}`, the hash in braces being the key's hash
//! tag, so that Redis Cluster and Valkey cluster shard them by it and every
//! script call touches one slot. Each expires when its arrival time
//! passes, so memory holds only keys in use.
//!
//! Evidence is shared between nodes through Redis Streams
//! ([`EvidenceExchange`], [`FleetGuard::sharing`]), requests digested
//! (`Guard::digest`); a restarted node rejoins from its snapshot
//! ([`FleetGuard::restore`]). From C and Python a `[fleet]` table in the
//! guard's TOML makes a fleet node ([`Node`]). See `docs/fleet.md`.

mod config;
mod evidence;
mod guard;
mod limits;
#[doc(hidden)]
pub mod local_server;
mod memory_exchange;
mod node;
mod redis_store;
mod rejoin;
mod share;
mod store;
mod streams;

pub use config::{FailMode, FleetConfig, FleetConfigError};
pub use evidence::{
    decode_batch, encode_batch, receive, BatchError, EvidenceExchange, Observation, Received, Seen,
    MAX_BATCH_BYTES, MAX_TEXT_BYTES,
};
pub use guard::{key_hash, FleetGuard, FleetLimits};
pub use limits::{
    Admission, FleetStats, GlobalLimits, ManualWallClock, SystemWallClock, WallClock,
};
pub use memory_exchange::MemoryExchange;
pub use node::Node;
pub use redis_store::{RedisStore, GCRA_SCRIPT};
pub use rejoin::{RejoinError, Rejoined, MAX_POSITION_BYTES};
pub use share::{EvidenceLink, ShareStats};
pub use store::{
    gcra_take, Grant, MemoryStore, QuotaStore, Rule, StoreError, Take, PIPELINE_TAKES,
};
pub use streams::RedisExchange;

/// The examples of `docs/fleet.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/fleet.md")]
pub struct FleetDoctests;
