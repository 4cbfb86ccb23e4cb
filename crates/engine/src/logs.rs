//! Container logs in the CRI format podman and kubernetes use: one record per line,
//! `<RFC3339Nano> <stdout|stderr> <F|P> <text>`, where P marks a partial line continued by the next record.

use std::io::Write;

use crate::util;

/// Which stream a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// fd 1 (and everything from a tty).
    Stdout,
    /// fd 2.
    Stderr,
}

impl Stream {
    fn word(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Longest partial line kept in memory before it is written as a P record.
const MAX_PENDING: usize = 16 * 1024;

/// Splits a stream's chunks into log records. One per stream; the monitor owns them.
#[derive(Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Appends `chunk` and writes every complete line as an F record (and an over-long partial one as P).
    pub fn feed(&mut self, out: &mut impl Write, stream: Stream, chunk: &[u8]) -> std::io::Result<()> {
        self.pending.extend_from_slice(chunk);
        let mut buf = Vec::new();
        let ts = util::now();
        while let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=pos).collect();
            record(&mut buf, &ts, stream, 'F', &line[..line.len() - 1]);
        }
        if self.pending.len() > MAX_PENDING {
            let part = std::mem::take(&mut self.pending);
            record(&mut buf, &ts, stream, 'P', &part);
        }
        if !buf.is_empty() {
            out.write_all(&buf)?;
        }
        Ok(())
    }

    /// Writes what is left (a last line without a newline) as a full record.
    pub fn finish(&mut self, out: &mut impl Write, stream: Stream) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        let part = std::mem::take(&mut self.pending);
        record(&mut buf, &util::now(), stream, 'F', &part);
        out.write_all(&buf)
    }
}

fn record(buf: &mut Vec<u8>, ts: &str, stream: Stream, tag: char, text: &[u8]) {
    // A tty sends "\r\n"; the \r is noise in a log.
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    buf.extend_from_slice(format!("{ts} {} {tag} ", stream.word()).as_bytes());
    buf.extend_from_slice(text);
    buf.push(b'\n');
}

/// One parsed log line (partial records already joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// RFC3339Nano time of the (first part of the) line.
    pub time: String,
    /// Stream.
    pub stream: Stream,
    /// The line, without its newline.
    pub text: Vec<u8>,
}

/// Turns raw log bytes into entries, joining P records with their continuation. Feed it the file as it
/// grows: an incomplete last record is left unconsumed for the next call.
#[derive(Default)]
pub struct Parser {
    partial: Option<Entry>,
}

impl Parser {
    /// Parses the complete records at the start of `data`; returns them and how many bytes they used.
    pub fn push(&mut self, data: &[u8]) -> (Vec<Entry>, usize) {
        let mut out = Vec::new();
        let mut used = 0;
        while let Some(nl) = data[used..].iter().position(|&b| b == b'\n') {
            let line = &data[used..used + nl];
            used += nl + 1;
            let Some((time, stream, tag, text)) = parse(line) else {
                continue;
            };
            let e = match self.partial.take() {
                Some(mut p) => {
                    p.text.extend_from_slice(text);
                    p
                }
                None => Entry {
                    time: time.to_string(),
                    stream,
                    text: text.to_vec(),
                },
            };
            if tag == b'P' {
                self.partial = Some(e);
            } else {
                out.push(e);
            }
        }
        (out, used)
    }
}

fn parse(line: &[u8]) -> Option<(&str, Stream, u8, &[u8])> {
    let mut it = line.splitn(4, |&b| b == b' ');
    let time = std::str::from_utf8(it.next()?).ok()?;
    let stream = match it.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let tag = *it.next()?.first()?;
    Some((time, stream, tag, it.next().unwrap_or(b"")))
}

/// Reads every complete entry of a log file.
pub fn read_all(path: &std::path::Path) -> std::io::Result<Vec<Entry>> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut { f }, &mut data)?;
    Ok(Parser::default().push(&data).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_with_partials() {
        let mut log = Vec::new();
        let mut s = LineSplitter::default();
        s.feed(&mut log, Stream::Stdout, b"hello\nwor").unwrap();
        s.feed(&mut log, Stream::Stdout, b"ld\r\n").unwrap();
        let mut e = LineSplitter::default();
        e.feed(&mut log, Stream::Stderr, &vec![b'x'; MAX_PENDING + 1])
            .unwrap();
        e.feed(&mut log, Stream::Stderr, b"y\n").unwrap();
        s.feed(&mut log, Stream::Stdout, b"tail").unwrap();
        s.finish(&mut log, Stream::Stdout).unwrap();
        let (entries, used) = Parser::default().push(&log);
        assert_eq!(used, log.len());
        let got: Vec<_> = entries
            .into_iter()
            .map(|x| (x.stream, String::from_utf8(x.text).unwrap()))
            .collect();
        assert_eq!(got[0], (Stream::Stdout, "hello".into()));
        assert_eq!(got[1], (Stream::Stdout, "world".into()));
        assert_eq!(got[2].0, Stream::Stderr);
        assert_eq!(got[2].1.len(), MAX_PENDING + 2);
        assert_eq!(got[3], (Stream::Stdout, "tail".into()));
    }
}
