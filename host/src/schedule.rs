//! When the nightly sync runs: a local time of day in an IANA time zone, computed so that
//! daylight-saving changes neither skip a day nor run twice.
//!
//! - When the time does not exist that day (clocks jump over it), the run happens at the
//!   first instant after the gap: 01:00 on a spring-forward day in London is 02:00 BST.
//! - When the time exists twice (clocks fall back over it), the run happens once, at the
//!   first of the two.
//!
//! Everything here is a pure function of the instants it is given, so the tests drive it
//! with a simulated clock.

use jiff::civil::{Date, Time};
use jiff::tz::{Disambiguation, TimeZone};
use jiff::{Timestamp, ToSpan, ZonedDateTime};

use crate::config::SyncSettings;

#[derive(Debug, Clone)]
pub struct Schedule {
    pub time: Time,
    pub zone: TimeZone,
}

impl Schedule {
    #[cfg(test)]
    pub fn new(time: Time, zone: TimeZone) -> Self {
        Schedule { time, zone }
    }

    /// `Err` names the key that is wrong (the caller prefixes `sync.`).
    pub fn from_settings(settings: &SyncSettings) -> Result<Schedule, String> {
        let time: Time = settings
            .time
            .parse()
            .map_err(|_| format!("time: expected HH:MM, found \"{}\"", settings.time))?;
        let zone = match &settings.time_zone {
            Some(name) => TimeZone::get(name)
                .map_err(|_| format!("time_zone: unknown IANA time zone \"{name}\""))?,
            None => TimeZone::system(),
        };
        Ok(Schedule { time, zone })
    }

    /// The run instant for one local date.
    pub fn slot_on(&self, date: Date) -> Timestamp {
        let civil = date.to_datetime(self.time);
        // Compatible: a gap moves forward past it; a fold takes the earlier instant.
        self.zone
            .to_ambiguous_zoned_datetime(civil)
            .disambiguate(Disambiguation::Compatible)
            .expect("compatible disambiguation always resolves")
            .timestamp()
    }

    /// The first run strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Timestamp {
        let today = after.to_zoned_datetime(self.zone.clone()).date();
        let mut date = today.checked_sub(1.day()).unwrap_or(today);
        loop {
            let slot = self.slot_on(date);
            if slot > after {
                return slot;
            }
            date = date.checked_add(1.day()).expect("date in range");
        }
    }

    /// The latest run at or before `now`.
    pub fn last_at_or_before(&self, now: Timestamp) -> Timestamp {
        let today = now.to_zoned_datetime(self.zone.clone()).date();
        let mut date = today.checked_add(1.day()).unwrap_or(today);
        loop {
            let slot = self.slot_on(date);
            if slot <= now {
                return slot;
            }
            date = date.checked_sub(1.day()).expect("date in range");
        }
    }

    /// Whether a run is owed at `now`: the latest slot has passed and no run started at
    /// or after it. This is what makes a machine that was down at 1 AM catch up. A
    /// scheduler that has never run owes nothing: it waits for its first slot.
    pub fn is_due(&self, now: Timestamp, last_run_started: Option<Timestamp>) -> bool {
        let slot = self.last_at_or_before(now);
        last_run_started.is_some_and(|last| last < slot)
    }

    pub fn local(&self, instant: Timestamp) -> ZonedDateTime {
        instant.to_zoned_datetime(self.zone.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn london() -> Schedule {
        Schedule::new(
            Time::constant(1, 0, 0, 0),
            TimeZone::get("Europe/London").unwrap(),
        )
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn an_ordinary_night_runs_at_one_local() {
        let s = london();
        // Winter: GMT, 01:00 local = 01:00 UTC.
        assert_eq!(
            s.next_after(ts("2026-01-10T12:00:00Z")),
            ts("2026-01-11T01:00:00Z")
        );
        // Summer: BST, 01:00 local = 00:00 UTC.
        assert_eq!(
            s.next_after(ts("2026-07-10T12:00:00Z")),
            ts("2026-07-11T00:00:00Z")
        );
    }

    #[test]
    fn spring_forward_skips_one_am_and_the_run_moves_to_the_end_of_the_gap() {
        let s = london();
        // 2026-03-29: clocks go 01:00 GMT -> 02:00 BST; 01:00 local does not exist.
        let slot = s.next_after(ts("2026-03-28T12:00:00Z"));
        assert_eq!(slot, ts("2026-03-29T01:00:00Z"));
        assert_eq!(s.local(slot).time(), Time::constant(2, 0, 0, 0));
        // The day is not lost and the next night is normal again.
        assert_eq!(s.next_after(slot), ts("2026-03-30T00:00:00Z"));
    }

    #[test]
    fn fall_back_repeats_one_am_and_the_run_happens_once() {
        let s = london();
        // 2026-10-25: clocks go 02:00 BST -> 01:00 GMT; 01:00 local happens twice.
        let first = s.next_after(ts("2026-10-24T12:00:00Z"));
        assert_eq!(first, ts("2026-10-25T00:00:00Z"));
        // After the first 01:00 the next run is the next night, not the repeated hour.
        let next = s.next_after(first);
        assert_eq!(next, ts("2026-10-26T01:00:00Z"));
        // Every night of the two transition weeks has exactly one run.
        let mut at = s.next_after(ts("2026-10-20T12:00:00Z"));
        let mut days = Vec::new();
        while at < ts("2026-11-01T12:00:00Z") {
            days.push(s.local(at).date());
            at = s.next_after(at);
        }
        let mut unique = days.clone();
        unique.dedup();
        assert_eq!(days, unique);
        // 21 October to 1 November: twelve nights, twelve runs.
        assert_eq!(days.len(), 12);
    }

    #[test]
    fn a_machine_down_at_one_am_catches_up_once() {
        let s = london();
        let last = Some(ts("2026-01-10T01:00:05Z"));
        // Down from before 01:00 on the 11th until 09:00: the 11th's run is owed.
        assert!(s.is_due(ts("2026-01-11T09:00:00Z"), last));
        // Once the catch-up run started, nothing more is owed until the next night.
        let caught_up = Some(ts("2026-01-11T09:00:01Z"));
        assert!(!s.is_due(ts("2026-01-11T15:00:00Z"), caught_up));
        assert!(s.is_due(ts("2026-01-12T01:00:00Z"), caught_up));
        // A scheduler that never ran owes nothing until its first slot.
        assert!(!s.is_due(ts("2026-01-11T09:00:00Z"), None));
    }

    #[test]
    fn settings_errors_name_the_key() {
        let bad_time = SyncSettings {
            time: "1am".into(),
            time_zone: None,
        };
        assert!(Schedule::from_settings(&bad_time)
            .unwrap_err()
            .starts_with("time:"));
        let bad_zone = SyncSettings {
            time: "01:00".into(),
            time_zone: Some("Mars/Base".into()),
        };
        assert!(Schedule::from_settings(&bad_zone)
            .unwrap_err()
            .starts_with("time_zone:"));
    }
}
