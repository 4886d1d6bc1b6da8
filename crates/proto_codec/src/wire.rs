//! The protobuf wire format: varints, field keys and the four value encodings Kubernetes uses
//! (groups are not, and are rejected).

use crate::ProtoError;

pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
pub(crate) const FIXED32: u8 = 5;

/// One field value as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32(u32),
}

impl WireValue<'_> {
    pub(crate) fn wire_type(&self) -> u8 {
        match self {
            WireValue::Varint(_) => VARINT,
            WireValue::Fixed64(_) => FIXED64,
            WireValue::Len(_) => LEN,
            WireValue::Fixed32(_) => FIXED32,
        }
    }
}

/// Iterates over the fields of one encoded message.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = *self
                .buf
                .get(self.pos)
                .ok_or(ProtoError::Truncated("varint"))?;
            self.pos += 1;
            if i == 9 && byte > 1 {
                return Err(ProtoError::VarintOverflow);
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtoError::VarintOverflow)
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ProtoError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or(ProtoError::Truncated(what))?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// The next field number and value, or `None` at the end of the message.
    pub(crate) fn next_field(&mut self) -> Result<Option<(u32, WireValue<'a>)>, ProtoError> {
        if self.at_end() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 || number > (1 << 29) - 1 {
            return Err(ProtoError::InvalidFieldNumber(number));
        }
        // Checked above: fits in 29 bits.
        let number = number as u32;
        let value = match (key & 7) as u8 {
            VARINT => WireValue::Varint(self.varint()?),
            FIXED64 => {
                let b = self.take(8, "fixed64")?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                WireValue::Fixed64(u64::from_le_bytes(a))
            }
            LEN => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| ProtoError::Truncated("length"))?;
                WireValue::Len(self.take(len, "length-delimited field")?)
            }
            FIXED32 => {
                let b = self.take(4, "fixed32")?;
                let mut a = [0u8; 4];
                a.copy_from_slice(b);
                WireValue::Fixed32(u32::from_le_bytes(a))
            }
            other => {
                return Err(ProtoError::UnsupportedWireType {
                    field: number,
                    wire_type: other,
                })
            }
        };
        Ok(Some((number, value)))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Test helper: encodes a varint.
    pub(crate) fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// Test helper: a length-delimited field.
    pub(crate) fn len_field(number: u32, payload: &[u8], out: &mut Vec<u8>) {
        varint(u64::from(number) << 3 | 2, out);
        varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    /// Test helper: a varint field.
    pub(crate) fn varint_field(number: u32, v: u64, out: &mut Vec<u8>) {
        varint(u64::from(number) << 3, out);
        varint(v, out);
    }

    #[test]
    fn reads_all_wire_types() {
        let mut buf = Vec::new();
        varint_field(1, 300, &mut buf);
        buf.extend_from_slice(&[0x11, 1, 0, 0, 0, 0, 0, 0, 0]); // 2: fixed64 = 1
        len_field(3, b"hi", &mut buf);
        buf.extend_from_slice(&[0x25, 2, 0, 0, 0]); // 4: fixed32 = 2
        let mut r = Reader::new(&buf);
        assert_eq!(r.next_field().unwrap(), Some((1, WireValue::Varint(300))));
        assert_eq!(r.next_field().unwrap(), Some((2, WireValue::Fixed64(1))));
        assert_eq!(r.next_field().unwrap(), Some((3, WireValue::Len(b"hi"))));
        assert_eq!(r.next_field().unwrap(), Some((4, WireValue::Fixed32(2))));
        assert_eq!(r.next_field().unwrap(), None);
    }

    #[test]
    fn max_varint() {
        let mut buf = Vec::new();
        varint(u64::MAX, &mut buf);
        assert_eq!(buf.len(), 10);
        assert_eq!(Reader::new(&buf).varint().unwrap(), u64::MAX);
    }

    #[test]
    fn malformed_input_is_an_error() {
        let cases: &[&[u8]] = &[
            &[0x08],             // varint value missing
            &[0x08, 0x80],       // truncated varint
            &[0x80],             // truncated key
            &[0x0a, 0x05, b'a'], // length beyond the end
            &[
                0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ], // huge length
            &[0x11, 0, 0],       // truncated fixed64
            &[0x15, 0],          // truncated fixed32
            &[0x0b],             // start group
            &[0x0e],             // wire type 6
            &[0x00, 0x00],       // field number 0
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ], // overflow
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ], // 11 bytes
        ];
        for case in cases {
            let mut r = Reader::new(case);
            assert!(r.next_field().is_err(), "{case:?}");
        }
    }
}
