"""`make bench`: the service's performance measured side by side against ceilings taken in the same run.

See docs/performance.md for what is measured, how, and the latest figures.
"""
