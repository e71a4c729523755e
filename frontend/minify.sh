#!/bin/sh
# Trunk's post_build hook (Trunk.toml): in a release build, the widget's styles are
# compacted (`cargo xtask compact-css`: the relay puts them into /widget.js as built), and
# terser minifies the wasm's glue and the loader (about 3.5 KB off the chat, gzipped;
# BENCHMARKS.md). `cargo xtask setup` installs terser and puts it on PATH. A debug build
# (`trunk serve`) stays readable.
set -eu
[ "${TRUNK_PROFILE:-}" = release ] || exit 0
cargo xtask compact-css "$TRUNK_STAGING_DIR/widget.css"
if ! command -v terser >/dev/null 2>&1; then
    echo "minify: terser is not on PATH (cargo xtask setup installs it): the build stays unminified" >&2
    exit 0
fi
for glue in "$TRUNK_STAGING_DIR"/frontend-*.js; do
    terser "$glue" --module --compress --mangle --output "$glue"
done
# The relay fills the loader's '__GMS_CHAT_…__' placeholders: they must keep their quotes.
loader="$TRUNK_STAGING_DIR/loader.js"
terser "$loader" --compress --mangle --format quote_style=1 --output "$loader"
