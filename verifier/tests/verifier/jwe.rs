//! JWE interop: our ciphertext opened by an independent implementation
//! (python `jwcrypto`), and its ciphertext opened by ours.

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64U;
use serde_json::Value;
use verifier::jwe::{self, Curve, FlattenedJwe, TeeSecretKey};

fn private_jwk(key: &TeeSecretKey) -> Value {
    let d = match key {
        TeeSecretKey::P256(k) => B64U.encode(k.to_bytes()),
        TeeSecretKey::P384(k) => B64U.encode(k.to_bytes()),
    };
    let mut jwk = key.public().to_jwk();
    jwk["d"] = Value::String(d);
    jwk
}

fn jwcrypto_available() -> bool {
    Command::new("python3")
        .args(["-c", "import jwcrypto"])
        .output()
        .is_ok_and(|o| o.status.success())
}

const DECRYPT: &str = r#"
import sys, json
from jwcrypto import jwk, jwe
k = jwk.JWK(**json.loads(sys.argv[1]))
t = jwe.JWE()
t.deserialize(sys.argv[2], key=k)
sys.stdout.write(t.payload.decode())
"#;

const ENCRYPT: &str = r#"
import sys, json
from jwcrypto import jwk, jwe
k = jwk.JWK(**json.loads(sys.argv[1]))
t = jwe.JWE(sys.argv[2].encode(), json.dumps({"alg": "ECDH-ES+A256KW", "enc": "A256GCM"}))
t.add_recipient(k)
sys.stdout.write(t.serialize(compact=True))
"#;

#[test]
fn jwcrypto_decrypts_ours_and_we_decrypt_jwcrypto() {
    if !jwcrypto_available() {
        println!("SKIPPED: python3 jwcrypto not available");
        return;
    }
    for curve in [Curve::P256, Curve::P384] {
        let key = TeeSecretKey::generate(curve);
        let ours = jwe::encrypt(&key.public_jwk(), b"secret for the TEE").unwrap();
        let out = Command::new("python3")
            .args(["-c", DECRYPT])
            .arg(private_jwk(&key).to_string())
            .arg(serde_json::to_string(&ours).unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"secret for the TEE", "{curve:?}");

        let out = Command::new("python3")
            .args(["-c", ENCRYPT])
            .arg(key.public().to_jwk().to_string())
            .arg("from jwcrypto")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Compact, so every header member is protected; then flattened.
        let compact = String::from_utf8(out.stdout).unwrap();
        let parts: Vec<&str> = compact.split('.').collect();
        assert_eq!(parts.len(), 5);
        let theirs = FlattenedJwe {
            protected: parts[0].to_owned(),
            encrypted_key: parts[1].to_owned(),
            iv: parts[2].to_owned(),
            ciphertext: parts[3].to_owned(),
            tag: parts[4].to_owned(),
            aad: None,
        };
        assert_eq!(jwe::decrypt(&theirs, &key).unwrap(), b"from jwcrypto");
    }
}
