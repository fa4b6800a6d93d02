//! `berth serve`: the Docker Engine API over the engine, so the docker CLI,
//! docker compose, the SDKs and testcontainers can drive berth.
//!
//! A translation layer only: each handler parses the request, makes one
//! engine call on a blocking thread (the engine is synchronous and holds a
//! SQLite connection; each blocking thread keeps its own [`Engine`]) and
//! maps the answer, or the engine's error kind to dockerd's status and
//! `{"message": …}` body (see `error.rs`). Containers belong to their
//! monitors, not to the server: stopping the server stops no container.

mod attach;
mod body;
mod build;
mod containers;
mod create;
mod df;
mod distribution;
mod error;
mod events;
mod exec;
mod fs;
mod hijack;
mod image_archive;
mod images;
mod listen;
mod listing;
mod notify;
mod objects;
mod ops;
mod progress;
mod stats;
mod system;
mod tls;
mod update;
mod version;
mod zygote;

use std::sync::Arc;

use axum::routing::{any, delete, get, post, put};
use axum::Router;
use engine::Engine;

pub use error::ApiError;
pub use listen::Options;
pub use ops::op_main;
pub use tls::{ClientAuth, TlsFiles};

/// What every handler gets: where the engine's state is.
#[derive(Clone)]
pub(crate) struct AppState {
    paths: Arc<engine::Paths>,
    /// Attaches waiting for their container's start.
    pending: Arc<attach::Pending>,
    /// Exec instances.
    execs: Arc<exec::Execs>,
    /// The server's stop: long polls end at it.
    stopping: listen::Stopping,
    /// The container list's snapshot.
    listing: Arc<listing::Listing>,
    /// Open engines to borrow.
    engines: Arc<Engines>,
    /// The fork server for calls that fork (`None`: exec them).
    zygote: Option<Arc<zygote::Zygote>>,
}

/// Open engines (each holds a SQLite connection and its page cache) for
/// the blocking threads to borrow: a burst of clients opens more, at most
/// `KEPT` stay open afterwards.
#[derive(Default)]
pub(crate) struct Engines {
    idle: std::sync::Mutex<Vec<Engine>>,
}

/// Engines kept open for the next requests.
const KEPT: usize = 4;

impl Engines {
    /// Close the open engines but `keep`.
    fn shrink(&self, keep: usize) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .truncate(keep);
    }
}

impl AppState {
    /// Run `f` with an engine on a blocking thread.
    pub(crate) async fn engine<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<T, ApiError> + Send + 'static,
    {
        let paths = self.paths.clone();
        let engines = self.engines.clone();
        tokio::task::spawn_blocking(move || {
            let taken = engines.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let e = match taken {
                Some(e) => e,
                None => Engine::open((*paths).clone())?,
            };
            let out = f(&e);
            let mut idle = engines.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < KEPT {
                idle.push(e);
            }
            out
        })
        .await
        .map_err(|e| ApiError::internal(format!("the request's worker failed: {e}")))?
    }
}

/// The routes, without the version prefix (see `version::versioned`).
fn routes(state: AppState) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/containers/json", get(containers::list))
        .route("/containers/create", post(containers::create))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}", delete(containers::remove))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/attach", post(attach::attach))
        .route("/containers/{id}/resize", post(attach::resize))
        .route("/containers/{id}/exec", post(exec::create))
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/exec/{id}/json", get(exec::inspect))
        .route("/events", get(events::events))
        .route("/system/df", get(df::df))
        .route("/containers/prune", post(update::prune))
        .route("/containers/{id}/top", get(stats::top))
        .route("/containers/{id}/stats", get(stats::stats))
        .route("/containers/{id}/changes", get(fs::changes))
        .route("/containers/{id}/export", get(fs::export))
        .route("/commit", post(fs::commit))
        .route(
            "/containers/{id}/archive",
            get(fs::archive_get)
                .head(fs::archive_get)
                .merge(put(fs::archive_put)),
        )
        .route(
            "/containers/{id}/{verb}",
            post(containers::pause).delete(containers::remove_by_link),
        )
        .route("/networks", get(objects::networks))
        .route("/networks/create", post(objects::network_create))
        .route(
            "/networks/{id}",
            get(objects::network).delete(objects::network_remove),
        )
        .route("/networks/{id}/{verb}", post(objects::network_connect))
        .route("/networks/prune", post(objects::networks_prune))
        .route("/volumes/prune", post(objects::volumes_prune))
        .route("/swarm", get(objects::no_swarm))
        .route("/swarm/leave", post(objects::swarm_leave))
        .route("/swarm/init", post(objects::swarm_unsupported))
        .route("/swarm/join", post(objects::swarm_unsupported))
        .route(
            "/swarm/{*rest}",
            get(objects::no_swarm).post(objects::no_swarm),
        )
        .route("/nodes", get(objects::no_swarm))
        .route("/nodes/{*rest}", any(objects::no_swarm))
        .route("/services", get(objects::no_swarm))
        .route("/services/{*rest}", any(objects::no_swarm))
        .route("/tasks", get(objects::no_swarm))
        .route("/tasks/{*rest}", any(objects::no_swarm))
        .route("/secrets", get(objects::no_swarm))
        .route("/secrets/{*rest}", any(objects::no_swarm))
        .route("/configs", get(objects::no_swarm))
        .route("/configs/{*rest}", any(objects::no_swarm))
        .route("/volumes", get(objects::volumes))
        .route("/volumes/create", post(objects::volume_create))
        .route(
            "/volumes/{name}",
            get(objects::volume).delete(objects::volume_remove),
        )
        .route("/images/json", get(images::list))
        .route("/images/create", post(distribution::create))
        .route("/images/get", get(image_archive::save_many))
        .route("/images/load", post(image_archive::load))
        .route("/images/prune", post(images::prune))
        .route("/images/search", get(distribution::search))
        .route("/auth", post(distribution::auth))
        .route("/build", post(build::build))
        .route("/session", post(build::session))
        .route(
            "/images/{*rest}",
            get(images::by_name)
                .post(images::post_by_name)
                .delete(images::remove),
        )
        .fallback(error::no_route)
        .with_state(state)
}

/// The whole service: version prefixes and dockerd's headers around the
/// routes.
pub(crate) fn app(
    paths: engine::Paths,
    zygote: Option<zygote::Zygote>,
    stopping: listen::Stopping,
) -> Router {
    let listing = Arc::new(listing::Listing::new(&paths));
    let engines: Arc<Engines> = Arc::default();
    let activity = Arc::new(Activity(std::sync::Mutex::new(std::time::Instant::now())));
    tokio::spawn(tidy(engines.clone(), listing.clone(), activity.clone()));
    let inner = routes(AppState {
        paths: Arc::new(paths),
        zygote: zygote.map(Arc::new),
        pending: Arc::default(),
        execs: Arc::default(),
        listing,
        engines,
        stopping,
    });
    Router::new()
        .fallback_service(inner)
        .layer(axum::middleware::from_fn(version::versioned))
        .layer(axum::middleware::from_fn_with_state(
            activity,
            note_activity,
        ))
}

/// A server that got no request for this long is idle.
pub(crate) const IDLE: std::time::Duration = std::time::Duration::from_secs(10);

/// When the last request came.
struct Activity(std::sync::Mutex<std::time::Instant>);

impl Activity {
    fn last(&self) -> std::time::Instant {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Notes each request's time for `tidy`.
async fn note_activity(
    axum::extract::State(activity): axum::extract::State<Arc<Activity>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    *activity.0.lock().unwrap_or_else(|p| p.into_inner()) = std::time::Instant::now();
    next.run(req).await
}

/// Every few seconds: what a burst of clients left behind goes (engines
/// but one, a listing nobody asked for lately) and the freed heap goes
/// back to the kernel. Once the server is idle, the last engine goes too,
/// and so do the mappings of its code (`unmap_own_code`: they stay in the
/// page cache, the next request maps what it needs again): an idle server
/// stays small.
async fn tidy(engines: Arc<Engines>, listing: Arc<listing::Listing>, activity: Arc<Activity>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3));
    let mut unmapped_after = None;
    loop {
        tick.tick().await;
        let last = activity.last();
        let idle = last.elapsed() >= IDLE;
        engines.shrink(if idle { 0 } else { 1 });
        listing.forget_if_idle();
        engine::term::trim_heap();
        if idle && unmapped_after != Some(last) {
            let _ = engine::term::unmap_own_code();
            unmapped_after = Some(last);
        }
    }
}

/// Serve the API on `opts.hosts` until SIGINT or SIGTERM (see `listen`).
pub fn serve(paths: engine::Paths, opts: Options) -> Result<(), String> {
    // Before any thread: socket activation edits the environment.
    let plan = listen::plan(opts)?;
    // Still single-threaded: the fork server is a copy of this process.
    let zygote = zygote::Zygote::start(&paths);
    // Two arenas for the workers and the blocking threads: a burst of
    // requests otherwise leaves free memory scattered over an arena per
    // thread it started.
    engine::term::limit_malloc_arenas(2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        // Idle workers go soon: an idle server stays small.
        .thread_keep_alive(std::time::Duration::from_secs(1))
        .enable_all()
        .build()
        .map_err(|e| format!("starting the server's runtime: {e}"))?;
    let result = rt.block_on(listen::run(plan, |stopping| app(paths, zygote, stopping)));
    // What is left (a request past the grace period, a hijacked stream,
    // a blocking engine call) is not waited for.
    rt.shutdown_background();
    result
}
