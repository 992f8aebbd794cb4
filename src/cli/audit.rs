//! `m2mguard audit verify|export|show|key`: the audit log, read where it lies (docs/audit.md).
//! The log is found through the configuration's `[audit]` table, or given as `--dir` with
//! `--public-key` (a copy on an investigator's machine).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use m2mguard::audit::{read, verify};
use m2mguard::authority::material;
use m2mguard::feed::keys::{hex, random32};
use m2mguard::feed::{SigningKey, VerifyingKey};

use super::{load_config, ConfigFile, Failure};

/// Exit code of `verify` when it found a problem.
pub const EXIT_TAMPERED: u8 = 2;

#[derive(Subcommand)]
pub enum Action {
    /// Check the whole log: the hash chain from its first line to its last, every checkpoint's
    /// signature, the anchor (which shows a truncated tail) and what retention removed. Prints
    /// every problem with its segment, line and seq; exits 0 when there is none, 2 when there
    /// is, 1 when the log cannot be read.
    ///
    /// With --authority, also fetch the checkpoints the authority holds for this gateway
    /// (over `[sync]`'s client certificate) and check the log against them: each must match
    /// the line it was made over, and one beyond the log's end is a truncation. This finds a
    /// log rewritten and re-signed with the gateway's own key, which the log alone cannot.
    Verify {
        #[command(flatten)]
        at: Where,
        /// Check against the checkpoints the authority holds (needs [sync] and [audit] in the
        /// configuration; not with --dir).
        #[arg(long, conflicts_with = "dir")]
        authority: bool,
    },
    /// Print the lines that match the filters, as written (JSON lines, one per line): each
    /// still hashes to the next line's prev, so an export can be checked against the log.
    Export {
        #[command(flatten)]
        at: Where,
        #[command(flatten)]
        filter: FilterArgs,
        /// Output format; only `jsonl` (the lines as written).
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl"])]
        format: String,
    },
    /// Print the lines that match the filters for a person: seq, time, kind, verdict,
    /// originator, operation, target, and why a request was refused.
    Show {
        #[command(flatten)]
        at: Where,
        #[command(flatten)]
        filter: FilterArgs,
        /// Only the last N matching lines.
        #[arg(long, value_name = "N")]
        last: Option<usize>,
    },
    /// Make a new Ed25519 key for signing checkpoints (`[audit] key`): writes FILE (the
    /// private key, mode 0600) and FILE.pub (the public key, for `verify --public-key`); never
    /// overwrites.
    Key {
        /// Where to write the private key.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// Which log: the configuration's, or a directory and the public key that signs it.
#[derive(Debug, Args)]
pub struct Where {
    #[command(flatten)]
    file: ConfigFile,
    /// The log's directory, instead of the configuration's `[audit] dir` (needs
    /// --public-key).
    #[arg(long, value_name = "DIR", requires = "public_key")]
    dir: Option<PathBuf>,
    /// The checkpoint key's public half (64 hex digits in a file, as `audit key` writes it).
    #[arg(long, value_name = "FILE", requires = "dir")]
    public_key: Option<PathBuf>,
    /// The log's name that checkpoints must carry (default: the configuration's; with --dir,
    /// not checked).
    #[arg(long, value_name = "ID")]
    log: Option<String>,
}

#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Lines at or after this time (RFC 3339, e.g. 2026-12-02T13:00:00Z).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Lines before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Requests from this originator, and events about this node.
    #[arg(long, value_name = "ID")]
    node: Option<String>,
    /// Requests with this verdict.
    #[arg(long, value_parser = ["allowed", "denied", "refused", "failed"])]
    verdict: Option<String>,
    /// Lines of this kind.
    #[arg(long, value_parser = ["request", "event", "gap", "dropped", "checkpoint"])]
    kind: Option<String>,
}

pub async fn audit(action: Action) -> Result<(), Failure> {
    match action {
        Action::Verify { at, authority } => verify_log(&at, authority).await,
        Action::Export { at, filter, .. } => {
            let (dir, _, _) = locate(&at)?;
            let filter = filter.parsed()?;
            let mut out = std::io::stdout().lock();
            read::lines(&dir, &filter, |line, _| {
                out.write_all(line)?;
                out.write_all(b"\n")?;
                Ok(true)
            })
            .map_err(|e| Failure::startup(anyhow::anyhow!("cannot read {}: {e}", dir.display())))
        }
        Action::Show { at, filter, last } => show(&at, &filter, last),
        Action::Key { out } => key(&out),
    }
}

/// The log's directory, the key that verifies it, and the name its checkpoints carry.
fn locate(at: &Where) -> Result<(PathBuf, VerifyingKey, Option<String>), Failure> {
    if let (Some(dir), Some(public)) = (&at.dir, &at.public_key) {
        let key = VerifyingKey::load(public).map_err(Failure::config)?;
        return Ok((dir.clone(), key, at.log.clone()));
    }
    let config = load_config(&at.file.config)?;
    let Some(audit) = config.audit else {
        return Err(Failure::config(anyhow::anyhow!(
            "{} has no [audit] table (or give --dir and --public-key)",
            at.file.config.display()
        )));
    };
    let log = at.log.clone().unwrap_or(audit.log_id);
    Ok((audit.dir, audit.key.public(), Some(log)))
}

async fn verify_log(at: &Where, authority: bool) -> Result<(), Failure> {
    let (dir, key, log) = locate(at)?;
    let (held, refused) = if authority {
        anchored(at, &key, log.as_deref()).await?
    } else {
        (Vec::new(), Vec::new())
    };
    let mut report = verify::verify(&dir, &key, log.as_deref(), &held)
        .map_err(|e| Failure::startup(anyhow::anyhow!("cannot read {}: {e}", dir.display())))?;
    report.problems.extend(
        refused
            .into_iter()
            .map(|what| verify::Problem { place: None, what }),
    );
    print!("{}", summary(&dir, &report));
    if authority {
        println!(
            "  anchored: the authority holds {} checkpoint(s) for this log; {} matched",
            held.len(),
            report.matched
        );
    }
    if report.ok() {
        Ok(())
    } else {
        Err(Failure {
            code: EXIT_TAMPERED,
            error: anyhow::anyhow!(
                "{} problem(s) found in {}",
                report.problems.len(),
                dir.display()
            ),
        })
    }
}

/// The checkpoints the authority holds for the configuration's gateway.
async fn anchored(
    at: &Where,
    key: &VerifyingKey,
    log: Option<&str>,
) -> Result<(Vec<m2mguard::audit::Checkpoint>, Vec<String>), Failure> {
    let config = load_config(&at.file.config)?;
    let Some(sync) = config.sync else {
        return Err(Failure::config(anyhow::anyhow!(
            "{} has no [sync] table: --authority needs the gateway's credentials",
            at.file.config.display()
        )));
    };
    let log = log.unwrap_or(&sync.gateway_id).to_owned();
    m2mguard::outbox::anchored::fetch(&sync, key, &log)
        .await
        .map_err(|e| Failure::startup(anyhow::anyhow!("cannot fetch the checkpoints: {e}")))
}

/// What `verify` prints: one status line, then the problems, then what is not pinned.
pub fn summary(dir: &Path, r: &verify::Report) -> String {
    let range = match (r.first_seq, r.last_seq) {
        (Some(first), Some(last)) => format!("seq {first}..{last}"),
        _ => "no lines".into(),
    };
    let state = if r.closed {
        "closed"
    } else {
        "open or ended uncleanly"
    };
    let mut out = format!(
        "{}: {} — {} lines ({range}), {} checkpoints, {state}\n",
        dir.display(),
        if r.ok() { "verified" } else { "PROBLEMS FOUND" },
        r.lines,
        r.checkpoints,
    );
    for problem in &r.problems {
        out.push_str(&format!("  problem: {problem}\n"));
    }
    if r.gaps > 0 {
        out.push_str(&format!(
            "  note: {} gap line(s): {} records never reached the log\n",
            r.gaps, r.lost
        ));
    }
    if r.torn_bytes > 0 {
        out.push_str(&format!(
            "  note: a torn last line of {} bytes (a crash mid-write; the writer cuts it on open)\n",
            r.torn_bytes
        ));
    }
    let last = r.last_seq.unwrap_or(0);
    match r.pinned_through {
        Some(pinned) if pinned < last => out.push_str(&format!(
            "  note: lines {}..{last} follow the newest checkpoint: covered by the chain only\n",
            pinned + 1
        )),
        Some(_) => {}
        None => out.push_str("  note: no checkpoint verified: the chain alone covers the log\n"),
    }
    out
}

impl FilterArgs {
    fn parsed(&self) -> Result<read::Filter, Failure> {
        let time = |t: &Option<String>| {
            t.as_deref()
                .map(read::parse_time)
                .transpose()
                .map_err(|e| Failure::config(anyhow::anyhow!(e)))
        };
        Ok(read::Filter {
            since: time(&self.since)?,
            until: time(&self.until)?,
            node: self.node.clone(),
            verdict: self.verdict.clone(),
            kind: self.kind.clone(),
        })
    }
}

fn show(at: &Where, filter: &FilterArgs, last: Option<usize>) -> Result<(), Failure> {
    let (dir, _, _) = locate(at)?;
    let filter = filter.parsed()?;
    let mut kept = std::collections::VecDeque::new();
    let mut out = std::io::stdout().lock();
    read::lines(&dir, &filter, |_, value| {
        let line = read::describe(value);
        match last {
            Some(n) => {
                if kept.len() == n {
                    kept.pop_front();
                }
                if n > 0 {
                    kept.push_back(line);
                }
            }
            None => writeln!(out, "{line}")?,
        }
        Ok(true)
    })
    .map_err(|e| Failure::startup(anyhow::anyhow!("cannot read {}: {e}", dir.display())))?;
    for line in kept {
        let _ = writeln!(out, "{line}");
    }
    Ok(())
}

fn key(out: &Path) -> Result<(), Failure> {
    let public_path = PathBuf::from(format!("{}.pub", out.display()));
    material::none_exist([out, public_path.as_path()]).map_err(Failure::config)?;
    let seed = random32();
    let public = SigningKey::from_seed(&seed).public();
    material::write_new(out, &format!("{}\n", hex(&seed)), true).map_err(Failure::startup)?;
    material::write_new(&public_path, &format!("{}\n", hex(public.raw())), false)
        .map_err(Failure::startup)?;
    println!(
        "wrote {} (private, 0600) and {} (public key {}, kid {})",
        out.display(),
        public_path.display(),
        hex(public.raw()),
        public.kid()
    );
    Ok(())
}
