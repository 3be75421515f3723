use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::config::{Access, ClaimRequirement, PathPrefix};
use crate::served_path::PathCase;

fn claims(v: Value) -> Claims {
    v.as_object().cloned().unwrap().into()
}

fn name(i: IssuerId) -> String {
    format!("issuer{}", i.0)
}

fn req() -> Requirement {
    Requirement::default()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn route(prefix: &str, methods: Option<Vec<Method>>) -> InboundRoute {
    InboundRoute {
        label: prefix.into(),
        path_prefix: PathPrefix::parse(prefix).unwrap(),
        methods,
        access: Access::Anonymous,
    }
}

fn path(raw: &str) -> crate::served_path::ServedPath {
    crate::served_path::ServedPath::parse(raw, crate::served_path::PathCase::Insensitive).unwrap()
}

#[test]
fn first_matching_route_wins_and_prefixes_match_whole_segments() {
    let routes = vec![
        route("/orders", Some(vec![Method::GET])),
        route("/orders", None),
        route("/", None),
    ];
    assert_eq!(
        find_route(&routes, &Method::GET, &path("/orders/7")).map(|r| &r.label),
        Some(&routes[0].label)
    );
    assert!(std::ptr::eq(
        find_route(&routes, &Method::POST, &path("/orders")).unwrap(),
        &routes[1]
    ));
    assert!(std::ptr::eq(
        find_route(&routes, &Method::GET, &path("/ordersX")).unwrap(),
        &routes[2]
    ));
    assert!(find_route(&routes[..2], &Method::GET, &path("/ordersX")).is_none());
}

#[test]
fn roles_any_and_all() {
    let c = claims(json!({"roles": ["A", "B"]}));
    let mut r = req();
    r.roles_any = s(&["X", "B"]);
    assert!(evaluate(&r, IssuerId(0), &c, &name).is_ok());
    r.roles_all = s(&["A", "C"]);
    assert_eq!(
        evaluate(&r, IssuerId(0), &c, &name).unwrap_err().requirement,
        "roles_all"
    );
}

#[test]
fn a_single_string_role_counts_as_one_role() {
    let c = claims(json!({"roles": "Orders.Read"}));
    let mut r = req();
    r.roles_any = s(&["Orders.Read"]);
    assert!(evaluate(&r, IssuerId(0), &c, &name).is_ok());
}

#[test]
fn scopes_are_space_separated() {
    let c = claims(json!({"scp": "reports.read orders.read"}));
    let mut r = req();
    r.scopes_all = s(&["orders.read", "reports.read"]);
    assert!(evaluate(&r, IssuerId(0), &c, &name).is_ok());
    r.scopes_any = s(&["orders"]);
    assert_eq!(
        evaluate(&r, IssuerId(0), &c, &name).unwrap_err().requirement,
        "scopes_any"
    );
}

#[test]
fn clients_and_azpacr_accept_v1_and_v2_claims() {
    let mut r = req();
    r.clients = s(&["c1"]);
    r.azpacr = s(&["2"]);
    let v2 = claims(json!({"azp": "c1", "azpacr": "2"}));
    let v1 = claims(json!({"appid": "c1", "appidacr": "2"}));
    assert!(evaluate(&r, IssuerId(0), &v2, &name).is_ok());
    assert!(evaluate(&r, IssuerId(0), &v1, &name).is_ok());
    let secret = claims(json!({"azp": "c1", "azpacr": "1"}));
    let unmet = evaluate(&r, IssuerId(0), &secret, &name).unwrap_err();
    assert_eq!(unmet.requirement, "azpacr");
    assert!(unmet.description.contains("[2]"), "{}", unmet.description);
    let other = claims(json!({"azp": "c2", "azpacr": "2"}));
    assert_eq!(
        evaluate(&r, IssuerId(0), &other, &name).unwrap_err().requirement,
        "clients"
    );
}

#[test]
fn issuers_tenants_and_claims() {
    let c = claims(json!({"tid": "t1", "idtyp": "app", "groups": ["g1", "g2"]}));
    let mut r = req();
    r.issuers = vec![IssuerId(1)];
    let unmet = evaluate(&r, IssuerId(0), &c, &name).unwrap_err();
    assert_eq!(
        (unmet.requirement, unmet.description.contains("issuer1")),
        ("issuers", true)
    );
    r.issuers = vec![IssuerId(0)];
    r.tenants = s(&["t2"]);
    assert_eq!(
        evaluate(&r, IssuerId(0), &c, &name).unwrap_err().requirement,
        "tenants"
    );
    r.tenants = s(&["t1"]);
    r.claims = vec![
        ClaimRequirement {
            claim: "idtyp".into(),
            values: s(&["app"]),
        },
        ClaimRequirement {
            claim: "groups".into(),
            values: s(&["g2"]),
        },
    ];
    assert!(evaluate(&r, IssuerId(0), &c, &name).is_ok());
    r.claims.push(ClaimRequirement {
        claim: "missing".into(),
        values: s(&["x"]),
    });
    assert_eq!(
        evaluate(&r, IssuerId(0), &c, &name).unwrap_err().requirement,
        "claims"
    );
}

#[test]
fn any_of_needs_one_alternative() {
    let mut a = req();
    a.roles_any = s(&["Reports.Read"]);
    let mut b = req();
    b.scopes_any = s(&["reports.read"]);
    let mut r = req();
    r.any_of = vec![a, b];
    assert!(evaluate(&r, IssuerId(0), &claims(json!({"scp": "reports.read"})), &name).is_ok());
    let unmet = evaluate(&r, IssuerId(0), &claims(json!({"roles": ["X"]})), &name).unwrap_err();
    assert_eq!(unmet.requirement, "any_of");
}

#[test]
fn missing_claims_never_satisfy_a_requirement() {
    let c = claims(json!({}));
    for field in [
        "roles_any",
        "roles_all",
        "scopes_any",
        "clients",
        "azpacr",
        "tenants",
    ] {
        let mut r = req();
        let v = s(&["x"]);
        match field {
            "roles_any" => r.roles_any = v,
            "roles_all" => r.roles_all = v,
            "scopes_any" => r.scopes_any = v,
            "clients" => r.clients = v,
            "azpacr" => r.azpacr = v,
            _ => r.tenants = v,
        }
        assert_eq!(
            evaluate(&r, IssuerId(0), &c, &name).unwrap_err().requirement,
            field
        );
    }
}

#[test]
fn explain_checks_list_every_requirement_with_what_the_token_had() {
    let r = Requirement {
        roles_any: vec!["Orders.Read".into()],
        azpacr: vec!["2".into()],
        tenants: vec!["t1".into()],
        ..Default::default()
    };
    let c = claims(json!({ "roles": ["Orders.Read", "X"], "azpacr": "1", "tid": "t1" }));
    let all = checks(&r, IssuerId(0), &c, false);
    let summary: Vec<(&str, bool, Vec<&str>)> = all
        .iter()
        .map(|c| {
            (
                c.requirement,
                c.passed,
                c.saw.iter().map(|s| s.as_ref()).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("roles_any", true, vec!["Orders.Read", "X"]),
            ("azpacr", false, vec!["1"]),
            ("tenants", true, vec!["t1"]),
        ]
    );
    // Enforcement stops at the first failure.
    assert_eq!(checks(&r, IssuerId(0), &c, true).len(), 2);
}

// === properties ===

const ROLES: &[&str] = &["A", "B", "C"];
const SCOPES: &[&str] = &["r", "w", "x"];

fn some_of(vocabulary: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(prop::sample::select(vocabulary), 1..3)
        .prop_map(|v| v.into_iter().map(String::from).collect())
}

/// A requirement key: mostly absent, so that a set of them is often met.
fn sparse<T: std::fmt::Debug + Default + Clone>(
    present: impl Strategy<Value = T>,
) -> impl Strategy<Value = T> {
    prop_oneof![3 => Just(T::default()), 1 => present]
}

/// One requirement set without `any_of`, over small vocabularies so that tokens often meet it.
fn flat_requirement() -> impl Strategy<Value = Requirement> {
    let idtyp = prop::collection::vec(prop::sample::select(&["app", "user"][..]), 1..3).prop_map(|values| {
        vec![ClaimRequirement {
            claim: "idtyp".into(),
            values: values.into_iter().map(String::from).collect(),
        }]
    });
    (
        sparse(prop::collection::vec((0..2usize).prop_map(IssuerId), 1..3)),
        [ROLES, ROLES, SCOPES, SCOPES].map(|vocabulary| sparse(some_of(vocabulary))),
        [&["c1", "c2"][..], &["1", "2"], &["t1", "t2"]].map(|vocabulary| sparse(some_of(vocabulary))),
        sparse(idtyp),
    )
        .prop_map(
            |(
                issuers,
                [roles_any, roles_all, scopes_any, scopes_all],
                [clients, azpacr, tenants],
                claims,
            )| {
                Requirement {
                    issuers,
                    roles_any,
                    roles_all,
                    scopes_any,
                    scopes_all,
                    clients,
                    azpacr,
                    tenants,
                    claims,
                    token_kind: None,
                    any_of: Vec::new(),
                }
            },
        )
}

/// Requirement sets whose `any_of` alternatives may hold `any_of` in turn.
fn requirement() -> impl Strategy<Value = Requirement> {
    flat_requirement().prop_recursive(2, 12, 3, |inner| {
        (flat_requirement(), prop::collection::vec(inner, 1..4)).prop_map(|(mut req, alternatives)| {
            req.any_of = alternatives;
            req
        })
    })
}

/// Claims over the same vocabularies; every claim may be absent, roles may be one string.
fn token_claims() -> impl Strategy<Value = Claims> {
    (
        prop::option::of(prop_oneof![
            some_of(ROLES).prop_map(|r| json!(r)),
            prop::sample::select(ROLES).prop_map(|r| json!(r)),
        ]),
        prop::option::of(some_of(SCOPES).prop_map(|s| json!(s.join(" ")))),
        prop::option::of(prop::sample::select(&["c1", "c2"][..])),
        prop::option::of(prop::sample::select(&["1", "2"][..])),
        prop::option::of(prop::sample::select(&["t1", "t2"][..])),
        prop::option::of(prop::sample::select(&["app", "user"][..])),
    )
        .prop_map(|(roles, scp, azp, azpacr, tid, idtyp)| {
            let fields = [
                ("roles", roles),
                ("scp", scp),
                ("azp", azp.map(|v| json!(v))),
                ("azpacr", azpacr.map(|v| json!(v))),
                ("tid", tid.map(|v| json!(v))),
                ("idtyp", idtyp.map(|v| json!(v))),
            ];
            fields
                .into_iter()
                .filter_map(|(name, value)| Some((name.to_string(), value?)))
                .collect::<Claims>()
        })
}

fn holds(req: &Requirement, issuer: IssuerId, claims: &Claims) -> bool {
    evaluate(req, issuer, claims, &name).is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn any_of_holds_iff_the_other_keys_and_at_least_one_alternative_hold(
        req in requirement(),
        claims in token_claims(),
        issuer in (0..2usize).prop_map(IssuerId),
    ) {
        let mut others = req.clone();
        others.any_of.clear();
        let one_alternative = req.any_of.is_empty() || req.any_of.iter().any(|alt| holds(alt, issuer, &claims));
        prop_assert_eq!(holds(&req, issuer, &claims), holds(&others, issuer, &claims) && one_alternative);
    }

    #[test]
    fn explain_and_enforcement_agree(
        req in requirement(),
        claims in token_claims(),
        issuer in (0..2usize).prop_map(IssuerId),
    ) {
        let all_passed = checks(&req, issuer, &claims, false).iter().all(|c| c.passed);
        prop_assert_eq!(all_passed, holds(&req, issuer, &claims));
    }

    #[test]
    fn all_of_a_non_empty_list_implies_any_of_it(
        roles in some_of(ROLES),
        scopes in some_of(SCOPES),
        claims in token_claims(),
    ) {
        let all_roles = Requirement { roles_all: roles.clone(), ..req() };
        let any_role = Requirement { roles_any: roles, ..req() };
        prop_assert!(!holds(&all_roles, IssuerId(0), &claims) || holds(&any_role, IssuerId(0), &claims));
        let all_scopes = Requirement { scopes_all: scopes.clone(), ..req() };
        let any_scope = Requirement { scopes_any: scopes, ..req() };
        prop_assert!(!holds(&all_scopes, IssuerId(0), &claims) || holds(&any_scope, IssuerId(0), &claims));
    }

    #[test]
    fn a_prefix_matches_whole_segments_only(
        prefix in "(/[a-zA-Z]{1,3}){1,3}",
        glued in "[a-zA-Z0-9._~-]{1,3}",
        rest in "(/[a-z0-9]{1,3}){0,2}",
    ) {
        let routes = vec![route(&prefix, None)];
        for case in [PathCase::Insensitive, PathCase::Sensitive] {
            let parse = |raw: &str| ServedPath::parse(raw, case).unwrap();
            // `/a` never matches `/ab…`: the last name of the prefix must end where it ends.
            let crossing = format!("{prefix}{glued}{rest}");
            prop_assert!(find_route(&routes, &Method::GET, &parse(&crossing)).is_none(), "{} matched {}", prefix, crossing);
            for within in [format!("{prefix}{rest}"), format!("{prefix};v=1{rest}"), format!("{prefix}/")] {
                prop_assert!(find_route(&routes, &Method::GET, &parse(&within)).is_some(), "{} missed {}", prefix, within);
            }
        }
        let shouted = ServedPath::parse(&prefix.to_uppercase(), PathCase::Insensitive).unwrap();
        prop_assert!(find_route(&routes, &Method::GET, &shouted).is_some());
    }
}

#[test]
fn token_kind_follows_idtyp_when_present() {
    let user = claims(json!({"idtyp": "user"}));
    let app = claims(json!({"idtyp": "app", "scp": "Orders.Read"}));
    let mut r = req();
    r.token_kind = Some(TokenKind::User);
    assert!(evaluate(&r, IssuerId(0), &user, &name).is_ok());
    let unmet = evaluate(&r, IssuerId(0), &app, &name).unwrap_err();
    assert_eq!(unmet.requirement, "token_kind");
    assert!(
        unmet.description.contains("a user token"),
        "{}",
        unmet.description
    );
    r.token_kind = Some(TokenKind::App);
    assert!(evaluate(&r, IssuerId(0), &app, &name).is_ok());
}

#[test]
fn without_idtyp_a_token_with_scp_is_a_user_token() {
    let user = claims(json!({"scp": "Orders.Read", "oid": "u1"}));
    let app = claims(json!({"roles": ["Orders.Read"]}));
    assert_eq!(token_kind(&user), TokenKind::User);
    assert_eq!(token_kind(&app), TokenKind::App);
    let mut r = req();
    r.token_kind = Some(TokenKind::App);
    r.roles_any = s(&["Orders.Read"]);
    assert!(evaluate(&r, IssuerId(0), &app, &name).is_ok());
    assert_eq!(
        evaluate(&r, IssuerId(0), &user, &name).unwrap_err().requirement,
        "roles_any"
    );
    r.roles_any.clear();
    assert_eq!(
        evaluate(&r, IssuerId(0), &user, &name).unwrap_err().requirement,
        "token_kind"
    );
}

#[test]
fn token_kind_combines_with_scopes_in_explain() {
    let r = Requirement {
        scopes_any: s(&["Orders.Read"]),
        token_kind: Some(TokenKind::User),
        clients: s(&["web-app"]),
        ..Default::default()
    };
    let c = claims(json!({"scp": "Orders.Read", "azp": "web-app"}));
    let all = checks(&r, IssuerId(0), &c, false);
    let kind = all.iter().find(|c| c.requirement == "token_kind").unwrap();
    assert!(kind.passed);
    assert_eq!(kind.saw, vec!["user"]);
    assert!(all.iter().all(|c| c.passed));
}
