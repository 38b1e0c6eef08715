//! Simulated NVIDIA RIMs: SWID documents shaped like NVIDIA's (§5.2), signed
//! with an enveloped XML-DSig ECDSA-SHA384 signature (§5.3) by a `SIMULATED`
//! four-certificate P-384 chain derived from a [`SimSeed`]:
//! `HCC RIM L4 Signer SIMULATED` → `NVIDIA Reference Value L3 <product>
//! SIMULATED` → `NVIDIA Reference Value <product> CA SIMULATED` → `NVIDIA
//! CoRIM signing Root CA SIMULATED`.
//!
//! DigestValue and SignatureValue are computed with the same canonicalization
//! [`Rim::parse`] exposes, so one verification path serves real and simulated
//! RIMs; only the trust root differs. Never touches real keys.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use der::Encode;
use p384::ecdsa::signature::Signer;
use x509_cert::Certificate;

use super::{
    ALG_C14N_11, ALG_ECDSA_SHA384, ALG_ENVELOPED_SIGNATURE, ALG_SHA384, DSIG_NS, HASH_NS,
    MAX_INDEX, Rim, RimKind, SWID_NS, TCG_RIM_NS,
};
use crate::digest::Sha384Digest;
use crate::sim::{self, CertSpec, SimError, SimKey, SimSeed};

/// What a simulated RIM says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRimSpec {
    /// Driver or VBIOS.
    pub kind: RimKind,
    /// `colloquialVersion` (`550.144.03`, `96.00.5E.00.01`).
    pub colloquial_version: String,
    /// `product` and root `name` (`GH100`).
    pub product: String,
    /// `(index, active, alternatives)`; indices 0..=63 not listed are written
    /// inactive with one all-zero hash, as NVIDIA's RIMs list all 64.
    pub measurements: Vec<(u8, bool, Vec<[u8; 48]>)>,
    /// Validity of the L4 signer certificate (Unix seconds).
    pub not_before: u64,
    /// End of validity of the L4 signer certificate (Unix seconds).
    pub not_after: u64,
}

impl SimRimSpec {
    /// A GH100 spec with the default simulated signer validity (2020–2049).
    pub fn new(
        kind: RimKind,
        colloquial_version: impl Into<String>,
        measurements: Vec<(u8, bool, Vec<[u8; 48]>)>,
    ) -> Self {
        let validity = CertSpec::new("", &[1]);
        Self {
            kind,
            colloquial_version: colloquial_version.into(),
            product: "GH100".into(),
            measurements,
            not_before: validity.not_before,
            not_after: validity.not_after,
        }
    }
}

/// The simulated `NVIDIA CoRIM signing Root CA SIMULATED` certificate, DER.
pub fn rim_root_ca(seed: &SimSeed) -> Result<Vec<u8>, SimError> {
    Ok(root(seed)?.1.to_der()?)
}

/// A signed simulated RIM document (UTF-8 XML text).
pub fn simulate_rim(seed: &SimSeed, spec: &SimRimSpec) -> Result<String, SimError> {
    let chain = chain(seed, spec)?;
    let certs: Vec<Vec<u8>> = chain
        .certs
        .iter()
        .map(|c| c.to_der())
        .collect::<Result<_, _>>()?;
    let body = body(spec)?;

    // Placeholders have the final lengths; neither value is inside what it
    // protects (the digest excludes the Signature, SignedInfo excludes the
    // SignatureValue), so filling them in changes nothing that was hashed.
    let draft = render(&body, &[0; 48], &[0; 96], &certs);
    let digest = Sha384Digest::of(parse(&draft)?.reference_c14n());
    let draft = render(&body, digest.as_bytes(), &[0; 96], &certs);
    let signed_info = parse(&draft)?.signed_info_c14n().to_vec();
    let signature: p384::ecdsa::Signature = chain.signer.sign(&signed_info);
    let signature = signature.to_bytes();
    Ok(render(&body, digest.as_bytes(), &signature, &certs))
}

fn parse(xml: &str) -> Result<Rim, SimError> {
    Rim::parse(xml.as_bytes()).map_err(|e| SimError::Encoding(format!("simulated RIM: {e}")))
}

/// One measurement slot: active flag and alternatives.
type Slot<'a> = (bool, &'a [[u8; 48]]);

/// Everything before `<ds:Signature`, including the newline before it.
fn body(spec: &SimRimSpec) -> Result<String, SimError> {
    let mut slots: Vec<Option<Slot<'_>>> = vec![None; usize::from(MAX_INDEX) + 1];
    for (index, active, alternatives) in &spec.measurements {
        let slot = slots
            .get_mut(usize::from(*index))
            .ok_or_else(|| SimError::Encoding(format!("RIM index {index} is above {MAX_INDEX}")))?;
        if alternatives.is_empty() || slot.is_some() {
            return Err(SimError::Encoding(format!(
                "RIM index {index}: duplicate, or no alternatives"
            )));
        }
        *slot = Some((*active, alternatives));
    }
    let product = xml_escape(&spec.product);
    let version = xml_escape(&spec.colloquial_version);
    let kind = match spec.kind {
        RimKind::Driver => "driver",
        RimKind::Vbios => "vbios",
    };
    let tag_id = Sha384Digest::of(
        format!(
            "SIMULATED RIM {kind} {} {}",
            spec.product, spec.colloquial_version
        )
        .as_bytes(),
    );

    let mut x = String::new();
    x.push_str(&format!(
        "<SoftwareIdentity xmlns=\"{SWID_NS}\" xmlns:ns0=\"{SWID_NS}\" xmlns:ns2=\"{HASH_NS}\" corpus=\"false\" name=\"{product}\" patch=\"false\" supplemental=\"false\" tagId=\"{tag_id}\" version=\"1.0\" tagVersion=\"0\">\n"
    ));
    x.push_str(
        "    <ns0:Entity name=\"NVIDIA Corporation SIMULATED\" role=\"softwareCreator tagCreator\"/>\n",
    );
    x.push_str(&format!(
        "    <ns0:Meta xmlns:ns1=\"{TCG_RIM_NS}\" colloquialVersion=\"{version}\" edition=\"GPU\" product=\"{product}\" revision=\"r1\" PayloadType=\"direct\" ns1:BindingSpec=\"RIMIM\" ns1:BindingSpecVersion=\"1.01\" ns1:PlatformManufacturerId=\"5703\" ns1:PlatformManufacturerStr=\"NVIDIA Corporation SIMULATED\" ns1:PlatformModel=\"{product}\" ns1:FirmwareManufacturer=\"NVIDIA Corporation SIMULATED\" ns1:FirmwareManufacturerId=\"5703\"/>\n"
    ));
    x.push_str(&format!("    <ns0:Payload xmlns:SHA384=\"{HASH_NS}\">\n"));
    for (index, slot) in slots.iter().enumerate() {
        let (active, alternatives) = slot.unwrap_or((false, &[[0; 48]]));
        let active = if active { "True" } else { "False" };
        x.push_str(&format!(
            "        <ns0:Resource type=\"Measurement\" index=\"{index}\" active=\"{active}\" alternatives=\"{}\"",
            alternatives.len()
        ));
        for (k, hash) in alternatives.iter().enumerate() {
            x.push_str(&format!(" ns2:Hash{k}=\"{}\"", ::hex::encode(hash)));
        }
        x.push_str(&format!(" name=\"Measurement_{index}\" size=\"48\"/>\n"));
    }
    x.push_str("    </ns0:Payload>\n");
    Ok(x)
}

/// The full document: body, signature, closing tag.
fn render(body: &str, digest: &[u8], signature: &[u8], certs: &[Vec<u8>]) -> String {
    let mut x = String::from(body);
    x.push_str(&format!(
        "<ds:Signature xmlns:ds=\"{DSIG_NS}\"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"{ALG_C14N_11}\"/><ds:SignatureMethod Algorithm=\"{ALG_ECDSA_SHA384}\"/><ds:Reference URI=\"\"><ds:Transforms><ds:Transform Algorithm=\"{ALG_ENVELOPED_SIGNATURE}\"/><ds:Transform Algorithm=\"{ALG_C14N_11}\"/></ds:Transforms><ds:DigestMethod Algorithm=\"{ALG_SHA384}\"/><ds:DigestValue>{}</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>{}</ds:SignatureValue><ds:KeyInfo><ds:X509Data>",
        STANDARD.encode(digest),
        STANDARD.encode(signature)
    ));
    for cert in certs {
        x.push_str("<ds:X509Certificate>");
        // Wrapped at 64 columns with a final newline, as NVIDIA's RIMs are.
        let b64 = STANDARD.encode(cert);
        for line in b64.as_bytes().chunks(64) {
            x.push_str(&String::from_utf8_lossy(line));
            x.push('\n');
        }
        x.push_str("</ds:X509Certificate>");
    }
    x.push_str("</ds:X509Data></ds:KeyInfo></ds:Signature></SoftwareIdentity>\n");
    x
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('"', "&quot;")
}

struct Chain {
    /// Signer first, root last.
    certs: Vec<Certificate>,
    signer: p384::ecdsa::SigningKey,
}

const ROOT_SUBJECT: &str = "CN=NVIDIA CoRIM signing Root CA SIMULATED,O=NVIDIA SIMULATED,C=US";

fn p384(seed: &SimSeed, label: &str) -> Result<(SimKey, p384::ecdsa::SigningKey), SimError> {
    let key = SimKey::p384(seed, label);
    match &key {
        SimKey::P384(k) => {
            let k = k.clone();
            Ok((key, k))
        }
        other => Err(SimError::Key(format!("{other:?} is not P-384"))),
    }
}

fn root(seed: &SimSeed) -> Result<(SimKey, Certificate), SimError> {
    let (key, _) = p384(seed, "nvidia-rim/root")?;
    let spec = CertSpec::new(ROOT_SUBJECT, &[0x01]).ca(None);
    let mut rng = sim::rng(seed, "nvidia-rim/root/cert");
    let cert = sim::issue(&spec, key.spki()?, ROOT_SUBJECT, &key, &mut rng)?;
    Ok((key, cert))
}

fn chain(seed: &SimSeed, spec: &SimRimSpec) -> Result<Chain, SimError> {
    let product = &spec.product;
    let (root_key, root_cert) = root(seed)?;
    let ca_subject = format!(
        "CN=NVIDIA Reference Value {product} CA SIMULATED,O=NVIDIA Corporation SIMULATED,C=US"
    );
    let l3_subject = format!(
        "CN=NVIDIA Reference Value L3 {product} SIMULATED,O=NVIDIA Corporation SIMULATED,C=US"
    );
    let l4_subject = "CN=HCC RIM L4 Signer SIMULATED,O=NVIDIA Corporation SIMULATED,C=US";

    let (ca_key, _) = p384(seed, &format!("nvidia-rim/{product}/ca"))?;
    let (l3_key, _) = p384(seed, &format!("nvidia-rim/{product}/l3"))?;
    let (l4_key, signer) = p384(seed, &format!("nvidia-rim/{product}/l4"))?;
    let mut rng = sim::rng(seed, &format!("nvidia-rim/{product}/certs"));

    let ca = sim::issue(
        &CertSpec::new(&ca_subject, &[0x02]).ca(Some(1)),
        ca_key.spki()?,
        ROOT_SUBJECT,
        &root_key,
        &mut rng,
    )?;
    let l3 = sim::issue(
        &CertSpec::new(&l3_subject, &[0x03]).ca(Some(0)),
        l3_key.spki()?,
        &ca_subject,
        &ca_key,
        &mut rng,
    )?;
    let mut l4_spec = CertSpec::new(l4_subject, &[0x04]);
    l4_spec.not_before = spec.not_before;
    l4_spec.not_after = spec.not_after;
    let l4 = sim::issue(&l4_spec, l4_key.spki()?, &l3_subject, &l3_key, &mut rng)?;
    Ok(Chain {
        certs: vec![l4, l3, ca, root_cert],
        signer,
    })
}
