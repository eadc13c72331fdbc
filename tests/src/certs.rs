//! Test certificates made with the real `openssl` CLI: a private CA and
//! certificates it signs, for servers (127.0.0.1 and localhost) and clients.

use std::fs;
use std::path::Path;
use std::process::Command;

/// Runs `openssl ARGS` in `dir`; panics with its output on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is installed (scripts/test.sh installs it)");
    assert!(output.status.success(), "openssl {args:?}: {output:?}");
}

const EC_KEY: [&str; 5] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/// A CA (`ca.pem`, `ca.key`) and a server certificate for 127.0.0.1 and
/// localhost signed by it (`server.pem`, `server.key`), in `dir`.
pub fn make_certificates(dir: &Path) {
    let mut ca = vec!["req", "-x509", "-days", "2", "-keyout", "ca.key", "-out", "ca.pem"];
    ca.extend(EC_KEY);
    ca.extend([
        "-subj",
        "/CN=Lookout test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    sign(
        dir,
        "server",
        "localhost",
        "subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth\n",
    );
}

/// A client certificate (`NAME.pem`, `NAME.key`) for `cn`, signed by the CA
/// of [`make_certificates`].
pub fn make_client_certificate(dir: &Path, name: &str, cn: &str) {
    sign(
        dir,
        name,
        cn,
        &format!("subjectAltName = DNS:{cn}\nextendedKeyUsage = clientAuth\n"),
    );
}

fn sign(dir: &Path, name: &str, cn: &str, extensions: &str) {
    let (key, csr, pem, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    let subject = format!("/CN={cn}");
    let mut request = vec!["req", "-keyout", &key, "-out", &csr, "-subj", &subject];
    request.extend(EC_KEY);
    openssl(dir, &request);
    fs::write(
        dir.join(&ext),
        format!("basicConstraints = CA:FALSE\nkeyUsage = critical, digitalSignature\n{extensions}"),
    )
    .expect("can write the extensions file");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &pem,
            "-extfile",
            &ext,
        ],
    );
}
