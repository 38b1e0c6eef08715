# Attestation policy for the `model` submodule: the model commitment (OpenSSF
# Model Signing v1.0 root, `sha256:<hex>`) that the guest computed over the
# weight bytes it loaded and bound into `runtime_data`, hence into the CPU
# report data and the GPU nonce. The commitment is only as good as that
# binding and as the environment that computed it, so both are checked here
# too: a resource policy that looks at this submodule alone still fails closed.
#
# Standard Rego v1 only: OPA and regorus give the same result.
# Entry point: data.attestor.production.model.result
package attestor.production.model

import rego.v1

# Which trust roots this policy set accepts. The two shipped sets differ in
# this line only, besides their name (a test checks it).
accepted_roots := {"vendor"}

# Reference values: the input's `reference` member when given, else this
# set's shipped values (policies/reference/production.json, which OPA and
# the verifier load as data.reference.production).
default shipped_reference := {}

shipped_reference := data.reference.production

reference := object.get(input, "reference", shipped_reference)

ref := reference.model if is_object(reference.model)
else := {}

commitment := object.get(input, ["model", "commitment"], null)

roots := object.get(input, "roots", null)

# ---------------------------------------------------------------- findings

roots_ok if roots in accepted_roots

reasons contains r if {
	not roots_ok
	roots == "simulated"
	r := reason(
		"simulation_not_allowed", "roots",
		"the model commitment was computed in a simulated TEE; this policy set accepts only genuine hardware",
		sort(accepted_roots), roots,
	)
}

reasons contains r if {
	not roots_ok
	roots != "simulated"
	r := reason(
		"policy_rejected", "roots",
		"the evidence was verified with trust roots this policy set does not accept",
		sort(accepted_roots), roots,
	)
}

# The commitment reaches the verifier inside runtime_data; it is bound only
# when the CPU report data was compared with that runtime_data.
binding_ok if input.cpu.binding_verified == true

reasons contains r if {
	not binding_ok
	r := reason(
		"binding_unverified", "cpu.binding_verified",
		"the model commitment is not bound into verified evidence",
		true, object.get(input, ["cpu", "binding_verified"], null),
	)
}

commitment_ok if commitment in object.get(ref, "commitments", [])

reasons contains r if {
	not commitment_ok
	r := reason(
		"model_mismatch", "model.commitment",
		"the loaded model's commitment is not one of the reference values",
		object.get(ref, "commitments", []), commitment,
	)
}

# ---------------------------------------------------------------- AR4SI vector

instance_identity_findings contains 97 if not roots_ok

instance_identity_findings contains 96 if not binding_ok

file_system_findings contains 96 if not commitment_ok

trust_vector := {
	"instance-identity": max(instance_identity_findings | {2}),
	"file-system": max(file_system_findings | {2}),
}

# ---------------------------------------------------------------- status

# AR4SI tiers: |v| <= 1 none, 2..31 affirming, 32..95 warning, 96..127 contraindicated.
tier_rank(v) := 3 if abs(v) >= 96
else := 2 if abs(v) >= 32
else := 1 if abs(v) >= 2
else := 0

tier_names := ["none", "affirming", "warning", "contraindicated"]

status := tier_names[max({tier_rank(v) | some v in trust_vector})]

reason(code, rule, message, expected, found) := {
	"code": code,
	"rule": rule,
	"message": message,
	"expected": expected,
	"found": found,
}

result := {
	"trust_vector": trust_vector,
	"status": status,
	"reasons": reasons,
}
