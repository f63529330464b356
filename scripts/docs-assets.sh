#!/usr/bin/env bash
# Copies Swagger UI (the pinned swagger-ui-dist in package.json) beside the API's docs page, so the
# app serves it from its own origin under a strict Content-Security-Policy (api/docs.py). Run by
# `make setup` and by azd before packaging (azure.yaml): node_modules itself is never deployed.
set -euo pipefail
cd "$(dirname "$0")/.."
source=node_modules/swagger-ui-dist
target=api/docs_page/vendor
[ -f "$source/swagger-ui-bundle.js" ] || { echo "missing $source: run npm ci" >&2; exit 1; }
mkdir -p "$target"
for name in swagger-ui-bundle.js swagger-ui.css LICENSE NOTICE; do
  cp "$source/$name" "$target/$name"
done
echo "$target"
