//! `cargo fuzz run template`: see rigger::fuzzing::template.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rigger::fuzzing::template(data));
