"""Stand-in for CAPE's `lib.cuckoo.common.exceptions`."""


class CuckooReportError(Exception):
    pass
