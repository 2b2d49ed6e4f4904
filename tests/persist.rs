//! Crash-safe snapshots: a writer killed with SIGKILL at random points
//! always leaves the previous snapshot or the new one, whole and valid;
//! and a restore that fails, for bad bytes or an unreadable file, leaves
//! the guard as it was.

use ringfence::guard::{Guard, GuardConfig, Request};
use ringfence::persist::write_atomic;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A small guard on a manual clock that has seen `n` requests (so its
/// snapshot is deterministic and its size grows with `n`).
fn guard_with(n: u64) -> Guard {
    let (g, clock) = Guard::for_replay(GuardConfig::for_accounts(2_000));
    // Every guard's clock ends at the same time, so that snapshots of
    // equal states are equal bytes.
    let end = Duration::from_secs(600);
    for i in 0..n {
        clock.set(Duration::from_millis(i * 50));
        let account = format!("acct{}", i % 700);
        let card = format!("card{}", i % 90);
        g.check(&Request {
            account: &account,
            fingerprints: &[("payment", &card)],
            prompt: None,
            system: None,
            model: None,
            input_tokens: 10,
            max_tokens: 10,
        });
    }
    clock.set(end);
    g
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rf-crash-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The writer the crash test runs in a child process and kills: it writes
/// the two snapshots it is given, alternately, until it is killed.
#[test]
#[ignore = "run by a_writer_killed_at_random_points_leaves_one_whole_snapshot, in a child process"]
fn child_writer() {
    let dir = PathBuf::from(std::env::var("RF_CRASH_DIR").expect("run by the crash test"));
    let snaps = [
        std::fs::read(dir.join("a.bin")).unwrap(),
        std::fs::read(dir.join("b.bin")).unwrap(),
    ];
    for i in 0usize.. {
        write_atomic(&dir.join("snapshot.bin"), &snaps[i % 2]).unwrap();
    }
}

#[test]
fn a_writer_killed_at_random_points_leaves_one_whole_snapshot() {
    let dir = scratch("kill");
    let (a, b) = (guard_with(1_000).snapshot(), guard_with(3_000).snapshot());
    assert!(a != b);
    std::fs::write(dir.join("a.bin"), &a).unwrap();
    std::fs::write(dir.join("b.bin"), &b).unwrap();
    let target = dir.join("snapshot.bin");
    write_atomic(&target, &a).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let (mut saw_a, mut saw_b) = (0, 0);
    for round in 0..100 {
        let mut child = std::process::Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "child_writer",
                "--test-threads",
                "1",
            ])
            .env("RF_CRASH_DIR", &dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::thread::sleep(Duration::from_micros(2_000 + x % 30_000));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let got = std::fs::read(&target).unwrap();
        if got == a {
            saw_a += 1;
        } else if got == b {
            saw_b += 1;
        } else {
            panic!("round {round}: {} bytes, neither snapshot", got.len());
        }
        // And it restores.
        guard_with(0).restore(&got).unwrap();
    }
    // The child did write (both versions were found), so the kills landed
    // among writes, not before the first.
    assert!(saw_a > 0 && saw_b > 0, "a {saw_a}, b {saw_b}");
    eprintln!("100 kills: the first snapshot found {saw_a} times, the second {saw_b}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_restore_that_fails_leaves_the_guard_as_it_was() {
    let dir = scratch("restore");
    let g = guard_with(500);
    let before = g.snapshot();
    let corrupt = dir.join("corrupt.bin");
    let mut bytes = guard_with(900).snapshot();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&corrupt, &bytes).unwrap();
    let truncated = dir.join("truncated.bin");
    std::fs::write(&truncated, &guard_with(900).snapshot()[..1000]).unwrap();
    let cases: [(&Path, &str); 4] = [
        (&dir.join("missing.bin"), "cannot read the snapshot"),
        (&dir, "cannot read the snapshot"), // a directory: the read fails
        (&corrupt, "corrupt.bin: cannot restore"),
        (&truncated, "truncated.bin: cannot restore"),
    ];
    for (path, says) in cases {
        let e = g.restore_from_file(path).unwrap_err().to_string();
        assert!(e.contains(says), "{}: {e}", path.display());
        assert!(g.snapshot() == before, "{}: half restored", path.display());
    }
    // Saved and restored through the files, the same bytes.
    let saved = dir.join("saved.bin");
    g.snapshot_to_file(&saved).unwrap();
    let fresh = guard_with(0);
    fresh.restore_from_file(&saved).unwrap();
    assert!(
        fresh.snapshot() == before,
        "a snapshot file round trip changed the bytes"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
