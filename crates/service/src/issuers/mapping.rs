//! How a trusted issuer's token becomes a caller: which clients it must come from, where the
//! organization, the user and the roles are read, and in which form the roles are written.
//!
//! `TRUSTED_ISSUERS` entries get Cognito's mapping (the `custom:ivy_*` claims, `ROLES_CLAIM` of
//! `<organization>:<slug>` role ids, `token_use`); `TRUSTED_ISSUERS_FILE` names any OpenID
//! Connect provider with its own mapping ([`parse_file`]).

use serde::Deserialize;
use serde_json::{Map, Value};

/// One trusted issuer: its exact `iss` and how its tokens are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerSpec {
    /// The `iss` its tokens carry, byte for byte (a trailing slash is part of it).
    pub url: String,
    pub mapping: Mapping,
}

/// Where an issuer's token names the caller's organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Organization {
    /// `custom:ivy_org_id`, else `org_id` (Cognito as the platform configures it).
    Cognito,
    /// A claim name, or a path of dots into objects.
    Claim(String),
    /// Every caller of a single-tenant issuer is in this organization.
    Fixed(String),
}

/// How the roles claim's values name roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolesFormat {
    /// `<organization>:<slug>`, as this service's role ids are written.
    RoleId,
    /// Bare slugs, each a role in the caller's own organization.
    Slug,
}

impl RolesFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoleId => "role_id",
            Self::Slug => "slug",
        }
    }
}

/// What an issuer's verified token must claim, and where the caller is read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Clients whose tokens may call. Empty: any client of the issuer.
    pub audiences: Vec<String>,
    /// Cognito's `token_use` values accepted, which also decide which claim names the client
    /// (`aud` of an ID token, `client_id` of an access token). `None`: no `token_use` is
    /// required, and the client is any of `aud`, `azp` or `client_id`.
    pub token_uses: Option<Vec<String>>,
    pub organization: Organization,
    /// The claim naming the user; `None`: `custom:ivy_user_id`, else `user_id`, else `sub`.
    pub user_claim: Option<String>,
    pub roles_claim: String,
    pub roles_format: RolesFormat,
}

/// The `token_use` values a Cognito-shaped issuer's token may have.
pub const TOKEN_USES: [&str; 2] = ["id", "access"];

impl Mapping {
    /// The mapping of a `TRUSTED_ISSUERS` entry: Cognito's claims, with `TRUSTED_AUDIENCES`,
    /// `TRUSTED_TOKEN_USE` and `ROLES_CLAIM`.
    pub fn cognito(audiences: Vec<String>, token_uses: Vec<String>, roles_claim: String) -> Self {
        Self {
            audiences,
            token_uses: Some(token_uses),
            organization: Organization::Cognito,
            user_claim: None,
            roles_claim,
            roles_format: RolesFormat::RoleId,
        }
    }

    /// Whether verified `claims` come from an accepted client (and, for Cognito, token use); the
    /// error says why not, for the log.
    pub fn admits(&self, claims: &Map<String, Value>) -> Result<(), &'static str> {
        let client_claims: &[&str] = match &self.token_uses {
            Some(token_uses) => {
                let token_use = claims
                    .get("token_use")
                    .and_then(Value::as_str)
                    .ok_or("no token_use")?;
                if !token_uses.iter().any(|u| u == token_use) {
                    return Err("token_use not accepted");
                }
                match token_use {
                    "id" => &["aud"],
                    "access" => &["client_id"],
                    _ => &[],
                }
            }
            None => &["aud", "azp", "client_id"],
        };
        if self.audiences.is_empty() {
            return Ok(());
        }
        let accepted = |v: &Value| {
            v.as_str()
                .is_some_and(|c| self.audiences.iter().any(|a| a == c))
        };
        let admitted = client_claims
            .iter()
            .filter_map(|name| claims.get(*name))
            .any(|value| match value {
                Value::Array(items) => items.iter().any(accepted),
                value => accepted(value),
            });
        if admitted {
            Ok(())
        } else {
            Err("audience not accepted")
        }
    }

    /// The organization the token names, or where it was looked for (for the 403).
    pub fn organization(&self, claims: &Map<String, Value>) -> Result<String, String> {
        match &self.organization {
            Organization::Fixed(org) => Ok(org.clone()),
            Organization::Claim(name) => text(claim(claims, name)).ok_or_else(|| name.clone()),
            Organization::Cognito => text(claims.get("custom:ivy_org_id"))
                .or_else(|| text(claims.get("org_id")))
                .ok_or_else(|| "custom:ivy_org_id or org_id".to_owned()),
        }
    }

    /// The user the token names.
    pub fn user(&self, claims: &Map<String, Value>) -> Option<String> {
        match &self.user_claim {
            Some(name) => text(claim(claims, name)),
            None => text(claims.get("custom:ivy_user_id"))
                .or_else(|| text(claims.get("user_id")))
                .or_else(|| text(claims.get("sub"))),
        }
    }

    /// The role ids the token gives a caller of organization `org`.
    pub fn roles(&self, claims: &Map<String, Value>, org: &str) -> Vec<String> {
        let values = values_of(claim(claims, &self.roles_claim));
        match self.roles_format {
            RolesFormat::RoleId => values,
            // A value with a colon is not a bare slug: it could name another organization's role.
            RolesFormat::Slug => values
                .into_iter()
                .filter(|slug| !slug.contains(':'))
                .map(|slug| format!("{org}:{slug}"))
                .collect(),
        }
    }

    /// The mapping in one line, for the start-up log.
    pub fn describe(&self) -> String {
        let organization = match &self.organization {
            Organization::Cognito => "claim custom:ivy_org_id or org_id".to_owned(),
            Organization::Claim(name) => format!("claim {name}"),
            Organization::Fixed(org) => format!("fixed {org}"),
        };
        let audiences = if self.audiences.is_empty() {
            "any client".to_owned()
        } else {
            self.audiences.join(",")
        };
        let token_use = match &self.token_uses {
            Some(uses) => format!(", token_use {}", uses.join(",")),
            None => String::new(),
        };
        format!(
            "audiences {audiences}{token_use}, organization {organization}, user {}, roles {} as {}",
            self.user_claim
                .as_deref()
                .unwrap_or("custom:ivy_user_id or user_id or sub"),
            self.roles_claim,
            self.roles_format.as_str()
        )
    }
}

/// A claim by name: first the whole name (`https://example.com/org_id` is one claim), then a path
/// of dots walking into objects (`realm_access.roles`).
pub fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    let mut parts = name.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// A non-empty string, or a number written as one.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The strings of an array, or of one string of comma- or space-separated values (Cognito's
/// custom attributes are strings).
pub fn values_of(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => s
            .split([',', ' '])
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// The roles claim of a file's issuer when it names none (Entra ID's app roles, Okta's custom
/// claim as usually named).
pub const DEFAULT_ROLES_CLAIM: &str = "roles";

/// One `[[issuer]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerEntry {
    url: String,
    #[serde(default)]
    audiences: Vec<String>,
    organization: Option<String>,
    organization_claim: Option<String>,
    user_claim: Option<String>,
    roles_claim: Option<String>,
    roles_format: Option<String>,
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuersFile {
    #[serde(default)]
    issuer: Vec<toml::Value>,
}

/// The keys an `[[issuer]]` table may hold, for the error that names an unknown one.
const KEYS: &str =
    "url, audiences, organization, organization_claim, user_claim, roles_claim, roles_format";

/// The issuers of a `TRUSTED_ISSUERS_FILE` (TOML, `[[issuer]]` tables). `check_url` refuses a URL
/// the service must not trust (plain http off loopback): it returns the fix. The error is one line
/// naming the issuer (when known) and the fix; the caller prefixes the file.
pub fn parse_file(
    text: &str,
    check_url: impl Fn(&str) -> Result<(), String>,
) -> Result<Vec<IssuerSpec>, String> {
    let file: IssuersFile = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|span| format!("line {}: ", text[..span.start].lines().count().max(1)))
            .unwrap_or_default();
        format!(
            "{line}{}; the file holds [[issuer]] tables with the keys {KEYS}",
            e.message().trim_end().replace('\n', " ")
        )
    })?;
    let mut specs: Vec<IssuerSpec> = Vec::new();
    for (index, table) in file.issuer.into_iter().enumerate() {
        let named = table
            .get("url")
            .and_then(toml::Value::as_str)
            .map(|url| format!("issuer {url}"))
            .unwrap_or_else(|| format!("[[issuer]] number {}", index + 1));
        let fail = |why: String| format!("{named}: {why}");
        let entry = IssuerEntry::deserialize(table).map_err(|e| {
            let message = e.message().trim_end().replace('\n', " ");
            fail(format!("{message}; the keys are {KEYS}"))
        })?;
        let url = entry.url.clone();
        match url::Url::parse(&url) {
            Ok(parsed)
                if matches!(parsed.scheme(), "http" | "https")
                    && parsed.has_host()
                    && !url.contains(['?', '#'])
                    && !url.contains(char::is_whitespace) => {}
            _ => {
                return Err(fail(
                    "url is not an absolute https URL: write the iss of the issuer's tokens exactly, such as https://sso.example.com/realms/acme".into(),
                ));
            }
        }
        check_url(&url).map_err(fail)?;
        if specs.iter().any(|s| s.url == url) {
            return Err(fail(
                "listed twice: keep one [[issuer]] table per url".into(),
            ));
        }
        let nonempty = |key: &str, value: Option<String>| -> Result<Option<String>, String> {
            match value.map(|v| v.trim().to_owned()) {
                Some(v) if v.is_empty() => Err(fail(format!(
                    "{key} is empty: name it, or leave the key out"
                ))),
                other => Ok(other),
            }
        };
        let organization = match (
            nonempty("organization", entry.organization)?,
            nonempty("organization_claim", entry.organization_claim)?,
        ) {
            (Some(org), None) => Organization::Fixed(org),
            (None, Some(name)) => Organization::Claim(name),
            (Some(_), Some(_)) => {
                return Err(fail(
                    "both organization and organization_claim are set: keep organization for a single-tenant issuer, or organization_claim for the claim that names it".into(),
                ));
            }
            (None, None) => {
                return Err(fail(
                    "no organization: set organization = \"<id>\" for a single-tenant issuer, or organization_claim = \"<claim>\" for the claim that names it".into(),
                ));
            }
        };
        let roles_format = match entry.roles_format.as_deref().map(str::trim) {
            None | Some("slug") => RolesFormat::Slug,
            Some("role_id") => RolesFormat::RoleId,
            Some(other) => {
                return Err(fail(format!(
                    "roles_format {other:?} is not one: use \"slug\" (bare slugs in the caller's organization) or \"role_id\" (\"<organization>:<slug>\")"
                )));
            }
        };
        if entry.audiences.iter().any(|a| a.trim().is_empty()) {
            return Err(fail(
                "audiences holds an empty entry: list client ids, or leave the key out for any client".into(),
            ));
        }
        specs.push(IssuerSpec {
            url,
            mapping: Mapping {
                audiences: entry.audiences,
                token_uses: None,
                organization,
                user_claim: nonempty("user_claim", entry.user_claim)?
                    .or_else(|| Some("sub".to_owned())),
                roles_claim: nonempty("roles_claim", entry.roles_claim)?
                    .unwrap_or_else(|| DEFAULT_ROLES_CLAIM.to_owned()),
                roles_format,
            },
        });
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn parse(text: &str) -> Result<Vec<IssuerSpec>, String> {
        parse_file(text, |url| {
            if url.starts_with("http://") && !url.starts_with("http://127.0.0.1") {
                Err("plain http".into())
            } else {
                Ok(())
            }
        })
    }

    #[test]
    fn a_claim_is_read_whole_first_then_as_a_path() {
        let c = claims(json!({
            "https://example.com/org_id": "7",
            "realm_access": {"roles": ["admin"]},
            "a.b": "whole",
            "a": {"b": "path"},
        }));
        assert_eq!(claim(&c, "https://example.com/org_id"), Some(&json!("7")));
        assert_eq!(claim(&c, "realm_access.roles"), Some(&json!(["admin"])));
        assert_eq!(claim(&c, "a.b"), Some(&json!("whole")));
        assert_eq!(claim(&c, "realm_access.missing"), None);
        assert_eq!(claim(&c, "a.b.c"), None);
    }

    #[test]
    fn roles_are_slugs_in_the_callers_organization_or_role_ids() {
        let c = claims(json!({"roles": ["owner", "9:owner", ""], "csv": "1:a, 1:b"}));
        let slug = Mapping {
            roles_format: RolesFormat::Slug,
            ..Mapping::cognito(vec![], vec![], "roles".into())
        };
        assert_eq!(slug.roles(&c, "5"), ["5:owner"]);
        let role_id = Mapping::cognito(vec![], vec![], "csv".into());
        assert_eq!(role_id.roles(&c, "5"), ["1:a", "1:b"]);
        assert!(values_of(Some(&json!({"1": "a"}))).is_empty());
    }

    #[test]
    fn a_file_issuer_admits_aud_azp_or_client_id_without_token_use() {
        let spec = &parse(
            "[[issuer]]\nurl = \"https://sso.example.com/\"\naudiences = [\"portal\"]\norganization = \"1\"\n",
        )
        .unwrap()[0];
        assert_eq!(spec.url, "https://sso.example.com/", "the slash is kept");
        let m = &spec.mapping;
        assert!(m.admits(&claims(json!({"aud": "portal"}))).is_ok());
        assert!(m.admits(&claims(json!({"aud": ["api", "portal"]}))).is_ok());
        assert!(
            m.admits(&claims(json!({"aud": "api", "azp": "portal"})))
                .is_ok()
        );
        assert!(m.admits(&claims(json!({"client_id": "portal"}))).is_ok());
        assert!(m.admits(&claims(json!({"aud": "api"}))).is_err());
        assert!(m.admits(&claims(json!({}))).is_err());
        assert_eq!(m.organization(&claims(json!({}))), Ok("1".into()));
        assert_eq!(m.user(&claims(json!({"sub": "s"}))), Some("s".into()));
        assert_eq!(m.roles_claim, DEFAULT_ROLES_CLAIM);
    }

    #[test]
    fn the_cognito_mapping_checks_token_use_and_the_client() {
        let strict = Mapping::cognito(
            vec!["portal".into(), "cli".into()],
            vec!["id".into()],
            "assignments".into(),
        );
        let access = Mapping {
            token_uses: Some(vec!["access".into()]),
            ..strict.clone()
        };
        let open = Mapping::cognito(vec![], TOKEN_USES.map(str::to_owned).to_vec(), "a".into());
        let cases = [
            (&open, json!({"token_use": "id"}), true),
            (&open, json!({"token_use": "access"}), true),
            (&open, json!({}), false),
            (&open, json!({"token_use": "refresh"}), false),
            (&open, json!({"token_use": 1}), false),
            (&strict, json!({"token_use": "id", "aud": "portal"}), true),
            (
                &strict,
                json!({"token_use": "id", "aud": ["x", "cli"]}),
                true,
            ),
            (&strict, json!({"token_use": "id", "aud": "other"}), false),
            (
                &strict,
                json!({"token_use": "id", "client_id": "portal"}),
                false,
            ),
            (&strict, json!({"token_use": "id", "azp": "portal"}), false),
            (&strict, json!({"token_use": "id"}), false),
            (
                &access,
                json!({"token_use": "access", "client_id": "cli"}),
                true,
            ),
            (&access, json!({"token_use": "access", "aud": "cli"}), false),
        ];
        for (mapping, c, expected) in cases {
            assert_eq!(
                mapping.admits(&claims(c.clone())).is_ok(),
                expected,
                "{mapping:?} {c}"
            );
        }
    }

    #[test]
    fn the_cognito_organization_and_user_come_from_the_ivy_claims_first() {
        let m = Mapping::cognito(vec![], vec![], "assignments".into());
        let c = claims(
            json!({"custom:ivy_org_id": "1", "org_id": "2", "custom:ivy_user_id": "u", "sub": "s"}),
        );
        assert_eq!(m.organization(&c), Ok("1".into()));
        assert_eq!(m.user(&c), Some("u".into()));
        let c = claims(json!({"org_id": 42, "sub": "s"}));
        assert_eq!(m.organization(&c), Ok("42".into()));
        assert_eq!(m.user(&c), Some("s".into()));
        assert_eq!(
            m.organization(&claims(json!({"sub": "s"}))),
            Err("custom:ivy_org_id or org_id".into())
        );
    }

    #[test]
    fn mistakes_in_the_file_are_one_line_naming_the_issuer_and_the_fix() {
        let cases = [
            (
                "[[issuer]]\nurl = \"https://a.example\"\norganization = \"1\"\nroles = \"x\"\n",
                "issuer https://a.example: unknown field `roles`",
            ),
            (
                "[[issuer]]\nurl = \"https://a.example\"\n",
                "issuer https://a.example: no organization: set organization",
            ),
            (
                "[[issuer]]\nurl = \"https://a.example\"\norganization = \"1\"\norganization_claim = \"o\"\n",
                "issuer https://a.example: both organization and organization_claim",
            ),
            (
                "[[issuer]]\nurl = \"http://sso.example\"\norganization = \"1\"\n",
                "issuer http://sso.example: plain http",
            ),
            (
                "[[issuer]]\nurl = \"sso.example\"\norganization = \"1\"\n",
                "issuer sso.example: url is not an absolute https URL",
            ),
            (
                "[[issuer]]\nurl = \"https://a.example\"\norganization = \"1\"\nroles_format = \"slugs\"\n",
                "issuer https://a.example: roles_format \"slugs\" is not one",
            ),
            (
                "[[issuer]]\nurl = \"https://a.example\"\norganization = \"1\"\n[[issuer]]\nurl = \"https://a.example\"\norganization = \"2\"\n",
                "issuer https://a.example: listed twice",
            ),
            (
                "[[issuer]]\norganization = \"1\"\n",
                "[[issuer]] number 1: missing field `url`",
            ),
            ("[issuers]\nurl = 1\n", "line 1: unknown field `issuers`"),
            ("[[issuer]\n", "line 1: "),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.starts_with(expected), "{text:?}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
        assert_eq!(parse("").unwrap(), []);
    }
}
