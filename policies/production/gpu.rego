# Attestation policy for one GPU submodule (`gpu0`, `gpu1`, …): an appraised
# NVIDIA SPDM report with its device chain and reference manifests (RIMs).
# It is evaluated once per GPU with `input.gpu` set to that GPU's claims (the
# rest of the input as for the CPU policy; policies/README.md). It never sees
# raw evidence: signatures, chains, FWID and golden measurements were checked
# before; this policy decides whether what they say is acceptable.
#
# Standard Rego v1 only: OPA and regorus give the same result.
# Entry point: data.attestor.production.gpu.result
package attestor.production.gpu

import rego.v1

# Which trust roots this policy set accepts. The two shipped sets differ in
# this line only, besides their name (a test checks it).
accepted_roots := {"vendor"}

gpu := input.gpu if is_object(input.gpu)
else := {}

# Reference values: the input's `reference` member when given, else this
# set's shipped values (policies/reference/production.json, which OPA and
# the verifier load as data.reference.production).
default shipped_reference := {}

shipped_reference := data.reference.production

reference := object.get(input, "reference", shipped_reference)

ref := reference.gpu if is_object(reference.gpu)
else := {}

roots := object.get(gpu, "roots", null)

rim := gpu.rim if is_object(gpu.rim)
else := {}

# ---------------------------------------------------------------- findings

roots_ok if roots in accepted_roots

reasons contains r if {
	not roots_ok
	roots == "simulated"
	r := reason(
		"simulation_not_allowed", "gpu.roots",
		"the evidence was verified with the simulator's roots; this policy set accepts only genuine hardware",
		sort(accepted_roots), roots,
	)
}

reasons contains r if {
	not roots_ok
	roots != "simulated"
	r := reason(
		"policy_rejected", "gpu.roots",
		"the evidence was verified with trust roots this policy set does not accept",
		sort(accepted_roots), roots,
	)
}

binding_ok if gpu.binding_verified == true

reasons contains r if {
	not binding_ok
	r := reason(
		"binding_unverified", "gpu.binding_verified",
		"the SPDM nonce was not compared with this session's runtime data",
		true, object.get(gpu, "binding_verified", null),
	)
}

arch_ok if gpu.arch in object.get(ref, "archs", [])

reasons contains r if {
	not arch_ok
	r := reason(
		"policy_rejected", "gpu.arch",
		"the GPU architecture is not one this policy accepts",
		object.get(ref, "archs", []), object.get(gpu, "arch", null),
	)
}

# Confidential computing must be on, and not in devtools mode (which lets
# tools inspect GPU state). These are collection facts from NVML.
cc_on if gpu.cc_mode == "on"

devtools_off if gpu.devtools == false

reasons contains r if {
	not cc_on
	r := reason(
		"gpu_mode_rejected", "gpu.cc_mode",
		"the GPU is not in confidential-computing mode",
		"on", object.get(gpu, "cc_mode", null),
	)
}

reasons contains r if {
	not devtools_off
	r := reason(
		"gpu_mode_rejected", "gpu.devtools",
		"the GPU is in (or may be in) devtools mode, which exposes its state to tools",
		false, object.get(gpu, "devtools", null),
	)
}

# Golden measurements: both RIMs compared, both versions match the report.
rim_compared if rim.compared == true

driver_rim_ok if rim.driver_version_match == true

vbios_rim_ok if rim.vbios_version_match == true

reasons contains r if {
	not rim_compared
	r := reason(
		"rim_missing", "gpu.rim.compared",
		"the report's measurements were not compared with NVIDIA's reference manifests",
		true, object.get(rim, "compared", null),
	)
}

reasons contains r if {
	not driver_rim_ok
	r := reason(
		"rim_version_mismatch", "gpu.rim.driver_version_match",
		"no driver RIM of the report's driver version was matched",
		true, object.get(rim, "driver_version_match", null),
	)
}

reasons contains r if {
	not vbios_rim_ok
	r := reason(
		"rim_version_mismatch", "gpu.rim.vbios_version_match",
		"no VBIOS RIM of the report's VBIOS version was matched",
		true, object.get(rim, "vbios_version_match", null),
	)
}

# Optional allow-lists of driver and VBIOS versions.
version_bad contains field if {
	some field in ["driver_version", "vbios_version"]
	list := sprintf("%ss", [field])
	list in object.keys(ref)
	not gpu[field] in ref[list]
}

reasons contains r if {
	some field in version_bad
	r := reason(
		"policy_rejected", sprintf("gpu.%s", [field]),
		"the version is not in the policy's allow-list",
		ref[sprintf("%ss", [field])], object.get(gpu, field, null),
	)
}

# ---------------------------------------------------------------- AR4SI vector

instance_identity_findings contains 97 if not roots_ok

instance_identity_findings contains 96 if not binding_ok

hardware_findings contains 97 if not roots_ok

hardware_findings contains 97 if not arch_ok

configuration_findings contains 96 if not cc_on

configuration_findings contains 96 if not devtools_off

configuration_findings contains 32 if count(version_bad) > 0

executables_findings contains 96 if not rim_compared

executables_findings contains 96 if not driver_rim_ok

executables_findings contains 96 if not vbios_rim_ok

runtime_opaque_findings contains 96 if not cc_on

runtime_opaque_findings contains 96 if not devtools_off

trust_vector := {
	"instance-identity": max(instance_identity_findings | {2}),
	"configuration": max(configuration_findings | {2}),
	"executables": max(executables_findings | {2}),
	"hardware": max(hardware_findings | {2}),
	"runtime-opaque": max(runtime_opaque_findings | {2}),
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
