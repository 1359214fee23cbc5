//! Contacts in students.csv have no id of their own (at most a `Contact_sis_id`): one row
//! per student–contact pair, so a parent of two siblings appears on two rows. Rows are
//! joined into one contact when they share a key, and the contact's id is derived from
//! its best key, so it stays the same from one export to the next.
//!
//! Keys of a row (all it has):
//! - `sis:<Contact_sis_id>`;
//! - `email:<email, lowercased>|<name>` — the name too, so that two parents sharing a
//!   family address stay two people;
//! - `phone:<digits without extension and leading 1>|<name>` (at least 7 digits);
//! - only when the row has none of those: `name:<name>|student:<Student_id>` — a name
//!   alone never joins rows of different students.
//!
//! `<name>` is `Contact_name` lowercased, `Last, First` turned into `first last`,
//! punctuation dropped and spaces collapsed. The contact's id is `contact:` and 16 hex
//! digits of the FNV-1a hash of its best key: a `sis:` key, else the smallest `email:`
//! key, else the smallest `phone:` key, else its `name:` key.

use std::collections::HashMap;

/// The contact fields of one students.csv row.
#[derive(Debug, Clone, Default)]
pub struct ContactRow {
    pub student: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub phone_type: Option<String>,
    pub contact_type: Option<String>,
    pub relationship: Option<String>,
    pub sis_id: Option<String>,
    /// `file:line` of the row, for messages.
    pub at: String,
}

/// One contact: its id and the rows (indices into the input) that describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub id: String,
    pub rows: Vec<usize>,
}

/// `Contact_name` for comparing: `Lopez, Maria` and ` maria  LOPEZ ` are both `maria lopez`.
pub fn normalise_name(name: &str) -> String {
    let name = match name.split_once(',') {
        Some((last, first)) => format!("{first} {last}"),
        None => name.to_string(),
    };
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                ' '
            }
        })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The digits of a phone number without its extension (`x12`, `ext. 12`, `#12`) and
/// without a leading country code 1; `None` below 7 digits.
pub fn normalise_phone(phone: &str) -> Option<String> {
    let lower = phone.to_lowercase();
    let end = ["ext", "x", "#", ";", ","]
        .iter()
        .filter_map(|marker| lower.find(marker))
        .min()
        .unwrap_or(lower.len());
    let mut digits: String = lower[..end].chars().filter(char::is_ascii_digit).collect();
    if digits.len() == 11 && digits.starts_with('1') {
        digits.remove(0);
    }
    (digits.len() >= 7).then_some(digits)
}

/// The keys of a row, best first within each kind.
pub fn keys(row: &ContactRow) -> Vec<String> {
    let name = normalise_name(&row.name);
    let mut keys = Vec::new();
    if let Some(sis) = row
        .sis_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        keys.push(format!("sis:{sis}"));
    }
    if let Some(email) = row
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        keys.push(format!("email:{}|{name}", email.to_lowercase()));
    }
    if let Some(phone) = row.phone.as_deref().and_then(normalise_phone) {
        keys.push(format!("phone:{phone}|{name}"));
    }
    if keys.is_empty() {
        keys.push(format!("name:{name}|student:{}", row.student));
    }
    keys
}

/// FNV-1a, 64 bits: stable across platforms and Rust versions, unlike `DefaultHasher`.
pub fn fnv1a(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn rank(key: &str) -> u8 {
    match key.split_once(':').map(|(kind, _)| kind) {
        Some("sis") => 0,
        Some("email") => 1,
        Some("phone") => 2,
        _ => 3,
    }
}

/// Joins rows that share a key; contacts come out in the order of their first row.
pub fn group(rows: &[ContactRow]) -> Vec<Contact> {
    let mut parent: Vec<usize> = (0..rows.len()).collect();
    fn root(parent: &mut [usize], mut node: usize) -> usize {
        while parent[node] != node {
            parent[node] = parent[parent[node]];
            node = parent[node];
        }
        node
    }
    let row_keys: Vec<Vec<String>> = rows.iter().map(keys).collect();
    let mut owner: HashMap<&str, usize> = HashMap::new();
    for (index, keys) in row_keys.iter().enumerate() {
        for key in keys {
            match owner.get(key.as_str()) {
                Some(&other) => {
                    let (a, b) = (root(&mut parent, index), root(&mut parent, other));
                    // The earlier row stays the root, so groups keep first-row order.
                    let (keep, join) = if a < b { (a, b) } else { (b, a) };
                    parent[join] = keep;
                }
                None => {
                    owner.insert(key, index);
                }
            }
        }
    }
    let mut groups: Vec<Contact> = Vec::new();
    let mut position: HashMap<usize, usize> = HashMap::new();
    for index in 0..rows.len() {
        let top = root(&mut parent, index);
        let slot = *position.entry(top).or_insert_with(|| {
            groups.push(Contact {
                id: String::new(),
                rows: Vec::new(),
            });
            groups.len() - 1
        });
        groups[slot].rows.push(index);
    }
    for contact in &mut groups {
        let best = contact
            .rows
            .iter()
            .flat_map(|&i| row_keys[i].iter())
            .min_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)))
            .expect("every row has a key");
        contact.id = format!("contact:{:016x}", fnv1a(best));
    }
    groups
}

/// `Contact_name` as (first, last): `Last, First` split at the comma; otherwise the
/// first word is the first name and the rest the last name (`Maria de la Cruz` →
/// `Maria` / `de la Cruz`); a single word is a last name.
pub fn split_name(name: &str) -> (String, String) {
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some((last, first)) = name.split_once(',') {
        let (first, last) = (first.trim(), last.trim());
        if !first.is_empty() && !last.is_empty() {
            return (first.to_string(), last.to_string());
        }
    }
    match name.split_once(' ') {
        Some((first, rest)) => (first.to_string(), rest.to_string()),
        None => (String::new(), name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(student: &str, name: &str, email: &str, phone: &str) -> ContactRow {
        ContactRow {
            student: student.into(),
            name: name.into(),
            email: (!email.is_empty()).then(|| email.into()),
            phone: (!phone.is_empty()).then(|| phone.into()),
            ..Default::default()
        }
    }

    #[test]
    fn names_and_phones() {
        assert_eq!(normalise_name("Lopez, Maria"), "maria lopez");
        assert_eq!(normalise_name("  MARIA   López-Díaz "), "maria lópez díaz");
        assert_eq!(
            normalise_phone("(555) 010-2030 ext. 12").as_deref(),
            Some("5550102030")
        );
        assert_eq!(
            normalise_phone("1-555-010-2030").as_deref(),
            Some("5550102030")
        );
        assert_eq!(
            normalise_phone("555.010.2030x7").as_deref(),
            Some("5550102030")
        );
        assert_eq!(normalise_phone("x123"), None);
        assert_eq!(split_name("Lopez, Maria"), ("Maria".into(), "Lopez".into()));
        assert_eq!(
            split_name("Maria de la Cruz"),
            ("Maria".into(), "de la Cruz".into())
        );
        assert_eq!(split_name("Cher"), ("".into(), "Cher".into()));
    }

    #[test]
    fn siblings_share_a_parent() {
        let rows = [
            row("S1", "Maria Lopez", "Maria@Example.com", ""),
            row("S1", "Jose Lopez", "", "555-010-2030"),
            row("S2", "Lopez, Maria", "maria@example.com ", "555 010 9999"),
            row("S2", "Jose Lopez", "", "(555) 010-2030 x4"),
            // Same family address, another person: not joined.
            row("S2", "Ana Lopez", "maria@example.com", ""),
            // Joined through the phone the third row gave.
            row("S3", "MARIA LOPEZ", "", "15550109999"),
            // Name only: never joined across students.
            row("S1", "Pat Kim", "", ""),
            row("S2", "Pat Kim", "", ""),
        ];
        let groups = group(&rows);
        let rows_of: Vec<Vec<usize>> = groups.iter().map(|g| g.rows.clone()).collect();
        assert_eq!(
            rows_of,
            [vec![0, 2, 5], vec![1, 3], vec![4], vec![6], vec![7]]
        );
        // The id comes from the best key and does not depend on row order.
        assert_eq!(
            groups[0].id,
            format!(
                "contact:{:016x}",
                fnv1a("email:maria@example.com|maria lopez")
            )
        );
        let mut reversed = rows.to_vec();
        reversed.reverse();
        let again = group(&reversed);
        assert!(again
            .iter()
            .any(|g| g.id == groups[0].id && g.rows.len() == 3));
    }

    #[test]
    fn a_sis_id_is_the_best_key() {
        let mut a = row("S1", "Maria Lopez", "m@example.com", "");
        a.sis_id = Some("G-77".into());
        let b = row("S2", "Maria Lopez", "m@example.com", "");
        let groups = group(&[a, b]);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].id, format!("contact:{:016x}", fnv1a("sis:G-77")));
    }
}
