//! `cargo fuzz run playbook`: see rigger::fuzzing::playbook.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rigger::fuzzing::playbook(data));
