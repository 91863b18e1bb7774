//! Gates: a session's input waits for another's marks, and ends with an
//! error when the session it waits for ends first.

use std::time::Duration;

use futures_util::StreamExt;

use super::*;

fn stream(feed: &Arc<Feed>) -> impl futures_util::Stream<Item = io::Result<Bytes>> {
    futures_util::stream::unfold(Arc::clone(feed), Feed::next)
}

#[test]
fn marks_are_counted_from_the_clients_output_in_any_pieces() {
    let (tx, rx) = watch::channel(0);
    let mut w = watch_marks("t0k".into(), tx);
    w(b"dolly-mark t0k 1\ndolly-mark t0k 1\nother\ndolly-mark x 9\n");
    assert_eq!(*rx.borrow(), 1);
    // Cut anywhere; a longer line or another token is not a mark.
    w(b"dolly-mark t0");
    w(b"k 3\r\n");
    assert_eq!(*rx.borrow(), 3);
    w(b"dolly-mark t0k 2\n");
    assert_eq!(*rx.borrow(), 3, "marks only go forward");
    w(&[b'a'; 300]);
    w(b"dolly-mark t0k 7\n");
    assert_eq!(*rx.borrow(), 3, "the tail of a long line");
    w(b"dolly-mark t0k 5\n");
    assert_eq!(*rx.borrow(), 5);
    assert_eq!(mark_sql("t0k", 5), "SELECT 'dolly-mark t0k 5'");
    drop(w);
    assert!(
        rx.has_changed().is_err(),
        "the watcher dropped: the client ended"
    );
}

#[tokio::test]
async fn a_gate_holds_the_input_until_the_mark_is_printed() {
    let feed = Feed::new(Budget::new(1 << 20));
    let (tx, rx) = watch::channel(0);
    feed.push(Bytes::from_static(b"before;"));
    feed.push_gate(vec![(rx, 2)]);
    feed.push(Bytes::from_static(b"after;"));
    feed.close();
    let mut s = Box::pin(stream(&feed));
    assert_eq!(&s.next().await.unwrap().unwrap()[..], b"before;");
    let held = tokio::time::timeout(Duration::from_millis(50), s.next()).await;
    assert!(held.is_err(), "held at the gate");
    tx.send(1).unwrap();
    let held = tokio::time::timeout(Duration::from_millis(50), s.next()).await;
    assert!(held.is_err(), "mark 1 is not mark 2");
    tx.send(2).unwrap();
    assert_eq!(&s.next().await.unwrap().unwrap()[..], b"after;");
    assert!(s.next().await.is_none());
    assert_eq!(feed.broken(), None);
}

#[tokio::test]
async fn a_gate_whose_session_ended_first_breaks_the_input() {
    let feed = Feed::new(Budget::new(1 << 20));
    let (tx, rx) = watch::channel(0);
    feed.push_gate(vec![(rx, 1)]);
    feed.push(Bytes::from_static(b"after;"));
    let mut s = Box::pin(stream(&feed));
    let waiting = tokio::spawn(async move { s.next().await.map(|r| r.is_err()) });
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(tx);
    assert_eq!(waiting.await.unwrap(), Some(true), "an error, not the end");
    assert!(feed.broken().unwrap().contains("ended before its mark 1"));
    // Passed before it ended: open.
    let feed = Feed::new(Budget::new(1 << 20));
    let (tx, rx) = watch::channel(0);
    tx.send(1).unwrap();
    drop(tx);
    feed.push_gate(vec![(rx, 1)]);
    feed.close();
    assert!(Box::pin(stream(&feed)).next().await.is_none());
    assert_eq!(feed.broken(), None);
}

#[tokio::test]
async fn an_abort_ends_the_input_even_at_a_gate() {
    let feed = Feed::new(Budget::new(1 << 20));
    let (_tx, rx) = watch::channel(0);
    feed.push_gate(vec![(rx, 1)]);
    feed.push(Bytes::from_static(b"after;"));
    let mut s = Box::pin(stream(&feed));
    let waiting = tokio::spawn(async move { s.next().await.is_none() });
    tokio::time::sleep(Duration::from_millis(20)).await;
    feed.abort();
    let ended = tokio::time::timeout(Duration::from_secs(5), waiting).await;
    assert!(ended.unwrap().unwrap(), "ended, no error");
    assert_eq!(feed.broken(), None);
    assert_eq!(feed.queued(), 6, "what it did not read is still counted");
}
