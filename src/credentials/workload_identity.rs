//! `workload_identity`: the Kubernetes service-account token in `token_file` is the client
//! assertion, read fresh at every acquisition (the kubelet rotates it).

use super::token_endpoint::{ClientProof, TokenEndpoint};
use super::{AcquireError, ClientAuthentication, JWT_BEARER, ProofFuture};

pub struct WorkloadIdentity {
    pub endpoint: TokenEndpoint,
    pub client_id: String,
    pub token_file: std::path::PathBuf,
}

impl ClientAuthentication for WorkloadIdentity {
    fn endpoint(&self) -> &TokenEndpoint {
        &self.endpoint
    }

    fn prove(&self) -> ProofFuture<'_> {
        Box::pin(async move {
            let assertion = tokio::fs::read_to_string(&self.token_file).await.map_err(|e| {
                AcquireError::Local(format!(
                    "cannot read the federated token file {}: {e}",
                    self.token_file.display()
                ))
            })?;
            let assertion = assertion.trim();
            if assertion.is_empty() {
                return Err(AcquireError::Local(format!(
                    "the federated token file {} is empty",
                    self.token_file.display()
                )));
            }
            let fields = vec![
                ("client_id", self.client_id.clone()),
                ("client_assertion_type", JWT_BEARER.to_string()),
                ("client_assertion", assertion.to_string()),
            ];
            Ok(ClientProof { fields, basic: None })
        })
    }
}
