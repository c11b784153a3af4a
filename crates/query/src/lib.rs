//! The VirusTotal Intelligence search language: parser, AST and matching semantics.
