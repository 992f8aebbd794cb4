//! A full disk, in both `on_full` modes, on a real file system: the log lives on a small
//! tmpfs (mounted here: this needs root, as CI has; elsewhere the test says it was skipped).
//! `refuse`: once the log cannot write, requests are refused with rsc 5000; once space is
//! freed they pass again, and the log verifies. `drop`: requests pass throughout, and the log
//! records the loss as a gap.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::audit::{self, Dirs};

/// A tmpfs of `kib` KiB at `dir`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, kib: u32) -> Option<Tmpfs> {
        let root = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&root.stdout).trim() != "0" {
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let size = format!("size={kib}k");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs at {}", dir.display());
        Some(Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The log on a 384 KiB tmpfs, with 256 KiB of it taken by a file that can be removed to
/// free space; segments of 64 KiB, retention far above the file system's size.
struct Full {
    dirs: Dirs,
    _fs: Tmpfs,
    ballast: PathBuf,
    log: PathBuf,
}

impl Full {
    fn new() -> Option<Full> {
        let dirs = Dirs::new();
        let mount = dirs.root.path().join("fs");
        let Some(fs) = Tmpfs::mount(&mount, 384) else {
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        };
        let ballast = mount.join("ballast");
        std::fs::write(&ballast, vec![0u8; 256 * 1024]).unwrap();
        Some(Full {
            dirs,
            _fs: fs,
            ballast,
            log: mount.join("audit"),
        })
    }

    /// A gateway with its log on the tmpfs; `extra` sets `on_full` and the like.
    async fn start(
        &self,
        upstream: std::net::SocketAddr,
        extra: &str,
    ) -> m2mguard::gateway::Gateway {
        let extra = format!("{extra}\nflush_interval_ms = 5\nsegment_bytes = 65536");
        let text = self.dirs.config_at(upstream, &self.log, &extra);
        let config = m2mguard::config::Config::parse(&text, "full.toml").unwrap();
        m2mguard::gateway::Gateway::start(config).await.unwrap()
    }
}

/// Sends legitimate requests until one is answered `rsc` (at most `limit` of them).
async fn until_rsc(http: std::net::SocketAddr, rsc: &str, limit: usize) -> Option<common::Answer> {
    let client = common::client();
    for i in 0..limit {
        let answer = audit::get(&client, http, "CAdmin", &format!("fill-{i}")).await;
        if answer.rsc() == rsc {
            return Some(answer);
        }
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    None
}

#[tokio::test]
async fn refuse_mode_fails_closed_on_a_full_disk_and_recovers() {
    let Some(full) = Full::new() else { return };
    let echo = common::echo_upstream().await;
    let gateway = full.start(echo.addr, "on_full = \"refuse\"").await;
    let http = gateway.http_addr;
    let refused = until_rsc(http, "5000", 20_000)
        .await
        .expect("the full disk refuses requests");
    assert_eq!(refused.status, 500);
    assert!(String::from_utf8_lossy(&refused.body).contains("cannot write its audit log"));
    let before = echo.hits.load(std::sync::atomic::Ordering::SeqCst);
    let client = common::client();
    for i in 0..5 {
        let answer = audit::get(&client, http, "CAdmin", &format!("while-full-{i}")).await;
        assert_eq!(
            answer.rsc(),
            "5000",
            "nothing passes while the log cannot write"
        );
    }
    assert_eq!(
        echo.hits.load(std::sync::atomic::Ordering::SeqCst),
        before,
        "nothing reached the upstream"
    );
    let metrics = gateway.state.metrics.encode();
    assert!(metrics.contains("m2mguard_audit_healthy 0"), "{metrics}");

    std::fs::remove_file(&full.ballast).unwrap();
    let passed = until_rsc(http, "2001", 2_000).await;
    assert!(
        passed.is_some(),
        "requests pass again once the log can write"
    );
    gateway.shutdown().await;

    let (code, report) = audit::verify(&full.log, &full.dirs.public_key());
    assert_eq!(code, 0, "{report}");
    let lines = audit::lines(&full.log);
    let passed_while_full = lines
        .iter()
        .filter(|l| {
            l["verdict"] == "allowed"
                && l["rqi"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("while-full"))
        })
        .count();
    assert_eq!(passed_while_full, 0);
}

#[tokio::test]
async fn drop_mode_passes_requests_and_records_the_loss_as_a_gap() {
    let Some(full) = Full::new() else { return };
    let echo = common::echo_upstream().await;
    let gateway = full
        .start(echo.addr, "on_full = \"drop\"\nqueue_records = 16")
        .await;
    let http = gateway.http_addr;
    let client = common::client();
    let mut i = 0;
    while !gateway
        .state
        .metrics
        .encode()
        .contains("m2mguard_audit_healthy 0")
    {
        let answer = audit::get(&client, http, "CAdmin", &format!("fill-{i}")).await;
        assert_eq!(answer.rsc(), "2001", "requests pass in drop mode");
        i += 1;
        assert!(i < 20_000, "the log never filled the disk");
    }
    for j in 0..200 {
        let answer = audit::get(&client, http, "CAdmin", &format!("while-full-{j}")).await;
        assert_eq!(
            answer.rsc(),
            "2001",
            "requests pass while the log cannot write"
        );
    }
    std::fs::remove_file(&full.ballast).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        audit::get(&client, http, "CAdmin", "after").await.rsc(),
        "2001"
    );
    gateway.shutdown().await;

    let (code, report) = audit::verify(&full.log, &full.dirs.public_key());
    assert_eq!(code, 0, "{report}");
    let lines = audit::lines(&full.log);
    let lost: u64 = lines
        .iter()
        .filter(|l| l["kind"] == "gap")
        .filter_map(|l| l["lost"].as_u64())
        .sum();
    let recorded = lines
        .iter()
        .filter(|l| {
            l["rqi"]
                .as_str()
                .is_some_and(|r| r.starts_with("while-full"))
        })
        .count() as u64;
    assert!(
        lost >= 100,
        "the loss is recorded as a gap ({lost}): {report}"
    );
    assert!(
        recorded + lost >= 200,
        "every request is recorded or counted: {recorded} + {lost}"
    );
    assert!(report.contains("gap line"), "{report}");
}
