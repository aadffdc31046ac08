//! The stored forms of what APPEND computes once, for every backend: a compact binary
//! encoding of [`MessageInfo`] (ENVELOPE, BODYSTRUCTURE, part offsets), [`SearchText`] and
//! keyword lists, and the compression of large values ([`pack`]). A backend keeps these octets as they
//! are (the SQLite store in BLOB columns; a shared database would use its own binary type),
//! so every backend reads and writes the same format and shares its tests.
//!
//! Hand-written rather than serde because the core's types carry no serde derives (the core
//! stays free of such dependencies) and because the format is tiny: LEB128 integers,
//! length-prefixed octet strings, one tag byte per option or enum. Decoding slices one shared
//! [`Bytes`] buffer, so a decoded envelope costs one allocation for all its strings.
//!
//! The format is part of each backend's on-disk schema: changing it means a new schema version
//! (the SQLite store's `user_version`) and a migration that re-encodes (or re-analyses) the
//! stored rows.

use crate::mail::analyze::{Children, MessageInfo, Part, TransferEncoding};
use crate::mail::date::Date;
use crate::mail::structure::{
    Address, BodyExtension, BodyFields, BodyStructure, Disposition, Envelope, NString,
};
use crate::mail::text::SearchText;
use bytes::Bytes;

/// Deeper than anything `analyze` produces (at most 100 MIME levels, one codec level each),
/// shallow enough for a 2 MiB thread stack: a corrupt row cannot overflow the stack.
const MAX_DEPTH: usize = 256;

/// A stored value could not be decoded: the database row is damaged.
#[derive(Debug, thiserror::Error)]
#[error("corrupt stored {what}")]
pub struct CodecError {
    what: &'static str,
}

fn corrupt<T>(what: &'static str) -> Result<T, CodecError> {
    Err(CodecError { what })
}

/// Appends values to a buffer.
#[derive(Default)]
struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn finish(self) -> Vec<u8> {
        self.out
    }

    fn uint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.out.push(byte);
                return;
            }
            self.out.push(byte | 0x80);
        }
    }

    fn usize(&mut self, v: usize) {
        self.uint(v as u64);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.usize(b.len());
        self.out.extend_from_slice(b);
    }

    fn tag(&mut self, t: u8) {
        self.out.push(t);
    }

    fn nstring(&mut self, s: &NString) {
        match s {
            None => self.tag(0),
            Some(b) => {
                self.tag(1);
                self.bytes(b);
            }
        }
    }

    fn list<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        self.usize(items.len());
        for item in items {
            each(self, item);
        }
    }

    fn params(&mut self, params: &[(Bytes, Bytes)]) {
        self.list(params, |w, (k, v)| {
            w.bytes(k);
            w.bytes(v);
        });
    }

    fn address(&mut self, a: &Address) {
        self.nstring(&a.name);
        self.nstring(&a.adl);
        self.nstring(&a.mailbox);
        self.nstring(&a.host);
    }

    fn envelope(&mut self, e: &Envelope) {
        self.nstring(&e.date);
        self.nstring(&e.subject);
        for list in [&e.from, &e.sender, &e.reply_to, &e.to, &e.cc, &e.bcc] {
            self.list(list, Self::address);
        }
        self.nstring(&e.in_reply_to);
        self.nstring(&e.message_id);
    }

    fn fields(&mut self, f: &BodyFields) {
        self.params(&f.params);
        self.nstring(&f.id);
        self.nstring(&f.description);
        self.bytes(&f.encoding);
        self.uint(f.octets);
    }

    fn extension(&mut self, x: &BodyExtension) {
        match &x.disposition {
            None => self.tag(0),
            Some(d) => {
                self.tag(1);
                self.bytes(&d.kind);
                self.params(&d.params);
            }
        }
        self.list(&x.language, |w, l| w.bytes(l));
        self.nstring(&x.location);
    }

    fn structure(&mut self, b: &BodyStructure) {
        match b {
            BodyStructure::Single {
                media_type,
                subtype,
                fields,
                lines,
                md5,
                ext,
            } => {
                self.tag(0);
                self.bytes(media_type);
                self.bytes(subtype);
                self.fields(fields);
                match lines {
                    None => self.tag(0),
                    Some(n) => {
                        self.tag(1);
                        self.uint(*n);
                    }
                }
                self.nstring(md5);
                self.extension(ext);
            }
            BodyStructure::Message {
                subtype,
                fields,
                envelope,
                body,
                lines,
                md5,
                ext,
            } => {
                self.tag(1);
                self.bytes(subtype);
                self.fields(fields);
                self.envelope(envelope);
                self.structure(body);
                self.uint(*lines);
                self.nstring(md5);
                self.extension(ext);
            }
            BodyStructure::Multipart {
                parts,
                subtype,
                params,
                ext,
            } => {
                self.tag(2);
                self.list(parts, Self::structure);
                self.bytes(subtype);
                self.params(params);
                self.extension(ext);
            }
        }
    }

    fn part(&mut self, p: &Part) {
        self.usize(p.header.start);
        self.usize(p.header.end);
        self.usize(p.body.start);
        self.usize(p.body.end);
        match &p.encoding {
            TransferEncoding::Identity => self.tag(0),
            TransferEncoding::Base64 => self.tag(1),
            TransferEncoding::QuotedPrintable => self.tag(2),
            TransferEncoding::Unknown(name) => {
                self.tag(3);
                self.bytes(name);
            }
        }
        match &p.children {
            Children::None => self.tag(0),
            Children::Multipart(parts) => {
                self.tag(1);
                self.list(parts, Self::part);
            }
            Children::Message(inner) => {
                self.tag(2);
                self.part(inner);
            }
        }
    }
}

/// Reads values back, slicing the shared buffer.
struct Reader {
    buf: Bytes,
    pos: usize,
    depth: usize,
    what: &'static str,
}

impl Reader {
    fn new(buf: Bytes, what: &'static str) -> Reader {
        Reader {
            buf,
            pos: 0,
            depth: 0,
            what,
        }
    }

    fn fail<T>(&self) -> Result<T, CodecError> {
        corrupt(self.what)
    }

    fn uint(&mut self) -> Result<u64, CodecError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.buf.get(self.pos) else {
                return self.fail();
            };
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        self.fail()
    }

    fn usize(&mut self) -> Result<usize, CodecError> {
        let v = self.uint()?;
        usize::try_from(v).or_else(|_| self.fail())
    }

    /// A length that cannot exceed what is left: a corrupt count never allocates wildly.
    fn count(&mut self) -> Result<usize, CodecError> {
        let n = self.usize()?;
        if n > self.buf.len() - self.pos {
            return self.fail();
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<Bytes, CodecError> {
        let n = self.count()?;
        let b = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(b)
    }

    fn string(&mut self) -> Result<String, CodecError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).or_else(|_| self.fail())
    }

    fn tag(&mut self) -> Result<u8, CodecError> {
        let Some(&t) = self.buf.get(self.pos) else {
            return self.fail();
        };
        self.pos += 1;
        Ok(t)
    }

    fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn nstring(&mut self) -> Result<NString, CodecError> {
        match self.tag()? {
            0 => Ok(None),
            1 => Ok(Some(self.bytes()?)),
            _ => self.fail(),
        }
    }

    fn list<T>(
        &mut self,
        mut each: impl FnMut(&mut Self) -> Result<T, CodecError>,
    ) -> Result<Vec<T>, CodecError> {
        let n = self.count()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(each(self)?);
        }
        Ok(out)
    }

    fn params(&mut self) -> Result<Vec<(Bytes, Bytes)>, CodecError> {
        self.list(|r| Ok((r.bytes()?, r.bytes()?)))
    }

    fn address(&mut self) -> Result<Address, CodecError> {
        Ok(Address {
            name: self.nstring()?,
            adl: self.nstring()?,
            mailbox: self.nstring()?,
            host: self.nstring()?,
        })
    }

    fn envelope(&mut self) -> Result<Envelope, CodecError> {
        let date = self.nstring()?;
        let subject = self.nstring()?;
        let from = self.list(Self::address)?;
        let sender = self.list(Self::address)?;
        let reply_to = self.list(Self::address)?;
        let to = self.list(Self::address)?;
        let cc = self.list(Self::address)?;
        let bcc = self.list(Self::address)?;
        Ok(Envelope {
            date,
            subject,
            from,
            sender,
            reply_to,
            to,
            cc,
            bcc,
            in_reply_to: self.nstring()?,
            message_id: self.nstring()?,
        })
    }

    fn fields(&mut self) -> Result<BodyFields, CodecError> {
        Ok(BodyFields {
            params: self.params()?,
            id: self.nstring()?,
            description: self.nstring()?,
            encoding: self.bytes()?,
            octets: self.uint()?,
        })
    }

    fn extension(&mut self) -> Result<BodyExtension, CodecError> {
        let disposition = match self.tag()? {
            0 => None,
            1 => Some(Disposition {
                kind: self.bytes()?,
                params: self.params()?,
            }),
            _ => return self.fail(),
        };
        Ok(BodyExtension {
            disposition,
            language: self.list(Self::bytes)?,
            location: self.nstring()?,
        })
    }

    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, CodecError>,
    ) -> Result<T, CodecError> {
        if self.depth >= MAX_DEPTH {
            return self.fail();
        }
        self.depth += 1;
        let out = f(self);
        self.depth -= 1;
        out
    }

    fn structure(&mut self) -> Result<BodyStructure, CodecError> {
        self.nested(|r| match r.tag()? {
            0 => Ok(BodyStructure::Single {
                media_type: r.bytes()?,
                subtype: r.bytes()?,
                fields: r.fields()?,
                lines: match r.tag()? {
                    0 => None,
                    1 => Some(r.uint()?),
                    _ => return r.fail(),
                },
                md5: r.nstring()?,
                ext: r.extension()?,
            }),
            1 => Ok(BodyStructure::Message {
                subtype: r.bytes()?,
                fields: r.fields()?,
                envelope: Box::new(r.envelope()?),
                body: Box::new(r.structure()?),
                lines: r.uint()?,
                md5: r.nstring()?,
                ext: r.extension()?,
            }),
            2 => Ok(BodyStructure::Multipart {
                parts: r.list(Self::structure)?,
                subtype: r.bytes()?,
                params: r.params()?,
                ext: r.extension()?,
            }),
            _ => r.fail(),
        })
    }

    fn range(&mut self) -> Result<std::ops::Range<usize>, CodecError> {
        Ok(self.usize()?..self.usize()?)
    }

    fn part(&mut self) -> Result<Part, CodecError> {
        self.nested(|r| {
            let header = r.range()?;
            let body = r.range()?;
            let encoding = match r.tag()? {
                0 => TransferEncoding::Identity,
                1 => TransferEncoding::Base64,
                2 => TransferEncoding::QuotedPrintable,
                3 => TransferEncoding::Unknown(r.bytes()?),
                _ => return r.fail(),
            };
            let children = match r.tag()? {
                0 => Children::None,
                1 => Children::Multipart(r.list(Self::part)?),
                2 => Children::Message(Box::new(r.part()?)),
                _ => return r.fail(),
            };
            Ok(Part {
                header,
                body,
                encoding,
                children,
            })
        })
    }
}

/// Encodes a message's analysis.
pub fn encode_info(info: &MessageInfo) -> Vec<u8> {
    let mut w = Writer::default();
    w.envelope(&info.envelope);
    w.structure(&info.body);
    w.part(&info.root);
    w.finish()
}

/// Decodes what [`encode_info`] wrote.
pub fn decode_info(buf: Bytes) -> Result<MessageInfo, CodecError> {
    let mut r = Reader::new(buf, "message structure");
    let info = MessageInfo {
        envelope: r.envelope()?,
        body: r.structure()?,
        root: r.part()?,
    };
    if !r.at_end() {
        return r.fail();
    }
    Ok(info)
}

/// Packs a date into an integer that orders like the date (for the `sent` column).
pub fn pack_date(d: Date) -> i64 {
    (i64::from(d.year) << 16) | (i64::from(d.month) << 8) | i64::from(d.day)
}

/// Inverse of [`pack_date`].
pub fn unpack_date(v: i64) -> Result<Date, CodecError> {
    let year = u16::try_from(v >> 16).or_else(|_| corrupt("date"))?;
    Ok(Date {
        year,
        month: ((v >> 8) & 0xff) as u8,
        day: (v & 0xff) as u8,
    })
}

/// Encodes the decoded search text.
///
/// Takes the text by value and builds the encoding in the body's own buffer (the fields go in
/// front of it, the date after), so a large message's text is not copied whole.
pub fn encode_text(text: SearchText) -> Vec<u8> {
    let mut head = Writer::default();
    head.list(&text.headers, |w, (n, v)| {
        w.bytes(n.as_bytes());
        w.bytes(v.as_bytes());
    });
    head.usize(text.body.len());
    let head = head.finish();
    let mut out = text.body.into_bytes();
    out.splice(0..0, head);
    let mut tail = Writer::default();
    match text.sent {
        None => tail.tag(0),
        Some(d) => {
            tail.tag(1);
            tail.uint(pack_date(d) as u64);
        }
    }
    out.extend_from_slice(&tail.finish());
    out
}

/// Decodes what [`encode_text`] wrote.
pub fn decode_text(buf: Bytes) -> Result<SearchText, CodecError> {
    let mut r = Reader::new(buf, "search text");
    let headers = r.list(|r| Ok((r.string()?, r.string()?)))?;
    let body = r.string()?;
    let sent = match r.tag()? {
        0 => None,
        1 => {
            let v = i64::try_from(r.uint()?).or_else(|_| r.fail())?;
            Some(unpack_date(v)?)
        }
        _ => return r.fail(),
    };
    if !r.at_end() {
        return r.fail();
    }
    Ok(SearchText {
        headers,
        body,
        sent,
    })
}

/// Largest value [`unpack`] will inflate to: above any message the server accepts, and low
/// enough that a damaged length prefix cannot ask for absurd memory.
const MAX_UNPACKED: usize = 1 << 30;

/// Stored as is.
const RAW: u8 = 0;
/// LZ4 block with its length prepended.
const LZ4: u8 = 1;
/// zstd frame with its unpacked length prepended (4 octets, little-endian), as for LZ4.
const ZSTD: u8 = 2;
/// A message in two zstd frames, its header and the rest, so that the header alone can be
/// unpacked ([`unpack_head`]): the unpacked length, the header's length and its frame's
/// length (4 octets each, little-endian), then the two frames.
const ZSTD_SPLIT: u8 = 3;

/// The zstd level [`Packing::Dense`] uses. Measured on 5,000 realistic messages (inline bodies
/// averaging 5.9 KB, search texts 4.6 KB): levels 1 to 3 pack within 1% of each other and level
/// 1 is the fastest to write; level 5 gains under 1% for twice the time.
const ZSTD_LEVEL: i32 = 1;

/// How [`pack`] compresses a value; each stored field picks by how it is read. Any value of
/// either kind (and the raw form) is read back by [`unpack`], whichever a row was written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packing {
    /// LZ4: unpacks about four times faster than zstd (2 µs against 8 µs for a 4.5 KB
    /// text), for values read by the thousand (SEARCH's scans).
    Fast,
    /// zstd at [`ZSTD_LEVEL`]: a third smaller than LZ4 on mail text and a quarter smaller on
    /// base64 (LZ4 has no entropy coding), for values read one at a time.
    Dense,
}

/// zstd's working memory, reused from value to value: making it afresh costs more than a
/// 6 KB value's whole (de)compression (25 µs against 9 µs to unpack). The core keeps no
/// such state itself; a backend keeps one per thread or connection and passes it to [`pack`]
/// and [`unpack`]. Made on first use; if making it fails, values are stored raw and zstd
/// values cannot be read (an error, as for a damaged row).
#[derive(Default)]
pub struct Zstd {
    pack: Option<zstd::bulk::Compressor<'static>>,
    unpack: Option<zstd::bulk::Decompressor<'static>>,
}

impl std::fmt::Debug for Zstd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zstd").finish_non_exhaustive()
    }
}

/// Compresses a stored value when that saves at least an eighth: mail text shrinks two- to
/// threefold, while already-compressed parts would cost decompression for nothing. One tag byte
/// says which form the value has.
pub fn pack(data: &[u8], packing: Packing, zstd: &mut Zstd) -> Vec<u8> {
    if data.len() >= 64 {
        if let Some(packed) = compress(data, packing, zstd) {
            if packed.len() + packed.len() / 8 < data.len() {
                return packed;
            }
        }
    }
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(RAW);
    out.extend_from_slice(data);
    out
}

/// The tagged compressed form, or `None` if the compressor failed (then the value is stored
/// raw) or the value is too large for the length prefix.
fn compress(data: &[u8], packing: Packing, zstd: &mut Zstd) -> Option<Vec<u8>> {
    let size = u32::try_from(data.len()).ok()?;
    match packing {
        Packing::Fast => {
            let packed = lz4_flex::block::compress_prepend_size(data);
            let mut out = Vec::with_capacity(packed.len() + 1);
            out.push(LZ4);
            out.extend_from_slice(&packed);
            Some(out)
        }
        Packing::Dense => {
            if zstd.pack.is_none() {
                zstd.pack = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok();
            }
            let packed = zstd.pack.as_mut()?.compress(data).ok()?;
            let mut out = Vec::with_capacity(packed.len() + 5);
            out.push(ZSTD);
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&packed);
            Some(out)
        }
    }
}

/// Messages at least this large are packed with [`Packing::Fast`]: they are mostly base64
/// attachments, which LZ4 cannot shrink (so they are kept raw) while zstd takes a quarter off
/// at 100 µs to unpack a 100 KB message each time it is read (a RETR, a FETCH of an
/// attachment) instead of 2. Measured on 5,000 realistic messages (4 % with attachments),
/// that costs 181 bytes of disk per message, all messages counted, for reads of large mail
/// up to 50 times cheaper; text that large still shrinks by half with LZ4.
pub const LARGE_MESSAGE: usize = 32 * 1024;

/// [`pack`] with [`Packing::Dense`] for a message whose header is its first `head` octets: the
/// header and the rest are separate frames, so a FETCH of headers unpacks only the first
/// ([`unpack_head`]). Falls back to [`pack`] when the split cannot help (no body, or sizes
/// beyond the length fields), and uses [`Packing::Fast`] from [`LARGE_MESSAGE`] on.
pub fn pack_message(data: &[u8], head: usize, zstd: &mut Zstd) -> Vec<u8> {
    if data.len() >= LARGE_MESSAGE {
        return pack(data, Packing::Fast, zstd);
    }
    let split = (|| {
        if head == 0 || head >= data.len() || data.len() < 64 {
            return None;
        }
        let size = u32::try_from(data.len()).ok()?;
        let (first, rest) = (data.get(..head)?, data.get(head..)?);
        if zstd.pack.is_none() {
            zstd.pack = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok();
        }
        let compressor = zstd.pack.as_mut()?;
        let head_frame = compressor.compress(first).ok()?;
        let rest_frame = compressor.compress(rest).ok()?;
        let mut out = Vec::with_capacity(13 + head_frame.len() + rest_frame.len());
        out.push(ZSTD_SPLIT);
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&u32::try_from(head).ok()?.to_le_bytes());
        out.extend_from_slice(&u32::try_from(head_frame.len()).ok()?.to_le_bytes());
        out.extend_from_slice(&head_frame);
        out.extend_from_slice(&rest_frame);
        Some(out)
    })();
    match split {
        Some(packed) if packed.len() + packed.len() / 8 < data.len() => packed,
        _ => pack(data, Packing::Dense, zstd),
    }
}

/// The first octets of a packed message that hold at least its header: for a value
/// [`pack_message`] split, only the header frame is unpacked; any other value is unpacked
/// whole (the caller cuts it).
pub fn unpack_head(stored: Vec<u8>, zstd: &mut Zstd) -> Result<Bytes, CodecError> {
    const WHAT: &str = "compressed message";
    if stored.first() != Some(&ZSTD_SPLIT) {
        return unpack(stored, zstd);
    }
    split_fields(&stored)
        .and_then(|(_, head, frame_len, frames)| inflate(frames.get(..frame_len)?, head, zstd))
        .map_or_else(|| corrupt(WHAT), Ok)
}

/// A split value's total size, header size, header frame length and the frames.
fn split_fields(stored: &[u8]) -> Option<(usize, usize, usize, &[u8])> {
    let field = |at: usize| -> Option<usize> {
        match stored.get(at..at + 4)? {
            &[a, b, c, d] => Some(u32::from_le_bytes([a, b, c, d]) as usize),
            _ => None,
        }
    };
    let (size, head, frame_len) = (field(1)?, field(5)?, field(9)?);
    if size > MAX_UNPACKED || head > size {
        return None;
    }
    Some((size, head, frame_len, stored.get(13..)?))
}

/// Exactly `size` octets from one zstd frame, or `None`.
fn inflate(frame: &[u8], size: usize, zstd: &mut Zstd) -> Option<Bytes> {
    if zstd.unpack.is_none() {
        zstd.unpack = zstd::bulk::Decompressor::new().ok();
    }
    let out = zstd.unpack.as_mut()?.decompress(frame, size).ok()?;
    (out.len() == size).then(|| Bytes::from(out))
}

/// Inverse of [`pack`] (and of [`pack_message`]), for values of every [`Packing`].
pub fn unpack(stored: Vec<u8>, zstd: &mut Zstd) -> Result<Bytes, CodecError> {
    const WHAT: &str = "compressed value";
    let (tag, body) = match stored.split_first() {
        Some((&tag, body)) => (tag, body),
        None => return corrupt(WHAT),
    };
    if tag == RAW {
        return Ok(Bytes::from(stored).slice(1..));
    }
    if tag == ZSTD_SPLIT {
        let whole = split_fields(&stored).and_then(|(size, head, frame_len, frames)| {
            let first = inflate(frames.get(..frame_len)?, head, zstd)?;
            let rest = inflate(frames.get(frame_len..)?, size.checked_sub(head)?, zstd)?;
            let mut out = Vec::with_capacity(size);
            out.extend_from_slice(&first);
            out.extend_from_slice(&rest);
            Some(Bytes::from(out))
        });
        return whole.map_or_else(|| corrupt(WHAT), Ok);
    }
    let size = match body.get(..4) {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]) as usize,
        _ => return corrupt(WHAT),
    };
    if size > MAX_UNPACKED {
        return corrupt(WHAT);
    }
    let out = match tag {
        LZ4 => lz4_flex::block::decompress_size_prepended(body).ok(),
        ZSTD => {
            if zstd.unpack.is_none() {
                zstd.unpack = zstd::bulk::Decompressor::new().ok();
            }
            body.get(4..)
                .and_then(|frame| zstd.unpack.as_mut()?.decompress(frame, size).ok())
        }
        _ => None,
    };
    match out {
        // zstd stops at its capacity, so a frame that inflates past the recorded size is
        // refused as well as one that falls short.
        Some(out) if out.len() == size => Ok(Bytes::from(out)),
        _ => corrupt(WHAT),
    }
}

/// Encodes a message's keywords, in the order they were set.
pub fn encode_keywords(keywords: &[Bytes]) -> Vec<u8> {
    let mut w = Writer::default();
    w.list(keywords, |w, k| w.bytes(k));
    w.finish()
}

/// Decodes what [`encode_keywords`] wrote.
pub fn decode_keywords(buf: Bytes) -> Result<Vec<Bytes>, CodecError> {
    let mut r = Reader::new(buf, "keywords");
    let out = r.list(Reader::bytes)?;
    if !r.at_end() {
        return r.fail();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::analyze::analyze;
    use crate::mail::text::extract;

    const SAMPLES: &[&[u8]] = &[
        b"",
        b"From: \"A\" <a@x.test>\r\nTo: b@y.test, undisclosed:;\r\nSubject: =?utf-8?q?hi?=\r\nDate: Tue, 3 Feb 2026 10:00:00 +0100\r\nMessage-ID: <1@x>\r\n\r\nline1\r\nline2\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\nSubject: outer\r\n\r\npre\r\n--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\nContent-Language: en, de\r\n\r\nhello\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: x-weird\r\n\r\n<p>x</p>\r\n--b--\r\n",
    ];

    /// A message packed as header and body frames unpacks whole, or by its header alone
    /// without the body's frame; a damaged value is an error, never a panic or a wrong text.
    #[test]
    fn a_message_in_two_frames_unpacks_whole_or_by_its_header() {
        let mut z = Zstd::default();
        let header = "From: a@example.org\r\nSubject: lorem ipsum lorem ipsum\r\n\r\n";
        let message = format!("{header}{}", "dolor sit amet, consectetur\r\n".repeat(200));
        let packed = pack_message(message.as_bytes(), header.len(), &mut z);
        assert_eq!(packed.first(), Some(&ZSTD_SPLIT));
        assert!(packed.len() < message.len() / 4);
        assert_eq!(unpack(packed.clone(), &mut z).unwrap(), message.as_bytes());
        assert_eq!(
            unpack_head(packed.clone(), &mut z).unwrap(),
            header.as_bytes()
        );
        let head_frame_end = 13 + u32::from_le_bytes(packed[9..13].try_into().unwrap()) as usize;
        for cut in 0..packed.len() {
            let short = packed[..cut].to_vec();
            assert!(unpack(short.clone(), &mut z).is_err(), "cut at {cut}");
            if cut < head_frame_end {
                assert!(unpack_head(short, &mut z).is_err(), "cut at {cut}");
            }
        }
        // Values packed otherwise come back whole from `unpack_head`; the caller cuts them.
        let dense = pack(message.as_bytes(), Packing::Dense, &mut z);
        assert_eq!(unpack_head(dense, &mut z).unwrap(), message.as_bytes());
        // Nothing to split (no body): the plain form.
        let only_header = pack_message(header.as_bytes(), header.len(), &mut z);
        assert_ne!(only_header.first(), Some(&ZSTD_SPLIT));
        assert_eq!(unpack(only_header, &mut z).unwrap(), header.as_bytes());
        // A large message: LZ4, whole, still unpacked by its header.
        let large = format!("{header}{}", "dolor sit amet, consectetur\r\n".repeat(2000));
        assert!(large.len() >= LARGE_MESSAGE);
        let packed = pack_message(large.as_bytes(), header.len(), &mut z);
        assert_eq!(packed.first(), Some(&LZ4));
        assert_eq!(unpack(packed.clone(), &mut z).unwrap(), large.as_bytes());
        assert_eq!(unpack_head(packed, &mut z).unwrap(), large.as_bytes());
    }

    #[test]
    fn info_and_text_round_trip() {
        for raw in SAMPLES {
            let info = analyze(raw);
            assert_eq!(decode_info(Bytes::from(encode_info(&info))).unwrap(), info);
            let text = extract(raw);
            assert_eq!(
                decode_text(Bytes::from(encode_text(text.clone()))).unwrap(),
                text
            );
        }
        let kw = vec![Bytes::from_static(b"$Junk"), Bytes::from_static(b"x")];
        assert_eq!(
            decode_keywords(Bytes::from(encode_keywords(&kw))).unwrap(),
            kw
        );
    }

    #[test]
    fn pack_round_trips_and_refuses_damage() {
        let text = "the quick brown fox jumps over the lazy dog ".repeat(50);
        let noise: Vec<u8> = (0..500u32).map(|i| (i * 7919 % 251) as u8).collect();
        let mut z = Zstd::default();
        for packing in [Packing::Fast, Packing::Dense] {
            for data in [&b""[..], b"short", text.as_bytes(), &noise] {
                let stored = pack(data, packing, &mut z);
                assert_eq!(&unpack(stored.clone(), &mut z).unwrap()[..], data);
                if data == text.as_bytes() {
                    assert!(stored.len() < data.len() / 4, "{}", stored.len());
                }
            }
            let good = pack(text.as_bytes(), packing, &mut z);
            // A length prefix too large, one byte off either way, and a truncated body.
            for size in [u32::MAX, text.len() as u32 + 1, text.len() as u32 - 1] {
                let mut bad = good.clone();
                bad[1..5].copy_from_slice(&size.to_le_bytes());
                assert!(unpack(bad, &mut z).is_err(), "{packing:?} {size}");
            }
            for cut in 0..good.len() {
                assert!(
                    unpack(good[..cut].to_vec(), &mut z).is_err(),
                    "{packing:?} {cut}"
                );
            }
        }
        assert!(unpack(vec![7, 1, 2], &mut z).is_err());
        assert!(unpack(Vec::new(), &mut z).is_err());
    }

    /// Rows written before zstd (tag 1, LZ4) stay readable: this is the exact form
    /// `pack` wrote then.
    #[test]
    fn lz4_rows_of_earlier_versions_unpack() {
        let text = "the quick brown fox jumps over the lazy dog ".repeat(50);
        let mut old = vec![1u8];
        old.extend_from_slice(&lz4_flex::block::compress_prepend_size(text.as_bytes()));
        assert_eq!(
            &unpack(old, &mut Zstd::default()).unwrap()[..],
            text.as_bytes()
        );
    }

    /// Dense packing is what shrinks inline bodies: it must beat LZ4 on mail-like text, or
    /// the slower unpacking buys nothing.
    #[test]
    fn dense_packing_is_smaller_than_fast() {
        let mut mail = String::new();
        for i in 0..200u32 {
            mail.push_str(&format!(
                "Line {i}: meeting notes about item {} and owner {}\r\n",
                i * 37 % 101,
                i % 7
            ));
        }
        let mut z = Zstd::default();
        let fast = pack(mail.as_bytes(), Packing::Fast, &mut z).len();
        let dense = pack(mail.as_bytes(), Packing::Dense, &mut z).len();
        assert!(dense < fast, "dense {dense} fast {fast}");
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let info = encode_info(&analyze(SAMPLES[2]));
        for cut in 0..info.len() {
            assert!(decode_info(Bytes::copy_from_slice(&info[..cut])).is_err());
        }
        let mut huge = Writer::default();
        huge.uint(u64::MAX);
        assert!(decode_keywords(Bytes::from(huge.finish())).is_err());
        // A self-nesting part chain deeper than the bound.
        let mut deep = Vec::new();
        for _ in 0..10_000 {
            deep.extend_from_slice(&[0, 0, 0, 0, 0, 2]);
        }
        let mut w = Writer::default();
        w.envelope(&Envelope::default());
        w.structure(&analyze(b"").body);
        let mut buf = w.finish();
        buf.extend_from_slice(&deep);
        assert!(decode_info(Bytes::from(buf)).is_err());
    }
}
