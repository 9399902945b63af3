"""One process core for every spawned measurement (timed cells, parity probes, export and
reload children, pipeline measurements): `spawn` starts and watches a child; `child`
is what each child does first. A fresh interpreter per measurement (as optimum-benchmark
does) means no framework state, thread pool or compile cache leaks between them."""
