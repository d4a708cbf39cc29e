//! Fuzz target `params_iter`: see `rserpool_wire_fuzz::params_iter`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rserpool_wire_fuzz::params_iter(data));
