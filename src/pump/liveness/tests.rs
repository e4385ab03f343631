use super::*;

const PING: Duration = Duration::from_secs(30);
const PONG: Duration = Duration::from_secs(10);

fn setup(idle: Option<Duration>) -> (Instant, SessionState<'static>, LivenessTimer) {
    let metrics = Box::leak(Box::new(crate::metrics::Metrics::new().route("/")));
    let t0 = Instant::now();
    (
        t0,
        SessionState::new(t0, metrics),
        LivenessTimer::new(PING, PONG, idle, t0),
    )
}

/// No kernel evidence: only what the session itself saw.
fn frames(delivered: u64) -> Evidence {
    Evidence {
        delivered,
        tcp: None,
    }
}

/// The client's TCP stack has acknowledged `acked` bytes and offers `window` more.
fn tcp(acked: u64, window: u32) -> Evidence {
    Evidence {
        delivered: 0,
        tcp: Some(SendProgress {
            acked,
            window,
            window_unit: 128,
        }),
    }
}

#[test]
fn silent_client_is_dead_one_pong_timeout_after_the_ping() {
    let (t0, act, mut timer) = setup(None);
    assert_eq!(timer.next_wake(&act), t0 + PING);
    assert_eq!(
        timer.on_wake(t0 + PING, &act, tcp(100, 65_536)),
        Tick::SendPing
    );
    timer.ping_left(Some(106));
    assert_eq!(timer.next_wake(&act), t0 + PING + PONG);
    let early = t0 + PING + PONG - Duration::from_millis(1);
    assert_eq!(timer.on_wake(early, &act, tcp(100, 65_536)), Tick::Wait);
    assert_eq!(
        timer.on_wake(t0 + PING + PONG, &act, tcp(100, 65_536)),
        Tick::Dead
    );
}

#[tokio::test(start_paused = true)]
async fn an_answer_clears_the_ping_and_the_next_one_follows() {
    let (t0, act, mut timer) = setup(None);
    tokio::time::advance(PING).await;
    assert_eq!(timer.on_wake(t0 + PING, &act, frames(0)), Tick::SendPing);
    tokio::time::advance(Duration::from_secs(1)).await;
    act.heard_client();
    assert_eq!(timer.on_wake(t0 + PING + PONG, &act, frames(0)), Tick::Wait);
    assert_eq!(timer.next_wake(&act), t0 + PING + PING);
    assert_eq!(
        timer.on_wake(t0 + PING + PING, &act, frames(0)),
        Tick::SendPing
    );
}

#[test]
fn a_client_whose_window_keeps_reopening_is_reading_however_late_its_pong() {
    let (t0, act, mut timer) = setup(None);
    timer.on_wake(t0 + PING, &act, tcp(1_000_000, 0));
    let mut acked = 1_000_000;
    for round in 1..=20u32 {
        // 16 KiB/s: a little is read, acknowledged and refilled at once.
        acked += 16 * 1024 * 10;
        let at = t0 + PING + PONG * round;
        assert_eq!(
            timer.on_wake(at, &act, tcp(acked, 1448)),
            Tick::Wait,
            "round {round}"
        );
    }
}

#[test]
fn acknowledging_pings_alone_is_not_reading() {
    let (t0, act, mut timer) = setup(None);
    // The kernel takes the ping (acked moves by its 2 bytes) and rounds its window up to
    // the scale unit, so the edge creeps by 2, but the application reads nothing.
    timer.on_wake(t0 + PING, &act, tcp(100, 65_536));
    timer.ping_left(Some(102));
    assert_eq!(
        timer.on_wake(t0 + PING + PONG, &act, tcp(102, 65_536)),
        Tick::Dead
    );
}

#[test]
fn a_client_that_stops_reading_is_dead_once_its_window_stands_still() {
    let (t0, act, mut timer) = setup(None);
    timer.on_wake(t0 + PING, &act, tcp(0, 4096));
    assert_eq!(
        timer.on_wake(t0 + PING + PONG, &act, tcp(8192, 0)),
        Tick::Wait
    );
    assert_eq!(
        timer.on_wake(t0 + PING + PONG * 2, &act, tcp(8192, 0)),
        Tick::Dead
    );
}

#[test]
fn held_up_by_the_backend_counts_only_once_the_ping_reached_the_client() {
    let (t0, act, mut timer) = setup(None);
    act.set_upstream_blocked(true);
    timer.on_wake(t0 + PING, &act, tcp(500, 0));
    // The window is closed: the ping never left, so the backend is no excuse.
    assert_eq!(
        timer.on_wake(t0 + PING + PONG, &act, tcp(500, 0)),
        Tick::Dead
    );

    let (t0, act, mut timer) = setup(None);
    act.set_upstream_blocked(true);
    timer.on_wake(t0 + PING, &act, tcp(500, 65_536));
    timer.ping_left(Some(502));
    // The client's kernel took the ping; its pong may wait behind what we are not reading.
    assert_eq!(
        timer.on_wake(t0 + PING + PONG, &act, tcp(502, 65_534)),
        Tick::Wait
    );
    act.set_upstream_blocked(false);
    assert_eq!(
        timer.on_wake(t0 + PING + PONG * 2, &act, tcp(502, 65_534)),
        Tick::Dead
    );
}

#[test]
fn without_kernel_evidence_frames_and_backpressure_stand_in() {
    let (t0, act, mut timer) = setup(None);
    timer.on_wake(t0 + PING, &act, frames(5));
    assert_eq!(timer.on_wake(t0 + PING + PONG, &act, frames(9)), Tick::Wait);
    act.set_upstream_blocked(true);
    assert_eq!(
        timer.on_wake(t0 + PING + PONG * 2, &act, frames(9)),
        Tick::Wait
    );
    act.set_upstream_blocked(false);
    assert_eq!(
        timer.on_wake(t0 + PING + PONG * 3, &act, frames(9)),
        Tick::Dead
    );
}

#[test]
fn idle_sessions_end_after_idle_timeout() {
    let idle = Duration::from_secs(5);
    let (t0, act, mut timer) = setup(Some(idle));
    assert_eq!(timer.next_wake(&act), t0 + idle);
    assert_eq!(timer.on_wake(t0 + idle, &act, frames(0)), Tick::Idle);
}
