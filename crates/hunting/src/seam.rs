//! The one seam hunting needs from a store: opaque records under `u64` ids in a few tables, and
//! a sample's searchable view. The trait lives in `sandscope-store` (it speaks only store
//! types), so the embedded store and the PostgreSQL store each implement it without depending
//! on hunting; where hunting state lives is a backend detail, never a second implementation.

pub use sandscope_store::{RecordLock, RecordStore, RecordStoreError, RecordTable, RecordWrite};
