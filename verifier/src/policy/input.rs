//! The one place where appraised claims become policy input.
//!
//! The appraisal modules (`appraise::{snp, tdx, nvidia}`) produce typed claims;
//! this module takes their JSON form (`serde_json::to_value(&claims)`) and
//! builds the input documented in `policies/README.md`: a few normalized
//! fields per submodule that the shipped policies read (`tee`, `roots`,
//! `debug`, `binding_verified`, measurements, TCB, GPU mode, RIM results), and
//! the full claims under `claims` for site policies that need more. When a
//! claim struct changes shape, only this file changes.
//!
//! It never decides anything: a missing field becomes `null`, and the
//! policies treat `null` as a failed check.

use serde_json::{Value, json};

/// The CPU claims, by kind, as JSON (`serde_json::to_value(&claims)`).
#[derive(Debug, Clone, Copy)]
pub enum CpuClaims<'a> {
    /// `appraise::snp::SnpClaims`.
    Snp(&'a Value),
    /// `appraise::tdx::TdxClaims`.
    Tdx(&'a Value),
}

/// What an attestation policy input is built from.
#[derive(Debug, Clone, Copy)]
pub struct AttestationParts<'a> {
    /// The CPU TEE's claims, when it was appraised.
    pub cpu: Option<CpuClaims<'a>>,
    /// Each GPU's claims (`appraise::nvidia::GpuClaims`), in evidence order.
    pub gpus: &'a [Value],
    /// The session's `runtime_data` object (nonce, keys, model, agent).
    pub runtime_data: Option<&'a Value>,
    /// True when the caller compared the CPU report data with the binding of
    /// `runtime_data` and the additional evidence (DESIGN.md §3). SNP claims
    /// also carry `report_data_checked`; both must hold.
    pub cpu_binding_verified: bool,
}

/// Builds the attestation policies' input (without `reference`: the policy
/// set adds its own).
pub fn attestation_input(parts: &AttestationParts<'_>) -> Value {
    let cpu = parts.cpu.map(|c| cpu_input(c, parts.cpu_binding_verified));
    let gpus: Vec<Value> = parts.gpus.iter().map(gpu_input).collect();
    let mut labels: Vec<&str> = Vec::new();
    if let Some(c) = &cpu {
        labels.push(c.get("roots").and_then(Value::as_str).unwrap_or("unknown"));
    }
    for g in &gpus {
        labels.push(g.get("roots").and_then(Value::as_str).unwrap_or("unknown"));
    }
    let commitment = parts
        .runtime_data
        .and_then(|rd| rd.get("model"))
        .cloned()
        .unwrap_or(Value::Null);
    json!({
        "roots": worst_roots(&labels),
        "cpu": cpu.unwrap_or(Value::Null),
        "gpus": gpus,
        "model": {"commitment": commitment},
        "runtime_data": parts.runtime_data.cloned().unwrap_or(Value::Null),
    })
}

/// Builds the resource policy's input: the resource path `[repository, type,
/// tag]`, the tenant, the EAR claims as issued (decoded JWT payload), and the
/// model commitment and receipt key bound into the session's evidence.
pub fn resource_input(
    resource_path: [&str; 3],
    tenant: Option<&str>,
    ear_claims: &Value,
    model_commitment: Option<&str>,
    receipt_key: Option<&Value>,
) -> Value {
    json!({
        "resource_path": resource_path,
        "tenant": tenant,
        "ear": ear_claims,
        "model": {"commitment": model_commitment},
        "receipt_key": receipt_key,
    })
}

/// The label a policy sees for a `RootsOrigin` (`"vendor"`, `{"directory": …}`,
/// `"simulated"`): `vendor`, `directory`, `simulated`, or `unknown`.
pub fn roots_label(roots: &Value) -> &'static str {
    match roots {
        Value::String(s) if s == "vendor" => "vendor",
        Value::String(s) if s == "simulated" => "simulated",
        Value::Object(m) if m.contains_key("directory") => "directory",
        _ => "unknown",
    }
}

/// The least trustworthy of several roots labels: unknown, then simulated,
/// then directory, then vendor; `none` when there are none.
fn worst_roots(labels: &[&str]) -> &'static str {
    const ORDER: [&str; 4] = ["unknown", "simulated", "directory", "vendor"];
    if labels.is_empty() {
        return "none";
    }
    ORDER
        .into_iter()
        .find(|o| labels.contains(o))
        .unwrap_or("unknown")
}

fn cpu_input(claims: CpuClaims<'_>, caller_binding: bool) -> Value {
    match claims {
        CpuClaims::Snp(c) => snp_input(c, caller_binding),
        CpuClaims::Tdx(c) => tdx_input(c, caller_binding),
    }
}

fn snp_input(c: &Value, caller_binding: bool) -> Value {
    let report_data_checked = c.get("report_data_checked").and_then(Value::as_bool);
    // The reported TCB (the one the VEK certifies), components only.
    let mut tcb = c
        .pointer("/tcb/reported/parts")
        .cloned()
        .unwrap_or(Value::Null);
    if let Value::Object(m) = &mut tcb {
        m.retain(|_, v| !v.is_null());
    }
    json!({
        "tee": "snp",
        "roots": roots_label(c.get("roots").unwrap_or(&Value::Null)),
        "debug": c.get("debug").cloned().unwrap_or(Value::Null),
        "binding_verified": caller_binding && report_data_checked != Some(false),
        "product": c.get("product").and_then(Value::as_str).map(str::to_ascii_lowercase),
        "measurement": field(c, "measurement"),
        "host_data": field(c, "host_data"),
        "report_data": field(c, "report_data"),
        "vmpl": field(c, "vmpl"),
        "guest_svn": field(c, "guest_svn"),
        "tcb": tcb,
        "policy": field(c, "policy"),
        "platform": field(c, "platform_info"),
        "signing_key": field(c, "signing_key"),
        "revocation_checked": c.pointer("/revocation/checked").cloned().unwrap_or(Value::Null),
        "warnings": c.get("warnings").cloned().unwrap_or_else(|| json!([])),
        "claims": c,
    })
}

fn tdx_input(c: &Value, caller_binding: bool) -> Value {
    json!({
        "tee": "tdx",
        "roots": roots_label(c.get("roots").unwrap_or(&Value::Null)),
        "debug": c.get("debug").cloned().unwrap_or(Value::Null),
        "binding_verified": caller_binding,
        "mr_td": field(c, "mr_td"),
        "rtmrs": field(c, "rtmrs"),
        "mr_config_id": field(c, "mr_config_id"),
        "mr_owner": field(c, "mr_owner"),
        "mr_owner_config": field(c, "mr_owner_config"),
        "mr_seam": field(c, "mr_seam"),
        "xfam": field(c, "xfam"),
        "td_attributes": field(c, "td_attributes"),
        "tee_tcb_svn": field(c, "tee_tcb_svn"),
        "report_data": field(c, "report_data"),
        "tcb_status": c.pointer("/tcb/status").cloned().unwrap_or(Value::Null),
        "advisory_ids": c.pointer("/tcb/advisory_ids").cloned().unwrap_or_else(|| json!([])),
        "warnings": c.get("warnings").cloned().unwrap_or_else(|| json!([])),
        "claims": c,
    })
}

fn gpu_input(c: &Value) -> Value {
    let cc_mode = c
        .pointer("/collection/cc_mode")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    // Devtools: the explicit NVML flag when sent, else what the CC mode says;
    // unknown (null) when neither was sent, which the policies refuse.
    let devtools = c
        .pointer("/collection/devtools_mode")
        .and_then(Value::as_bool)
        .or_else(|| cc_mode.as_deref().map(|m| m == "devtools"));
    let measurements = c.get("measurements").cloned().unwrap_or(Value::Null);
    let count = |key: &str| match measurements.get(key) {
        Some(Value::Array(a)) => json!(a.len()),
        Some(Value::Object(m)) => json!(m.len()),
        _ => Value::Null,
    };
    json!({
        "roots": roots_label(c.get("roots").unwrap_or(&Value::Null)),
        "arch": field(c, "arch"),
        "hwmodel": field(c, "hwmodel"),
        "ueid": field(c, "ueid"),
        "driver_version": field(c, "driver_version"),
        "vbios_version": field(c, "vbios_version"),
        "cc_mode": cc_mode,
        "devtools": devtools,
        "mode": field(c, "mode"),
        "binding_verified": c.get("nonce_checked").and_then(Value::as_bool).unwrap_or(false),
        "fwid_match": field(c, "fwid_match"),
        "rim": {
            "compared": measurements.get("compared").cloned().unwrap_or(Value::Null),
            "driver_version_match": measurements.get("driver_version_match").cloned().unwrap_or(Value::Null),
            "vbios_version_match": measurements.get("vbios_version_match").cloned().unwrap_or(Value::Null),
            "matched": count("matched"),
            "skipped": count("skipped"),
        },
        "revocation": c.pointer("/device_revocation/status").cloned().unwrap_or(Value::Null),
        "warnings": c.get("warnings").cloned().unwrap_or_else(|| json!([])),
        "claims": c,
    })
}

fn field(c: &Value, key: &str) -> Value {
    c.get(key).cloned().unwrap_or(Value::Null)
}

/// Removes `claims` from every submodule of an input, for logs and fixtures
/// where the normalized fields are enough.
pub fn without_raw_claims(input: &Value) -> Value {
    let mut out = input.clone();
    let strip = |v: &mut Value| {
        if let Value::Object(m) = v {
            m.remove("claims");
        }
    };
    if let Some(cpu) = out.get_mut("cpu") {
        strip(cpu);
    }
    if let Some(Value::Array(gpus)) = out.get_mut("gpus") {
        gpus.iter_mut().for_each(strip);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_labels_and_worst() {
        assert_eq!(roots_label(&json!("vendor")), "vendor");
        assert_eq!(roots_label(&json!("simulated")), "simulated");
        assert_eq!(
            roots_label(&json!({"directory": "/etc/roots"})),
            "directory"
        );
        assert_eq!(roots_label(&json!(null)), "unknown");
        assert_eq!(worst_roots(&["vendor", "simulated"]), "simulated");
        assert_eq!(worst_roots(&["vendor", "directory"]), "directory");
        assert_eq!(worst_roots(&["vendor"]), "vendor");
        assert_eq!(worst_roots(&[]), "none");
    }

    #[test]
    fn snp_claims_map_to_normalized_fields() {
        let claims = json!({
            "roots": "simulated", "product": "Milan", "debug": false,
            "report_data_checked": true, "measurement": "ab", "vmpl": 0, "guest_svn": 1,
            "policy": {"migrate_ma_allowed": false, "debug_allowed": false},
            "tcb": {"reported": {"raw": "0x0", "parts": {"fmc": null, "bootloader": 4, "tee": 0, "snp": 24, "microcode": 219}}},
            "warnings": []
        });
        let input = attestation_input(&AttestationParts {
            cpu: Some(CpuClaims::Snp(&claims)),
            gpus: &[],
            runtime_data: Some(&json!({"nonce": "n", "model": "sha256:00"})),
            cpu_binding_verified: true,
        });
        assert_eq!(input["roots"], "simulated");
        assert_eq!(input["cpu"]["tee"], "snp");
        assert_eq!(input["cpu"]["product"], "milan");
        assert_eq!(input["cpu"]["binding_verified"], true);
        assert_eq!(
            input["cpu"]["tcb"],
            json!({"bootloader": 4, "tee": 0, "snp": 24, "microcode": 219})
        );
        assert_eq!(input["model"]["commitment"], "sha256:00");
        assert!(without_raw_claims(&input)["cpu"].get("claims").is_none());
    }

    #[test]
    fn gpu_devtools_from_cc_mode_when_flag_absent() {
        let g = gpu_input(&json!({"roots": "vendor", "collection": {"cc_mode": "devtools"}}));
        assert_eq!(g["devtools"], true);
        let g = gpu_input(&json!({"roots": "vendor", "collection": {"cc_mode": "on"}}));
        assert_eq!(g["devtools"], false);
        let g = gpu_input(&json!({"roots": "vendor"}));
        assert_eq!(g["devtools"], Value::Null);
        assert_eq!(g["binding_verified"], false);
    }
}
