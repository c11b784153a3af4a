"""Stand-in for CAPE's `lib.cuckoo.common.abstracts.Report` (the interface a reporting module
sees: CAPE sets the analysis folder and the module's options, then calls `run(results)`)."""

import os


class Report:
    order = 1

    def __init__(self):
        self.analysis_path = ""
        self.reports_path = ""
        self.options = None

    def set_path(self, analysis_path):
        self.analysis_path = analysis_path
        self.reports_path = os.path.join(analysis_path, "reports")

    def set_options(self, options):
        self.options = options

    def run(self, results):
        raise NotImplementedError
