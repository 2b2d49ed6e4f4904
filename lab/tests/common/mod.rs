//! What the integration tests that drive a guard by hand share.

use ringfence::guard::{Guard, Request, Verdict};
use ringfence_lab::sim::Record;

/// The guard's verdict on a simulated record (1,024 output tokens reserved),
/// settled with the record's output tokens when allowed.
pub fn check_record(guard: &Guard, r: &Record) -> Verdict {
    let fps: Vec<(&str, &str)> = r
        .fingerprints
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let v = guard.check(&Request {
        account: &r.account,
        fingerprints: &fps,
        prompt: Some(&r.prompt),
        system: r.system.as_deref(),
        model: Some(&r.model),
        input_tokens: r.input_tokens,
        max_tokens: 1024,
    });
    if v.allowed() {
        guard.settle(&v, r.output_tokens);
    }
    v
}
