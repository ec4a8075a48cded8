//! Enums that the contract, the store and the command line name by text.

/// `Display` and `FromStr` for an enum with `ALL` and `as_str`: parsing finds the variant whose
/// name is the text; anything else is an error naming `$what`, the text, and then `$expected`.
macro_rules! named_enum {
    ($ty:ty, $what:literal, $expected:literal) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| format!(concat!("unknown ", $what, " {:?}", $expected), s))
            }
        }
    };
}
pub(crate) use named_enum;
