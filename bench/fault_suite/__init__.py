"""The fault suite (issue 11 B): scenarios that inject one kind of fault each into real
`shoal worker` processes on a real Redis and measure what happened to the jobs.

`bench/faults.py` runs them and prints the table; `tests/integration/bench/test_faults_short.py`
runs the ``--short`` variants in CI and asserts each row's guarantees.
"""
