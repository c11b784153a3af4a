//! The XML / syslog reader on arbitrary bytes: must never panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sandscope_read::fuzzing::xml(data);
});
