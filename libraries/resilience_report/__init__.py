"""The resilience report: a tool beside the keyword library, not keywords.

``python -m resilience_report results --profile …`` (``run.sh`` runs it after every run) reads what the tests
recorded through ``PlatformLibrary.report.metrics`` and ``output.xml`` and writes the report's JSON and HTML page;
``python -m resilience_report.failures results/output.xml`` prints the failed tests last. It imports the library's
lower layers (``core``, ``aws.cost``, ``report.metrics``); the library never imports it.
"""
