//! The Events API feed (NOTES §8). The served district only changes through
//! [`Timeline::change`], which diffs the old and the new district as each API family renders
//! them — so an event's object is exactly what the lists serve — and appends one event per
//! created, updated or deleted object to that family's feed.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::district::District;
use crate::render::{self, Family};

/// The collections whose changes are reported, as (list resource, event record type), in
/// dependency order: what an object refers to comes before it. Creates and updates go out
/// in this order and deletes in reverse, so a client applying events one by one never holds
/// a reference to an object it has not got (yet, or any more).
const V2_RESOURCES: &[(&str, &str)] = &[
    ("districts", "districts"),
    ("schools", "schools"),
    ("terms", "terms"),
    ("courses", "courses"),
    ("students", "students"),
    ("teachers", "teachers"),
    ("school_admins", "schooladmins"),
    ("district_admins", "districtadmins"),
    ("contacts", "contacts"),
    ("sections", "sections"),
];
const V3_RESOURCES: &[(&str, &str)] = &[
    ("districts", "districts"),
    ("schools", "schools"),
    ("terms", "terms"),
    ("courses", "courses"),
    ("users", "users"),
    ("sections", "sections"),
];

/// One event as served, with what paging and `record_type` filtering look at beside it.
pub struct Event {
    pub id: String,
    pub record_type: &'static str,
    /// `{"id", "type", "created", "data": {"object", "previous_attributes"?}}`.
    pub body: Value,
}

/// The district served now and, per API family, the events that led to it, oldest first.
/// Both families' events are rendered when the change happens, so a request only copies
/// its page.
pub struct Timeline {
    district: Arc<District>,
    v2: VecDeque<Event>,
    v3: VecDeque<Event>,
    /// The first 8 hex digits of every event id (seconds since 1970), as in Clever's
    /// ObjectIDs; a counter follows, so ids are unique and sort in issue order.
    epoch: u32,
    issued: u64,
}

impl Timeline {
    pub fn new(district: District) -> Timeline {
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        Timeline {
            district: Arc::new(district),
            v2: VecDeque::new(),
            v3: VecDeque::new(),
            epoch: epoch as u32,
            issued: 0,
        }
    }

    pub fn district(&self) -> &Arc<District> {
        &self.district
    }

    /// Serve `new` from now on, with one event per object that differs from the district
    /// served so far.
    pub fn change(&mut self, new: District) {
        let new = Arc::new(new);
        let created = rfc3339(SystemTime::now());
        for family in [Family::V3, Family::V2] {
            for change in diff(&self.district, &new, family) {
                self.issued += 1;
                let id = format!("{:08x}{:016x}", self.epoch, self.issued);
                let body = change.event(&id, &created);
                let feed = match family {
                    Family::V2 => &mut self.v2,
                    Family::V3 => &mut self.v3,
                };
                feed.push_back(Event {
                    id,
                    record_type: change.record_type,
                    body,
                });
            }
        }
        self.district = new;
    }

    /// Forget the `count` oldest events of each family's feed.
    pub fn expire(&mut self, count: usize) {
        for feed in [&mut self.v2, &mut self.v3] {
            feed.drain(..count.min(feed.len()));
        }
    }

    pub fn event(&self, family: Family, id: &str) -> Option<&Event> {
        let feed = self.feed(family);
        feed.binary_search_by(|e| e.id.as_str().cmp(id))
            .ok()
            .map(|i| &feed[i])
    }

    /// Up to `limit` events of `types` (all when empty), oldest first: the first ones after
    /// `after`, or with `before` (an id or `last`, the end of the feed) the last ones before
    /// it. `Err` names an `after`/`before` id the feed does not hold.
    pub fn page<'a, 'q>(
        &'a self,
        family: Family,
        after: Option<&'q str>,
        before: Option<&'q str>,
        limit: usize,
        types: &[String],
    ) -> Result<Vec<&'a Event>, &'q str> {
        let feed = self.feed(family);
        // Ids are fixed-width hex, so their string order is their issue order.
        let index = |id: &'q str| {
            feed.binary_search_by(|e| e.id.as_str().cmp(id))
                .map_err(|_| id)
        };
        let start = after.map(&index).transpose()?.map_or(0, |i| i + 1);
        let end = match before {
            None | Some("last") => feed.len(),
            Some(id) => index(id)?,
        };
        let wanted = |e: &&Event| types.is_empty() || types.iter().any(|t| t == e.record_type);
        let range = feed.range(start..end.max(start)).filter(wanted);
        Ok(if before.is_some() {
            let mut page: Vec<&Event> = range.rev().take(limit).collect();
            page.reverse();
            page
        } else {
            range.take(limit).collect()
        })
    }

    fn feed(&self, family: Family) -> &VecDeque<Event> {
        match family {
            Family::V2 => &self.v2,
            Family::V3 => &self.v3,
        }
    }
}

#[derive(Clone, Copy)]
enum Action {
    Created,
    Updated,
    Deleted,
}

/// One object's difference, before it has an id.
struct Change {
    record_type: &'static str,
    action: Action,
    /// The new state, or for a delete the last known one.
    object: Value,
    previous: Option<Map<String, Value>>,
}

impl Change {
    fn event(&self, id: &str, created: &str) -> Value {
        let action = match self.action {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
        };
        // Real payloads nest `previous_attributes` in `data`, although the specs put it
        // beside `data` (NOTES §8, spec vs. reality 1).
        let mut data = json!({"object": self.object});
        if let Some(previous) = &self.previous {
            data["previous_attributes"] = Value::Object(previous.clone());
        }
        json!({"id": id, "type": format!("{}.{action}", self.record_type), "created": created, "data": data})
    }
}

/// Every object that differs between `old` and `new` as `family` renders them, in feed
/// order: creates and updates by collection in dependency order, then deletes in reverse.
fn diff(old: &District, new: &District, family: Family) -> Vec<Change> {
    let resources = match family {
        Family::V2 => V2_RESOURCES,
        Family::V3 => V3_RESOURCES,
    };
    let mut changes = Vec::new();
    let mut deletes = Vec::new();
    for &(resource, record_type) in resources {
        let before = render::collection(old, family, resource).unwrap_or_default();
        let after = render::collection(new, family, resource).unwrap_or_default();
        let before_by_id: HashMap<&str, &Value> =
            before.iter().map(|(id, v)| (id.as_str(), v)).collect();
        let after_by_id: HashMap<&str, &Value> =
            after.iter().map(|(id, v)| (id.as_str(), v)).collect();
        let change = |action, object: &Value, previous| Change {
            record_type,
            action,
            object: object.clone(),
            previous,
        };
        for (id, object) in &after {
            match before_by_id.get(id.as_str()) {
                None => changes.push(change(Action::Created, object, None)),
                Some(&was) if was != object => {
                    let previous = previous_attributes(was, object);
                    changes.push(change(Action::Updated, object, Some(previous)));
                }
                Some(_) => {}
            }
        }
        let gone = before
            .iter()
            .filter(|(id, _)| !after_by_id.contains_key(id.as_str()))
            .map(|(_, object)| change(Action::Deleted, object, None));
        deletes.push(gone.collect::<Vec<_>>());
    }
    changes.extend(deletes.into_iter().rev().flatten());
    changes
}

/// The old values of the top-level fields that differ, whole (a section's entire old
/// `students` list, as Clever sends it). A field the old object lacked is `null`, so that
/// every changed field is named.
fn previous_attributes(old: &Value, new: &Value) -> Map<String, Value> {
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else {
        return Map::new();
    };
    let changed = new
        .iter()
        .filter(|(key, value)| old.get(*key) != Some(*value))
        .map(|(key, _)| (key.clone(), old.get(key).cloned().unwrap_or(Value::Null)));
    let dropped = old
        .iter()
        .filter(|(key, _)| !new.contains_key(*key))
        .map(|(key, value)| (key.clone(), value.clone()));
    changed.chain(dropped).collect()
}

/// `time` as RFC 3339 in UTC with milliseconds, Clever's form (`2017-08-09T02:16:28.224Z`).
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let (hour, minute, second) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    let millis = since.subsec_millis();
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

/// The Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`), so
/// the mock needs no date library for one timestamp.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let (era, day_of_era) = (z / 146_097, z % 146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // March = 0
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = |ms: u64| rfc3339(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        // The `created` of the recorded event in NOTES §8.
        assert_eq!(at(1_502_244_988_224), "2017-08-09T02:16:28.224Z");
        assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(1_767_225_599_999), "2025-12-31T23:59:59.999Z");
    }
}
