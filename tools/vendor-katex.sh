#!/usr/bin/env bash
# Vendors KaTeX from the npm registry into src/Runner/Katex/ (the files the HTML reports inline: the minified
# library, its CSS, the auto-render extension, the woff2 fonts, and KaTeX's MIT LICENSE beside them), after checking
# the tarball against the integrity recorded below. Run it only to move to another KaTeX version (then update
# VERSION and INTEGRITY from `npm view katex@NEW dist.integrity`); the vendored copy is committed, so building and
# viewing need no network.
#   usage: tools/vendor-katex.sh            re-vendor (needs npm and the registry)
#          tools/vendor-katex.sh --check    re-download and fail unless the committed copy is byte-identical
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.19.1
INTEGRITY=sha512-jG8uKntjSEcm2EpQOh0XturpPuuC9r3Sq5HLHdsFdWZT27E672SF19QEi+of0/YeOy15lDgRhKvr5614uRrEfA==
dest=src/Runner/Katex/katex
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "katex@$VERSION" --silent >/dev/null)
tarball="$tmp/katex-$VERSION.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$actual" != "$INTEGRITY" ]; then echo "vendor-katex: $tarball integrity $actual, expected $INTEGRITY" >&2; exit 1; fi
tar -xzf "$tarball" -C "$tmp"
stage="$tmp/stage"; mkdir -p "$stage/fonts"
cp "$tmp/package/LICENSE" "$tmp/package/dist/katex.min.js" "$tmp/package/dist/katex.min.css" \
   "$tmp/package/dist/contrib/auto-render.min.js" "$stage/"
cp "$tmp/package/dist/fonts/"*.woff2 "$stage/fonts/"
(cd "$stage" && find . -type f | sort | sed 's|^\./||' | xargs sha256sum > SHA256SUMS)
if [ "${1:-}" = "--check" ]; then
  diff -r "$stage" "$dest" && echo "vendor-katex: $dest is katex@$VERSION from the registry, byte for byte"
  exit
fi
rm -rf "$dest"; mkdir -p "$(dirname "$dest")"; cp -r "$stage" "$dest"
echo "vendor-katex: katex@$VERSION ($INTEGRITY) -> $dest ($(du -sh "$dest" | cut -f1))"
