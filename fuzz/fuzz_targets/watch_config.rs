//! `cargo fuzz run watch_config`: see rigger::fuzzing::watch_config.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rigger::fuzzing::watch_config(data));
