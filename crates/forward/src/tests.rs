//! The relay over loopback sockets, with a target file in a temporary
//! folder and small servers on threads.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::args::{self, Command};
use crate::{Config, Limits, Relay, Target};

struct Harness {
    dir: tempfile::TempDir,
    addr: std::net::SocketAddr,
    open: Arc<AtomicUsize>,
}

impl Harness {
    fn new(limits: Limits) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            target_file: dir.path().join("target"),
            wake_request: dir.path().join("request"),
            limits,
        };
        let relay = Relay::bind(config).unwrap();
        let addr = relay.local_addr().unwrap();
        let open = Arc::clone(&relay.open);
        thread::spawn(move || relay.run());
        Self { dir, addr, open }
    }

    /// Swaps the target as dollyd does (one rename).
    fn target(&self, text: &str) {
        let tmp = self.dir.path().join(".target.tmp");
        std::fs::write(&tmp, format!("{text}\n")).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("target")).unwrap();
    }

    fn wake_request(&self) -> std::path::PathBuf {
        self.dir.path().join("request")
    }

    fn connect(&self) -> TcpStream {
        let c = TcpStream::connect(self.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c
    }

    /// Waits until no connection is open in the relay.
    fn wait_all_closed(&self, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if self.open.load(Ordering::Acquire) == 0 {
                return true;
            }
            thread::sleep(Duration::from_millis(5));
        }
        false
    }
}

fn quick() -> Limits {
    Limits {
        wait: Duration::from_secs(5),
        poll: Duration::from_millis(5),
        connect: Duration::from_secs(2),
        linger: Duration::from_millis(200),
        max_connections: 64,
    }
}

/// A server that greets each connection with `hello` (as MySQL speaks
/// first), then echoes until its client's end of stream, then closes.
fn echo_server(hello: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            thread::spawn(move || {
                c.write_all(hello.as_bytes()).unwrap();
                let mut buf = [0u8; 1024];
                loop {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if c.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    port
}

fn read_exact_str(c: &mut TcpStream, n: usize) -> String {
    let mut buf = vec![0u8; n];
    c.read_exact(&mut buf).unwrap();
    String::from_utf8(buf).unwrap()
}

/// Reads until the end of stream; `Err` if the stream stays open.
fn read_to_end(c: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut all = Vec::new();
    c.read_to_end(&mut all)?;
    Ok(all)
}

#[test]
fn the_target_file_parses() {
    assert_eq!(Target::parse("3307\n"), Target::Port(3307));
    assert_eq!(Target::parse(" 3310 \nrest"), Target::Port(3310));
    assert_eq!(Target::parse("sleeping\n"), Target::Sleeping);
    assert_eq!(Target::parse("starting"), Target::Starting);
    assert_eq!(Target::parse("stopped\n"), Target::Stopped);
    for other in ["", "0", "70000", "-1", "33o7", "wake"] {
        assert_eq!(Target::parse(other), Target::Unknown, "{other:?}");
    }
    assert_eq!(
        Target::read(Path::new("/nonexistent/target")),
        Target::Unknown
    );
}

#[test]
fn relays_both_ways_to_the_port_the_target_names_at_each_connection() {
    let h = Harness::new(quick());
    let (a, b) = (echo_server("AAAA"), echo_server("BBBB"));
    h.target(&a.to_string());
    let mut first = h.connect();
    assert_eq!(read_exact_str(&mut first, 4), "AAAA");
    first.write_all(b"ping").unwrap();
    assert_eq!(read_exact_str(&mut first, 4), "ping");
    // A swapped target: the next connection goes to the new server, the
    // open one stays where it was.
    h.target(&b.to_string());
    let mut second = h.connect();
    assert_eq!(read_exact_str(&mut second, 4), "BBBB");
    first.write_all(b"more").unwrap();
    assert_eq!(read_exact_str(&mut first, 4), "more");
    // Many bytes through.
    let big = vec![7u8; 1 << 20];
    let mut writer = second.try_clone().unwrap();
    let sent = big.clone();
    let w = thread::spawn(move || writer.write_all(&sent).unwrap());
    let mut back = vec![0u8; big.len()];
    second.read_exact(&mut back).unwrap();
    w.join().unwrap();
    assert_eq!(back, big);
}

#[test]
fn a_client_half_close_reaches_the_server_and_its_answer_comes_back() {
    let h = Harness::new(quick());
    // A server that reads until end of stream, then answers and closes.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    h.target(&l.local_addr().unwrap().port().to_string());
    let server = thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        c.write_all(format!("got {}", got.len()).as_bytes())
            .unwrap();
    });
    let mut c = h.connect();
    c.write_all(b"12345").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut c).unwrap(), b"got 5");
    server.join().unwrap();
    assert!(h.wait_all_closed(Duration::from_secs(2)));
}

#[test]
fn a_server_close_reaches_the_client_and_both_sockets_go_after_the_linger() {
    let h = Harness::new(quick());
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    h.target(&l.local_addr().unwrap().port().to_string());
    let server = thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        c.write_all(b"bye").unwrap();
        // Dropped: as a killed server's connections.
    });
    let mut c = h.connect();
    server.join().unwrap();
    assert_eq!(read_to_end(&mut c).unwrap(), b"bye");
    // The client keeps its side open; the relay does not wait for it
    // beyond the linger.
    assert!(h.wait_all_closed(Duration::from_secs(2)));
    drop(c);
}

#[test]
fn a_client_that_goes_away_closes_the_server_connection() {
    let h = Harness::new(quick());
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    h.target(&l.local_addr().unwrap().port().to_string());
    let c = h.connect();
    let (mut s, _) = l.accept().unwrap();
    drop(c);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(read_to_end(&mut s).unwrap(), b"");
    assert!(h.wait_all_closed(Duration::from_secs(2)));
}

#[test]
fn sleeping_leaves_a_wake_request_and_waits_for_a_port() {
    let h = Harness::new(quick());
    h.target("sleeping");
    let mut c = h.connect();
    let until = Instant::now() + Duration::from_secs(2);
    while !h.wake_request().exists() {
        assert!(Instant::now() < until, "no wake-up request");
        thread::sleep(Duration::from_millis(5));
    }
    // dollyd: the server starts, the request is taken, then its port. (A
    // request taken while the target still says `sleeping` may be left
    // again by a waiting connection; dollyd clears it before the next
    // sleep.)
    h.target("starting");
    thread::sleep(Duration::from_millis(50));
    std::fs::remove_file(h.wake_request()).unwrap();
    thread::sleep(Duration::from_millis(50));
    assert!(!h.wake_request().exists(), "starting asks for nothing");
    let port = echo_server("woke");
    h.target(&port.to_string());
    assert_eq!(read_exact_str(&mut c, 4), "woke");
}

#[test]
fn stopped_closes_at_once() {
    let h = Harness::new(quick());
    h.target("stopped");
    let mut c = h.connect();
    let t = Instant::now();
    assert_eq!(read_to_end(&mut c).unwrap(), b"");
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(!h.wake_request().exists());
}

#[test]
fn a_wait_is_bounded() {
    let h = Harness::new(Limits {
        wait: Duration::from_millis(200),
        ..quick()
    });
    for target in ["starting", "sleeping", "garbage"] {
        h.target(target);
        let mut c = h.connect();
        let t = Instant::now();
        assert_eq!(read_to_end(&mut c).unwrap(), b"", "{target}");
        let waited = t.elapsed();
        assert!(
            waited >= Duration::from_millis(150) && waited < Duration::from_secs(3),
            "{target}: {waited:?}"
        );
    }
    // No target file at all waits too.
    std::fs::remove_file(h.dir.path().join("target")).unwrap();
    let mut c = h.connect();
    assert_eq!(read_to_end(&mut c).unwrap(), b"");
}

#[test]
fn a_refused_port_closes_unless_the_target_moved_on() {
    let h = Harness::new(quick());
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    h.target(&closed.to_string());
    let mut c = h.connect();
    assert_eq!(read_to_end(&mut c).unwrap(), b"");
    // The target moved while the connect was refused: the new port is
    // tried (as a connection racing a reset's handover). A FIFO as the
    // target file hands out one answer per read.
    let fifo = h.dir.path().join("fifo");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let port = echo_server("new!");
    let writer = {
        let fifo = fifo.clone();
        thread::spawn(move || {
            std::fs::write(&fifo, format!("{closed}\n")).unwrap();
            thread::sleep(Duration::from_millis(100));
            std::fs::write(&fifo, format!("{port}\n")).unwrap();
        })
    };
    let cfg = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        target_file: fifo,
        wake_request: h.wake_request(),
        limits: quick(),
    };
    let mut s = crate::target::connect(&cfg).unwrap();
    writer.join().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(read_exact_str(&mut s, 4), "new!");
}

#[test]
fn connections_beyond_the_limit_are_closed_at_once() {
    let h = Harness::new(Limits {
        max_connections: 2,
        ..quick()
    });
    h.target(&echo_server("hi").to_string());
    let mut held: Vec<TcpStream> = (0..2).map(|_| h.connect()).collect();
    for c in &mut held {
        assert_eq!(read_exact_str(c, 2), "hi");
    }
    let mut third = h.connect();
    assert_eq!(read_to_end(&mut third).unwrap(), b"");
    drop(held);
    assert!(h.wait_all_closed(Duration::from_secs(2)));
    let mut fourth = h.connect();
    assert_eq!(read_exact_str(&mut fourth, 2), "hi");
}

#[test]
fn the_command_line_defaults_to_the_container_paths() {
    let Command::Relay(c) = args::parse(Vec::new()).unwrap() else {
        panic!("not a relay");
    };
    assert_eq!(c.listen.to_string(), "0.0.0.0:3306");
    assert_eq!(c.target_file, Path::new("/run/dolly-forward/target"));
    assert_eq!(c.wake_request, Path::new("/run/dolly-wake/request"));
    let given = [
        "--listen",
        "127.0.0.1:4000",
        "--target",
        "/t",
        "--wake",
        "/w",
    ];
    let Command::Relay(c) = args::parse(given.iter().map(Into::into)).unwrap() else {
        panic!("not a relay");
    };
    assert_eq!(c.listen.port(), 4000);
    assert_eq!(c.target_file, Path::new("/t"));
    assert!(args::parse(["--listen".into()]).is_err());
    assert!(args::parse(["--listen".into(), "nowhere".into()]).is_err());
    assert!(args::parse(["--bogus".into()]).is_err());
    assert!(matches!(
        args::parse(["--version".into()]),
        Ok(Command::Version)
    ));
}
