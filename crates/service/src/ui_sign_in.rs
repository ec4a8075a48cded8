//! The settings page's sign-in with OpenID Connect (`UI_OIDC_*`): the authorization code flow with
//! PKCE for a public client. The page sends the user to the issuer's authorization endpoint and
//! back with a code; it hands the code and its PKCE verifier to the service, which redeems them at
//! the issuer's token endpoint and answers the ID token, which the page then calls the API with.
//! The service relays, so that the page talks to its own origin only (`connect-src 'self'`); it
//! holds no client secret, and the PKCE verifier never left the page before this request.

use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::RwLock;

use crate::config::UiOidcSettings;
use crate::error::{Error, Result};

/// A discovery document or token answer larger than this is not one.
const MAX_BODY_BYTES: usize = 256 * 1024;
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What the page needs to start a sign-in.
#[derive(Debug, Clone, Serialize)]
pub struct PageConfig {
    pub issuer: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub authorization_endpoint: String,
}

#[derive(Debug, Clone)]
struct Endpoints {
    authorization: String,
    token: String,
}

pub struct UiSignIn {
    settings: UiOidcSettings,
    redirect_uri: String,
    http: reqwest::Client,
    /// Read from the issuer's discovery document when first needed; a failure is not kept.
    endpoints: RwLock<Option<Endpoints>>,
}

impl UiSignIn {
    pub fn new(settings: UiOidcSettings, public_url: &str) -> Self {
        let redirect_uri = settings
            .redirect_uri
            .clone()
            .unwrap_or_else(|| format!("{public_url}/ui/"));
        Self {
            settings,
            redirect_uri,
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("the HTTP client of the page's sign-in builds"),
            endpoints: RwLock::new(None),
        }
    }

    pub async fn config(&self) -> Result<PageConfig> {
        let endpoints = self.endpoints().await?;
        Ok(PageConfig {
            issuer: self.settings.issuer.clone(),
            client_id: self.settings.client_id.clone(),
            redirect_uri: self.redirect_uri.clone(),
            scope: self.settings.scope.clone(),
            authorization_endpoint: endpoints.authorization,
        })
    }

    /// Redeems an authorization code and its PKCE verifier at the issuer; answers the ID token.
    pub async fn redeem(&self, code: &str, verifier: &str) -> Result<String> {
        let well_formed = |v: &str| !v.is_empty() && v.len() <= 2048 && v.is_ascii();
        if !well_formed(code) || !(43..=128).contains(&verifier.len()) || !verifier.is_ascii() {
            return Err(Error::bad_request(
                "code and code_verifier (43 to 128 characters, RFC 7636) are required",
            ));
        }
        let endpoints = self.endpoints().await?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("code_verifier", verifier)
            .finish();
        let unavailable = |why: String| {
            tracing::warn!(issuer = %self.settings.issuer, %why, "the settings page's sign-in failed at the issuer");
            Error::Unavailable
        };
        let response = self
            .http
            .post(&endpoints.token)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = response.status();
        let answer = read_json(response).await.map_err(unavailable)?;
        if !status.is_success() {
            let error = answer
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("an error")
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(64)
                .collect::<String>();
            return Err(Error::bad_request(format!(
                "the identity provider refused the sign-in ({error}): sign in again"
            )));
        }
        answer
            .get("id_token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| unavailable("the token answer has no id_token".to_owned()))
    }

    async fn endpoints(&self) -> Result<Endpoints> {
        if let Some(known) = self.endpoints.read().await.clone() {
            return Ok(known);
        }
        let issuer = &self.settings.issuer;
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let unavailable = |why: String| {
            tracing::warn!(%issuer, %why, "could not read the sign-in issuer's discovery document");
            Error::Unavailable
        };
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("{url} answered {}", response.status())));
        }
        let document = read_json(response).await.map_err(unavailable)?;
        if document.get("issuer").and_then(Value::as_str) != Some(issuer.as_str()) {
            return Err(unavailable(format!("{url} names another issuer")));
        }
        let endpoint = |name: &str| -> Result<String> {
            let value = document
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| unavailable(format!("{url} has no {name}")))?;
            let parsed =
                url::Url::parse(value).map_err(|_| unavailable(format!("{name} is not a URL")))?;
            if parsed.scheme() == "https"
                || (parsed.scheme() == "http" && crate::config::is_loopback(&parsed))
            {
                Ok(value.to_owned())
            } else {
                Err(unavailable(format!("{name} is not https")))
            }
        };
        let found = Endpoints {
            authorization: endpoint("authorization_endpoint")?,
            token: endpoint("token_endpoint")?,
        };
        *self.endpoints.write().await = Some(found.clone());
        Ok(found)
    }
}

/// A JSON object answer, read up to [`MAX_BODY_BYTES`].
async fn read_json(
    mut response: reqwest::Response,
) -> std::result::Result<Map<String, Value>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(format!("the answer is larger than {MAX_BODY_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|_| "the answer is not a JSON object".to_owned())
}
