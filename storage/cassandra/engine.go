// Package cassandra is Stoa's storage engine on Apache Cassandra (CQL).
//
// It implements storage.Engine with a typed schema (schema.go, documented in
// docs/adr/0004-cassandra-schema.md) and spends exactly one lightweight
// transaction (Paxos) per committed mutation group of an account: a
// conditional update of the account's state row that carries the new
// version, MODSEQ, id counters and exact usage, and a redo intent (the
// WriteSet). The rows are then written with plain idempotent writes whose
// timestamps grow with the version, so a crash between the LWT and the
// rows is completed by the next reader or writer (roll forward), and a late
// replay never overwrites newer data. See account.go.
//
// Every account has a home data centre; its conditional updates run only
// there, with LOCAL_SERIAL (docs/adr/0005-multi-dc.md, multidc.go).
package cassandra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gocql/gocql"
	"golang.org/x/sync/errgroup"

	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/failpoint"
)

// Engine implements storage.Engine on Cassandra.
type Engine struct {
	o     Options
	cons  gocql.Consistency // reads and writes
	ser   gocql.Consistency // account LWTs
	aser  gocql.Consistency // address LWTs
	local *dcSession

	mu     sync.Mutex
	remote map[string]*dcSession // sessions whose local DC is another account home
	closed bool

	queues   sync.Map // account → *acctQueue (group commit)
	flights  sync.Map // account → *flight (commit being applied by this process)
	homes    sync.Map // account → home DC (cache)
	mem      sync.Map // account → *memo (last commit of this process)
	marks    sync.WaitGroup
	closing  atomic.Bool
	counters counters
}

// dcSession is a gocql session whose coordinators are in one DC.
type dcSession struct {
	dc string
	s  *gocql.Session
}

// Open connects to the cluster. The keyspace must have been migrated
// (`stoa migrate`) unless o.AutoMigrate is set.
func Open(ctx context.Context, o Options) (*Engine, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if o.AutoMigrate {
		if _, err := Migrate(ctx, o); err != nil {
			return nil, err
		}
	}
	e := &Engine{o: o, remote: map[string]*dcSession{},
		cons: mustConsistency(o.Consistency), ser: mustConsistency(o.SerialConsistency),
		aser: mustConsistency(o.AddressSerialConsistency)}
	cl := o.cluster(o.LocalDC)
	cl.Logger = driverLogger{o.Logger, &e.closing}
	s, err := cl.CreateSession()
	if err != nil {
		if missing, _ := keyspaceMissing(ctx, o); missing {
			return nil, fmt.Errorf("%w: keyspace %s does not exist: run `stoa migrate`", ErrSchema, o.Keyspace)
		}
		return nil, fmt.Errorf("cassandra: connect %v (local dc %s): %w", o.Hosts, o.LocalDC, err)
	}
	if err := checkSchema(ctx, s, o.Keyspace); err != nil {
		s.Close()
		return nil, err
	}
	e.local = &dcSession{dc: o.LocalDC, s: s}
	return e, nil
}

// keyspaceMissing asks the cluster (without a keyspace) whether o.Keyspace exists.
func keyspaceMissing(ctx context.Context, o Options) (bool, error) {
	cl := o.cluster(o.LocalDC)
	cl.Keyspace = ""
	cl.Logger = driverLogger{o.Logger, nil}
	s, err := cl.CreateSession()
	if err != nil {
		return false, err
	}
	defer s.Close()
	var name string
	err = s.Query(`SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?`, o.Keyspace).
		WithContext(ctx).Scan(&name)
	if errors.Is(err, gocql.ErrNotFound) {
		return true, nil
	}
	return false, err
}

// cluster returns the driver configuration with coordinators in dc:
// token-aware routing over a DC-aware policy that never fails over to
// another DC (a LOCAL_SERIAL there would be a different Paxos quorum).
func (o *Options) cluster(dc string) *gocql.ClusterConfig {
	cl := gocql.NewCluster(o.Hosts...)
	cl.Keyspace = o.Keyspace
	cl.Consistency = mustConsistency(o.Consistency)
	cl.SerialConsistency = mustConsistency(o.SerialConsistency)
	cl.Timeout = o.Timeout
	cl.WriteTimeout = o.Timeout
	cl.ConnectTimeout = o.ConnectTimeout
	cl.NumConns = o.NumConns
	cl.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(
		gocql.DCAwareRoundRobinPolicy(dc, gocql.HostPolicyOptionDisableDCFailover))
	cl.RetryPolicy = &idempotentRetry{NumRetries: 3, Min: 20 * time.Millisecond, Max: 500 * time.Millisecond}
	cl.DefaultIdempotence = false
	cl.MaxWaitSchemaAgreement = 2 * time.Minute
	cl.Logger = driverLogger{o.Logger, nil}
	if o.Username != "" {
		cl.Authenticator = gocql.PasswordAuthenticator{Username: o.Username, Password: o.Password}
	}
	return cl
}

// driverLogger sends the driver's messages (server warnings such as
// tombstone thresholds, reconnections) to the engine's logger.
// Messages after Close has begun (cancelled connection attempts) are dropped.
type driverLogger struct {
	l       *slog.Logger
	closing *atomic.Bool
}

func (d driverLogger) log(msg string) {
	if d.closing != nil && d.closing.Load() {
		return
	}
	d.l.Warn("cassandra driver: " + strings.TrimSpace(msg))
}

func (d driverLogger) Print(v ...any)            { d.log(fmt.Sprint(v...)) }
func (d driverLogger) Printf(f string, v ...any) { d.log(fmt.Sprintf(f, v...)) }
func (d driverLogger) Println(v ...any)          { d.log(fmt.Sprintln(v...)) }

// idempotentRetry retries only statements marked idempotent, with
// exponential back-off; LWTs and other non-idempotent statements are
// never retried by the driver (the engine decides what a failure means).
type idempotentRetry struct {
	NumRetries int
	Min, Max   time.Duration
}

func (p *idempotentRetry) Attempt(q gocql.RetryableQuery) bool {
	if iq, ok := q.(interface{ IsIdempotent() bool }); ok && !iq.IsIdempotent() {
		return false
	}
	if q.Attempts() > p.NumRetries {
		return false
	}
	d := p.Min << uint(q.Attempts())
	if d > p.Max || d <= 0 {
		d = p.Max
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-q.Context().Done():
		return false
	}
}

func (p *idempotentRetry) GetRetryType(err error) gocql.RetryType {
	var qe *gocql.QueryError
	if errors.As(err, &qe) && !qe.IsIdempotent() {
		return gocql.Rethrow
	}
	if serverBusy(err) {
		return gocql.Retry // the coordinator is fine; its replicas were slow
	}
	return gocql.RetryNextHost
}

// serverBusy: the coordinator answered that replicas timed out, were
// unavailable or it is overloaded.
func serverBusy(err error) bool {
	var rt *gocql.RequestErrReadTimeout
	var wt *gocql.RequestErrWriteTimeout
	var un *gocql.RequestErrUnavailable
	var re gocql.RequestError
	return errors.As(err, &rt) || errors.As(err, &wt) || errors.As(err, &un) ||
		errors.As(err, &re) && re.Code() == gocql.ErrCodeOverloaded
}

// transient errors are worth trying again (after the driver's own retries).
func transient(err error) bool {
	return serverBusy(err) || errors.Is(err, gocql.ErrTimeoutNoResponse) ||
		errors.Is(err, gocql.ErrConnectionClosed) || errors.Is(err, gocql.ErrNoConnections)
}

// Name implements storage.Engine.
func (e *Engine) Name() string { return "cassandra" }

// Options returns the effective options.
func (e *Engine) Options() Options { return e.o }

// Session is the driver session of the local DC (tools and tests).
func (e *Engine) Session() *gocql.Session { return e.local.s }

// Close implements storage.Engine.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	e.closing.Store(true)
	e.mu.Unlock()
	e.marks.Wait() // applied markers in flight
	e.mu.Lock()
	for _, ds := range e.remote {
		ds.s.Close()
	}
	e.local.s.Close()
	return nil
}

// session returns the session whose coordinators are in dc.
func (e *Engine) session(dc string) (*dcSession, error) {
	if dc == "" || dc == e.o.LocalDC {
		return e.local, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errors.New("cassandra: engine closed")
	}
	if ds, ok := e.remote[dc]; ok {
		return ds, nil
	}
	cl := e.o.cluster(dc)
	cl.Logger = driverLogger{e.o.Logger, &e.closing}
	s, err := cl.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("cassandra: connect to dc %s: %w", dc, err)
	}
	ds := &dcSession{dc: dc, s: s}
	e.remote[dc] = ds
	return ds, nil
}

// --- statement helpers ---

func (ds *dcSession) q(ctx context.Context, stmt string, args ...any) *gocql.Query {
	return ds.s.Query(stmt, args...).WithContext(ctx).Idempotent(true)
}

func (ds *dcSession) exec(ctx context.Context, stmt string, args ...any) error {
	return ds.q(ctx, stmt, args...).Exec()
}

func notFound(err error) error {
	if errors.Is(err, gocql.ErrNotFound) {
		return storage.ErrNotFound
	}
	return err
}

// uncertain reports whether a conditional statement may or may not have
// been applied (a timeout after the request reached a coordinator).
func uncertain(err error) bool {
	var wt *gocql.RequestErrWriteTimeout
	var cu *gocql.RequestErrCASWriteUnknown
	var wf *gocql.RequestErrWriteFailure
	return errors.As(err, &wt) || errors.As(err, &cu) || errors.As(err, &wf) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, gocql.ErrTimeoutNoResponse)
}

func i64(v uint64) int64 { return int64(v) }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// --- directory ---

func (e *Engine) PutDomain(ctx context.Context, d storage.Domain) error {
	return e.local.exec(ctx, `INSERT INTO domains (name, catch_all, created) VALUES (?, ?, ?)`,
		d.Name, d.CatchAll, d.Created.UTC())
}

func (e *Engine) GetDomain(ctx context.Context, name string) (storage.Domain, error) {
	d := storage.Domain{Name: name}
	err := e.local.q(ctx, `SELECT catch_all, created FROM domains WHERE name = ?`, name).Scan(&d.CatchAll, &d.Created)
	d.Created = d.Created.UTC()
	return d, notFound(err)
}

func (e *Engine) ListDomains(ctx context.Context) ([]storage.Domain, error) {
	it := e.local.q(ctx, `SELECT name, catch_all, created FROM domains`).PageSize(1000).Iter()
	var out []storage.Domain
	var d storage.Domain
	for it.Scan(&d.Name, &d.CatchAll, &d.Created) {
		d.Created = d.Created.UTC()
		out = append(out, d)
	}
	return out, it.Close()
}

const accountCols = `login, domain, password_hash, app_passwords, aliases, quota_bytes, quota_messages, home_dc, disabled, created`

// PutAccount implements storage.Engine. An account without a home DC is
// given this node's DC (docs/adr/0005-multi-dc.md).
func (e *Engine) PutAccount(ctx context.Context, a storage.Account) error {
	if a.HomeDC == "" {
		a.HomeDC = e.o.LocalDC
	}
	apps := ""
	if len(a.AppPasswords) > 0 {
		b, err := json.Marshal(a.AppPasswords)
		if err != nil {
			return err
		}
		apps = string(b)
	}
	return e.local.exec(ctx, `INSERT INTO accounts (id, `+accountCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.Login, a.Domain, a.PasswordHash, apps, nonNil(a.Aliases), a.QuotaBytes, a.QuotaMessages,
		a.HomeDC, a.Disabled, a.Created.UTC())
}

func scanAccount(sc interface{ Scan(...any) error }, a *storage.Account) error {
	var apps string
	if err := sc.Scan(&a.Login, &a.Domain, &a.PasswordHash, &apps, &a.Aliases, &a.QuotaBytes, &a.QuotaMessages,
		&a.HomeDC, &a.Disabled, &a.Created); err != nil {
		return err
	}
	a.Created = a.Created.UTC()
	if len(a.Aliases) == 0 {
		a.Aliases = nil
	}
	if apps != "" {
		if err := json.Unmarshal([]byte(apps), &a.AppPasswords); err != nil {
			return fmt.Errorf("cassandra: account %s app_passwords: %w", a.ID, err)
		}
	}
	return nil
}

func (e *Engine) GetAccount(ctx context.Context, id string) (storage.Account, error) {
	return e.getAccount(ctx, e.local, id)
}

func (e *Engine) getAccount(ctx context.Context, ds *dcSession, id string) (storage.Account, error) {
	a := storage.Account{ID: id}
	err := scanAccount(ds.q(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = ?`, id), &a)
	return a, notFound(err)
}

func (e *Engine) ListAccounts(ctx context.Context) ([]storage.Account, error) {
	it := e.local.q(ctx, `SELECT id, `+accountCols+` FROM accounts`).PageSize(1000).Iter()
	defer it.Close()
	var out []storage.Account
	sc := it.Scanner()
	for sc.Next() {
		var a storage.Account
		var apps string
		if err := sc.Scan(&a.ID, &a.Login, &a.Domain, &a.PasswordHash, &apps, &a.Aliases, &a.QuotaBytes,
			&a.QuotaMessages, &a.HomeDC, &a.Disabled, &a.Created); err != nil {
			return nil, err
		}
		a.Created = a.Created.UTC()
		if len(a.Aliases) == 0 {
			a.Aliases = nil
		}
		if apps != "" {
			if err := json.Unmarshal([]byte(apps), &a.AppPasswords); err != nil {
				return nil, err
			}
		}
		out = append(out, a)
	}
	return out, sc.Err()
}

func (e *Engine) DeleteAccount(ctx context.Context, id string) error {
	e.homes.Delete(id)
	return e.local.exec(ctx, `DELETE FROM accounts WHERE id = ?`, id)
}

// ClaimAddress is the directory's one uniqueness check: INSERT … IF NOT
// EXISTS (an LWT with AddressSerialConsistency, SERIAL across DCs).
func (e *Engine) ClaimAddress(ctx context.Context, addr, accountID string) error {
	cur := map[string]any{}
	e.counters.lwts.Add(1)
	applied, err := e.local.s.Query(`INSERT INTO addresses (address, account) VALUES (?, ?) IF NOT EXISTS`, addr, accountID).
		WithContext(ctx).Idempotent(false).SerialConsistency(e.aser).MapScanCAS(cur)
	if err != nil {
		if !uncertain(err) {
			return err
		}
		// Outcome unknown: a serial read finishes any Paxos round in flight.
		var owner string
		rerr := e.local.q(ctx, `SELECT account FROM addresses WHERE address = ?`, addr).Consistency(e.aser).Scan(&owner)
		if rerr != nil {
			return fmt.Errorf("cassandra: claim %s: %w (and re-read: %v)", addr, err, rerr)
		}
		cur["account"] = owner
		applied = false
	}
	if applied {
		return nil
	}
	if owner, _ := cur["account"].(string); owner == accountID {
		return nil
	}
	return storage.ErrExists
}

func (e *Engine) ReleaseAddress(ctx context.Context, addr string) error {
	e.counters.lwts.Add(1)
	_, err := e.local.s.Query(`DELETE FROM addresses WHERE address = ? IF EXISTS`, addr).
		WithContext(ctx).Idempotent(false).SerialConsistency(e.aser).MapScanCAS(map[string]any{})
	return err
}

func (e *Engine) LookupAddress(ctx context.Context, addr string) (string, error) {
	var id string
	err := e.local.q(ctx, `SELECT account FROM addresses WHERE address = ?`, addr).Scan(&id)
	return id, notFound(err)
}

// --- blobs ---

// PutBlob stores a blob of at most 64 KiB in its header row (one write);
// a larger one in 256 KiB chunks written before the header, so a header
// always has its chunks. An existing large blob only has its last_put
// refreshed. Writes are at the configured consistency (LOCAL_QUORUM) and
// synchronous, so the Update that references the blob comes after it.
func (e *Engine) PutBlob(ctx context.Context, id string, data, meta []byte) error {
	if !utf8.Valid(meta) {
		return fmt.Errorf("cassandra: blob %s: metadata is not UTF-8", id)
	}
	now := time.Now().UTC()
	if len(data) <= inlineBlob {
		if data == nil {
			data = []byte{}
		}
		return e.local.exec(ctx, `INSERT INTO blobs (blob, size, chunks, chunk_size, data, meta, last_put) VALUES (?, ?, 0, 0, ?, ?, ?)`,
			id, int64(len(data)), data, string(meta), now)
	}
	// Written whole even when it exists: the new write timestamps are what
	// keep it from a concurrent DeleteBlob (see there), and a blind write
	// costs less than the read that would tell.
	n := (len(data) + chunkSize - 1) / chunkSize
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := 0; i < n; i++ {
		part := data[i*chunkSize : min((i+1)*chunkSize, len(data))]
		g.Go(func() error {
			return e.local.exec(gctx, `INSERT INTO blob_chunks (blob, grp, idx, data) VALUES (?, ?, ?, ?)`,
				id, i/chunkGroup, i, part)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return e.local.exec(ctx, `INSERT INTO blobs (blob, size, chunks, chunk_size, data, meta, last_put) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		id, int64(len(data)), n, chunkSize, []byte{}, string(meta), now)
}

// blobRead reads at the configured consistency and, in a multi-DC
// keyspace, retries a miss at QUORUM: the blob may have been written in
// another DC moments ago.
func (e *Engine) blobRead(ctx context.Context, stmt string, args []any, dest ...any) error {
	err := e.local.q(ctx, stmt, args...).Scan(dest...)
	if errors.Is(err, gocql.ErrNotFound) && e.o.multiDC() {
		err = e.local.q(ctx, stmt, args...).Consistency(gocql.Quorum).Scan(dest...)
	}
	return notFound(err)
}

func (e *Engine) GetBlob(ctx context.Context, id string) ([]byte, error) {
	var size int64
	var chunks int
	var data []byte
	if err := e.blobRead(ctx, `SELECT size, chunks, data FROM blobs WHERE blob = ?`, []any{id}, &size, &chunks, &data); err != nil {
		return nil, err
	}
	if chunks == 0 {
		if data == nil {
			data = []byte{}
		}
		return data, nil
	}
	out := make([]byte, 0, size)
	idx := 0
	for grp := 0; grp*chunkGroup < chunks; grp++ {
		cons := e.cons
		for try := 0; ; try++ {
			it := e.local.q(ctx, `SELECT idx, data FROM blob_chunks WHERE blob = ? AND grp = ?`, id, grp).
				Consistency(cons).PageSize(chunkGroup).Iter()
			start, n := len(out), idx
			var i int
			var part []byte
			for it.Scan(&i, &part) {
				if i != n {
					break
				}
				out = append(out, part...)
				n++
			}
			if err := it.Close(); err != nil {
				return nil, err
			}
			want := min(chunks, (grp+1)*chunkGroup)
			if n == want {
				idx = n
				break
			}
			out = out[:start]
			if try > 0 || !e.o.multiDC() {
				return nil, fmt.Errorf("cassandra: blob %s: chunk %d of %d missing", id, n, chunks)
			}
			cons = gocql.Quorum
		}
	}
	if int64(len(out)) != size {
		return nil, fmt.Errorf("cassandra: blob %s: %d bytes, header says %d", id, len(out), size)
	}
	return out, nil
}

func (e *Engine) GetBlobMeta(ctx context.Context, id string) ([]byte, error) {
	var meta string
	if err := e.blobRead(ctx, `SELECT meta FROM blobs WHERE blob = ?`, []any{id}, &meta); err != nil {
		return nil, err
	}
	return []byte(meta), nil
}

// gcConsistency is QUORUM over all DCs: garbage collection must see a
// reference written in any DC.
func (e *Engine) gcConsistency() gocql.Consistency {
	if e.o.multiDC() {
		return gocql.Quorum
	}
	return e.cons
}

func (e *Engine) BlobReferenced(ctx context.Context, id string) (bool, error) {
	var acct string
	err := e.local.q(ctx, `SELECT account FROM blob_refs WHERE blob = ? LIMIT 1`, id).Consistency(e.gcConsistency()).Scan(&acct)
	if errors.Is(err, gocql.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (e *Engine) ListBlobs(ctx context.Context, olderThan time.Time, fn func(id string) error) error {
	it := e.local.q(ctx, `SELECT blob, last_put FROM blobs`).Consistency(e.gcConsistency()).PageSize(1000).Iter()
	var ids []string
	var id string
	var t time.Time
	for it.Scan(&id, &t) {
		if t.Before(olderThan) {
			ids = append(ids, id)
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, id := range ids {
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}

// DeleteBlob deletes the chunks, then the header, with a write timestamp
// of olderThan (at most now): the deletes shadow only writes made before
// it, so a PutBlob after olderThan — which writes every row of the blob
// again — survives whatever the interleaving. A crash in between leaves a
// header that the next collection deletes again.
func (e *Engine) DeleteBlob(ctx context.Context, id string, olderThan time.Time) (bool, error) {
	var chunks int
	var last time.Time
	err := e.local.q(ctx, `SELECT chunks, last_put FROM blobs WHERE blob = ?`, id).Scan(&chunks, &last)
	if errors.Is(err, gocql.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if !last.Before(olderThan) {
		return false, nil
	}
	if err := failpoint.Inject(storage.FPGCBeforeDelete); err != nil {
		return false, err
	}
	ts := min(olderThan.UnixMicro(), time.Now().Add(-time.Millisecond).UnixMicro())
	for grp := 0; grp*chunkGroup < chunks; grp++ {
		if err := e.local.exec(ctx, `DELETE FROM blob_chunks USING TIMESTAMP ? WHERE blob = ? AND grp = ?`, ts, id, grp); err != nil {
			return false, err
		}
	}
	if err := e.local.exec(ctx, `DELETE FROM blobs USING TIMESTAMP ? WHERE blob = ?`, ts, id); err != nil {
		return false, err
	}
	// A header still there was put again meanwhile and outlived the delete.
	err = e.local.q(ctx, `SELECT last_put FROM blobs WHERE blob = ?`, id).Scan(&last)
	if errors.Is(err, gocql.ErrNotFound) {
		return true, nil
	}
	return false, err
}

// --- counters ---

type counters struct {
	lwts, commitLWTs, commits, mutations, conflicts, rollForwards, viewRetries, applyErrors atomic.Int64
}

// Stats are the engine's counters since Open (exported as metrics by the server).
type Stats struct {
	LWTs         int64 // every conditional statement sent (commits, address claims, home moves)
	CommitLWTs   int64 // conditional updates of account state rows
	Commits      int64 // committed groups (one LWT each)
	Mutations    int64 // committed WriteSets (≥ Commits: group commit)
	Conflicts    int64 // lost conditional updates (another writer committed first)
	RollForwards int64 // intents applied by a reader or writer other than their committer
	ViewRetries  int64 // views re-run because a commit landed during them
	ApplyErrors  int64 // failed attempts to write a commit's rows (retried; else completed by the next access)
}

// Stats returns the counters.
func (e *Engine) Stats() Stats {
	c := &e.counters
	return Stats{LWTs: c.lwts.Load(), CommitLWTs: c.commitLWTs.Load(), Commits: c.commits.Load(),
		Mutations: c.mutations.Load(), Conflicts: c.conflicts.Load(), RollForwards: c.rollForwards.Load(),
		ViewRetries: c.viewRetries.Load(), ApplyErrors: c.applyErrors.Load()}
}

func hashPart(key string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

var _ storage.Engine = (*Engine)(nil)
