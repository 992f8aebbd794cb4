//! The log's directory: segment files named by the `seq` of their first line
//! (`00000000000000000001.jsonl`, 20 digits), `anchor.json` (the newest checkpoint line, for
//! `verify` to find truncation), and `lock` (held by the one writer).
//!
//! Only the newest segment is ever written, and only at its end. Opening recovers from a
//! crash: a torn last line (no newline, or not JSON) is cut off, and the writer goes on after
//! the last whole line.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use super::line;

pub const ANCHOR: &str = "anchor.json";
const LOCK: &str = "lock";
const SUFFIX: &str = ".jsonl";

/// The file name of the segment whose first line is `seq`.
pub fn name(seq: u64) -> String {
    format!("{seq:020}{SUFFIX}")
}

/// The first `seq` a segment's file name gives, if it is a segment's name.
pub fn first_seq(file_name: &str) -> Option<u64> {
    let digits = file_name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segments in `dir`, oldest first.
pub fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(seq) = entry.file_name().to_str().and_then(first_seq) {
            segments.push((seq, entry.path()));
        }
    }
    segments.sort_unstable();
    Ok(segments)
}

/// A segment read line by line, as the writer's recovery, `verify` and `export` all read it.
pub struct Lines {
    reader: BufReader<File>,
    buf: Vec<u8>,
}

/// What [`Lines::next`] found.
pub enum Line<'a> {
    /// A line ended by `\n`, without it.
    Whole(&'a [u8]),
    /// The segment's last bytes, with no `\n` after them: this many.
    Torn(usize),
}

impl Lines {
    pub fn open(path: &Path) -> io::Result<Lines> {
        Ok(Lines {
            reader: BufReader::new(File::open(path)?),
            buf: Vec::new(),
        })
    }

    /// The next line; `None` at the end of the segment.
    pub fn next(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let n = self.reader.read_until(b'\n', &mut self.buf)?;
        Ok(match self.buf.split_last() {
            None => None,
            Some((b'\n', text)) => Some(Line::Whole(text)),
            Some(_) => Some(Line::Torn(n)),
        })
    }
}

/// The last whole line of a segment, and what the writer needs to go on after it.
#[derive(Debug)]
pub struct Tail {
    pub seq: u64,
    pub hash: String,
    /// Bytes up to and including the last whole line's newline.
    pub len: u64,
    /// Whether the last run closed the log (its last lines: `audit.close`, a checkpoint).
    pub closed: bool,
}

/// Reads `path` to its last whole line: one that ends in a newline and is a JSON object with a
/// `seq`. `None` when it holds none.
pub fn tail(path: &Path) -> io::Result<Option<Tail>> {
    let mut lines = Lines::open(path)?;
    let (mut len, mut found, mut closing) = (0u64, None, false);
    while let Some(Line::Whole(text)) = lines.next()? {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(text) else {
            break;
        };
        let Some(seq) = value.get("seq").and_then(serde_json::Value::as_u64) else {
            break;
        };
        let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or("");
        let closed = closing && kind == "checkpoint";
        closing =
            kind == "event" && value.get("event").and_then(|e| e.as_str()) == Some("audit.close");
        len += text.len() as u64 + 1;
        found = Some(Tail {
            seq,
            hash: line::hash(text),
            len,
            closed,
        });
    }
    Ok(found)
}

/// Takes the directory's lock, or says who holds it.
pub fn lock(dir: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!("{} is in use by another writer", dir.display()),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Creates a directory for the log, readable by the gateway's user only.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Opens (creating) the segment whose first line is `seq` for appending.
pub fn open_for_append(dir: &Path, seq: u64) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(dir.join(name(seq)))?;
    sync_dir(dir)?;
    Ok(file)
}

/// Replaces the anchor with `checkpoint` (a checkpoint line, without its newline), durably.
pub fn write_anchor(dir: &Path, checkpoint: &[u8]) -> io::Result<()> {
    let tmp = dir.join("anchor.json.tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(checkpoint)?;
    file.write_all(b"\n")?;
    file.sync_data()?;
    fs::rename(&tmp, dir.join(ANCHOR))?;
    sync_dir(dir)
}

/// The first line of a segment, as text.
pub fn first_line(path: &Path) -> io::Result<Option<String>> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    Ok(line.strip_suffix('\n').map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_twenty_digits_and_round_trip() {
        assert_eq!(name(1), "00000000000000000001.jsonl");
        assert_eq!(first_seq(&name(12345)), Some(12345));
        assert_eq!(first_seq("1.jsonl"), None);
        assert_eq!(first_seq("0000000000000000000a.jsonl"), None);
        assert_eq!(first_seq("00000000000000000001.json"), None);
    }

    #[test]
    fn a_torn_last_line_is_not_part_of_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name(1));
        let first = br#"{"seq":1,"kind":"event","event":"audit.open"}"#;
        let mut text = first.to_vec();
        text.extend_from_slice(b"\n{\"seq\":2,\"ki");
        fs::write(&path, &text).unwrap();
        let tail = tail(&path).unwrap().unwrap();
        assert_eq!((tail.seq, tail.len), (1, first.len() as u64 + 1));
        assert_eq!(tail.hash, line::hash(first));
        assert!(!tail.closed);
    }
}
