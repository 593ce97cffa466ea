//! `cargo fuzz run inventory_yaml`: see rigger::fuzzing::inventory_yaml.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rigger::fuzzing::inventory_yaml(data));
