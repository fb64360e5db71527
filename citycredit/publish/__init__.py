"""Publish: the checks a month must pass, the atomic publication, the run report."""
