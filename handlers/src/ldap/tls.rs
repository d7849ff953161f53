//! TLS for LDAP connections: the rustls client configuration (always on the aws-lc-rs provider) for a CA
//! file, the platform trust store, or the explicit insecure mode of throwaway test servers.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tracing::warn;

use crate::error::Error;
use crate::ldap::settings::LdapSettings;

/// The rustls configuration for the directory, always on the aws-lc-rs provider:
/// * `tls_insecure`: any certificate is accepted ([`InsecureAcceptAnyServerCertificate`]);
/// * `ca_cert`: only that PEM file's certificates are trusted, and the host name must match;
/// * neither: `None`, i.e. ldap3's default, the platform trust store (rustls-native-certs).
pub(crate) fn build_tls_config(
    settings: &LdapSettings,
) -> Result<Option<Arc<ClientConfig>>, Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Connection(format!("TLS setup: {e}")))?;
    if settings.tls_insecure {
        warn!(
            directory = %settings.name,
            "TlsInsecure is set: server certificates are NOT verified for this directory"
        );
        if settings.ca_cert.is_some() {
            warn!(directory = %settings.name, "CaCert is ignored because TlsInsecure is set");
        }
        let verifier = InsecureAcceptAnyServerCertificate {
            algorithms: provider.signature_verification_algorithms,
        };
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        return Ok(Some(Arc::new(config)));
    }
    if let Some(path) = &settings.ca_cert {
        let field = "CaCert";
        let pem = std::fs::read(path)
            .map_err(|e| Error::config(field, format!("cannot read {}: {e}", path.display())))?;
        let mut roots = RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| {
                Error::config(field, format!("{} is not valid PEM: {e}", path.display()))
            })?;
            roots.add(cert).map_err(|e| {
                Error::config(
                    field,
                    format!("{}: unusable certificate: {e}", path.display()),
                )
            })?;
        }
        if roots.is_empty() {
            return Err(Error::config(
                field,
                format!("{} holds no PEM certificate", path.display()),
            ));
        }
        let config = builder.with_root_certificates(roots).with_no_client_auth();
        return Ok(Some(Arc::new(config)));
    }
    // ldap3 builds its default configuration with `ClientConfig::builder()`, which needs a
    // process-wide provider when more than one is compiled in; make sure there is one.
    if CryptoProvider::get_default().is_none() {
        // Losing the race to another installer is fine: then there is a default.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
    Ok(None)
}

/// A certificate verifier that accepts ANY server certificate (handshake signatures are still
/// checked, so the peer must hold the key of the certificate it sent). Reachable only through the
/// explicit `TlsInsecure` setting, for throwaway test servers whose certificate has no usable name.
#[derive(Debug)]
struct InsecureAcceptAnyServerCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for InsecureAcceptAnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::Secret;

    #[test]
    fn tls_config_modes() {
        let mut s = LdapSettings::new(
            "x.local",
            vec!["ldaps://127.0.0.1".into()],
            "a@x.local",
            Secret::new("pw"),
        );
        assert!(build_tls_config(&s).unwrap().is_none());
        s.tls_insecure = true;
        assert!(build_tls_config(&s).unwrap().is_some());
        s.tls_insecure = false;
        s.ca_cert = Some("/nonexistent/ca.pem".into());
        match build_tls_config(&s) {
            Err(Error::Config { field, .. }) => assert_eq!(field, "CaCert"),
            other => panic!("expected a CaCert error, got {:?}", other.map(|_| ())),
        }
    }
}
