//! Behaviour reports from Sysmon logs: attribution to the sample, normalisation, behash.
