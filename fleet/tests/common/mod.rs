//! The hydra the fleet's evidence tests send: 30 accounts sharing one card,
//! each pair of them a device, asking for reasoning.

use ringfence::guard::Request;

/// The hydra's accounts.
pub const ACCOUNTS: usize = 30;

/// Hydra account `k`.
pub fn account(k: usize) -> String {
    format!("hydra_{k}")
}

/// Request `round` of hydra account `k`, handed to `send` with the
/// account's name.
pub fn ask<T>(k: usize, round: usize, send: impl FnOnce(&str, &Request<'_>) -> T) -> T {
    let (account, device) = (account(k), format!("dev_{}", k / 2));
    let fps = [("payment", "card_4242_shared"), ("device", device.as_str())];
    let prompt = format!("Solve step by step, showing all reasoning: task {k}-{round}");
    send(
        &account,
        &Request {
            account: &account,
            fingerprints: &fps,
            prompt: Some(&prompt),
            system: None,
            model: None,
            input_tokens: 30,
            max_tokens: 512,
        },
    )
}
