//! The one table that says which Sysmon events a Sigma logsource covers.
//!
//! Sigma rules name abstract log sources (`category: process_creation`); Sysmon writes event ids.
//! Evaluating every rule against every event is both slow (~1k events/s measured) and wrong (a
//! `file_event` rule would run on registry events), so each event is evaluated only against the
//! rules of the categories its event id belongs to. The table follows Sysmon's event ids and the
//! category names of the Sigma taxonomy (the same mapping pySigma's Sysmon pipeline uses).

use rsigma_parser::LogSource;
use sandscope_event::SysmonEvent;

/// One Sigma category and the Sysmon event ids that carry it.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub category: &'static str,
    pub event_ids: &'static [u16],
}

/// Sigma `category` → Sysmon event ids. The only place this mapping exists.
pub const ROUTES: &[Route] = &[
    Route {
        category: "process_creation",
        event_ids: &[1],
    },
    Route {
        category: "file_change",
        event_ids: &[2],
    },
    Route {
        category: "network_connection",
        event_ids: &[3],
    },
    Route {
        category: "sysmon_status",
        event_ids: &[4, 16],
    },
    Route {
        category: "process_termination",
        event_ids: &[5],
    },
    Route {
        category: "driver_load",
        event_ids: &[6],
    },
    Route {
        category: "image_load",
        event_ids: &[7],
    },
    Route {
        category: "create_remote_thread",
        event_ids: &[8],
    },
    Route {
        category: "raw_access_thread",
        event_ids: &[9],
    },
    Route {
        category: "process_access",
        event_ids: &[10],
    },
    Route {
        category: "file_event",
        event_ids: &[11],
    },
    // Event 12 carries both key creation and deletion; rules that care filter on EventType.
    Route {
        category: "registry_add",
        event_ids: &[12],
    },
    Route {
        category: "registry_delete",
        event_ids: &[12],
    },
    Route {
        category: "registry_set",
        event_ids: &[13],
    },
    Route {
        category: "registry_rename",
        event_ids: &[14],
    },
    Route {
        category: "registry_event",
        event_ids: &[12, 13, 14],
    },
    Route {
        category: "create_stream_hash",
        event_ids: &[15],
    },
    Route {
        category: "pipe_created",
        event_ids: &[17, 18],
    },
    Route {
        category: "wmi_event",
        event_ids: &[19, 20, 21],
    },
    Route {
        category: "dns_query",
        event_ids: &[22],
    },
    Route {
        category: "file_delete",
        event_ids: &[23, 26],
    },
    Route {
        category: "clipboard_capture",
        event_ids: &[24],
    },
    Route {
        category: "process_tampering",
        event_ids: &[25],
    },
    Route {
        category: "file_delete_detected",
        event_ids: &[26],
    },
    Route {
        category: "file_block_executable",
        event_ids: &[27],
    },
    Route {
        category: "file_block_shredding",
        event_ids: &[28],
    },
    Route {
        category: "file_executable_detected",
        event_ids: &[29],
    },
    Route {
        category: "sysmon_error",
        event_ids: &[255],
    },
];

/// The Sigma `service` name of the Sysmon channel.
pub const SYSMON_SERVICE: &str = "sysmon";

/// Every Sysmon event id of the table, for rules that apply to the whole channel.
pub fn all_sysmon_event_ids() -> Vec<u16> {
    let mut ids: Vec<u16> = ROUTES
        .iter()
        .flat_map(|r| r.event_ids.iter().copied())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Whether a rule's logsource can ever see a Sysmon event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applicability {
    /// The rule runs on these Sysmon event ids (sorted).
    Sysmon(Vec<u16>),
    /// The rule's logsource is written by something other than Sysmon.
    NotSysmon(String),
}

/// Decide where a rule's logsource applies.
pub fn applicability(logsource: &LogSource) -> Applicability {
    if let Some(product) = &logsource.product
        && !product.eq_ignore_ascii_case("windows")
        && !product.eq_ignore_ascii_case("linux")
    {
        return Applicability::NotSysmon(format!("product `{product}` has no Sysmon events"));
    }
    if let Some(service) = &logsource.service
        && !service.eq_ignore_ascii_case(SYSMON_SERVICE)
    {
        return Applicability::NotSysmon(format!(
            "service `{service}` is another event channel, not Sysmon"
        ));
    }
    match &logsource.category {
        Some(category) => match route_of(category) {
            Some(route) => Applicability::Sysmon(route.event_ids.to_vec()),
            None => {
                Applicability::NotSysmon(format!("category `{category}` is not written by Sysmon"))
            }
        },
        None => Applicability::Sysmon(all_sysmon_event_ids()),
    }
}

fn route_of(category: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|r| r.category.eq_ignore_ascii_case(category))
}

/// The Sigma categories an event belongs to, in table order (empty for ids outside the table).
pub fn categories_of(event_id: u16) -> impl Iterator<Item = &'static str> {
    ROUTES
        .iter()
        .filter(move |r| r.event_ids.contains(&event_id))
        .map(|r| r.category)
}

/// The Sigma `product` of an event: Sysmon for Linux events are `linux`, all others `windows`.
pub fn product_of(event: &SysmonEvent) -> &'static str {
    if event.is_linux() { "linux" } else { "windows" }
}

/// [`event_logsources`] for every (product, event id) below 256, computed once, so the hot path
/// does not build logsources per event.
pub(crate) struct LogsourceTable {
    by_product_and_id: Vec<Vec<LogSource>>,
}

impl LogsourceTable {
    pub(crate) fn new() -> Self {
        let mut by_product_and_id = Vec::with_capacity(512);
        for product in ["windows", "linux"] {
            for id in 0..=255u16 {
                by_product_and_id.push(logsources_for(product, id));
            }
        }
        Self { by_product_and_id }
    }

    /// The logsources of `event`; events with ids beyond the table get theirs built.
    pub(crate) fn of<'a>(&'a self, event: &SysmonEvent) -> std::borrow::Cow<'a, [LogSource]> {
        let product = usize::from(event.is_linux());
        match self
            .by_product_and_id
            .get(product * 256 + usize::from(event.event_id))
            .filter(|_| event.event_id < 256)
        {
            Some(sources) => std::borrow::Cow::Borrowed(sources),
            None => std::borrow::Cow::Owned(event_logsources(event)),
        }
    }
}

/// The logsources to evaluate an event under: one per category it belongs to. Only the first
/// carries `service: sysmon`, so that channel-wide rules are evaluated once per event.
pub fn event_logsources(event: &SysmonEvent) -> Vec<LogSource> {
    logsources_for(product_of(event), event.event_id)
}

fn logsources_for(product: &str, event_id: u16) -> Vec<LogSource> {
    let mut sources: Vec<LogSource> = categories_of(event_id)
        .map(|category| LogSource {
            category: Some(category.to_string()),
            product: Some(product.to_string()),
            ..LogSource::default()
        })
        .collect();
    if sources.is_empty() {
        sources.push(LogSource {
            product: Some(product.to_string()),
            ..LogSource::default()
        });
    }
    sources[0].service = Some(SYSMON_SERVICE.to_string());
    sources
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(category: Option<&str>, product: Option<&str>, service: Option<&str>) -> LogSource {
        LogSource {
            category: category.map(str::to_string),
            product: product.map(str::to_string),
            service: service.map(str::to_string),
            ..LogSource::default()
        }
    }

    #[test]
    fn categories_map_to_sysmon_ids() {
        assert_eq!(
            applicability(&ls(Some("process_creation"), Some("windows"), None)),
            Applicability::Sysmon(vec![1])
        );
        assert_eq!(
            applicability(&ls(Some("registry_event"), Some("windows"), None)),
            Applicability::Sysmon(vec![12, 13, 14])
        );
        assert_eq!(
            applicability(&ls(Some("file_delete"), Some("windows"), None)),
            Applicability::Sysmon(vec![23, 26])
        );
        let all = applicability(&ls(None, Some("windows"), Some("sysmon")));
        assert!(matches!(all, Applicability::Sysmon(ids) if ids.contains(&16) && ids.contains(&1)));
    }

    #[test]
    fn other_channels_are_not_applicable() {
        assert!(matches!(
            applicability(&ls(None, Some("windows"), Some("security"))),
            Applicability::NotSysmon(_)
        ));
        assert!(matches!(
            applicability(&ls(Some("ps_script"), Some("windows"), None)),
            Applicability::NotSysmon(_)
        ));
        assert!(matches!(
            applicability(&ls(Some("process_creation"), Some("macos"), None)),
            Applicability::NotSysmon(_)
        ));
    }

    #[test]
    fn registry_event_ids_have_several_categories() {
        let cats: Vec<_> = categories_of(12).collect();
        assert_eq!(cats, ["registry_add", "registry_delete", "registry_event"]);
        assert_eq!(categories_of(1).collect::<Vec<_>>(), ["process_creation"]);
        assert_eq!(categories_of(999).count(), 0);
    }
}
