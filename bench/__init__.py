"""Benchmarks (not part of `make test`): run each as a module from the project root,
`python -m bench.ledger`, or all of them with `make bench`."""
