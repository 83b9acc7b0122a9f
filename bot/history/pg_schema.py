"""The PostgreSQL history schema: numbered migrations, each applied once and in order."""

from __future__ import annotations

from typing import Any

# pg_advisory_xact_lock key ("whis"): serialises migrations when several workers, or
# several instances, start at once. Held only for the migrating transaction.
ADVISORY_LOCK_KEY = 0x77686973

VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""

# Append new migrations; never edit one that has shipped.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
CREATE TABLE messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation TEXT NOT NULL,
    sender TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    text TEXT NOT NULL,
    sources JSONB NOT NULL DEFAULT '[]',
    message_sid TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    -- one question and one answer per Twilio MessageSid: redelivery stores nothing twice
    UNIQUE (message_sid, role)
);
-- "the last N turns of this conversation" and pruning walk this index backwards
CREATE INDEX messages_by_conversation ON messages (conversation, id DESC);
CREATE INDEX messages_by_sender ON messages (sender);
CREATE INDEX messages_by_time ON messages (created_at) WHERE role = 'user';

CREATE TABLE deliveries (
    message_sid TEXT PRIMARY KEY,
    conversation TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    reply TEXT NOT NULL DEFAULT '',
    owner TEXT NOT NULL DEFAULT '',
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX deliveries_by_conversation ON deliveries (conversation);

CREATE TABLE notices (
    sender TEXT NOT NULL,
    kind TEXT NOT NULL,
    sent_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (sender, kind)
);

CREATE TABLE usage (
    sender TEXT NOT NULL,
    day DATE NOT NULL,
    questions INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sender, day)
);
CREATE INDEX usage_by_day ON usage (day);

CREATE TABLE feedback (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sender TEXT NOT NULL,
    conversation TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX feedback_by_time ON feedback (created_at);
""",
    ),
    (
        2,
        """
-- One row per answered question, never pruned: how it was answered and how fast. `forget`
-- anonymises the sender and blanks the (normalised) question.
CREATE TABLE answers (
    message_sid TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    question TEXT NOT NULL,
    kind TEXT NOT NULL,
    backend TEXT NOT NULL,
    fallback_reason TEXT NOT NULL DEFAULT '',
    latency_ms DOUBLE PRECISION,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX answers_by_time ON answers (created_at);
CREATE INDEX answers_by_sender ON answers (sender);

-- First-turn answers keyed by normalised question and knowledge version.
CREATE TABLE answer_cache (
    question TEXT NOT NULL,
    knowledge_version TEXT NOT NULL,
    answer TEXT NOT NULL,
    sources JSONB NOT NULL DEFAULT '[]',
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (question, knowledge_version)
);
CREATE INDEX answer_cache_by_creator ON answer_cache (created_by);
CREATE INDEX answer_cache_by_time ON answer_cache (created_at);

-- Feedback names the exchange it is about; 👍/👎 are ratings.
ALTER TABLE feedback
    ADD COLUMN rating TEXT NOT NULL DEFAULT '',
    ADD COLUMN message_sid TEXT NOT NULL DEFAULT '',
    ADD COLUMN question TEXT NOT NULL DEFAULT '',
    ADD COLUMN answer TEXT NOT NULL DEFAULT '';
CREATE INDEX feedback_by_sender ON feedback (sender);
""",
    ),
    (
        3,
        """
-- Claims prune deliveries in bounded steps from the oldest row: ids past their window,
-- reply text past its own (the partial index skips rows already blanked).
CREATE INDEX deliveries_by_time ON deliveries (updated_at);
CREATE INDEX deliveries_with_reply ON deliveries (updated_at) WHERE reply <> '';
""",
    ),
    (
        4,
        """
-- The collections each exchange's answer could draw from (bot/readers.py).
ALTER TABLE messages ADD COLUMN readers TEXT NOT NULL DEFAULT '';
""",
    ),
)

LATEST_VERSION = MIGRATIONS[-1][0]


def apply_migrations(conn: Any) -> int:
    """Apply the missing migrations on `conn` (a psycopg2 connection) and commit, under an
    advisory lock so that workers starting together apply each once; returns the version
    found before."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        cur.execute(VERSION_TABLE)
        cur.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        found = cur.fetchone()[0]
        for version, sql in MIGRATIONS:
            if version > found:
                cur.execute(sql)
                cur.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
    conn.commit()
    return found
