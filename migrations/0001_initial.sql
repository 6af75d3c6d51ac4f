-- flowrt schema, version 1.
--
-- Every tenant-owned table carries tenant_id, its primary key starts with tenant_id, and
-- every index that serves a tenant query starts with tenant_id. The few indexes that do
-- not are for system queries that run before a tenant is known or across all tenants:
-- api_keys.key_hash (authentication), channels.id (webhook routing), and the partial
-- indexes the inbox, outbox and timer workers scan.
--
-- Internal row ids (contacts, inbox, outbox, events, timers, audit_log) are bigint
-- identities; ids shown through the API (tenants, keys, flows, channels, conversations)
-- are text chosen by the application.

CREATE TABLE tenants (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  settings    jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
  tenant_id    text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  id           text NOT NULL,
  name         text NOT NULL DEFAULT '',
  role         text NOT NULL CHECK (role IN ('admin', 'editor', 'agent', 'viewer')),
  key_hash     text NOT NULL,          -- hex SHA-256 of the key; the key itself is never stored
  key_prefix   text NOT NULL DEFAULT '',  -- the first characters, to recognise a key in lists
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  PRIMARY KEY (tenant_id, id)
);
-- Authentication looks a key up before the tenant is known.
CREATE UNIQUE INDEX api_keys_hash ON api_keys (key_hash);
CREATE UNIQUE INDEX api_keys_id ON api_keys (id);

CREATE TABLE secrets (
  tenant_id  text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  name       text NOT NULL,
  value      text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, name)
);

CREATE TABLE flows (
  tenant_id   text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  id          text NOT NULL,
  name        text NOT NULL DEFAULT '',
  draft       jsonb NOT NULL,
  latest_version integer NOT NULL DEFAULT 0,  -- 0: never published
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  deleted_at  timestamptz,                      -- soft delete: versions stay for running conversations
  PRIMARY KEY (tenant_id, id)
);

CREATE TABLE flow_versions (
  tenant_id    text NOT NULL,
  flow_id      text NOT NULL,
  version      integer NOT NULL CHECK (version > 0),
  document     jsonb NOT NULL,
  published_at timestamptz NOT NULL DEFAULT now(),
  published_by text NOT NULL DEFAULT '',
  PRIMARY KEY (tenant_id, flow_id, version),
  FOREIGN KEY (tenant_id, flow_id) REFERENCES flows(tenant_id, id) ON DELETE CASCADE
);

-- Published versions are immutable.
CREATE FUNCTION flow_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'flow versions are immutable (tenant %, flow %, version %)',
    OLD.tenant_id, OLD.flow_id, OLD.version;
END $$;
CREATE TRIGGER flow_versions_no_update BEFORE UPDATE ON flow_versions
  FOR EACH ROW EXECUTE FUNCTION flow_versions_immutable();

CREATE TABLE channels (
  tenant_id  text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  id         text NOT NULL,
  name       text NOT NULL DEFAULT '',
  provider   text NOT NULL,
  config     jsonb NOT NULL DEFAULT '{}'::jsonb,
  secrets    jsonb NOT NULL DEFAULT '{}'::jsonb,
  flow_id    text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, flow_id) REFERENCES flows(tenant_id, id)
);
-- Webhooks name a channel before the tenant is known.
CREATE UNIQUE INDEX channels_id ON channels (id);

-- A contact is one person on one channel (channel_id '': runs started through the API
-- without a channel). Its row is the lock that serialises every turn of its conversations.
CREATE TABLE contacts (
  tenant_id   text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  id          bigint GENERATED ALWAYS AS IDENTITY,
  channel_id  text NOT NULL DEFAULT '',
  external_id text NOT NULL,
  name        text NOT NULL DEFAULT '',
  phone       text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, channel_id, external_id)
);

CREATE TABLE conversations (
  tenant_id     text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  id            text NOT NULL,
  seq           bigint GENERATED ALWAYS AS IDENTITY,  -- creation order, for pagination
  channel_id    text NOT NULL DEFAULT '',
  contact_id    bigint NOT NULL,
  flow_id       text NOT NULL,
  flow_version  integer NOT NULL,
  status        text NOT NULL CHECK (status IN ('active', 'waiting', 'handoff', 'ended', 'failed')),
  node          text NOT NULL DEFAULT '',
  vars          jsonb NOT NULL DEFAULT '{}'::jsonb,
  attempts      integer NOT NULL DEFAULT 0,
  wait_seq      bigint NOT NULL DEFAULT 0,
  handoff_queue text NOT NULL DEFAULT '',
  handoff_note  text NOT NULL DEFAULT '',
  error         text NOT NULL DEFAULT '',
  turns         bigint NOT NULL DEFAULT 0,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  ended_at      timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts(tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, flow_id, flow_version) REFERENCES flow_versions(tenant_id, flow_id, version)
);
-- At most one open conversation per contact: a message goes to it, or starts a new one.
CREATE UNIQUE INDEX conversations_open_per_contact ON conversations (tenant_id, contact_id)
  WHERE status IN ('active', 'waiting', 'handoff');
CREATE INDEX conversations_by_seq ON conversations (tenant_id, seq);
CREATE INDEX conversations_by_status ON conversations (tenant_id, status, seq);
CREATE INDEX conversations_by_queue ON conversations (tenant_id, handoff_queue, seq)
  WHERE status = 'handoff';
CREATE INDEX conversations_by_contact ON conversations (tenant_id, contact_id, seq);

-- The journal of every conversation.
CREATE TABLE events (
  tenant_id       text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  id              bigint GENERATED ALWAYS AS IDENTITY,
  conversation_id text NOT NULL,
  type            text NOT NULL,
  data            jsonb NOT NULL DEFAULT '{}'::jsonb,
  at              timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX events_by_conversation ON events (tenant_id, conversation_id, id);

-- Inbound events, durable before they are processed. `kind` is message, timeout, resume or
-- start; `payload` holds the InboundEvent's fields and the contact's name and phone.
CREATE TABLE inbox (
  id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id           text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  channel_id          text NOT NULL DEFAULT '',  -- '' for timers and API runs without a channel
  provider_message_id text,      -- NULL: the provider gave none, no deduplication
  contact_id          bigint NOT NULL,
  conversation_id     text,      -- set for events aimed at one conversation (timeout, resume, start)
  kind                text NOT NULL CHECK (kind IN ('message', 'timeout', 'resume', 'start')),
  payload             jsonb NOT NULL DEFAULT '{}'::jsonb,
  state               text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
  attempts            integer NOT NULL DEFAULT 0,
  available_at        timestamptz NOT NULL DEFAULT now(),
  error               text NOT NULL DEFAULT '',
  result_conversation text,      -- the conversation the event went to, once processed
  received_at         timestamptz NOT NULL DEFAULT now(),
  processed_at        timestamptz,
  FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts(tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX inbox_dedup ON inbox (tenant_id, channel_id, provider_message_id);
-- Turn processing: the oldest pending row of one contact.
CREATE INDEX inbox_pending_by_contact ON inbox (tenant_id, contact_id, id) WHERE state = 'pending';
-- Workers (all tenants): pending rows in arrival order.
CREATE INDEX inbox_pending ON inbox (id) WHERE state = 'pending';

-- Outbound messages, written in the turn's transaction and delivered at least once.
CREATE TABLE outbox (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id        text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  conversation_id  text NOT NULL,
  channel_id       text NOT NULL DEFAULT '',
  contact_id       bigint NOT NULL,
  payload          jsonb NOT NULL,   -- {"text": ...}
  state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),  -- also the lease of a claimed row
  last_error       text NOT NULL DEFAULT '',
  created_at       timestamptz NOT NULL DEFAULT now(),
  sent_at          timestamptz
);
CREATE INDEX outbox_by_conversation ON outbox (tenant_id, conversation_id, id);
-- Dispatchers (all tenants): due pending rows.
CREATE INDEX outbox_pending ON outbox (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_pending_by_conversation ON outbox (conversation_id, id) WHERE state = 'pending';

-- Question timeouts. A conversation has at most the timer of its current wait.
CREATE TABLE timers (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id       text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  conversation_id text NOT NULL,
  contact_id      bigint NOT NULL,
  node            text NOT NULL,
  wait_seq        bigint NOT NULL,
  fire_at         timestamptz NOT NULL
);
CREATE INDEX timers_by_conversation ON timers (tenant_id, conversation_id);
-- The timer worker (all tenants): due timers.
CREATE INDEX timers_due ON timers (fire_at, id);

-- Who changed what. tenant_id is NULL for operator actions outside any tenant.
CREATE TABLE audit_log (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id     text REFERENCES tenants(id) ON DELETE CASCADE,
  actor         text NOT NULL,
  action        text NOT NULL,
  resource_type text NOT NULL,
  resource_id   text NOT NULL DEFAULT '',
  before        jsonb,
  after         jsonb,
  request_id    text NOT NULL DEFAULT '',
  at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, id);

-- Idempotency-Key: the first response to a (tenant, scope, key) is stored and replayed.
CREATE TABLE idempotency_keys (
  tenant_id     text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  scope         text NOT NULL,          -- e.g. "POST /v1/flows/lead/runs"
  key           text NOT NULL,
  request_hash  text NOT NULL,          -- a different body under the same key is refused
  status        integer,                -- NULL while the first request is still running
  response      jsonb,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, scope, key)
);
