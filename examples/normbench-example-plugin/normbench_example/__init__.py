"""An example normbench plugin: ``nets`` (a model builder), ``data`` (a dataset loader), ``norms`` (a norm)."""

__version__ = "0.1.0"
