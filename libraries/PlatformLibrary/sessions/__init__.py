"""Sessions: the session API keywords, the DynamoDB records, consistency checks between them, and platform access
(locks).
"""
