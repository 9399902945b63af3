"""Framework-free datasets: every stack gets the very same numpy arrays."""
