//! `config`: YAML text → `Config::from_yaml`: a config or a non-empty list of problems,
//! never a panic. What the sidecar computes from an accepted config's numbers cannot
//! overflow: the reload timer's first deadline (`now + poll_interval`), the leeway as
//! signed seconds (`jwt::validate_claims`), the bearer size limit plus `Bearer `.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tollgate::config::{Config, PathPrefix};
use tollgate_fuzz::FixedEnv;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_yaml(text, Path::new("/etc/tollgate"), &FixedEnv) {
        Ok(config) => check(&config),
        Err(problems) => {
            assert!(!problems.is_empty(), "refused without a reason");
            for p in &problems {
                assert!(!p.to_string().is_empty());
            }
        }
    }
});

fn check(config: &Config) {
    let now = std::time::Instant::now();
    assert!(
        now.checked_add(config.reload_poll_interval).is_some(),
        "reload.poll_interval_seconds {:?} overflows a deadline",
        config.reload_poll_interval
    );
    for issuer in &config.issuers {
        assert!(
            i64::try_from(issuer.leeway.as_secs()).is_ok(),
            "issuers.{}.leeway_seconds {:?} is not a signed number of seconds",
            issuer.name,
            issuer.leeway
        );
    }
    if let Some(inbound) = config.inbound.as_ref().map(|i| &i.policy) {
        assert!(
            inbound.max_token_bytes.checked_add("Bearer ".len()).is_some(),
            "inbound.max_token_bytes {} overflows with the scheme",
            inbound.max_token_bytes
        );
        for route in &inbound.routes {
            let prefix = route.path_prefix.as_str();
            assert_eq!(PathPrefix::parse(prefix).as_ref(), Ok(&route.path_prefix));
        }
    }
}
