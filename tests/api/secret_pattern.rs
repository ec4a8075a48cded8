//! `access-tokens secret-pattern`: the printed expressions match every token of their key set
//! that the deployment issues, of every type, and nothing else: not another deployment's, not
//! another key set's of the same deployment, not a Cognito-shaped JWT, not a status list.

use std::collections::HashMap;
use std::process::Command;

use regex::Regex;
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// The patterns the binary prints for `public_url`, by key set, anchored for a whole-token match.
fn patterns(public_url: &str, format: &[&str]) -> (HashMap<String, Regex>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_access-tokens"))
        .arg("secret-pattern")
        .args(format)
        .env("PUBLIC_URL", public_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    if !format.is_empty() {
        return (HashMap::new(), text);
    }
    let map = text
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(set, pattern)| {
            (
                set.to_owned(),
                Regex::new(&format!("^(?:{pattern})$")).unwrap(),
            )
        })
        .collect();
    (map, text)
}

fn bodies(set: &str) -> Vec<Value> {
    match set {
        "api" => vec![
            json!({"name": "api"}),
            json!({"name": "app", "token_type": "app", "expires_in": "7d"}),
            json!({"name": "assume", "token_type": "assume"}),
        ],
        "public" => vec![
            json!({"name": "journey", "token_type": "journey", "journey_id": "j1"}),
            json!({"name": "portal", "token_type": "portal", "portal_id": "p1", "expires_in": 3600}),
        ],
        "portal-preview" => vec![
            json!({"name": "preview", "token_type": "portal_preview", "portal_id": "p1", "portal_user_id": "pu1"}),
        ],
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn each_key_sets_pattern_matches_its_tokens_and_nothing_else() {
    let app = TestApp::spawn().await;
    let (ours, _) = patterns(&app.public_url, &[]);
    assert_eq!(ours.len(), 3, "api, public and portal-preview");
    let other_url = "https://tokens.other.example";
    let (theirs, _) = patterns(other_url, &[]);

    // A thousand tokens of each key set, of each of its types in turn; a long name and roles
    // vary the payload's length.
    let owner = app.owner();
    let mut issued: Vec<(String, String)> = Vec::new();
    for set in ["api", "public", "portal-preview"] {
        let kinds = bodies(set);
        for n in 0..1000 {
            let mut body = kinds[n % kinds.len()].clone();
            body["name"] = json!(format!(
                "{} {}",
                body["name"].as_str().unwrap(),
                "x".repeat(n % 37)
            ));
            let created = app.create_ok(&owner, body).await;
            issued.push((
                set.to_owned(),
                created["token"].as_str().unwrap().to_owned(),
            ));
        }
    }
    for (set, token) in &issued {
        for (name, pattern) in &ours {
            assert_eq!(
                pattern.is_match(token),
                name == set,
                "{name} on a {set} token: {token}"
            );
        }
        for pattern in theirs.values() {
            assert!(
                !pattern.is_match(token),
                "another deployment's pattern: {token}"
            );
        }
    }

    // A contact identification token (another key set, never stored), a Cognito-shaped JWT and a
    // status list match none.
    let contact = app
        .create_ok(
            &owner,
            json!({"name": "c", "token_type": "contact_identification", "portal_id": "p1",
                   "contact_id": "c1", "surface_id": "checkout", "allowed_operations": ["read:contact"],
                   "expires_in": 300, "origin": "END_CUSTOMER_PORTAL"}),
        )
        .await;
    let cognito = app.issuer.user("1", "u1", &["1:owner"]);
    let list = app
        .get("/v1/access-tokens/status-lists/0")
        .await
        .text()
        .await
        .unwrap();
    for other in [contact["token"].as_str().unwrap(), &cognito, &list] {
        assert!(ours.values().all(|p| !p.is_match(other)), "{other}");
    }

    // Found inside text, as a scanner reads a file.
    let (_, text) = patterns(&app.public_url, &[]);
    let api = text.lines().next().unwrap().split_once(' ').unwrap().1;
    let unanchored = Regex::new(api).unwrap();
    let leaked = format!("export TOKEN=\"{}\" # do not commit", issued[0].1);
    assert_eq!(unanchored.find(&leaked).unwrap().as_str(), issued[0].1);
}

#[tokio::test]
async fn the_gitleaks_format_holds_the_same_patterns_as_rules() {
    let app = TestApp::spawn().await;
    let (lines, _) = patterns(&app.public_url, &[]);
    let (_, toml) = patterns(&app.public_url, &["--format", "gitleaks"]);
    for set in ["api", "public", "portal-preview"] {
        assert!(
            toml.contains(&format!("id = \"access-tokens-{set}\"")),
            "{toml}"
        );
        let anchored = lines[set].as_str();
        let pattern = &anchored[4..anchored.len() - 2];
        assert!(toml.contains(&format!("regex = '''{pattern}'''")), "{toml}");
    }
    assert!(toml.contains("keywords = [\"eyJhbGciOiJSUzI1NiIsImtpZCI6I\"]"));
    assert!(!toml.contains("contact-identification"));
}
