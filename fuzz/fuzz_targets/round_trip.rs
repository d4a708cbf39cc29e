//! Fuzz target `round_trip`: see `rserpool_wire_fuzz::round_trip`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rserpool_wire_fuzz::round_trip(data));
