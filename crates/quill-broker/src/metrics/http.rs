//! The metrics endpoint (`metrics.listen`): `GET /metrics` (Prometheus text) and
//! `GET /healthz`, served by hyper's HTTP/1 server on the broker's runtime.
//!
//! It binds only what `metrics.listen` names (loopback unless configured otherwise), holds at
//! most `MAX_METRICS_CONNECTIONS` connections, and gives a client `HEADER_READ_TIMEOUT` to send
//! its request headers and `CONNECTION_LIFETIME` in all, so a slow or idle peer cannot pile up
//! connections.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::rate_limit::{WarnLimiter, WARNING_INTERVAL};
use crate::state::BrokerState;

/// Concurrent connections to the metrics endpoint (Prometheus uses one per target).
pub const MAX_METRICS_CONNECTIONS: usize = 16;
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A keep-alive connection is closed after this long; the scraper reconnects.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);

static METRICS_ACCEPT_WARNINGS: WarnLimiter = WarnLimiter::new(WARNING_INTERVAL);

/// Whether the web console is served on the metrics endpoint bound to `address`: as
/// `console.enabled` says, or when unset only on a loopback address (the console shows topic
/// names, offsets and group ids to whoever can connect).
pub fn console_enabled(setting: Option<bool>, address: std::net::SocketAddr) -> bool {
    setting.unwrap_or_else(|| address.ip().is_loopback())
}

/// Serves until `shutdown` flips to true; the web console too when `console` is set.
pub async fn serve(
    listener: TcpListener,
    state: Arc<BrokerState>,
    mut shutdown: watch::Receiver<bool>,
    console: bool,
) {
    let permits = Arc::new(Semaphore::new(MAX_METRICS_CONNECTIONS));
    // The console's anti-forgery token: random per broker process, only ever written into its
    // own pages, so another site's page cannot submit the console's forms.
    let token: Arc<str> = Arc::from(uuid::Uuid::new_v4().simple().to_string());
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(error) => {
                        crate::warn_limited!(METRICS_ACCEPT_WARNINGS, %error, "metrics endpoint: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    crate::warn_limited!(METRICS_ACCEPT_WARNINGS, limit = MAX_METRICS_CONNECTIONS, "metrics endpoint: too many connections; closing a new one");
                    continue;
                };
                let state = state.clone();
                let token = token.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| {
                        let state = state.clone();
                        let token = token.clone();
                        async move { Ok::<_, Infallible>(route(state, request, console, &token).await) }
                    });
                    let connection = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_READ_TIMEOUT)
                        .serve_connection(TokioIo::new(stream), service);
                    if let Ok(Err(error)) = tokio::time::timeout(CONNECTION_LIFETIME, connection).await {
                        tracing::debug!(%error, "metrics connection ended with an error");
                    }
                    drop(permit);
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
}

/// The largest console form accepted (a topic's configs fit many times over).
const MAX_FORM_BYTES: usize = 64 * 1024;

async fn route(
    state: Arc<BrokerState>,
    request: Request<Incoming>,
    console: bool,
    token: &str,
) -> Response<Full<Bytes>> {
    if console && request.method() == Method::POST {
        let path = request.uri().path().to_string();
        if path == "/console/topics" {
            return create_topic(state, request, token).await;
        }
        if let Some(name) = path
            .strip_prefix("/console/topics/")
            .and_then(|rest| rest.strip_suffix("/delete"))
            .filter(|name| !name.is_empty() && !name.contains('/'))
        {
            let name = name.to_string();
            let form = match read_form(request, token).await {
                Ok(form) => form,
                Err(response) => return response,
            };
            return match super::console::delete_topic(&state, &name, &form).await {
                Ok(()) => see_other("/console"),
                Err(page) => refused(page),
            };
        }
        if let Some(name) = path
            .strip_prefix("/console/topics/")
            .and_then(|rest| rest.strip_suffix("/configs"))
            .filter(|name| !name.is_empty() && !name.contains('/'))
        {
            let name = name.to_string();
            let form = match read_form(request, token).await {
                Ok(form) => form,
                Err(response) => return response,
            };
            return match super::console::alter_topic_config(&state, &name, &form).await {
                Ok(()) => see_other(&format!(
                    "/console/topics/{}",
                    super::console::path_segment(&name)
                )),
                Err(page) => refused(page),
            };
        }
        if path == "/console/groups/reset" {
            let form = match read_form(request, token).await {
                Ok(form) => form,
                Err(response) => return response,
            };
            return match super::reset::apply(&state, &form).await {
                Ok(()) => see_other("/console/groups"),
                Err(page) => refused(page),
            };
        }
        if let Some(super::console::Page::Messages(topic, _)) =
            super::console::Page::from_path(&path, None)
        {
            let topic = topic.to_string();
            return produce_message(state, request, token, &topic).await;
        }
    }
    let path = request.uri().path();
    let query = request.uri().query();
    let page = console
        .then(|| super::console::Page::from_path(path, query))
        .flatten();
    let known = matches!(path, "/metrics" | "/healthz") || page.is_some();
    if !known {
        return plain(
            StatusCode::NOT_FOUND,
            if console {
                "not found: try /console, /metrics or /healthz\n"
            } else {
                "not found: try /metrics or /healthz\n"
            },
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET (and the console's forms)\n",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if path == "/healthz" {
        return if *state.shutdown.borrow() {
            plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
        } else {
            plain(StatusCode::OK, "ok\n")
        };
    }
    if let Some(page) = page {
        return html(super::console::render(state, page, token).await);
    }
    let body = super::collect::render(state).await;
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(super::text::CONTENT_TYPE),
    );
    response
}

/// Whether a form submission comes from the console's own pages: browsers send
/// `Sec-Fetch-Site` and `Origin` with cross-site POSTs, and only the console's pages hold the
/// token.
fn from_console(headers: &hyper::HeaderMap, form_token: &str, token: &str) -> bool {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let site_ok =
        header("sec-fetch-site").is_none_or(|site| matches!(site, "same-origin" | "none"));
    let origin_ok = match (header("origin"), header("host")) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin == format!("http://{host}"),
        (Some(_), None) => false,
    };
    site_ok && origin_ok && !token.is_empty() && form_token == token
}

/// Reads a console form (bounded) and checks it comes from the console's own page.
async fn read_form(
    request: Request<Incoming>,
    token: &str,
) -> Result<Vec<(String, String)>, Response<Full<Bytes>>> {
    use http_body_util::{BodyExt, Limited};
    let headers = request.headers().clone();
    let body = match Limited::new(request.into_body(), MAX_FORM_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => return Err(plain(StatusCode::PAYLOAD_TOO_LARGE, "form too large\n")),
    };
    let Some(form) = super::console::parse_form(&body) else {
        return Err(plain(StatusCode::BAD_REQUEST, "malformed form\n"));
    };
    let form_token = form
        .iter()
        .find(|(name, _)| name == "token")
        .map_or("", |(_, value)| value.as_str());
    if !from_console(&headers, form_token, token) {
        return Err(plain(
            StatusCode::FORBIDDEN,
            "refused: not submitted from this console's own page\n",
        ));
    }
    Ok(form)
}

fn see_other(location: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(location) = HeaderValue::from_str(location) {
        response
            .headers_mut()
            .insert(hyper::header::LOCATION, location);
    }
    response
}

fn refused(page: String) -> Response<Full<Bytes>> {
    let mut response = html(super::console::Rendered {
        found: true,
        html: page,
    });
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}

/// `POST /console/topics`: the create-topic form. Success redirects (303) to the topic's page.
async fn create_topic(
    state: Arc<BrokerState>,
    request: Request<Incoming>,
    token: &str,
) -> Response<Full<Bytes>> {
    let form = match read_form(request, token).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    match super::console::create_topic(&state, &form, token).await {
        super::console::Created::Topic(name) => see_other(&format!(
            "/console/topics/{}",
            super::console::path_segment(&name)
        )),
        super::console::Created::Refused(page) => refused(page),
    }
}

/// `POST /console/topics/NAME/messages`: the produce form. Success redirects (303) to the
/// message browser at the new record.
async fn produce_message(
    state: Arc<BrokerState>,
    request: Request<Incoming>,
    token: &str,
    topic: &str,
) -> Response<Full<Bytes>> {
    let form = match read_form(request, token).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    match super::console::produce_message(&state, topic, &form, token).await {
        super::console::Produced::At(partition, offset) => see_other(&format!(
            "/console/topics/{}/messages?partition={partition}&offset={offset}",
            super::console::path_segment(topic)
        )),
        super::console::Produced::Refused(page) => refused(page),
    }
}

/// A console page: no script may run on it whatever it shows (Content-Security-Policy), and
/// browsers must not guess another content type.
fn html(page: super::console::Rendered) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(page.html)));
    if !page.found {
        *response.status_mut() = StatusCode::NOT_FOUND;
    }
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_accepted_only_from_the_console_itself() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = hyper::HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        let same = headers(&[
            ("host", "127.0.0.1:9404"),
            ("origin", "http://127.0.0.1:9404"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert!(from_console(&same, "t0k", "t0k"));
        assert!(!from_console(&same, "other", "t0k"));
        assert!(!from_console(&same, "", ""));
        assert!(
            from_console(&headers(&[]), "t0k", "t0k"),
            "a tool without browser headers"
        );
        let cross = headers(&[
            ("host", "127.0.0.1:9404"),
            ("origin", "http://evil.example"),
        ]);
        assert!(!from_console(&cross, "t0k", "t0k"));
        let cross_site = headers(&[("sec-fetch-site", "cross-site")]);
        assert!(!from_console(&cross_site, "t0k", "t0k"));
    }

    #[test]
    fn console_is_on_for_loopback_unless_set() {
        let loopback: std::net::SocketAddr = "127.0.0.1:9404".parse().unwrap();
        let loopback6: std::net::SocketAddr = "[::1]:9404".parse().unwrap();
        let any: std::net::SocketAddr = "0.0.0.0:9404".parse().unwrap();
        let public: std::net::SocketAddr = "192.0.2.7:9404".parse().unwrap();
        assert!(console_enabled(None, loopback));
        assert!(console_enabled(None, loopback6));
        assert!(!console_enabled(None, any));
        assert!(!console_enabled(None, public));
        assert!(console_enabled(Some(true), public));
        assert!(!console_enabled(Some(false), loopback));
    }
}
