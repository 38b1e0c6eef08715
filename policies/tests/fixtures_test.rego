# Runs every fixture of policies/tests/*.json against the shipped policies.
#
# Each fixture file is `{"<name>": {"sets": [...], "kind": "attestation" |
# "resource", "input": {...}, "expect": {...}}}`, so loading the folder puts
# it at data.tests.<name>. With OPA:
#
#   opa test policies/
#
# The verifier's test suite evaluates this same rule with regorus
# (verifier/tests/verifier/policy.rs), and also runs each fixture one by one
# through the Rust API for readable failures.
package attestor.tests

import rego.v1

test_every_fixture_passes if {
	count(failures) == 0
}

# Names of the fixtures (with the set) whose expectations do not hold.
failures contains sprintf("%s (%s)", [name, set]) if {
	some name, fixture in data.tests
	some set in fixture.sets
	not fixture_passes(fixture, set)
}

fixture_passes(fixture, set) if {
	fixture.kind == "attestation"
	every name, want in fixture.expect.submods {
		submod_matches(attestation_result(fixture.input, set, name), want)
	}
}

fixture_passes(fixture, set) if {
	fixture.kind == "resource"
	got := data.attestor[set].resource.result with input as fixture.input
	got.allow == fixture.expect.allow
	reasons_match(got.reasons, fixture.expect)
}

attestation_result(inp, set, "cpu") := got if {
	got := data.attestor[set].cpu.result with input as inp
}

attestation_result(inp, set, "model") := got if {
	got := data.attestor[set].model.result with input as inp
}

attestation_result(inp, set, name) := got if {
	startswith(name, "gpu")
	index := to_number(substring(name, 3, -1))
	gpu_input := object.union(inp, {"gpu": inp.gpus[index]})
	got := data.attestor[set].gpu.result with input as gpu_input
}

submod_matches(got, want) if {
	got.status == want.status
	reasons_match(got.reasons, want)
	every claim, value in object.get(want, "vector", {}) {
		got.trust_vector[claim] == value
	}
}

# The distinct reason codes equal `codes` exactly; every rule in `rules` is among the reasons.
reasons_match(reasons, want) if {
	sort({r.code | some r in reasons}) == sort(object.get(want, "codes", []))
	every rule in object.get(want, "rules", []) {
		some r in reasons
		r.rule == rule
	}
}
