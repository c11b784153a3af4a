//! Print the report of the logs given (`--all` for no attribution), as JSON then text.
fn main() {
    let mut events = Vec::new();
    let mut sample = sandscope_report::SampleSelector::Auto;
    for arg in std::env::args().skip(1) {
        if arg == "--all" {
            sample = sandscope_report::SampleSelector::Everything;
            continue;
        }
        if let Some(s) = arg.strip_prefix("--sample=") {
            sample = sandscope_report::SampleSelector::Image(s.to_string());
            continue;
        }
        match sandscope_read::read_all(std::path::Path::new(&arg)) {
            Ok(out) => events.extend(out.events),
            Err(err) => eprintln!("{err}"),
        }
    }
    let options = sandscope_report::ReportOptions {
        sample,
        ..Default::default()
    };
    match sandscope_report::build_report(&events, &options) {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report.behaviour).unwrap_or_default()
            );
            println!("{}", sandscope_report::render_text(&report));
        }
        Err(err) => eprintln!("{err}"),
    }
}
