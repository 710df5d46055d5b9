"""What each stack costs a month, estimated from its rendered plan and the traffic it declares.

`make plan` prints the estimate per stack and writes it next to the plan (`plans/<stack>.cost.json`);
`python -m airline_platform.cost diff --base <plans> --head <plans>` turns two of those into the
pull request's cost delta. Prices come from the dated table `prices.json`; every line keeps the
inputs of its formula, so a reader can recompute each figure (docs/operations.md#what-it-costs).
"""
