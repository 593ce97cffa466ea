//! `cargo fuzz run inventory_ini`: see rigger::fuzzing::inventory_ini.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rigger::fuzzing::inventory_ini(data));
