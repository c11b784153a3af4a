//! The VirusTotal-v3-compatible HTTP API and the web UI.
