//! `tollgate demo` (the real binary, no arguments, no files): every decision as expected.

use crate::support::tollgate;

#[test]
fn the_demo_shows_each_decision_and_exits_zero() {
    let out = tollgate().arg("demo").output().expect("run tollgate demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let steps: Vec<&str> = stdout.split("\n\n").collect();
    let step = |title: &str| {
        steps
            .iter()
            .find(|s| s.contains(title))
            .unwrap_or_else(|| panic!("no step `{title}` in:\n{stdout}"))
            .to_string()
    };
    let read = step("The certificate app reads an order");
    assert!(read.contains("→ 200 allowed"), "{read}");
    assert!(
        read.contains("x-client-id: 2b50a014-f353-4c10-aace-024f19a55569"),
        "{read}"
    );
    assert!(read.contains("x-client-auth: 2"), "{read}");
    let admin = step("calls the admin API");
    assert!(admin.contains("→ 403 refused"), "{admin}");
    assert!(
        admin.contains("requires one of the roles [Orders.Admin]"),
        "{admin}"
    );
    let none = step("A caller with no token");
    assert!(none.contains("→ 401 refused"), "{none}");
    let forged = step("A forged token");
    assert!(
        forged.contains("→ 401 refused") && forged.contains("signature is invalid"),
        "{forged}"
    );
    let secret = step("The secret app (azpacr \"1\") writes an order");
    assert!(
        secret.contains("→ 403 refused") && secret.contains("azpacr"),
        "{secret}"
    );
    let cert = step("The certificate app (azpacr \"2\") writes an order");
    assert!(cert.contains("→ 200 allowed"), "{cert}");
    assert!(stdout.contains("7 of 7 decisions as expected."), "{stdout}");
    assert!(
        !stdout.contains("\x1b["),
        "no colour when stdout is not a terminal"
    );
    assert!(stderr.contains("for development only"), "{stderr}");
}
