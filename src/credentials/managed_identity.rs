//! `managed_identity`: App Service's `IDENTITY_ENDPOINT` (api-version 2019-08-01, header
//! `X-IDENTITY-HEADER`) when configured, else the instance metadata service (api-version
//! 2018-02-01, header `Metadata: true`). `resource` is the scope without `/.default`.

use std::time::Instant;

use http::HeaderValue;
use url::Url;

use super::token_endpoint::{parse_response, read_limited, unreachable};
use super::{AcquireError, AcquireFuture, TokenSource};
use crate::config::ManagedIdentityEndpoint;

pub struct ManagedIdentity {
    pub http: reqwest::Client,
    pub resource: String,
    pub client_id: Option<String>,
    pub endpoint: ManagedIdentityEndpoint,
}

impl TokenSource for ManagedIdentity {
    fn acquire(&self) -> AcquireFuture<'_> {
        Box::pin(async move {
            let (url, header) = self.request_parts()?;
            let mut req = self.http.get(url);
            req = match header {
                Some(value) => req.header("X-IDENTITY-HEADER", value),
                None => req.header("Metadata", "true"),
            };
            let sent = Instant::now();
            let res = req.send().await.map_err(|e| unreachable(&e))?;
            let status = res.status().as_u16();
            let body = read_limited(res).await?;
            parse_response(status, &body, sent)
        })
    }
}

impl ManagedIdentity {
    fn request_parts(&self) -> Result<(Url, Option<HeaderValue>), AcquireError> {
        let (mut url, api_version, header) = match &self.endpoint {
            ManagedIdentityEndpoint::AppService { url, header } => {
                let mut value = HeaderValue::from_str(header.expose())
                    .map_err(|_| AcquireError::Local("IDENTITY_HEADER is not a valid header value".into()))?;
                value.set_sensitive(true);
                (url.clone(), "2019-08-01", Some(value))
            }
            ManagedIdentityEndpoint::Imds { base } => {
                let url = base
                    .join("/metadata/identity/oauth2/token")
                    .map_err(|e| AcquireError::Local(format!("instance metadata URL: {e}")))?;
                (url, "2018-02-01", None)
            }
        };
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("api-version", api_version);
            q.append_pair("resource", &self.resource);
            if let Some(id) = &self.client_id {
                q.append_pair("client_id", id);
            }
        }
        Ok((url, header))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn identity(endpoint: ManagedIdentityEndpoint) -> ManagedIdentity {
        ManagedIdentity {
            http: reqwest::Client::new(),
            resource: "api://orders".into(),
            client_id: Some("user-assigned".into()),
            endpoint,
        }
    }

    #[test]
    fn imds_and_app_service_requests() {
        let imds = identity(ManagedIdentityEndpoint::Imds {
            base: Url::parse("http://169.254.169.254").unwrap(),
        });
        let (url, header) = imds.request_parts().unwrap();
        assert_eq!(
            url.as_str(),
            "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=api%3A%2F%2Forders&client_id=user-assigned"
        );
        assert!(header.is_none());
        let app = identity(ManagedIdentityEndpoint::AppService {
            url: Url::parse("http://127.0.0.1:41000/msi/token").unwrap(),
            header: Secret::new("abc".into()),
        });
        let (url, header) = app.request_parts().unwrap();
        assert!(
            url.as_str()
                .starts_with("http://127.0.0.1:41000/msi/token?api-version=2019-08-01&resource=")
        );
        assert!(header.unwrap().is_sensitive());
    }
}
