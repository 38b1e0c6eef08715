//! Rego policies: appraised claims in, AR4SI trust vectors and release decisions out.
//!
//! A policy set is a folder `policies/<set>/` holding one attestation policy
//! per submodule kind (`cpu.rego`, `gpu.rego`, `model.rego`) and a resource
//! policy (`resource.rego`), plus reference values `policies/reference/<set>.json`.
//! Two sets ship: `production` (vendor roots only) and `development` (the same
//! rules, also accepting the simulator's roots). Policies are standard Rego v1
//! evaluated with `regorus`, so OPA gives the same answers (policies/README.md).
//!
//! Each policy is compiled once at [`PolicySet::load`], with regorus' execution
//! time limit set; evaluation clones the prepared engine. A policy id names the
//! set, the policy and the SHA-256 of its exact text
//! (`production/cpu@sha256:<hex>`), and the reference values get one too
//! (`production/reference@sha256:<hex of their JCS form>`), so a result says
//! which frame of reference produced it.
//!
//! This module never sees raw evidence and never checks a signature: its input
//! is built from appraised claims by [`input`]. It fails closed: a policy that
//! yields nothing, a malformed vector, an unknown reason code or a status that
//! disagrees with its own vector is an error, never an allow.

pub mod input;

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use regorus::utils::limits::ExecutionTimerConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::denial::{Denial, DenialCode, Detail};

/// The attestation policies of a set, one per submodule kind, in evaluation order.
pub const ATTESTATION_POLICIES: [&str; 3] = ["cpu", "gpu", "model"];
/// The resource policy's name.
pub const RESOURCE_POLICY: &str = "resource";
/// The AR4SI trustworthiness claims, by JSON name (draft-ietf-rats-ar4si §2.3).
pub const AR4SI_CLAIMS: [&str; 8] = [
    "instance-identity",
    "configuration",
    "executables",
    "file-system",
    "hardware",
    "runtime-opaque",
    "storage-opaque",
    "sourced-data",
];
/// Wall-clock limit for one policy evaluation.
pub const EVALUATION_TIME_LIMIT: Duration = Duration::from_secs(2);

/// A shipped policy set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicySetName {
    /// Vendor roots only; simulated evidence is denied with `simulation_not_allowed`.
    Production,
    /// The same rules, also accepting operator-supplied and simulated roots.
    Development,
}

impl PolicySetName {
    /// Both sets.
    pub const ALL: [PolicySetName; 2] = [Self::Production, Self::Development];

    /// The folder and package name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Production => "production",
            Self::Development => "development",
        }
    }

    /// Parses `production` or `development`.
    pub fn parse(name: &str) -> Result<Self, PolicyError> {
        Self::ALL
            .into_iter()
            .find(|n| n.as_str() == name)
            .ok_or_else(|| PolicyError::UnknownSet(name.to_owned()))
    }
}

impl fmt::Display for PolicySetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An AR4SI trust tier, worst last (draft-ietf-rats-ar4si §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No claim made (values −1..1).
    None,
    /// 2..31.
    Affirming,
    /// 32..95.
    Warning,
    /// 96..127.
    Contraindicated,
}

impl Status {
    /// The tier of one trust-claim value.
    pub const fn of_value(v: i8) -> Self {
        match v.unsigned_abs() {
            0..=1 => Self::None,
            2..=31 => Self::Affirming,
            32..=95 => Self::Warning,
            _ => Self::Contraindicated,
        }
    }

    /// The worst tier over a vector (`None` for an empty one).
    pub fn of_vector(vector: &TrustVector) -> Self {
        vector
            .0
            .values()
            .map(|v| Self::of_value(*v))
            .max()
            .unwrap_or(Self::None)
    }

    /// The EAR spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Affirming => "affirming",
            Self::Warning => "warning",
            Self::Contraindicated => "contraindicated",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::None,
            Self::Affirming,
            Self::Warning,
            Self::Contraindicated,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An AR4SI trustworthiness vector: claim name → value, only the claims the
/// policy asserted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TrustVector(pub BTreeMap<String, i8>);

impl TrustVector {
    /// One claim's value, when asserted.
    pub fn claim(&self, name: &str) -> Option<i8> {
        self.0.get(name).copied()
    }

    /// The asserted claims, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i8)> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

/// Why a rule did not affirm: a stable code, the rule (the input field it
/// judged), a message, and the expected and found values as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// Stable code (`verifier::denial` strings).
    pub code: DenialCode,
    /// The rule, named by the input field it judged (e.g. `cpu.policy.debug_allowed`).
    pub rule: String,
    /// One sentence for people.
    pub message: String,
    /// What the policy required.
    pub expected: Value,
    /// What the claims said (`null` when absent).
    pub found: Value,
}

impl Reason {
    /// The same reason as a [`Denial`] (values rendered as compact JSON).
    pub fn to_denial(&self) -> Denial {
        Denial {
            code: self.code,
            message: self.message.clone(),
            detail: Detail::Mismatch {
                field: self.rule.clone(),
                expected: self.expected.to_string(),
                found: self.found.to_string(),
            },
        }
    }
}

/// One submodule's appraisal by its policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubmodResult {
    /// The AR4SI trustworthiness vector.
    pub vector: TrustVector,
    /// Derived from the vector: its worst tier.
    pub status: Status,
    /// Every finding that kept a claim from affirming, sorted.
    pub reasons: Vec<Reason>,
    /// The policies applied, in order: the submodule's policy, then the reference values.
    pub policy_ids: Vec<String>,
}

/// The attestation policies' verdict over one input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttestationDecision {
    /// The set that decided.
    pub policy_set: PolicySetName,
    /// `cpu`, `gpu0`…, `model`.
    pub submods: BTreeMap<String, SubmodResult>,
    /// Every policy id applied, in order, reference values last.
    pub policy_ids: Vec<String>,
    /// The input's `roots` label (`vendor`, `directory`, `simulated`, `none`).
    pub roots: String,
    /// The input's model commitment, when there was one.
    pub model_commitment: Option<String>,
}

impl AttestationDecision {
    /// The worst submodule status (`None` when there are no submodules).
    pub fn status(&self) -> Status {
        self.submods
            .values()
            .map(|s| s.status)
            .max()
            .unwrap_or(Status::None)
    }

    /// True when there is at least one submodule and all are affirming.
    pub fn is_affirming(&self) -> bool {
        !self.submods.is_empty() && self.submods.values().all(|s| s.status == Status::Affirming)
    }

    /// Every reason of every submodule as denials, the submodule named in the field.
    pub fn denials(&self) -> Vec<Denial> {
        let mut out = Vec::new();
        for (name, submod) in &self.submods {
            for reason in &submod.reasons {
                let mut d = reason.to_denial();
                if let Detail::Mismatch { field, .. } = &mut d.detail {
                    *field = format!("{name}: {field}");
                }
                out.push(d);
            }
        }
        out
    }
}

/// The resource policy's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceDecision {
    /// Release or not. True only when there is no reason.
    pub allow: bool,
    /// Every failing rule, sorted.
    pub reasons: Vec<Reason>,
    /// The resource policy's id, then the reference values' id.
    pub policy_ids: Vec<String>,
}

/// A policy that could not be loaded or evaluated. A deny is not an error.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Not `production` or `development`.
    #[error("unknown policy set {0:?} (expected production or development)")]
    UnknownSet(String),
    /// Not one of the set's policies (`cpu`, `gpu`, `model`, `resource`).
    #[error("unknown policy {0:?} (expected cpu, gpu, model or resource)")]
    UnknownPolicy(String),
    /// A policy or reference file could not be read.
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Reference values that are not a JSON object.
    #[error("{path}: reference values: {reason}")]
    Reference { path: PathBuf, reason: String },
    /// regorus refused the policy text.
    #[error("{policy}: does not compile: {reason}")]
    Compile { policy: String, reason: String },
    /// The input is not a JSON object.
    #[error("policy input: {0}")]
    Input(String),
    /// Evaluation failed (including the time limit).
    #[error("{policy}: evaluation failed: {reason}")]
    Evaluation { policy: String, reason: String },
    /// The policy produced no result, or a result of the wrong shape.
    #[error("{policy}: bad result: {reason}")]
    Output { policy: String, reason: String },
}

/// A loaded, compiled policy set with its reference values.
#[derive(Debug, Clone)]
pub struct PolicySet {
    name: PolicySetName,
    cpu: Compiled,
    gpu: Compiled,
    model: Compiled,
    resource: Compiled,
    reference: Value,
    reference_id: String,
}

#[derive(Debug, Clone)]
struct Compiled {
    id: String,
    rule: String,
    /// The exact Rego text, kept so one policy can be replaced and the set recompiled.
    text: String,
    engine: regorus::Engine,
}

impl PolicySet {
    /// Loads `dir/<name>/{cpu,gpu,model,resource}.rego` and
    /// `dir/reference/<name>.json`, compiles each policy once with the
    /// execution time limit set, and checks that each yields a result.
    pub fn load(dir: &Path, name: &str) -> Result<Self, PolicyError> {
        Self::load_layered(&[dir], name)
    }

    /// Like [`Self::load`], but each file is taken from the first of `dirs`
    /// that has it: an administrator's uploads (kept in the data directory)
    /// override the shipped files one by one.
    pub fn load_layered(dirs: &[&Path], name: &str) -> Result<Self, PolicyError> {
        let set = PolicySetName::parse(name)?;
        let pick = |path_in: &dyn Fn(&Path) -> PathBuf| -> Result<(PathBuf, Vec<u8>), PolicyError> {
            let candidates: Vec<PathBuf> = dirs.iter().map(|d| path_in(d)).collect();
            // The last directory is the shipped one: its path names a missing file.
            let path = candidates
                .iter()
                .find(|p| p.is_file())
                .or(candidates.last())
                .cloned()
                .ok_or_else(|| PolicyError::Input("no policy directory given".to_owned()))?;
            let bytes = std::fs::read(&path).map_err(|source| PolicyError::Read {
                path: path.clone(),
                source,
            })?;
            Ok((path, bytes))
        };
        let (ref_path, ref_bytes) = pick(&|d| reference_path(d, set))?;
        let reference_file: Value =
            serde_json::from_slice(&ref_bytes).map_err(|e| PolicyError::Reference {
                path: ref_path.clone(),
                reason: e.to_string(),
            })?;
        let mut texts = Vec::with_capacity(4);
        for policy in ATTESTATION_POLICIES.into_iter().chain([RESOURCE_POLICY]) {
            let (path, bytes) = pick(&|d| policy_path(d, set, policy))?;
            let text = String::from_utf8(bytes).map_err(|e| PolicyError::Read {
                path,
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?;
            texts.push(text);
        }
        let [cpu, gpu, model, resource] = <[String; 4]>::try_from(texts)
            .map_err(|_| PolicyError::Input("four policies expected".to_owned()))?;
        Self::compile(set, [cpu, gpu, model, resource], &reference_file, &ref_path)
    }

    /// The same set with one policy (`cpu`, `gpu`, `model` or `resource`)
    /// replaced by `text`, compiled and checked like [`Self::load`]. `self`
    /// is untouched: on any error the caller keeps deciding with it.
    pub fn with_policy(&self, policy: &str, text: String) -> Result<Self, PolicyError> {
        let [mut cpu, mut gpu, mut model, mut resource] = self.texts();
        match policy {
            "cpu" => cpu = text,
            "gpu" => gpu = text,
            "model" => model = text,
            RESOURCE_POLICY => resource = text,
            other => return Err(PolicyError::UnknownPolicy(other.to_owned())),
        }
        let texts = [cpu, gpu, model, resource];
        let file = serde_json::json!({ self.name.as_str(): self.reference.clone() });
        Self::compile(
            self.name,
            texts,
            &file,
            Path::new("(current reference values)"),
        )?
        .smoke_tested()
    }

    /// The same policies judged against new reference values, given in the
    /// file shape `{"<set>": {...}}` (`policies/reference/<set>.json`); every
    /// policy is recompiled with them. `self` is untouched on error.
    pub fn with_reference_values(&self, reference_file: &Value) -> Result<Self, PolicyError> {
        Self::compile(
            self.name,
            self.texts(),
            reference_file,
            Path::new("(uploaded reference values)"),
        )?
        .smoke_tested()
    }

    /// Evaluates every policy once over an empty attestation input (with
    /// one GPU) and an empty resource request: a replacement whose output is
    /// malformed or whose evaluation fails is refused before it is put in
    /// force, rather than failing every later decision.
    fn smoke_tested(self) -> Result<Self, PolicyError> {
        self.evaluate_attestation(&serde_json::json!({ "gpus": [{}] }))?;
        self.evaluate_resource(&input::resource_input(
            ["repository", "type", "tag"],
            Some("default"),
            &serde_json::json!({}),
            None,
            None,
        ))?;
        Ok(self)
    }

    /// The Rego text of one policy of the set (`cpu`, `gpu`, `model`, `resource`).
    pub fn policy_text(&self, policy: &str) -> Option<&str> {
        match policy {
            "cpu" => Some(&self.cpu.text),
            "gpu" => Some(&self.gpu.text),
            "model" => Some(&self.model.text),
            RESOURCE_POLICY => Some(&self.resource.text),
            _ => None,
        }
    }

    fn texts(&self) -> [String; 4] {
        [
            self.cpu.text.clone(),
            self.gpu.text.clone(),
            self.model.text.clone(),
            self.resource.text.clone(),
        ]
    }

    fn compile(
        set: PolicySetName,
        [cpu, gpu, model, resource]: [String; 4],
        reference_file: &Value,
        ref_path: &Path,
    ) -> Result<Self, PolicyError> {
        let reference_error = |reason: String| PolicyError::Reference {
            path: ref_path.to_owned(),
            reason,
        };
        let Value::Object(file) = reference_file else {
            return Err(reference_error("not a JSON object".to_owned()));
        };
        // The file is `{"<set>": {...}}` so that OPA, loading the folder, puts
        // each set's values at data.reference.<set> without a clash.
        let reference = match file.get(set.as_str()) {
            Some(v @ Value::Object(_)) => v.clone(),
            _ => {
                return Err(reference_error(format!(
                    "expected an object under {:?}",
                    set.as_str()
                )));
            }
        };
        if let Some(other) = file.keys().find(|k| k.as_str() != set.as_str()) {
            return Err(reference_error(format!(
                "unexpected member {other:?} (only {:?})",
                set.as_str()
            )));
        }
        let reference_id = format!("{set}/reference@sha256:{}", jcs_sha256(&reference));
        let data = regorus::Value::from(serde_json::json!({
            "reference": {set.as_str(): reference.clone()}
        }));
        let compile = |policy: &str, text: String| Compiled::compile(set, policy, text, &data);
        Ok(Self {
            name: set,
            cpu: compile("cpu", cpu)?,
            gpu: compile("gpu", gpu)?,
            model: compile("model", model)?,
            resource: compile(RESOURCE_POLICY, resource)?,
            reference,
            reference_id,
        })
    }

    /// Which set this is.
    pub fn name(&self) -> PolicySetName {
        self.name
    }

    /// The set's reference values (`policies/reference/<set>.json`).
    pub fn reference(&self) -> &Value {
        &self.reference
    }

    /// Every policy id of the set: cpu, gpu, model, resource, reference values.
    pub fn policy_ids(&self) -> Vec<String> {
        vec![
            self.cpu.id.clone(),
            self.gpu.id.clone(),
            self.model.id.clone(),
            self.resource.id.clone(),
            self.reference_id.clone(),
        ]
    }

    /// Runs the attestation policies over an input built by [`input`]: `cpu`
    /// and `model` always, and the GPU policy once per entry of `gpus` (with
    /// `input.gpu` set to that entry), giving submodules `cpu`, `gpu0`…, `model`.
    /// Without a `reference` member the set's shipped reference values apply.
    pub fn evaluate_attestation(&self, input: &Value) -> Result<AttestationDecision, PolicyError> {
        let (input, reference_id) = self.with_reference(input)?;
        let mut submods = BTreeMap::new();
        submods.insert(
            "cpu".to_owned(),
            self.submod(&self.cpu, &input, &reference_id)?,
        );
        let gpus = match input.get("gpus") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(gpus)) => gpus.clone(),
            Some(_) => return Err(PolicyError::Input("`gpus` is not an array".to_owned())),
        };
        for (index, gpu) in gpus.into_iter().enumerate() {
            let mut one = input.clone();
            if let Value::Object(map) = &mut one {
                map.insert("gpu".to_owned(), gpu);
            }
            submods.insert(
                format!("gpu{index}"),
                self.submod(&self.gpu, &one, &reference_id)?,
            );
        }
        submods.insert(
            "model".to_owned(),
            self.submod(&self.model, &input, &reference_id)?,
        );

        let mut policy_ids = vec![self.cpu.id.clone()];
        if submods.contains_key("gpu0") {
            policy_ids.push(self.gpu.id.clone());
        }
        policy_ids.push(self.model.id.clone());
        policy_ids.push(reference_id);
        Ok(AttestationDecision {
            policy_set: self.name,
            submods,
            policy_ids,
            roots: input
                .get("roots")
                .and_then(Value::as_str)
                .unwrap_or("none")
                .to_owned(),
            model_commitment: input
                .pointer("/model/commitment")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// Runs the resource policy over an input built by [`input::resource_input`].
    /// Without a `reference` member the set's shipped reference values apply.
    pub fn evaluate_resource(&self, input: &Value) -> Result<ResourceDecision, PolicyError> {
        let (input, reference_id) = self.with_reference(input)?;
        let out = self.resource.evaluate(&input)?;
        let policy = &self.resource.id;
        let allow = out
            .get("allow")
            .and_then(Value::as_bool)
            .ok_or_else(|| output_error(policy, "`allow` is not a boolean"))?;
        let reasons = parse_reasons(policy, out.get("reasons"))?;
        // Fail closed: a policy that allows while giving reasons is inconsistent.
        if allow && !reasons.is_empty() {
            return Err(output_error(
                policy,
                "`allow` is true but there are reasons",
            ));
        }
        Ok(ResourceDecision {
            allow,
            reasons,
            policy_ids: vec![policy.clone(), reference_id],
        })
    }

    /// Checks the input's shape and names the reference values it will be
    /// judged against: its own `reference` member, else the set's.
    fn with_reference(&self, input: &Value) -> Result<(Value, String), PolicyError> {
        let Value::Object(map) = input else {
            return Err(PolicyError::Input("not a JSON object".to_owned()));
        };
        let reference_id = match map.get("reference") {
            Some(given @ Value::Object(_)) => {
                format!("input/reference@sha256:{}", jcs_sha256(given))
            }
            None => self.reference_id.clone(),
            Some(_) => {
                return Err(PolicyError::Input(
                    "`reference` is not an object".to_owned(),
                ));
            }
        };
        Ok((input.clone(), reference_id))
    }

    fn submod(
        &self,
        policy: &Compiled,
        input: &Value,
        reference_id: &str,
    ) -> Result<SubmodResult, PolicyError> {
        let out = policy.evaluate(input)?;
        let id = &policy.id;
        let vector = parse_vector(id, out.get("trust_vector"))?;
        let status = out
            .get("status")
            .and_then(Value::as_str)
            .and_then(Status::parse)
            .ok_or_else(|| output_error(id, "`status` is not an AR4SI tier"))?;
        if status != Status::of_vector(&vector) {
            return Err(output_error(
                id,
                &format!(
                    "status {status} disagrees with its vector (worst tier {})",
                    Status::of_vector(&vector)
                ),
            ));
        }
        let reasons = parse_reasons(id, out.get("reasons"))?;
        // Fail closed: anything short of affirming must say why.
        if status != Status::Affirming && reasons.is_empty() {
            return Err(output_error(
                id,
                "status is not affirming but no reason given",
            ));
        }
        Ok(SubmodResult {
            vector,
            status,
            reasons,
            policy_ids: vec![id.clone(), reference_id.to_owned()],
        })
    }
}

/// Where a set's policy lives under a policy directory: `dir/<set>/<policy>.rego`.
pub fn policy_path(dir: &Path, set: PolicySetName, policy: &str) -> PathBuf {
    dir.join(set.as_str()).join(format!("{policy}.rego"))
}

/// Where a set's reference values live under a policy directory:
/// `dir/reference/<set>.json`.
pub fn reference_path(dir: &Path, set: PolicySetName) -> PathBuf {
    dir.join("reference").join(format!("{}.json", set.as_str()))
}

/// A policy set that an administrator may replace while it is in use.
///
/// Clones share one slot: the appraiser and the resource policy hold clones,
/// the admin API [`Self::replace`]s the set, and the next evaluation uses the
/// new one without a restart. Each evaluation takes the [`Self::current`] set
/// once, so one decision is never made by half an old and half a new set.
#[derive(Debug, Clone)]
pub struct LivePolicySet(Arc<RwLock<Arc<PolicySet>>>);

impl LivePolicySet {
    /// A slot holding `set`.
    pub fn new(set: PolicySet) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(set))))
    }

    /// The set in force now.
    pub fn current(&self) -> Arc<PolicySet> {
        // A poisoned lock only means a writer panicked between two whole sets.
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts `set` in force for every later evaluation; returns the one it replaces.
    pub fn replace(&self, set: PolicySet) -> Arc<PolicySet> {
        let mut slot = self.0.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *slot, Arc::new(set))
    }
}

impl From<PolicySet> for LivePolicySet {
    fn from(set: PolicySet) -> Self {
        Self::new(set)
    }
}

impl Compiled {
    fn compile(
        set: PolicySetName,
        policy: &str,
        text: String,
        data: &regorus::Value,
    ) -> Result<Self, PolicyError> {
        let id = format!(
            "{set}/{policy}@sha256:{}",
            hex::encode(Sha256::digest(text.as_bytes()))
        );
        let mut engine = regorus::Engine::new();
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit: EVALUATION_TIME_LIMIT,
            check_interval: NonZeroU32::MIN.saturating_add(99),
        });
        engine
            .add_policy(format!("{set}/{policy}.rego"), text.clone())
            .map_err(|e| PolicyError::Compile {
                policy: id.clone(),
                reason: format!("{e:#}"),
            })?;
        engine
            .add_data(data.clone())
            .map_err(|e| PolicyError::Compile {
                policy: id.clone(),
                reason: format!("data: {e:#}"),
            })?;
        let mut compiled = Self {
            rule: format!("data.attestor.{set}.{policy}.result"),
            id,
            text,
            engine,
        };
        // Prepare the engine once (analysis, scheduling) and prove the entry
        // point exists; evaluations then clone the prepared engine.
        compiled.engine.set_input(regorus::Value::new_object());
        compiled
            .engine
            .eval_rule(compiled.rule.clone())
            .map_err(|e| PolicyError::Compile {
                policy: compiled.id.clone(),
                reason: format!("{e:#}"),
            })?;
        Ok(compiled)
    }

    fn evaluate(&self, input: &Value) -> Result<Value, PolicyError> {
        let mut engine = self.engine.clone();
        engine.set_input(regorus::Value::from(input.clone()));
        let out = engine
            .eval_rule(self.rule.clone())
            .map_err(|e| PolicyError::Evaluation {
                policy: self.id.clone(),
                reason: format!("{e:#}"),
            })?;
        if out == regorus::Value::Undefined {
            return Err(output_error(&self.id, "the entry point is undefined"));
        }
        serde_json::to_value(&out).map_err(|e| output_error(&self.id, &e.to_string()))
    }
}

fn output_error(policy: &str, reason: &str) -> PolicyError {
    PolicyError::Output {
        policy: policy.to_owned(),
        reason: reason.to_owned(),
    }
}

fn parse_vector(policy: &str, v: Option<&Value>) -> Result<TrustVector, PolicyError> {
    let Some(Value::Object(map)) = v else {
        return Err(output_error(policy, "`trust_vector` is not an object"));
    };
    let mut vector = TrustVector::default();
    for (name, value) in map {
        if !AR4SI_CLAIMS.contains(&name.as_str()) {
            return Err(output_error(
                policy,
                &format!("unknown AR4SI claim {name:?}"),
            ));
        }
        let value = value
            .as_i64()
            .and_then(|n| i8::try_from(n).ok())
            .ok_or_else(|| output_error(policy, &format!("{name}: {value} is not an int8")))?;
        vector.0.insert(name.clone(), value);
    }
    Ok(vector)
}

fn parse_reasons(policy: &str, v: Option<&Value>) -> Result<Vec<Reason>, PolicyError> {
    let Some(Value::Array(items)) = v else {
        return Err(output_error(policy, "`reasons` is not an array"));
    };
    let mut reasons = Vec::with_capacity(items.len());
    for item in items {
        let text = |key: &str| {
            item.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| output_error(policy, &format!("reason without a string `{key}`")))
        };
        let code_text = text("code")?;
        let code = DenialCode::from_str_code(&code_text)
            .ok_or_else(|| output_error(policy, &format!("unknown reason code {code_text:?}")))?;
        reasons.push(Reason {
            code,
            rule: text("rule")?,
            message: text("message")?,
            expected: item.get("expected").cloned().unwrap_or(Value::Null),
            found: item.get("found").cloned().unwrap_or(Value::Null),
        });
    }
    reasons.sort_by(|a, b| (a.code, &a.rule).cmp(&(b.code, &b.rule)));
    Ok(reasons)
}

/// SHA-256 (hex) of the RFC 8785 canonical form of a JSON value.
fn jcs_sha256(v: &Value) -> String {
    // JCS of a serde_json::Value cannot fail (no non-finite numbers exist in one).
    let canonical = serde_json_canonicalizer::to_vec(v).unwrap_or_default();
    hex::encode(Sha256::digest(canonical))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_follow_ar4si() {
        assert_eq!(Status::of_value(0), Status::None);
        assert_eq!(Status::of_value(-1), Status::None);
        assert_eq!(Status::of_value(2), Status::Affirming);
        assert_eq!(Status::of_value(31), Status::Affirming);
        assert_eq!(Status::of_value(32), Status::Warning);
        assert_eq!(Status::of_value(95), Status::Warning);
        assert_eq!(Status::of_value(96), Status::Contraindicated);
        assert_eq!(Status::of_value(-128), Status::Contraindicated);
        assert_eq!(Status::of_vector(&TrustVector::default()), Status::None);
    }

    #[test]
    fn policy_sets_can_be_shared_across_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<PolicySet>();
    }

    #[test]
    fn unknown_set_is_an_error() {
        assert!(matches!(
            PolicySet::load(Path::new("/nonexistent"), "staging"),
            Err(PolicyError::UnknownSet(_))
        ));
    }

    #[test]
    fn malformed_outputs_are_errors() {
        assert!(parse_vector("p", Some(&serde_json::json!({"hardware": 300}))).is_err());
        assert!(parse_vector("p", Some(&serde_json::json!({"bogus": 2}))).is_err());
        assert!(
            parse_reasons(
                "p",
                Some(&serde_json::json!([{"code": "no_such_code", "rule": "r", "message": "m"}]))
            )
            .is_err()
        );
        assert!(parse_reasons("p", Some(&serde_json::json!({}))).is_err());
    }
}
