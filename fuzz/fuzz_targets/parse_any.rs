//! Fuzz target `parse_any`: see `rserpool_wire_fuzz::parse_any`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rserpool_wire_fuzz::parse_any(data));
