//! WireGuard messages (the four message types of the protocol paper).
//!
//! Everything after the header fields is encrypted; what can be seen is the
//! message type, the session indexes and the transport counter, which is
//! enough to follow handshakes and spot one-way tunnels.

use crate::decode::Malformed;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WireGuardMessage {
    HandshakeInitiation,
    HandshakeResponse,
    CookieReply,
    TransportData,
}

impl WireGuardMessage {
    /// Bytes of cleartext header: type, reserved, indexes, counter.
    pub fn cleartext_len(self) -> usize {
        match self {
            WireGuardMessage::HandshakeInitiation | WireGuardMessage::CookieReply => 8,
            WireGuardMessage::HandshakeResponse => 12,
            WireGuardMessage::TransportData => 16,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            WireGuardMessage::HandshakeInitiation => "handshake_initiation",
            WireGuardMessage::HandshakeResponse => "handshake_response",
            WireGuardMessage::CookieReply => "cookie_reply",
            WireGuardMessage::TransportData => "transport_data",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct WireGuardView<'a> {
    bytes: &'a [u8],
    kind: WireGuardMessage,
    wire_len: usize,
}

impl<'a> WireGuardView<'a> {
    /// Check type, reserved bytes and the length each type has (the test
    /// Wireshark's heuristic dissector applies too). `b` is the captured
    /// message, `wire_len` its length on the wire (the UDP length): only the
    /// cleartext header must be captured, so snaplen-cut and scrubbed
    /// captures still show their handshakes.
    pub fn new_checked(b: &'a [u8], wire_len: usize) -> Result<Self, Malformed> {
        if b.len() < 4 {
            return Err(Malformed::Short);
        }
        if b[1] != 0 || b[2] != 0 || b[3] != 0 {
            return Err(Malformed::Field("wireguard reserved"));
        }
        let kind = match (b[0], wire_len) {
            (1, 148) => WireGuardMessage::HandshakeInitiation,
            (2, 92) => WireGuardMessage::HandshakeResponse,
            (3, 64) => WireGuardMessage::CookieReply,
            // Padding is to 16 bytes but never past the tunnel MTU, so a
            // full-size message need not be a multiple of 16 (Wireshark only
            // asks for the 32-byte minimum too).
            (4, n) if n >= 32 => WireGuardMessage::TransportData,
            _ => return Err(Malformed::Field("wireguard type or length")),
        };
        if b.len() < kind.cleartext_len() {
            return Err(Malformed::Short);
        }
        Ok(WireGuardView {
            bytes: b,
            kind,
            wire_len,
        })
    }

    pub fn message(&self) -> WireGuardMessage {
        self.kind
    }
    fn le32(&self, at: usize) -> u32 {
        let b = self.bytes;
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }
    /// The sender's session index (initiation and response).
    pub fn sender_index(&self) -> Option<u32> {
        matches!(
            self.kind,
            WireGuardMessage::HandshakeInitiation | WireGuardMessage::HandshakeResponse
        )
        .then(|| self.le32(4))
    }
    /// The receiver's session index (response, cookie reply, transport data).
    pub fn receiver_index(&self) -> Option<u32> {
        match self.kind {
            WireGuardMessage::HandshakeResponse => Some(self.le32(8)),
            WireGuardMessage::CookieReply | WireGuardMessage::TransportData => Some(self.le32(4)),
            WireGuardMessage::HandshakeInitiation => None,
        }
    }
    /// The transport-data counter (nonce).
    pub fn counter(&self) -> Option<u64> {
        (self.kind == WireGuardMessage::TransportData).then(|| {
            let b = &self.bytes[8..16];
            u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        })
    }
    /// Encrypted inner packet length (transport data minus header and tag).
    pub fn inner_len(&self) -> Option<usize> {
        (self.kind == WireGuardMessage::TransportData).then(|| self.wire_len - 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_decide() {
        let mut init = vec![0u8; 148];
        init[0] = 1;
        init[4] = 0x2a;
        let v = WireGuardView::new_checked(&init, 148).unwrap();
        assert_eq!(v.message(), WireGuardMessage::HandshakeInitiation);
        assert_eq!(v.sender_index(), Some(0x2a));
        assert!(WireGuardView::new_checked(&init[..147], 147).is_err());
        // Cut by a snaplen: the UDP length still says what it is.
        assert!(WireGuardView::new_checked(&init[..8], 148).is_ok());
        assert!(WireGuardView::new_checked(&init[..6], 148).is_err());
        let mut data = vec![0u8; 32 + 64];
        data[0] = 4;
        data[8] = 5;
        let v = WireGuardView::new_checked(&data, data.len()).unwrap();
        assert_eq!(v.counter(), Some(5));
        assert_eq!(v.inner_len(), Some(64));
        // A full-MTU message (1420-byte inner packet) is not 16-aligned.
        let mut full = vec![0u8; 1452];
        full[0] = 4;
        assert!(WireGuardView::new_checked(&full, full.len()).is_ok());
        assert!(WireGuardView::new_checked(&data[..31], 31).is_err());
    }
}
