//! CAPE and Cuckoo sandbox reports as behaviour reports.
