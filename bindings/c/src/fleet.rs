//! What a guard handle holds: a guard on its own, or, when its
//! configuration has a `[fleet]` table, a fleet node (`ringfence-fleet`):
//! the same calls, with quotas that hold across the fleet and evidence
//! shared through Redis or Valkey. The fleet needs the `fleet` feature (on
//! by default); a build without it refuses a `[fleet]` table by name.

use crate::buffer::rf_string;
use crate::error::{rf_status, Error, Result};
use crate::ffi;
use crate::guard::rf_guard;
use ringfence::guard::{
    Guard, GuardConfig, Request, RequestError, SettleError, Settlement, Verdict,
};

/// The guard behind a handle: a `ringfence_fleet::Node`, a lone guard or
/// a fleet node as its configuration says.
#[cfg(feature = "fleet")]
pub(crate) struct Inner(ringfence_fleet::Node);

/// The guard behind a handle (a build without fleet mode: a lone guard).
#[cfg(not(feature = "fleet"))]
pub(crate) struct Inner(Guard);

impl Inner {
    /// The guard `config` asks for: a fleet node when it has a `[fleet]`
    /// table.
    pub fn new(config: GuardConfig) -> Result<Inner> {
        let config_error = |e: String| Error::new(rf_status::RF_ERR_CONFIG, e);
        #[cfg(feature = "fleet")]
        return ringfence_fleet::Node::from_config(config)
            .map(Inner)
            .map_err(config_error);
        #[cfg(not(feature = "fleet"))]
        {
            if !config.fleet.is_empty() {
                return Err(config_error(
                    "[fleet]: this build of ringfence-c has no fleet mode (built without its \
                     `fleet` feature)"
                        .into(),
                ));
            }
            Guard::try_new(config)
                .map(Inner)
                .map_err(|e| config_error(e.to_string()))
        }
    }

    pub fn guard(&self) -> &Guard {
        #[cfg(feature = "fleet")]
        return self.0.guard();
        #[cfg(not(feature = "fleet"))]
        &self.0
    }

    pub fn try_check(&self, req: &Request<'_>) -> std::result::Result<Verdict, RequestError> {
        self.0.try_check(req)
    }

    pub fn settle_token(&self, s: Settlement, out: u32) -> std::result::Result<(), SettleError> {
        self.0.settle_token(s, out)
    }

    /// A fleet node's snapshot carries its place in the evidence exchange.
    pub fn snapshot(&self) -> Vec<u8> {
        self.0.snapshot()
    }

    /// Restores a snapshot; a fleet node rejoins the exchange where its
    /// snapshot left it (an exchange that cannot resume is reported on
    /// stderr, and the guard is restored all the same).
    pub fn restore(&self, bytes: &[u8]) -> std::result::Result<(), String> {
        #[cfg(feature = "fleet")]
        {
            let r = self.0.restore(bytes).map_err(|e| e.to_string())?;
            if let Some(why) = r.resume_error {
                eprintln!("ringfence-fleet: restored, but not at its place in the exchange: {why}");
            }
            Ok(())
        }
        #[cfg(not(feature = "fleet"))]
        self.0.restore(bytes).map_err(|e| e.to_string())
    }

    /// A fleet node's counts as JSON, if it is one.
    fn fleet_stats(&self) -> Option<String> {
        #[cfg(feature = "fleet")]
        return self.0.fleet_stats();
        #[cfg(not(feature = "fleet"))]
        None
    }
}

/// A fleet node's counts, as one JSON object in a string that ringfence
/// allocates: `{"node": "…", "quotas": {…}, "evidence": {…}}`, with the
/// fleet quotas' admissions (from a lease, within the node's share, from
/// the store), refusals, failure-mode fallbacks, round trips, store errors,
/// repaired keys and incidents, and the evidence published, received,
/// skipped as bad and dropped. On success `*out` holds the text, owned by
/// the caller, who reads it with `rf_string_data` and frees it with
/// `rf_string_free`; on failure `*out` is set to NULL.
///
/// Errors: `RF_ERR_NULL`, and `RF_ERR_INVALID` for a guard whose
/// configuration has no `[fleet]` table.
///
/// # Safety
/// `guard` is NULL or a live guard; `out` is NULL or valid for writing a
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn rf_guard_fleet_stats(
    guard: *const rf_guard,
    out: *mut *mut rf_string,
) -> rf_status {
    ffi::boundary("rf_guard_fleet_stats", || {
        // SAFETY: per this function's contract (above).
        unsafe {
            ffi::write(out, std::ptr::null_mut()).map_err(|e| e.named("out"))?;
            let g = ffi::arg(guard).map_err(|e| e.named("guard"))?;
            let text = g.inner.fleet_stats().ok_or_else(|| {
                Error::new(
                    rf_status::RF_ERR_INVALID,
                    "this guard is not a fleet node (its configuration has no [fleet] table)",
                )
            })?;
            ffi::write(out, ffi::into_handle(rf_string::new(text))).map_err(|e| e.named("out"))
        }
    })
}
