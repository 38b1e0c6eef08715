//! NVIDIA Reference Integrity Manifests (RIMs): TCG RIM-IM over ISO/IEC
//! 19770-2 SWID tags, as XML signed with an enveloped XML-DSig signature
//! (specs/nvidia-gpu.md §5.1–§5.3, §2.4.2 on the `ns3` opaque-data namespace).
//!
//! [`Rim::parse`] reads the XML strictly (namespace-aware, DTDs and entities
//! refused, exactly one `Meta`, `Payload` and `ds:Signature`, unknown extension
//! namespaces refused), keeps the received bytes, and computes the two
//! canonical byte strings a verifier hashes: [`Rim::reference_c14n`] (the
//! document without its signature, whose SHA-384 is the DigestValue) and
//! [`Rim::signed_info_c14n`] (what the ECDSA P-384 signature covers), with the
//! pure-Rust inclusive C14N in [`c14n`]. [`simulate`] builds RIMs signed by the
//! simulator's own `SIMULATED` chain.
//!
//! This module never checks the signature, the certificate chain, the
//! algorithms named in `SignedInfo` or the measurements: that is the verifier's
//! job. It never panics on any input.

#![warn(clippy::indexing_slicing)]

pub mod c14n;
pub mod simulate;

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use roxmltree::{Document, Node, ParsingOptions};
use serde::Serialize;

use crate::error::ParseError;

pub use simulate::{SimRimSpec, rim_root_ca, simulate_rim};

/// The format name RIM parse errors carry.
const FORMAT: &str = "nvidia rim";

/// ISO/IEC 19770-2:2015 SWID namespace (default and `ns0` in NVIDIA RIMs).
pub const SWID_NS: &str = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd";
/// W3C XML-DSig namespace (`ds`).
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// Namespace of the `HashN` measurement attributes (`ns2`).
pub const HASH_NS: &str = "http://www.w3.org/2001/04/xmlenc#sha384";
/// TCG RIM information model namespace (`ns1`) of the `Meta` attributes.
pub const TCG_RIM_NS: &str = "https://trustedcomputinggroup.org/resource/tcg-reference-integrity-manifest-rim-information-model/";
/// NVIDIA opaque-data reference namespace (`ns3`, §2.4.2): not yet specified,
/// so any attribute in it is refused.
pub const OPAQUE_DATA_NS: &str =
    "https://docs.nvidia.com/attestation/specs/latest/opaque-data.html";

/// Canonical XML 1.1 (the method NVIDIA RIMs name).
pub const ALG_C14N_11: &str = "http://www.w3.org/2006/12/xml-c14n11";
/// Canonical XML 1.0 (inclusive, without comments).
pub const ALG_C14N_10: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
/// ECDSA with SHA-384 (raw r‖s signature value).
pub const ALG_ECDSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384";
/// SHA-384 digest method.
pub const ALG_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#sha384";
/// The enveloped-signature transform.
pub const ALG_ENVELOPED_SIGNATURE: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// Largest RIM accepted (real ones are about 21 KB).
pub const MAX_RIM_LEN: usize = 1 << 20;
/// Largest number of XML nodes accepted (real ones have a few hundred).
const NODES_LIMIT: u32 = 100_000;
/// Measurement indices are SPDM measurement slots 0..=63.
pub const MAX_INDEX: u8 = 63;
/// Length of the raw r‖s ECDSA P-384 signature value.
pub const SIGNATURE_LEN: usize = 96;

/// A parsed RIM: the received bytes, a typed view, and the canonical forms the
/// signature is checked over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rim {
    /// Driver or VBIOS, recognised from `colloquialVersion`; `None` when neither form.
    pub kind: Option<RimKind>,
    /// Attributes of the `SoftwareIdentity` root.
    pub identity: RimIdentity,
    /// The `Entity` elements, in document order (at least one).
    pub entities: Vec<RimEntity>,
    /// The `Meta` element.
    pub meta: RimMeta,
    /// The `Payload` resources, in document order.
    pub measurements: Vec<RimMeasurement>,
    /// The enveloped XML-DSig signature.
    pub signature: RimSignature,
    #[serde(skip)]
    raw: Vec<u8>,
    #[serde(skip)]
    reference_c14n: Vec<u8>,
    #[serde(skip)]
    signed_info_c14n: Vec<u8>,
}

/// Which firmware a RIM describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RimKind {
    /// The GPU driver RIM (`colloquialVersion` like `550.144.03`).
    Driver,
    /// The VBIOS RIM (`colloquialVersion` like `96.00.5E.00.01`).
    Vbios,
}

/// The GPU architecture, which decides the driver RIM id form (§5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum RimArch {
    /// Hopper: `NV_GPU_DRIVER_GH100_<version>`.
    Hopper,
    /// Blackwell and later: `NV_GPU_CC_DRIVER_<CHIP_INFO>_<version>`.
    Blackwell,
}

/// `SoftwareIdentity` attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RimIdentity {
    /// `name` (the chip, e.g. `GH100`).
    pub name: String,
    /// `tagId` (96 hex digits in NVIDIA RIMs).
    pub tag_id: String,
    /// `version`, when present.
    pub version: Option<String>,
    /// `tagVersion`, when present.
    pub tag_version: Option<String>,
    /// `corpus` (xsd:boolean, default false).
    pub corpus: bool,
    /// `patch` (xsd:boolean, default false).
    pub patch: bool,
    /// `supplemental` (xsd:boolean, default false).
    pub supplemental: bool,
    /// Other SWID attributes without a namespace (and `xml:` ones, with the
    /// prefix), kept verbatim.
    pub other: BTreeMap<String, String>,
}

/// An `Entity` element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RimEntity {
    /// `name`.
    pub name: String,
    /// `role`, split on whitespace (e.g. `softwareCreator`, `tagCreator`).
    pub roles: Vec<String>,
    /// Other attributes without a namespace (and `xml:` ones, with the
    /// prefix), kept verbatim.
    pub other: BTreeMap<String, String>,
}

/// The `Meta` element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RimMeta {
    /// `colloquialVersion`: the driver or VBIOS version compared with the report (§5.4).
    pub colloquial_version: String,
    /// `product` (e.g. `GH100`).
    pub product: Option<String>,
    /// `edition` (e.g. `GPU`).
    pub edition: Option<String>,
    /// `revision` (e.g. `r1`).
    pub revision: Option<String>,
    /// `PayloadType` (e.g. `direct`).
    pub payload_type: Option<String>,
    /// Attributes in the TCG RIM namespace.
    pub tcg: RimTcgAttributes,
    /// Other attributes without a namespace (and `xml:` ones, with the
    /// prefix), kept verbatim.
    pub other: BTreeMap<String, String>,
}

/// TCG RIM-IM attributes of `Meta` (namespace [`TCG_RIM_NS`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RimTcgAttributes {
    /// `BindingSpec` (`RIMIM`).
    pub binding_spec: Option<String>,
    /// `BindingSpecVersion` (`1.01`).
    pub binding_spec_version: Option<String>,
    /// `PlatformManufacturerId` (`5703`).
    pub platform_manufacturer_id: Option<String>,
    /// `PlatformManufacturerStr`.
    pub platform_manufacturer_str: Option<String>,
    /// `PlatformModel`.
    pub platform_model: Option<String>,
    /// `FirmwareManufacturer`.
    pub firmware_manufacturer: Option<String>,
    /// `FirmwareManufacturerId` (`5703`, the `oemid` claim).
    pub firmware_manufacturer_id: Option<String>,
    /// Other TCG attributes, by local name.
    pub other: BTreeMap<String, String>,
}

/// One `Resource type="Measurement"`: the golden values of one SPDM
/// measurement slot (RIM index i is report block i+1, §5.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RimMeasurement {
    /// `index`, 0..=63.
    pub index: u8,
    /// `name` (e.g. `HashedMeasurement_1_FSP`).
    pub name: String,
    /// `active`: only active measurements are compared.
    pub active: bool,
    /// `size` in bytes of each alternative (48).
    pub size: u32,
    /// `Hash0`..`Hash{N-1}` decoded; N equals the `alternatives` attribute.
    #[serde(serialize_with = "serialize_hex_list")]
    pub alternatives: Vec<Vec<u8>>,
}

/// The enveloped `ds:Signature`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RimSignature {
    /// `SignedInfo/CanonicalizationMethod/@Algorithm`.
    pub c14n_method: String,
    /// `SignedInfo/SignatureMethod/@Algorithm`.
    pub signature_method: String,
    /// `Reference/@URI` (`""`: the whole document).
    pub reference_uri: String,
    /// `Reference/Transforms/Transform/@Algorithm`, in order.
    pub transforms: Vec<String>,
    /// `Reference/DigestMethod/@Algorithm`.
    pub digest_method: String,
    /// `Reference/DigestValue`, decoded.
    #[serde(with = "crate::hex::bytes")]
    pub digest_value: Vec<u8>,
    /// `SignatureValue`, decoded: raw r‖s, 96 bytes.
    #[serde(with = "crate::hex::bytes")]
    pub signature_value: Vec<u8>,
    /// `KeyInfo/X509Data/X509Certificate`, DER, signer first.
    #[serde(serialize_with = "serialize_base64_list")]
    pub certs_der: Vec<Vec<u8>>,
}

impl Rim {
    /// Parses a RIM document. DTDs (and so entity definitions) are refused.
    pub fn parse(xml: &[u8]) -> Result<Self, ParseError> {
        if xml.len() > MAX_RIM_LEN {
            return Err(invalid(
                "document",
                MAX_RIM_LEN,
                format!(
                    "{} bytes is more than the {MAX_RIM_LEN} accepted",
                    xml.len()
                ),
            ));
        }
        let text = std::str::from_utf8(xml)
            .map_err(|e| invalid("document", e.valid_up_to(), "not UTF-8"))?;
        let options = ParsingOptions {
            allow_dtd: false,
            nodes_limit: NODES_LIMIT,
            ..ParsingOptions::default()
        };
        let doc = Document::parse_with_options(text, options)
            .map_err(|e| ParseError::document(FORMAT, "document", e))?;
        let root = doc.root_element();
        if !root.has_tag_name((SWID_NS, "SoftwareIdentity")) {
            return Err(invalid(
                "SoftwareIdentity",
                offset(root),
                format!("root element is {:?}", root.tag_name()),
            ));
        }
        check_namespaces(root)?;

        let identity = parse_identity(root)?;
        let mut entities = Vec::new();
        let mut meta = None;
        let mut payload = None;
        let mut signature = None;
        for child in element_children(root, "SoftwareIdentity")? {
            let (field, slot) = match (child.tag_name().namespace(), child.tag_name().name()) {
                (Some(SWID_NS), "Entity") => {
                    entities.push(parse_entity(child)?);
                    continue;
                }
                (Some(SWID_NS), "Meta") => ("Meta", &mut meta),
                (Some(SWID_NS), "Payload") => ("Payload", &mut payload),
                (Some(DSIG_NS), "Signature") => ("Signature", &mut signature),
                _ => return Err(unsupported_element(child)),
            };
            if slot.replace(child).is_some() {
                return Err(invalid(
                    field,
                    offset(child),
                    "more than one under the root",
                ));
            }
        }
        let missing = |field| invalid(field, offset(root), "missing under the root");
        let meta = parse_meta(meta.ok_or_else(|| missing("Meta"))?)?;
        let measurements = parse_payload(payload.ok_or_else(|| missing("Payload"))?)?;
        let signature_node = signature.ok_or_else(|| missing("Signature"))?;
        if entities.is_empty() {
            return Err(missing("Entity"));
        }
        let (signature, signed_info) = parse_signature(signature_node)?;

        let reference_c14n = c14n::document(&doc, Some(signature_node.id()))?;
        let signed_info_c14n = c14n::subtree(&doc, signed_info)?;
        Ok(Self {
            kind: RimKind::recognise(&meta.colloquial_version),
            identity,
            entities,
            meta,
            measurements,
            signature,
            raw: xml.to_vec(),
            reference_c14n,
            signed_info_c14n,
        })
    }

    /// The bytes received: what was parsed and what the signature covers.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.raw.clone()
    }

    /// The bytes received, borrowed.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Driver or VBIOS, from `colloquialVersion`.
    pub fn rim_kind(&self) -> Option<RimKind> {
        self.kind
    }

    /// The measurements with `active="True"`, the only ones compared (§5.5).
    pub fn active_measurements(&self) -> impl Iterator<Item = &RimMeasurement> {
        self.measurements.iter().filter(|m| m.active)
    }

    /// Inclusive C14N of the document with the `ds:Signature` element removed
    /// (the enveloped-signature transform, whitespace around it kept): its
    /// SHA-384 must equal `signature.digest_value`.
    pub fn reference_c14n(&self) -> &[u8] {
        &self.reference_c14n
    }

    /// Inclusive C14N of `ds:SignedInfo` as a document subset, carrying the
    /// namespaces in scope from its ancestors: the bytes the ECDSA P-384
    /// SHA-384 `signature_value` signs.
    pub fn signed_info_c14n(&self) -> &[u8] {
        &self.signed_info_c14n
    }
}

impl RimKind {
    /// Recognises the version form: five dot-separated pairs of hex digits is a
    /// VBIOS (`96.00.5E.00.01`); two to four dot-separated decimal numbers is a
    /// driver (`550.144.03`, `575.32`).
    pub fn recognise(colloquial_version: &str) -> Option<Self> {
        let parts: Vec<&str> = colloquial_version.split('.').collect();
        let all = |f: fn(char) -> bool| parts.iter().all(|p| !p.is_empty() && p.chars().all(f));
        if parts.len() == 5 && parts.iter().all(|p| p.len() == 2) && all(|c| c.is_ascii_hexdigit())
        {
            Some(Self::Vbios)
        } else if (2..=4).contains(&parts.len()) && all(|c| c.is_ascii_digit()) {
            Some(Self::Driver)
        } else {
            None
        }
    }
}

/// The driver RIM id (§5.1): `NV_GPU_DRIVER_GH100_<version>` for Hopper,
/// `NV_GPU_CC_DRIVER_<CHIP_INFO>_<version>` for Blackwell (CHIP_INFO from
/// opaque field 35, `GB100` when absent, as NVAT does). NULs and surrounding
/// whitespace are stripped.
pub fn driver_rim_id(arch: RimArch, chip_info: Option<&str>, driver_version: &str) -> String {
    let version = clean(driver_version);
    match arch {
        RimArch::Hopper => format!("NV_GPU_DRIVER_GH100_{version}"),
        RimArch::Blackwell => {
            let chip = chip_info.map(clean).filter(|c| !c.is_empty());
            let chip = chip.as_deref().unwrap_or("GB100").to_uppercase();
            format!("NV_GPU_CC_DRIVER_{chip}_{version}")
        }
    }
}

/// The VBIOS RIM id (§5.1): `NV_GPU_VBIOS_<PROJECT>_<PROJECT_SKU>_<CHIP_SKU>_<vbios
/// without dots>`, every part NUL- and space-stripped and uppercased, e.g.
/// `NV_GPU_VBIOS_1010_0200_882_96009F0001`.
pub fn vbios_rim_id(
    project: &str,
    project_sku: &str,
    chip_sku: &str,
    vbios_version: &str,
) -> String {
    let part = |s: &str| clean(s).replace(' ', "").to_uppercase();
    format!(
        "NV_GPU_VBIOS_{}_{}_{}_{}",
        part(project),
        part(project_sku),
        part(chip_sku),
        part(vbios_version).replace('.', "")
    )
}

/// Fuzz body: parsing never panics; what parses serializes back to the input,
/// parses again to the same value, and has canonical forms.
pub fn fuzz_roundtrip(data: &[u8]) {
    if let Ok(rim) = Rim::parse(data) {
        assert_eq!(rim.to_bytes(), data);
        let again = Rim::parse(&rim.to_bytes());
        assert_eq!(again.as_ref(), Ok(&rim));
        assert!(!rim.reference_c14n().is_empty());
        assert!(!rim.signed_info_c14n().is_empty());
        let _ = serde_json::to_string(&rim);
    }
}

fn clean(s: &str) -> String {
    s.trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .replace('\0', "")
}

fn offset(node: Node<'_, '_>) -> usize {
    node.range().start
}

fn invalid(field: &'static str, offset: usize, reason: impl ToString) -> ParseError {
    ParseError::Invalid {
        format: FORMAT,
        field,
        offset,
        reason: reason.to_string(),
    }
}

fn unsupported_element(node: Node<'_, '_>) -> ParseError {
    ParseError::Unsupported {
        format: FORMAT,
        what: format!(
            "element {{{}}}{} at offset {}",
            node.tag_name().namespace().unwrap_or(""),
            node.tag_name().name(),
            offset(node)
        ),
    }
}

fn unsupported_attribute(node: Node<'_, '_>, attr: &roxmltree::Attribute<'_, '_>) -> ParseError {
    ParseError::Unsupported {
        format: FORMAT,
        what: format!(
            "attribute {{{}}}{} on {} at offset {}",
            attr.namespace().unwrap_or(""),
            attr.name(),
            node.tag_name().name(),
            attr.range().start
        ),
    }
}

/// Fail closed on extensions: every element is SWID or XML-DSig, and every
/// attribute is unqualified, TCG RIM, hash or `xml:` (the `ns3` opaque-data
/// namespace and any other are refused).
fn check_namespaces(root: Node<'_, '_>) -> Result<(), ParseError> {
    for node in root.descendants().filter(Node::is_element) {
        if !matches!(node.tag_name().namespace(), Some(SWID_NS | DSIG_NS)) {
            return Err(unsupported_element(node));
        }
        for attr in node.attributes() {
            if !matches!(
                attr.namespace(),
                None | Some(TCG_RIM_NS | HASH_NS | c14n::XML_NS)
            ) {
                return Err(unsupported_attribute(node, &attr));
            }
        }
    }
    Ok(())
}

/// Element children of `node`; text between them must be whitespace.
fn element_children<'a, 'input>(
    node: Node<'a, 'input>,
    field: &'static str,
) -> Result<Vec<Node<'a, 'input>>, ParseError> {
    let mut out = Vec::new();
    for child in node.children() {
        if child.is_element() {
            out.push(child);
        } else if child.is_text() && !child.text().unwrap_or("").trim().is_empty() {
            return Err(invalid(field, offset(child), "unexpected text content"));
        }
    }
    Ok(out)
}

/// The text content of a leaf element (no element children).
fn leaf_text<'a>(node: Node<'a, '_>, field: &'static str) -> Result<String, ParseError> {
    let mut out = String::new();
    for child in node.children() {
        if child.is_element() {
            return Err(invalid(field, offset(child), "unexpected child element"));
        }
        if child.is_text() {
            out.push_str(child.text().unwrap_or(""));
        }
    }
    Ok(out)
}

fn required(
    node: Node<'_, '_>,
    value: Option<String>,
    field: &'static str,
) -> Result<String, ParseError> {
    value.ok_or_else(|| invalid(field, offset(node), "required attribute missing"))
}

/// xsd:boolean, as SWID uses it.
fn parse_bool(value: &str, field: &'static str, at: usize) -> Result<bool, ParseError> {
    match value.trim() {
        "true" | "True" | "1" => Ok(true),
        "false" | "False" | "0" => Ok(false),
        other => Err(invalid(field, at, format!("{other:?} is not a boolean"))),
    }
}

fn parse_identity(root: Node<'_, '_>) -> Result<RimIdentity, ParseError> {
    let (mut name, mut tag_id, mut version, mut tag_version) = (None, None, None, None);
    let (mut corpus, mut patch, mut supplemental) = (false, false, false);
    let mut other = BTreeMap::new();
    for attr in root.attributes() {
        let at = attr.range().start;
        let value = attr.value().to_owned();
        match (attr.namespace(), attr.name()) {
            (None, "name") => name = Some(value),
            (None, "tagId") => tag_id = Some(value),
            (None, "version") => version = Some(value),
            (None, "tagVersion") => tag_version = Some(value),
            (None, "corpus") => corpus = parse_bool(&value, "corpus", at)?,
            (None, "patch") => patch = parse_bool(&value, "patch", at)?,
            (None, "supplemental") => supplemental = parse_bool(&value, "supplemental", at)?,
            (None, local) => {
                other.insert(local.to_owned(), value);
            }
            (Some(c14n::XML_NS), local) => {
                other.insert(format!("xml:{local}"), value);
            }
            (Some(_), _) => return Err(unsupported_attribute(root, &attr)),
        }
    }
    Ok(RimIdentity {
        name: required(root, name, "name")?,
        tag_id: required(root, tag_id, "tagId")?,
        version,
        tag_version,
        corpus,
        patch,
        supplemental,
        other,
    })
}

fn parse_entity(node: Node<'_, '_>) -> Result<RimEntity, ParseError> {
    element_children(node, "Entity")?
        .first()
        .map_or(Ok(()), |c| Err(unsupported_element(*c)))?;
    let (mut name, mut roles) = (None, Vec::new());
    let mut other = BTreeMap::new();
    for attr in node.attributes() {
        match (attr.namespace(), attr.name()) {
            (None, "name") => name = Some(attr.value().to_owned()),
            (None, "role") => roles = attr.value().split_whitespace().map(str::to_owned).collect(),
            (None, local) => {
                other.insert(local.to_owned(), attr.value().to_owned());
            }
            (Some(c14n::XML_NS), local) => {
                other.insert(format!("xml:{local}"), attr.value().to_owned());
            }
            (Some(_), _) => return Err(unsupported_attribute(node, &attr)),
        }
    }
    Ok(RimEntity {
        name: required(node, name, "Entity.name")?,
        roles,
        other,
    })
}

fn parse_meta(node: Node<'_, '_>) -> Result<RimMeta, ParseError> {
    element_children(node, "Meta")?
        .first()
        .map_or(Ok(()), |c| Err(unsupported_element(*c)))?;
    let mut colloquial_version = None;
    let (mut product, mut edition, mut revision, mut payload_type) = (None, None, None, None);
    let mut tcg = RimTcgAttributes::default();
    let mut other = BTreeMap::new();
    for attr in node.attributes() {
        let value = Some(attr.value().to_owned());
        match (attr.namespace(), attr.name()) {
            (None, "colloquialVersion") => colloquial_version = value,
            (None, "product") => product = value,
            (None, "edition") => edition = value,
            (None, "revision") => revision = value,
            (None, "PayloadType") => payload_type = value,
            (None, local) => {
                other.insert(local.to_owned(), attr.value().to_owned());
            }
            (Some(c14n::XML_NS), local) => {
                other.insert(format!("xml:{local}"), attr.value().to_owned());
            }
            (Some(TCG_RIM_NS), "BindingSpec") => tcg.binding_spec = value,
            (Some(TCG_RIM_NS), "BindingSpecVersion") => tcg.binding_spec_version = value,
            (Some(TCG_RIM_NS), "PlatformManufacturerId") => tcg.platform_manufacturer_id = value,
            (Some(TCG_RIM_NS), "PlatformManufacturerStr") => tcg.platform_manufacturer_str = value,
            (Some(TCG_RIM_NS), "PlatformModel") => tcg.platform_model = value,
            (Some(TCG_RIM_NS), "FirmwareManufacturer") => tcg.firmware_manufacturer = value,
            (Some(TCG_RIM_NS), "FirmwareManufacturerId") => tcg.firmware_manufacturer_id = value,
            (Some(TCG_RIM_NS), local) => {
                tcg.other.insert(local.to_owned(), attr.value().to_owned());
            }
            (Some(_), _) => return Err(unsupported_attribute(node, &attr)),
        }
    }
    Ok(RimMeta {
        colloquial_version: required(node, colloquial_version, "colloquialVersion")?,
        product,
        edition,
        revision,
        payload_type,
        tcg,
        other,
    })
}

fn parse_payload(node: Node<'_, '_>) -> Result<Vec<RimMeasurement>, ParseError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for child in element_children(node, "Payload")? {
        if !child.has_tag_name((SWID_NS, "Resource")) {
            return Err(unsupported_element(child));
        }
        let m = parse_resource(child)?;
        if !seen.insert(m.index) {
            return Err(invalid(
                "index",
                offset(child),
                format!("duplicate measurement index {}", m.index),
            ));
        }
        out.push(m);
    }
    Ok(out)
}

fn parse_resource(node: Node<'_, '_>) -> Result<RimMeasurement, ParseError> {
    element_children(node, "Resource")?
        .first()
        .map_or(Ok(()), |c| Err(unsupported_element(*c)))?;
    let (mut kind, mut index, mut name, mut active, mut count, mut size) =
        (None, None, None, None, None, None);
    let mut hashes: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    for attr in node.attributes() {
        let at = attr.range().start;
        let value = attr.value();
        match (attr.namespace(), attr.name()) {
            (None, "type") => kind = Some(value),
            (None, "index") => {
                let i = parse_decimal::<u8>(value, "index", at)?;
                if i > MAX_INDEX {
                    return Err(invalid("index", at, format!("{i} is above {MAX_INDEX}")));
                }
                index = Some(i);
            }
            (None, "name") => name = Some(value.to_owned()),
            (None, "active") => active = Some(parse_bool(value, "active", at)?),
            (None, "alternatives") => {
                count = Some(parse_decimal::<usize>(value, "alternatives", at)?)
            }
            (None, "size") => size = Some(parse_decimal::<u32>(value, "size", at)?),
            (Some(HASH_NS), local) => {
                let k = local
                    .strip_prefix("Hash")
                    .ok_or_else(|| unsupported_attribute(node, &attr))
                    .and_then(|k| parse_decimal::<usize>(k, "HashN", at))?;
                let bytes = ::hex::decode(value)
                    .map_err(|e| invalid("HashN", at, format!("{local}: {e}")))?;
                hashes.insert(k, bytes);
            }
            _ => return Err(unsupported_attribute(node, &attr)),
        }
    }
    let at = offset(node);
    let missing = |field| invalid(field, at, "required attribute missing");
    match kind {
        Some("Measurement") => {}
        Some(other) => {
            return Err(ParseError::Unsupported {
                format: FORMAT,
                what: format!("Resource type {other:?} at offset {at}"),
            });
        }
        None => return Err(missing("type")),
    }
    let count = count.ok_or_else(|| missing("alternatives"))?;
    let size = size.ok_or_else(|| missing("size"))?;
    if count == 0 || hashes.len() != count || !hashes.keys().copied().eq(0..count) {
        return Err(invalid(
            "alternatives",
            at,
            format!(
                "alternatives=\"{count}\" but hashes {:?} are present",
                hashes.keys().collect::<Vec<_>>()
            ),
        ));
    }
    if let Some((k, h)) = hashes
        .iter()
        .find(|(_, h)| u32::try_from(h.len()) != Ok(size))
    {
        return Err(invalid(
            "HashN",
            at,
            format!("Hash{k} is {} bytes, size is {size}", h.len()),
        ));
    }
    Ok(RimMeasurement {
        index: index.ok_or_else(|| missing("index"))?,
        name: name.ok_or_else(|| missing("name"))?,
        active: active.ok_or_else(|| missing("active"))?,
        size,
        alternatives: hashes.into_values().collect(),
    })
}

/// A canonical unsigned decimal (no sign, no leading zeros, no spaces).
fn parse_decimal<T: std::str::FromStr>(
    value: &str,
    field: &'static str,
    at: usize,
) -> Result<T, ParseError> {
    let canonical = !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit())
        && (value == "0" || !value.starts_with('0'));
    canonical
        .then(|| value.parse::<T>().ok())
        .flatten()
        .ok_or_else(|| {
            invalid(
                field,
                at,
                format!("{value:?} is not a canonical decimal in range"),
            )
        })
}

/// `ds:Signature`: returns the typed view and the `SignedInfo` node.
fn parse_signature<'a, 'input>(
    node: Node<'a, 'input>,
) -> Result<(RimSignature, Node<'a, 'input>), ParseError> {
    let children = element_children(node, "Signature")?;
    let [signed_info, signature_value, rest @ ..] = children.as_slice() else {
        return Err(invalid(
            "Signature",
            offset(node),
            "expected SignedInfo, SignatureValue, KeyInfo",
        ));
    };
    expect_dsig(*signed_info, "SignedInfo")?;
    expect_dsig(*signature_value, "SignatureValue")?;
    let mut certs_der = Vec::new();
    match rest {
        [] => {}
        [key_info] => {
            expect_dsig(*key_info, "KeyInfo")?;
            for data in element_children(*key_info, "KeyInfo")? {
                // Only X.509 data is read; other KeyInfo content is unsigned
                // and ignored.
                if !data.has_tag_name((DSIG_NS, "X509Data")) {
                    continue;
                }
                for cert in element_children(data, "X509Data")? {
                    if cert.has_tag_name((DSIG_NS, "X509Certificate")) {
                        certs_der.push(decode_base64(cert, "X509Certificate")?);
                    }
                }
            }
        }
        [extra, ..] => return Err(unsupported_element(*extra)),
    }

    let si = element_children(*signed_info, "SignedInfo")?;
    let [c14n_method, signature_method, reference] = si.as_slice() else {
        return Err(invalid(
            "SignedInfo",
            offset(*signed_info),
            "expected CanonicalizationMethod, SignatureMethod and exactly one Reference",
        ));
    };
    let c14n_method = algorithm(*c14n_method, "CanonicalizationMethod")?;
    let signature_method = algorithm(*signature_method, "SignatureMethod")?;
    expect_dsig(*reference, "Reference")?;
    check_reference_attributes(*reference)?;

    let mut parts = element_children(*reference, "Reference")?
        .into_iter()
        .peekable();
    let mut transforms = Vec::new();
    if let Some(t) = parts.next_if(|n| n.has_tag_name((DSIG_NS, "Transforms"))) {
        check_reference_attributes(t)?;
        for transform in element_children(t, "Transforms")? {
            transforms.push(algorithm(transform, "Transform")?);
        }
    }
    let (Some(digest_method), Some(digest_value), None) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(
            "Reference",
            offset(*reference),
            "expected Transforms, DigestMethod, DigestValue",
        ));
    };
    let digest_method = algorithm(digest_method, "DigestMethod")?;
    expect_dsig(digest_value, "DigestValue")?;
    let digest_value = decode_base64(digest_value, "DigestValue")?;
    let signature_bytes = decode_base64(*signature_value, "SignatureValue")?;
    if signature_bytes.len() != SIGNATURE_LEN {
        return Err(invalid(
            "SignatureValue",
            offset(*signature_value),
            format!(
                "{} bytes, expected {SIGNATURE_LEN} (r‖s)",
                signature_bytes.len()
            ),
        ));
    }
    let signature = RimSignature {
        c14n_method,
        signature_method,
        reference_uri: reference.attribute("URI").unwrap_or("").to_owned(),
        transforms,
        digest_method,
        digest_value,
        signature_value: signature_bytes,
        certs_der,
    };
    Ok((signature, *signed_info))
}

fn expect_dsig(node: Node<'_, '_>, name: &'static str) -> Result<(), ParseError> {
    if node.has_tag_name((DSIG_NS, name)) {
        Ok(())
    } else {
        Err(invalid(
            name,
            offset(node),
            format!("found {:?} instead", node.tag_name()),
        ))
    }
}

/// Refuses attributes that would change what a Reference or Transforms means
/// (only `URI`, `Id` and `Type` are allowed on a Reference).
fn check_reference_attributes(node: Node<'_, '_>) -> Result<(), ParseError> {
    for attr in node.attributes() {
        if !matches!(
            (attr.namespace(), attr.name()),
            (None, "URI" | "Id" | "Type")
        ) {
            return Err(unsupported_attribute(node, &attr));
        }
    }
    Ok(())
}

/// `@Algorithm` of an algorithm element with no element content.
fn algorithm(node: Node<'_, '_>, name: &'static str) -> Result<String, ParseError> {
    expect_dsig(node, name)?;
    if let Some(child) = element_children(node, name)?.first() {
        return Err(ParseError::Unsupported {
            format: FORMAT,
            what: format!("{name} parameters at offset {}", offset(*child)),
        });
    }
    node.attribute("Algorithm")
        .map(str::to_owned)
        .ok_or_else(|| invalid(name, offset(node), "Algorithm attribute missing"))
}

/// Base64 element content; XML whitespace (line breaks) is ignored.
fn decode_base64(node: Node<'_, '_>, field: &'static str) -> Result<Vec<u8>, ParseError> {
    let text: String = leaf_text(node, field)?
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD
        .decode(text)
        .map_err(|e| invalid(field, offset(node), format!("base64: {e}")))
}

fn serialize_hex_list<S: serde::Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(::hex::encode))
}

fn serialize_base64_list<S: serde::Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|c| STANDARD.encode(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small RIM with the real structure (unsigned values are placeholders:
    /// parsing never checks them).
    fn sample() -> String {
        rim_with(
            "",
            "<ns0:Resource type=\"Measurement\" index=\"0\" active=\"True\" alternatives=\"2\" ns2:Hash0=\"HASH\" ns2:Hash1=\"HASH\" name=\"Measurement_0\" size=\"48\"/>",
        )
    }

    fn rim_with(meta_extra: &str, resources: &str) -> String {
        let hash = "ab".repeat(48);
        let sig = STANDARD.encode([7u8; 96]);
        let digest = STANDARD.encode([9u8; 48]);
        format!(
            "<SoftwareIdentity xmlns=\"{SWID_NS}\" xmlns:ns0=\"{SWID_NS}\" xmlns:ns2=\"{HASH_NS}\" corpus=\"false\" name=\"GH100\" patch=\"false\" supplemental=\"false\" tagId=\"t\" version=\"1.0\" tagVersion=\"0\">\n\
             <ns0:Entity name=\"NVIDIA Corporation\" role=\"softwareCreator tagCreator\"/>\n\
             <ns0:Meta xmlns:ns1=\"{TCG_RIM_NS}\" colloquialVersion=\"96.00.5E.00.01\" product=\"GH100\" ns1:FirmwareManufacturerId=\"5703\"{meta_extra}/>\n\
             <ns0:Payload>\n{}\n</ns0:Payload>\n\
             <ds:Signature xmlns:ds=\"{DSIG_NS}\"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"{ALG_C14N_11}\"/><ds:SignatureMethod Algorithm=\"{ALG_ECDSA_SHA384}\"/><ds:Reference URI=\"\"><ds:Transforms><ds:Transform Algorithm=\"{ALG_ENVELOPED_SIGNATURE}\"/></ds:Transforms><ds:DigestMethod Algorithm=\"{ALG_SHA384}\"/><ds:DigestValue>{digest}</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>{sig}</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>AAEC\nAwQ=\n</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature></SoftwareIdentity>\n",
            resources.replace("HASH", &hash)
        )
    }

    fn err(xml: &str) -> ParseError {
        Rim::parse(xml.as_bytes()).unwrap_err()
    }

    #[test]
    fn sample_parses_with_typed_view() {
        let xml = sample();
        let rim = Rim::parse(xml.as_bytes()).unwrap();
        assert_eq!(rim.to_bytes(), xml.as_bytes());
        assert_eq!(rim.rim_kind(), Some(RimKind::Vbios));
        assert_eq!(rim.measurements.len(), 1);
        assert_eq!(
            rim.measurements[0].alternatives,
            [vec![0xab; 48], vec![0xab; 48]]
        );
        assert_eq!(rim.signature.certs_der, [vec![0, 1, 2, 3, 4]]);
        assert_eq!(rim.signature.transforms, [ALG_ENVELOPED_SIGNATURE]);
        assert_eq!(
            rim.meta.tcg.firmware_manufacturer_id.as_deref(),
            Some("5703")
        );
        assert!(!rim.identity.corpus);
        let json = serde_json::to_value(&rim).unwrap();
        assert_eq!(json["kind"], "vbios");
        assert_eq!(json["measurements"][0]["alternatives"][0], "ab".repeat(48));
        assert_eq!(json["signature"]["certs_der"][0], "AAECAwQ=");
    }

    #[test]
    fn kind_recognition() {
        assert_eq!(RimKind::recognise("96.00.5E.00.01"), Some(RimKind::Vbios));
        assert_eq!(RimKind::recognise("550.144.03"), Some(RimKind::Driver));
        assert_eq!(RimKind::recognise("575.32"), Some(RimKind::Driver));
        assert_eq!(RimKind::recognise("575"), None);
        assert_eq!(RimKind::recognise("96.00.5G.00.01"), None);
        assert_eq!(RimKind::recognise("1..2"), None);
    }

    #[test]
    fn each_error_kind_is_reachable() {
        let xml = sample();
        // Document: malformed XML, DTD.
        assert!(matches!(
            err(&xml[..xml.len() / 2]),
            ParseError::Document {
                field: "document",
                ..
            }
        ));
        assert!(matches!(
            err(&format!("<!DOCTYPE x>{xml}")),
            ParseError::Document { .. }
        ));
        // Invalid: not UTF-8, names the offset.
        let mut bad = xml.clone().into_bytes();
        bad[10] = 0xff;
        assert!(matches!(
            Rim::parse(&bad),
            Err(ParseError::Invalid {
                field: "document",
                offset: 10,
                ..
            })
        ));
        // Invalid: too large.
        assert!(matches!(
            Rim::parse(&vec![b' '; MAX_RIM_LEN + 1]),
            Err(ParseError::Invalid {
                field: "document",
                ..
            })
        ));
        // Unsupported: ns3 opaque-data attribute, unknown element.
        let ns3 = xml.replace(
            "size=\"48\"",
            &format!("size=\"48\" xmlns:ns3=\"{OPAQUE_DATA_NS}\" ns3:svn=\"1\""),
        );
        assert!(matches!(err(&ns3), ParseError::Unsupported { .. }));
        let link = xml.replace("<ns0:Payload>", "<ns0:Link href=\"x\"/><ns0:Payload>");
        assert!(matches!(err(&link), ParseError::Unsupported { .. }));
        // Invalid with the offset of the offending node.
        let dup = xml.replace(
            "<ns0:Payload>",
            "<ns0:Meta colloquialVersion=\"1.2\"/><ns0:Payload>",
        );
        let e = err(&dup);
        assert_eq!(e.field(), Some("Meta"));
        assert_eq!(e.offset(), dup.rfind("<ns0:Meta"));
    }

    #[test]
    fn structure_is_enforced() {
        let xml = sample();
        let cases: [(&str, String); 10] = [
            (
                "SoftwareIdentity",
                xml.replace("<SoftwareIdentity", "<Other")
                    .replace("</SoftwareIdentity", "</Other"),
            ),
            (
                "Meta",
                xml.replace(
                    &xml[xml.find("<ns0:Meta").unwrap()..xml.find("<ns0:Payload").unwrap()],
                    "",
                ),
            ),
            (
                "Entity",
                xml.replace(
                    "<ns0:Entity name=\"NVIDIA Corporation\" role=\"softwareCreator tagCreator\"/>",
                    "",
                ),
            ),
            (
                "SoftwareIdentity",
                xml.replace("<ns0:Payload>", "text<ns0:Payload>"),
            ),
            (
                "colloquialVersion",
                xml.replace("colloquialVersion=", "colloquial="),
            ),
            ("name", xml.replace("name=\"GH100\"", "")),
            ("corpus", xml.replace("corpus=\"false\"", "corpus=\"no\"")),
            (
                "SignatureValue",
                xml.replace(&STANDARD.encode([7u8; 96]), &STANDARD.encode([7u8; 95])),
            ),
            (
                "DigestValue",
                xml.replace(&STANDARD.encode([9u8; 48]), "!!"),
            ),
            (
                "Reference",
                xml.replace(
                    "<ds:DigestValue>",
                    "<ds:DigestMethod Algorithm=\"x\"/><ds:DigestValue>",
                ),
            ),
        ];
        for (field, doc) in cases {
            let e = err(&doc);
            assert_eq!(e.field(), Some(field), "{e}");
        }
        let two_refs = xml.replace(
            "</ds:SignedInfo>",
            "<ds:Reference URI=\"#x\"/></ds:SignedInfo>",
        );
        assert_eq!(err(&two_refs).field(), Some("SignedInfo"));
        let object = xml.replace("</ds:Signature>", "<ds:Object/></ds:Signature>");
        assert!(matches!(err(&object), ParseError::Unsupported { .. }));
        let xpath = xml.replace(
            &format!("<ds:Transform Algorithm=\"{ALG_ENVELOPED_SIGNATURE}\"/>"),
            "<ds:Transform Algorithm=\"xpath\"><ds:XPath>1</ds:XPath></ds:Transform>",
        );
        assert!(matches!(err(&xpath), ParseError::Unsupported { .. }));
    }

    #[test]
    fn resources_are_checked() {
        let res = |attrs: &str| {
            err(&rim_with(
                "",
                &format!("<ns0:Resource type=\"Measurement\" {attrs}/>"),
            ))
        };
        let ok = "index=\"1\" active=\"False\" alternatives=\"1\" ns2:Hash0=\"HASH\" name=\"n\" size=\"48\"";
        assert!(
            Rim::parse(
                rim_with("", &format!("<ns0:Resource type=\"Measurement\" {ok}/>")).as_bytes()
            )
            .is_ok()
        );
        let cases = [
            ("index", ok.replace("index=\"1\"", "index=\"64\"")),
            ("index", ok.replace("index=\"1\"", "index=\"01\"")),
            ("index", ok.replace("index=\"1\"", "index=\"-1\"")),
            ("index", ok.replace("index=\"1\" ", "")),
            ("active", ok.replace("False", "maybe")),
            (
                "alternatives",
                ok.replace("alternatives=\"1\"", "alternatives=\"2\""),
            ),
            ("alternatives", ok.replace("Hash0", "Hash1")),
            (
                "alternatives",
                ok.replace("alternatives=\"1\"", "alternatives=\"0\"")
                    .replace(" ns2:Hash0=\"HASH\"", ""),
            ),
            ("HashN", ok.replace("size=\"48\"", "size=\"32\"")),
            (
                "HashN",
                ok.replace("ns2:Hash0=\"HASH\"", "ns2:Hash0=\"zz\""),
            ),
            ("HashN", ok.replace("Hash0", "Hash00")),
            ("size", ok.replace(" size=\"48\"", "")),
            ("name", ok.replace(" name=\"n\"", "")),
        ];
        for (field, attrs) in cases {
            let e = res(&attrs);
            assert_eq!(e.field(), Some(field), "{attrs}: {e}");
        }
        assert!(matches!(
            res(&format!("{ok} extra=\"1\"")),
            ParseError::Unsupported { .. }
        ));
        assert!(matches!(
            res(&ok.replace("Hash0=", "Digest0=")),
            ParseError::Unsupported { .. }
        ));
        let other_type = rim_with("", &format!("<ns0:Resource type=\"File\" {ok}/>"));
        assert!(matches!(err(&other_type), ParseError::Unsupported { .. }));
        let dup = rim_with(
            "",
            &format!(
                "<ns0:Resource type=\"Measurement\" {ok}/><ns0:Resource type=\"Measurement\" {ok}/>"
            ),
        );
        assert!(
            err(&dup)
                .to_string()
                .contains("duplicate measurement index 1")
        );
    }

    #[test]
    fn xml_id_in_document_refused_and_lang_allowed() {
        let id = rim_with(" xml:id=\"m\"", "");
        assert!(matches!(err(&id), ParseError::Unsupported { .. }));
        let lang = rim_with(" xml:lang=\"en\"", "");
        assert!(Rim::parse(lang.as_bytes()).is_ok());
        let other_ns = rim_with(" xmlns:x=\"urn:x\" x:y=\"1\"", "");
        assert!(matches!(err(&other_ns), ParseError::Unsupported { .. }));
        let unknown_meta =
            Rim::parse(rim_with(" ns1:Extra=\"e\" note=\"n\"", "").as_bytes()).unwrap();
        assert_eq!(unknown_meta.meta.tcg.other["Extra"], "e");
        assert_eq!(unknown_meta.meta.other["note"], "n");
        let lang = Rim::parse(lang.as_bytes()).unwrap();
        assert_eq!(lang.meta.other["xml:lang"], "en");
    }

    #[test]
    fn fuzz_body_over_truncations_and_bit_flips() {
        let xml = sample().into_bytes();
        for len in 0..=xml.len() {
            fuzz_roundtrip(&xml[..len]);
        }
        for i in 0..xml.len() {
            for bit in 0..8 {
                let mut flipped = xml.clone();
                flipped[i] ^= 1 << bit;
                fuzz_roundtrip(&flipped);
            }
        }
    }
}
