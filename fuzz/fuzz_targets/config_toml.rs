#![no_main]
// libFuzzer's entry point; the body is ringfence_fuzz_harness::config_toml.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ringfence_fuzz_harness::config_toml(data));
