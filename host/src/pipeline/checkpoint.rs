//! Where a source's next run can continue from: the checkpoint its last applied run sent
//! (`roster_core::record::Checkpoint`), kept in the roster with that run's writes.
//!
//! A checkpoint is only as good as the agreement between the roster and the source's
//! view of it, so it is tied to a *context*: the plugin and its version, the source's
//! config, the event's school and terms, the access defaults and the dedupe policy. A job
//! whose context differs runs in full, and its checkpoint replaces the old one. Every
//! job of a source that keeps checkpoints writes its own (or removes the old one when it
//! sends none) in its transaction, so a checkpoint never outlives the rows it describes,
//! and a failed job leaves the last good one.

use rusqlite::blob::ZeroBlob;
use rusqlite::{params, Connection, OptionalExtension, Transaction, MAIN_DB};

/// The checkpoint kept for `source` under `context`, if there is one.
pub fn load(conn: &Connection, source: &str, context: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    let found = conn
        .query_row(
            "SELECT rowid, length(checkpoint) FROM source_checkpoints
             WHERE source = ?1 AND context = ?2",
            params![source, context],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, usize>(1)?)),
        )
        .optional()?;
    let Some((row, size)) = found else {
        return Ok(None);
    };
    // Read straight into its buffer: selected as a value, SQLite would first copy a file
    // source's tens of MiB into one of its own.
    let blob = conn.blob_open(MAIN_DB, c"source_checkpoints", c"checkpoint", row, true)?;
    let mut checkpoint = vec![0; size];
    blob.read_at_exact(&mut checkpoint, 0)?;
    Ok(Some(checkpoint))
}

/// Keep `checkpoint` as `source`'s, or forget the old one when the run sent none.
pub fn keep(
    tx: &Transaction<'_>,
    source: &str,
    context: &str,
    checkpoint: Option<&[u8]>,
) -> rusqlite::Result<()> {
    let Some(checkpoint) = checkpoint else {
        tx.execute("DELETE FROM source_checkpoints WHERE source = ?1", [source])?;
        return Ok(());
    };
    // Room for it first, then the bytes written into it: bound as a parameter, SQLite
    // would take a copy of a file source's tens of MiB.
    let size = i32::try_from(checkpoint.len())
        .map_err(|_| rusqlite::Error::ToSqlConversionFailure("a checkpoint over 2 GiB".into()))?;
    tx.execute(
        "INSERT INTO source_checkpoints (source, context, checkpoint) VALUES (?1, ?2, ?3)
         ON CONFLICT (source) DO UPDATE SET context = excluded.context, checkpoint = excluded.checkpoint",
        params![source, context, ZeroBlob(size)],
    )?;
    let row: i64 = tx.query_row(
        "SELECT rowid FROM source_checkpoints WHERE source = ?1",
        [source],
        |r| r.get(0),
    )?;
    let mut blob = tx.blob_open(MAIN_DB, c"source_checkpoints", c"checkpoint", row, false)?;
    blob.write_all_at(checkpoint, 0)?;
    Ok(())
}

/// The context a checkpoint is kept under: a digest of everything that shapes what a run
/// writes, so that a change to any of it makes the next run a complete one.
pub fn context(parts: &[&str]) -> String {
    let mut text = String::new();
    for part in parts {
        text.push_str(part);
        text.push('\u{0}');
    }
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(text.as_bytes()))
}
