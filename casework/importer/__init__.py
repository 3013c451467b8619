"""History as an asset: import an event log (CSV or XES) as cases decided by the domain's rules at
their recorded instants, and export case histories as XES or CSV for process-mining tools.

    import_log(log, mapping, store, policy, progress=False, limit=None) -> Summary   (run.py)
    start_live(client, store, case_ids, task_queue, limits=None, concurrency=16) -> LiveStarts   (run.py)
    export_log(store, path, case_ids=None, fmt=None) -> int                          (export.py)

The mapping format is in docs/import.md; `python -m casework.importer` is the command line."""

from casework.importer.export import export_log
from casework.importer.mapping import Mapping, MappingError, load_mapping
from casework.importer.run import LiveStarts, Summary, import_log, start_live

__all__ = ["LiveStarts", "Mapping", "MappingError", "Summary", "export_log", "import_log", "load_mapping", "start_live"]
