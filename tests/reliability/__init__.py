"""Reliability tests of the PostgreSQL pass (issue 8, item 5): a connection killed in the middle
of a transfer, Redis (cache and broker) stopped and started again. Concurrent transfers with
duplicate idempotency keys and random freezes are tests/ledger/test_ledger_concurrency.py."""
