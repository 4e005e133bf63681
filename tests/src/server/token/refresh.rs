//! The refresh-token grant: rotation with reuse detection, Multi-Resource Refresh Token (MRRT)
//! policies (audience and scopes), multi-factor policies, and the ID token when the original
//! grant included `openid`.

use serde_json::{Map, Value, json};

use super::super::mint::{access_token, id_token_claims, sign_current};
use super::super::reply::Reply;
use super::super::{form, random_token, split_scope};
use super::invalid_refresh_token;
use crate::{
    EmulatorConfig, MfaRequirements, MfaTarget, RecordedRequest, RefreshEntry, Shared, State,
};

const OIDC_SCOPES: [&str; 5] = ["openid", "profile", "email", "offline_access", "address"];

/// The audience a refresh is answered for (Auth0's MRRT rule): the requested one when it is
/// the original grant's audience or has a refresh-token policy, else the tenant's default
/// audience; the original grant's audience when none is requested.
fn resolved_audience(
    cfg: &EmulatorConfig,
    grant_audience: Option<&str>,
    requested: Option<&str>,
) -> Option<String> {
    match requested {
        None => grant_audience.map(str::to_owned),
        Some(a)
            if Some(a) == grant_audience
                || cfg.refresh_token_policies.iter().any(|p| p.audience == a) =>
        {
            Some(a.to_owned())
        }
        Some(_) => cfg.default_audience.clone(),
    }
}

/// The granted scope of a refresh for `audience`. Auth0 merges two sources of permission:
/// the original grant (its OIDC scopes always; its API scopes for its own audience) and the
/// MRRT policy for `audience`. Requested scopes outside both are dropped silently, and
/// `denied_scopes` are never granted. Without a requested scope: the original grant's scope
/// for its own audience, else its OIDC scopes and the policy's scopes.
fn granted_scope(
    cfg: &EmulatorConfig,
    grant_scope: &str,
    grant_audience: Option<&str>,
    audience: Option<&str>,
    requested: Option<&str>,
) -> String {
    let grant = split_scope(grant_scope);
    let same_api = audience == grant_audience;
    let policy: Vec<&str> = cfg
        .refresh_token_policies
        .iter()
        .filter(|p| Some(p.audience.as_str()) == audience)
        .flat_map(|p| p.scope.iter().map(String::as_str))
        .collect();
    let permitted = |s: &&str| {
        if OIDC_SCOPES.contains(s) {
            grant.contains(s)
        } else {
            (same_api && grant.contains(s)) || policy.contains(s)
        }
    };
    let candidates: Vec<&str> = match requested {
        Some(requested) => split_scope(requested),
        None if same_api => grant.clone(),
        None => grant
            .iter()
            .copied()
            .filter(|s| OIDC_SCOPES.contains(s))
            .chain(policy.iter().copied())
            .collect(),
    };
    let mut granted: Vec<&str> = Vec::new();
    for s in candidates {
        if permitted(&s) && !cfg.denied_scopes.iter().any(|d| d == s) && !granted.contains(&s) {
            granted.push(s);
        }
    }
    granted.join(" ")
}

/// Auth0's `mfa_required` answer when a multi-factor policy covers this user or audience.
fn mfa_required(
    state: &mut State,
    sub: &str,
    scope: &str,
    audience: Option<&str>,
) -> Option<Reply> {
    let policy = state.mfa_policies.iter().find(|p| match &p.applies_to {
        MfaTarget::User(user) => user == sub,
        MfaTarget::Audience(a) => Some(a.as_str()) == audience,
    })?;
    let (kind, factors) = match &policy.requirements {
        MfaRequirements::Challenge(f) => ("challenge", f),
        MfaRequirements::Enroll(f) => ("enroll", f),
    };
    let factors: Vec<Value> = factors.iter().map(|f| json!({ "type": f })).collect();
    let mfa_token = state.mfa.issue(sub, scope, audience);
    Some(Reply::json(
        403,
        &json!({
            "error": "mfa_required",
            "error_description": "Multifactor authentication required",
            "mfa_token": mfa_token,
            "mfa_requirements": { kind: factors },
        }),
    ))
}

/// The configuration with the My Account API's policy added (its audience depends on the
/// emulator's address), when it grants any scope.
fn with_my_account_policy(shared: &Shared) -> EmulatorConfig {
    let mut cfg = shared.config.clone();
    if !cfg.my_account_scopes.is_empty() {
        let scopes: Vec<&str> = cfg.my_account_scopes.iter().map(String::as_str).collect();
        let policy =
            crate::RefreshTokenPolicy::new(&super::super::my_account::audience(shared), &scopes);
        cfg.refresh_token_policies.push(policy);
    }
    cfg
}

/// `grant_type=refresh_token`.
pub(crate) fn refresh_grant(shared: &Shared, req: &RecordedRequest) -> Reply {
    let cfg = &with_my_account_policy(shared);
    let Some(presented) = form(req, "refresh_token") else {
        return Reply::oauth_error(
            400,
            "invalid_request",
            "Missing required parameter: refresh_token",
        );
    };
    let mut state = shared.lock();
    let Some(entry) = state.refresh_tokens.get(presented).cloned() else {
        return invalid_refresh_token();
    };
    let grant_audience = entry
        .audience
        .clone()
        .or_else(|| cfg.default_audience.clone());
    // MRRT: an audience outside the policies gets a token for the default audience.
    let audience = resolved_audience(cfg, grant_audience.as_deref(), form(req, "audience"));
    let (new_refresh, user) = {
        if state.revoked_families.contains(&entry.family) {
            return invalid_refresh_token();
        }
        if entry.rotated {
            // Reuse of a rotated refresh token: revoke the whole family.
            state.revoked_families.insert(entry.family);
            state.reuse_detections += 1;
            return invalid_refresh_token();
        }
        // Multi-factor authentication is required before anything is issued or rotated.
        if let Some(reply) = mfa_required(&mut state, &entry.sub, &entry.scope, audience.as_deref())
        {
            return reply;
        }
        let new_refresh = if cfg.rotation {
            let token = random_token();
            if let Some(e) = state.refresh_tokens.get_mut(presented) {
                e.rotated = true;
            }
            state.refresh_tokens.insert(
                token.clone(),
                RefreshEntry {
                    rotated: false,
                    ..entry.clone()
                },
            );
            Some(token)
        } else {
            None
        };
        let user = state.user.clone();
        drop(state);
        (new_refresh, user)
    };
    let scope = granted_scope(
        cfg,
        &entry.scope,
        grant_audience.as_deref(),
        audience.as_deref(),
        form(req, "scope"),
    );
    let mut body = Map::new();
    body.insert(
        "access_token".into(),
        access_token(
            shared,
            &entry.sub,
            audience.as_deref(),
            &scope,
            cfg.access_token_lifetime,
        )
        .into(),
    );
    // Auth0 returns an ID token when the original grant included `openid`, whatever the
    // refresh request's scope or audience.
    if split_scope(&entry.scope).contains(&"openid") {
        let mut user = user;
        user.insert("sub".into(), entry.sub.clone().into());
        let claims = id_token_claims(shared, &user, None, &entry.sid, entry.org.as_ref());
        body.insert("id_token".into(), sign_current(shared, &claims).into());
    }
    if let Some(rt) = new_refresh {
        body.insert("refresh_token".into(), rt.into());
    }
    body.insert("scope".into(), scope.into());
    body.insert("expires_in".into(), cfg.access_token_lifetime.into());
    body.insert("token_type".into(), "Bearer".into());
    Reply::json(200, &Value::Object(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ANALYTICS_AUDIENCE, DEFAULT_AUDIENCE, RefreshTokenPolicy};
    use proptest::prelude::*;

    const UNIVERSE: [&str; 8] = [
        "openid",
        "profile",
        "offline_access",
        "read:data",
        "write:data",
        "read:analytics",
        "write:analytics",
        "admin:all",
    ];

    fn scopes() -> impl Strategy<Value = Vec<&'static str>> {
        proptest::sample::subsequence(UNIVERSE.to_vec(), 0..=UNIVERSE.len())
    }

    proptest! {
        /// The granted scope is exactly the requested (or, without a request, the default)
        /// scopes that the original grant or the audience's policy permits, minus the denied
        /// ones, each once.
        #[test]
        fn granted_scope_is_what_the_grant_or_the_policy_permits(
            grant in scopes(),
            policy in scopes(),
            denied in scopes(),
            requested in proptest::option::of(scopes()),
            other_api in any::<bool>(),
        ) {
            let cfg = EmulatorConfig {
                refresh_token_policies: vec![RefreshTokenPolicy::new(ANALYTICS_AUDIENCE, &policy)],
                denied_scopes: denied.iter().map(|s| (*s).to_owned()).collect(),
                ..Default::default()
            };
            let audience = if other_api { ANALYTICS_AUDIENCE } else { DEFAULT_AUDIENCE };
            let policy_for_audience: &[&str] = if other_api { &policy } else { &[] };
            let granted = granted_scope(
                &cfg,
                &grant.join(" "),
                Some(DEFAULT_AUDIENCE),
                Some(audience),
                requested.as_ref().map(|r| r.join(" ")).as_deref(),
            );
            let granted = split_scope(&granted);
            let permitted = |s: &str| {
                if OIDC_SCOPES.contains(&s) {
                    grant.contains(&s)
                } else {
                    (!other_api && grant.contains(&s)) || policy_for_audience.contains(&s)
                }
            };
            let candidates: Vec<&str> = match &requested {
                Some(r) => r.clone(),
                None if !other_api => grant.clone(),
                None => grant
                    .iter()
                    .copied()
                    .filter(|s| OIDC_SCOPES.contains(s))
                    .chain(policy_for_audience.iter().copied())
                    .collect(),
            };
            let mut expected: Vec<&str> = Vec::new();
            for s in candidates {
                if permitted(s) && !denied.contains(&s) && !expected.contains(&s) {
                    expected.push(s);
                }
            }
            prop_assert_eq!(granted, expected);
        }
    }

    #[test]
    fn an_audience_without_a_policy_falls_back_to_the_default_audience() {
        let cfg = EmulatorConfig::default();
        let grant = Some(DEFAULT_AUDIENCE);
        assert_eq!(
            resolved_audience(&cfg, grant, None).as_deref(),
            Some(DEFAULT_AUDIENCE)
        );
        assert_eq!(
            resolved_audience(&cfg, grant, Some(ANALYTICS_AUDIENCE)).as_deref(),
            Some(ANALYTICS_AUDIENCE)
        );
        assert_eq!(
            resolved_audience(&cfg, grant, Some("https://admin.example.com")).as_deref(),
            Some(DEFAULT_AUDIENCE)
        );
        let no_policies = EmulatorConfig {
            refresh_token_policies: Vec::new(),
            ..Default::default()
        };
        assert_eq!(
            resolved_audience(
                &no_policies,
                Some("https://orders.example.com"),
                Some("https://orders.example.com")
            )
            .as_deref(),
            Some("https://orders.example.com"),
            "the original grant's audience needs no policy"
        );
    }
}
