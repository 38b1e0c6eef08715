#!/usr/bin/env bash
# Regenerates policies/development/*.rego from policies/production/*.rego:
# the same rules, under the development name, accepting every kind of trust
# root (vendor, operator directory, simulator) and results of both sets.
# verifier/tests/verifier/policy.rs checks that the committed files equal
# this script's output, so the two sets cannot drift apart.
set -euo pipefail
cd "$(dirname "$0")"
for f in production/*.rego; do
  sed -e 's/production/development/g' \
      -e 's/^accepted_roots := .*/accepted_roots := {"vendor", "directory", "simulated"}/' \
      -e 's/^accepted_policy_sets := .*/accepted_policy_sets := {"production", "development"}/' \
      "$f" > "development/$(basename "$f")"
done
