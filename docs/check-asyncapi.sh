#!/usr/bin/env bash
# Parses docs/asyncapi.yaml with the official AsyncAPI parser (@asyncapi/parser,
# from the npm registry) and fails on any diagnostic of severity error.
# The parser is installed once into docs/.asyncapi-check/ (git-ignored), or
# into ASYNCAPI_CHECK_DIR if set. Needs node >= 18 and npm.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${ASYNCAPI_CHECK_DIR:-$here/.asyncapi-check}"
version="${ASYNCAPI_PARSER_VERSION:-3.6.3}"

mkdir -p "$dir"
if [ ! -f "$dir/node_modules/@asyncapi/parser/package.json" ] ||
	! grep -q "\"version\": \"$version\"" "$dir/node_modules/@asyncapi/parser/package.json"; then
	[ -f "$dir/package.json" ] || echo '{"name":"asyncapi-check","private":true}' >"$dir/package.json"
	(cd "$dir" && npm install --no-save --no-audit --no-fund --loglevel=error "@asyncapi/parser@$version" >&2)
fi

cat >"$dir/check.cjs" <<'JS'
// Severity: 0 error, 1 warning, 2 information, 3 hint (Spectral's).
const { Parser, fromFile } = require('@asyncapi/parser');
const names = ['error', 'warning', 'info', 'hint'];
(async () => {
  const file = process.argv[2];
  const { document, diagnostics } = await fromFile(new Parser(), file).parse();
  let errors = 0;
  for (const d of diagnostics) {
    if (d.severity === 0) errors++;
    console.log(`${names[d.severity] ?? d.severity}: ${d.code}: ${d.message} at ${JSON.stringify(d.path)}`);
  }
  if (!document || errors > 0) {
    console.log(`${file}: ${errors} error(s); the document did not parse cleanly`);
    process.exit(1);
  }
  const ops = document.operations();
  console.log(`${file}: AsyncAPI ${document.version()}, ${document.channels().length} channels, ` +
    `${document.allMessages().length} messages, ${ops.length} operations ` +
    `(${ops.filterBySend().length} send, ${ops.filterByReceive().length} receive), ` +
    `${document.allSchemas().length} schemas; no errors`);
})().catch((err) => { console.error(err); process.exit(1); });
JS

node "$dir/check.cjs" "$here/asyncapi.yaml"
