#![no_main]
// libFuzzer's entry point; the body is ringfence_fuzz_harness::c_api.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ringfence_fuzz_harness::c_api(data));
