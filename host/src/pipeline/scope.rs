//! Which of a source's records an event takes: one school (optional) and a set of terms
//! (optional). Terms are matched by id, then by name, because Clever rebuilds term ids.

use std::collections::HashSet;

use roster_core::record::{School, Term};

#[derive(Debug, Default)]
pub struct Scope {
    school: Option<String>,
    terms: Option<Vec<String>>,
    /// Source ids of the schools and terms that matched.
    pub schools_in: HashSet<String>,
    pub terms_in: HashSet<String>,
    /// Selectors that have matched something, to report the ones that never did.
    matched_selectors: HashSet<String>,
    pub seen_schools: Vec<String>,
    pub seen_terms: Vec<String>,
}

impl Scope {
    pub fn new(school: Option<String>, terms: Option<Vec<String>>) -> Self {
        Scope {
            school,
            terms,
            ..Default::default()
        }
    }

    pub fn filters_terms(&self) -> bool {
        self.terms.is_some()
    }

    pub fn filters_schools(&self) -> bool {
        self.school.is_some()
    }

    pub fn take_school(&mut self, school: &School) -> bool {
        self.seen_schools.push(school.name.clone());
        let Some(wanted) = &self.school else {
            self.schools_in.insert(school.source_id.clone());
            return true;
        };
        let hit = [
            Some(&school.source_id),
            Some(&school.name),
            school.sis_id.as_ref(),
        ]
        .into_iter()
        .flatten()
        .any(|value| value.eq_ignore_ascii_case(wanted));
        if hit {
            self.matched_selectors.insert(wanted.clone());
            self.schools_in.insert(school.source_id.clone());
        }
        hit
    }

    pub fn take_term(&mut self, term: &Term) -> bool {
        self.seen_terms.push(term.name.clone());
        let Some(wanted) = &self.terms else {
            self.terms_in.insert(term.source_id.clone());
            return true;
        };
        let by_id = wanted.iter().find(|w| **w == term.source_id);
        let by_name = wanted
            .iter()
            .find(|w| w.trim().eq_ignore_ascii_case(term.name.trim()));
        match by_id.or(by_name) {
            Some(selector) => {
                self.matched_selectors.insert(selector.clone());
                self.terms_in.insert(term.source_id.clone());
                true
            }
            None => false,
        }
    }

    /// A class is in scope when its school and term are (or are not filtered).
    pub fn takes_class(&self, school_id: Option<&str>, term_id: Option<&str>) -> bool {
        let school_ok =
            !self.filters_schools() || school_id.is_some_and(|id| self.schools_in.contains(id));
        let term_ok = !self.filters_terms() || term_id.is_some_and(|id| self.terms_in.contains(id));
        school_ok && term_ok
    }

    /// A person is in scope unless schools are filtered and none of theirs matched.
    /// People without schools (parents, usually) are always in scope.
    pub fn takes_person(&self, school_ids: &[String]) -> bool {
        !self.filters_schools()
            || school_ids.is_empty()
            || school_ids.iter().any(|id| self.schools_in.contains(id))
    }

    /// A run that continues from a checkpoint sends only changed schools and terms: the
    /// ones a complete run took (`schools` and `terms`, the source's in the roster) are
    /// in scope, and every selector matched then.
    pub fn resume(&mut self, schools: Vec<String>, terms: Vec<String>) {
        self.schools_in.extend(schools);
        self.terms_in.extend(terms);
        let selectors = self.school.iter().chain(self.terms.iter().flatten());
        self.matched_selectors.extend(selectors.cloned());
    }

    /// Selectors from the event that matched nothing: almost always a typo.
    pub fn unmatched(&self) -> Vec<String> {
        self.school
            .iter()
            .chain(self.terms.iter().flatten())
            .filter(|s| !self.matched_selectors.contains(*s))
            .cloned()
            .collect()
    }
}
