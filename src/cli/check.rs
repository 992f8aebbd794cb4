//! `m2mguard check`: validate the configuration and the policies it names; bind nothing.

use std::path::Path;

use cedar_policy::{Effect, PrincipalConstraint};
use m2mguard::config::Config;
use m2mguard::decision::Mode;
use m2mguard::guard::Unknown;
use m2mguard::policy;

use super::Failure;

pub fn check(path: &Path) -> Result<(), Failure> {
    let mut problems: Vec<String> = Vec::new();
    let config = match Config::load(path) {
        Ok(config) => Some(config),
        Err(errors) => {
            problems.extend(errors.iter().map(ToString::to_string));
            None
        }
    };
    let policies = config.as_ref().map(|c| policy::load_dir(&c.policy_dir));
    if let Some(Err(errors)) = &policies {
        problems.extend(errors.iter().map(ToString::to_string));
    }
    match (config, policies) {
        (Some(config), Some(Ok(bundle))) if problems.is_empty() => {
            println!(
                "{}: OK ({} policies in {}, {} @observe; {} nodes)",
                path.display(),
                bundle.count,
                config.policy_dir.display(),
                bundle.observing.len(),
                config.nodes.len()
            );
            // Valid, but exposed: said on its own line after the verdict, exit status 0.
            for warning in config.coap.iter().flat_map(|c| c.warnings()) {
                println!("{warning}");
            }
            if !bundle.observing.is_empty() {
                println!(
                    "@observe (decided and counted, not enforced): {}",
                    bundle.observing.join(", ")
                );
            }
            if config.gateway.mode == Mode::Observe {
                println!("mode = observe: nothing is enforced; what would be denied is forwarded and recorded as a would-be denial");
            }
            if let Some(line) = strangers(&config, &bundle) {
                println!("{line}");
            }
            if let Some(sync) = &config.sync {
                println!(
                    "sync: following feed {:?} at {} as gateway {:?}; nodes and check-value keys come from the feed only ([[nodes]] and [[checks.keys]] are refused)",
                    sync.feed, sync.authority, sync.gateway_id
                );
            }
            Ok(())
        }
        _ => {
            for problem in &problems {
                println!("{problem}");
            }
            Err(Failure::config(anyhow::anyhow!(
                "{} error(s) found",
                problems.len()
            )))
        }
    }
}

/// With `unknown_originators = "policy"`: which permit policies apply to originators the
/// repository does not know (their principal is unconstrained).
fn strangers(config: &Config, bundle: &policy::PolicyBundle) -> Option<String> {
    if config.gateway.unknown_originators != Unknown::Policy {
        return None;
    }
    let open: Vec<String> = bundle
        .set
        .policies()
        .filter(|p| p.effect() == Effect::Permit)
        .filter(|p| matches!(p.principal_constraint(), PrincipalConstraint::Any))
        .map(|p| {
            p.annotation("id")
                .map_or_else(|| p.id().to_string(), str::to_owned)
        })
        .collect();
    Some(format!(
        "warning: gateway.unknown_originators = \"policy\": originators the repository does not know reach Cedar; permit policies for any principal ({}): {}",
        open.len(),
        if open.is_empty() { "none".to_owned() } else { open.join(", ") }
    ))
}
