use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A size in bytes, written the Kubernetes way: `10Gi`, `500Mi`, `2G` or a
/// plain byte count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Quantity(pub u64);

const KI: u64 = 1 << 10;
const K: u64 = 1000;

/// Both `k` (the Kubernetes spelling) and `K` are accepted for kilo; Display
/// writes whichever listed unit comes first among the largest that fit.
const UNITS: &[(&str, u64)] = &[
    ("Ei", KI.pow(6)),
    ("Pi", KI.pow(5)),
    ("Ti", KI.pow(4)),
    ("Gi", KI.pow(3)),
    ("Mi", KI.pow(2)),
    ("Ki", KI),
    ("E", K.pow(6)),
    ("P", K.pow(5)),
    ("T", K.pow(4)),
    ("G", K.pow(3)),
    ("M", K.pow(2)),
    ("k", K),
    ("K", K),
];

impl Quantity {
    pub const GI: Quantity = Quantity(KI.pow(3));
    pub const PI: Quantity = Quantity(KI.pow(5));

    pub fn parse(text: &str) -> Result<Quantity, String> {
        let bad = || {
            format!("invalid size {text:?}: use a number with a unit, such as 10Gi, 1.5Gi or 500Mi (a fraction rounds up to a whole byte)")
        };
        let s = text.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let multiplier = match unit {
            "" => 1,
            _ => UNITS
                .iter()
                .find(|(u, _)| *u == unit)
                .map(|&(_, m)| m)
                .ok_or_else(bad)?,
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits_only = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || whole.len() > 20
            || fraction.len() > 18
            || (number.contains('.') && fraction.is_empty())
            || !digits_only(whole)
            || !digits_only(fraction)
        {
            return Err(bad());
        }
        let to_int = |d: &str| d.parse::<u128>().map_err(|_| bad());
        let whole = to_int(whole)? * u128::from(multiplier);
        let scale = 10u128.pow(fraction.len() as u32);
        let scaled = if fraction.is_empty() {
            0
        } else {
            to_int(fraction)? * u128::from(multiplier)
        };
        // As Kubernetes reads a quantity: a fraction rounds up to a whole byte ("9.9Gi", "1.5").
        u64::try_from(whole + scaled.div_ceil(scale))
            .map(Quantity)
            .map_err(|_| bad())
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        let exact = UNITS
            .iter()
            .filter(|&&(_, m)| n != 0 && n.is_multiple_of(m));
        match exact.min_by_key(|&&(_, m)| std::cmp::Reverse(m)) {
            Some((unit, m)) => write!(f, "{}{unit}", n / m),
            None => write!(f, "{n}"),
        }
    }
}

impl std::str::FromStr for Quantity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Quantity::parse(s)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 10Gi")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                Quantity::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// As Kubernetes declares a quantity: a number or a string (its unit checked when the spec is read).
impl schemars::JsonSchema for Quantity {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Quantity".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A size: a byte count or a number with a unit, such as 10Gi or 500Mi.",
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": true,
        })
    }
}
