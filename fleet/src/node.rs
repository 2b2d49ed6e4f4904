//! [`Node`]: what a binding holds, a guard on its own or a fleet node,
//! chosen by the configuration (a `[fleet]` table makes a fleet node).

use crate::guard::FleetGuard;
use crate::rejoin::{RejoinError, Rejoined};
use ringfence::guard::{
    Guard, GuardConfig, Request, RequestError, SettleError, Settlement, Verdict,
};

/// A guard on its own, or a fleet node: the same calls either way. The
/// C and Python ways in hold one, so that adding `[fleet]` to a guard's
/// TOML is all it takes to join a fleet.
// (The lone guard stays inline: one indirection fewer on its hot path.)
#[allow(clippy::large_enum_variant)]
pub enum Node {
    /// A guard on its own.
    Local(Guard),
    /// A fleet node ([`FleetGuard::from_config`]).
    Fleet(FleetGuard),
}

impl Node {
    /// The node `config` asks for: a fleet node when its `[fleet]` table
    /// is not empty, else a guard on its own. Errors name the key at
    /// fault.
    pub fn from_config(config: GuardConfig) -> Result<Node, String> {
        if config.fleet.is_empty() {
            Guard::try_new(config)
                .map(Node::Local)
                .map_err(|e| e.to_string())
        } else {
            FleetGuard::from_config(config).map(Node::Fleet)
        }
    }

    /// The guard.
    pub fn guard(&self) -> &Guard {
        match self {
            Node::Local(g) => g,
            Node::Fleet(f) => f.guard(),
        }
    }

    /// The fleet node, if it is one.
    pub fn fleet(&self) -> Option<&FleetGuard> {
        match self {
            Node::Local(_) => None,
            Node::Fleet(f) => Some(f),
        }
    }

    /// Decides one request (see `Guard::check` and [`FleetGuard::check`]).
    pub fn check(&self, req: &Request<'_>) -> Verdict {
        match self {
            Node::Local(g) => g.check(req),
            Node::Fleet(f) => f.check(req),
        }
    }

    /// [`Node::check`] after checking the request contract.
    pub fn try_check(&self, req: &Request<'_>) -> Result<Verdict, RequestError> {
        req.validate()?;
        Ok(self.check(req))
    }

    /// Settles a verdict from its token (see `Guard::settle_token` and
    /// [`FleetGuard::settle_token`]).
    pub fn settle_token(&self, s: Settlement, output_tokens: u32) -> Result<(), SettleError> {
        match self {
            Node::Local(g) => g.settle_token(s, output_tokens),
            Node::Fleet(f) => f.settle_token(s, output_tokens),
        }
    }

    /// A snapshot: a fleet node's carries its place in the evidence
    /// exchange ([`FleetGuard::snapshot`]).
    pub fn snapshot(&self) -> Vec<u8> {
        match self {
            Node::Local(g) => g.snapshot(),
            Node::Fleet(f) => f.snapshot(),
        }
    }

    /// Restores a snapshot; a fleet node rejoins the exchange where it
    /// left it ([`FleetGuard::restore`]). Nothing changes on an error.
    pub fn restore(&self, bytes: &[u8]) -> Result<Rejoined, RejoinError> {
        match self {
            Node::Local(g) => g
                .restore(bytes)
                .map(|()| Rejoined::default())
                .map_err(RejoinError::Guard),
            Node::Fleet(f) => f.restore(bytes),
        }
    }

    /// A fleet node's counts as JSON ([`FleetGuard::stats_json`]).
    pub fn fleet_stats(&self) -> Option<String> {
        self.fleet().map(FleetGuard::stats_json)
    }
}
