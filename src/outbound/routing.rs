//! Which outbound route a request takes: by host (from an absolute-form target, as sent by
//! clients using `HTTP_PROXY`, else the `Host` header; a port in the route is compared
//! only when given) and/or whole-segment `path_prefix`; first match wins.

use http::Request;
use http::header::HOST;

use crate::config::{HostMatch, OutboundRoute};
use crate::served_path::ServedPath;

/// The host a request is for, lower-cased, with its port (explicit or the scheme's default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHost {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for RequestHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl RequestHost {
    /// `host:port`, as [`Display`](std::fmt::Display) writes it, without the formatter.
    pub fn text(&self) -> String {
        let mut port = itoa::Buffer::new();
        let port = port.format(self.port);
        let mut out = String::with_capacity(self.host.len() + 1 + port.len());
        out.push_str(&self.host);
        out.push(':');
        out.push_str(port);
        out
    }
}

pub fn request_host<B>(req: &Request<B>) -> Option<RequestHost> {
    if let Some(authority) = req.uri().authority() {
        let default = if req.uri().scheme_str() == Some("https") {
            443
        } else {
            80
        };
        return Some(RequestHost {
            host: authority.host().trim_matches(['[', ']']).to_ascii_lowercase(),
            port: authority.port_u16().unwrap_or(default),
        });
    }
    let value = req.headers().get(HOST)?.to_str().ok()?;
    let authority: http::uri::Authority = value.parse().ok()?;
    Some(RequestHost {
        host: authority.host().trim_matches(['[', ']']).to_ascii_lowercase(),
        port: authority.port_u16().unwrap_or(80),
    })
}

/// The first route matching `host` and the request's served path.
pub fn find_route<'r>(
    routes: &'r [OutboundRoute],
    host: Option<&RequestHost>,
    path: &ServedPath,
) -> Option<(usize, &'r OutboundRoute)> {
    routes.iter().enumerate().find(|(_, r)| {
        r.host
            .as_ref()
            .is_none_or(|m| host.is_some_and(|h| host_matches(m, h)))
            && r.path_prefix.as_ref().is_none_or(|p| p.matches(path))
    })
}

fn host_matches(m: &HostMatch, h: &RequestHost) -> bool {
    m.host.trim_matches(['[', ']']).eq_ignore_ascii_case(&h.host) && m.port.is_none_or(|p| p == h.port)
}

/// The path to request upstream: `raw_path` as received, minus the route's prefix when
/// `strip_prefix` (counted in segments, so percent-encoding in the prefix part does not
/// matter), never empty.
pub fn upstream_path(route: &OutboundRoute, raw_path: &str) -> String {
    let Some(prefix) = route.path_prefix.as_ref().filter(|_| route.strip_prefix) else {
        return raw_path.to_string();
    };
    let depth = prefix.as_str().split('/').filter(|s| !s.is_empty()).count();
    let rest: Vec<&str> = raw_path.split('/').skip(1 + depth).collect();
    if rest.is_empty() {
        "/".to_string()
    } else {
        format!("/{}", rest.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CredentialId, PathPrefix};

    #[test]
    fn host_text_is_what_display_writes() {
        for (host, port) in [("orders.local", 80), ("::1", 8443), ("a", 0), ("b", 65535)] {
            let h = RequestHost {
                host: host.into(),
                port,
            };
            assert_eq!(h.text(), h.to_string());
        }
    }

    fn route(host: Option<(&str, Option<u16>)>, prefix: Option<&str>, strip: bool) -> OutboundRoute {
        OutboundRoute {
            label: "r".into(),
            host: host.map(|(h, p)| HostMatch {
                host: h.into(),
                port: p,
            }),
            path_prefix: prefix.map(|p| PathPrefix::parse(p).unwrap()),
            strip_prefix: strip,
            upstream: url::Url::parse("https://api.example.com").unwrap(),
            credential: CredentialId(0),
            ca_file: None,
        }
    }

    fn path(raw: &str) -> ServedPath {
        ServedPath::parse(raw, crate::served_path::PathCase::Insensitive).unwrap()
    }

    fn req(target: &str, host: Option<&str>) -> Request<()> {
        let mut b = Request::get(target);
        if let Some(h) = host {
            b = b.header(HOST, h);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn host_comes_from_the_absolute_target_else_the_host_header() {
        let abs = req("http://Orders.Internal/v1/x", Some("ignored.example"));
        assert_eq!(
            request_host(&abs),
            Some(RequestHost {
                host: "orders.internal".into(),
                port: 80
            })
        );
        let origin = req("/v1/x", Some("orders.internal:8080"));
        assert_eq!(request_host(&origin).unwrap().port, 8080);
        assert_eq!(request_host(&req("/v1/x", None)), None);
    }

    #[test]
    fn port_is_compared_only_when_the_route_gives_one() {
        let any_port = route(Some(("orders.internal", None)), None, false);
        let port_8080 = route(Some(("orders.internal", Some(8080))), None, false);
        let h = |port| RequestHost {
            host: "orders.internal".into(),
            port,
        };
        assert!(find_route(std::slice::from_ref(&any_port), Some(&h(9999)), &path("/")).is_some());
        assert!(find_route(std::slice::from_ref(&port_8080), Some(&h(8080)), &path("/")).is_some());
        assert!(find_route(std::slice::from_ref(&port_8080), Some(&h(80)), &path("/")).is_none());
        assert!(find_route(std::slice::from_ref(&any_port), None, &path("/")).is_none());
    }

    #[test]
    fn first_match_wins_and_prefixes_match_whole_segments() {
        let routes = [
            route(None, Some("/billing"), true),
            route(Some(("orders.internal", None)), None, false),
        ];
        let orders = RequestHost {
            host: "orders.internal".into(),
            port: 80,
        };
        assert_eq!(
            find_route(&routes, Some(&orders), &path("/billing/x")).unwrap().0,
            0
        );
        assert_eq!(
            find_route(&routes, Some(&orders), &path("/billingX")).unwrap().0,
            1
        );
        assert!(find_route(&routes, None, &path("/billingX")).is_none());
        assert_eq!(
            find_route(&routes, None, &path("/BILLING;v=2/x")).unwrap().0,
            0,
            "names without parameters, any case"
        );
    }

    #[test]
    fn strip_prefix_removes_whole_segments() {
        let r = route(None, Some("/billing/v1"), true);
        assert_eq!(upstream_path(&r, "/billing/v1/invoices/7"), "/invoices/7");
        assert_eq!(upstream_path(&r, "/billing/v1"), "/");
        assert_eq!(upstream_path(&r, "/bil%6cing/v1/x"), "/x");
        assert_eq!(upstream_path(&r, "/Billing;a=1/v1;b=2/x;c=3"), "/x;c=3");
        let keep = route(None, Some("/billing"), false);
        assert_eq!(upstream_path(&keep, "/billing/x"), "/billing/x");
    }
}
