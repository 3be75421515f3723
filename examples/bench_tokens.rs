//! For `benches/compare.sh`: writes `keys.json` (an RS256 JWKS) into the folder given as
//! the first argument, and `tokens.txt` with one repeated token on its first line and
//! then N distinct ones (second argument, default 20000), all valid for an hour with a
//! role + client + azpacr that the compare script's policy accepts.

use jsonwebtoken::Algorithm;
use serde_json::json;
use tollgate::devissuer::{SigningKey, app_claims};

const AUD: &str = "api://bench";
const CLIENT: &str = "2b50a014-f353-4c10-aace-024f19a55569";
const TENANT: &str = "7ff95b15-dc21-4ba6-bc92-824856578fc1";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: bench_tokens DIR [N]")?);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(20_000);
    let key = SigningKey::generate_rsa("bench-1", Algorithm::RS256)?;
    std::fs::write(dir.join("keys.json"), json!({ "keys": [key.jwk()] }).to_string())?;
    let mut out = String::new();
    for i in 0..=n {
        let mut claims = app_claims(AUD, CLIENT, "2", &["Orders.Read"], TENANT);
        claims["iss"] = json!(format!("https://login.microsoftonline.com/{TENANT}/v2.0"));
        claims["jti"] = json!(format!("bench-{i}"));
        out.push_str(&key.sign(&claims));
        out.push('\n');
    }
    std::fs::write(dir.join("tokens.txt"), out)?;
    Ok(())
}
