//! The Sysmon manifest's field lists per event id (schema 4.81, plus 27–29 and 255), in the
//! order Sysmon writes them.
//!
//! Readers of flat exports (Mordor/nxlog, Log Analytics) use these lists to tell the event's own
//! fields from the envelope the shipper added (`Hostname`, `Severity`, `EventType: INFO`, …):
//! a key is an `EventData` field when the manifest lists it for that event id.

const RULE_UTC: [&str; 2] = ["RuleName", "UtcTime"];

macro_rules! fields {
    ($($name:literal),* $(,)?) => { &[$($name),*] };
}

static E1: &[&str] = fields!(
    "RuleName",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "Image",
    "FileVersion",
    "Description",
    "Product",
    "Company",
    "OriginalFileName",
    "CommandLine",
    "CurrentDirectory",
    "User",
    "LogonGuid",
    "LogonId",
    "TerminalSessionId",
    "IntegrityLevel",
    "Hashes",
    "ParentProcessGuid",
    "ParentProcessId",
    "ParentImage",
    "ParentCommandLine",
    "ParentUser",
);
static E2: &[&str] = fields!(
    "RuleName",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "Image",
    "TargetFilename",
    "CreationUtcTime",
    "PreviousCreationUtcTime",
    "User",
);
static E3: &[&str] = fields!(
    "RuleName",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "Image",
    "User",
    "Protocol",
    "Initiated",
    "SourceIsIpv6",
    "SourceIp",
    "SourceHostname",
    "SourcePort",
    "SourcePortName",
    "DestinationIsIpv6",
    "DestinationIp",
    "DestinationHostname",
    "DestinationPort",
    "DestinationPortName",
);
static E4: &[&str] = fields!("UtcTime", "State", "Version", "SchemaVersion");
static E5: &[&str] = fields!(
    "RuleName",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "Image",
    "User"
);
static E6: &[&str] = fields!(
    "RuleName",
    "UtcTime",
    "ImageLoaded",
    "Hashes",
    "Signed",
    "Signature",
    "SignatureStatus",
);
static E7: &[&str] = fields!(
    "RuleName",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "Image",
    "ImageLoaded",
    "FileVersion",
    "Description",
    "Product",
    "Company",
    "OriginalFileName",
    "Hashes",
    "Signed",
    "Signature",
    "SignatureStatus",
    "User",
);
// Events 8 and 10 spell the GUID names differently (`Guid` / `GUID`); both spellings are
// accepted for both, since exports of older schemas are not consistent either.
static E8: &[&str] = fields!(
    "RuleName",
    "UtcTime",
    "SourceProcessGuid",
    "SourceProcessGUID",
    "SourceProcessId",
    "SourceImage",
    "TargetProcessGuid",
    "TargetProcessGUID",
    "TargetProcessId",
    "TargetImage",
    "NewThreadId",
    "StartAddress",
    "StartModule",
    "StartFunction",
    "SourceUser",
    "TargetUser",
);
static E9: &[&str] = fields!(
    "RuleName",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "Image",
    "Device",
    "User"
);
static E10: &[&str] = fields!(
    "RuleName",
    "UtcTime",
    "SourceProcessGUID",
    "SourceProcessGuid",
    "SourceProcessId",
    "SourceThreadId",
    "SourceImage",
    "TargetProcessGUID",
    "TargetProcessGuid",
    "TargetProcessId",
    "TargetImage",
    "GrantedAccess",
    "CallTrace",
    "SourceUser",
    "TargetUser",
);
static E11: &[&str] = fields!(
    "RuleName",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "Image",
    "TargetFilename",
    "CreationUtcTime",
    "User",
);
static E12: &[&str] = fields!(
    "RuleName",
    "EventType",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "Image",
    "TargetObject",
    "User",
);
static E13: &[&str] = fields!(
    "RuleName",
    "EventType",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "Image",
    "TargetObject",
    "Details",
    "User",
);
static E14: &[&str] = fields!(
    "RuleName",
    "EventType",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "Image",
    "TargetObject",
    "NewName",
    "User",
);
static E15: &[&str] = fields!(
    "RuleName",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "Image",
    "TargetFilename",
    "CreationUtcTime",
    "Hash",
    "Contents",
    "User",
);
static E16: &[&str] = fields!("UtcTime", "Configuration", "ConfigurationFileHash");
static E17: &[&str] = fields!(
    "RuleName",
    "EventType",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "PipeName",
    "Image",
    "User",
);
static E19: &[&str] = fields!(
    "RuleName",
    "EventType",
    "UtcTime",
    "Operation",
    "User",
    "EventNamespace",
    "Name",
    "Query",
);
static E20: &[&str] = fields!(
    "RuleName",
    "EventType",
    "UtcTime",
    "Operation",
    "User",
    "Name",
    "Type",
    "Destination",
);
static E21: &[&str] = fields!(
    "RuleName",
    "EventType",
    "UtcTime",
    "Operation",
    "User",
    "Consumer",
    "Filter",
);
static E22: &[&str] = fields!(
    "RuleName",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "QueryName",
    "QueryStatus",
    "QueryResults",
    "Image",
    "User",
);
static E23: &[&str] = fields!(
    "RuleName",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "User",
    "Image",
    "TargetFilename",
    "Hashes",
    "IsExecutable",
    "Archived",
);
static E24: &[&str] = fields!(
    "RuleName",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "Image",
    "Session",
    "ClientInfo",
    "Hashes",
    "Archived",
    "User",
);
static E25: &[&str] = fields!(
    "RuleName",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "Image",
    "Type",
    "User"
);
static E26: &[&str] = fields!(
    "RuleName",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "User",
    "Image",
    "TargetFilename",
    "Hashes",
    "IsExecutable",
);
static E27: &[&str] = fields!(
    "RuleName",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "User",
    "Image",
    "TargetFilename",
    "Hashes",
);
static E28: &[&str] = fields!(
    "RuleName",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "User",
    "Image",
    "TargetFilename",
    "Hashes",
    "IsExecutable",
);
static E255: &[&str] = fields!("UtcTime", "ID", "Description");

/// The `EventData` field names the Sysmon manifest lists for `event_id`, in Sysmon's order;
/// `None` for an id Sysmon does not define.
pub fn sysmon_fields(event_id: u16) -> Option<&'static [&'static str]> {
    Some(match event_id {
        1 => E1,
        2 => E2,
        3 => E3,
        4 => E4,
        5 => E5,
        6 => E6,
        7 => E7,
        8 => E8,
        9 => E9,
        10 => E10,
        11 => E11,
        12 => E12,
        13 => E13,
        14 => E14,
        15 => E15,
        16 => E16,
        17 | 18 => E17,
        19 => E19,
        20 => E20,
        21 => E21,
        22 => E22,
        23 => E23,
        24 => E24,
        25 => E25,
        26 => E26,
        27 | 29 => E27,
        28 => E28,
        255 => E255,
        _ => return None,
    })
}

/// True when `name` is a field of any Sysmon event (used for event ids the manifest lacks).
pub fn is_sysmon_field(name: &str) -> bool {
    RULE_UTC.contains(&name)
        || (1..=29)
            .chain([255])
            .filter_map(sysmon_fields)
            .any(|fields| fields.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lists() {
        assert_eq!(sysmon_fields(1).unwrap()[2], "ProcessGuid");
        assert!(sysmon_fields(10).unwrap().contains(&"SourceProcessGUID"));
        assert!(sysmon_fields(15).unwrap().contains(&"Hash"));
        assert!(!sysmon_fields(3).unwrap().contains(&"EventType"));
        assert!(sysmon_fields(30).is_none());
        assert!(is_sysmon_field("QueryResults"));
        assert!(!is_sysmon_field("Hostname"));
    }
}
