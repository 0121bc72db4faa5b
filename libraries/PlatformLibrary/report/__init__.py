"""Report keywords: the metrics and histograms the tests record, SLA assertions and cost. The report built from
them is a tool beside the library (``libraries/resilience_report``, ``python -m resilience_report``).
"""
