"""Report: metrics and histograms the tests record, the report builder (``python -m
PlatformLibrary.report``) and its keywords.
"""
