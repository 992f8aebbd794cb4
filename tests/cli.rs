//! The `m2mguard` binary as an operator uses it: `check` and `run` exit codes, node operations
//! through the admin API, a deactivation that survives a restart, and SIGHUP reload.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use http::StatusCode;

const BIN: &str = env!("CARGO_BIN_EXE_m2mguard");

fn m2mguard(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("m2mguard.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// A `m2mguard run` process and the addresses it reported.
struct Running {
    child: Child,
    http: SocketAddr,
    admin: SocketAddr,
}

fn start(config: &str) -> Running {
    let mut child = Command::new(BIN)
        .args(["run", "--config", config])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("m2mguard started") {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("gateway started within 20 s");
    let field = |name: &str| -> SocketAddr {
        let start = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
        line[start..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    Running {
        http: field("http"),
        admin: field("admin"),
        child,
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed test must not leave a gateway behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn stop(mut self) {
        self.signal("TERM");
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit status {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("gateway did not stop within 10 s of SIGTERM");
    }
}

#[test]
fn check_accepts_the_shipped_configuration() {
    let out = m2mguard(&["check", "--config", "config/m2mguard.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("OK"));
}

#[test]
fn check_warns_about_coap_echo_off_and_still_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let base = config_text(
        SocketAddr::from(([127, 0, 0, 1], 1)),
        dir.path(),
        POLICIES,
        "",
    ) + "\n[coap]\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:5683\"\n";
    let config = write_config(dir.path(), &base);
    let out = m2mguard(&["check", "--config", &config]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(!stdout(&out).contains("warning"), "{}", stdout(&out));
    let config = write_config(dir.path(), &(base + "echo = \"off\"\n"));
    let out = m2mguard(&["check", "--config", &config]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("OK"), "{text}");
    assert!(
        lines[1].starts_with("warning: coap.echo = \"off\": no address validation"),
        "{text}"
    );
    assert!(lines[1].contains("spoofed"), "{text}");
}

#[test]
fn check_names_observe_policies_and_says_observe_mode_enforces_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    for file in ["m2mguard.cedarschema", "00-operators.cedar"] {
        std::fs::copy(Path::new(POLICIES).join(file), policies.join(file)).unwrap();
    }
    std::fs::write(
        policies.join("30-new.cedar"),
        "@id(\"new-forbid\")\n@observe\nforbid (principal, action == Action::\"delete\", resource);\n",
    )
    .unwrap();
    let text = config_text(
        SocketAddr::from(([127, 0, 0, 1], 1)),
        dir.path(),
        policies.to_str().unwrap(),
        "",
    );
    let enforcing = write_config(dir.path(), &text);
    let out = m2mguard(&["check", "--config", &enforcing]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let said = stdout(&out);
    assert!(said.contains("1 @observe"), "{said}");
    assert!(said.contains("not enforced): new-forbid"), "{said}");
    assert!(!said.contains("mode = observe"), "{said}");
    let observing = text.replacen("\n[gateway]\n", "\n[gateway]\nmode = \"observe\"\n", 1);
    let out = m2mguard(&["check", "--config", &write_config(dir.path(), &observing)]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("mode = observe: nothing is enforced"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn check_lists_every_config_error_with_its_line_and_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(
        SocketAddr::from(([127, 0, 0, 1], 1)),
        dir.path(),
        POLICIES,
        "",
    )
    .replace("cse_id = \"/id-in\"", "cse_id = \"id-in\"")
    .replace("upstream_timeout_ms = 500", "upstream_timeout_ms = 0");
    let config = write_config(dir.path(), &text);
    let out = m2mguard(&["check", "--config", &config]);
    assert_eq!(out.status.code(), Some(64));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("{config}:3:10: gateway.cse_id")),
        "{text}"
    );
    assert!(
        text.contains("http.upstream_timeout_ms: 0 is out of range (expected 100 to 600000)"),
        "{text}"
    );
}

#[test]
fn check_lists_policy_errors_with_file_and_line_and_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::copy(
        Path::new(POLICIES).join("m2mguard.cedarschema"),
        policies.join("m2mguard.cedarschema"),
    )
    .unwrap();
    std::fs::write(
        policies.join("a.cedar"),
        "permit (principal, action, resource)\nwhen { context.weather == \"sunny\" };\n",
    )
    .unwrap();
    let config = write_config(
        dir.path(),
        &config_text(
            SocketAddr::from(([127, 0, 0, 1], 1)),
            dir.path(),
            policies.to_str().unwrap(),
            "",
        ),
    );
    let out = m2mguard(&["check", "--config", &config]);
    assert_eq!(out.status.code(), Some(64));
    assert!(stdout(&out).contains("a.cedar:2:"), "{}", stdout(&out));
}

/// A test config whose HTTP listener is `listen`.
fn listening_on(listen: SocketAddr, dir: &Path) -> String {
    let upstream = SocketAddr::from(([127, 0, 0, 1], 1));
    config_text(upstream, dir, POLICIES, "").replacen(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"{listen}\""),
        1,
    )
}

#[test]
fn run_refuses_a_bad_config_before_binding_anything() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = listening_on(taken.local_addr().unwrap(), dir.path())
        .replace("[admin]", "[admin]\nsecret_mode = true");
    let out = m2mguard(&["run", "--config", &write_config(dir.path(), &text)]);
    assert_eq!(
        out.status.code(),
        Some(64),
        "config errors come before the busy port: {}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("unknown field `secret_mode`"));
}

#[test]
fn run_exits_1_when_its_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = listening_on(taken.local_addr().unwrap(), dir.path());
    let out = m2mguard(&["run", "--config", &write_config(dir.path(), &text)]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("cannot listen on"));
}

fn node_cli(admin: SocketAddr, args: &[&str]) -> String {
    let admin = admin.to_string();
    let mut all = vec!["node", "--admin", &admin];
    all.extend_from_slice(args);
    let out = m2mguard(&all);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn deactivation_through_the_cli_survives_a_restart() {
    let cse = m2mguard::minicse::start(SocketAddr::from(([127, 0, 0, 1], 0)), "/id-in", "cse-in")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &config_text(cse.addr, &dir.path().join("data"), POLICIES, ""),
    );
    let client = client();

    let gw = start(&config);
    assert_eq!(retrieve(&client, gw.http, "Cmeter").await.rsc(), "2000");
    assert_eq!(
        node_cli(gw.admin, &["deactivate", "Cmeter"]).trim(),
        "Cmeter: deactivated"
    );
    let denied = retrieve(&client, gw.http, "Cmeter").await;
    assert_eq!(
        (denied.status, denied.rsc()),
        (StatusCode::FORBIDDEN, "4103")
    );
    gw.stop();

    let gw = start(&config);
    let denied = retrieve(&client, gw.http, "Cmeter").await;
    assert_eq!(
        (denied.status, denied.rsc()),
        (StatusCode::FORBIDDEN, "4103"),
        "still blocked after restart"
    );
    assert_eq!(
        retrieve(&client, gw.http, "Clamp").await.rsc(),
        "2000",
        "other nodes pass"
    );
    let list = node_cli(gw.admin, &["list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("Cmeter") && l.contains("deactivated")),
        "{list}"
    );
    assert!(node_cli(gw.admin, &["show", "Cmeter"]).contains("\"status\": \"deactivated\""));
    node_cli(gw.admin, &["activate", "Cmeter"]);
    assert_eq!(retrieve(&client, gw.http, "Cmeter").await.rsc(), "2000");
    gw.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_policies() {
    let cse = m2mguard::minicse::start(SocketAddr::from(([127, 0, 0, 1], 0)), "/id-in", "cse-in")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    for entry in std::fs::read_dir(POLICIES).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, policies.join(path.file_name().unwrap())).unwrap();
    }
    let config = write_config(
        dir.path(),
        &config_text(
            cse.addr,
            &dir.path().join("data"),
            policies.to_str().unwrap(),
            "",
        ),
    );
    let client = client();
    let gw = start(&config);
    assert_eq!(retrieve(&client, gw.http, "Clamp").await.rsc(), "2000");

    std::fs::write(
        policies.join("99-lamps-off.cedar"),
        "forbid (principal in Group::\"lamps\", action, resource);\n",
    )
    .unwrap();
    gw.signal("HUP");
    let mut blocked = false;
    for _ in 0..100 {
        if retrieve(&client, gw.http, "Clamp").await.rsc() == "4103" {
            blocked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        blocked,
        "the new policy was not in force within 5 s of SIGHUP"
    );
    assert_eq!(retrieve(&client, gw.http, "Cmeter").await.rsc(), "2000");
    gw.stop();
}

#[test]
fn node_command_without_a_running_gateway_exits_1_and_says_so() {
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = m2mguard(&["node", "--admin", &free.to_string(), "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("cannot reach the admin API"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn sequence_numbers_stay_used_after_sigkill() {
    use common::signed::{checks_toml, Signed};
    let echo = echo_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(echo.addr, &dir.path().join("data"), POLICIES, "")
        + &checks_toml(dir.path(), 100);
    let config = write_config(dir.path(), &text);

    let mut gw = start(&config);
    for (i, seq) in [1, 2, 3].into_iter().enumerate() {
        let answer = Signed::new(&format!("k-{i}"), seq).send(gw.http).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
    }
    gw.child.kill().unwrap(); // SIGKILL: no shutdown, no flush but what was already flushed
    gw.child.wait().unwrap();

    let gw = start(&config);
    for seq in [1, 3, 101] {
        let answer = Signed::new(&format!("k-again-{seq}"), seq)
            .send(gw.http)
            .await;
        assert_eq!(
            (answer.status, answer.rsc()),
            (StatusCode::FORBIDDEN, "4103"),
            "sequence number {seq} after SIGKILL"
        );
    }
    let answer = Signed::new("k-next", 102).send(gw.http).await;
    assert_eq!(
        answer.status,
        StatusCode::CREATED,
        "legitimate: above the bound"
    );
    gw.stop();
}

#[test]
fn demo_runs_its_script_and_shows_every_kind_of_decision() {
    let out = m2mguard(&["demo"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for expected in [
        "allow",
        "deny (policy)",
        "deny (status)",
        "deny (check_value)",
        "deny (replay)",
    ] {
        assert!(text.contains(expected), "{expected} missing in:\n{text}");
    }
    let (table, in_link) = text
        .split_once("The IN link")
        .unwrap_or_else(|| panic!("no IN link part in:\n{text}"));
    assert_eq!(
        table.lines().filter(|l| l.contains("rsc=")).count(),
        12,
        "{text}"
    );
    for expected in [
        "Cmeter-01 GET /cse-in -> 200 rsc=2000 (enrolled at the authority)",
        "$ m2mguard authority -c ",
        "Cmeter-01 GET /cse-in -> 403 rsc=4103",
        "CAdmin GET /cse-in -> 403 rsc=4103",
        "CAdmin GET /cse-in -> 200 rsc=2000",
    ] {
        assert!(
            in_link.contains(expected),
            "{expected} missing in:\n{in_link}"
        );
    }
}
