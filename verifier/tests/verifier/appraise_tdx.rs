//! TDX appraisal: every MANIFEST TDX capture at its suggested time, the
//! tamper matrix, simulated evidence under both kinds of roots, and CCEL replay.

use std::sync::OnceLock;

use attestor::sim::SimSeed;
use attestor::tdx::quote::{TdAttributes, TdReportData};
use attestor::tdx::simulate::{TdxSimParams, simulate};
use verifier::appraise::tdx::ccel::{ALG_SHA384, Event, EventDigest, EventLog, SpecIdEvent};
use verifier::appraise::tdx::{TdxClaims, TdxCollateral, TdxEvidence, TdxTcbStatus, appraise};
use verifier::denial::{Denial, DenialCode};
use verifier::time::UnixTime;
use verifier::trust::{RootsOrigin, TrustRoots};

use crate::testdata_dir;

fn at(s: &str) -> UnixTime {
    UnixTime::parse_rfc3339(s).unwrap()
}

fn read(rel: &str) -> Vec<u8> {
    let p = testdata_dir().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn collateral(rel: &str) -> TdxCollateral {
    TdxCollateral::from_path(&testdata_dir().join(rel)).unwrap()
}

fn vendor() -> TrustRoots {
    TrustRoots::vendor().unwrap()
}

fn simulated_roots() -> &'static TrustRoots {
    static ROOTS: OnceLock<TrustRoots> = OnceLock::new();
    ROOTS.get_or_init(|| TrustRoots::danger_simulated(&SimSeed::DEFAULT).unwrap())
}

fn evidence(quote: &[u8]) -> TdxEvidence<'_> {
    TdxEvidence {
        quote,
        cc_eventlog: None,
        expected_report_data: None,
    }
}

fn codes(denials: &[Denial]) -> Vec<DenialCode> {
    denials.iter().map(|d| d.code).collect()
}

fn accepted(r: Result<TdxClaims, Vec<Denial>>) -> TdxClaims {
    r.unwrap_or_else(|ds| {
        panic!(
            "denied: {}",
            ds.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        )
    })
}

const B0C06F: &str = "tdx/b0c06f_dcapqvl_v4_quote.bin";
const B0C06F_COLL: &str = "tdx/b0c06f_dcapqvl_collateral.json";
const TINFOIL: &str = "tdx/collateral_tinfoil_2026-01";

#[test]
fn b0c06f_v4_with_bundle_is_up_to_date() {
    let quote = read(B0C06F);
    let c = accepted(appraise(
        &evidence(&quote),
        &vendor(),
        Some(&collateral(B0C06F_COLL)),
        at("2025-07-01T00:00:00Z"),
    ));
    assert_eq!(c.tcb.status, TdxTcbStatus::UpToDate);
    assert_eq!(c.roots, RootsOrigin::Vendor);
    assert_eq!(c.quote_version, 4);
    assert_eq!(c.platform.fmspc.to_hex(), "b0c06f000000");
    assert_eq!(c.platform.pce_svn, 11);
    assert!(c.mr_td.to_hex().starts_with("91eb2b44d141d4ec"));
    assert!(
        c.report_data
            .to_hex()
            .starts_with("9a9d48e7f6799642d3d1b34e")
    );
    assert!(!c.debug);
    assert!(c.td_attributes.sept_ve_disable());
    assert!(c.tee_tcb_svn2.is_none());
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let j = serde_json::to_value(&c).unwrap();
    assert_eq!(j["tcb"]["status"], "UpToDate");
    assert_eq!(j["roots"], "vendor");
    assert_eq!(j["rtmrs"].as_array().unwrap().len(), 4);
}

#[test]
fn v5_td15_with_pcs_directory_is_up_to_date() {
    let quote = read("tdx/90c06f_gotdx_v5_quote.bin");
    let c = accepted(appraise(
        &evidence(&quote),
        &vendor(),
        Some(&collateral(TINFOIL)),
        at("2026-02-01T00:00:00Z"),
    ));
    assert_eq!(c.tcb.status, TdxTcbStatus::UpToDate);
    assert_eq!(c.quote_version, 5);
    assert_eq!(c.platform.fmspc.to_hex(), "90c06f000000");
    assert!(c.tee_tcb_svn2.is_some());
    assert!(c.mr_td.to_hex().starts_with("7348651a34b2d2d3"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn out_of_date_tcb_is_a_claim_with_a_warning() {
    let quote = read("tdx/00a06d08_trustee_v4_quote.bin");
    let c = accepted(appraise(
        &evidence(&quote),
        &vendor(),
        Some(&collateral(TINFOIL)),
        at("2026-02-01T00:00:00Z"),
    ));
    assert_eq!(c.tcb.status, TdxTcbStatus::OutOfDate);
    assert_eq!(c.platform.fmspc.to_hex(), "00a06d080000");
    assert!(
        c.warnings.iter().any(|w| w.contains("OutOfDate")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn signature_only_quote_without_collateral_is_collateral_missing() {
    let quote = read("tdx/sigonly_00806f05_azure_v4_quote.bin");
    let ds = appraise(
        &evidence(&quote),
        &vendor(),
        None,
        at("2025-01-01T00:00:00Z"),
    )
    .unwrap_err();
    assert_eq!(codes(&ds), [DenialCode::CollateralMissing]);
    let m = &ds[0].message;
    for fact in [
        "quote signature by the attestation key OK",
        "PCK chain to the pinned Intel root OK",
        "QE report signature by the PCK OK",
        "QE report binds the attestation key OK",
    ] {
        assert!(m.contains(fact), "{m}");
    }
}

#[test]
fn pcs_directory_without_the_fmspc_is_collateral_missing() {
    let quote = read("tdx/sigonly_00806f05_azure_v4_quote.bin");
    let ds = appraise(
        &evidence(&quote),
        &vendor(),
        Some(&collateral(TINFOIL)),
        at("2026-02-01T00:00:00Z"),
    )
    .unwrap_err();
    assert_eq!(codes(&ds), [DenialCode::CollateralMissing]);
    assert!(ds[0].message.contains("00806f050000"), "{}", ds[0]);
}

#[test]
fn outdated_platform_matches_no_tcb_level() {
    let quote = read("tdx/neg_90c06f_dcapqvl_outdated_v5_quote.bin");
    let ds = appraise(
        &evidence(&quote),
        &vendor(),
        Some(&collateral("tdx/90c06f_dcapqvl_outdated_collateral.json")),
        at("2026-03-01T00:00:00Z"),
    )
    .unwrap_err();
    assert_eq!(codes(&ds), [DenialCode::TcbLevelNotFound], "{ds:?}");
}

#[test]
fn collateral_for_another_platform_is_fmspc_mismatch() {
    let quote = read(B0C06F);
    let ds = appraise(
        &evidence(&quote),
        &vendor(),
        Some(&collateral("tdx/90c06f_dcapqvl_outdated_collateral.json")),
        at("2026-03-01T00:00:00Z"),
    )
    .unwrap_err();
    assert_eq!(codes(&ds), [DenialCode::FmspcMismatch], "{ds:?}");
}

#[test]
fn collateral_past_its_next_update_is_expired() {
    let quote = read(B0C06F);
    let ds = appraise(
        &evidence(&quote),
        &vendor(),
        Some(&collateral(B0C06F_COLL)),
        at("2025-08-01T00:00:00Z"),
    )
    .unwrap_err();
    assert_eq!(codes(&ds), [DenialCode::CollateralExpired], "{ds:?}");

    let quote = read("tdx/90c06f_gotdx_v5_quote.bin");
    let ds = appraise(
        &evidence(&quote),
        &vendor(),
        Some(&collateral(TINFOIL)),
        at("2026-03-01T00:00:00Z"),
    )
    .unwrap_err();
    assert_eq!(codes(&ds), [DenialCode::CollateralExpired], "{ds:?}");
}

#[test]
fn tampered_quotes_are_signature_invalid() {
    let quote = read(B0C06F);
    let coll = collateral(B0C06F_COLL);
    // header user data, TD report (MRTD, RTMR0, REPORTDATA), quote signature r and s.
    for (what, offset) in [
        ("header", 30usize),
        ("mrtd", 190),
        ("rtmr0", 380),
        ("report_data", 600),
        ("signature r", 640),
        ("signature s", 690),
    ] {
        let mut q = quote.clone();
        q[offset] ^= 0x01;
        let ds = appraise(
            &evidence(&q),
            &vendor(),
            Some(&coll),
            at("2025-07-01T00:00:00Z"),
        )
        .unwrap_err();
        assert_eq!(codes(&ds), [DenialCode::SignatureInvalid], "{what}: {ds:?}");
        // Without collateral the same failure is reported beside collateral_missing.
        let ds = appraise(&evidence(&q), &vendor(), None, at("2025-07-01T00:00:00Z")).unwrap_err();
        assert_eq!(
            codes(&ds),
            [DenialCode::SignatureInvalid, DenialCode::CollateralMissing],
            "{what}"
        );
        assert!(ds[1].message.contains("attestation key FAILED"));
    }
}

#[test]
fn truncated_quote_is_malformed() {
    let quote = read(B0C06F);
    let ds = appraise(
        &evidence(&quote[..700]),
        &vendor(),
        None,
        at("2025-07-01T00:00:00Z"),
    )
    .unwrap_err();
    assert_eq!(codes(&ds), [DenialCode::EvidenceMalformed]);
}

#[test]
fn report_data_binding_is_checked() {
    let quote = read(B0C06F);
    let mut ev = evidence(&quote);
    ev.expected_report_data = Some([0x11; 64]);
    let ds = appraise(
        &ev,
        &vendor(),
        Some(&collateral(B0C06F_COLL)),
        at("2025-07-01T00:00:00Z"),
    )
    .unwrap_err();
    assert_eq!(codes(&ds), [DenialCode::ReportDataMismatch]);
}

const SIM_NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn sim_now() -> UnixTime {
    UnixTime(i64::try_from(SIM_NOW).unwrap() + 86_400)
}

fn sim_quote(params: &TdxSimParams) -> (Vec<u8>, TdxCollateral) {
    let s = simulate(&SimSeed::DEFAULT, params, SIM_NOW).unwrap();
    let c = TdxCollateral::from_json(s.collateral_json.as_bytes()).unwrap();
    (s.quote, c)
}

#[test]
fn simulated_quote_needs_simulated_roots() {
    let params = TdxSimParams::new(TdReportData([7; 64]));
    let (quote, coll) = sim_quote(&params);
    let mut ev = evidence(&quote);
    ev.expected_report_data = Some([7; 64]);
    let c = accepted(appraise(&ev, simulated_roots(), Some(&coll), sim_now()));
    assert_eq!(c.roots, RootsOrigin::Simulated);
    assert_eq!(c.tcb.status, TdxTcbStatus::UpToDate);
    assert!(c.warnings.iter().any(|w| w.contains("simulator")));

    let ds = appraise(&ev, &vendor(), Some(&coll), sim_now()).unwrap_err();
    assert!(codes(&ds).contains(&DenialCode::ChainUntrusted), "{ds:?}");
}

#[test]
fn debug_td_is_accepted_with_claim_and_warning() {
    let mut params = TdxSimParams::new(TdReportData([1; 64]));
    params.td_attributes = TdAttributes(TdAttributes::SEPT_VE_DISABLE | TdAttributes::DEBUG);
    let (quote, coll) = sim_quote(&params);
    let c = accepted(appraise(
        &evidence(&quote),
        simulated_roots(),
        Some(&coll),
        sim_now(),
    ));
    assert!(c.debug);
    assert!(c.td_attributes.debug());
    assert!(
        c.warnings.iter().any(|w| w.contains("DEBUG")),
        "{:?}",
        c.warnings
    );
}

/// dcap-qvl refuses some TD attributes whatever it is told (here: no
/// SEPT_VE_DISABLE); that comes back as its own text under the fallback code.
#[test]
fn td_attributes_dcap_qvl_refuses_are_quote_verification_failed() {
    let mut params = TdxSimParams::new(TdReportData([3; 64]));
    params.td_attributes = TdAttributes(0);
    let (quote, coll) = sim_quote(&params);
    let ds = appraise(&evidence(&quote), simulated_roots(), Some(&coll), sim_now()).unwrap_err();
    assert_eq!(codes(&ds), [DenialCode::QuoteVerificationFailed]);
    assert!(ds[0].message.contains("SEPT_VE_DISABLE"), "{}", ds[0]);
}

fn event(mr_index: u32, event_type: u32, data: &[u8]) -> Event {
    use sha2::Digest as _;
    Event {
        mr_index,
        event_type,
        digests: vec![EventDigest {
            alg: ALG_SHA384,
            digest: sha2::Sha384::digest(data).to_vec(),
        }],
        data: data.to_vec(),
    }
}

#[test]
fn event_log_replays_to_the_quoted_rtmrs() {
    let log = EventLog {
        spec_id: SpecIdEvent::sha384_only(),
        events: vec![
            event(1, 0x8000_000A, b"TDVF configuration"),
            event(1, 0x0000_0004, &[0; 4]),
            event(2, 0x8000_0003, b"grub"),
            event(3, 0x0000_000D, b"console=ttyS0 root=/dev/vda1"),
            event(4, 0x8000_0007, b"agent v1"),
        ],
        padding: vec![0xFF; 32],
    };
    let bytes = log.to_bytes();
    let replay = log.replay().unwrap();
    let mut params = TdxSimParams::new(TdReportData([2; 64]));
    params.rtmrs = replay.rtmrs;
    let (quote, coll) = sim_quote(&params);

    let mut ev = evidence(&quote);
    ev.cc_eventlog = Some(&bytes);
    let c = accepted(appraise(&ev, simulated_roots(), Some(&coll), sim_now()));
    let el = c.event_log.expect("event log claims");
    assert_eq!(el.extends, [2, 1, 1, 1]);
    assert_eq!(el.events.len(), 5);
    assert_eq!(el.events[3].register, "RTMR2");
    assert_eq!(el.events[3].event_type_name, Some("EV_IPL"));

    // One edited event: the RTMR it feeds no longer matches, and says so.
    let mut edited = log.clone();
    edited.events[2] = event(2, 0x8000_0003, b"evil grub");
    let bytes = edited.to_bytes();
    ev.cc_eventlog = Some(&bytes);
    let ds = appraise(&ev, simulated_roots(), Some(&coll), sim_now()).unwrap_err();
    assert_eq!(codes(&ds), [DenialCode::EventLogMismatch]);
    let j = serde_json::to_value(&ds[0]).unwrap();
    assert_eq!(j["detail"]["field"], "rtmr1");
    assert_eq!(j["detail"]["expected"], replay.rtmrs[1].to_hex());

    // A truncated log is malformed.
    let bytes = log.to_bytes();
    ev.cc_eventlog = Some(&bytes[..bytes.len() - 60]);
    let ds = appraise(&ev, simulated_roots(), Some(&coll), sim_now()).unwrap_err();
    assert_eq!(codes(&ds), [DenialCode::EvidenceMalformed], "{ds:?}");

    // Zero RTMRs with a non-empty log: every extended RTMR mismatches.
    let (quote0, coll0) = sim_quote(&TdxSimParams::new(TdReportData([2; 64])));
    let mut ev0 = evidence(&quote0);
    let bytes = log.to_bytes();
    ev0.cc_eventlog = Some(&bytes);
    let ds = appraise(&ev0, simulated_roots(), Some(&coll0), sim_now()).unwrap_err();
    assert_eq!(codes(&ds), [DenialCode::EventLogMismatch; 4]);
}

#[test]
fn collateral_loaders_report_bad_input() {
    assert!(TdxCollateral::from_json(b"{}").is_err());
    let dir = testdata_dir().join("snp");
    assert!(TdxCollateral::from_path(&dir).is_err());
    match collateral(TINFOIL) {
        TdxCollateral::Pcs(p) => {
            assert_eq!(p.tcb_infos.len(), 2);
            assert_eq!(p.pck_crls.len(), 2);
            assert!(
                p.tcb_infos["90c06f000000"]
                    .body
                    .starts_with("{\"id\":\"TDX\"")
            );
        }
        TdxCollateral::Bundle(_) => panic!("a directory is PCS collateral"),
    }
}
