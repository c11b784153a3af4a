//! Any input: the parser returns a query or an error whose column lies within the input, and
//! evaluating a parsed query never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sandscope_model::{BehaviourAttributes, FileBehaviour};
use sandscope_query::{SampleDoc, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text) {
        Ok(query) => {
            let attributes = BehaviourAttributes {
                sandbox_name: "Microsoft Sysinternals".into(),
                files_written: vec![text.to_string(), r"C:\Users\a\AppData\Roaming\x.exe".into()],
                command_executions: vec![text.chars().rev().collect()],
                ..Default::default()
            };
            let report = FileBehaviour::new(&"0".repeat(64), attributes);
            let doc = SampleDoc::from_reports(&"0".repeat(64), &[report]);
            let _ = query.matches(&doc, 0);
            let _ = query.snippets(&doc, 5);
        }
        Err(e) => {
            assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "{e}");
        }
    }
});
