//! `vae serve RUN [RUN...]`: the latent explorer in the browser. The HTTP layer only: the page
//! and every API answer come from `vae::explore`; requests run on blocking threads so that a
//! slow decode never holds up the async ones that accept connections.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use vae::explore::{ExploredModel, Explorer, PAGE};

use super::{LoadedRun, load_run};

/// Largest request body read: far above any valid request (a 784-pixel image is ~6 KB of
/// JSON), far below what would strain memory.
const MAX_BODY: usize = 1 << 20;

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
        let epochs = config.train.epochs;
        let explored = ExploredModel::new(name, model, data.name.clone(), epochs, data.test)
            .with_context(|| format!("{}", path.display()))?;
        models.push(explored);
    }
    let explorer = Arc::new(Explorer::new(models)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the server's runtime")?;
    runtime.block_on(serve(explorer, SocketAddr::new(args.host, args.port)))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(explorer: Arc<Explorer>, addr: SocketAddr) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--host/--port: cannot listen on {addr}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let names: Vec<&str> = explorer.models().iter().map(|m| m.name.as_str()).collect();
    // The URL goes to stdout on its own line, so scripts and tests can read it.
    println!("http://{bound}/");
    eprintln!("serving {} (Ctrl-C stops)", names.join(", "));
    let app = Router::new()
        .route("/", get(page))
        .route("/favicon.ico", get(no_icon))
        .fallback(api)
        .with_state(explorer);
    axum::serve(listener, app)
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

/// Every other path: read the body (capped), answer on a blocking thread.
async fn api(State(explorer): State<Arc<Explorer>>, method: Method, uri: Uri, body: Body) -> Response {
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        let message = format!("request body: larger than {MAX_BODY} bytes");
        return answer(413, json!({ "error": message }));
    };
    let (status, value) = tokio::task::spawn_blocking(move || {
        explorer.handle(method.as_str(), uri.path(), uri.query().unwrap_or(""), &bytes)
    })
    .await
    .unwrap_or_else(|_| (500, json!({ "error": "the request failed inside the server" })));
    answer(status, value)
}

fn answer(status: u16, value: serde_json::Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, value.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
