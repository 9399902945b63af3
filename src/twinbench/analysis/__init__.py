"""Statistics and verdicts over a run's cells, apart from their rendering (`report`):
aggregation per twin with CIs (`aggregate`), the per-process tests behind winners,
scenario verdicts and the reliability line (`verdicts`), run-to-run regressions
(`compare`), and the article's table as claim -> evidence -> verdict (`classic`).
Framework-free."""
