//! Bytes both ways between a client and its server, one thread per
//! direction, and how a close on one side reaches the other.

use std::io;
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use crate::STACK;

/// Relays between `client` and `server` until both directions are done:
/// client to server on a thread of its own, server to client on this one.
/// An end of stream shuts down the write half of the other side (a half
/// close goes through); once one direction is done the other has `linger`
/// to finish, then both sockets are closed; an error closes both at once.
pub(crate) fn relay(client: TcpStream, server: TcpStream, linger: Duration) -> io::Result<()> {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let ends = Arc::new(Ends {
        client: client.try_clone()?,
        server: server.try_clone()?,
        done: Mutex::new(0),
        finished: Condvar::new(),
    });
    let up = {
        let ends = Arc::clone(&ends);
        let (from, to) = (client.try_clone()?, server.try_clone()?);
        thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || pipe(from, to, &ends, linger))?
    };
    pipe(server, client, &ends, linger);
    let _ = up.join();
    Ok(())
}

/// Both sockets of a connection, and how many directions are done.
struct Ends {
    client: TcpStream,
    server: TcpStream,
    done: Mutex<u8>,
    finished: Condvar,
}

impl Ends {
    /// Closes both sockets both ways: a thread blocked reading either
    /// returns.
    fn close(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }

    /// A direction is done: the first to finish waits up to `linger` for
    /// the other, then closes both.
    fn direction_done(&self, linger: Duration) {
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        *done += 1;
        if *done >= 2 {
            self.finished.notify_all();
            return;
        }
        let (done, _) = self
            .finished
            .wait_timeout_while(done, linger, |d| *d < 2)
            .unwrap_or_else(PoisonError::into_inner);
        if *done < 2 {
            drop(done);
            self.close();
        }
    }
}

/// Copies `from` to `to` until `from` ends (then `to`'s write half is shut
/// down) or either fails (then both sockets close).
fn pipe(mut from: TcpStream, mut to: TcpStream, ends: &Ends, linger: Duration) {
    match io::copy(&mut from, &mut to) {
        Ok(_) => {
            let _ = to.shutdown(Shutdown::Write);
        }
        Err(_) => ends.close(),
    }
    ends.direction_done(linger);
}
