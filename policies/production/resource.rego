# Resource policy: may the key broker release the secret at `resource_path`
# to this session? The input carries the session's attestation result (the
# EAR claims as issued), the model commitment and receipt key bound into the
# evidence, the tenant, and the reference values (policies/README.md). A
# secret is released only when every rule passes; every failing rule gives a
# reason.
#
# Standard Rego v1 only: OPA and regorus give the same result.
# Entry point: data.attestor.production.resource.result
package attestor.production.resource

import rego.v1

# Which trust roots and which policy sets' results this policy accepts. The
# two shipped sets differ in these lines only, besides their name (a test
# checks it).
accepted_roots := {"vendor"}

accepted_policy_sets := {"production"}

ear := input.ear if is_object(input.ear)
else := {}

submods := ear.submods if is_object(ear.submods)
else := {}

path := object.get(input, "resource_path", [])

path_key := concat("/", path) if {
	is_array(path)
	count(path) == 3
	every part in path {
		is_string(part)
	}
} else := null

# Reference values: the input's `reference` member when given, else this
# set's shipped values (policies/reference/production.json, which OPA and
# the verifier load as data.reference.production).
default shipped_reference := {}

shipped_reference := data.reference.production

reference := object.get(input, "reference", shipped_reference)

resources := reference.resources if is_object(reference.resources)
else := {}

resource := object.get(resources, path_key, null)

commitment := object.get(input, ["model", "commitment"], null)

receipt_key := object.get(input, "receipt_key", null)

# ---------------------------------------------------------------- findings

reasons contains r if {
	not is_object(resource)
	r := reason(
		"policy_rejected", "resource_path",
		"no policy entry for this resource: nothing is released by default",
		sort(object.keys(resources)), path,
	)
}

# The attestation result: present, from an accepted policy set, every
# submodule affirming, and the CPU and model submodules among them.
reasons contains r if {
	count(submods) == 0
	r := reason("policy_rejected", "ear.submods", "no attestation result for this session", ["cpu", "model"], [])
}

reasons contains r if {
	some name in ["cpu", "model"]
	not name in object.keys(submods)
	r := reason(
		"policy_rejected", sprintf("ear.submods.%s", [name]),
		"a required submodule is missing from the attestation result",
		"present", null,
	)
}

reasons contains r if {
	some name, appraisal in submods
	not status_of(appraisal) == "affirming"
	r := reason(
		"policy_rejected", sprintf("ear.submods.%s.ear_status", [name]),
		"a submodule of the attestation result is not affirming",
		"affirming", status_of(appraisal),
	)
}

reasons contains r if {
	object.get(ear, "ear_status", null) != "affirming"
	r := reason(
		"policy_rejected", "ear.ear_status",
		"the attestation result is not affirming",
		"affirming", object.get(ear, "ear_status", null),
	)
}

status_of(appraisal) := s if {
	s := appraisal.ear_status
} else := null

policy_ids_of(appraisal) := ids if {
	ids := appraisal.ear_appraisal_policy_ids
	is_array(ids)
	count(ids) > 0
} else := [null]

policy_set(id) := set_name if {
	is_string(id)
	set_name := split(id, "/")[0]
} else := null

reasons contains r if {
	some name, appraisal in submods
	some id in policy_ids_of(appraisal)
	not policy_set(id) in accepted_policy_sets
	r := reason(
		"policy_rejected", sprintf("ear.submods.%s.ear_appraisal_policy_ids", [name]),
		"the attestation result was produced under a policy set this broker does not accept",
		sort(accepted_policy_sets), id,
	)
}

ear_roots := object.get(ear, "attestor_roots", null)

reasons contains r if {
	not ear_roots in accepted_roots
	ear_roots == "simulated"
	r := reason(
		"simulation_not_allowed", "ear.attestor_roots",
		"the attestation result is for simulated hardware",
		sort(accepted_roots), ear_roots,
	)
}

reasons contains r if {
	not ear_roots in accepted_roots
	ear_roots != "simulated"
	r := reason(
		"policy_rejected", "ear.attestor_roots",
		"the attestation result does not say it was verified with accepted trust roots",
		sort(accepted_roots), ear_roots,
	)
}

# The model: the resource names the model commitments it may be released to.
reasons contains r if {
	is_object(resource)
	not commitment in object.get(resource, "models", [])
	r := reason(
		"model_mismatch", "model.commitment",
		"this resource is not released to the loaded model",
		object.get(resource, "models", []), commitment,
	)
}

reasons contains r if {
	is_object(resource)
	commitment != object.get(ear, "attestor_model", null)
	r := reason(
		"binding_unverified", "ear.attestor_model",
		"the model commitment differs from the one in the attestation result",
		commitment, object.get(ear, "attestor_model", null),
	)
}

# The tenant, when the resource names its tenants.
reasons contains r if {
	is_object(resource)
	"tenants" in object.keys(resource)
	not input.tenant in resource.tenants
	r := reason(
		"policy_rejected", "tenant",
		"this resource is not released to this tenant",
		resource.tenants, object.get(input, "tenant", null),
	)
}

# The receipt key: present and the one the attestation result names, unless
# the resource says receipts are not needed.
receipt_key_required if not resource.receipt_key_required == false

reasons contains r if {
	receipt_key_required
	not is_object(receipt_key)
	r := reason(
		"binding_unverified", "receipt_key",
		"no receipt key is bound to this session",
		"a JWK", receipt_key,
	)
}

reasons contains r if {
	receipt_key_required
	is_object(receipt_key)
	receipt_key != object.get(ear, "attestor_receipt_key", null)
	r := reason(
		"binding_unverified", "ear.attestor_receipt_key",
		"the receipt key differs from the one in the attestation result",
		receipt_key, object.get(ear, "attestor_receipt_key", null),
	)
}

# ---------------------------------------------------------------- decision

allow if count(reasons) == 0

default allow := false

reason(code, rule, message, expected, found) := {
	"code": code,
	"rule": rule,
	"message": message,
	"expected": expected,
	"found": found,
}

result := {
	"allow": allow,
	"reasons": reasons,
}
