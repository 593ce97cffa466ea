//! `cargo fuzz run vault`: see rigger::fuzzing::vault.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rigger::fuzzing::vault(data));
