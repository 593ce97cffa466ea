//! Bounded command output.
//!
//! A command on a host can print without end (`head -c 200M /dev/zero |
//! base64`, a runaway log, a hostile host); rigger must not hold all of it.
//! An [`OutputLimit`] is applied where the bytes arrive (the SSH channel's
//! events, the persistent shell's frames), to stdout and stderr separately:
//!
//! - a user's command (`command`, `shell`, `raw`, `script`) keeps the
//!   **first** bytes of each stream up to the limit ([`OutputLimit::Keep`]);
//!   the rest is read and discarded, so the command is never blocked on a
//!   full pipe, and counted ([`ExecOutput::stdout_dropped`]). The head, not
//!   the tail, is kept: what is kept is then exactly the start of the real
//!   output (its first lines, whole), and a flood on stdout cannot push the
//!   error messages on stderr out, as each stream has its own limit;
//! - output that rigger parses (a user module's JSON) is refused beyond the
//!   limit ([`OutputLimit::Refuse`]): a cut JSON document must never be
//!   taken for the whole;
//! - rigger's own scripts whose whole output it needs (a file it reads) are
//!   not limited ([`OutputLimit::Unlimited`]).
//!
//! The limit is `--max-output` / `RIGGER_MAX_OUTPUT` ([`DEFAULT_MAX_OUTPUT`]).

pub use super::error::human_size;
use super::error::ConnError;

/// What is kept of each of a command's output streams by default: 16 MiB.
pub const DEFAULT_MAX_OUTPUT: usize = 16 * 1024 * 1024;

/// How much of a command's stdout and of its stderr (each) rigger holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OutputLimit {
    /// Everything: rigger's own scripts whose whole output it needs.
    #[default]
    Unlimited,
    /// The first N bytes of each stream; the rest is read, counted and dropped.
    Keep(usize),
    /// At most N bytes per stream; more is an error ([`ConnError::OutputTooLarge`]).
    Refuse(usize),
}

impl OutputLimit {
    fn max(self) -> usize {
        match self {
            OutputLimit::Unlimited => usize::MAX,
            OutputLimit::Keep(n) | OutputLimit::Refuse(n) => n,
        }
    }

    /// The same kind of limit, `extra` bytes larger (room for a marker line).
    pub fn plus(self, extra: usize) -> Self {
        match self {
            OutputLimit::Unlimited => OutputLimit::Unlimited,
            OutputLimit::Keep(n) => OutputLimit::Keep(n.saturating_add(extra)),
            OutputLimit::Refuse(n) => OutputLimit::Refuse(n.saturating_add(extra)),
        }
    }

    /// Append `data` to `kept` up to the limit; what does not fit is added to `dropped`.
    pub fn keep(self, kept: &mut Vec<u8>, dropped: &mut u64, data: &[u8]) {
        let room = self.max().saturating_sub(kept.len());
        let take = room.min(data.len());
        kept.extend_from_slice(&data[..take]);
        *dropped += (data.len() - take) as u64;
    }

    /// Bring output collected before the limit applied (the `sudo` marker's
    /// leftovers) within it.
    pub fn trim(self, kept: &mut Vec<u8>, dropped: &mut u64) {
        if kept.len() > self.max() {
            *dropped += (kept.len() - self.max()) as u64;
            kept.truncate(self.max());
        }
    }

    /// The error for output over a [`OutputLimit::Refuse`] limit, `Ok` otherwise.
    pub fn check(self, out: &ExecOutput) -> Result<(), ConnError> {
        let OutputLimit::Refuse(limit) = self else {
            return Ok(());
        };
        for (stream, kept, dropped) in [
            ("stdout", out.stdout.len(), out.stdout_dropped),
            ("stderr", out.stderr.len(), out.stderr_dropped),
        ] {
            if dropped > 0 {
                return Err(ConnError::OutputTooLarge {
                    stream,
                    limit,
                    printed: kept as u64 + dropped,
                });
            }
        }
        Ok(())
    }
}

/// The collected result of a command.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Bytes of stdout read past the request's [`OutputLimit`] and dropped.
    pub stdout_dropped: u64,
    /// Bytes of stderr read past the request's [`OutputLimit`] and dropped.
    pub stderr_dropped: u64,
}

impl ExecOutput {
    /// A successful result with this output and nothing on stderr (an answer
    /// known without running anything).
    pub fn ok(stdout: Vec<u8>) -> Self {
        ExecOutput {
            status: 0,
            stdout,
            ..Default::default()
        }
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// One stream of the persistent shell's output, read until the end of its
/// frame: `token` then a trailer up to a newline (the exit status on
/// stdout, nothing on stderr). What comes before the token is kept within
/// the limit; only the last bytes that may still be the start of the token
/// are held back, so the frame's end is found however much was dropped.
#[derive(Debug)]
pub struct Framed {
    token: Vec<u8>,
    limit: OutputLimit,
    pub kept: Vec<u8>,
    pub dropped: u64,
    /// Not yet known to be output: they may begin the token.
    held: Vec<u8>,
    /// The trailer once the token and its newline were seen.
    trailer: Option<Vec<u8>>,
}

/// Longest trailer after the token: the loop prints a status (`%d`) there.
const TRAILER_MAX: usize = 64;

impl Framed {
    pub fn new(token: &str, limit: OutputLimit) -> Self {
        Framed {
            token: token.as_bytes().to_vec(),
            limit,
            kept: Vec::new(),
            dropped: 0,
            held: Vec::new(),
            trailer: None,
        }
    }

    /// The text between the token and its newline, once the frame ended.
    pub fn trailer(&self) -> Option<&[u8]> {
        self.trailer.as_deref()
    }

    /// Take in the next bytes of the stream (none after the frame's end).
    pub fn push(&mut self, data: &[u8]) -> Result<(), FrameError> {
        if self.trailer.is_some() {
            return Ok(());
        }
        self.held.extend_from_slice(data);
        match find(&self.held, &self.token) {
            Some(at) => {
                self.limit.keep(&mut self.kept, &mut self.dropped, &self.held[..at]);
                self.held.drain(..at);
                let after = &self.held[self.token.len()..];
                match after.iter().position(|&b| b == b'\n') {
                    Some(nl) => self.trailer = Some(after[..nl].to_vec()),
                    None if after.len() > TRAILER_MAX => return Err(FrameError::MalformedEnd),
                    None => {}
                }
            }
            None => {
                let safe = self.held.len().saturating_sub(self.token.len() - 1);
                self.limit.keep(&mut self.kept, &mut self.dropped, &self.held[..safe]);
                self.held.drain(..safe);
            }
        }
        Ok(())
    }
}

/// The end of a framed stream cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The token arrived but no newline followed within `TRAILER_MAX` bytes.
    #[error("malformed end of a command's output")]
    MalformedEnd,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_holds_the_head_and_counts_the_rest() {
        let limit = OutputLimit::Keep(10);
        let (mut kept, mut dropped) = (Vec::new(), 0u64);
        limit.keep(&mut kept, &mut dropped, b"0123");
        limit.keep(&mut kept, &mut dropped, b"456789abcdef");
        limit.keep(&mut kept, &mut dropped, &[b'x'; 1000]);
        assert_eq!((kept.as_slice(), dropped), (&b"0123456789"[..], 6 + 1000));
        // Memory: the kept buffer never grows past the limit, whatever arrives.
        for _ in 0..10_000 {
            limit.keep(&mut kept, &mut dropped, &[b'y'; 4096]);
        }
        assert!(kept.capacity() < 64, "{}", kept.capacity());
        assert_eq!(dropped, 1006 + 10_000 * 4096);
        // Trimming output collected before the limit applied.
        let mut early = b"RIGGER leftovers".to_vec();
        let mut d = 0;
        limit.trim(&mut early, &mut d);
        assert_eq!((early.as_slice(), d), (&b"RIGGER lef"[..], 6));
        // Unlimited keeps everything.
        let (mut all, mut none) = (Vec::new(), 0u64);
        OutputLimit::Unlimited.keep(&mut all, &mut none, &[1; 5000]);
        assert_eq!((all.len(), none), (5000, 0));
    }

    #[test]
    fn refuse_is_an_error_naming_the_stream_and_sizes() {
        let limit = OutputLimit::Refuse(4);
        let mut out = ExecOutput::default();
        limit.keep(&mut out.stdout, &mut out.stdout_dropped, b"ok");
        limit.keep(&mut out.stderr, &mut out.stderr_dropped, b"too much");
        assert!(limit.check(&out).is_ok() == (out.stderr_dropped == 0));
        let e = limit.check(&out).unwrap_err().to_string();
        assert!(e.contains("more than 4 bytes on stderr (at least 8 bytes)"), "{e}");
        assert!(e.contains("--max-output") && e.contains("RIGGER_MAX_OUTPUT"), "{e}");
        assert!(OutputLimit::Keep(4).check(&out).is_ok());
    }

    #[test]
    fn framed_stream_finds_its_end_after_dropping_output() {
        let token = "RIGGER-END-0123456789abcdef ";
        // The token split over every possible boundary, after more than the limit.
        let mut body: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
        body.extend_from_slice(token.as_bytes());
        body.extend_from_slice(b"17\n");
        for piece in [1, 2, 3, 7, 27, 28, 29, 4096, body.len()] {
            let mut f = Framed::new(token, OutputLimit::Keep(100));
            for chunk in body.chunks(piece) {
                f.push(chunk).unwrap();
                assert!(f.held.len() <= token.len() + TRAILER_MAX, "held {}", f.held.len());
            }
            assert_eq!(f.trailer(), Some(&b"17"[..]), "piece {piece}");
            assert_eq!(f.kept, body[..100], "piece {piece}");
            assert_eq!(f.dropped, 4900, "piece {piece}");
        }
        // Unlimited: everything before the token; nothing after it counts.
        let mut f = Framed::new("END", OutputLimit::Unlimited);
        f.push(b"line one\nline twoEN").unwrap();
        assert!(f.trailer().is_none());
        f.push(b"D\nlater").unwrap();
        f.push(b"more").unwrap();
        assert_eq!(
            (f.kept.as_slice(), f.trailer()),
            (&b"line one\nline two"[..], Some(&b""[..]))
        );
        // A token without its newline for too long is an error, not a growing buffer.
        let mut f = Framed::new("END", OutputLimit::Unlimited);
        assert_eq!(
            f.push(&[b"END".as_slice(), &[b'9'; 100]].concat()),
            Err(FrameError::MalformedEnd)
        );
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(100), "100 bytes");
        assert_eq!(human_size(1 << 20), "1048576 bytes (1.0 MiB)");
        assert_eq!(human_size(16 << 20), "16777216 bytes (16.0 MiB)");
    }
}
