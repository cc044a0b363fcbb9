"""Plugins: models, datasets and norms from import paths or installed entry points, and their protocols.

- `source`: import paths (`package.module:attr`), `PluginError`, `Provenance`.
- `entry_points`: the groups `normbench.models`, `normbench.datasets`, `normbench.norms`.
- `protocols`: the call protocols and the signature check.
- `conformance`: checks that run a plugin once at validation (a model's output, a norm's mask).
- `blame`: which plugin a run's error came from.
"""

from normbench.plugins.entry_points import GROUPS, PluginEntryPoint, discover
from normbench.plugins.source import PluginError, Provenance, is_import_path

__all__ = ["GROUPS", "PluginEntryPoint", "PluginError", "Provenance", "discover", "is_import_path"]
