//! Packet timestamps, normalised to nanoseconds since the Unix epoch.

use std::fmt;

/// Nanoseconds since 1970-01-01T00:00:00Z. `i64` spans 1677..2262, which
/// covers any real capture; values from damaged files saturate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_parts(secs: i64, nanos: i64) -> Timestamp {
        Timestamp(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// RFC 3339 in UTC with nanoseconds, e.g. `2024-05-01T12:00:00.123456789Z`.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
            rem / 3600,
            (rem / 60) % 60,
            rem % 60
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// How a pcapng interface (or a pcap file) counts time: `if_tsresol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsScale {
    /// 10^-n seconds per unit, n <= 9: multiply by 10^(9-n).
    Mul(i64),
    /// 10^-n seconds per unit, n > 9: divide by 10^(n-9).
    Div(i64),
    /// 2^-n seconds per unit.
    Pow2(u32),
}

impl TsScale {
    pub const MICROS: TsScale = TsScale::Mul(1000);
    pub const NANOS: TsScale = TsScale::Mul(1);

    /// From the raw `if_tsresol` byte; `None` when it is out of any usable range.
    pub fn from_tsresol(r: u8) -> Option<TsScale> {
        let exp = u32::from(r & 0x7f);
        if r & 0x80 != 0 {
            (exp <= 63).then_some(TsScale::Pow2(exp))
        } else if exp <= 9 {
            Some(TsScale::Mul(10i64.pow(9 - exp)))
        } else if exp <= 18 {
            Some(TsScale::Div(10i64.pow(exp - 9)))
        } else {
            None
        }
    }

    /// A short name: `s`, `ms`, `us`, `ns`, or `10^-n` / `2^-n`.
    pub fn name(self) -> String {
        match self {
            TsScale::Mul(1) => "ns".into(),
            TsScale::Mul(1000) => "us".into(),
            TsScale::Mul(1_000_000) => "ms".into(),
            TsScale::Mul(1_000_000_000) => "s".into(),
            TsScale::Mul(m) => format!("10^-{}", 9 - (m as f64).log10().round() as i64),
            TsScale::Div(d) => format!("10^-{}", 9 + (d as f64).log10().round() as i64),
            TsScale::Pow2(e) => format!("2^-{e}"),
        }
    }

    /// Units to a timestamp, saturating on absurd values.
    pub fn to_timestamp(self, units: u64, offset_secs: i64) -> Timestamp {
        let nanos: i128 = match self {
            TsScale::Mul(m) => units as i128 * m as i128,
            TsScale::Div(d) => units as i128 / d as i128,
            TsScale::Pow2(e) => (units as i128 * 1_000_000_000) >> e,
        };
        let total = nanos + offset_secs as i128 * 1_000_000_000;
        Timestamp(total.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            Timestamp::from_parts(1_700_000_000, 123).to_rfc3339(),
            "2023-11-14T22:13:20.000000123Z"
        );
        assert_eq!(Timestamp(-1).to_rfc3339(), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn tsresol() {
        assert_eq!(TsScale::from_tsresol(6), Some(TsScale::MICROS));
        assert_eq!(TsScale::from_tsresol(9), Some(TsScale::NANOS));
        assert_eq!(TsScale::from_tsresol(6).unwrap().name(), "us");
        assert_eq!(TsScale::from_tsresol(0x8a), Some(TsScale::Pow2(10)));
        assert_eq!(TsScale::from_tsresol(19), None);
        assert_eq!(
            TsScale::Pow2(10).to_timestamp(1024, 0),
            Timestamp(1_000_000_000)
        );
        assert_eq!(
            TsScale::Div(1000).to_timestamp(5_000_000_000_000, 1),
            Timestamp(6_000_000_000)
        );
        assert_eq!(
            TsScale::NANOS.to_timestamp(u64::MAX, i64::MAX),
            Timestamp(i64::MAX)
        );
    }
}
