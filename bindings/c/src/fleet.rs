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
    Guard, GuardConfig, Request, RequestError, SettleError, Settlement, SnapshotError, Verdict,
};

/// The guard behind a handle.
pub(crate) enum Inner {
    Local(Guard),
    #[cfg(feature = "fleet")]
    Fleet(Box<ringfence_fleet::FleetGuard>),
}

impl Inner {
    /// The guard `config` asks for: a fleet node when it has a `[fleet]`
    /// table.
    pub fn new(config: GuardConfig) -> Result<Inner> {
        if config.fleet.is_empty() {
            return Guard::try_new(config)
                .map(Inner::Local)
                .map_err(|e| Error::new(rf_status::RF_ERR_CONFIG, e.to_string()));
        }
        #[cfg(feature = "fleet")]
        {
            ringfence_fleet::FleetGuard::from_config(config)
                .map(|f| Inner::Fleet(Box::new(f)))
                .map_err(|e| Error::new(rf_status::RF_ERR_CONFIG, e))
        }
        #[cfg(not(feature = "fleet"))]
        Err(Error::new(
            rf_status::RF_ERR_CONFIG,
            "[fleet]: this build of ringfence-c has no fleet mode (built without its `fleet` \
             feature)",
        ))
    }

    pub fn guard(&self) -> &Guard {
        match self {
            Inner::Local(g) => g,
            #[cfg(feature = "fleet")]
            Inner::Fleet(f) => f.guard(),
        }
    }

    pub fn try_check(&self, req: &Request<'_>) -> std::result::Result<Verdict, RequestError> {
        match self {
            Inner::Local(g) => g.try_check(req),
            #[cfg(feature = "fleet")]
            Inner::Fleet(f) => {
                req.validate()?;
                Ok(f.check(req))
            }
        }
    }

    pub fn settle_token(&self, s: Settlement, out: u32) -> std::result::Result<(), SettleError> {
        match self {
            Inner::Local(g) => g.settle_token(s, out),
            #[cfg(feature = "fleet")]
            Inner::Fleet(f) => f.settle_token(s, out),
        }
    }

    /// A fleet node's snapshot carries its place in the evidence exchange.
    pub fn snapshot(&self) -> Vec<u8> {
        match self {
            Inner::Local(g) => g.snapshot(),
            #[cfg(feature = "fleet")]
            Inner::Fleet(f) => f.snapshot(),
        }
    }

    /// Restores a snapshot; a fleet node rejoins the exchange where its
    /// snapshot left it (an exchange that cannot resume is reported on
    /// stderr, and the guard is restored all the same).
    pub fn restore(&self, bytes: &[u8]) -> std::result::Result<(), String> {
        match self {
            Inner::Local(g) => g.restore(bytes).map_err(|e: SnapshotError| e.to_string()),
            #[cfg(feature = "fleet")]
            Inner::Fleet(f) => {
                let r = f.restore(bytes).map_err(|e| e.to_string())?;
                if let Some(why) = r.resume_error {
                    eprintln!(
                        "ringfence-fleet: restored, but not at its place in the exchange: {why}"
                    );
                }
                Ok(())
            }
        }
    }

    /// A fleet node's counts as JSON, if it is one.
    fn fleet_stats(&self) -> Option<String> {
        match self {
            Inner::Local(_) => None,
            #[cfg(feature = "fleet")]
            Inner::Fleet(f) => Some(f.stats_json()),
        }
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
