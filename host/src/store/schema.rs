//! The roster schema and its migrations. `PRAGMA user_version` records how many
//! migrations a database has had; each migration runs once, in order, in a transaction.
//! Never edit a released migration: append a new one.

pub const MIGRATIONS: &[&str] = &[
    // 1: the roster.
    r#"
    CREATE TABLE schools (
        id            INTEGER PRIMARY KEY,
        source        TEXT NOT NULL,
        source_id     TEXT NOT NULL,
        name          TEXT NOT NULL,
        sis_id        TEXT,
        school_number TEXT,
        state_id      TEXT,
        attributes    TEXT,
        active        INTEGER NOT NULL DEFAULT 1,
        fingerprint   INTEGER NOT NULL,
        UNIQUE (source, source_id)
    );
    CREATE TABLE terms (
        id          INTEGER PRIMARY KEY,
        source      TEXT NOT NULL,
        source_id   TEXT NOT NULL,
        school_id   INTEGER REFERENCES schools (id),
        name        TEXT NOT NULL,
        start_date  TEXT,
        end_date    TEXT,
        attributes  TEXT,
        active      INTEGER NOT NULL DEFAULT 1,
        fingerprint INTEGER NOT NULL,
        UNIQUE (source, source_id)
    );
    CREATE TABLE classes (
        id                      INTEGER PRIMARY KEY,
        source                  TEXT NOT NULL,
        source_id               TEXT NOT NULL,
        school_id               INTEGER REFERENCES schools (id),
        term_id                 INTEGER REFERENCES terms (id),
        name                    TEXT NOT NULL,
        group_name              TEXT,
        appointments_per_parent INTEGER,
        subject                 TEXT,
        course                  TEXT,
        period                  TEXT,
        sis_id                  TEXT,
        attributes              TEXT,
        active                  INTEGER NOT NULL DEFAULT 1,
        fingerprint             INTEGER NOT NULL,
        UNIQUE (source, source_id)
    );
    CREATE INDEX classes_term ON classes (term_id);
    CREATE TABLE contacts (
        id             INTEGER PRIMARY KEY,
        role           TEXT NOT NULL CHECK (role IN ('student', 'teacher', 'parent', 'staff')),
        first_name     TEXT NOT NULL,
        last_name      TEXT NOT NULL,
        middle_name    TEXT,
        email          TEXT,
        phone          TEXT,
        birth_date     TEXT,
        grade          TEXT,
        security_value TEXT,
        room           TEXT,
        access_level   TEXT NOT NULL CHECK (access_level IN ('customer', 'appointment_viewer',
                           'appointment_maker', 'resource_admin', 'event_admin', 'admin')),
        attributes     TEXT,
        active         INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX contacts_email ON contacts (lower(email)) WHERE email IS NOT NULL;
    -- Which source supplies a contact, under which key. A contact linked from two sources
    -- has two rows; it is active while any of them is.
    CREATE TABLE contact_sources (
        contact_id  INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
        source      TEXT NOT NULL,
        source_id   TEXT NOT NULL,
        active      INTEGER NOT NULL DEFAULT 1,
        fingerprint INTEGER NOT NULL,
        PRIMARY KEY (source, source_id)
    ) WITHOUT ROWID;
    CREATE INDEX contact_sources_contact ON contact_sources (contact_id);
    CREATE TABLE contact_ids (
        contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
        source     TEXT NOT NULL,
        kind       TEXT NOT NULL,
        value      TEXT NOT NULL,
        UNIQUE (source, kind, value)
    );
    CREATE INDEX contact_ids_contact ON contact_ids (contact_id);
    CREATE INDEX contact_ids_value ON contact_ids (kind, value);
    CREATE TABLE contact_schools (
        contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
        school_id  INTEGER NOT NULL REFERENCES schools (id),
        PRIMARY KEY (contact_id, school_id)
    ) WITHOUT ROWID;
    CREATE TABLE class_teachers (
        class_id   INTEGER NOT NULL REFERENCES classes (id) ON DELETE CASCADE,
        contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
        is_primary INTEGER NOT NULL DEFAULT 0,
        source     TEXT NOT NULL,
        active     INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (class_id, contact_id)
    ) WITHOUT ROWID;
    CREATE INDEX class_teachers_contact ON class_teachers (contact_id);
    CREATE TABLE enrollments (
        class_id   INTEGER NOT NULL REFERENCES classes (id) ON DELETE CASCADE,
        contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
        source     TEXT NOT NULL,
        active     INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (class_id, contact_id)
    ) WITHOUT ROWID;
    CREATE INDEX enrollments_contact ON enrollments (contact_id);
    CREATE TABLE relationships (
        parent_id    INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
        student_id   INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
        relationship TEXT,
        type         TEXT,
        source       TEXT NOT NULL,
        active       INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (parent_id, student_id)
    ) WITHOUT ROWID;
    CREATE INDEX relationships_student ON relationships (student_id);
    CREATE TABLE events (
        id           INTEGER PRIMARY KEY,
        name         TEXT NOT NULL UNIQUE,
        source       TEXT,
        school       TEXT,
        terms        TEXT,
        sync_enabled INTEGER NOT NULL DEFAULT 0,
        created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
    );
    -- A class attached to an event. Deleting the row removes the class from the event
    -- until the next sync brings it back; `hidden` survives every sync.
    CREATE TABLE event_classes (
        event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
        class_id INTEGER NOT NULL REFERENCES classes (id) ON DELETE CASCADE,
        hidden   INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (event_id, class_id)
    ) WITHOUT ROWID;
    CREATE INDEX event_classes_class ON event_classes (class_id);
    CREATE TABLE sync_runs (
        id          INTEGER PRIMARY KEY,
        event_id    INTEGER REFERENCES events (id) ON DELETE SET NULL,
        kind        TEXT NOT NULL DEFAULT 'import',
        started_at  TEXT NOT NULL,
        finished_at TEXT,
        status      TEXT NOT NULL,
        summary     TEXT,
        error       TEXT
    );
    CREATE INDEX sync_runs_event ON sync_runs (event_id, started_at);
    "#,
    // 2: what a parent may see of an event: attached, shown, active classes.
    r#"
    CREATE VIEW visible_event_classes AS
    SELECT ec.event_id, ec.class_id
    FROM event_classes ec JOIN classes c ON c.id = ec.class_id
    WHERE ec.hidden = 0 AND c.active = 1;
    "#,
    // 3: the dedupe stage's name-and-birth-date match for students.
    r#"
    CREATE INDEX contacts_student_match ON contacts (birth_date, lower(last_name), lower(first_name))
        WHERE role = 'student';
    "#,
    // 4: identifiers keyed by what they are. One B-tree holds the rows and refuses a
    // duplicate (source, kind, value); keyed (kind, value, source), it also answers the
    // lookups by (kind, value) that had an index of their own. A district's Clever import
    // writes ~10 identifiers per person, and each B-tree less is a random write less.
    r#"
    CREATE TABLE contact_ids_keyed (
        contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
        source     TEXT NOT NULL,
        kind       TEXT NOT NULL,
        value      TEXT NOT NULL,
        PRIMARY KEY (kind, value, source)
    ) WITHOUT ROWID;
    -- In key order, the rows append: a third less time for random ids than unsorted.
    INSERT INTO contact_ids_keyed (contact_id, source, kind, value)
        SELECT contact_id, source, kind, value FROM contact_ids ORDER BY kind, value, source;
    DROP TABLE contact_ids;
    ALTER TABLE contact_ids_keyed RENAME TO contact_ids;
    CREATE INDEX contact_ids_contact ON contact_ids (contact_id);
    "#,
    // 5: where each source's next run can continue from (pipeline/checkpoint.rs).
    r#"
    CREATE TABLE source_checkpoints (
        source     TEXT PRIMARY KEY,
        context    TEXT NOT NULL,
        checkpoint BLOB NOT NULL
    );
    "#,
    // 6: what later runs kept after a source's checkpoint (Checkpoint::extends), in order.
    r#"
    CREATE TABLE source_checkpoint_parts (
        source TEXT NOT NULL REFERENCES source_checkpoints (source) ON DELETE CASCADE,
        part   INTEGER NOT NULL,
        bytes  BLOB NOT NULL,
        PRIMARY KEY (source, part)
    );
    "#,
    // 7: the contacts' CHECKs as comparisons, the same rule. For `x IN ('a', 'b', 'c')`
    // SQLite builds a temporary B-tree of the list each time a statement checking it
    // runs: every contact inserted, and every update of a role, paid for two (at nyc, 3
    // million of them). The table's text is edited in place (SQLite's documented way to
    // change a CHECK: the rows already satisfy it), then the schema reloaded; the empty
    // table after it makes other connections reload theirs too.
    r#"
    PRAGMA writable_schema = ON;
    UPDATE sqlite_schema
       SET sql = replace(replace(sql,
           'CHECK (role IN (''student'', ''teacher'', ''parent'', ''staff''))',
           'CHECK (role = ''student'' OR role = ''teacher'' OR role = ''parent'' OR role = ''staff'')'),
           'CHECK (access_level IN (''customer'', ''appointment_viewer'',' || char(10) ||
               '                           ''appointment_maker'', ''resource_admin'', ''event_admin'', ''admin''))',
           'CHECK (access_level = ''customer'' OR access_level = ''appointment_viewer''' || char(10) ||
               '                           OR access_level = ''appointment_maker'' OR access_level = ''resource_admin''' || char(10) ||
               '                           OR access_level = ''event_admin'' OR access_level = ''admin'')')
     WHERE type = 'table' AND name = 'contacts';
    PRAGMA writable_schema = RESET;
    CREATE TABLE schema_reloaded (x);
    DROP TABLE schema_reloaded;
    "#,
    // 8: an enrollment's and a class teacher's source is its class's: a source's links
    // name its own classes (`classes` is keyed by source and source id, and a class never
    // changes source), so the column only repeated it — 14 bytes of a bench district's
    // 31 in every enrollment. Without it the table has half the pages, and a night's
    // changes, scattered over all of them, touch half as many. Rebuilt in key order.
    r#"
    CREATE TABLE enrollments_by_class (
        class_id   INTEGER NOT NULL REFERENCES classes (id) ON DELETE CASCADE,
        contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
        active     INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (class_id, contact_id)
    ) WITHOUT ROWID;
    INSERT INTO enrollments_by_class (class_id, contact_id, active)
        SELECT class_id, contact_id, active FROM enrollments ORDER BY class_id, contact_id;
    DROP TABLE enrollments;
    ALTER TABLE enrollments_by_class RENAME TO enrollments;
    CREATE INDEX enrollments_contact ON enrollments (contact_id);
    CREATE TABLE class_teachers_by_class (
        class_id   INTEGER NOT NULL REFERENCES classes (id) ON DELETE CASCADE,
        contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
        is_primary INTEGER NOT NULL DEFAULT 0,
        active     INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (class_id, contact_id)
    ) WITHOUT ROWID;
    INSERT INTO class_teachers_by_class (class_id, contact_id, is_primary, active)
        SELECT class_id, contact_id, is_primary, active FROM class_teachers
        ORDER BY class_id, contact_id;
    DROP TABLE class_teachers;
    ALTER TABLE class_teachers_by_class RENAME TO class_teachers;
    CREATE INDEX class_teachers_contact ON class_teachers (contact_id);
    "#,
    // 9: a contact one source alone supplies carries that source's fingerprint itself,
    // and its `contact_sources` row says so with a fingerprint of 0 (which `apply` never
    // makes). A changed person's update then writes the contact's row alone, which it
    // rewrites anyway: a night's 30,000 changed people at nyc no longer also rewrite
    // their `contact_sources` rows, scattered over three fifths of that table's pages.
    // A contact two sources supply keeps one fingerprint per source, as before.
    r#"
    ALTER TABLE contacts ADD COLUMN fingerprint INTEGER;
    CREATE TEMP TABLE sole_source AS
        SELECT contact_id, min(fingerprint) AS fingerprint FROM contact_sources
        GROUP BY contact_id HAVING count(*) = 1;
    UPDATE contacts SET fingerprint = s.fingerprint
        FROM sole_source s WHERE s.contact_id = contacts.id;
    UPDATE contact_sources SET fingerprint = 0
        WHERE contact_id IN (SELECT contact_id FROM sole_source);
    DROP TABLE sole_source;
    "#,
];
