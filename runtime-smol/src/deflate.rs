//! IMAP COMPRESS=DEFLATE (RFC 4978): raw DEFLATE (RFC 1951, no zlib header) in both
//! directions of a connection, below the session and above TLS.
//!
//! Memory per connection is fixed: the two codec states (miniz_oxide's, about 300 KiB for
//! the compressor and 45 KiB for the decompressor), one read buffer of compressed input and
//! one output buffer bounded by the write chunk. What a client may make the server inflate is
//! bounded too: see [`MAX_RATIO`].

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Compressed octets read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Inflated input may exceed this many times the compressed input (plus [`SLACK`]) before the
/// connection is cut off as a compression bomb. Mail compresses 2-10 times (text; base64
/// attachments less than 1.5 times), and DEFLATE's own limit is about 1030 times: a client
/// near it sends runs of one octet, which no command needs.
pub const MAX_RATIO: u64 = 100;

/// Inflated octets allowed regardless of the ratio: the first commands compress well.
pub const SLACK: u64 = 1024 * 1024;

/// Why compressed input was refused.
#[derive(Debug, thiserror::Error)]
pub enum InflateError {
    /// The input is not a DEFLATE stream, or goes on after its final block.
    #[error("corrupt compressed input")]
    Corrupt,
    /// The input inflates past [`MAX_RATIO`].
    #[error("compressed input inflates more than {MAX_RATIO} times")]
    Bomb,
}

impl InflateError {
    /// The error as `std::io::Error`, recoverable with [`InflateError::of`].
    fn into_io(self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, self)
    }

    /// The inflate error an I/O error carries, if it is one.
    pub fn of(e: &std::io::Error) -> Option<&InflateError> {
        e.get_ref().and_then(|inner| inner.downcast_ref())
    }
}

/// Both directions' codec state.
pub struct Deflate {
    compress: Compress,
    decompress: Decompress,
    /// Compressed output of the last [`Deflate::deflate`] call.
    out: Vec<u8>,
    /// Octets compressed since the last sync flush: a flush with nothing new is skipped
    /// (it would still send an empty stored block).
    unflushed: bool,
    /// Compressed input read from the socket, not yet inflated: `raw[start..]`.
    raw: Vec<u8>,
    start: usize,
    /// Where the socket reads go, before they join `raw` (a read that is cancelled leaves
    /// `raw` untouched).
    chunk: Vec<u8>,
    /// The client's final block has been seen: anything after it is refused.
    ended: bool,
    /// The last inflate filled its buffer: the decompressor may hold more output (the rest
    /// of a long match) even with no input left.
    full: bool,
}

impl Default for Deflate {
    fn default() -> Self {
        Deflate::new()
    }
}

impl Deflate {
    /// Raw streams (`false`: no zlib header) at level 1, not zlib's and Dovecot's 6: on 300
    /// realistic messages level 6 took 40 ms of CPU per MB of `FETCH BODY[]` (25 MB/s, slower
    /// than most links it would save on) for 40 % saved, level 1 6.4 ms per MB for 37 %; on
    /// metadata (ENVELOPE, BODYSTRUCTURE, headers) 4.2 ms per MB for 83 % against 90 %.
    pub fn new() -> Self {
        Deflate {
            compress: Compress::new(Compression::fast(), false),
            decompress: Decompress::new(false),
            out: Vec::new(),
            unflushed: false,
            raw: Vec::new(),
            start: 0,
            chunk: vec![0; READ_CHUNK],
            ended: false,
            full: false,
        }
    }

    /// Compresses `data` (a sync flush after it when `sync`) and answers the compressed
    /// octets to write now. With `data` at most a write chunk, the answer is about as large.
    pub fn deflate(&mut self, mut data: &[u8], sync: bool) -> std::io::Result<&[u8]> {
        self.out.clear();
        /// Larger output buffers are let go, so an idle connection holds little.
        const KEPT_CAPACITY: usize = 64 * 1024;
        if self.out.capacity() > KEPT_CAPACITY {
            self.out = Vec::new();
        }
        if data.is_empty() && !(sync && self.unflushed) {
            return Ok(&self.out);
        }
        self.unflushed = !sync;
        let flush = if sync {
            FlushCompress::Sync
        } else {
            FlushCompress::None
        };
        loop {
            self.out.reserve(data.len() / 2 + 1024);
            let room = self.out.capacity() - self.out.len();
            let (in_before, out_before) = (self.compress.total_in(), self.out.len());
            self.compress
                .compress_vec(data, &mut self.out, flush)
                .map_err(std::io::Error::other)?;
            let used = usize::try_from(self.compress.total_in() - in_before).unwrap_or(usize::MAX);
            data = data.get(used..).unwrap_or_default();
            // Done once all input is taken and the output did not fill the room it had (a
            // full buffer may mean more flush output is waiting).
            if data.is_empty() && self.out.len() - out_before < room {
                return Ok(&self.out);
            }
        }
    }

    /// Inflates buffered input into `buf`: the octets produced, 0 when more compressed input
    /// is needed first. At most `buf.len()` octets per call, however well the input inflates.
    pub fn inflate(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let pending = self.raw.get(self.start..).unwrap_or_default();
        if buf.is_empty() || (pending.is_empty() && !self.full) {
            return Ok(0);
        }
        if self.ended && !pending.is_empty() {
            return Err(InflateError::Corrupt.into_io());
        }
        let (in_before, out_before) = (self.decompress.total_in(), self.decompress.total_out());
        let status = self
            .decompress
            .decompress(pending, buf, FlushDecompress::None)
            .map_err(|_| InflateError::Corrupt.into_io())?;
        let used = usize::try_from(self.decompress.total_in() - in_before).unwrap_or(usize::MAX);
        let made = usize::try_from(self.decompress.total_out() - out_before).unwrap_or(usize::MAX);
        let had_input = !pending.is_empty();
        self.start = self.start.saturating_add(used).min(self.raw.len());
        self.full = made == buf.len();
        if status == Status::StreamEnd {
            self.ended = true;
        }
        let limit = MAX_RATIO
            .saturating_mul(self.decompress.total_in())
            .saturating_add(SLACK);
        if self.decompress.total_out() > limit {
            return Err(InflateError::Bomb.into_io());
        }
        if had_input && used == 0 && made == 0 && !self.ended {
            // Room to write and input to read, yet no progress: not a stream miniz accepts.
            return Err(InflateError::Corrupt.into_io());
        }
        Ok(made)
    }

    /// The buffer to read compressed octets from the socket into; hand the count to
    /// [`Deflate::received`].
    pub fn read_buffer(&mut self) -> &mut [u8] {
        &mut self.chunk
    }

    /// Takes `n` octets read into [`Deflate::read_buffer`].
    pub fn received(&mut self, n: usize) {
        if self.start >= self.raw.len() {
            self.raw.clear();
            self.start = 0;
        } else if self.start > 0 {
            self.raw.drain(..self.start);
            self.start = 0;
        }
        self.raw
            .extend_from_slice(self.chunk.get(..n).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's side: raw DEFLATE with a sync flush per write, as Python's
    /// `zlib.compressobj(wbits=-15)` with `Z_SYNC_FLUSH`.
    fn client_deflate(c: &mut Compress, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 1024);
        c.compress_vec(data, &mut out, FlushCompress::Sync)
            .expect("compress");
        out
    }

    fn inflate_all(d: &mut Deflate, raw: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut got = Vec::new();
        for piece in raw.chunks(READ_CHUNK) {
            d.read_buffer()[..piece.len()].copy_from_slice(piece);
            d.received(piece.len());
            let mut buf = [0u8; 1000];
            loop {
                let n = d.inflate(&mut buf)?;
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        }
        Ok(got)
    }

    #[test]
    fn round_trip_with_sync_flushes() {
        let mut server = Deflate::new();
        let mut client_in = Decompress::new(false);
        for response in [&b"* OK first\r\n"[..], b"a1 OK done\r\n"] {
            let wire = server.deflate(response, false).expect("deflate").to_vec();
            let flushed = server.deflate(&[], true).expect("flush").to_vec();
            let all = [wire, flushed].concat();
            let mut back = Vec::with_capacity(100);
            client_in
                .decompress_vec(&all, &mut back, FlushDecompress::Sync)
                .expect("inflate");
            // Everything written so far is readable after the flush: nothing held back.
            assert_eq!(back, response);
        }
        // A second flush with nothing new sends nothing.
        assert!(server.deflate(&[], true).expect("flush").is_empty());

        let mut client_out = Compress::new(Compression::fast(), false);
        let raw = client_deflate(&mut client_out, b"a2 NOOP\r\n");
        assert_eq!(
            inflate_all(&mut server, &raw).expect("inflate"),
            b"a2 NOOP\r\n"
        );
    }

    #[test]
    fn input_split_anywhere_inflates_the_same() {
        let mut client = Compress::new(Compression::new(6), false);
        let text: Vec<u8> = (0..2000u32)
            .flat_map(|i| format!("a{i} UID FETCH {i}:* (FLAGS)\r\n").into_bytes())
            .collect();
        let raw = client_deflate(&mut client, &text);
        let mut server = Deflate::new();
        let mut got = Vec::new();
        for byte in raw.chunks(1) {
            server.read_buffer()[0] = byte[0];
            server.received(1);
            let mut buf = [0u8; 7];
            loop {
                let n = server.inflate(&mut buf).expect("inflate");
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        }
        assert_eq!(got, text);
    }

    #[test]
    fn output_held_in_the_decompressor_comes_out_without_more_input() {
        let mut client = Compress::new(Compression::new(6), false);
        let text = [vec![b'x'; 3000], b"\r\n".to_vec()].concat();
        let raw = client_deflate(&mut client, &text);
        let mut server = Deflate::new();
        server.read_buffer()[..raw.len()].copy_from_slice(&raw);
        server.received(raw.len());
        let mut got = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let n = server.inflate(&mut buf).expect("inflate");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, text);
    }

    #[test]
    fn a_bomb_is_refused_before_it_inflates_far() {
        let mut server = Deflate::new();
        let mut client = Compress::new(Compression::best(), false);
        let zeros = vec![b'A'; 64 * 1024 * 1024];
        let raw = client_deflate(&mut client, &zeros);
        assert!(raw.len() < 200 * 1024, "{}", raw.len());
        let e = inflate_all(&mut server, &raw).expect_err("a bomb");
        assert!(matches!(InflateError::of(&e), Some(InflateError::Bomb)));
        assert!(server.decompress.total_out() < 4 * 1024 * 1024);
    }

    #[test]
    fn garbage_is_corrupt() {
        let mut server = Deflate::new();
        let e = inflate_all(&mut server, b"a1 LOGIN plain text\r\n").expect_err("not deflate");
        assert!(matches!(InflateError::of(&e), Some(InflateError::Corrupt)));
    }
}
