//! A minimal deterministic tar writer: ustar headers, with a PAX extended header in front
//! of a member whenever a value does not fit (long names/link targets, big ids, sizes or
//! times) or the member carries extended attributes. The stream is hashed (sha256) and
//! counted as it is written.

use std::io::{self, BufWriter, Write};

use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

const BLOCK: u64 = 512;
/// Largest value of an 8-byte octal header field (uid, gid, mode, dev numbers).
const MAX_OCTAL_8: u64 = 0o7777777;
/// Largest value of a 12-byte octal header field (size, mtime).
const MAX_OCTAL_12: u64 = 0o77777777777;

/// Hashes and counts everything written through it.
struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// One archive member's header data.
pub struct Member<'a> {
    /// Full member name (directories carry a trailing `/`).
    pub name: &'a [u8],
    pub kind: EntryType,
    /// Permission bits including setuid/setgid/sticky.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// Data length (regular files only; 0 otherwise).
    pub size: u64,
    /// Symlink target or hardlink target.
    pub link: Option<&'a [u8]>,
    /// Device numbers for character/block devices.
    pub dev: Option<(u64, u64)>,
    /// Extended attributes (already filtered), sorted by name.
    pub xattrs: &'a [(Vec<u8>, Vec<u8>)],
}

/// The streaming writer.
pub struct TarWriter<W: Write> {
    out: BufWriter<HashWriter<W>>,
}

/// Summary returned by [`TarWriter::finish`].
pub struct Finished {
    /// `sha256:<hex>` of the whole stream.
    pub digest: String,
    /// Stream length in bytes.
    pub size: u64,
}

/// Appends one PAX record (`"<len> <key>=<value>\n"`, `len` counting itself).
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let base = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = base + 1;
    loop {
        let total = base + len.to_string().len();
        if total == len {
            break;
        }
        len = total;
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Stores `name` in the ustar name/prefix fields; false when it cannot fit.
fn set_ustar_name(h: &mut Header, name: &[u8]) -> bool {
    let Some(ustar) = h.as_ustar_mut() else {
        return false;
    };
    if name.len() <= ustar.name.len() {
        ustar.name[..name.len()].copy_from_slice(name);
        return true;
    }
    // Split at a '/' so that the prefix is at most 155 bytes and the rest at most 100
    // (and not empty); prefer the longest prefix.
    let max_prefix = ustar.prefix.len().min(name.len() - 1);
    for i in (1..=max_prefix).rev() {
        if name[i] != b'/' {
            continue;
        }
        let rest = &name[i + 1..];
        if rest.len() > ustar.name.len() {
            // Shorter prefixes only make the rest longer.
            return false;
        }
        if rest.is_empty() {
            continue;
        }
        ustar.prefix[..i].copy_from_slice(&name[..i]);
        ustar.name[..rest.len()].copy_from_slice(rest);
        return true;
    }
    false
}

fn dev_too_big(name: &[u8]) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "device numbers of {} do not fit a tar header",
            String::from_utf8_lossy(name)
        ),
    )
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out: BufWriter::with_capacity(
                128 * 1024,
                HashWriter {
                    inner: out,
                    hasher: Sha256::new(),
                    bytes: 0,
                },
            ),
        }
    }

    /// Writes the header(s) of one member. The caller then writes exactly `m.size` bytes
    /// of data with [`data`](Self::data) and calls [`pad`](Self::pad).
    pub fn header(&mut self, m: &Member<'_>) -> io::Result<()> {
        let mut pax: Vec<(&[u8], Vec<u8>)> = Vec::new();
        let mut h = Header::new_ustar();

        if !set_ustar_name(&mut h, m.name) {
            pax.push((b"path", m.name.to_vec()));
            if let Some(u) = h.as_ustar_mut() {
                let n = m.name.len().min(u.name.len());
                u.name[..n].copy_from_slice(&m.name[..n]);
            }
        }
        if let Some(link) = m.link {
            let slot = &mut h.as_old_mut().linkname;
            if link.len() <= slot.len() {
                slot[..link.len()].copy_from_slice(link);
            } else {
                let n = slot.len();
                slot.copy_from_slice(&link[..n]);
                pax.push((b"linkpath", link.to_vec()));
            }
        }
        h.set_mode(m.mode & 0o7777);
        h.set_uid(m.uid);
        if m.uid > MAX_OCTAL_8 {
            pax.push((b"uid", m.uid.to_string().into_bytes()));
        }
        h.set_gid(m.gid);
        if m.gid > MAX_OCTAL_8 {
            pax.push((b"gid", m.gid.to_string().into_bytes()));
        }
        h.set_size(m.size);
        if m.size > MAX_OCTAL_12 {
            pax.push((b"size", m.size.to_string().into_bytes()));
        }
        match u64::try_from(m.mtime) {
            Ok(t) => {
                h.set_mtime(t);
                if t > MAX_OCTAL_12 {
                    pax.push((b"mtime", t.to_string().into_bytes()));
                }
            }
            Err(_) => {
                h.set_mtime(0);
                pax.push((b"mtime", m.mtime.to_string().into_bytes()));
            }
        }
        h.set_entry_type(m.kind);
        let (major, minor) = m.dev.unwrap_or((0, 0));
        let (Ok(major), Ok(minor)) = (u32::try_from(major), u32::try_from(minor)) else {
            return Err(dev_too_big(m.name));
        };
        if u64::from(major) > MAX_OCTAL_8 || u64::from(minor) > MAX_OCTAL_8 {
            return Err(dev_too_big(m.name));
        }
        h.set_device_major(major)?;
        h.set_device_minor(minor)?;
        let mut xkeys = Vec::with_capacity(m.xattrs.len());
        for (k, v) in m.xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(k);
            xkeys.push((key, v));
        }
        h.set_cksum();

        if !pax.is_empty() || !xkeys.is_empty() {
            let mut records: Vec<(&[u8], &[u8])> = pax
                .iter()
                .map(|(k, v)| (*k, v.as_slice()))
                .chain(xkeys.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
                .collect();
            records.sort();
            let mut data = Vec::new();
            for (k, v) in records {
                pax_record(&mut data, k, v);
            }
            self.pax_header(m.name, &data)?;
        }
        self.out.write_all(h.as_bytes())
    }

    /// Writes a PAX extended header (type `x`) carrying `data`.
    fn pax_header(&mut self, for_name: &[u8], data: &[u8]) -> io::Result<()> {
        let trimmed = for_name.strip_suffix(b"/").unwrap_or(for_name);
        let (dir, base) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
            None => (&b""[..], trimmed),
        };
        let mut name = dir.to_vec();
        name.extend_from_slice(b"PaxHeaders.0/");
        name.extend_from_slice(base);
        name.truncate(100);
        let mut h = Header::new_ustar();
        if let Some(u) = h.as_ustar_mut() {
            u.name[..name.len()].copy_from_slice(&name);
        }
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        h.set_entry_type(EntryType::XHeader);
        h.set_device_major(0)?;
        h.set_device_minor(0)?;
        h.set_cksum();
        self.out.write_all(h.as_bytes())?;
        self.out.write_all(data)?;
        self.pad(data.len() as u64)
    }

    /// Member data.
    pub fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)
    }

    /// Zero padding after `size` bytes of data.
    pub fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % BLOCK) as usize;
        if rem != 0 {
            self.out
                .write_all(&[0u8; BLOCK as usize][..BLOCK as usize - rem])?;
        }
        Ok(())
    }

    /// Writes the end-of-archive marker (two zero blocks) and flushes.
    pub fn finish(mut self) -> io::Result<Finished> {
        self.out.write_all(&[0u8; 2 * BLOCK as usize])?;
        self.out.flush()?;
        let hw = self.out.into_inner().map_err(|e| e.into_error())?;
        Ok(Finished {
            digest: format!("sha256:{}", hex::encode(hw.hasher.finalize())),
            size: hw.bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn member<'a>(name: &'a [u8], kind: EntryType) -> Member<'a> {
        Member {
            name,
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            size: 0,
            link: None,
            dev: None,
            xattrs: &[],
        }
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        for vlen in [
            0usize, 1, 2, 5, 6, 7, 90, 91, 92, 93, 94, 95, 96, 990, 991, 995,
        ] {
            let mut out = Vec::new();
            let v = vec![b'x'; vlen];
            pax_record(&mut out, b"path", &v);
            let s = String::from_utf8(out.clone()).unwrap();
            let (n, _) = s.split_once(' ').unwrap();
            assert_eq!(
                n.parse::<usize>().unwrap(),
                out.len(),
                "value length {vlen}"
            );
        }
    }

    #[test]
    fn ustar_split_and_pax_fallback() {
        let mut h = Header::new_ustar();
        assert!(set_ustar_name(&mut h, b"short"));
        let long = format!("{}/{}", "d".repeat(150), "f".repeat(99));
        let mut h = Header::new_ustar();
        assert!(set_ustar_name(&mut h, long.as_bytes()));
        assert_eq!(h.path_bytes().as_ref(), long.as_bytes());
        let mut h = Header::new_ustar();
        assert!(!set_ustar_name(&mut h, "x".repeat(101).as_bytes()));
        let mut h = Header::new_ustar();
        let too_long_rest = format!("a/{}", "f".repeat(101));
        assert!(!set_ustar_name(&mut h, too_long_rest.as_bytes()));
    }

    #[test]
    fn huge_sizes_and_dev_numbers() {
        let mut buf = Vec::new();
        let mut w = TarWriter::new(&mut buf);
        let mut m = member(b"huge", EntryType::Regular);
        m.size = 10 << 30;
        w.header(&m).unwrap();
        drop(w);
        let text = String::from_utf8_lossy(&buf);
        assert!(
            text.contains("size=10737418240\n"),
            "PAX size record missing"
        );
        let h = Header::from_byte_slice(&buf[1024..1536]);
        assert_eq!(h.size().unwrap(), 10 << 30);

        let mut w = TarWriter::new(Vec::new());
        let mut m = member(b"dev", EntryType::Char);
        m.dev = Some((1 << 22, 0));
        assert!(w.header(&m).is_err());
    }

    #[test]
    fn round_trips_through_tar_crate() {
        let long_name = format!("{}/{}", "n".repeat(200), "file".repeat(40));
        let long_link = "t".repeat(300);
        let xattrs = vec![(b"user.k".to_vec(), b"v\0w".to_vec())];
        let mut w = TarWriter::new(Vec::new());
        let mut m = member(long_name.as_bytes(), EntryType::Regular);
        m.size = 3;
        m.uid = 5_000_000;
        m.gid = 7;
        m.xattrs = &xattrs;
        w.header(&m).unwrap();
        w.data(b"abc").unwrap();
        w.pad(3).unwrap();
        let mut s = member(b"l", EntryType::Symlink);
        s.link = Some(long_link.as_bytes());
        s.mtime = -5;
        w.header(&s).unwrap();
        let fin = w.finish().unwrap();
        // The stream is not accessible after finish; rebuild into a Vec to inspect.
        let mut buf = Vec::new();
        let mut w = TarWriter::new(&mut buf);
        w.header(&m).unwrap();
        w.data(b"abc").unwrap();
        w.pad(3).unwrap();
        w.header(&s).unwrap();
        let fin2 = w.finish().unwrap();
        assert_eq!(fin.digest, fin2.digest);
        assert_eq!(fin2.size, buf.len() as u64);
        assert_eq!(buf.len() % 512, 0);

        let mut ar = tar::Archive::new(buf.as_slice());
        let mut it = ar.entries().unwrap();
        let mut e = it.next().unwrap().unwrap();
        assert_eq!(e.path_bytes().as_ref(), long_name.as_bytes());
        assert_eq!(e.header().uid().unwrap(), 5_000_000);
        let exts: Vec<(String, Vec<u8>)> = e
            .pax_extensions()
            .unwrap()
            .unwrap()
            .map(|x| {
                let x = x.unwrap();
                (x.key().unwrap().to_string(), x.value_bytes().to_vec())
            })
            .collect();
        assert!(exts.contains(&("SCHILY.xattr.user.k".into(), b"v\0w".to_vec())));
        assert!(exts.contains(&("uid".into(), b"5000000".to_vec())));
        let mut data = String::new();
        e.read_to_string(&mut data).unwrap();
        assert_eq!(data, "abc");
        let mut e = it.next().unwrap().unwrap();
        assert_eq!(e.link_name_bytes().unwrap().as_ref(), long_link.as_bytes());
        let mt: Vec<_> = e
            .pax_extensions()
            .unwrap()
            .unwrap()
            .filter_map(|x| x.ok())
            .filter(|x| x.key() == Ok("mtime"))
            .map(|x| x.value_bytes().to_vec())
            .collect();
        assert_eq!(mt, vec![b"-5".to_vec()]);
        assert!(it.next().is_none());
    }
}
