#![no_main]
//! The config's unit parsers on arbitrary text: durations (`"1m 30s"`, required unit),
//! optional durations (`off`), sizes (`65536`, `"64KiB"`) and rates (`"10/s"`). Each value
//! accepted prints back (as the config and `wsgate check` print it) to text that parses to
//! the same value; a size read as text equals the same count read as a number; `off` and
//! friends, and nothing else, turn a timer off.
//!
//! Input: the text of one config value.

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde::de::value::{Error, StrDeserializer, U64Deserializer};
use wsgate::config::units::{self, ByteSize, Rate, format_duration};

fn duration(text: &str) -> Result<Duration, Error> {
    units::duration::deserialize(StrDeserializer::<Error>::new(text))
}

fn optional_duration(text: &str) -> Result<Option<Duration>, Error> {
    units::optional_duration::deserialize(StrDeserializer::<Error>::new(text))
}

fn size(text: &str) -> Result<ByteSize, Error> {
    ByteSize::deserialize(StrDeserializer::<Error>::new(text))
}

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };

    if let Ok(d) = duration(text) {
        let printed = format_duration(d);
        assert_eq!(
            duration(&printed).ok(),
            Some(d),
            "{text:?} printed as {printed:?}"
        );
    }
    match optional_duration(text) {
        Ok(None) => assert!(matches!(
            text.trim().to_ascii_lowercase().as_str(),
            "off" | "none" | ""
        )),
        Ok(Some(d)) => assert_eq!(duration(text).ok(), Some(d)),
        Err(_) => assert!(duration(text).is_err()),
    }

    if let Ok(bytes) = size(text) {
        let printed = bytes.to_string();
        assert_eq!(
            size(&printed).ok(),
            Some(bytes),
            "{text:?} printed as {printed:?}"
        );
        let as_number = ByteSize::deserialize(U64Deserializer::<Error>::new(bytes.0));
        assert_eq!(as_number.ok(), Some(bytes));
    }

    if let Ok(rate) = text.parse::<Rate>() {
        assert!([1, 60, 3600].contains(&rate.per.as_secs()), "{rate:?}");
        let printed = rate.to_string();
        assert_eq!(
            printed.parse::<Rate>(),
            Ok(rate),
            "{text:?} printed as {printed:?}"
        );
    }
});
