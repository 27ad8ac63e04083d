//! The SAML bearer assertion flow's XML signatures. With the `saml-bearer` feature, Debian's
//! xmlsec verifies them, through the samael crate; only what a signature covers is read
//! (samael's `ValidateAndMarkNoAncestors` reduction, its defence against signature wrapping),
//! and only SHA-2 signatures are taken. Without the feature, every assertion is refused as an
//! unsupported grant. idforce writes no XML-DSig of its own.

use idforce_core::ports::SamlVerifier;

/// The verifier this build has.
pub fn verifier() -> Box<dyn SamlVerifier> {
    #[cfg(feature = "saml-bearer")]
    {
        Box::new(xmlsec::XmlSecSaml)
    }
    #[cfg(not(feature = "saml-bearer"))]
    {
        Box::new(idforce_core::ports::NoSaml)
    }
}

#[cfg(feature = "saml-bearer")]
mod xmlsec {
    use idforce_core::ports::{SamlAssertion, SamlRefusal, SamlVerifier};
    use samael::crypto::{
        AllowedSignatureAlgorithm, CertificateDer, CryptoProvider, ReduceMode, XmlSec,
    };
    use samael::schema::Assertion;

    const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";

    /// SHA-2 only: Salesforce also takes RSA-SHA1, which idforce refuses.
    const ALGORITHMS: [AllowedSignatureAlgorithm; 4] = [
        AllowedSignatureAlgorithm::RsaSha256,
        AllowedSignatureAlgorithm::RsaSha384,
        AllowedSignatureAlgorithm::RsaSha512,
        AllowedSignatureAlgorithm::EcdsaSha256,
    ];

    pub struct XmlSecSaml;

    fn parse(xml: &str) -> Result<Assertion, SamlRefusal> {
        xml.parse::<Assertion>()
            .map_err(|e| SamlRefusal::Invalid(format!("not a SAML 2.0 Assertion: {e}")))
    }

    impl SamlVerifier for XmlSecSaml {
        fn claimed_issuer(&self, xml: &str) -> Result<String, SamlRefusal> {
            parse(xml)?
                .issuer
                .value
                .ok_or_else(|| SamlRefusal::Invalid("an assertion without Issuer".into()))
        }

        fn verify(&self, xml: &str, certificate_der: &[u8]) -> Result<SamlAssertion, SamlRefusal> {
            let certificate = CertificateDer::from(certificate_der.to_vec());
            let signed = XmlSec::reduce_xml_to_signed_with_allowed_algorithms(
                xml,
                &[certificate],
                ReduceMode::ValidateAndMarkNoAncestors,
                Some(&ALGORITHMS),
            )
            .map_err(|e| SamlRefusal::Invalid(format!("not signed with the app's key: {e}")))?;
            // What remains is what was signed: it must be the Assertion itself.
            let a = parse(&signed)?;
            let seconds = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.timestamp());
            let subject = a.subject.as_ref();
            let bearer = subject
                .and_then(|s| s.subject_confirmations.as_ref())
                .and_then(|all| all.iter().find(|c| c.method.as_deref() == Some(BEARER)))
                .map(|c| {
                    let data = c.subject_confirmation_data.as_ref();
                    (
                        data.and_then(|d| d.recipient.clone()),
                        seconds(data.and_then(|d| d.not_on_or_after)),
                    )
                });
            let conditions = a.conditions.as_ref();
            Ok(SamlAssertion {
                id: a.id.clone(),
                issuer: a.issuer.value.clone().unwrap_or_default(),
                name_id: subject
                    .and_then(|s| s.name_id.as_ref())
                    .map(|n| n.value.trim().to_owned())
                    .ok_or_else(|| SamlRefusal::Invalid("an assertion without NameID".into()))?,
                audiences: conditions
                    .and_then(|c| c.audience_restrictions.as_ref())
                    .map(|r| r.iter().flat_map(|r| r.audience.iter().cloned()).collect())
                    .unwrap_or_default(),
                not_before: seconds(conditions.and_then(|c| c.not_before)),
                not_on_or_after: seconds(conditions.and_then(|c| c.not_on_or_after)),
                bearer,
            })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn fixture(name: &str) -> String {
            let path = format!(
                "{}/../idforce/tests/fixtures/{name}",
                env!("CARGO_MANIFEST_DIR")
            );
            std::fs::read_to_string(path).unwrap()
        }

        fn der(pem: &str) -> Vec<u8> {
            use base64::Engine;
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap()
        }

        /// An assertion as Salesforce's sample has it, with an enveloped RSA-SHA256 signature
        /// template (SHA-256 digest) that xmlsec fills in.
        fn unsigned(id: &str, issuer: &str, name_id: &str) -> String {
            assertion_xml(id, issuer, name_id, true)
        }

        fn assertion_xml(id: &str, issuer: &str, name_id: &str, template: bool) -> String {
            let template = if template {
                format!(
                    r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue></ds:Signature>"##
                )
            } else {
                String::new()
            };
            format!(
                r##"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" IssueInstant="2026-12-07T10:00:00Z" Version="2.0"><saml:Issuer>{issuer}</saml:Issuer>{template}<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">{name_id}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="2026-12-07T10:05:00Z" Recipient="https://idforce.test/services/oauth2/token"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="2026-12-07T09:59:00Z" NotOnOrAfter="2026-12-07T10:05:00Z"><saml:AudienceRestriction><saml:Audience>https://login.salesforce.com</saml:Audience></saml:AudienceRestriction></saml:Conditions></saml:Assertion>"##
            )
        }

        fn sign(xml: &str) -> String {
            XmlSec::sign_xml(xml, &der(&fixture("jwt.key"))).expect("signed")
        }

        #[test]
        fn a_signed_assertion_is_read_and_a_tampered_one_refused() {
            let xml = sign(&unsigned("_a1", "3MVG9app", "alice@acme.test"));
            let cert = der(&fixture("jwt.crt"));
            assert_eq!(XmlSecSaml.claimed_issuer(&xml).unwrap(), "3MVG9app");
            let a = XmlSecSaml.verify(&xml, &cert).unwrap();
            assert_eq!(
                (a.id.as_str(), a.issuer.as_str(), a.name_id.as_str()),
                ("_a1", "3MVG9app", "alice@acme.test")
            );
            assert_eq!(a.audiences, ["https://login.salesforce.com"]);
            assert_eq!(
                a.bearer,
                Some((
                    Some("https://idforce.test/services/oauth2/token".into()),
                    Some(1_796_637_900)
                ))
            );
            assert_eq!(a.not_on_or_after, Some(1_796_637_900));

            // Another certificate: refused.
            let other = der(&fixture("other.crt"));
            assert!(matches!(
                XmlSecSaml.verify(&xml, &other),
                Err(SamlRefusal::Invalid(_))
            ));
            // The user changed after signing: refused.
            let tampered = xml.replace("alice@acme.test", "admin@acme.test");
            assert!(XmlSecSaml.verify(&tampered, &cert).is_err());
            // Not signed at all: refused.
            let bare = unsigned("_a2", "3MVG9app", "alice@acme.test");
            assert!(XmlSecSaml.verify(&bare, &cert).is_err());
        }

        #[test]
        fn a_wrapped_assertion_reads_only_what_was_signed() {
            // The signed assertion moved inside an unsigned one that names another user: the
            // outer one is not covered by the signature, so what is read is the signed one or
            // nothing.
            let signed = sign(&unsigned("_inner", "3MVG9app", "alice@acme.test"));
            let body = signed
                .trim_start_matches(|c| c != '<')
                .trim_start_matches("<?xml version=\"1.0\"?>")
                .trim();
            let outer = assertion_xml("_outer", "3MVG9app", "admin@acme.test", false).replace(
                "</saml:Assertion>",
                &format!("<saml:Advice>{body}</saml:Advice></saml:Assertion>"),
            );
            let cert = der(&fixture("jwt.crt"));
            match XmlSecSaml.verify(&outer, &cert) {
                Ok(a) => assert_eq!(a.name_id, "alice@acme.test"),
                Err(SamlRefusal::Invalid(_)) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
    }
}
