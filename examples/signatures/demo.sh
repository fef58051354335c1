#!/usr/bin/env bash
# The signature part of the README's main job: enroll the bundled writer with five genuine
# signatures (in a temporary database), then verify a sixth genuine signature and a skilled forgery
# with the shipped verifier. The scans come from tools/make_signatures (a writer of its own seed,
# never used in training or in the benchmark).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
app=${SIGNATURE_APP:-$here/../../build/bin/signature_app}
db=$(mktemp -d)
trap 'rm -rf "$db"' EXIT
"$app" enroll --db "$db" --writer demo "$here"/reference-*
printf 'query-genuine.jpg: '
"$app" verify --db "$db" --writer demo "$here/query-genuine.jpg"
printf 'query-forgery.jpg: '
"$app" verify --db "$db" --writer demo "$here/query-forgery.jpg"
