# Attestation policy for the `cpu` submodule: an appraised AMD SEV-SNP report
# or Intel TDX quote. It reads appraised claims (policies/README.md, "Policy
# input"), never raw evidence, and turns them into an AR4SI trustworthiness
# vector, a status derived from it, and the reasons behind every claim that is
# not affirming. Cryptographic checks happened before: a claim that reaches
# this policy is genuine; this policy decides whether it is acceptable.
#
# Standard Rego v1 only: OPA and regorus give the same result.
# Entry point: data.attestor.development.cpu.result
package attestor.development.cpu

import rego.v1

# Which trust roots this policy set accepts. The two shipped sets differ in
# this line only, besides their name (a test checks it).
accepted_roots := {"vendor", "directory", "simulated"}

cpu := input.cpu if is_object(input.cpu)
else := {}

# Reference values: the input's `reference` member when given, else this
# set's shipped values (policies/reference/development.json, which OPA and
# the verifier load as data.reference.development).
default shipped_reference := {}

shipped_reference := data.reference.development

reference := object.get(input, "reference", shipped_reference)

ref := reference

snp_ref := ref.snp if is_object(ref.snp)
else := {}

tdx_ref := ref.tdx if is_object(ref.tdx)
else := {}

is_snp if cpu.tee == "snp"

is_tdx if cpu.tee == "tdx"

roots := object.get(cpu, "roots", null)

# ---------------------------------------------------------------- findings

roots_ok if roots in accepted_roots

reasons contains r if {
	not roots_ok
	roots == "simulated"
	r := reason(
		"simulation_not_allowed", "cpu.roots",
		"the evidence was verified with the simulator's roots; this policy set accepts only genuine hardware",
		sort(accepted_roots), roots,
	)
}

reasons contains r if {
	not roots_ok
	roots != "simulated"
	r := reason(
		"policy_rejected", "cpu.roots",
		"the evidence was verified with trust roots this policy set does not accept",
		sort(accepted_roots), roots,
	)
}

reasons contains r if {
	not is_snp
	not is_tdx
	r := reason("unsupported_format", "cpu.tee", "no SEV-SNP or TDX claims in the input", ["snp", "tdx"], object.get(cpu, "tee", null))
}

binding_ok if cpu.binding_verified == true

reasons contains r if {
	not binding_ok
	r := reason(
		"binding_unverified", "cpu.binding_verified",
		"the report data was not compared with this session's runtime data (nonce, keys, model)",
		true, object.get(cpu, "binding_verified", null),
	)
}

debug_off if cpu.debug == false

reasons contains r if {
	not debug_off
	r := reason(
		"debug_enabled", debug_field,
		"the TEE lets the host debug the guest: its memory and registers are not confidential",
		false, object.get(cpu, "debug", null),
	)
}

debug_field := "cpu.policy.debug_allowed" if is_snp
else := "cpu.td_attributes.debug" if is_tdx
else := "cpu.debug"

# SEV-SNP: launch measurement, minimum TCB, guest policy.

snp_measurement_ok if cpu.measurement in object.get(snp_ref, "measurements", [])

reasons contains r if {
	is_snp
	not snp_measurement_ok
	r := reason(
		"measurement_mismatch", "cpu.measurement",
		"the launch measurement is not one of the reference values",
		object.get(snp_ref, "measurements", []), object.get(cpu, "measurement", null),
	)
}

snp_min_tcb := object.get(object.get(snp_ref, "min_tcb", {}), object.get(cpu, "product", ""), null)

snp_tcb_ok if {
	is_object(snp_min_tcb)
	count(snp_min_tcb) > 0
	every part, minimum in snp_min_tcb {
		cpu.tcb[part] >= minimum
	}
}

reasons contains r if {
	is_snp
	not snp_tcb_ok
	r := reason(
		"tcb_below_minimum", "cpu.tcb",
		"the reported TCB is below the minimum for this product (or no minimum is set for it)",
		snp_min_tcb, object.get(cpu, "tcb", null),
	)
}

snp_ma_ok if cpu.policy.migrate_ma_allowed == false

snp_ma_ok if object.get(snp_ref, "allow_migration_agent", false) == true

reasons contains r if {
	is_snp
	not snp_ma_ok
	r := reason(
		"policy_rejected", "cpu.policy.migrate_ma_allowed",
		"the guest policy allows a migration agent",
		false, object.get(cpu, ["policy", "migrate_ma_allowed"], null),
	)
}

snp_vmpl_ok if cpu.vmpl in object.get(snp_ref, "vmpls", [0])

reasons contains r if {
	is_snp
	not snp_vmpl_ok
	r := reason(
		"policy_rejected", "cpu.vmpl",
		"the report was requested at a VMPL this policy does not accept",
		object.get(snp_ref, "vmpls", [0]), object.get(cpu, "vmpl", null),
	)
}

snp_svn_ok if cpu.guest_svn >= object.get(snp_ref, "min_guest_svn", 0)

reasons contains r if {
	is_snp
	not snp_svn_ok
	r := reason(
		"policy_rejected", "cpu.guest_svn",
		"GUEST_SVN is below the minimum",
		object.get(snp_ref, "min_guest_svn", 0), object.get(cpu, "guest_svn", null),
	)
}

snp_host_data_ok if not "host_data" in object.keys(snp_ref)

snp_host_data_ok if cpu.host_data in snp_ref.host_data

reasons contains r if {
	is_snp
	not snp_host_data_ok
	r := reason(
		"measurement_mismatch", "cpu.host_data",
		"HOST_DATA is not one of the reference values",
		snp_ref.host_data, object.get(cpu, "host_data", null),
	)
}

# TDX: MRTD, RTMRs, MRCONFIGID, XFAM, TCB status.

tdx_mrtd_ok if cpu.mr_td in object.get(tdx_ref, "mr_td", [])

reasons contains r if {
	is_tdx
	not tdx_mrtd_ok
	r := reason(
		"measurement_mismatch", "cpu.mr_td",
		"MRTD (the TD firmware) is not one of the reference values",
		object.get(tdx_ref, "mr_td", []), object.get(cpu, "mr_td", null),
	)
}

# Only the RTMRs named in the reference values are compared ("0".."3").
tdx_rtmr_bad contains i if {
	is_tdx
	some i, accepted in object.get(tdx_ref, "rtmrs", {})
	not cpu.rtmrs[to_number(i)] in accepted
}

reasons contains r if {
	some i in tdx_rtmr_bad
	r := reason(
		"measurement_mismatch", sprintf("cpu.rtmrs[%s]", [i]),
		"an RTMR is not one of the reference values",
		tdx_ref.rtmrs[i], rtmr_value(i),
	)
}

rtmr_value(i) := v if {
	v := cpu.rtmrs[to_number(i)]
} else := null

tdx_optional_bad contains field if {
	is_tdx
	some field in ["mr_config_id", "mr_owner", "mr_seam", "xfam"]
	field in object.keys(tdx_ref)
	not cpu[field] in tdx_ref[field]
}

reasons contains r if {
	some field in tdx_optional_bad
	r := reason(
		"measurement_mismatch", sprintf("cpu.%s", [field]),
		"a TD register is not one of the reference values",
		tdx_ref[field], object.get(cpu, field, null),
	)
}

tdx_tcb_accepted if cpu.tcb_status in object.get(tdx_ref, "accepted_tcb_status", ["UpToDate"])

tdx_tcb_warning if {
	not tdx_tcb_accepted
	cpu.tcb_status in object.get(tdx_ref, "warning_tcb_status", [])
}

reasons contains r if {
	is_tdx
	not tdx_tcb_accepted
	r := reason(
		"tcb_below_minimum", "cpu.tcb_status",
		"the platform's TCB status is not an accepted one",
		object.get(tdx_ref, "accepted_tcb_status", ["UpToDate"]), object.get(cpu, "tcb_status", null),
	)
}

# ---------------------------------------------------------------- AR4SI vector
# Each claim starts at its affirming value; every finding raises it. Higher is
# worse (2 affirming < 32 warning < 96 contraindicated < 97 unrecognized).

instance_identity_findings contains 97 if not roots_ok

instance_identity_findings contains 96 if not binding_ok

hardware_findings contains 97 if not roots_ok

hardware_findings contains 97 if {
	not is_snp
	not is_tdx
}

hardware_findings contains 96 if {
	is_snp
	not snp_tcb_ok
}

hardware_findings contains 96 if {
	is_tdx
	not tdx_tcb_accepted
	not tdx_tcb_warning
}

hardware_findings contains 32 if tdx_tcb_warning

configuration_findings contains 96 if not debug_off

configuration_findings contains 32 if {
	is_snp
	not snp_ma_ok
}

configuration_findings contains 32 if {
	is_snp
	not snp_vmpl_ok
}

configuration_findings contains 32 if {
	is_snp
	not snp_svn_ok
}

configuration_findings contains 32 if {
	some field in tdx_optional_bad
	field == "xfam"
}

executables_findings contains 96 if {
	is_snp
	not snp_measurement_ok
}

executables_findings contains 96 if {
	is_snp
	not snp_host_data_ok
}

executables_findings contains 96 if {
	is_tdx
	not tdx_mrtd_ok
}

executables_findings contains 96 if count(tdx_rtmr_bad) > 0

executables_findings contains 96 if {
	some field in tdx_optional_bad
	field != "xfam"
}

executables_findings contains 33 if {
	not is_snp
	not is_tdx
}

runtime_opaque_findings contains 96 if not debug_off

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
