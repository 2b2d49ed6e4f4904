//! The C ABI's overhead: `rf_check` called as C calls it (through a function
//! pointer, with the request as C structs of pointer + length) against
//! `Guard::check` on the same guard and the same requests, in one run:
//! criterion medians, 8 fingerprints without a prompt and with a 1 KB
//! prompt.
//!
//! Run: `cargo bench -p ringfence-c --bench ffi`. For a paired measurement
//! that cancels the drift of a shared machine, and for instruction counts,
//! see `examples/overhead.rs`.

#[path = "support/traffic.rs"]
#[allow(dead_code)]
mod traffic;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use traffic::{native, through_c, Handle, Requests, Traffic, ACCOUNTS};

fn ffi(c: &mut Criterion) {
    let traffic = Traffic::new();
    let requests = Requests::new(&traffic);
    let handle = Handle::new();
    let guard = handle.guard();
    let check = Handle::check_fn();
    for i in 0..ACCOUNTS {
        native(guard, &requests, i, true);
    }
    for (name, prompt) in [
        ("8_fingerprints", false),
        ("8_fingerprints_1kb_prompt", true),
    ] {
        let mut group = c.benchmark_group(format!("ffi_check/{name}"));
        group.throughput(Throughput::Elements(1));
        let mut i = 0;
        group.bench_function("Guard::check", |b| {
            b.iter(|| {
                i = (i + 1) % ACCOUNTS;
                native(guard, &requests, i, prompt)
            })
        });
        let mut i = 0;
        group.bench_function("rf_check", |b| {
            b.iter(|| {
                i = (i + 1) % ACCOUNTS;
                through_c(check, handle.0, &requests, i, prompt)
            })
        });
        group.finish();
    }
}

criterion_group!(benches, ffi);
criterion_main!(benches);
