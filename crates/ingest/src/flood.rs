//! Generated hostile logs for the tests and checks of bounded memory: one sample's process
//! creation followed by a flood of file creations, as JSON lines in the shape of the OTRF
//! Security-Datasets exports (`tests/data/jsonl`). Gzip'd (by the caller), a flood of one
//! repeated line is a decompression bomb: 20 MB expand to gigabytes of events.

use std::io::{self, Write};

/// The sample's SHA-256 in the flood's process creation (`Hashes`).
pub const FLOOD_SAMPLE_SHA256: &str =
    "39c59c362649090b4d34e5c8221c6e86552c07fe2df3478d591a68b70917bc0a";

/// Write one process creation of `C:\Users\bob\Desktop\evil.exe` and `events` file creations
/// by it: all the same line, or each a different file when `distinct`.
pub fn write_file_creation_flood(
    out: &mut dyn Write,
    events: u64,
    distinct: bool,
) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    writeln!(
        out,
        r#"{{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Hostname":"WORKSTATION5","TimeCreated":"2020-10-21T08:45:33.686Z","UtcTime":"2020-10-22 00:45:33.684","ProcessGuid":"{{39e4a257-d62d-5f90-8710-000000000700}}","ProcessId":"3112","Image":"C:\\Users\\bob\\Desktop\\evil.exe","CommandLine":"\"C:\\Users\\bob\\Desktop\\evil.exe\" -run","CurrentDirectory":"C:\\Users\\bob\\Desktop\\","User":"WORKSTATION5\\bob","LogonGuid":"{{39e4a257-f1ac-5f8b-d961-0c0000000000}}","LogonId":"0xc61d9","TerminalSessionId":"2","IntegrityLevel":"High","Hashes":"SHA1=937FAB1F3A34287C44B11C3CB18A964FF6C84983,MD5=E46C638010C25479F66BACBE8596CA76,SHA256={},IMPHASH=35A7FFDE18D444A92D32C8B2879450FF","ParentProcessGuid":"{{39e4a257-d603-5f90-8010-000000000700}}","ParentProcessId":"8692","ParentImage":"C:\\Windows\\explorer.exe","ParentCommandLine":"C:\\Windows\\explorer.exe","RuleName":"-"}}"#,
        FLOOD_SAMPLE_SHA256.to_ascii_uppercase()
    )?;
    for i in 0..events {
        let name = if distinct {
            format!("x{i}.tmp")
        } else {
            "x.tmp".to_string()
        };
        writeln!(
            out,
            r#"{{"EventID":11,"Channel":"Microsoft-Windows-Sysmon/Operational","Hostname":"WORKSTATION5","TimeCreated":"2020-10-21T08:45:35.853Z","UtcTime":"2020-10-22 00:45:35.822","ProcessGuid":"{{39e4a257-d62d-5f90-8710-000000000700}}","ProcessId":"3112","Image":"C:\\Users\\bob\\Desktop\\evil.exe","TargetFilename":"C:\\Users\\bob\\AppData\\Local\\Temp\\{name}","CreationUtcTime":"2020-10-22 00:45:35.822","RuleName":"-"}}"#
        )?;
    }
    out.flush()
}
