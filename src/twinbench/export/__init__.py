"""Portability, measured: export every twin, reload each artifact in its target runtime in a
fresh process, and compare its outputs with the source twin's on the same test batch.

Driver side (framework-free): `formats` (what can be exported, and where it runs), `jobs`
(what a child process is handed), `spawn` (runs a child), `twinbench.api_export` (the
matrix). Child side, imported only in a child process: `child` (train, source outputs,
export: `python -m twinbench.export.child`), `reload` and `loaders` (one artifact in one
runtime: `python -m twinbench.export.reload`), and the exporters in
`twinbench.stacks.torch_export` / `keras_export`.
"""
