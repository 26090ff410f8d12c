"""Tensors: the tutorial's tensor operations, each with its code and its printed output, computed live."""

from ui.nav import title

title("tensors")
