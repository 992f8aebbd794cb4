//! `m2mguard check`: validate the configuration and the policies it names; bind nothing.

use std::path::Path;

use m2mguard::config::Config;
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
                "{}: OK ({} policies in {}, {} nodes)",
                path.display(),
                bundle.count,
                config.policy_dir.display(),
                config.nodes.len()
            );
            // Valid, but exposed: said on its own line after the verdict, exit status 0.
            for warning in config.coap.iter().flat_map(|c| c.warnings()) {
                println!("{warning}");
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
