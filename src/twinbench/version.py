"""The package version, on its own so that low layers can record it without importing the
package's top level (which offers the driver, `twinbench.run`)."""

__version__ = "0.1.0"
