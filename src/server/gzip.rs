//! gzip of a response body (RFC 1952): the 10-byte header, one deflate stream at level 1
//! (expositions still compress about 8:1), then the CRC-32 and the length.
//!
//! Prometheus asks every scrape for gzip, so this runs once a scrape. The deflate
//! state (its window and hash tables, a few hundred kilobytes) is kept per thread and
//! reset for each body, instead of allocated and cleared for every scrape.

use std::cell::RefCell;
use std::io;

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress, Status};

thread_local! {
    static DEFLATE: RefCell<Option<Compress>> = const { RefCell::new(None) };
}

/// No file name, no time, no extra fields; deflate; "unknown" operating system.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// The gzip member holding `parts` one after another.
pub fn gzip(parts: &[Bytes]) -> io::Result<Vec<u8>> {
    let len: usize = parts.iter().map(Bytes::len).sum();
    let mut out = Vec::with_capacity(len / 6 + 64);
    out.extend_from_slice(&HEADER);
    let mut crc = crc32fast::Hasher::new();
    DEFLATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let deflate = slot.get_or_insert_with(|| Compress::new(Compression::fast(), false));
        deflate.reset();
        for p in parts {
            crc.update(p);
            feed(deflate, p, &mut out, FlushCompress::None)?;
        }
        feed(deflate, &[], &mut out, FlushCompress::Finish)
    })?;
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE: the length modulo 2^32.
    out.extend_from_slice(&((len & 0xffff_ffff) as u32).to_le_bytes());
    Ok(out)
}

/// Compresses all of `input` into `out`, growing it as needed; with `Finish`, until
/// the stream's end is written.
fn feed(
    deflate: &mut Compress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    flush: FlushCompress,
) -> io::Result<()> {
    let finish = matches!(flush, FlushCompress::Finish);
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(out.capacity().max(16 * 1024));
        }
        let before = deflate.total_in();
        let status = deflate
            .compress_vec(input, out, flush)
            .map_err(io::Error::other)?;
        let used = usize::try_from(deflate.total_in() - before).unwrap_or(input.len());
        input = &input[used.min(input.len())..];
        match status {
            Status::StreamEnd => return Ok(()),
            Status::Ok | Status::BufError if !finish && input.is_empty() => return Ok(()),
            Status::Ok | Status::BufError => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(z: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(z)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn bodies_come_back_whole_and_the_state_is_reused() {
        let big: Vec<u8> = (0..400_000u32)
            .flat_map(|i| format!("node_x{{i=\"{}\"}} {}\n", i % 977, i * 7).into_bytes())
            .collect();
        let cases: Vec<Vec<Bytes>> = vec![
            vec![],
            vec![Bytes::new()],
            vec![Bytes::from_static(b"up 1\n")],
            vec![
                Bytes::from(big[..100_000].to_vec()),
                Bytes::new(),
                Bytes::from(big[100_000..].to_vec()),
            ],
            // Incompressible bytes make the output longer than the input.
            vec![Bytes::from(
                (0..200_000u32)
                    .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                    .collect::<Vec<u8>>(),
            )],
        ];
        // Twice, so that the second round runs on the kept, reset state.
        for _ in 0..2 {
            for parts in &cases {
                let z = gzip(parts).unwrap();
                let whole: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
                assert_eq!(gunzip(&z), whole);
            }
        }
        let z = gzip(&[Bytes::from(big.clone())]).unwrap();
        assert!(z.len() * 3 < big.len(), "{} of {}", z.len(), big.len());
    }
}
