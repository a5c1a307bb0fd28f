package sqlite

import "database/sql"

// migrateRights creates the tables of the privacy-rights area: support
// tickets and their messages, first-party usage events, export archives
// and data-rights requests. Sealed columns are sealed by the services with
// the owner's key; the store only moves bytes.
func migrateRights(tx *sql.Tx) error {
	return execAll(tx,
		`CREATE TABLE tickets (
			id              TEXT PRIMARY KEY,
			user_id         TEXT NOT NULL,
			subject         BLOB NOT NULL, -- sealed, aad tickets/<id>/subject
			status          TEXT NOT NULL CHECK (status IN ('open','answered','closed')),
			created_at      INTEGER NOT NULL,
			last_message_at INTEGER NOT NULL
		) STRICT`,
		`CREATE INDEX tickets_user ON tickets (user_id, last_message_at DESC, id DESC)`,
		// The staff queue (by status, oldest waiting first) and the
		// support retention job (by last message) both range-scan these.
		`CREATE INDEX tickets_status ON tickets (status, last_message_at, id)`,
		`CREATE INDEX tickets_last ON tickets (last_message_at, id)`,
		`CREATE TABLE ticket_messages (
			id          TEXT PRIMARY KEY,
			ticket_id   TEXT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
			author_id   TEXT NOT NULL,
			author_role TEXT NOT NULL CHECK (author_role IN ('user','support','admin')),
			body        BLOB NOT NULL, -- sealed with the ticket owner's key, aad ticket_messages/<id>/body
			created_at  INTEGER NOT NULL
		) STRICT`,
		`CREATE INDEX ticket_messages_ticket ON ticket_messages (ticket_id, created_at, id)`,
		`CREATE TABLE usage_events (
			id      INTEGER PRIMARY KEY,
			user_id TEXT, -- NULL for anonymous visitors
			kind    TEXT NOT NULL,
			route   TEXT NOT NULL,
			at      INTEGER NOT NULL,
			detail  TEXT NOT NULL DEFAULT '{}'
		) STRICT`,
		`CREATE INDEX usage_events_at ON usage_events (at, id)`,
		`CREATE INDEX usage_events_user ON usage_events (user_id, at) WHERE user_id IS NOT NULL`,
		`CREATE TABLE exports (
			id         TEXT PRIMARY KEY,
			user_id    TEXT NOT NULL,
			status     TEXT NOT NULL CHECK (status IN ('pending','running','ready','failed')),
			bytes      INTEGER NOT NULL DEFAULT 0,
			error      TEXT NOT NULL DEFAULT '',
			created_at INTEGER NOT NULL,
			done_at    INTEGER NOT NULL DEFAULT 0,
			expires_at INTEGER NOT NULL DEFAULT 0
		) STRICT`,
		`CREATE INDEX exports_user ON exports (user_id, created_at DESC, id DESC)`,
		// One export at a time per person, enforced by the database.
		`CREATE UNIQUE INDEX exports_one_active ON exports (user_id) WHERE status IN ('pending','running')`,
		`CREATE INDEX exports_expires ON exports (expires_at) WHERE status IN ('ready','failed')`,
		`CREATE TABLE data_requests (
			id         TEXT PRIMARY KEY,
			user_id    TEXT NOT NULL,
			kind       TEXT NOT NULL CHECK (kind IN ('access','erase','rectify','restrict','object','port','do_not_sell')),
			status     TEXT NOT NULL CHECK (status IN ('open','closed')),
			details    BLOB NOT NULL, -- sealed, aad data_requests/<id>/details
			created_at INTEGER NOT NULL,
			due_at     INTEGER NOT NULL,
			closed_at  INTEGER NOT NULL DEFAULT 0,
			resolution TEXT NOT NULL DEFAULT ''
		) STRICT`,
		`CREATE INDEX data_requests_user ON data_requests (user_id, created_at DESC, id DESC)`,
		`CREATE INDEX data_requests_queue ON data_requests (status, due_at, id)`,
	)
}
