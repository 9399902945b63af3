"""The timed cell: what one cell measures in its own process (`measure`), and the
process entry point that bootstraps it (`main`: `python -m twinbench.cell.main JOB`)."""
