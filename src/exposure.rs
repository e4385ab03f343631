//! Startup warnings about settings that expose a backend wider than they may seem to.
//!
//! A route that allows any `Origin` and asks for no credential, served on an address
//! other machines can reach, lets any web page a user opens reach the backend through
//! that user's browser (and from the user's network position). Loopback listeners are
//! left alone: that is the development default.

use std::net::SocketAddr;

use tracing::warn;

use crate::config::{AuthMode, Config};

/// The paths of routes that any web page may open: origins allow any site, and no auth.
pub fn open_to_any_page(cfg: &Config) -> Vec<&str> {
    cfg.routes
        .iter()
        .filter(|route| route.auth == AuthMode::None)
        .filter(|route| {
            let origins = route.origins.as_ref().unwrap_or(&cfg.origins);
            origins.iter().any(|o| o.trim() == "*")
        })
        .map(|route| route.path.as_str())
        .collect()
}

/// Logs one warning per such route when the listener at `listen` is not on loopback.
pub fn warn_about(cfg: &Config, listen: SocketAddr) {
    if listen.ip().is_loopback() {
        return;
    }
    for route in open_to_any_page(cfg) {
        warn!(
            %listen,
            route,
            "route open to any web page: origins allow every site and auth is none, so any \
             page a user opens can reach the backend through the user's browser; list your \
             pages in origins or set auth"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Route;

    #[test]
    fn only_routes_with_any_origin_and_no_auth_are_open() {
        let mut cfg = Config::single_route("0.0.0.0:8080", "127.0.0.1:5900");
        cfg.routes.push(Route::new("/narrow", "127.0.0.1:5900"));
        cfg.routes[1].origins = Some(vec!["https://app.example".into()]);
        cfg.routes.push(Route::new("/token", "127.0.0.1:5900"));
        cfg.routes[2].auth = AuthMode::Token;
        assert_eq!(open_to_any_page(&cfg), ["/"]);

        cfg.origins = vec!["https://app.example".into()];
        cfg.routes[1].origins = Some(vec!["https://app.example".into(), " * ".into()]);
        assert_eq!(open_to_any_page(&cfg), ["/narrow"]);
    }
}
