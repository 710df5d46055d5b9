#!/bin/sh
# Delete from an installed runtime environment the files the service never serves.
#
# swagger-ui-py ships Swagger Editor, ES-module bundles and source maps (about 23 MB) next to the
# three files Swagger UI needs. The API serves only what OfflineSwaggerUI (app/api/openapi.py)
# links: the bundle, the standalone preset, the stylesheet and the favicon. The Dockerfile runs
# this in its builder stage; bench/ and tests/integration/test_runtime_image.py run it on the venvs
# they build, so what they measure and test is what the image holds.
#
# Usage: prune-runtime.sh VENV
set -eu
venv="${1:?usage: prune-runtime.sh VENV}"
found=0
for static in "$venv"/lib/python3*/site-packages/swagger_ui/static; do
    [ -d "$static" ] || continue
    found=1
    find "$static" -type f \
        ! -name swagger-ui-bundle.js ! -name swagger-ui-standalone-preset.js ! -name swagger-ui.css \
        ! -name 'favicon-*.png' ! -name LICENSE -delete
done
if [ "$found" -eq 0 ]; then
    echo "prune-runtime.sh: no swagger_ui/static under $venv (is swagger-ui-py still a runtime dependency?)" >&2
    exit 1
fi
