//! Compression auto-detection (by magic bytes) for layer streams.

use std::fmt;
use std::io::{self, BufReader, Chain, Cursor, Read};

use flate2::read::MultiGzDecoder;

use crate::UnpackError;

/// Compression of a layer stream, detected from its first bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    /// Plain (uncompressed) tar.
    #[default]
    None,
    /// gzip (`1f 8b`), possibly multi-member.
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const BZIP2_MAGIC: &[u8] = b"BZh";
const XZ_MAGIC: &[u8] = &[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];

/// Detects the compression from the first bytes of a stream.
///
/// Returns `Err(UnpackError::Unsupported)` for formats that are recognised but not
/// supported (bzip2, xz). Anything unrecognised is treated as a plain tar.
pub fn detect_compression(prefix: &[u8]) -> Result<Compression, UnpackError> {
    if prefix.starts_with(GZIP_MAGIC) {
        Ok(Compression::Gzip)
    } else if prefix.starts_with(ZSTD_MAGIC) {
        Ok(Compression::Zstd)
    } else if prefix.starts_with(XZ_MAGIC) {
        Err(UnpackError::Unsupported("xz-compressed layers".into()))
    } else if prefix.starts_with(BZIP2_MAGIC) && prefix.len() >= 4 && prefix[3].is_ascii_digit() {
        Err(UnpackError::Unsupported("bzip2-compressed layers".into()))
    } else {
        Ok(Compression::None)
    }
}

type Peeked<R> = Chain<Cursor<Vec<u8>>, R>;

/// A reader yielding the decompressed bytes of a layer stream.
///
/// Created by [`decompress`]; `Send` whenever the wrapped reader is.
pub struct Decompressor<R: Read> {
    inner: Inner<R>,
    compression: Compression,
}

enum Inner<R: Read> {
    Plain(Peeked<R>),
    Gzip(Box<MultiGzDecoder<Peeked<R>>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, BufReader<Peeked<R>>>>),
}

impl<R: Read> Decompressor<R> {
    /// The compression that was detected.
    pub fn compression(&self) -> Compression {
        self.compression
    }
}

impl<R: Read> Read for Decompressor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(r) => r.read(buf),
            Inner::Gzip(r) => r.read(buf),
            Inner::Zstd(r) => r.read(buf),
        }
    }
}

/// Wraps `reader` in a decoder chosen from its magic bytes (plain, gzip or zstd).
pub fn decompress<R: Read>(mut reader: R) -> Result<Decompressor<R>, UnpackError> {
    let mut prefix = vec![0u8; 6];
    let mut got = 0;
    while got < prefix.len() {
        match reader.read(&mut prefix[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(UnpackError::io("reading layer stream", e)),
        }
    }
    prefix.truncate(got);
    let compression = detect_compression(&prefix)?;
    let chained = Cursor::new(prefix).chain(reader);
    let inner = match compression {
        Compression::None => Inner::Plain(chained),
        Compression::Gzip => Inner::Gzip(Box::new(MultiGzDecoder::new(chained))),
        Compression::Zstd => {
            let dec = zstd::stream::read::Decoder::new(chained)
                .map_err(|e| UnpackError::io("initialising zstd decoder", e))?;
            Inner::Zstd(Box::new(dec))
        }
    };
    Ok(Decompressor { inner, compression })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all<R: Read>(mut r: Decompressor<R>) -> (Compression, Vec<u8>) {
        let mut out = Vec::new();
        r.read_to_end(&mut out).expect("read");
        (r.compression(), out)
    }

    #[test]
    fn detects_plain_gzip_zstd() {
        let data = b"hello world, this is a layer".to_vec();
        assert_eq!(
            read_all(decompress(&data[..]).unwrap()),
            (Compression::None, data.clone())
        );

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(
            read_all(decompress(&gz[..]).unwrap()),
            (Compression::Gzip, data.clone())
        );

        let zs = zstd::stream::encode_all(&data[..], 1).unwrap();
        assert_eq!(
            read_all(decompress(&zs[..]).unwrap()),
            (Compression::Zstd, data.clone())
        );
    }

    #[test]
    fn short_and_empty_streams_are_plain() {
        assert_eq!(
            read_all(decompress(&b""[..]).unwrap()),
            (Compression::None, vec![])
        );
        assert_eq!(
            read_all(decompress(&b"\x1f"[..]).unwrap()),
            (Compression::None, b"\x1f".to_vec())
        );
    }

    #[test]
    fn rejects_xz_and_bzip2() {
        assert!(matches!(
            decompress(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2][..]),
            Err(UnpackError::Unsupported(_))
        ));
        assert!(matches!(
            decompress(&b"BZh91AY&SY"[..]),
            Err(UnpackError::Unsupported(_))
        ));
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let mut d = decompress(&[0x1f, 0x8b, 0, 0, 0, 0, 0, 0][..]).unwrap();
        let mut out = Vec::new();
        assert!(d.read_to_end(&mut out).is_err());
    }
}
