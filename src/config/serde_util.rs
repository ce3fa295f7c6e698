//! Serde helpers for the config file: durations (`5s`, `250ms`, `1h`, or a plain number of
//! seconds) and optional durations where `0`, `~` or absence mean "none".

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

const EXPECTING: &str = "a duration like \"5s\", \"250ms\", \"1h 30m\" or a number of seconds";

/// Parse a duration as written in the config file or on the command line.
/// Plain integers are seconds; otherwise humantime syntax (`5s`, `250ms`, `1h 30m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e} (expected {EXPECTING})"))
}

struct DurationVisitor;

impl<'de> Visitor<'de> for DurationVisitor {
    type Value = Option<Duration>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTING)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Duration::from_secs(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        u64::try_from(v)
            .map(|v| Some(Duration::from_secs(v)))
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Duration::try_from_secs_f64(v).map(Some).map_err(|_| E::invalid_value(de::Unexpected::Float(v), &self))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_duration(v).map(Some).map_err(E::custom)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// `#[serde(with = "duration")]` for a required `Duration`.
pub mod duration {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match d.deserialize_any(DurationVisitor)? {
            Some(v) => Ok(v),
            None => Err(de::Error::invalid_type(de::Unexpected::Unit, &EXPECTING)),
        }
    }
}

/// `#[serde(with = "opt_duration")]` for an `Option<Duration>`: `0`, `~` or absence mean `None`.
pub mod opt_duration {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(d.deserialize_any(DurationVisitor)?.filter(|v| !v.is_zero()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("5x").unwrap_err().contains("5x"));
        assert!(parse_duration("").is_err());
    }
}
