//! Format detection and every reader behind it (gzip, zip, UTF-16, EVTX) on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sandscope_read::fuzzing::any(data);
});
