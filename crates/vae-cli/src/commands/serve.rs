//! `vae serve RUN [RUN...]`: the latent explorer in the browser. The HTTP layer only: the page
//! and every API answer come from `vae::explore`; requests run on blocking threads so that a
//! slow decode never holds up the async ones that accept connections.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::sync::Semaphore;
use vae::explore::{ExploredModel, Explorer, PAGE};
use vae::run::RunDir;

use super::{LoadedRun, load_run};

/// Largest request body read: far above any valid request (a 784-pixel image is ~6 KB of
/// JSON), far below what would strain memory.
const MAX_BODY: usize = 1 << 20;
/// How long a client may take to send its body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The explorer and a bound on the requests computing at once: more would only queue inside
/// the engine, each holding its buffers, while the bound makes them wait without memory.
struct App {
    explorer: Explorer,
    computing: Semaphore,
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
}

pub fn run(args: Args) -> Result<ExitCode> {
    super::set_threads(args.threads)?;
    let mut models = Vec::new();
    for path in &args.runs {
        let LoadedRun { config, model, data } = load_run(path, None)?;
        let name = path
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| path.display().to_string());
        // Epochs trained, one line each in metrics.jsonl (an interrupted run has fewer than
        // its config asks for).
        let epochs = std::fs::read_to_string(RunDir::new(path).metrics())
            .map(|text| text.lines().filter(|l| !l.trim().is_empty()).count())
            .unwrap_or(config.train.epochs);
        let explored = ExploredModel::new(name, model, data.name.clone(), epochs, data.test)
            .with_context(|| format!("{}", path.display()))?;
        models.push(explored);
    }
    let app = Arc::new(App {
        explorer: Explorer::new(models)?,
        computing: Semaphore::new(2 * vae::engine::threads()),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the server's runtime")?;
    runtime.block_on(serve(app, SocketAddr::new(args.host, args.port)))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(app: Arc<App>, addr: SocketAddr) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--host/--port: cannot listen on {addr}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let names: Vec<&str> = app.explorer.models().iter().map(|m| m.name.as_str()).collect();
    // The URL goes to stdout on its own line, so scripts and tests can read it.
    println!("http://{bound}/");
    eprintln!("serving {} (Ctrl-C stops)", names.join(", "));
    let router = Router::new()
        .route("/", get(page))
        .route("/favicon.ico", get(no_icon))
        .fallback(api)
        .with_state(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")?;
    Ok(())
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// Browsers ask for an icon; an empty answer keeps a 404 out of their console.
async fn no_icon() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// Every other path: read the body (capped in size and time), answer on a blocking thread.
async fn api(State(app): State<Arc<App>>, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return too_large();
    }
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await {
        Err(_) => return answer(408, json!({ "error": "request body: not received within 10 s" })),
        // Without a declared length, a body cut off at the cap is too large; any other
        // failure is the client's connection.
        Ok(Err(e)) if e.to_string().contains("length limit") => return too_large(),
        Ok(Err(e)) => return answer(400, json!({ "error": format!("request body: {e}") })),
        Ok(Ok(bytes)) => bytes,
    };
    let Ok(_permit) = app.computing.acquire().await else {
        return answer(503, json!({ "error": "the server is shutting down" }));
    };
    let worker = app.clone();
    let (status, value) = tokio::task::spawn_blocking(move || {
        worker
            .explorer
            .handle(method.as_str(), uri.path(), uri.query().unwrap_or(""), &bytes)
    })
    .await
    .unwrap_or_else(|_| (500, json!({ "error": "the request failed inside the server" })));
    answer(status, value)
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
