//! The JSON-lines reader (every JSON shape, CAPE reports, embedded XML) on arbitrary bytes:
//! must never panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sandscope_read::fuzzing::json_lines(data);
});
