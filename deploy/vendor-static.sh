#!/usr/bin/env bash
# Re-vendor pinned front-end packages from the npm registry into static/.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack htmx.org@2.0.11 >/dev/null
expected="sha512-Thx/WtpeOQqSrqBCw/A1cwGJGg4UrVa3+sW0GmrM3p4gJgO89ecH4qtbnyzDDWFvBTqjnIMCgELTNt636dtamA=="
actual="sha512-$(openssl dgst -sha512 -binary htmx.org-2.0.11.tgz | base64 -w0)"
[ "$actual" = "$expected" ] || { echo "htmx.org tarball integrity mismatch" >&2; exit 1; }
tar xzf htmx.org-2.0.11.tgz
cp package/dist/htmx.min.js "$here/static/core/htmx.min.js"
echo "vendored htmx.org 2.0.11"

npm pack leaflet@1.9.4 >/dev/null
expected="sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA=="
actual="sha512-$(openssl dgst -sha512 -binary leaflet-1.9.4.tgz | base64 -w0)"
[ "$actual" = "$expected" ] || { echo "leaflet tarball integrity mismatch" >&2; exit 1; }
rm -rf package && tar xzf leaflet-1.9.4.tgz
dest="$here/static/core/leaflet"
mkdir -p "$dest/images"
cp package/dist/leaflet.js package/dist/leaflet.css package/LICENSE "$dest/"
cp package/dist/images/*.png "$dest/images/"
echo "vendored leaflet 1.9.4"
