"""Normalization layers under comparison: registry, layer families, and the conv+BN folding helper.

``create_norm(name, num_features, **options)`` builds any of ``available()``; every module takes
channel-first input ``(N, C, *spatial)`` and ``forward(x, mask=None)``. See docs/norms.md.
"""

from normbench.norms.base import NormModule, OptionProblem
from normbench.norms.batch import BatchNorm
from normbench.norms.batch_layer import BatchLayerNorm
from normbench.norms.errors import NormUndefinedError
from normbench.norms.full import FullNorm
from normbench.norms.fuse import fuse_conv_bn
from normbench.norms.group import GroupNorm
from normbench.norms.identity import Identity
from normbench.norms.instance import InstanceNorm
from normbench.norms.layer import LayerNorm
from normbench.norms.registry import ALIASES, available, canonical_name, create_norm, norm_options
from normbench.norms.renorm import BatchRenorm
from normbench.norms.rms import RMSNorm
from normbench.norms.weight import WeightNorm

__all__ = [
    "ALIASES",
    "BatchLayerNorm",
    "BatchNorm",
    "BatchRenorm",
    "FullNorm",
    "GroupNorm",
    "Identity",
    "InstanceNorm",
    "LayerNorm",
    "NormModule",
    "NormUndefinedError",
    "OptionProblem",
    "RMSNorm",
    "WeightNorm",
    "available",
    "canonical_name",
    "create_norm",
    "fuse_conv_bn",
    "norm_options",
]
