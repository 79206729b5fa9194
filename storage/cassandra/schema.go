package cassandra

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gocql/gocql"
)

// A migration is one numbered, append-only step of the schema. Steps are
// never edited once released and never drop data: a later step adds
// tables or columns, and a data move is done by code that reads the old
// table and writes the new one. Every statement is idempotent (IF NOT
// EXISTS), so an interrupted `stoa migrate` can simply be run again.
type migration struct {
	version int
	name    string
	stmts   []string // "%[1]s" is the keyspace
}

// Bucket sizes are part of the schema: changing one needs a migration
// that rewrites the rows.
const (
	emailBucket  = 10_000 // UIDs per emails partition
	changeBucket = 10_000 // change sequence numbers per changes partition
	threadParts  = 64     // account_kv partitions of the thread index ("th/" keys)
	queueParts   = 16     // account_kv partitions of the outbound queue ("q/" keys)
	dedupeParts  = 16     // dedupe partitions per account
	inlineBlob   = 64 << 10
	chunkSize    = 256 << 10
	chunkGroup   = 16 // chunks per blob_chunks partition (4 MiB)
	intentChunk  = 256 << 10
	inlineIntent = 16 << 10
)

var migrations = []migration{
	{1, "initial schema", []string{
		// Directory.
		`CREATE TABLE IF NOT EXISTS %[1]s.domains (
			name text PRIMARY KEY,
			catch_all text,
			created timestamp
		) WITH comment = 'mail domains served (storage.Domain)'`,
		`CREATE TABLE IF NOT EXISTS %[1]s.accounts (
			id text PRIMARY KEY,
			login text,
			domain text,
			password_hash text,
			app_passwords text,
			aliases frozen<list<text>>,
			quota_bytes bigint,
			quota_messages bigint,
			home_dc text,
			disabled boolean,
			created timestamp
		) WITH comment = 'accounts (storage.Account); app_passwords is a JSON list'`,
		`CREATE TABLE IF NOT EXISTS %[1]s.addresses (
			address text PRIMARY KEY,
			account text
		) WITH comment = 'address index: login and aliases -> account id; written with IF NOT EXISTS'`,

		// Blobs: content-addressed message bytes and their parsed metadata.
		`CREATE TABLE IF NOT EXISTS %[1]s.blobs (
			blob text PRIMARY KEY,
			size bigint,
			chunks int,
			chunk_size int,
			data blob,
			meta text,
			last_put timestamp
		) WITH comment = 'blob headers; data holds blobs up to 64 KiB, larger ones are in blob_chunks; meta is mailmeta JSON'`,
		`CREATE TABLE IF NOT EXISTS %[1]s.blob_chunks (
			blob text,
			grp int,
			idx int,
			data blob,
			PRIMARY KEY ((blob, grp), idx)
		) WITH comment = '256 KiB chunks of large blobs, 16 per partition'`,
		`CREATE TABLE IF NOT EXISTS %[1]s.blob_refs (
			blob text,
			account text,
			mailbox bigint,
			uid bigint,
			PRIMARY KEY (blob, account, mailbox, uid)
		) WITH comment = 'which emails reference a blob (garbage collection)'`,

		// Accounts: one state row (the only LWT target), then the rows.
		`CREATE TABLE IF NOT EXISTS %[1]s.account_state (
			account text PRIMARY KEY,
			version bigint,
			modseq bigint,
			min_change_seq bigint,
			next_mailbox_id bigint,
			next_email_id bigint,
			next_thread_id bigint,
			last_uid_validity bigint,
			used_bytes bigint,
			used_messages bigint,
			home_dc text,
			last_ts bigint,
			intent blob,
			intent_id uuid,
			intent_chunks int,
			committed_at timestamp,
			applied_version bigint
		) WITH comment = 'per-account state (storage.AccountState) and the redo intent of the last commit'`,
		`CREATE TABLE IF NOT EXISTS %[1]s.intents (
			account text,
			version bigint,
			id uuid,
			idx int,
			data blob,
			PRIMARY KEY ((account, version, id), idx)
		) WITH comment = 'redo intents too large for account_state, in 256 KiB chunks'`,
		`CREATE TABLE IF NOT EXISTS %[1]s.mailboxes (
			account text,
			id bigint,
			name text,
			role text,
			uid_validity bigint,
			uid_next bigint,
			highest_modseq bigint,
			created_modseq bigint,
			messages bigint,
			unseen bigint,
			size bigint,
			PRIMARY KEY (account, id)
		) WITH comment = 'mailboxes with exact counts (storage.Mailbox)'`,
		`CREATE TABLE IF NOT EXISTS %[1]s.emails (
			account text,
			mailbox bigint,
			bucket bigint,
			uid bigint,
			email_id bigint,
			blob text,
			size bigint,
			internal_date timestamp,
			flags frozen<set<text>>,
			modseq bigint,
			thread_id bigint,
			PRIMARY KEY ((account, mailbox, bucket), uid)
		) WITH CLUSTERING ORDER BY (uid ASC)
		AND comment = 'mailbox memberships (storage.Email); bucket = uid / 10000'`,
		`CREATE TABLE IF NOT EXISTS %[1]s.changes (
			account text,
			bucket bigint,
			seq bigint,
			part int,
			kind text,
			mailbox bigint,
			uids frozen<list<bigint>>,
			email_ids frozen<list<bigint>>,
			threads frozen<list<bigint>>,
			blobs frozen<list<text>>,
			time timestamp,
			PRIMARY KEY ((account, bucket), seq, part)
		) WITH CLUSTERING ORDER BY (seq ASC, part ASC)
		AND comment = 'change log (storage.Change); bucket = seq / 10000, trimmed by whole buckets'`,
		`CREATE TABLE IF NOT EXISTS %[1]s.account_kv (
			account text,
			part text,
			key text,
			value text,
			PRIMARY KEY ((account, part), key)
		) WITH comment = 'small keyed records of an account; part is empty, or th/<n> (thread index, 64 partitions) or q/<n> (outbound queue, 16)'`,
		`CREATE TABLE IF NOT EXISTS %[1]s.dedupe (
			account text,
			bucket int,
			key text,
			value text,
			PRIMARY KEY ((account, bucket), key)
		) WITH default_time_to_live = 2592000
		AND compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'DAYS', 'compaction_window_size': 1}
		AND comment = 'delivery dedupe records (dlv/ keys), expire by TTL'`,
	}},
	{2, "activity feed", []string{
		`CREATE TABLE IF NOT EXISTS %[1]s.account_activity (
			minute bigint,
			shard int,
			at timestamp,
			writer text,
			account text,
			PRIMARY KEY ((minute, shard), at, writer, account)
		) WITH default_time_to_live = 93600
		AND gc_grace_seconds = 10800
		AND compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'HOURS', 'compaction_window_size': 1}
		AND comment = 'activity feed (ADR 0009): accounts with committed changes; minute = unix time / 60, shard = fnv32a(account) % 16, writer = the noting process; expire by TTL'`,
	}},
}

// SchemaVersion is the schema version this binary needs.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

func (m migration) checksum() string {
	h := sha256.New()
	for _, s := range m.stmts {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// ErrSchema says the keyspace is missing or older than this binary.
var ErrSchema = errors.New("cassandra: schema missing or out of date")

// Migrate creates the keyspace (replication from o) and applies every
// migration not yet recorded in schema_migrations. It never drops or
// rewrites data; a keyspace whose replication differs from o is reported
// in the log, not altered (that needs ALTER KEYSPACE and a repair, an
// operator's decision). It returns the versions it applied.
func Migrate(ctx context.Context, o Options) ([]int, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	cl := o.cluster(o.LocalDC)
	cl.Keyspace = ""
	s, err := cl.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("cassandra: connect %v: %w", o.Hosts, err)
	}
	defer s.Close()
	return migrate(ctx, s, &o)
}

func migrate(ctx context.Context, s *gocql.Session, o *Options) ([]int, error) {
	ks := o.Keyspace
	var strategy map[string]string
	err := s.Query(`SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?`, ks).
		WithContext(ctx).Idempotent(true).Consistency(gocql.One).Scan(&strategy)
	switch {
	case errors.Is(err, gocql.ErrNotFound):
		stmt := fmt.Sprintf("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s AND durable_writes = true", ks, o.replicationCQL())
		if err := s.Query(stmt).WithContext(ctx).Idempotent(true).Exec(); err != nil {
			return nil, fmt.Errorf("cassandra: create keyspace: %w", err)
		}
		o.Logger.Info("cassandra: keyspace created", "keyspace", ks, "replication", o.replicationCQL())
	case err != nil:
		return nil, fmt.Errorf("cassandra: read keyspace: %w", err)
	default:
		if d := replicationDiff(strategy, o); d != "" {
			o.Logger.Warn("cassandra: keyspace replication differs from configuration; not changed (ALTER KEYSPACE, then nodetool repair)",
				"keyspace", ks, "have", strategy, "configured", o.replicationCQL(), "diff", d)
		}
	}
	stmt := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.schema_migrations (
		version int PRIMARY KEY,
		name text,
		checksum text,
		applied_at timestamp
	) WITH comment = 'versioned schema migrations applied by stoa migrate'`, ks)
	if err := s.Query(stmt).WithContext(ctx).Idempotent(true).Exec(); err != nil {
		return nil, fmt.Errorf("cassandra: create schema_migrations: %w", err)
	}
	have, err := appliedMigrations(ctx, s, ks)
	if err != nil {
		return nil, err
	}
	var done []int
	for _, m := range migrations {
		if sum, ok := have[m.version]; ok {
			if sum != m.checksum() {
				o.Logger.Warn("cassandra: migration recorded with another checksum", "version", m.version, "recorded", sum, "binary", m.checksum())
			}
			continue
		}
		for _, st := range m.stmts {
			if err := s.Query(fmt.Sprintf(st, ks)).WithContext(ctx).Idempotent(true).Exec(); err != nil {
				return done, fmt.Errorf("cassandra: migration %d (%s): %w\n%s", m.version, m.name, err, fmt.Sprintf(st, ks))
			}
		}
		if err := s.AwaitSchemaAgreement(ctx); err != nil {
			return done, fmt.Errorf("cassandra: migration %d: schema agreement: %w", m.version, err)
		}
		err := s.Query(fmt.Sprintf(`INSERT INTO %s.schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)`, ks),
			m.version, m.name, m.checksum(), time.Now().UTC()).WithContext(ctx).Idempotent(true).
			Consistency(mustConsistency(o.Consistency)).Exec()
		if err != nil {
			return done, fmt.Errorf("cassandra: record migration %d: %w", m.version, err)
		}
		o.Logger.Info("cassandra: migration applied", "keyspace", ks, "version", m.version, "name", m.name)
		done = append(done, m.version)
	}
	return done, nil
}

func appliedMigrations(ctx context.Context, s *gocql.Session, ks string) (map[int]string, error) {
	have := map[int]string{}
	it := s.Query(fmt.Sprintf(`SELECT version, checksum FROM %s.schema_migrations`, ks)).
		WithContext(ctx).Idempotent(true).Iter()
	var v int
	var sum string
	for it.Scan(&v, &sum) {
		have[v] = sum
	}
	return have, it.Close()
}

// checkSchema fails unless every migration of this binary is applied.
func checkSchema(ctx context.Context, s *gocql.Session, ks string) error {
	have, err := appliedMigrations(ctx, s, ks)
	if err != nil {
		return fmt.Errorf("%w: keyspace %s has no readable schema_migrations table (%v): run `stoa migrate`", ErrSchema, ks, err)
	}
	var missing []int
	for _, m := range migrations {
		if _, ok := have[m.version]; !ok {
			missing = append(missing, m.version)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: keyspace %s lacks migrations %v: run `stoa migrate`", ErrSchema, ks, missing)
	}
	return nil
}

func replicationDiff(have map[string]string, o *Options) string {
	class := have["class"]
	if o.SimpleReplication > 0 {
		if !strings.HasSuffix(class, "SimpleStrategy") || have["replication_factor"] != fmt.Sprint(o.SimpleReplication) {
			return fmt.Sprintf("want SimpleStrategy %d", o.SimpleReplication)
		}
		return ""
	}
	if !strings.HasSuffix(class, "NetworkTopologyStrategy") {
		return "want NetworkTopologyStrategy"
	}
	var diffs []string
	for dc, n := range o.Replication {
		if have[dc] != fmt.Sprint(n) {
			diffs = append(diffs, fmt.Sprintf("%s: have %q want %d", dc, have[dc], n))
		}
	}
	for k := range have {
		if k != "class" {
			if _, ok := o.Replication[k]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s: have %s, not configured", k, have[k]))
			}
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "; ")
}
