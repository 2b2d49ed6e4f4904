//! Replay on several threads (`Replayer::replay_reader_threads`, `ringfence
//! replay --threads`): the same decisions, in the same order, the same
//! counts and the same errors as on one thread.

use ringfence::guard::GuardConfig;
use ringfence_lab::replay::{write_trace, ReplayError, ReplayOptions, Replayer, CHUNK_LINES};
use ringfence_lab::sim::{simulate, Scenario};

/// A simulated trace (several chunks of lines) with a blank line, a line of
/// bad JSON, a line of bad UTF-8 and an out-of-order line mixed in.
fn trace() -> Vec<u8> {
    let records = simulate(&Scenario::builtin("default").unwrap().scaled(0.02));
    let mut jsonl = Vec::new();
    write_trace(&records, &mut jsonl).unwrap();
    let mut lines: Vec<Vec<u8>> = jsonl.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    assert!(lines.len() > 4 * CHUNK_LINES, "{} lines", lines.len());
    lines.insert(CHUNK_LINES - 1, Vec::new());
    lines.insert(CHUNK_LINES + 7, b"{\"ts\": 1, \"account\": }".to_vec());
    lines.insert(
        3 * CHUNK_LINES,
        b"{\"ts\": 2, \"account\": \"\xff\"}".to_vec(),
    );
    lines.insert(
        3 * CHUNK_LINES + 1,
        b"{\"ts\": 3, \"account\": \"early\"}\r".to_vec(),
    );
    lines.join(&b'\n')
}

/// Replays `text` on `threads`: every decision as JSON, the result, and
/// the report's counts and accounts.
fn replay(text: &[u8], threads: usize, skip_bad: bool) -> (Vec<String>, String, String) {
    let options = ReplayOptions {
        skip_bad,
        ..ReplayOptions::default()
    };
    let mut r = Replayer::new(GuardConfig::for_accounts(5_000), options);
    let mut decisions = Vec::new();
    let mut last_progress = 0;
    let result = r.replay_reader_threads(
        text,
        threads,
        |d| {
            decisions.push(serde_json::to_string(d).unwrap());
            Ok(())
        },
        |p| {
            assert!(p.lines >= last_progress);
            last_progress = p.lines;
        },
    );
    let result = match result {
        Ok(()) => "ok".to_string(),
        Err(ReplayError::Trace(e)) => e.to_string(),
        Err(e) => panic!("{e}"),
    };
    let rep = r.report();
    let counts = format!(
        "{} lines, {} requests, {} bad, {} blank, {} out of order, {} allowed, {} throttled, {} denied, {:?}, {:?}",
        rep.lines,
        rep.requests,
        rep.bad_lines,
        rep.blank_lines,
        rep.out_of_order,
        rep.allowed,
        rep.throttled,
        rep.denied,
        r.bad_lines(),
        r.accounts()
    );
    (decisions, result, counts)
}

#[test]
fn any_number_of_threads_gives_the_same_replay() {
    let text = trace();
    for skip_bad in [true, false] {
        let one = replay(&text, 1, skip_bad);
        if skip_bad {
            assert_eq!(one.1, "ok");
            assert!(one.0.len() > 3 * CHUNK_LINES);
        } else {
            assert_eq!(
                one.0.len(),
                CHUNK_LINES + 6,
                "decisions before the bad line"
            );
            assert!(
                one.1
                    .starts_with(&format!("line {}, column", CHUNK_LINES + 8)),
                "{}",
                one.1
            );
        }
        for threads in [2, 3, 5] {
            let many = replay(&text, threads, skip_bad);
            assert!(one.0 == many.0, "decisions differ with {threads} threads");
            assert_eq!(one.1, many.1, "{threads} threads");
            assert_eq!(one.2, many.2, "{threads} threads");
        }
    }
}

#[test]
fn an_empty_trace_and_a_trace_without_a_final_newline_replay_alike() {
    for text in [&b""[..], b"\n\n", b"{\"ts\": 1, \"account\": \"a\"}"] {
        let one = replay(text, 1, false);
        let four = replay(text, 4, false);
        assert_eq!(one, four, "{:?}", String::from_utf8_lossy(text));
    }
}
