//! `m2mguard generate completions|man DIR`: shell completions and man pages made from the clap
//! definition itself, so they always name the options the binary has. Hidden: the package
//! build runs it (scripts/package/build), operators get the files installed.

use std::path::{Path, PathBuf};

use clap::{CommandFactory, Subcommand};
use clap_complete::Shell;

use super::{Cli, Failure};

#[derive(Subcommand)]
pub enum What {
    /// Write m2mguard.bash, _m2mguard (zsh) and m2mguard.fish into DIR.
    Completions {
        /// Directory to write into (created if missing).
        dir: PathBuf,
    },
    /// Write m2mguard.1 and one page per subcommand (m2mguard-run.1, m2mguard-authority-node.1,
    /// ...) into DIR.
    Man {
        /// Directory to write into (created if missing).
        dir: PathBuf,
    },
}

pub fn generate(what: What) -> Result<(), Failure> {
    let (dir, written) = match what {
        What::Completions { dir } => {
            let written = completions(&dir)?;
            (dir, written)
        }
        What::Man { dir } => {
            let written = man(&dir)?;
            (dir, written)
        }
    };
    println!("wrote {written} files into {}", dir.display());
    Ok(())
}

fn create(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::startup(anyhow::anyhow!("cannot create {}: {e}", dir.display())))
}

fn written(dir: &Path) -> impl Fn(std::io::Error) -> Failure + '_ {
    move |e| Failure::startup(anyhow::anyhow!("cannot write into {}: {e}", dir.display()))
}

fn completions(dir: &Path) -> Result<usize, Failure> {
    create(dir)?;
    let mut cmd = Cli::command();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd, "m2mguard", dir).map_err(written(dir))?;
    }
    Ok(3)
}

fn man(dir: &Path) -> Result<usize, Failure> {
    create(dir)?;
    let mut cmd = Cli::command();
    // Built, every subcommand has its display name (`m2mguard-authority-node`) and the bin
    // name its synopsis shows (`m2mguard authority node`).
    cmd.build();
    let mut count = 0;
    page(&cmd, dir, &mut count)?;
    Ok(count)
}

/// The page of `cmd` and, recursively, of each visible subcommand.
fn page(cmd: &clap::Command, dir: &Path, count: &mut usize) -> Result<(), Failure> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name());
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut out)
        .map_err(written(dir))?;
    std::fs::write(dir.join(format!("{name}.1")), out).map_err(written(dir))?;
    *count += 1;
    for sub in cmd.get_subcommands() {
        if !sub.is_hide_set() && sub.get_name() != "help" {
            page(sub, dir, count)?;
        }
    }
    Ok(())
}
