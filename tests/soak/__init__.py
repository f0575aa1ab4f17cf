"""The bounded soak run (``make soak``; not part of ``make test``): see runner.py."""
