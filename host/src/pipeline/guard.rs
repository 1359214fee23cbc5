//! The mass-deactivation guard: an import or sync that would deactivate too much of what
//! a source had is refused before anything changes. A feed that comes back empty or cut
//! short must never look like a school where everyone left.

use serde::Deserialize;

use super::summary::{EntityName, Summary};

/// `[safety]` in importer.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeactivationGuard {
    /// Refuse when an entity would lose more than this share of its active records…
    #[serde(default = "default_percent")]
    pub max_deactivate_percent: f64,
    /// …counted only once at least this many would go (small rosters change by whole
    /// classes)…
    #[serde(default = "default_min")]
    pub percent_applies_from: u64,
    /// …or more than this many records of one entity, whatever the share.
    #[serde(default = "default_count")]
    pub max_deactivate_count: u64,
}

fn default_percent() -> f64 {
    20.0
}
fn default_min() -> u64 {
    10
}
fn default_count() -> u64 {
    1000
}

impl Default for DeactivationGuard {
    fn default() -> Self {
        DeactivationGuard {
            max_deactivate_percent: default_percent(),
            percent_applies_from: default_min(),
            max_deactivate_count: default_count(),
        }
    }
}

impl DeactivationGuard {
    /// `Some(description)` when the run must be refused. `records` is how many records
    /// the source sent in this run; `None` for a run that continues from a checkpoint,
    /// which sends nothing on a day when nothing changed.
    pub fn check(
        &self,
        before: &[(EntityName, u64)],
        summary: &Summary,
        records: Option<u64>,
    ) -> Option<String> {
        let total_before: u64 = before.iter().map(|(_, n)| n).sum();
        if records == Some(0) && total_before > 0 {
            return Some(format!(
                "everything ({total_before} records): the source returned nothing at all"
            ));
        }
        let mut over = Vec::new();
        for (entity, active) in before {
            let gone = summary.get(*entity).deactivated;
            if gone == 0 {
                continue;
            }
            let percent = 100.0 * gone as f64 / (*active).max(1) as f64;
            let by_share =
                gone >= self.percent_applies_from && percent > self.max_deactivate_percent;
            let by_count = gone > self.max_deactivate_count;
            if by_share || by_count {
                over.push(format!(
                    "{gone} of {active} {} ({percent:.0}%)",
                    entity.label()
                ));
            }
        }
        (!over.is_empty()).then(|| {
            format!(
                "{} — over the limit of {}% (from {} records) or {} records per entity",
                over.join(", "),
                self.max_deactivate_percent,
                self.percent_applies_from,
                self.max_deactivate_count
            )
        })
    }
}

impl DeactivationGuard {
    /// An active count before the run that makes `gone` deactivations pass the share
    /// limit: a base known to be at least this needs counting no further. None is
    /// enough when they are refused by their number anyway: the refusal shows the base.
    pub fn base_enough(&self, gone: u64) -> u64 {
        if self.max_deactivate_percent <= 0.0 || gone > self.max_deactivate_count {
            return u64::MAX;
        }
        // One more than the bound, so that float rounding cannot tip it.
        (100.0 * gone as f64 / self.max_deactivate_percent).ceil() as u64 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_of_enough_passes_the_share_limit() {
        let guard = DeactivationGuard {
            max_deactivate_count: u64::MAX / 2,
            ..DeactivationGuard::default()
        };
        for gone in [10, 51_662, 1_000_000] {
            let enough = guard.base_enough(gone);
            let deactivated = summary(EntityName::Enrollments, gone);
            let with = |base| guard.check(&[(EntityName::Enrollments, base)], &deactivated, None);
            assert!(with(enough).is_none(), "{gone} of {enough}");
            assert!(with(enough - 3).is_some(), "{gone} of {}", enough - 3);
        }
        // Refused by their number, the base is counted to the end: the refusal shows it.
        let default = DeactivationGuard::default();
        assert_eq!(
            default.base_enough(default.max_deactivate_count + 1),
            u64::MAX
        );
    }

    fn summary(entity: EntityName, deactivated: u64) -> Summary {
        let mut summary = Summary::default();
        summary.counts(entity).deactivated = deactivated;
        summary
    }

    #[test]
    fn small_changes_pass_and_large_ones_are_refused() {
        let guard = DeactivationGuard::default();
        let before = [(EntityName::Students, 300)];
        assert!(guard
            .check(&before, &summary(EntityName::Students, 30), Some(1000))
            .is_none());
        let refused = guard
            .check(&before, &summary(EntityName::Students, 120), Some(1000))
            .unwrap();
        assert!(refused.contains("120 of 300 students (40%)"), "{refused}");
    }

    #[test]
    fn a_small_roster_can_lose_a_few_records() {
        let guard = DeactivationGuard::default();
        // One teacher of two is 50%, but only one record.
        assert!(guard
            .check(
                &[(EntityName::Teachers, 2)],
                &summary(EntityName::Teachers, 1),
                Some(10)
            )
            .is_none());
    }

    #[test]
    fn the_absolute_limit_applies_to_big_rosters() {
        let guard = DeactivationGuard::default();
        let before = [(EntityName::Enrollments, 1_000_000)];
        assert!(guard
            .check(&before, &summary(EntityName::Enrollments, 1001), Some(10))
            .is_some());
    }

    #[test]
    fn an_empty_feed_never_deletes() {
        let guard = DeactivationGuard::default();
        let refused = guard
            .check(&[(EntityName::Classes, 3)], &Summary::default(), Some(0))
            .unwrap();
        assert!(refused.contains("returned nothing"), "{refused}");
    }
}
