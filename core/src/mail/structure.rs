//! ENVELOPE and BODYSTRUCTURE as data (RFC 9051 §7.5.2), computed once per message and
//! encoded by the IMAP response encoder.
//!
//! `NString` fields are `Option<Bytes>`: `None` is NIL. Values are kept as they appear in the
//! message (no RFC 2047/2231 decoding), as RFC 9051 requires.

use bytes::Bytes;

/// `nstring`.
pub type NString = Option<Bytes>;

/// One address of an envelope address list (RFC 9051 §9 `address`). A group start is
/// `mailbox = group name, host = None`; a group end has both `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Address {
    /// addr-name: the display name.
    pub name: NString,
    /// addr-adl: the obsolete source route.
    pub adl: NString,
    /// addr-mailbox: the local part, or the group name.
    pub mailbox: NString,
    /// addr-host: the domain; NIL marks group syntax.
    pub host: NString,
}

/// The ENVELOPE fields, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Envelope {
    /// Date.
    pub date: NString,
    /// Subject.
    pub subject: NString,
    /// From.
    pub from: Vec<Address>,
    /// Sender (defaults to From, RFC 9051 §7.5.2).
    pub sender: Vec<Address>,
    /// Reply-To (defaults to From).
    pub reply_to: Vec<Address>,
    /// To.
    pub to: Vec<Address>,
    /// Cc.
    pub cc: Vec<Address>,
    /// Bcc.
    pub bcc: Vec<Address>,
    /// In-Reply-To.
    pub in_reply_to: NString,
    /// Message-ID.
    pub message_id: NString,
}

/// `body-fld-dsp`: the Content-Disposition value and its parameters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Disposition {
    /// e.g. `attachment`.
    pub kind: Bytes,
    /// Parameters, names as sent.
    pub params: Vec<(Bytes, Bytes)>,
}

/// Extension data shared by every body type (after the type-specific extension field).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct BodyExtension {
    /// body-fld-dsp.
    pub disposition: Option<Disposition>,
    /// body-fld-lang: one or more language tags, or none (NIL).
    pub language: Vec<Bytes>,
    /// body-fld-loc.
    pub location: NString,
}

/// Fields every non-multipart body has (`body-fields`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct BodyFields {
    /// body-fld-param: Content-Type parameters.
    pub params: Vec<(Bytes, Bytes)>,
    /// body-fld-id: Content-ID.
    pub id: NString,
    /// body-fld-desc: Content-Description.
    pub description: NString,
    /// body-fld-enc: Content-Transfer-Encoding (default `7BIT`).
    pub encoding: Bytes,
    /// body-fld-octets: size of the encoded body.
    pub octets: u64,
}

/// A body part's structure.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BodyStructure {
    /// Any non-multipart, non-message/rfc822 part.
    Single {
        /// media type, e.g. `TEXT`.
        media_type: Bytes,
        /// subtype, e.g. `PLAIN`.
        subtype: Bytes,
        /// body-fields.
        fields: BodyFields,
        /// For `text/*`: the body's line count.
        lines: Option<u64>,
        /// body-fld-md5.
        md5: NString,
        /// Extension data.
        ext: BodyExtension,
    },
    /// `message/rfc822` (and `message/global`): the encapsulated message's envelope and structure.
    Message {
        /// subtype, `RFC822` or `GLOBAL`.
        subtype: Bytes,
        /// body-fields.
        fields: BodyFields,
        /// The inner message's envelope.
        envelope: Box<Envelope>,
        /// The inner message's structure.
        body: Box<BodyStructure>,
        /// Line count of the encapsulated message.
        lines: u64,
        /// body-fld-md5.
        md5: NString,
        /// Extension data.
        ext: BodyExtension,
    },
    /// `multipart/*`.
    Multipart {
        /// The parts, at least one.
        parts: Vec<BodyStructure>,
        /// subtype, e.g. `MIXED`.
        subtype: Bytes,
        /// Content-Type parameters (the boundary among them).
        params: Vec<(Bytes, Bytes)>,
        /// Extension data.
        ext: BodyExtension,
    },
}
