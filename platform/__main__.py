"""Pulumi entry point: read the stack's configuration, build the stack, export its outputs."""

import pulumi
from airline_platform.config import load_config
from airline_platform.program import build

for key, value in build(load_config()).items():
    pulumi.export(key, value)
