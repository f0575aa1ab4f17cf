"""``make bench``: our functions measured side by side with the raw limits
and the tools people would otherwise use, in one run on the local stack.

``python -m bench`` starts the stack, creates the objects, runs every
measurement (interleaved rounds), and writes ``bench-results/summary.json``
and ``bench-results/results.md`` (targets as ratios with pass/fail).
See docs/performance.md.
"""
