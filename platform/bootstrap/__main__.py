"""Bootstrap entry point: read the configuration, create the delivery foundation, export what CI needs."""

import pulumi
from airline_bootstrap.config import load_config
from airline_bootstrap.program import build

for key, value in build(load_config()).items():
    pulumi.export(key, value)
