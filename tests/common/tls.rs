//! Certificates made with openssl for the tests' TLS servers and clients.

use std::path::Path;
use std::process::Command;

use super::require_tool;

pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new(require_tool("openssl", "openssl"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`NAME-ca.pem`) and a certificate it signs (`NAME.pem`, `NAME.key`) for
/// localhost and 127.0.0.1, usable by a server or a client, valid for two days.
pub fn issue(dir: &Path, name: &str) {
    issue_for(dir, name, 2);
}

/// As [`issue`], the certificate valid for `days` (the CA for 30).
pub fn issue_for(dir: &Path, name: &str, days: u32) {
    let days = days.to_string();
    let ca = format!("{name}-ca");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
            "-days",
            "30",
            "-subj",
            &format!("/CN={ca}"),
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    std::fs::write(
        dir.join(format!("{name}.ext")),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            &days,
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}
