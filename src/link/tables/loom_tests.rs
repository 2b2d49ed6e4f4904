//! Model checking of the accounts' concurrent union-find with `loom`:
//! joins (under the joining mutex) racing each other and the lock-free
//! readers that shorten paths as they go, in one forest and, while
//! maintenance builds the spare forest, in both. Run with
//! `scripts/loom.sh`.

use super::Accounts;
use loom::thread;
use std::sync::Arc;

/// A small accounts table with `n` accounts, in order of arrival.
fn accounts(n: usize) -> (Arc<Accounts>, Vec<u32>) {
    let t = Accounts::new(n).unwrap();
    let ids = (0..n as u64)
        .map(|i| t.find_or_insert(2 * i + 11, 100).unwrap())
        .collect();
    (Arc::new(t), ids)
}

fn spawn<T: Send + 'static>(
    t: &Arc<Accounts>,
    f: impl FnOnce(&Accounts) -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let t = t.clone();
    thread::spawn(move || f(&t))
}

/// Every account's root is the oldest account, whose size is all of them.
fn one_cluster(t: &Accounts, ids: &[u32]) {
    for &x in ids {
        assert_eq!(t.root(x), ids[0], "root of {x}");
        assert_eq!(t.root_read(x), Some(ids[0]));
    }
    assert_eq!(t.size(ids[0]), ids.len() as u32);
}

/// Two joins sharing an account, in either order and interleaved: both
/// join (each merges two clusters), and the result is one cluster rooted
/// at the oldest account, with its exact size.
#[test]
fn racing_joins_form_one_cluster() {
    crate::model::explore("racing_joins_form_one_cluster", 1_000, || {
        let (t, ids) = accounts(3);
        let (a, b, c) = (ids[0], ids[1], ids[2]);
        let one = spawn(&t, move |t| t.union(a, b));
        let two = spawn(&t, move |t| t.union(c, b));
        assert!(one.join().unwrap());
        assert!(two.join().unwrap());
        one_cluster(&t, &ids);
    });
}

/// A reader halving the path c → b → a while a fourth account joins
/// through c, and a lock-free reader of the newcomer: no reader sees a
/// cycle or a root that never was one, and the join counts every account.
#[test]
fn path_halving_races_a_join() {
    crate::model::explore("path_halving_races_a_join", 1_000, || {
        let (t, ids) = accounts(4);
        let (a, b, c, d) = (ids[0], ids[1], ids[2], ids[3]);
        assert!(t.union(b, c)); // c → b
        assert!(t.union(a, b)); // b → a
        let halving = spawn(&t, move |t| t.root(c));
        let joining = spawn(&t, move |t| t.union(d, c));
        let reading = spawn(&t, move |t| t.root_read(d));
        assert_eq!(halving.join().unwrap(), a);
        assert!(joining.join().unwrap());
        let seen = reading.join().unwrap();
        assert!(seen == Some(d) || seen == Some(a), "read {seen:?}");
        one_cluster(&t, &ids);
    });
}

/// While maintenance builds the spare forest, joins go to both: racing
/// joins leave the same one cluster in each, so making the spare forest
/// current loses none of them.
#[test]
fn joins_while_building_reach_both_forests() {
    crate::model::explore("joins_while_building_reach_both_forests", 1_000, || {
        let (t, ids) = accounts(3);
        let (a, b, c) = (ids[0], ids[1], ids[2]);
        t.reset_spare(0..t.capacity());
        t.start_building();
        let one = spawn(&t, move |t| t.union(b, a));
        let two = spawn(&t, move |t| t.union(b, c));
        assert!(one.join().unwrap());
        assert!(two.join().unwrap());
        one_cluster(&t, &ids);
        t.swap_forests();
        one_cluster(&t, &ids);
    });
}
