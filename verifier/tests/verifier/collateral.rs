//! Collateral fetching and caching, with no network: URL construction pinned
//! for the spec's forms, 429 back-off with a fake transport and sleeper,
//! response handling per vendor, cache freshness at explicit times, and one
//! real reqwest round trip to a loopback server.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use der::{Decode as _, Encode as _};
use sha2::Digest as _;

use attestor::snp::certs::Product;
use attestor::snp::report::{Report, TcbVersion};
use verifier::appraise::x509::certs_from_pem_or_der;
use verifier::collateral::amd::{self, KdsKey, SnpSigner};
use verifier::collateral::intel::{self, PckCa, TcbUpdate};
use verifier::collateral::nvidia::{self, NvidiaRequest, OcspKey, RimId};
use verifier::collateral::{
    Backoff, CollateralCache, CollateralError, Endpoints, Expiry, Fetcher, HttpRequest,
    HttpResponse, Item, Lookup, ReqwestTransport, Sleeper, Source, Transport, TransportError,
};
use verifier::time::UnixTime;

use crate::testdata_dir;

// ---------------------------------------------------------------- fakes

type Handler = Box<dyn Fn(&HttpRequest) -> HttpResponse + Send + Sync>;

/// Answers with a handler and records every request.
struct FakeTransport {
    handler: Handler,
    log: Mutex<Vec<HttpRequest>>,
}

impl FakeTransport {
    fn new(handler: impl Fn(&HttpRequest) -> HttpResponse + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self {
            handler: Box::new(handler),
            log: Mutex::new(Vec::new()),
        })
    }
    fn urls(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.url.clone())
            .collect()
    }
}

impl Transport for FakeTransport {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        self.log.lock().unwrap().push(request.clone());
        Ok((self.handler)(request))
    }
}

/// Records the delays it was asked to wait, and never waits.
#[derive(Default)]
struct FakeSleeper(Mutex<Vec<Duration>>);

impl Sleeper for FakeSleeper {
    fn sleep(&self, duration: Duration) {
        self.0.lock().unwrap().push(duration);
    }
}

fn fetcher(transport: &Arc<FakeTransport>, sleeper: &Arc<FakeSleeper>) -> Fetcher {
    let mut f = Fetcher::new(Box::new(transport.clone()), Box::new(sleeper.clone()));
    f.backoff = Backoff {
        retries: 3,
        initial: Duration::from_secs(10),
        max_delay: Duration::from_secs(60),
    };
    f
}

fn td(rel: &str) -> Vec<u8> {
    let p = testdata_dir().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn at(s: &str) -> UnixTime {
    UnixTime::parse_rfc3339(s).unwrap()
}

/// Percent-encodes like the PCS does for issuer-chain headers.
fn url_encode(text: &[u8]) -> String {
    text.iter()
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

const TINFOIL: &str = "tdx/collateral_tinfoil_2026-01";
const FMSPC_90C06F: [u8; 6] = [0x90, 0xc0, 0x6f, 0, 0, 0];

// ---------------------------------------------------------------- URLs

#[test]
fn kds_urls_pinned_for_milan_genoa_turin() {
    let base = amd::KDS_BASE;
    let milan = Report::parse(&td("snp/milan_virtee_v2_report.bin")).unwrap();
    assert_eq!(
        amd::vcek_url(
            base,
            Product::Milan,
            milan.chip_id.as_bytes(),
            milan.reported_tcb
        ),
        "https://kdsintf.amd.com/vcek/v1/Milan/\
         d49554ec717f4e5b0fe6b143bcf0405bd7ae304727edf46603f2a76aef6a3abc\
         15d7af38db757039029f0efacfd08e244324884738c72b082e2f87a44d541eb6\
         ?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115"
    );
    let genoa = Report::parse(&td("snp/genoa_veraison_v3_report.bin")).unwrap();
    assert_eq!(
        amd::vcek_url(
            base,
            Product::Genoa,
            genoa.chip_id.as_bytes(),
            genoa.reported_tcb
        ),
        "https://kdsintf.amd.com/vcek/v1/Genoa/\
         7b1584c94c7a426164b2db1198903db0685b7f5fdabdf42d4da981b0de521d1d\
         5d5d8a91932bbbc1b13f5d5cae45a7304657d9a9d01c50c435670f0562a5970b\
         ?blSPL=10&teeSPL=00&snpSPL=23&ucodeSPL=84"
    );
    // Turin: hwid8 (first 8 bytes of CHIP_ID) and fmcSPL first.
    let turin = Report::parse(&td("snp/turin_oak_v5_report.bin")).unwrap();
    assert_eq!(
        amd::vcek_url(
            base,
            Product::Turin,
            turin.chip_id.as_bytes(),
            turin.reported_tcb
        ),
        "https://kdsintf.amd.com/vcek/v1/Turin/3b42092f69c656d3\
         ?fmcSPL=00&blSPL=01&teeSPL=00&snpSPL=02&ucodeSPL=71"
    );
    assert_eq!(
        amd::cert_chain_url(base, Product::Genoa, KdsKey::Vcek),
        "https://kdsintf.amd.com/vcek/v1/Genoa/cert_chain"
    );
    assert_eq!(
        amd::cert_chain_url(base, Product::Milan, KdsKey::Vlek),
        "https://kdsintf.amd.com/vlek/v1/Milan/cert_chain"
    );
    assert_eq!(
        amd::crl_url(base, Product::Turin, KdsKey::Vcek),
        "https://kdsintf.amd.com/vcek/v1/Turin/crl"
    );
    assert_eq!(
        amd::crl_url(base, Product::Milan, KdsKey::Vlek),
        "https://kdsintf.amd.com/vlek/v1/Milan/crl"
    );
    // Cache names: the KDS hwid and the raw TCB.
    assert_eq!(
        Item::vcek(Product::Turin, turin.chip_id.as_bytes(), turin.reported_tcb).rel_path(),
        std::path::Path::new("amd/Turin/vcek_3b42092f69c656d3_4700000002000100.der")
    );
    assert!(matches!(
        SnpSigner::from_report(&milan).unwrap(),
        SnpSigner::Vcek { .. }
    ));
    let vlek = Report::parse(&td("snp/milan_aws_vlek_v3_report.bin")).unwrap();
    assert_eq!(SnpSigner::from_report(&vlek).unwrap(), SnpSigner::Vlek);
}

#[test]
fn pcs_urls_pinned() {
    let base = intel::PCS_BASE;
    assert_eq!(
        intel::tcb_info_url(base, &FMSPC_90C06F, TcbUpdate::Standard),
        "https://api.trustedservices.intel.com/tdx/certification/v4/tcb?fmspc=90C06F000000&update=standard"
    );
    assert_eq!(
        intel::tcb_info_url(base, &FMSPC_90C06F, TcbUpdate::Early),
        "https://api.trustedservices.intel.com/tdx/certification/v4/tcb?fmspc=90C06F000000&update=early"
    );
    assert_eq!(
        intel::tcb_info_url(base, &FMSPC_90C06F, TcbUpdate::Number(18)),
        "https://api.trustedservices.intel.com/tdx/certification/v4/tcb?fmspc=90C06F000000&tcbEvaluationDataNumber=18"
    );
    assert_eq!(
        intel::qe_identity_url(base, TcbUpdate::Standard),
        "https://api.trustedservices.intel.com/tdx/certification/v4/qe/identity?update=standard"
    );
    assert_eq!(
        intel::pck_crl_url(base, PckCa::Platform),
        "https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=platform&encoding=der"
    );
    assert_eq!(
        intel::pck_crl_url(base, PckCa::Processor),
        "https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=processor&encoding=der"
    );
    assert_eq!(
        intel::ROOT_CA_CRL_URL,
        "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
    );
    assert_eq!(
        intel::fmspc_from_quote(&td("tdx/90c06f_gotdx_v5_quote.bin")).unwrap(),
        FMSPC_90C06F
    );
    assert_eq!(
        intel::fmspc_from_quote(&td("tdx/00a06d08_trustee_v4_quote.bin")).unwrap(),
        [0x00, 0xa0, 0x6d, 0x08, 0, 0]
    );
}

#[test]
fn nvidia_urls_and_rim_ids_pinned() {
    let id = RimId::new("NV_GPU_DRIVER_GH100_550.144.03").unwrap();
    assert_eq!(
        nvidia::rim_url(nvidia::RIM_BASE, &id),
        "https://rim.attestation.nvidia.com/v1/rim/NV_GPU_DRIVER_GH100_550.144.03"
    );
    assert_eq!(nvidia::OCSP_URL, "https://ocsp.ndis.nvidia.com");
    let ids = nvidia::rim_ids_from_report(
        &td("nvidia/h100_nvat_535_report.bin"),
        attestor::nvidia::rim::RimArch::Hopper,
    )
    .unwrap();
    let ids: Vec<&str> = ids.iter().map(RimId::as_str).collect();
    assert_eq!(
        ids,
        [
            "NV_GPU_DRIVER_GH100_535.86.09",
            "NV_GPU_VBIOS_1010_0200_882_96005E0001"
        ]
    );
    for bad in [
        "",
        "../etc/passwd",
        ".hidden",
        "a/b",
        "a b",
        &"x".repeat(129),
    ] {
        assert!(
            matches!(RimId::new(bad), Err(CollateralError::BadArgument { .. })),
            "{bad:?}"
        );
    }
}

// ---------------------------------------------------------------- back-off

#[test]
fn rate_limit_backs_off_then_succeeds() {
    let calls = Arc::new(Mutex::new(0u32));
    let c = calls.clone();
    let t = FakeTransport::new(move |_| {
        let mut n = c.lock().unwrap();
        *n += 1;
        match *n {
            1 => HttpResponse::new(429, "slow down").with_header("Retry-After", "7"),
            2 => HttpResponse::new(429, ""),
            3 => HttpResponse::new(503, ""),
            _ => HttpResponse::new(200, "ok"),
        }
    });
    let s = Arc::new(FakeSleeper::default());
    let f = fetcher(&t, &s);
    let r = f.send(&HttpRequest::get("https://kds.test/x")).unwrap();
    assert_eq!(r.body, b"ok");
    // Retry-After honoured, then the doubling schedule (10 s, 20 s).
    assert_eq!(
        *s.0.lock().unwrap(),
        [7, 20, 40].map(Duration::from_secs).to_vec()
    );
    assert_eq!(t.urls().len(), 4);
}

#[test]
fn rate_limit_gives_up_after_retries_and_other_errors_are_not_retried() {
    let t = FakeTransport::new(|_| HttpResponse::new(429, "").with_header("retry-after", "3600"));
    let s = Arc::new(FakeSleeper::default());
    let f = fetcher(&t, &s);
    let err = f.send(&HttpRequest::get("https://kds.test/x")).unwrap_err();
    assert!(
        matches!(err, CollateralError::RateLimited { attempts: 4, .. }),
        "{err}"
    );
    // Three waits, each capped at max_delay.
    assert_eq!(*s.0.lock().unwrap(), vec![Duration::from_secs(60); 3]);

    for status in [400, 404, 500] {
        let t = FakeTransport::new(move |_| HttpResponse::new(status, ""));
        let s = Arc::new(FakeSleeper::default());
        let err = fetcher(&t, &s)
            .send(&HttpRequest::get("https://kds.test/y"))
            .unwrap_err();
        assert!(
            matches!(err, CollateralError::Status { status: s2, .. } if s2 == status),
            "{err}"
        );
        assert!(s.0.lock().unwrap().is_empty());
        assert_eq!(t.urls().len(), 1);
    }
}

// ---------------------------------------------------------------- AMD

fn amd_chain_pem() -> Vec<u8> {
    let mut pem = td("roots/amd_milan_ask.pem");
    pem.extend(td("roots/amd_milan_ark.pem"));
    pem
}

/// A KDS stand-in. There is no AMD CRL in testdata; any DER CRL with a
/// nextUpdate exercises the same code (signatures are checked at appraisal).
fn kds_handler(req: &HttpRequest) -> HttpResponse {
    let path = req.url.split_once("://").unwrap().1;
    let path = &path[path.find('/').unwrap()..];
    if path.starts_with("/vcek/v1/Milan/d49554ec") && path.contains("?blSPL=03&teeSPL=00") {
        HttpResponse::new(200, td("snp/milan_virtee_v2_vcek.der"))
    } else if path == "/vcek/v1/Milan/cert_chain" {
        HttpResponse::new(200, amd_chain_pem())
    } else if path == "/vcek/v1/Milan/crl" {
        HttpResponse::new(200, td(&format!("{TINFOIL}/root_ca_crl.der")))
    } else {
        HttpResponse::new(404, "")
    }
}

#[test]
fn snp_fetch_writes_layout_then_serves_from_cache() {
    let dir = tmp();
    let cache = CollateralCache::new(dir.path());
    let t = FakeTransport::new(kds_handler);
    let s = Arc::new(FakeSleeper::default());
    let mut f = fetcher(&t, &s);
    f.endpoints.amd_kds = "https://kds.test/".to_owned();
    let report = Report::parse(&td("snp/milan_virtee_v2_report.bin")).unwrap();
    let signer = SnpSigner::from_report(&report).unwrap();
    let now = at("2025-09-01T00:00:00Z");

    let got = amd::fetch_snp(&f, &cache, Product::Milan, &signer, now).unwrap();
    assert!(got.iter().all(|g| g.source == Source::Fetched));
    assert_eq!(t.urls().len(), 3);
    let vcek_item = Item::vcek(
        Product::Milan,
        report.chip_id.as_bytes(),
        report.reported_tcb,
    );
    assert_eq!(
        vcek_item.rel_path(),
        std::path::Path::new(
            "amd/Milan/vcek_d49554ec717f4e5b0fe6b143bcf0405bd7ae304727edf46603f2a76aef6a3abc\
             15d7af38db757039029f0efacfd08e244324884738c72b082e2f87a44d541eb6_7308000000000003.der"
        )
    );
    assert_eq!(
        std::fs::read(dir.path().join(vcek_item.rel_path())).unwrap(),
        td("snp/milan_virtee_v2_vcek.der")
    );
    assert_eq!(
        std::fs::read(dir.path().join("amd/Milan/cert_chain.pem")).unwrap(),
        amd_chain_pem()
    );
    assert!(dir.path().join("amd/Milan/crl.der").is_file());
    assert_eq!(got[0].expires, Expiry::Never);
    assert_eq!(got[2].expires, Expiry::At(at("2026-04-03T11:21:57Z")));

    // Second run: everything fresh, nothing fetched.
    let again = amd::fetch_snp(&f, &cache, Product::Milan, &signer, now).unwrap();
    assert!(again.iter().all(|g| g.source == Source::Cached));
    assert_eq!(t.urls().len(), 3);

    // After the CRL's nextUpdate only the CRL is fetched again, and the
    // stand-in KDS still serves the old one: refused as stale, not cached.
    let later = at("2026-05-01T00:00:00Z");
    let err = amd::fetch_snp(&f, &cache, Product::Milan, &signer, later).unwrap_err();
    assert!(matches!(err, CollateralError::Stale { .. }), "{err}");
    assert_eq!(t.urls().len(), 4);
    assert!(t.urls()[3].ends_with("/vcek/v1/Milan/crl"));
    let crl = Item::AmdCrl {
        product: Product::Milan,
        key: KdsKey::Vcek,
    };
    assert_eq!(cache.get(&crl, later).unwrap(), None);
    // The VCEK never expires from the cache.
    assert!(
        cache
            .get(&vcek_item, at("2100-01-01T00:00:00Z"))
            .unwrap()
            .is_some()
    );
}

#[test]
fn snp_fetch_refuses_wrong_documents_and_writes_nothing() {
    let dir = tmp();
    let cache = CollateralCache::new(dir.path());
    let t = FakeTransport::new(|_| HttpResponse::new(200, "<html>not a cert</html>"));
    let s = Arc::new(FakeSleeper::default());
    let f = fetcher(&t, &s);
    let report = Report::parse(&td("snp/milan_virtee_v2_report.bin")).unwrap();
    let signer = SnpSigner::from_report(&report).unwrap();
    let err = amd::fetch_snp(
        &f,
        &cache,
        Product::Milan,
        &signer,
        at("2025-09-01T00:00:00Z"),
    )
    .unwrap_err();
    assert!(matches!(err, CollateralError::Invalid { .. }), "{err}");
    assert!(!dir.path().join("amd").exists());
}

// ---------------------------------------------------------------- Intel

/// A PCS stand-in serving the tinfoil capture, issuer chains URL-encoded in
/// headers as the PCS sends them.
fn pcs_handler(root_crl_hex: bool) -> impl Fn(&HttpRequest) -> HttpResponse + Send + Sync {
    move |req: &HttpRequest| {
        let file = |n: &str| td(&format!("{TINFOIL}/{n}"));
        let chain = |n: &str| url_encode(&file(n));
        let u = req.url.as_str();
        if u.contains("/tdx/certification/v4/tcb?fmspc=90C06F000000&update=standard") {
            HttpResponse::new(200, file("tcb_info_90c06f000000.json"))
                .with_header("TCB-Info-Issuer-Chain", &chain("tcb_signing_chain.pem"))
        } else if u.contains("/tdx/certification/v4/qe/identity?update=standard") {
            HttpResponse::new(200, file("qe_identity.json")).with_header(
                "SGX-Enclave-Identity-Issuer-Chain",
                &chain("tcb_signing_chain.pem"),
            )
        } else if u.contains("pckcrl?ca=platform&encoding=der") {
            HttpResponse::new(200, file("pck_crl_platform.der")).with_header(
                "SGX-PCK-CRL-Issuer-Chain",
                &chain("pck_crl_platform_chain.pem"),
            )
        } else if u.contains("pckcrl?ca=processor&encoding=der") {
            HttpResponse::new(200, file("pck_crl_processor.der")).with_header(
                "SGX-PCK-CRL-Issuer-Chain",
                &chain("pck_crl_processor_chain.pem"),
            )
        } else if u.ends_with("/rootcacrl") || u.ends_with("IntelSGXRootCA.der") {
            let der = file("root_ca_crl.der");
            HttpResponse::new(
                200,
                if root_crl_hex {
                    hex::encode(der).into_bytes()
                } else {
                    der
                },
            )
        } else {
            HttpResponse::new(404, "")
        }
    }
}

fn pcs_fetcher(t: &Arc<FakeTransport>, s: &Arc<FakeSleeper>) -> Fetcher {
    fetcher(t, s).with_endpoints(Endpoints {
        intel_pcs: "https://pcs.test".to_owned(),
        intel_root_ca_crl: "https://pcs.test/sgx/certification/v4/rootcacrl".to_owned(),
        ..Endpoints::default()
    })
}

#[test]
fn tdx_fetch_reproduces_the_tinfoil_directory() {
    for hex_root_crl in [false, true] {
        let dir = tmp();
        let cache = CollateralCache::new(dir.path());
        let t = FakeTransport::new(pcs_handler(hex_root_crl));
        let s = Arc::new(FakeSleeper::default());
        let f = pcs_fetcher(&t, &s);
        let now = at("2026-02-01T00:00:00Z");
        let got = intel::fetch_tdx(&f, &cache, &FMSPC_90C06F, TcbUpdate::Standard, now).unwrap();
        assert_eq!(t.urls().len(), 5);
        assert!(got.iter().all(|g| g.source == Source::Fetched));
        // Same names, same bytes as the capture (chains URL-decoded exactly).
        for name in [
            "tcb_info_90c06f000000.json",
            "tcb_signing_chain.pem",
            "qe_identity.json",
            "pck_crl_platform.der",
            "pck_crl_platform_chain.pem",
            "pck_crl_processor.der",
            "pck_crl_processor_chain.pem",
            "root_ca_crl.der",
        ] {
            assert_eq!(
                std::fs::read(dir.path().join("intel").join(name)).unwrap(),
                td(&format!("{TINFOIL}/{name}")),
                "{name}"
            );
        }
        let tcb = Item::TcbInfo {
            fmspc: FMSPC_90C06F,
        };
        assert_eq!(
            cache.lookup(&tcb, now).unwrap(),
            Lookup::Fresh {
                bytes: td(&format!("{TINFOIL}/tcb_info_90c06f000000.json")),
                expires: Expiry::At(at("2026-02-11T15:46:45Z")),
            }
        );
        // Again: all fresh, no request.
        intel::fetch_tdx(&f, &cache, &FMSPC_90C06F, TcbUpdate::Standard, now).unwrap();
        assert_eq!(t.urls().len(), 5);
    }
}

#[test]
fn tdx_fetch_refuses_missing_chain_wrong_fmspc_and_stale_collateral() {
    let now = at("2026-02-01T00:00:00Z");
    let s = Arc::new(FakeSleeper::default());

    // No issuer-chain header: nothing written.
    let dir = tmp();
    let t = FakeTransport::new(|_| {
        HttpResponse::new(200, td(&format!("{TINFOIL}/tcb_info_90c06f000000.json")))
    });
    let err = intel::fetch_tdx(
        &pcs_fetcher(&t, &s),
        &CollateralCache::new(dir.path()),
        &FMSPC_90C06F,
        TcbUpdate::Standard,
        now,
    )
    .unwrap_err();
    assert!(err.to_string().contains("TCB-Info-Issuer-Chain"), "{err}");
    assert!(!dir.path().join("intel").exists());

    // TCB info for another FMSPC than asked.
    let dir = tmp();
    let t = FakeTransport::new(|_| {
        HttpResponse::new(200, td(&format!("{TINFOIL}/tcb_info_00a06d080000.json"))).with_header(
            "TCB-Info-Issuer-Chain",
            &url_encode(&td(&format!("{TINFOIL}/tcb_signing_chain.pem"))),
        )
    });
    let err = intel::fetch_tdx(
        &pcs_fetcher(&t, &s),
        &CollateralCache::new(dir.path()),
        &FMSPC_90C06F,
        TcbUpdate::Standard,
        now,
    )
    .unwrap_err();
    assert!(err.to_string().contains("00a06d080000"), "{err}");
    assert!(!dir.path().join("intel").exists());

    // Served after its nextUpdate: stale, refused, not written.
    let dir = tmp();
    let t = FakeTransport::new(pcs_handler(false));
    let err = intel::fetch_tdx(
        &pcs_fetcher(&t, &s),
        &CollateralCache::new(dir.path()),
        &FMSPC_90C06F,
        TcbUpdate::Standard,
        at("2026-03-01T00:00:00Z"),
    )
    .unwrap_err();
    assert!(matches!(err, CollateralError::Stale { .. }), "{err}");
    assert!(!dir.path().join("intel").exists());
}

// ---------------------------------------------------------------- cache

fn cache_with_tinfoil() -> (tempfile::TempDir, CollateralCache) {
    let dir = tmp();
    let intel_dir = dir.path().join("intel");
    std::fs::create_dir_all(&intel_dir).unwrap();
    for entry in std::fs::read_dir(testdata_dir().join(TINFOIL)).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, intel_dir.join(p.file_name().unwrap())).unwrap();
    }
    let cache = CollateralCache::new(dir.path());
    (dir, cache)
}

#[test]
fn cache_reads_the_tinfoil_layout_and_never_serves_stale_items() {
    let (_dir, cache) = cache_with_tinfoil();
    let tcb = Item::TcbInfo {
        fmspc: FMSPC_90C06F,
    };
    // Served up to and including nextUpdate, never after.
    assert!(
        cache
            .get(&tcb, at("2026-02-11T15:46:45Z"))
            .unwrap()
            .is_some()
    );
    assert_eq!(cache.get(&tcb, at("2026-02-11T15:46:46Z")).unwrap(), None);
    assert_eq!(
        cache.lookup(&tcb, at("2026-03-01T00:00:00Z")).unwrap(),
        Lookup::Stale {
            expired: at("2026-02-11T15:46:45Z")
        }
    );
    let qe = Item::QeIdentity;
    assert!(
        cache
            .get(&qe, at("2026-02-11T16:03:13Z"))
            .unwrap()
            .is_some()
    );
    assert_eq!(cache.get(&qe, at("2026-02-11T16:03:14Z")).unwrap(), None);
    let crl = Item::PckCrl {
        ca: PckCa::Processor,
    };
    assert!(
        cache
            .get(&crl, at("2026-02-11T16:21:32Z"))
            .unwrap()
            .is_some()
    );
    assert_eq!(cache.get(&crl, at("2026-02-11T16:21:33Z")).unwrap(), None);
    assert!(
        cache
            .get(&Item::RootCaCrl, at("2026-04-03T11:21:57Z"))
            .unwrap()
            .is_some()
    );
    assert_eq!(
        cache
            .get(&Item::RootCaCrl, at("2026-04-03T11:21:58Z"))
            .unwrap(),
        None
    );
    // Chains: until the first certificate expires.
    assert!(
        cache
            .get(&Item::TcbSigningChain, at("2030-01-01T00:00:00Z"))
            .unwrap()
            .is_some()
    );
    assert_eq!(
        cache
            .get(&Item::TcbSigningChain, at("2033-01-01T00:00:00Z"))
            .unwrap(),
        None
    );
    assert!(
        cache
            .get(
                &Item::PckCrlChain {
                    ca: PckCa::Platform
                },
                at("2026-02-01T00:00:00Z")
            )
            .unwrap()
            .is_some()
    );
    // Missing.
    assert_eq!(
        cache
            .lookup(&Item::TcbInfo { fmspc: [0; 6] }, at("2026-02-01T00:00:00Z"))
            .unwrap(),
        Lookup::Missing
    );
}

#[test]
fn cache_put_is_atomic_validated_and_refuses_stale() {
    let dir = tmp();
    let cache = CollateralCache::new(dir.path());
    let tcb = Item::TcbInfo {
        fmspc: FMSPC_90C06F,
    };
    let doc = td(&format!("{TINFOIL}/tcb_info_90c06f000000.json"));
    // Stale at put time: refused, nothing written.
    let err = cache
        .put(&tcb, &doc, at("2026-02-12T00:00:00Z"))
        .unwrap_err();
    assert!(matches!(err, CollateralError::Stale { .. }), "{err}");
    assert!(!cache.path(&tcb).exists());
    // Garbage: refused.
    assert!(matches!(
        cache.put(&tcb, b"{}", at("2026-02-01T00:00:00Z")),
        Err(CollateralError::Invalid { .. })
    ));
    // Good: written whole, no temporary files left beside it.
    assert_eq!(
        cache.put(&tcb, &doc, at("2026-02-01T00:00:00Z")).unwrap(),
        Expiry::At(at("2026-02-11T15:46:45Z"))
    );
    assert_eq!(std::fs::read(cache.path(&tcb)).unwrap(), doc);
    // Overwrite replaces.
    let other = td(&format!("{TINFOIL}/tcb_info_00a06d080000.json"));
    let other_item = Item::TcbInfo {
        fmspc: [0x00, 0xa0, 0x6d, 0x08, 0, 0],
    };
    cache
        .put(&other_item, &other, at("2026-02-01T00:00:00Z"))
        .unwrap();
    cache.put(&tcb, &doc, at("2026-02-02T00:00:00Z")).unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.path().join("intel"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    assert_eq!(names.len(), 2);
    // A corrupted cached file is an error, never a silent miss or a hit.
    std::fs::write(cache.path(&tcb), b"{\"tcbInfo\":").unwrap();
    assert!(matches!(
        cache.get(&tcb, at("2026-02-01T00:00:00Z")),
        Err(CollateralError::Invalid { .. })
    ));
}

#[test]
fn cache_keeps_vceks_and_rims_forever() {
    let dir = tmp();
    let cache = CollateralCache::new(dir.path());
    let report = Report::parse(&td("snp/milan_virtee_v2_report.bin")).unwrap();
    let vcek = Item::vcek(
        Product::Milan,
        report.chip_id.as_bytes(),
        report.reported_tcb,
    );
    assert_eq!(
        cache
            .put(
                &vcek,
                &td("snp/milan_virtee_v2_vcek.der"),
                at("2025-09-01T00:00:00Z")
            )
            .unwrap(),
        Expiry::Never
    );
    // Even past the certificate's own notAfter: appraisal judges validity.
    assert!(
        cache
            .get(&vcek, at("2099-01-01T00:00:00Z"))
            .unwrap()
            .is_some()
    );
    assert!(
        cache
            .put(&vcek, b"junk", at("2025-09-01T00:00:00Z"))
            .is_err()
    );

    let rim = Item::Rim {
        id: RimId::new("NV_GPU_DRIVER_GH100_550.144.03").unwrap(),
    };
    cache
        .put(
            &rim,
            &td("nvidia/rim_driver_gh100_550.144.03.xml"),
            at("2025-01-01T00:00:00Z"),
        )
        .unwrap();
    assert_eq!(
        cache.path(&rim),
        dir.path()
            .join("nvidia/rim/NV_GPU_DRIVER_GH100_550.144.03.xml")
    );
    assert!(
        cache
            .get(&rim, at("2099-01-01T00:00:00Z"))
            .unwrap()
            .is_some()
    );
    let tcb_any = TcbVersion(0);
    let other = Item::vcek(Product::Genoa, &[0xab; 64], tcb_any);
    assert_eq!(cache.get(&other, at("2025-01-01T00:00:00Z")).unwrap(), None);
}

// ---------------------------------------------------------------- NVIDIA

fn rim_json(id: &str, xml: &[u8], sha: Option<String>) -> Vec<u8> {
    let sha = sha.unwrap_or_else(|| hex::encode(sha2::Sha256::digest(xml)));
    serde_json::json!({
        "id": id,
        "rim": base64::engine::general_purpose::STANDARD.encode(xml),
        "sha256": sha,
        "request_id": "r-1",
        "rim_format": "TCG"
    })
    .to_string()
    .into_bytes()
}

#[test]
fn rim_responses_are_checked() {
    let id = RimId::new("NV_GPU_DRIVER_GH100_550.144.03").unwrap();
    let xml = td("nvidia/rim_driver_gh100_550.144.03.xml");
    assert_eq!(
        nvidia::rim_from_response(&id, &rim_json(id.as_str(), &xml, None)).unwrap(),
        xml
    );
    let cases: [(&str, Vec<u8>); 5] = [
        ("id", rim_json("NV_GPU_DRIVER_GH100_535.86.09", &xml, None)),
        ("sha256", rim_json(id.as_str(), &xml, Some("00".repeat(32)))),
        ("sha256", rim_json(id.as_str(), &xml, Some("zz".to_owned()))),
        ("nvidia rim", rim_json(id.as_str(), b"<x/>", None)),
        (
            "base64",
            br#"{"id":"NV_GPU_DRIVER_GH100_550.144.03","rim":"%%%","sha256":"00"}"#.to_vec(),
        ),
    ];
    for (want, body) in cases {
        let err = nvidia::rim_from_response(&id, &body).unwrap_err();
        assert!(matches!(err, CollateralError::Invalid { .. }), "{err}");
        assert!(err.to_string().contains(want), "{want}: {err}");
    }
    // Missing sha256 field: refused.
    let body = br#"{"id":"NV_GPU_DRIVER_GH100_550.144.03","rim":"PHgvPg=="}"#;
    assert!(nvidia::rim_from_response(&id, body).is_err());
}

/// An unsigned stand-in OCSP response for the CertID in `request` (the cache
/// and fetch paths never check signatures; appraisal does).
fn ocsp_response_for(request_der: &[u8], next_update: Option<&str>) -> Vec<u8> {
    use x509_ocsp::*;
    let req = OcspRequest::from_der(request_der).unwrap();
    let cert_id = req.tbs_request.request_list[0].req_cert.clone();
    let gt = |s: &str| {
        OcspGeneralizedTime(
            der::asn1::GeneralizedTime::from_unix_duration(Duration::from_secs(at(s).0 as u64))
                .unwrap(),
        )
    };
    let basic = BasicOcspResponse {
        tbs_response_data: ResponseData {
            version: Version::V1,
            responder_id: ResponderId::ByKey(der::asn1::OctetString::new([7u8; 20]).unwrap()),
            produced_at: gt("2025-01-01T00:00:00Z"),
            responses: vec![SingleResponse {
                cert_id,
                cert_status: CertStatus::good(),
                this_update: gt("2025-01-01T00:00:00Z"),
                next_update: next_update.map(gt),
                single_extensions: None,
            }],
            response_extensions: None,
        },
        signature_algorithm: spki::AlgorithmIdentifierOwned {
            oid: der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3"),
            parameters: None,
        },
        signature: der::asn1::BitString::from_bytes(&[0u8; 8]).unwrap(),
        certs: None,
    };
    OcspResponse {
        response_status: OcspResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: nvidia::ID_PKIX_OCSP_BASIC,
            response: der::asn1::OctetString::new(basic.to_der().unwrap()).unwrap(),
        }),
    }
    .to_der()
    .unwrap()
}

#[test]
fn ocsp_request_names_the_certificate() {
    let chain = certs_from_pem_or_der(&td("nvidia/h100_nvtrust_550_chain.pem"), "chain").unwrap();
    let der = nvidia::ocsp_request(&chain[1], &chain[2]).unwrap();
    let req = x509_ocsp::OcspRequest::from_der(&der).unwrap();
    assert_eq!(req.tbs_request.request_list.len(), 1);
    let id = &req.tbs_request.request_list[0].req_cert;
    assert_eq!(id.hash_algorithm.oid, nvidia::ID_SHA384);
    assert_eq!(
        id.serial_number,
        chain[1].cert.tbs_certificate.serial_number
    );
    let key = OcspKey::for_cert(&chain[1], &chain[2]);
    assert!(key.matches(id));
    assert_eq!(
        id.issuer_key_hash.as_bytes(),
        &sha2::Sha384::digest(
            chain[2]
                .cert
                .tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes()
        )[..]
    );
    assert_eq!(
        id.issuer_name_hash.as_bytes(),
        &sha2::Sha384::digest(chain[2].cert.tbs_certificate.subject.to_der().unwrap())[..]
    );
    assert_eq!(OcspKey::from_file_stem(&key.file_stem()), Some(key));
    assert_eq!(OcspKey::from_file_stem("AB_01"), None);
}

#[test]
fn nvidia_fetch_rims_and_ocsp_then_cache_expiry() {
    let xml = td("nvidia/rim_driver_gh100_550.144.03.xml");
    let t = FakeTransport::new(move |req| {
        if req.url.starts_with("https://rim.test/v1/rim/") {
            let id = req.url.rsplit('/').next().unwrap();
            if id == "NV_GPU_DRIVER_GH100_550.144.03" {
                return HttpResponse::new(200, rim_json(id, &xml, None));
            }
            return HttpResponse::new(404, "");
        }
        assert_eq!(req.url, "https://ocsp.test");
        assert!(req.headers.contains(&(
            "Content-Type".to_owned(),
            "application/ocsp-request".to_owned()
        )));
        assert!(
            req.headers
                .contains(&("Authorization".to_owned(), "Bearer k3y".to_owned()))
        );
        HttpResponse::new(
            200,
            ocsp_response_for(&req.body, Some("2025-01-08T00:00:00Z")),
        )
    });
    let s = Arc::new(FakeSleeper::default());
    let mut f = fetcher(&t, &s).with_endpoints(Endpoints {
        nvidia_rim: "https://rim.test".to_owned(),
        nvidia_ocsp: "https://ocsp.test".to_owned(),
        ..Endpoints::default()
    });
    f.nvidia_service_key = Some("k3y".to_owned());
    let dir = tmp();
    let cache = CollateralCache::new(dir.path());
    let request = NvidiaRequest {
        rim_ids: vec![RimId::new("NV_GPU_DRIVER_GH100_550.144.03").unwrap()],
        device_chains: vec![td("nvidia/h100_nvtrust_550_chain.pem")],
        ocsp: true,
    };
    let now = at("2025-01-02T00:00:00Z");
    let got = nvidia::fetch_nvidia(&f, &cache, &request, now).unwrap();
    // 1 RIM + 3 RIM-chain OCSP (subjects 0..n-2 of 4) + 3 device OCSP (1..n-2 of 5).
    assert_eq!(got.len(), 7);
    assert_eq!(t.urls().len(), 7);
    assert_eq!(
        std::fs::read(
            dir.path()
                .join("nvidia/rim/NV_GPU_DRIVER_GH100_550.144.03.xml")
        )
        .unwrap(),
        td("nvidia/rim_driver_gh100_550.144.03.xml")
    );
    assert_eq!(cache.ocsp_responses(now).unwrap().len(), 6);
    // The device leaf (index 0) and root are never queried.
    let chain = certs_from_pem_or_der(&td("nvidia/h100_nvtrust_550_chain.pem"), "c").unwrap();
    let leaf = Item::Ocsp {
        key: OcspKey::for_cert(&chain[0], &chain[1]),
    };
    assert_eq!(cache.lookup(&leaf, now).unwrap(), Lookup::Missing);
    let brom = Item::Ocsp {
        key: OcspKey::for_cert(&chain[1], &chain[2]),
    };
    assert!(
        cache
            .get(&brom, at("2025-01-08T00:00:00Z"))
            .unwrap()
            .is_some()
    );
    // Past nextUpdate: no longer served.
    assert_eq!(cache.get(&brom, at("2025-01-08T00:00:01Z")).unwrap(), None);
    assert!(
        cache
            .ocsp_responses(at("2025-01-09T00:00:00Z"))
            .unwrap()
            .is_empty()
    );
    // A second fetch while fresh sends nothing.
    nvidia::fetch_nvidia(&f, &cache, &request, now).unwrap();
    assert_eq!(t.urls().len(), 7);
    // Unknown RIM id: the service's 404 surfaces.
    let missing = NvidiaRequest {
        rim_ids: vec![RimId::new("NV_GPU_DRIVER_GH100_1.2.3").unwrap()],
        ..NvidiaRequest::default()
    };
    assert!(matches!(
        nvidia::fetch_nvidia(&f, &cache, &missing, now),
        Err(CollateralError::Status { status: 404, .. })
    ));
}

#[test]
fn ocsp_without_next_update_lives_one_hour() {
    let chain = certs_from_pem_or_der(&td("nvidia/h100_nvtrust_550_chain.pem"), "c").unwrap();
    let key = OcspKey::for_cert(&chain[2], &chain[3]);
    let resp = ocsp_response_for(&nvidia::ocsp_request(&chain[2], &chain[3]).unwrap(), None);
    let dir = tmp();
    let cache = CollateralCache::new(dir.path());
    let item = Item::Ocsp { key: key.clone() };
    assert_eq!(
        cache.put(&item, &resp, at("2025-01-01T00:10:00Z")).unwrap(),
        Expiry::At(at("2025-01-01T01:00:00Z"))
    );
    // A response for another certificate is not stored under this key.
    let other = Item::Ocsp {
        key: OcspKey::for_cert(&chain[1], &chain[2]),
    };
    assert!(matches!(
        cache.put(&other, &resp, at("2025-01-01T00:10:00Z")),
        Err(CollateralError::Invalid { .. })
    ));
}

// ---------------------------------------------------------------- loopback

/// Serves `max` requests on 127.0.0.1 (KDS-like paths), then stops; also
/// stops by itself after 20 s. Returns the base URL and the served paths.
fn kds_loopback(max: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut served = Vec::new();
        let mut first_vcek = true;
        while served.len() < max && Instant::now() < deadline {
            let mut stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                Err(e) => panic!("accept: {e}"),
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let path = head.split(' ').nth(1).unwrap_or("").to_owned();
            let (status, extra, body) = if path.starts_with("/vcek/v1/Milan/d49554ec") {
                if std::mem::take(&mut first_vcek) {
                    ("429 Too Many Requests", "Retry-After: 1\r\n", Vec::new())
                } else {
                    ("200 OK", "", td("snp/milan_virtee_v2_vcek.der"))
                }
            } else if path == "/vcek/v1/Milan/cert_chain" {
                ("200 OK", "", amd_chain_pem())
            } else if path == "/vcek/v1/Milan/crl" {
                ("200 OK", "", td(&format!("{TINFOIL}/root_ca_crl.der")))
            } else {
                ("404 Not Found", "", Vec::new())
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
            served.push(path);
        }
        served
    });
    (base, handle)
}

#[test]
fn loopback_kds_through_real_reqwest_transport() {
    let (base, server) = kds_loopback(4);
    let s = Arc::new(FakeSleeper::default());
    let mut f = Fetcher::new(
        Box::new(ReqwestTransport::danger_plain_http().unwrap()),
        Box::new(s.clone()),
    );
    f.endpoints.amd_kds = base;
    let dir = tmp();
    let cache = CollateralCache::new(dir.path());
    let report = Report::parse(&td("snp/milan_virtee_v2_report.bin")).unwrap();
    let signer = SnpSigner::from_report(&report).unwrap();
    let got = amd::fetch_snp(
        &f,
        &cache,
        Product::Milan,
        &signer,
        at("2025-09-01T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(got.len(), 3);
    let served = server.join().unwrap();
    assert_eq!(served.len(), 4);
    assert!(served[0].ends_with("?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115"));
    assert_eq!(served[0], served[1]);
    assert_eq!(*s.0.lock().unwrap(), vec![Duration::from_secs(1)]);
    let vcek = Item::vcek(
        Product::Milan,
        report.chip_id.as_bytes(),
        report.reported_tcb,
    );
    assert_eq!(
        cache
            .get(&vcek, at("2025-09-01T00:00:00Z"))
            .unwrap()
            .unwrap(),
        td("snp/milan_virtee_v2_vcek.der")
    );
}

#[test]
fn production_transport_refuses_plain_http() {
    // A live loopback listener: the HTTPS-only transport must refuse the
    // plain-http URL without ever connecting to it.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/vcek", listener.local_addr().unwrap());
    let t = ReqwestTransport::new().unwrap();
    assert!(t.send(&HttpRequest::get(url)).is_err());
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
}
