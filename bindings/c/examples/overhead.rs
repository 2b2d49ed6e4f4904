//! The C ABI's overhead per call, measured two ways on the same guard and
//! requests as `benches/ffi.rs`:
//!
//! - `overhead paired`: times every call, a `Guard::check` and an
//!   `rf_check` in turns (which goes first alternates), so that the load of a
//!   shared machine hits both alike and a descheduled call is an outlier the
//!   median ignores; prints the two medians, the two interquartile means, and
//!   their differences.
//! - `overhead native N` / `overhead c N`: N checks by one path only, to run
//!   under `valgrind --tool=callgrind`, whose instruction counts do not
//!   depend on the machine's load: (Ir(c) - Ir(native)) / N is the
//!   instructions `rf_check` adds per call.
//!
//! Run: `cargo run --release -p ringfence-c --example overhead -- paired`.

#[path = "../benches/support/traffic.rs"]
mod traffic;

use std::time::Instant;
use traffic::{native, through_c, Handle, Requests, Traffic, ACCOUNTS};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let traffic = Traffic::new();
    let requests = Requests::new(&traffic);
    let handle = Handle::new();
    let guard = handle.guard();
    let check = Handle::check_fn();
    for i in 0..ACCOUNTS {
        native(guard, &requests, i, true);
    }
    match args.first().map(String::as_str) {
        Some(path @ ("native" | "c")) => {
            let n: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(10_000);
            let prompt = args.iter().any(|a| a == "--prompt");
            for k in 0..n {
                if path == "native" {
                    native(guard, &requests, k % ACCOUNTS, prompt);
                } else {
                    through_c(check, handle.0, &requests, k % ACCOUNTS, prompt);
                }
            }
        }
        Some("paired") => {
            for (name, prompt, calls) in [
                ("8 fingerprints", false, 200_000),
                ("8 fingerprints, 1 KB prompt", true, 60_000),
            ] {
                let (mut rust_ns, mut c_ns) =
                    (Vec::with_capacity(calls), Vec::with_capacity(calls));
                for k in 0..calls {
                    // Two different accounts, equally cold; which path goes
                    // first alternates.
                    let (i, j) = (k % ACCOUNTS, (k + ACCOUNTS / 2) % ACCOUNTS);
                    let time_native = || {
                        let start = Instant::now();
                        native(guard, &requests, i, prompt);
                        start.elapsed().as_nanos() as f64
                    };
                    let time_c = || {
                        let start = Instant::now();
                        through_c(check, handle.0, &requests, j, prompt);
                        start.elapsed().as_nanos() as f64
                    };
                    if k % 2 == 0 {
                        rust_ns.push(time_native());
                        c_ns.push(time_c());
                    } else {
                        c_ns.push(time_c());
                        rust_ns.push(time_native());
                    }
                }
                // Medians, and interquartile means (the mean of the middle
                // half: robust to descheduled calls like the median, and
                // finer than the clock's steps of a few tens of ns).
                let stats = |v: &mut Vec<f64>| {
                    v.sort_by(f64::total_cmp);
                    let middle = &v[v.len() / 4..3 * v.len() / 4];
                    (
                        v[v.len() / 2],
                        middle.iter().sum::<f64>() / middle.len() as f64,
                    )
                };
                let ((r50, r_iqm), (c50, c_iqm)) = (stats(&mut rust_ns), stats(&mut c_ns));
                println!(
                    "{name}, {calls} calls each: Guard::check median {r50:.0} ns (IQM {r_iqm:.1}), \
                     rf_check median {c50:.0} ns (IQM {c_iqm:.1}): rf_check - Guard::check = \
                     {:+.0} ns (medians), {:+.1} ns (IQMs)",
                    c50 - r50,
                    c_iqm - r_iqm,
                );
            }
        }
        _ => {
            eprintln!(
                "usage: overhead paired | overhead native N [--prompt] | overhead c N [--prompt]"
            );
            std::process::exit(2);
        }
    }
}
