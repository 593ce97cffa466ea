//! `cargo fuzz run inventory_script`: see rigger::fuzzing::inventory_script.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rigger::fuzzing::inventory_script(data));
