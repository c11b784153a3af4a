//! Sigma detection over Sysmon events: rule loading, logsource routing, explained hits.
