//! The reference model: the shutdown rules of issue 2 (as `manager.rs` and `Conn`'s `Drop`
//! implement them) over plain structs, with no atomics, locks or futures.

use std::time::Duration;

use graceful_core::{ConnState, Graceful, ManualTimer, Outcome, ShutdownReport};

use crate::{Mark, Settings};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Serving,
    Requested,
    Draining,
    Stopped,
}

#[derive(Debug)]
pub struct ModelConn {
    pub id: u64,
    pub state: ConnState,
    pub in_flight: u32,
    pub quiet_since_ms: u64,
    /// Alive (or accepted) during the drain: the report counts it.
    pub noted: bool,
    pub drain: bool,
    pub kill: bool,
    /// Had work in flight during the drain.
    pub worked: bool,
    /// Registered during the drain; the manager has not looked at it yet.
    pub late: bool,
    /// When the manager will tell it to drain, in ms since the epoch.
    pub due_ms: Option<u64>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Reserve {
    Ok,
    Stopped,
    Full,
}

#[derive(Debug)]
pub struct Model {
    pub now_us: u64,
    pub timeout_us: Option<u64>,
    pub quiet_ms: u64,
    pub listen_limit: Option<usize>,
    pub veto: bool,

    pub phase: Phase,
    pub requested_timeout: Option<Option<u64>>,
    pub force: bool,
    pub start_us: u64,
    pub deadline_us: Option<u64>,
    pub stopping: bool,
    pub draining: bool,
    pub finished: bool,

    /// Live connections, in the order the test holds their handles.
    pub conns: Vec<ModelConn>,
    pub held_slots: usize,
    pub next_id: u64,
    /// Connections alive when the drain began or registered during it: each must end up in
    /// exactly one of the report's counts.
    pub seen_by_drain: usize,
    pub completed: usize,
    pub idle_closed: usize,
    pub hijacked: usize,
    /// Connections that closed after a stop, before the manager acted on it: counted when
    /// the drain begins (completed, idle closed, hijacked), forgotten on a veto.
    pub early: [usize; 3],
    /// The states of the connections the report killed.
    pub killed_states: Vec<ConnState>,
    /// When the last connection the drain saw closed on its own.
    pub last_close_us: Option<u64>,
    pub report: Option<ShutdownReport>,

    pub before_shutdown_calls: usize,
    pub on_shutdown_calls: usize,
    pub events: Vec<(u64, ConnState)>,
}

impl Model {
    pub fn new(settings: &Settings) -> Model {
        Model {
            now_us: 0,
            timeout_us: settings.timeout_us,
            quiet_ms: settings.quiet_us.div_ceil(1000),
            listen_limit: settings.listen_limit,
            veto: settings.veto,
            phase: Phase::Serving,
            requested_timeout: None,
            force: false,
            start_us: 0,
            deadline_us: None,
            stopping: false,
            draining: false,
            finished: false,
            conns: Vec::new(),
            held_slots: 0,
            next_id: 0,
            seen_by_drain: 0,
            completed: 0,
            idle_closed: 0,
            hijacked: 0,
            early: [0; 3],
            killed_states: Vec::new(),
            last_close_us: None,
            report: None,
            before_shutdown_calls: 0,
            on_shutdown_calls: 0,
            events: Vec::new(),
        }
    }

    /// Connection stamps round up, so a connection never looks quiet for longer than it was.
    fn now_ms_ceil(&self) -> u64 {
        self.now_us.div_ceil(1000)
    }

    /// The manager's "now" rounds down, for the same reason.
    fn now_ms_floor(&self) -> u64 {
        self.now_us / 1000
    }

    pub fn try_reserve(&self) -> Reserve {
        if self.stopping {
            Reserve::Stopped
        } else if self
            .listen_limit
            .is_some_and(|limit| self.conns.len() + self.held_slots >= limit)
        {
            Reserve::Full
        } else {
            Reserve::Ok
        }
    }

    pub fn register(&mut self) {
        let id = self.next_id;
        self.next_id += 1;
        let killed = self.finished;
        if self.draining && !killed {
            self.seen_by_drain += 1;
        }
        self.conns.push(ModelConn {
            id,
            state: ConnState::New,
            in_flight: 0,
            quiet_since_ms: self.now_ms_ceil(),
            noted: self.draining,
            drain: killed,
            kill: killed,
            worked: false,
            late: self.draining && !killed,
            due_ms: None,
        });
        self.events.push((id, ConnState::New));
    }

    /// Applies `mark` to connection `i` if the table allows it; returns whether it did.
    pub fn mark(&mut self, i: usize, mark: Mark) -> bool {
        let now_ms = self.now_ms_ceil();
        let conn = &mut self.conns[i];
        let before = conn.state;
        match (mark, conn.state) {
            (Mark::Active, ConnState::New | ConnState::Idle) => {
                conn.state = ConnState::Active;
                conn.in_flight = 1;
                conn.worked |= conn.noted;
            }
            (Mark::Active, ConnState::Active) => {
                conn.in_flight += 1;
                conn.worked |= conn.noted;
            }
            (Mark::Idle, ConnState::Active) if conn.in_flight == 1 => {
                conn.state = ConnState::Idle;
                conn.in_flight = 0;
                conn.quiet_since_ms = now_ms;
            }
            (Mark::Idle, ConnState::Active) => conn.in_flight -= 1,
            (Mark::Hijacked, ConnState::New | ConnState::Active | ConnState::Idle) => {
                conn.state = ConnState::Hijacked;
                conn.in_flight = 0;
            }
            _ => return false,
        }
        if conn.state != before {
            let event = (conn.id, conn.state);
            self.events.push(event);
        }
        true
    }

    /// Dropping a connection: counted by how it ended if the drain saw it and did not kill it.
    pub fn close(&mut self, i: usize) {
        let conn = self.conns.remove(i);
        if !conn.noted && self.phase == Phase::Requested {
            let bucket = match conn.state {
                ConnState::Active => 0,
                ConnState::Hijacked => 2,
                _ => 1,
            };
            self.early[bucket] += 1;
        }
        if conn.noted && !conn.kill {
            self.last_close_us = Some(self.now_us);
            if conn.state == ConnState::Hijacked {
                self.hijacked += 1;
            } else if conn.worked {
                self.completed += 1;
            } else {
                self.idle_closed += 1;
            }
        }
        self.events.push((conn.id, ConnState::Closed));
    }

    pub fn request(&mut self, timeout: Option<Option<u64>>) {
        if self.phase == Phase::Serving {
            self.phase = Phase::Requested;
            self.requested_timeout = timeout;
        }
    }

    /// `force`, and a signal once a shutdown is pending or under way.
    pub fn request_force(&mut self) {
        match self.phase {
            Phase::Serving => {
                self.phase = Phase::Requested;
                self.force = true;
            }
            Phase::Requested | Phase::Draining => self.force = true,
            Phase::Stopped => {}
        }
    }

    pub fn signal(&mut self) {
        if self.phase == Phase::Serving {
            self.request(None);
        } else {
            self.request_force();
        }
    }

    /// What one poll of the manager does.
    pub fn poll(&mut self) {
        if self.phase == Phase::Requested {
            if !self.force {
                self.before_shutdown_calls += 1;
                if self.veto {
                    self.phase = Phase::Serving;
                    self.requested_timeout = None;
                    self.early = [0; 3];
                    return;
                }
            }
            self.begin();
        }
        if self.phase != Phase::Draining {
            return;
        }
        if self.force {
            return self.finish(Outcome::Forced);
        }
        if self.conns.is_empty() {
            return self.finish(Outcome::Drained);
        }
        let now_ms = self.now_ms_floor();
        for i in 0..self.conns.len() {
            if std::mem::take(&mut self.conns[i].late) {
                if self.conns[i].state.is_quiet() {
                    self.schedule(i, now_ms);
                } else {
                    self.conns[i].drain = true;
                }
            }
        }
        for conn in &mut self.conns {
            if conn.due_ms.is_some_and(|due| due <= now_ms) {
                conn.due_ms = None;
                conn.drain = true;
            }
        }
        if self.deadline_us.is_some_and(|d| self.now_us >= d) {
            self.finish(Outcome::TimedOut);
        }
    }

    fn begin(&mut self) {
        self.phase = Phase::Draining;
        let timeout = self.requested_timeout.unwrap_or(self.timeout_us);
        self.start_us = self.now_us;
        self.deadline_us = timeout.map(|t| self.start_us + t);
        self.stopping = true;
        self.on_shutdown_calls += 1;
        self.draining = true;
        let now_ms = self.now_ms_floor();
        let [completed, idle_closed, hijacked] = std::mem::take(&mut self.early);
        self.completed += completed;
        self.idle_closed += idle_closed;
        self.hijacked += hijacked;
        self.seen_by_drain = self.conns.len() + completed + idle_closed + hijacked;
        for i in 0..self.conns.len() {
            let conn = &mut self.conns[i];
            conn.noted = true;
            match conn.state {
                ConnState::Active => {
                    conn.worked = true;
                    conn.drain = true;
                }
                ConnState::Hijacked => conn.drain = true,
                _ => self.schedule(i, now_ms),
            }
        }
    }

    /// A quiet connection drains once it has been quiet for the quiet period.
    fn schedule(&mut self, i: usize, now_ms: u64) {
        let quiet_ms = self.quiet_ms;
        let conn = &mut self.conns[i];
        let due = conn.quiet_since_ms + quiet_ms;
        if quiet_ms == 0 || due <= now_ms {
            conn.drain = true;
        } else {
            conn.due_ms = Some(due);
        }
    }

    fn finish(&mut self, outcome: Outcome) {
        self.finished = true;
        self.killed_states = self.conns.iter().map(|conn| conn.state).collect();
        for conn in &mut self.conns {
            conn.noted = true;
            conn.drain = true;
            conn.kill = true;
            conn.due_ms = None;
        }
        self.phase = Phase::Stopped;
        let mut report = report(
            self.completed,
            self.idle_closed,
            self.hijacked,
            self.conns.len(),
            outcome,
            Duration::from_micros(self.now_us - self.start_us),
        );
        report.slowest = self.last_close_us.map_or(Duration::ZERO, |last| {
            Duration::from_micros(last - self.start_us)
        });
        for conn in &self.conns {
            let counts = &mut report.killed_in;
            match conn.state {
                ConnState::New => counts.new += 1,
                ConnState::Active => counts.active += 1,
                ConnState::Idle => counts.idle += 1,
                ConnState::Hijacked | ConnState::Closed => counts.hijacked += 1,
            }
        }
        self.report = Some(report);
    }
}

/// `ShutdownReport` is `#[non_exhaustive]`: build the expected one by editing a real one
/// (forced with no connection: its `slowest` is zero and its `killed_in` empty).
fn report(
    completed: usize,
    idle_closed: usize,
    hijacked: usize,
    killed: usize,
    outcome: Outcome,
    elapsed: Duration,
) -> ShutdownReport {
    let graceful = Graceful::builder().build(ManualTimer::new()).unwrap();
    graceful.shutdown().force();
    let mut report = futures::executor::block_on(graceful.run());
    report.completed = completed;
    report.idle_closed = idle_closed;
    report.hijacked = hijacked;
    report.killed = killed;
    report.outcome = outcome;
    report.elapsed = elapsed;
    report
}
