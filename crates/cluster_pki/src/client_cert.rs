//! DER encoding of client certificates.
//!
//! Kubernetes reads a client certificate's groups from its subject's Organization
//! attributes, one group each, so a user in several groups needs several O attributes.
//! rcgen keeps at most one attribute per type in a subject, so client certificates are
//! encoded here: a plain X.509 v3 leaf (ECDSA P-256 with SHA-256) whose issuer name is the
//! CA certificate's subject copied byte for byte, signed with the CA key.

use chrono::{Datelike, NaiveDate};
use rcgen::{KeyPair, PublicKeyData, SigningKey};
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const UTF8_STRING: u8 = 0x0c;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const BOOLEAN: u8 = 0x01;

/// 2.5.4.3 commonName
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
/// 2.5.4.10 organizationName
const OID_O: &[u8] = &[0x55, 0x04, 0x0a];
/// 1.2.840.10045.4.3.2 ecdsa-with-SHA256
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// 2.5.29.15 keyUsage
const OID_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
/// 2.5.29.37 extKeyUsage
const OID_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
/// 2.5.29.19 basicConstraints
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
/// 2.5.29.35 authorityKeyIdentifier
const OID_AKI: &[u8] = &[0x55, 0x1d, 0x23];
/// 1.3.6.1.5.5.7.3.2 id-kp-clientAuth
const OID_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(SEQUENCE, &parts.concat())
}

fn time(d: NaiveDate) -> Vec<u8> {
    // RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
    if d.year() < 2050 {
        let s = format!("{:02}{:02}{:02}000000Z", d.year() % 100, d.month(), d.day());
        tlv(UTC_TIME, s.as_bytes())
    } else {
        let s = format!("{:04}{:02}{:02}000000Z", d.year(), d.month(), d.day());
        tlv(GENERALIZED_TIME, s.as_bytes())
    }
}

fn attribute(oid: &[u8], value: &str) -> Vec<u8> {
    tlv(
        SET,
        &seq(&[tlv(OID, oid), tlv(UTF8_STRING, value.as_bytes())]),
    )
}

fn extension(oid: &[u8], critical: bool, value: Vec<u8>) -> Vec<u8> {
    let mut parts = vec![tlv(OID, oid)];
    if critical {
        parts.push(tlv(BOOLEAN, &[0xff]));
    }
    parts.push(tlv(OCTET_STRING, &value));
    seq(&parts)
}

/// What goes into a client certificate.
pub(crate) struct ClientLeaf<'a> {
    pub common_name: &'a str,
    pub groups: &'a [&'a str],
    /// A positive, minimally encoded DER integer body (first byte 0x01..=0x7f).
    pub serial: &'a [u8],
    pub not_before: NaiveDate,
    pub not_after: NaiveDate,
}

/// Encodes `leaf` for `subject_key` and signs it with the CA key.
pub(crate) fn encode(
    ca_der: &[u8],
    ca_key: &KeyPair,
    subject_key: &KeyPair,
    leaf: &ClientLeaf<'_>,
) -> Result<Vec<u8>, rcgen::Error> {
    let ClientLeaf {
        common_name,
        groups,
        serial,
        not_before,
        not_after,
    } = *leaf;
    let (_, ca) =
        X509Certificate::from_der(ca_der).map_err(|_| rcgen::Error::CouldNotParseCertificate)?;
    let issuer = ca.subject().as_raw().to_vec();
    let ca_ski = ca
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        });

    let algorithm = seq(&[tlv(OID, OID_ECDSA_SHA256)]);
    let mut subject_rdns: Vec<Vec<u8>> = groups.iter().map(|g| attribute(OID_O, g)).collect();
    subject_rdns.push(attribute(OID_CN, common_name));

    let mut extensions = vec![
        // digitalSignature (bit 0): one byte, seven unused bits.
        extension(OID_KEY_USAGE, true, tlv(BIT_STRING, &[0x07, 0x80])),
        extension(OID_EXT_KEY_USAGE, false, seq(&[tlv(OID, OID_CLIENT_AUTH)])),
        extension(OID_BASIC_CONSTRAINTS, true, seq(&[])),
    ];
    if let Some(ski) = ca_ski {
        extensions.push(extension(OID_AKI, false, seq(&[tlv(0x80, &ski)])));
    }

    let tbs = seq(&[
        tlv(0xa0, &tlv(INTEGER, &[2])), // version v3
        tlv(INTEGER, serial),
        algorithm.clone(),
        issuer,
        seq(&[time(not_before), time(not_after)]),
        seq(&subject_rdns),
        subject_key.subject_public_key_info(),
        tlv(0xa3, &seq(&extensions)),
    ]);
    let signature = ca_key.sign(&tbs)?;
    let mut bits = vec![0u8];
    bits.extend_from_slice(&signature);
    Ok(seq(&[tbs, algorithm, tlv(BIT_STRING, &bits)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lengths_are_encoded_in_long_form() {
        assert_eq!(tlv(0x04, &[0; 3])[..2], [0x04, 3]);
        assert_eq!(tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(tlv(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn times_switch_to_generalized_in_2050() {
        let d = NaiveDate::from_ymd_opt(2049, 12, 31).unwrap();
        assert_eq!(time(d), tlv(UTC_TIME, b"491231000000Z"));
        let d = NaiveDate::from_ymd_opt(2050, 1, 2).unwrap();
        assert_eq!(time(d), tlv(GENERALIZED_TIME, b"20500102000000Z"));
    }
}
