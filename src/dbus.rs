//! A D-Bus client for the few calls the systemd collector makes: method calls on a
//! Unix socket, their replies, and the types those replies hold (strings, object
//! paths, 32- and 64-bit unsigned numbers, structs, arrays, variants).
//!
//! The wire format is the D-Bus specification's: a 16-byte fixed header (byte order,
//! message type, flags, version, body length, serial), an array of header fields
//! padded to 8 bytes, then the body, every value aligned to its size. Calls are
//! pipelined: [`Connection::call_all`] keeps up to [`MAX_PENDING`] calls in flight and
//! reads the replies, matched by serial, so a hundred property reads cost a few round
//! trips. The window stays well under the bus's own limit on a connection's pending
//! replies (dbus-daemon's `max_replies_per_connection`, 128 on Debian's system bus),
//! past which the bus answers `LimitsExceeded` instead of passing the call on.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The largest message accepted: the specification's limit is 128 MiB; a reply the
/// collector asks for is far below this one.
const MAX_MESSAGE: usize = 16 << 20;

/// The most calls one connection has waiting for a reply. The system bus refuses the
/// 129th; half of that leaves room for anything else the bus counts.
pub const MAX_PENDING: usize = 64;

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the bus refused the login: {0}")]
    Auth(String),
    #[error("{name}: {message}")]
    Remote { name: String, message: String },
    #[error("malformed message from the bus: {0}")]
    Malformed(&'static str),
    #[error("unsupported bus address {0:?} (only unix:path=…)")]
    Address(String),
    #[error("no reply within {0:?}")]
    Timeout(Duration),
}

/// One method call.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub destination: &'a str,
    pub path: &'a str,
    pub interface: &'a str,
    pub member: &'a str,
    /// The arguments, all strings (`s`), which is all the collector passes.
    pub args: &'a [&'a str],
}

/// A connection that has logged in and said Hello.
pub struct Connection {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    serial: u32,
}

/// The socket path of a `unix:path=…` address (the first one, when `;` lists more).
pub fn socket_path(address: &str) -> Result<&str, Error> {
    let first = address.split(';').next().unwrap_or_default();
    first
        .strip_prefix("unix:")
        .and_then(|kv| kv.split(',').find_map(|p| p.strip_prefix("path=")))
        .filter(|p| !p.is_empty())
        .ok_or_else(|| Error::Address(address.to_owned()))
}

impl Connection {
    /// Connects to `address`, logs in as this process's user (EXTERNAL) and says Hello.
    pub fn open(address: &str, timeout: Duration) -> Result<Connection, Error> {
        let stream = UnixStream::connect(socket_path(address)?)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let writer = stream.try_clone()?;
        let mut c = Connection {
            reader: BufReader::with_capacity(64 * 1024, stream),
            writer,
            serial: 0,
        };
        c.authenticate()?;
        c.call_all(
            &[Call {
                destination: "org.freedesktop.DBus",
                path: "/org/freedesktop/DBus",
                interface: "org.freedesktop.DBus",
                member: "Hello",
                args: &[],
            }],
            timeout,
        )?
        .pop()
        .unwrap_or(Err(Error::Malformed("no reply to Hello")))?;
        Ok(c)
    }

    fn authenticate(&mut self) -> Result<(), Error> {
        let uid = crate::sys::euid().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        self.writer
            .write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let mut line = String::new();
        (&mut self.reader).take(512).read_line(&mut line)?;
        if !line.starts_with("OK ") {
            return Err(Error::Auth(line.trim_end().to_owned()));
        }
        self.writer.write_all(b"BEGIN\r\n")?;
        Ok(())
    }

    /// Sends the calls, at most [`MAX_PENDING`] in flight at a time, and waits for each
    /// one's reply: its body, or the error the callee answered with.
    pub fn call_all(
        &mut self,
        calls: &[Call<'_>],
        timeout: Duration,
    ) -> Result<Vec<Result<Body, Error>>, Error> {
        let mut out = Vec::new();
        let mut waiting: HashMap<u32, usize> = HashMap::new();
        let mut next = 0;
        let mut replies: Vec<Option<Result<Body, Error>>> =
            (0..calls.len()).map(|_| None).collect();
        let deadline = Instant::now() + timeout;
        loop {
            // The window is topped up once half of it has been answered: fewer writes
            // than one per reply, and never more than MAX_PENDING outstanding.
            if next < calls.len() && waiting.len() <= MAX_PENDING / 2 {
                out.clear();
                while next < calls.len() && waiting.len() < MAX_PENDING {
                    self.serial = self.serial.wrapping_add(1).max(1);
                    encode_call(&mut out, self.serial, &calls[next]);
                    waiting.insert(self.serial, next);
                    next += 1;
                }
                self.writer.write_all(&out)?;
            }
            if waiting.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout(timeout));
            }
            let m = self.read_message()?;
            let Some(i) = m.reply_serial.and_then(|s| waiting.remove(&s)) else {
                // A signal (NameAcquired after Hello) or a reply to nothing asked.
                continue;
            };
            replies[i] = Some(match m.kind {
                METHOD_RETURN => Ok(m.body),
                ERROR => {
                    let message = m.body.reader().string().unwrap_or_default().to_owned();
                    Err(Error::Remote {
                        name: m.error_name.unwrap_or_default(),
                        message,
                    })
                }
                _ => Err(Error::Malformed(
                    "a reply that is neither a return nor an error",
                )),
            });
        }
        Ok(replies
            .into_iter()
            .map(|r| r.unwrap_or(Err(Error::Malformed("no reply"))))
            .collect())
    }

    fn read_message(&mut self) -> Result<Message, Error> {
        let mut fixed = [0u8; 16];
        self.reader.read_exact(&mut fixed)?;
        let big = match fixed[0] {
            b'l' => false,
            b'B' => true,
            _ => return Err(Error::Malformed("unknown byte order")),
        };
        let u32_at = |i: usize| {
            let b = [fixed[i], fixed[i + 1], fixed[i + 2], fixed[i + 3]];
            if big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let body_len = u32_at(4) as usize;
        let fields_len = u32_at(12) as usize;
        if body_len > MAX_MESSAGE || fields_len > MAX_MESSAGE {
            return Err(Error::Malformed("a message over 16 MiB"));
        }
        let padded = (16 + fields_len).div_ceil(8) * 8;
        let mut header = vec![0u8; padded];
        header[..16].copy_from_slice(&fixed);
        self.reader.read_exact(&mut header[16..])?;
        let mut body = vec![0u8; body_len];
        self.reader.read_exact(&mut body)?;
        let mut m = Message {
            kind: fixed[1],
            reply_serial: None,
            error_name: None,
            body: Body { data: body, big },
        };
        // The header fields: a(yv), starting at offset 12 (its length) of the header.
        let mut r = Reader {
            data: &header[..16 + fields_len],
            pos: 16,
            big,
        };
        while r.pos < r.data.len() {
            r.align(8)?;
            let code = r.byte()?;
            let sig = r.signature()?;
            match (code, sig) {
                (5, "u") => m.reply_serial = Some(r.u32()?),
                (4, "s") => m.error_name = Some(r.string()?.to_owned()),
                (_, s) => r.skip(s)?,
            }
        }
        Ok(m)
    }
}

struct Message {
    kind: u8,
    reply_serial: Option<u32>,
    error_name: Option<String>,
    body: Body,
}

/// A reply's body, to be read with [`Body::reader`].
#[derive(Debug)]
pub struct Body {
    data: Vec<u8>,
    big: bool,
}

impl Body {
    pub fn reader(&self) -> Reader<'_> {
        Reader {
            data: &self.data,
            pos: 0,
            big: self.big,
        }
    }
}

/// Reads values in order from a body, each at its alignment.
#[derive(Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    big: bool,
}

/// A variant's value, for the types the collector reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    U32(u32),
    U64(u64),
    Other,
}

impl<'a> Reader<'a> {
    pub fn align(&mut self, n: usize) -> Result<(), Error> {
        let to = self.pos.div_ceil(n) * n;
        if to > self.data.len() {
            return Err(Error::Malformed("cut off"));
        }
        self.pos = to;
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or(Error::Malformed("cut off"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, Error> {
        self.align(4)?;
        let b: [u8; 4] = self
            .take(4)?
            .try_into()
            .map_err(|_| Error::Malformed("u32"))?;
        Ok(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    pub fn u64(&mut self) -> Result<u64, Error> {
        self.align(8)?;
        let b: [u8; 8] = self
            .take(8)?
            .try_into()
            .map_err(|_| Error::Malformed("u64"))?;
        Ok(if self.big {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }

    /// A string or an object path.
    pub fn string(&mut self) -> Result<&'a str, Error> {
        let len = self.u32()? as usize;
        let s = self.take(len)?;
        self.take(1)?;
        std::str::from_utf8(s).map_err(|_| Error::Malformed("a string that is not UTF-8"))
    }

    fn signature(&mut self) -> Result<&'a str, Error> {
        let len = self.byte()? as usize;
        let s = self.take(len)?;
        self.take(1)?;
        std::str::from_utf8(s).map_err(|_| Error::Malformed("a signature that is not ASCII"))
    }

    /// The array's end position, after its length and the padding before its first
    /// element (aligned to `element_align`).
    pub fn array(&mut self, element_align: usize) -> Result<usize, Error> {
        let len = self.u32()? as usize;
        self.align(element_align)?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.data.len())
            .ok_or(Error::Malformed("an array past the end"))?;
        Ok(end)
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    /// A variant: its signature, then the value.
    pub fn variant(&mut self) -> Result<Value, Error> {
        let sig = self.signature()?;
        Ok(match sig {
            "s" | "o" => Value::Str(self.string()?.to_owned()),
            "u" => Value::U32(self.u32()?),
            "t" => Value::U64(self.u64()?),
            other => {
                self.skip(other)?;
                Value::Other
            }
        })
    }

    /// Skips one value of a single complete type.
    fn skip(&mut self, sig: &str) -> Result<(), Error> {
        let mut rest = sig;
        while !rest.is_empty() {
            rest = self.skip_one(rest, 0)?;
        }
        Ok(())
    }

    /// Skips the value of the first complete type in `sig`; returns the rest of `sig`.
    fn skip_one<'s>(&mut self, sig: &'s str, depth: usize) -> Result<&'s str, Error> {
        if depth > 32 {
            return Err(Error::Malformed("types nested too deep"));
        }
        let (first, rest) = sig.split_at(1);
        match first {
            "y" => {
                self.take(1)?;
            }
            "b" | "i" | "u" | "h" => {
                self.u32()?;
            }
            "n" | "q" => {
                self.align(2)?;
                self.take(2)?;
            }
            "x" | "t" | "d" => {
                self.u64()?;
            }
            "s" | "o" => {
                self.string()?;
            }
            "g" => {
                self.signature()?;
            }
            "v" => {
                let inner = self.signature()?;
                let mut r = inner;
                while !r.is_empty() {
                    r = self.skip_one(r, depth + 1)?;
                }
            }
            "a" => {
                let element = complete_type(rest)?;
                let end = self.array(alignment(element))?;
                while self.pos < end {
                    self.skip_one(element, depth + 1)?;
                }
                return Ok(&rest[element.len()..]);
            }
            "(" => {
                self.align(8)?;
                let inner = complete_type(sig)?;
                let mut r = &inner[1..inner.len() - 1];
                while !r.is_empty() {
                    r = self.skip_one(r, depth + 1)?;
                }
                return Ok(&sig[inner.len()..]);
            }
            "{" => {
                self.align(8)?;
                let inner = complete_type(sig)?;
                let mut r = &inner[1..inner.len() - 1];
                while !r.is_empty() {
                    r = self.skip_one(r, depth + 1)?;
                }
                return Ok(&sig[inner.len()..]);
            }
            _ => return Err(Error::Malformed("a type this client does not know")),
        }
        Ok(rest)
    }
}

/// The first complete type of `sig` (`a{sv}`, `(ss)`, `u`, …).
fn complete_type(sig: &str) -> Result<&str, Error> {
    let b = sig.as_bytes();
    let mut i = 0;
    while b.get(i) == Some(&b'a') {
        i += 1;
    }
    match b.get(i) {
        Some(b'(') | Some(b'{') => {
            let mut depth = 0;
            for (j, c) in b.iter().enumerate().skip(i) {
                match c {
                    b'(' | b'{' => depth += 1,
                    b')' | b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(&sig[..=j]);
                        }
                    }
                    _ => {}
                }
            }
            Err(Error::Malformed("an unbalanced signature"))
        }
        Some(_) => Ok(&sig[..=i]),
        None => Err(Error::Malformed("an empty signature")),
    }
}

fn alignment(sig: &str) -> usize {
    match sig.as_bytes().first() {
        Some(b'y' | b'g' | b'v') => 1,
        Some(b'n' | b'q') => 2,
        Some(b'x' | b't' | b'd' | b'(' | b'{') => 8,
        _ => 4,
    }
}

/// Appends `call` as a little-endian method call with `serial`.
fn encode_call(out: &mut Vec<u8>, serial: u32, call: &Call<'_>) {
    let mut body = Vec::new();
    for a in call.args {
        put_string(&mut body, 0, a);
    }
    let start = out.len();
    out.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&serial.to_le_bytes());
    let len_at = out.len();
    out.extend_from_slice(&[0; 4]);
    let fields_start = out.len();
    let signature = "s".repeat(call.args.len());
    let field = |out: &mut Vec<u8>, code: u8, sig: &str, value: &str| {
        pad(out, start, 8);
        out.push(code);
        put_signature(out, sig);
        if sig == "g" {
            put_signature(out, value);
        } else {
            put_string(out, start, value);
        }
    };
    field(out, 1, "o", call.path);
    field(out, 2, "s", call.interface);
    field(out, 3, "s", call.member);
    field(out, 6, "s", call.destination);
    if !signature.is_empty() {
        field(out, 8, "g", &signature);
    }
    let fields_len = (out.len() - fields_start) as u32;
    out[len_at..len_at + 4].copy_from_slice(&fields_len.to_le_bytes());
    pad(out, start, 8);
    out.extend_from_slice(&body);
}

/// Pads `out` with zeros to a multiple of `n` counted from `start`.
fn pad(out: &mut Vec<u8>, start: usize, n: usize) {
    while (out.len() - start) % n != 0 {
        out.push(0);
    }
}

fn put_string(out: &mut Vec<u8>, start: usize, s: &str) {
    pad(out, start, 4);
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn put_signature(out: &mut Vec<u8>, s: &str) {
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            socket_path("unix:path=/run/dbus/system_bus_socket").unwrap(),
            "/run/dbus/system_bus_socket"
        );
        assert_eq!(
            socket_path("unix:path=/tmp/b,guid=1234;tcp:host=x").unwrap(),
            "/tmp/b"
        );
        assert!(socket_path("tcp:host=localhost,port=1").is_err());
        assert!(socket_path("unix:abstract=/tmp/x").is_err());
    }

    #[test]
    fn a_call_is_laid_out_as_the_specification_says() {
        let mut out = Vec::new();
        encode_call(
            &mut out,
            7,
            &Call {
                destination: "org.freedesktop.systemd1",
                path: "/org/freedesktop/systemd1",
                interface: "org.freedesktop.DBus.Properties",
                member: "Get",
                args: &["org.freedesktop.systemd1.Manager", "Version"],
            },
        );
        assert_eq!(&out[..4], b"l\x01\x00\x01");
        let body_len = u32::from_le_bytes(out[4..8].try_into().unwrap()) as usize;
        let fields_len = u32::from_le_bytes(out[12..16].try_into().unwrap()) as usize;
        let body_at = (16 + fields_len).div_ceil(8) * 8;
        assert_eq!(out.len(), body_at + body_len);
        let body = Body {
            data: out[body_at..].to_vec(),
            big: false,
        };
        let mut r = body.reader();
        assert_eq!(r.string().unwrap(), "org.freedesktop.systemd1.Manager");
        assert_eq!(r.string().unwrap(), "Version");
    }

    #[test]
    fn skipping_nested_types() {
        // a{sv} holding one entry "k" → variant u32 5, then a u64.
        let mut d = Vec::new();
        d.extend_from_slice(&[0; 4]); // array length, patched below
        pad(&mut d, 0, 8);
        let start = d.len();
        put_string(&mut d, 0, "k");
        put_signature(&mut d, "u");
        pad(&mut d, 0, 4);
        d.extend_from_slice(&5u32.to_le_bytes());
        let len = (d.len() - start) as u32;
        d[..4].copy_from_slice(&len.to_le_bytes());
        pad(&mut d, 0, 8);
        d.extend_from_slice(&9u64.to_le_bytes());
        let body = Body {
            data: d,
            big: false,
        };
        let mut r = body.reader();
        r.skip("a{sv}").unwrap();
        assert_eq!(r.u64().unwrap(), 9);
        assert!(r.u32().is_err(), "nothing after");
    }
}
