"""normbench: which normalization layer should I use here? Evidence from declared suites."""

__version__ = "0.1.0"
