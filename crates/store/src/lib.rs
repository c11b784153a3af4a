//! The embedded report store and search index: redb for reports, tantivy for search.
