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
//!
//! A run may instead *extend* the checkpoint it was given (`Checkpoint::extends`): its
//! bytes are kept after that one's, as a part of their own, and the next run is handed
//! them all, one after the other. A source whose state is large and changes a little
//! each run (the csv plugin's file texts) writes its night's changes, not the whole.

use roster_core::sdk::CheckpointBytes;
use rusqlite::blob::ZeroBlob;
use rusqlite::{params, Connection, OptionalExtension, Transaction, MAIN_DB};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    /// The memory it is read into (a sealed memfd on Linux, see `roster_core::handover`).
    #[error("memory for the last run's checkpoint: {0}")]
    Memory(#[from] std::io::Error),
}

/// The checkpoint kept for `source` under `context`, if there is one: its bytes, then
/// those of each run that extended it, in memory the plugin can take without a copy.
pub fn load(
    conn: &Connection,
    source: &str,
    context: &str,
) -> Result<Option<CheckpointBytes>, LoadError> {
    let found = conn
        .query_row(
            "SELECT rowid, length(checkpoint) FROM source_checkpoints
             WHERE source = ?1 AND context = ?2",
            params![source, context],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, usize>(1)?)),
        )
        .optional()?;
    let Some(base) = found else {
        return Ok(None);
    };
    let mut parts = conn.prepare(
        "SELECT rowid, length(bytes) FROM source_checkpoint_parts WHERE source = ?1 ORDER BY part",
    )?;
    let parts = parts
        .query_map([source], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, usize>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // Read straight into its buffer: selected as a value, SQLite would first copy a file
    // source's tens of MiB into one of its own.
    let size = base.1 + parts.iter().map(|(_, size)| size).sum::<usize>();
    let checkpoint = CheckpointBytes::filled(size, |checkpoint| {
        let mut at = 0;
        for (table, column, (row, size)) in
            std::iter::once((c"source_checkpoints", c"checkpoint", base)).chain(
                parts
                    .into_iter()
                    .map(|part| (c"source_checkpoint_parts", c"bytes", part)),
            )
        {
            let blob = conn.blob_open(MAIN_DB, table, column, row, true)?;
            blob.read_at_exact(&mut checkpoint[at..at + size], 0)?;
            at += size;
        }
        Ok::<_, LoadError>(())
    })?;
    Ok(Some(checkpoint))
}

/// Keep `checkpoint` as `source`'s, after the kept one when it `extends` it (nothing to
/// add: the kept one stays as it is); or forget the old one when the run sent none.
pub fn keep(
    tx: &Transaction<'_>,
    source: &str,
    context: &str,
    checkpoint: Option<&[u8]>,
    extends: bool,
) -> rusqlite::Result<()> {
    if extends && checkpoint.is_some_and(<[u8]>::is_empty) {
        return Ok(());
    }
    let Some(checkpoint) = checkpoint else {
        tx.execute(
            "DELETE FROM source_checkpoint_parts WHERE source = ?1",
            [source],
        )?;
        tx.execute("DELETE FROM source_checkpoints WHERE source = ?1", [source])?;
        return Ok(());
    };
    // Room for it first, then the bytes written into it: bound as a parameter, SQLite
    // would take a copy of a file source's tens of MiB.
    let size = i32::try_from(checkpoint.len())
        .map_err(|_| rusqlite::Error::ToSqlConversionFailure("a checkpoint over 2 GiB".into()))?;
    let (table, column, row) = if extends {
        // The run was handed this source's checkpoint under `context` (the caller checks).
        tx.execute(
            "INSERT INTO source_checkpoint_parts (source, part, bytes)
             SELECT ?1, coalesce(max(part), 0) + 1, ?2 FROM source_checkpoint_parts WHERE source = ?1",
            params![source, ZeroBlob(size)],
        )?;
        (c"source_checkpoint_parts", c"bytes", tx.last_insert_rowid())
    } else {
        tx.execute(
            "DELETE FROM source_checkpoint_parts WHERE source = ?1",
            [source],
        )?;
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
        (c"source_checkpoints", c"checkpoint", row)
    };
    let mut blob = tx.blob_open(MAIN_DB, table, column, row, false)?;
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
