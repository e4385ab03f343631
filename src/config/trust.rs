//! Who may tell the gateway a client's address with a PROXY header: the list of senders
//! must be written out whenever the listener expects the header, and a list open to every
//! address is taken only as an explicit choice, which is warned about.

use ipnet::IpNet;

use super::{Config, ConfigError, Problem};

impl Config {
    pub(super) fn check_proxy_protocol(&self, bad: &mut ConfigError) {
        if self.proxy_protocol && self.proxy_protocol_from.is_empty() {
            bad.push(
                "proxy_protocol_from",
                "is empty while proxy_protocol is on: list the load balancers that send the \
                 PROXY header (CIDRs or addresses), or any client reaching this port could \
                 claim any address; to accept it from everyone, write [\"0.0.0.0/0\", \"::/0\"]",
            );
        }
    }

    /// Settings that are valid but weaken the gateway, each with its key: logged as warnings
    /// when serving starts and on reload, and printed by `wsgate check`.
    pub fn warnings(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.proxy_protocol && self.proxy_protocol_from.iter().any(|e| is_catch_all(e)) {
            out.push(Problem {
                key: "proxy_protocol_from".into(),
                message: "accepts PROXY headers from every address: any client that reaches \
                          this port can claim any address (per-address limits, access log, \
                          backend); safe only if nothing but the load balancers can reach it"
                    .into(),
            });
        }
        out
    }
}

/// `0.0.0.0/0`, `::/0` and the like: a network that holds every address of its family.
fn is_catch_all(entry: &str) -> bool {
    entry
        .trim()
        .parse::<IpNet>()
        .is_ok_and(|net| net.prefix_len() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(cfg: &Config) -> Vec<String> {
        cfg.validate()
            .err()
            .map(|e| e.problems.into_iter().map(|p| p.key).collect())
            .unwrap_or_default()
    }

    #[test]
    fn proxy_protocol_needs_its_senders_listed() {
        let mut cfg = Config::single_route("127.0.0.1:0", "127.0.0.1:9");
        cfg.proxy_protocol = true;
        assert_eq!(keys(&cfg), ["proxy_protocol_from"]);
        cfg.proxy_protocol_from = vec!["10.0.0.5".into()];
        assert!(keys(&cfg).is_empty());
        assert!(cfg.warnings().is_empty());
    }

    #[test]
    fn a_catch_all_is_accepted_with_a_warning() {
        let mut cfg = Config::single_route("127.0.0.1:0", "127.0.0.1:9");
        cfg.proxy_protocol = true;
        for list in [
            &["0.0.0.0/0", "::/0"][..],
            &["::/0"],
            &["10.0.0.0/8", "0.0.0.0/0"],
        ] {
            cfg.proxy_protocol_from = list.iter().map(|s| s.to_string()).collect();
            assert!(keys(&cfg).is_empty(), "{list:?}");
            let warned: Vec<_> = cfg.warnings().into_iter().map(|p| p.key).collect();
            assert_eq!(warned, ["proxy_protocol_from"], "{list:?}");
        }
        cfg.proxy_protocol = false;
        cfg.proxy_protocol_from = vec!["0.0.0.0/0".into()];
        assert!(cfg.warnings().is_empty(), "no PROXY header is read at all");
    }
}
