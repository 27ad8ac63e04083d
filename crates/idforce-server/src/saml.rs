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
        Box::new(xmlsec::XmlSecSaml::new())
    }
    #[cfg(not(feature = "saml-bearer"))]
    {
        Box::new(idforce_core::ports::NoSaml)
    }
}

#[cfg(feature = "saml-bearer")]
mod xmlsec {
    use async_trait::async_trait;
    use idforce_core::ports::{SamlAssertion, SamlRefusal, SamlVerifier};
    use quick_xml::events::Event;
    use quick_xml::name::{Namespace, ResolveResult};
    use quick_xml::reader::NsReader;
    use samael::crypto::{
        AllowedSignatureAlgorithm, CertificateDer, CryptoProvider, ReduceMode, XmlSec,
    };
    use samael::schema::Assertion;

    const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
    const SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
    const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
    /// The transforms of an enveloped assertion signature; xmlsec runs transforms before it
    /// checks the signature, so no other (XPath, XSLT, base64…) is let through.
    const TRANSFORMS: [&str; 2] = [
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        "http://www.w3.org/2001/10/xml-exc-c14n#",
    ];

    /// SHA-2 only: Salesforce also takes RSA-SHA1, which idforce refuses.
    const ALGORITHMS: [AllowedSignatureAlgorithm; 4] = [
        AllowedSignatureAlgorithm::RsaSha256,
        AllowedSignatureAlgorithm::RsaSha384,
        AllowedSignatureAlgorithm::RsaSha512,
        AllowedSignatureAlgorithm::EcdsaSha256,
    ];

    /// Verifies on the blocking threads, a few at a time (libxml and xmlsec are synchronous and
    /// the work is CPU-bound).
    pub struct XmlSecSaml {
        permits: tokio::sync::Semaphore,
    }

    impl XmlSecSaml {
        pub fn new() -> XmlSecSaml {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            XmlSecSaml {
                permits: tokio::sync::Semaphore::new(cores),
            }
        }
    }

    fn parse(xml: &str) -> Result<Assertion, SamlRefusal> {
        xml.parse::<Assertion>()
            .map_err(|e| SamlRefusal::Invalid(format!("not a SAML 2.0 Assertion: {e}")))
    }

    fn invalid(why: impl Into<String>) -> SamlRefusal {
        SamlRefusal::Invalid(why.into())
    }

    /// The only shape idforce hands to xmlsec: a `saml:Assertion` root carrying one enveloped
    /// signature of its own, whose one reference is `#<its ID>` with the enveloped-signature and
    /// exclusive c14n transforms; no comments, CDATA, processing instructions or DOCTYPE, no
    /// `Object`, `Manifest` or `RetrievalMethod`. Anything else could make xmlsec fetch a URI,
    /// run a costly transform, or verify something that is not the assertion, before any
    /// signature is checked. This checks the document's shape; the signature is xmlsec's.
    pub(super) fn check_profile(xml: &str) -> Result<(), String> {
        let mut reader = NsReader::from_str(xml);
        let (mut depth, mut events) = (0usize, 0usize);
        let mut root_id: Option<String> = None;
        let (mut signatures, mut references) = (0, 0);
        loop {
            let (ns, event) = reader
                .read_resolved_event()
                .map_err(|e| format!("not well-formed XML: {e}"))?;
            events += 1;
            let in_ns = |want: &str| matches!(ns, ResolveResult::Bound(Namespace(n)) if n == want);
            let (element, opens) = match &event {
                Event::Start(e) => (e, true),
                Event::Empty(e) => (e, false),
                Event::End(_) => {
                    depth = depth.saturating_sub(1);
                    continue;
                }
                Event::Decl(d) => {
                    if events != 1 {
                        return Err("an XML declaration that is not first".into());
                    }
                    if let Some(Ok(encoding)) = d.encoding()
                        && !encoding.eq_ignore_ascii_case("utf-8")
                    {
                        return Err("an encoding other than UTF-8".into());
                    }
                    continue;
                }
                Event::Comment(_) | Event::CData(_) | Event::PI(_) | Event::DocType(_) => {
                    return Err("a comment, CDATA, processing instruction or DOCTYPE".into());
                }
                Event::Eof => break,
                _ => continue,
            };
            let name = element.local_name();
            let attribute = |key: &str| -> Result<Option<String>, String> {
                element
                    .try_get_attribute(key)
                    .map(|a| a.map(|a| a.value.into_owned()))
                    .map_err(|e| format!("a bad attribute: {e}"))
            };
            if depth == 0 {
                if root_id.is_some() {
                    return Err("several root elements".into());
                }
                if !(in_ns(SAML) && name.as_ref() == "Assertion") {
                    return Err("a root element other than saml:Assertion".into());
                }
                root_id = Some(attribute("ID")?.ok_or("an Assertion without ID")?);
            }
            if in_ns(DSIG) {
                match name.as_ref() {
                    "Signature" if depth != 1 => {
                        return Err("a Signature that is not the Assertion's own".into());
                    }
                    "Signature" => signatures += 1,
                    "Reference" => {
                        references += 1;
                        let wanted = format!("#{}", root_id.as_deref().unwrap_or_default());
                        if attribute("URI")?.as_deref() != Some(wanted.as_str()) {
                            return Err("a Reference to something else than the Assertion".into());
                        }
                    }
                    "Transform" => {
                        let algorithm = attribute("Algorithm")?.unwrap_or_default();
                        if !TRANSFORMS.contains(&algorithm.as_str()) {
                            return Err(
                                "a Transform other than enveloped-signature and exclusive c14n"
                                    .into(),
                            );
                        }
                    }
                    "Object" | "Manifest" | "RetrievalMethod" => {
                        return Err("an Object, Manifest or RetrievalMethod".into());
                    }
                    _ => {}
                }
            }
            if opens {
                depth += 1;
            }
        }
        match (signatures, references) {
            (1, 1) => Ok(()),
            _ => Err(format!(
                "{signatures} signatures with {references} references, not one with one"
            )),
        }
    }

    /// Whether the root element is a SAML 2.0 `Assertion`.
    fn is_assertion(xml: &str) -> bool {
        let mut reader = NsReader::from_str(xml);
        loop {
            match reader.read_resolved_event() {
                Ok((ns, Event::Start(e) | Event::Empty(e))) => {
                    return matches!(ns, ResolveResult::Bound(Namespace(n)) if n == SAML)
                        && e.local_name().as_ref() == "Assertion";
                }
                Ok((_, Event::Eof)) | Err(_) => return false,
                Ok(_) => {}
            }
        }
    }

    /// Verifies, then reads what the signature covers (xmlsec's work: synchronous).
    pub(super) fn verify_now(
        xml: &str,
        certificate_der: &[u8],
    ) -> Result<SamlAssertion, SamlRefusal> {
        check_profile(xml)
            .map_err(|why| invalid(format!("outside the signature profile: {why}")))?;
        let certificate = CertificateDer::from(certificate_der.to_vec());
        let signed = XmlSec::reduce_xml_to_signed_with_allowed_algorithms(
            xml,
            &[certificate],
            ReduceMode::ValidateAndMarkNoAncestors,
            Some(&ALGORITHMS),
        )
        .map_err(|e| invalid(format!("not signed with the app's key: {e}")))?;
        // What remains is what was signed: it must be the Assertion itself.
        if !is_assertion(&signed) {
            return Err(invalid("the signed element is not the Assertion"));
        }
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
            issuer: a.issuer.value.clone().unwrap_or_default().trim().to_owned(),
            name_id: subject
                .and_then(|s| s.name_id.as_ref())
                .map(|n| n.value.trim().to_owned())
                .ok_or_else(|| invalid("an assertion without NameID"))?,
            audience_restrictions: conditions
                .and_then(|c| c.audience_restrictions.as_ref())
                .map(|r| r.iter().map(|r| r.audience.clone()).collect())
                .unwrap_or_default(),
            not_before: seconds(conditions.and_then(|c| c.not_before)),
            not_on_or_after: seconds(conditions.and_then(|c| c.not_on_or_after)),
            bearer,
        })
    }

    #[async_trait]
    impl SamlVerifier for XmlSecSaml {
        fn claimed_issuer(&self, xml: &str) -> Result<String, SamlRefusal> {
            parse(xml)?
                .issuer
                .value
                .map(|i| i.trim().to_owned())
                .ok_or_else(|| invalid("an assertion without Issuer"))
        }

        async fn verify(
            &self,
            xml: &str,
            certificate_der: &[u8],
        ) -> Result<SamlAssertion, SamlRefusal> {
            // The shape first, on this thread: a document xmlsec should not see never waits.
            check_profile(xml)
                .map_err(|why| invalid(format!("outside the signature profile: {why}")))?;
            let _permit = self
                .permits
                .acquire()
                .await
                .map_err(|_| invalid("the server is stopping"))?;
            let (xml, certificate) = (xml.to_owned(), certificate_der.to_vec());
            tokio::task::spawn_blocking(move || verify_now(&xml, &certificate))
                .await
                .map_err(|e| invalid(format!("the verification did not finish: {e}")))?
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
            assert_eq!(XmlSecSaml::new().claimed_issuer(&xml).unwrap(), "3MVG9app");
            let a = verify_now(&xml, &cert).unwrap();
            assert_eq!(
                (a.id.as_str(), a.issuer.as_str(), a.name_id.as_str()),
                ("_a1", "3MVG9app", "alice@acme.test")
            );
            assert_eq!(a.audience_restrictions, [["https://login.salesforce.com"]]);
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
                verify_now(&xml, &other),
                Err(SamlRefusal::Invalid(_))
            ));
            // The user changed after signing: refused.
            let tampered = xml.replace("alice@acme.test", "admin@acme.test");
            assert!(verify_now(&tampered, &cert).is_err());
            // Not signed at all: refused.
            let bare = unsigned("_a2", "3MVG9app", "alice@acme.test");
            assert!(verify_now(&bare, &cert).is_err());
        }

        fn refused(xml: &str) -> String {
            match verify_now(xml, &der(&fixture("jwt.crt"))) {
                Err(SamlRefusal::Invalid(why)) => why,
                other => panic!("expected a refusal, got {other:?}"),
            }
        }

        #[test]
        fn a_wrapped_assertion_is_refused_before_xmlsec_sees_it() {
            // The signed assertion moved inside an unsigned one that names another user.
            let signed = sign(&unsigned("_inner", "3MVG9app", "alice@acme.test"));
            // Without its XML declaration, to be nested.
            let body = match signed.trim_start().strip_prefix("<?xml") {
                Some(rest) => rest.split_once("?>").map_or("", |(_, b)| b).trim(),
                None => signed.trim(),
            };
            let outer = assertion_xml("_outer", "3MVG9app", "admin@acme.test", false).replace(
                "</saml:Assertion>",
                &format!("<saml:Advice>{body}</saml:Advice></saml:Assertion>"),
            );
            let said = refused(&outer);
            assert!(said.contains("not the Assertion's own"), "{said}");
            // Control: the signed one alone verifies.
            assert_eq!(
                verify_now(body, &der(&fixture("jwt.crt"))).unwrap().name_id,
                "alice@acme.test"
            );
        }

        #[test]
        fn documents_outside_the_profile_are_refused_before_xmlsec_sees_them() {
            let good = unsigned("_p1", "3MVG9app", "alice@acme.test");
            assert_eq!(check_profile(&good), Ok(()));
            let cases = [
                (
                    good.replace("URI=\"#_p1\"", "URI=\"http://127.0.0.1:9/x\""),
                    "Reference",
                ),
                (
                    good.replace("URI=\"#_p1\"", "URI=\"file:///dev/zero\""),
                    "Reference",
                ),
                (
                    good.replace(
                        "http://www.w3.org/2001/10/xml-exc-c14n#\"/></ds:Transforms>",
                        "http://www.w3.org/TR/1999/REC-xslt-19991116\"/></ds:Transforms>",
                    ),
                    "Transform",
                ),
                (
                    good.replace("alice@acme.test", "alice@acme.test<!---->.evil"),
                    "comment",
                ),
                (format!("<!DOCTYPE x [<!ENTITY a \"b\">]>{good}"), "DOCTYPE"),
                (
                    good.replace(
                        "</ds:SignedInfo>",
                        "</ds:SignedInfo><ds:Object>x</ds:Object>",
                    ),
                    "Object",
                ),
                (
                    format!(
                        "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\">{good}</samlp:Response>"
                    ),
                    "root element",
                ),
                (
                    assertion_xml("_p2", "3MVG9app", "alice@acme.test", false),
                    "0 signatures",
                ),
                (
                    format!("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{good}"),
                    "encoding",
                ),
            ];
            for (xml, why) in cases {
                let said = check_profile(&xml).unwrap_err();
                assert!(said.contains(why), "{why}: {said}");
                assert!(refused(&xml).contains("outside the signature profile"));
            }
        }
    }
}
