-- 001_init: everything the gateway remembers.  Later migrations extend these
-- tables; they never rewrite them.
--
-- Addresses are stored in RFC 5952 text (canonical, so equal addresses are
-- equal strings); nicks keep the case they were given and compare
-- case-insensitively (BAREV.md §1).

-- A local XMPP user's Barev self: alice@example.org is alice@201:…::1.
CREATE TABLE identities (
	id		INTEGER PRIMARY KEY,
	jid		TEXT NOT NULL UNIQUE,		-- bare JID, lower case
	nick		TEXT NOT NULL,
	address		TEXT NOT NULL,
	port		INTEGER NOT NULL DEFAULT 1337,
	created_at	INTEGER NOT NULL,
	UNIQUE (nick COLLATE NOCASE, address)
);

-- A Barev peer an identity may talk to: the allowlist and the roster.
CREATE TABLE contacts (
	id		INTEGER PRIMARY KEY,
	identity_id	INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
	nick		TEXT NOT NULL,
	address		TEXT NOT NULL,
	port		INTEGER NOT NULL DEFAULT 1337,
	name		TEXT,				-- roster name; NULL = nick
	created_at	INTEGER NOT NULL,
	UNIQUE (identity_id, nick COLLATE NOCASE, address)
);

-- XMPP -> Barev messages, written before anything else happens and removed
-- once handed to the kernel (state 'sending' = handed to barevlink; after
-- a crash such rows may already be at the peer, so they are not re-sent).
CREATE TABLE outbox (
	id		INTEGER PRIMARY KEY,		-- also the send order
	contact_id	INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
	body		TEXT NOT NULL,
	xmpp_id		TEXT,				-- the client's message id
	from_jid	TEXT NOT NULL,			-- full JID that sent it
	want_receipt	INTEGER NOT NULL DEFAULT 0,
	state		TEXT NOT NULL DEFAULT 'queued',	-- queued | sending
	attempts	INTEGER NOT NULL DEFAULT 0,
	created_at	INTEGER NOT NULL
);
CREATE INDEX outbox_contact ON outbox (contact_id, id);

-- Barev -> XMPP stanzas held while the component link is down, flushed in
-- order on reconnect.  stanza_id is the stable id the user's server sees.
CREATE TABLE inbox (
	id		INTEGER PRIMARY KEY,
	contact_id	INTEGER REFERENCES contacts(id) ON DELETE CASCADE,
	stanza_id	TEXT NOT NULL UNIQUE,
	xml		TEXT NOT NULL,			-- the stanza as it will go to the server
	created_at	INTEGER NOT NULL
);

-- Avatars: a contact's (fetched from the peer over the pipe) or an
-- identity's (from the user's server vCard).  token = what the peer
-- advertised (pascal's never matches the image, BAREV.md §5); sha1 = of the
-- image bytes.
CREATE TABLE avatars (
	owner_kind	TEXT NOT NULL CHECK (owner_kind IN ('contact', 'identity')),
	owner_id	INTEGER NOT NULL,
	token		TEXT,
	sha1		TEXT,
	mime		TEXT,
	data		BLOB,
	updated_at	INTEGER NOT NULL,
	PRIMARY KEY (owner_kind, owner_id)
);

-- File transfers in flight or recently finished, both ways.
CREATE TABLE transfers (
	id		INTEGER PRIMARY KEY,
	contact_id	INTEGER REFERENCES contacts(id) ON DELETE CASCADE,
	direction	TEXT NOT NULL CHECK (direction IN ('in', 'out')),
	sid		TEXT NOT NULL,
	name		TEXT NOT NULL,
	size		INTEGER NOT NULL,
	state		TEXT NOT NULL,
	spool_path	TEXT,
	url		TEXT,
	error		TEXT,
	created_at	INTEGER NOT NULL,
	updated_at	INTEGER NOT NULL
);

-- Small facts that outlive a restart (e.g. the server's privilege grant).
CREATE TABLE kv (
	key		TEXT PRIMARY KEY,
	value		TEXT
);
