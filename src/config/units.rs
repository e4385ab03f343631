//! Units in the config: durations written as `"30s"` and sizes written as `"1MiB"`.
//!
//! Durations must carry a unit (a bare `30` is an error, since seconds and milliseconds are
//! both plausible readings). Sizes accept a bare byte count or a unit (`"64KiB"`, `"1MB"`).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Formats a duration the way the config accepts it back (`"1m 30s"`).
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn parse_duration<E: de::Error>(text: &str) -> Result<Duration, E> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        E::custom(format_args!(
            "invalid duration {text:?} ({e}); write a number with a unit, e.g. \"30s\" or \"500ms\""
        ))
    })
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration with a unit, such as \"30s\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Err(E::custom(format_args!(
            "invalid duration {v}: a duration needs a unit, e.g. \"{v}s\" or \"{v}ms\""
        )))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        Err(E::custom(format_args!(
            "invalid duration {v}: a duration needs a unit, e.g. \"{v}s\" or \"{v}ms\""
        )))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        Err(E::custom(format_args!(
            "invalid duration {v}: a duration needs a unit, e.g. \"{v}s\""
        )))
    }
}

/// `#[serde(with = "units::duration")]` for `Duration` fields.
pub mod duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }
}

/// `#[serde(with = "units::optional_duration")]` for timers that can be turned off with
/// `off` (or `none`, or by leaving the key out).
pub mod optional_duration {
    use super::*;

    const OFF: &str = "off";

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_str(OFF),
        }
    }

    struct OptionalVisitor;

    impl<'de> Visitor<'de> for OptionalVisitor {
        type Value = Option<Duration>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a duration with a unit, such as \"5m\", or \"off\"")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            match v.trim().to_ascii_lowercase().as_str() {
                "off" | "none" | "" => Ok(None),
                _ => parse_duration(v).map(Some),
            }
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            DurationVisitor.visit_u64(v).map(Some)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            DurationVisitor.visit_i64(v).map(Some)
        }

        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            // YAML 1.1 reads a bare `off` as `false`.
            if v {
                Err(E::custom(
                    "invalid duration true: write a duration such as \"5m\", or \"off\"",
                ))
            } else {
                Ok(None)
            }
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        d.deserialize_any(OptionalVisitor)
    }
}

/// `#[serde(with = "units::off")]` for optional settings: the value, or `off` (also
/// `none`, `false`, or leaving the key out) for none.
pub(crate) mod off {
    use super::*;
    use figment::value::Value;

    pub fn serialize<T: Serialize, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => v.serialize(s),
            None => s.serialize_str("off"),
        }
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: serde::de::DeserializeOwned,
        D: Deserializer<'de>,
    {
        let value = <Value as Deserialize>::deserialize(d)?;
        let is_off = match &value {
            Value::String(_, s) => {
                matches!(s.trim().to_ascii_lowercase().as_str(), "off" | "none" | "")
            }
            Value::Bool(_, b) => !b,
            Value::Empty(..) => true,
            _ => false,
        };
        if is_off {
            return Ok(None);
        }
        value
            .deserialize::<T>()
            .map(Some)
            .map_err(de::Error::custom)
    }
}

/// A rate of events, written `"10/s"`, `"600/m"` or `"1000/h"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid rate {text:?}: write a count per unit, e.g. \"10/s\", \"600/m\", \"1000/h\""
            )
        };
        let (count, unit) = text.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        Ok(Self { count, per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "m",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// A bare duration with a unit, for extracting a single duration key on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seconds(#[serde(with = "duration")] pub Duration);

impl From<Seconds> for Duration {
    fn from(s: Seconds) -> Self {
        s.0
    }
}

/// A size in bytes, written as a count (`65536`) or with a unit (`"64KiB"`, `"1MiB"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const fn kib(n: u64) -> Self {
        Self(n * 1024)
    }

    pub const fn mib(n: u64) -> Self {
        Self(n * 1024 * 1024)
    }

    /// The size as a `usize`, saturating on targets where it would not fit.
    pub(crate) fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Exact units, so the text can be pasted back into the config.
        const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
        match UNITS
            .iter()
            .find(|(size, _)| self.0 >= *size && self.0 % size == 0)
        {
            Some((size, unit)) => write!(f, "{}{unit}", self.0 / size),
            None => write!(f, "{}B", self.0),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SizeVisitor;

        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as 65536, \"64KiB\" or \"1MiB\"")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format_args!("invalid size {v}: must not be negative")))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.trim()
                    .parse::<bytesize::ByteSize>()
                    .map(|b| ByteSize(b.as_u64()))
                    .map_err(|e| E::custom(format_args!("invalid size {v:?}: {e}")))
            }
        }

        d.deserialize_any(SizeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        #[serde(with = "duration")]
        d: Duration,
        #[serde(with = "optional_duration", default)]
        o: Option<Duration>,
        s: ByteSize,
    }

    fn parse(yaml: &str) -> Result<T, String> {
        use figment::providers::{Format, Yaml};
        figment::Figment::from(Yaml::string(yaml))
            .extract()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn units_parse() {
        let t = parse("d: 1m 30s\no: 5m\ns: 1MiB").unwrap();
        assert_eq!(t.d, Duration::from_secs(90));
        assert_eq!(t.o, Some(Duration::from_secs(300)));
        assert_eq!(t.s, ByteSize::mib(1));
        let t = parse("d: 250ms\no: off\ns: 4096").unwrap();
        assert_eq!(t.d, Duration::from_millis(250));
        assert_eq!(t.o, None);
        assert_eq!(t.s, ByteSize(4096));
    }

    #[test]
    fn bare_number_duration_is_refused_with_a_hint() {
        let err = parse("d: 30\ns: 1").err().unwrap();
        assert!(err.contains("needs a unit"), "{err}");
    }

    #[test]
    fn bad_size_names_the_value() {
        let err = parse("d: 1s\ns: 12 parsecs").err().unwrap();
        assert!(err.contains("12 parsecs"), "{err}");
    }

    #[test]
    fn rates_parse_and_print() {
        let r: Rate = "10/s".parse().unwrap();
        assert_eq!((r.count, r.per), (10, Duration::from_secs(1)));
        assert_eq!("600/m".parse::<Rate>().unwrap().to_string(), "600/m");
        assert!("10".parse::<Rate>().is_err());
        assert!("ten/s".parse::<Rate>().is_err());
    }

    #[test]
    fn off_means_none() {
        #[derive(Deserialize)]
        struct O {
            #[serde(with = "off", default)]
            r: Option<Rate>,
            #[serde(with = "off", default)]
            n: Option<u32>,
        }
        use figment::providers::{Format, Yaml};
        let o: O = figment::Figment::from(Yaml::string("r: off\nn: 5"))
            .extract()
            .unwrap();
        assert_eq!((o.r, o.n), (None, Some(5)));
        let o: O = figment::Figment::from(Yaml::string("r: 3/m"))
            .extract()
            .unwrap();
        assert_eq!(o.r.map(|r| r.count), Some(3));
        assert!(
            figment::Figment::from(Yaml::string("r: fast"))
                .extract::<O>()
                .is_err()
        );
    }

    #[test]
    fn sizes_display_in_iec_units() {
        assert_eq!(ByteSize::mib(1).to_string(), "1MiB");
        assert_eq!(ByteSize(1536).to_string(), "1536B");
        assert_eq!(ByteSize::kib(3).to_string(), "3KiB");
    }
}
