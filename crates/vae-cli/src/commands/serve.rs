//! `vae serve RUN [RUN...]`: the latent explorer in the browser. The HTTP layer only: the page
//! and every API answer come from `vae::explore`; requests run on blocking threads so that a
//! slow decode never holds up the async ones that accept connections.
//!
//! What a client can hold is bounded: at most `--max-connections` connections at once (more
//! wait, unaccepted, in the kernel's queue), each closed once it has sent no complete request
//! head for `--idle-timeout` seconds (idle keep-alive and slow headers alike), bodies capped
//! in size and time. On loopback the server answers only requests addressed to a loopback
//! name (`Host: localhost`, `127.0.0.1`, `[::1]`), so a web page elsewhere cannot reach it by
//! DNS rebinding, and the API reads only bodies sent as `application/json`, which a
//! cross-site form cannot send.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, Request, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::sync::Semaphore;
use vae::error::ensure_in_range;
use vae::explore::api::{
    ApiError, DecodeRequest, EncodeRequest, InterpolateRequest, MapQuery, SampleQuery, TestImageQuery, parse_body,
    parse_query,
};
use vae::explore::{ExploredModel, Explorer, PAGE};
use vae::files::{MAX_METRICS_BYTES, read_text_limited};
use vae::run::RunDir;
use vae::sampler::{Sampler, SamplerKind};

use super::{LoadedRun, load_run};

/// Largest request body read: far above any valid request (a 784-pixel image is ~6 KB of
/// JSON), far below what would strain memory.
const MAX_BODY: usize = 1 << 20;

/// Bounds of `--max-connections` and `--idle-timeout`.
const MAX_CONNECTIONS: usize = 4096;
const MAX_IDLE_SECONDS: u64 = 3600;

/// The explorer and a bound on the requests computing at once: more would only queue inside
/// the engine, each holding its buffers, while the bound makes them wait without memory.
struct App {
    explorer: Explorer,
    computing: Semaphore,
    /// Whether only loopback host names are answered (the server listens on loopback).
    loopback_only: bool,
    /// How long a connection may wait for a whole request head, or a request for its whole
    /// body (`--idle-timeout`).
    idle_timeout: Duration,
}

#[derive(clap::Args)]
pub struct Args {
    /// Run folders to explore (an AE and a VAE side by side shows the difference best).
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Port to listen on (0: any free port; the URL printed says which).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address to listen on: loopback unless you mean to share the explorer.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Threads of the engine (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Connections served at once (1 to 4096); more wait until one closes. The default
    /// leaves the process's file descriptors ample headroom.
    #[arg(long, default_value_t = 256)]
    max_connections: usize,
    /// Seconds a connection may go without sending a complete request head, and a request
    /// may take to send its body (1 to 3600): idle keep-alive connections and slow clients
    /// are closed after it.
    #[arg(long, default_value_t = 20)]
    idle_timeout: u64,
}

pub fn run(args: Args) -> Result<ExitCode> {
    super::set_threads(args.threads)?;
    ensure_in_range("--max-connections", args.max_connections, 1..=MAX_CONNECTIONS)?;
    ensure_in_range("--idle-timeout", args.idle_timeout, 1..=MAX_IDLE_SECONDS)?;
    let models = args
        .runs
        .iter()
        .map(|path| explored_model(path))
        .collect::<Result<Vec<_>>>()?;
    let app = Arc::new(App {
        explorer: Explorer::new(models)?,
        computing: Semaphore::new(2 * vae::engine::threads()),
        loopback_only: args.host.is_loopback(),
        idle_timeout: Duration::from_secs(args.idle_timeout),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the server's runtime")?;
    runtime.block_on(serve(app, SocketAddr::new(args.host, args.port), args.max_connections))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(app: Arc<App>, addr: SocketAddr, max_connections: usize) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--host/--port: cannot listen on {addr}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let names: Vec<&str> = app.explorer.models().iter().map(|m| m.name.as_str()).collect();
    // The URL goes to stdout on its own line, so scripts and tests can read it.
    println!("http://{bound}/");
    eprintln!("serving {} (Ctrl-C stops)", names.join(", "));
    let idle = app.idle_timeout;
    let router = Router::new()
        .route("/", get(page))
        .route("/favicon.ico", get(no_icon))
        .route("/api/models", only(get(models), "GET"))
        .route("/api/sample", only(get(sample), "GET"))
        .route("/api/latent-map", only(get(latent_map), "GET"))
        .route("/api/test-image", only(get(test_image), "GET"))
        .route("/api/decode", only(post(decode), "POST"))
        .route("/api/encode", only(post(encode), "POST"))
        .route("/api/interpolate", only(post(interpolate), "POST"))
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app);
    // Connections are served on tasks of their own; Ctrl-C ends the loop, and dropping the
    // runtime then closes them.
    tokio::spawn(accept_connections(listener, router, max_connections, idle));
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    Ok(())
}

/// Accepts while fewer than `max_connections` are open, and serves each over HTTP/1.1 with
/// the idle timeout.
async fn accept_connections(listener: tokio::net::TcpListener, router: Router, max_connections: usize, idle: Duration) {
    let open = Arc::new(Semaphore::new(max_connections));
    loop {
        let Ok(permit) = open.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of descriptors, or a connection reset before it was accepted: wait a moment
            // rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            // The head timer also runs while a kept-alive connection waits for its next
            // request, so it closes idle connections as well as slow ones.
            http.timer(TokioTimer::new()).header_read_timeout(idle).keep_alive(true);
            let _ = http.serve_connection(TokioIo::new(stream), service).await;
            drop(permit);
        });
    }
}

/// Refuses requests addressed to another host (on loopback) and API bodies that are not JSON.
async fn guard(State(app): State<Arc<App>>, request: Request<Body>, next: Next) -> Response {
    let headers = request.headers();
    if app.loopback_only {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        if !is_loopback_name(host) {
            return answer(
                403,
                json!({ "error": format!("Host {host:?}: this explorer answers only to localhost, 127.0.0.1 and [::1] (start it with --host to serve other names)") }),
            );
        }
    }
    if request.method() == Method::POST {
        let media = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if media.as_deref() != Some("application/json") {
            return answer(
                415,
                json!({ "error": "request body: must be sent as Content-Type: application/json" }),
            );
        }
    }
    next.run(request).await
}

/// Whether a Host header names this machine's loopback: `localhost` or a loopback address,
/// with or without a port.
fn is_loopback_name(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // [::1]:8080
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                name
            } else {
                host
            }
        }),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// Browsers ask for an icon; an empty answer keeps a 404 out of their console.
async fn no_icon() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// A route that answers `method` only (GET also answers HEAD); any other method gets a 405
/// naming it, with axum's `Allow` header.
fn only(route: MethodRouter<Arc<App>>, method: &'static str) -> MethodRouter<Arc<App>> {
    route.fallback(move |asked: Method, uri: Uri| async move { wrong_method(&asked, &uri, method) })
}

fn wrong_method(method: &Method, uri: &Uri, answers: &str) -> Response {
    answer(
        405,
        json!({ "error": format!("{method} {}: this route answers {answers}", uri.path()) }),
    )
}

async fn no_route(method: Method, uri: Uri) -> Response {
    answer(
        404,
        json!({ "error": format!("{method} {}: no such route", uri.path()) }),
    )
}

/// A request body read (capped in size by the router's limit, and in time by
/// `--idle-timeout`) and parsed into the route's request type.
struct ApiJson<T>(T);

impl<T: DeserializeOwned> FromRequest<Arc<App>> for ApiJson<T> {
    type Rejection = Response;

    async fn from_request(request: Request<Body>, app: &Arc<App>) -> Result<Self, Response> {
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        // The router's limit only counts bytes as they arrive: a declared length past the cap
        // is refused before waiting for a body that would be refused anyway.
        if declared.is_some_and(|n| n > MAX_BODY) {
            return Err(too_large());
        }
        let bytes = match tokio::time::timeout(app.idle_timeout, Bytes::from_request(request, app)).await {
            Err(_) => {
                let error = format!("request body: not received within {} s", app.idle_timeout.as_secs());
                return Err(answer(408, json!({ "error": error })));
            }
            // A body cut off at the cap is too large; any other failure is the client's
            // connection.
            Ok(Err(BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)))) => {
                return Err(too_large());
            }
            Ok(Err(e)) => {
                return Err(answer(
                    400,
                    json!({ "error": format!("request body: {}", e.body_text()) }),
                ));
            }
            Ok(Ok(bytes)) => bytes,
        };
        parse_body(&bytes).map(ApiJson).map_err(|e| refusal(&e))
    }
}

/// A query string parsed into the route's query type.
struct ApiQuery<T>(T);

impl<T: DeserializeOwned, S: Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        parse_query(parts.uri.query().unwrap_or(""))
            .map(ApiQuery)
            .map_err(|e| refusal(&e))
    }
}

/// Computes one answer on a blocking thread, at most `2 x threads` at once.
async fn compute<T, F>(app: Arc<App>, work: F) -> Response
where
    T: Serialize,
    F: FnOnce(&Explorer) -> Result<T, ApiError> + Send + 'static,
{
    let Ok(_permit) = app.computing.acquire().await else {
        return answer(503, json!({ "error": "the server is shutting down" }));
    };
    let worker = app.clone();
    let done = tokio::task::spawn_blocking(move || {
        work(&worker.explorer).map(|a| serde_json::to_value(a).expect("API answers serialise"))
    });
    match done.await {
        Ok(Ok(value)) => answer(200, value),
        Ok(Err(e)) => refusal(&e),
        Err(_) => answer(500, json!({ "error": "the request failed inside the server" })),
    }
}

async fn models(State(app): State<Arc<App>>) -> Response {
    compute(app, |e| Ok::<_, ApiError>(e.list())).await
}

async fn sample(State(app): State<Arc<App>>, ApiQuery(query): ApiQuery<SampleQuery>) -> Response {
    compute(app, move |e| e.sample(query)).await
}

async fn latent_map(State(app): State<Arc<App>>, ApiQuery(query): ApiQuery<MapQuery>) -> Response {
    compute(app, move |e| e.latent_map(query)).await
}

async fn test_image(State(app): State<Arc<App>>, ApiQuery(query): ApiQuery<TestImageQuery>) -> Response {
    compute(app, move |e| e.test_image(query)).await
}

async fn decode(State(app): State<Arc<App>>, ApiJson(request): ApiJson<DecodeRequest>) -> Response {
    compute(app, move |e| e.decode(request)).await
}

async fn encode(State(app): State<Arc<App>>, ApiJson(request): ApiJson<EncodeRequest>) -> Response {
    compute(app, move |e| e.encode(request)).await
}

async fn interpolate(State(app): State<Arc<App>>, ApiJson(request): ApiJson<InterpolateRequest>) -> Response {
    compute(app, move |e| e.interpolate(request)).await
}

fn refusal(error: &ApiError) -> Response {
    answer(error.status(), error.body())
}

fn too_large() -> Response {
    answer(
        413,
        json!({ "error": format!("request body: larger than {MAX_BODY} bytes") }),
    )
}

fn answer(status: u16, value: serde_json::Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, value.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A run folder as the explorer shows it: the model, its test split, the dataset's class
/// names and any fitted sampler that belongs to its weights (one that does not is named and
/// left out).
pub fn explored_model(path: &std::path::Path) -> Result<ExploredModel> {
    let LoadedRun { config, model, data } = load_run(path, None)?;
    let name = path
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| path.display().to_string());
    // Epochs trained, one line each in metrics.jsonl (an interrupted run has fewer than
    // its config asks for).
    let epochs = read_text_limited(&RunDir::new(path).metrics(), MAX_METRICS_BYTES)
        .map(|text| text.lines().filter(|l| !l.trim().is_empty()).count())
        .unwrap_or(config.train.epochs);
    let run = RunDir::new(path);
    // A fitted sampler is served when it belongs to these weights; one that does not is
    // named and left out, the run is served all the same.
    let gmm = run
        .root
        .join("sampler-gmm.safetensors")
        .exists()
        .then(|| Sampler::load(&run, SamplerKind::Gmm, &model));
    let mut explored = ExploredModel::new(name, model, data.name.clone(), epochs, data.test)
        .with_context(|| format!("{}", path.display()))?;
    // The dataset's own names: a folder's sub-folders, "all" when unlabelled.
    explored = explored.with_class_names(data.class_names);
    let two_stage = run
        .root
        .join("sampler-two-stage.json")
        .exists()
        .then(|| Sampler::load(&run, SamplerKind::TwoStage, &explored.model));
    for fitted in [gmm, two_stage].into_iter().flatten() {
        match fitted {
            Ok(sampler) => explored.add_sampler(sampler),
            Err(e) => eprintln!("not serving its fitted sampler: {e}"),
        }
    }
    Ok(explored)
}
