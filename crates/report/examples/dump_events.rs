//! Print a log's Sysmon events one per line (record id, event id, fields), to inspect test data.
fn main() {
    for path in std::env::args().skip(1) {
        match sandscope_read::read_all(std::path::Path::new(&path)) {
            Ok(out) => {
                for e in out.events {
                    let fields: Vec<String> = e
                        .data
                        .iter()
                        .filter(|(k, _)| {
                            !matches!(
                                *k,
                                "RuleName"
                                    | "UtcTime"
                                    | "LogonGuid"
                                    | "FileVersion"
                                    | "Description"
                                    | "Product"
                                    | "Company"
                                    | "TerminalSessionId"
                            )
                        })
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    println!(
                        "{} {} {}",
                        e.source.record_id.unwrap_or(0),
                        e.event_id,
                        fields.join(" | ")
                    );
                }
            }
            Err(err) => eprintln!("{err}"),
        }
    }
}
