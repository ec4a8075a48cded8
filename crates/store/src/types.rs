//! Column types that encode themselves for each database, so that one row type and one query
//! text serve both stores: times are `timestamptz` on PostgreSQL and integer microseconds since
//! the Unix epoch on SQLite (they compare and sort as numbers there), lists of text are `text[]`
//! on PostgreSQL and a JSON array on SQLite, and the domain's enums are their names as text.

use chrono::{DateTime, Utc};
use sqlx::error::BoxDynError;
use sqlx::{Postgres, Sqlite};

use crate::tokens::{KeyState, TokenType};

/// A time as the stores keep it. Every time of a record comes from the application's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    pub fn now() -> Self {
        Self(Utc::now())
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(t: Timestamp) -> Self {
        t.0
    }
}

/// A list of text values (role ids, token types, ids) in one column or parameter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TextList(pub Vec<String>);

impl TextList {
    pub fn of(items: &[impl AsRef<str>]) -> Self {
        Self(items.iter().map(|i| i.as_ref().to_owned()).collect())
    }
}

/// Implements `Type`, `Encode` and `Decode` of `$ty` on `$db` through types the driver knows:
/// `$to` turns a value into what is sent (`$sent`), `$from` a value read (`$read`) into `$ty`.
macro_rules! column_type {
    ($ty:ty, $db:ty, sent: $sent:ty, $to:expr, read: $read:ty, $from:expr) => {
        impl sqlx::Type<$db> for $ty {
            fn type_info() -> <$db as sqlx::Database>::TypeInfo {
                <$sent as sqlx::Type<$db>>::type_info()
            }
            fn compatible(ty: &<$db as sqlx::Database>::TypeInfo) -> bool {
                <$sent as sqlx::Type<$db>>::compatible(ty)
            }
        }
        impl<'q> sqlx::Encode<'q, $db> for $ty {
            fn encode_by_ref(
                &self,
                buf: &mut <$db as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, BoxDynError> {
                let sent: $sent = $to(self)?;
                <$sent as sqlx::Encode<'q, $db>>::encode(sent, buf)
            }
        }
        impl<'r> sqlx::Decode<'r, $db> for $ty {
            fn decode(value: <$db as sqlx::Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                let read = <$read as sqlx::Decode<'r, $db>>::decode(value)?;
                $from(read)
            }
        }
    };
}

column_type!(Timestamp, Postgres,
    sent: DateTime<Utc>, |t: &Timestamp| Ok::<_, BoxDynError>(t.0),
    read: DateTime<Utc>, |t| Ok(Timestamp(t)));
column_type!(Timestamp, Sqlite,
    sent: i64, |t: &Timestamp| Ok::<_, BoxDynError>(t.0.timestamp_micros()),
    read: i64, |micros| DateTime::from_timestamp_micros(micros)
        .map(Timestamp)
        .ok_or_else(|| format!("time {micros} is out of range").into()));

column_type!(TextList, Postgres,
    sent: Vec<String>, |l: &TextList| Ok::<_, BoxDynError>(l.0.clone()),
    read: Vec<String>, |l| Ok(TextList(l)));
column_type!(TextList, Sqlite,
    sent: String, |l: &TextList| serde_json::to_string(&l.0).map_err(BoxDynError::from),
    read: &str, |text| serde_json::from_str(text).map(TextList).map_err(Into::into));

/// A domain enum as the stores keep it: by name, as text; a check constraint keeps the stored
/// names ones the service knows. (The domain knows no database, so the column types are the
/// store's, around the domain's values.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Named<T>(pub T);

macro_rules! text_enum {
    ($ty:ty) => {
        column_type!(Named<$ty>, Postgres,
            sent: &'static str, |v: &Named<$ty>| Ok::<_, BoxDynError>(v.0.as_str()),
            read: &str, |text: &str| text.parse::<$ty>().map(Named).map_err(Into::into));
        column_type!(Named<$ty>, Sqlite,
            sent: &'static str, |v: &Named<$ty>| Ok::<_, BoxDynError>(v.0.as_str()),
            read: &str, |text: &str| text.parse::<$ty>().map(Named).map_err(Into::into));
        impl From<Named<$ty>> for $ty {
            fn from(named: Named<$ty>) -> Self {
                named.0
            }
        }
    };
}

text_enum!(TokenType);
text_enum!(KeyState);
