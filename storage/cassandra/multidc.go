package cassandra

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gocql/gocql"
	"golang.org/x/sync/errgroup"

	"github.com/stoa-mail/stoa/storage"
)

// Multi-DC (docs/adr/0005-multi-dc.md). Each account has a home DC,
// recorded in its account_state row (the authority: every commit LWT is
// conditional on it) and in its accounts row (a routing hint). The
// engine runs an account's commits and reads through coordinators in the
// home DC, so LOCAL_SERIAL there is the one Paxos quorum that allocates
// its UIDs, and a reader sees rows written at LOCAL_QUORUM there.

// movingPrefix marks a state row whose home is being moved: no DC commits.
const movingPrefix = "moving:"

// ErrMoving: the account's home DC is being moved; retry shortly.
var ErrMoving = errors.New("cassandra: account home is moving")

// NotHomeError is returned when RemoteHome is "refuse" and the account's
// home is another DC: the caller redirects the client (or, for SMTP,
// answers 4xx so the sender retries through an MX of the home DC).
type NotHomeError struct {
	Account, Home, Local string
}

func (e *NotHomeError) Error() string {
	return fmt.Sprintf("cassandra: account %s lives in dc %s, not %s", e.Account, e.Home, e.Local)
}

// Unwrap makes errors.Is(err, storage.ErrCannot) true.
func (e *NotHomeError) Unwrap() error { return storage.ErrCannot }

// homeOf returns the account's home DC: cached, else from its accounts
// row, else DefaultHomeDC. Single-DC keyspaces skip the lookup.
func (e *Engine) homeOf(ctx context.Context, account string) (string, error) {
	if !e.o.multiDC() {
		return e.o.LocalDC, nil
	}
	if h, ok := e.homes.Load(account); ok {
		return h.(string), nil
	}
	a, err := e.GetAccount(ctx, account)
	if errors.Is(err, storage.ErrNotFound) {
		return e.o.DefaultHomeDC, nil
	} else if err != nil {
		return "", err
	}
	h := a.HomeDC
	if h == "" {
		h = e.o.DefaultHomeDC
	}
	e.homes.Store(account, h)
	return h, nil
}

func (e *Engine) route(ctx context.Context, account string) (*dcSession, error) {
	home, err := e.homeOf(ctx, account)
	if err != nil {
		return nil, err
	}
	return e.routeTo(account, home)
}

func (e *Engine) routeTo(account, home string) (*dcSession, error) {
	if strings.HasPrefix(home, movingPrefix) {
		return nil, fmt.Errorf("%w: account %s", ErrMoving, account)
	}
	if home == e.o.LocalDC {
		return e.local, nil
	}
	if e.o.RemoteHome == "refuse" {
		return nil, &NotHomeError{Account: account, Home: home, Local: e.o.LocalDC}
	}
	return e.session(home)
}

// Home returns the account's home DC as its state row records it.
func (e *Engine) Home(ctx context.Context, account string) (string, error) {
	ds, row, err := e.settle(ctx, account, false)
	if err != nil {
		return "", err
	}
	if row.exists && row.home != "" {
		return row.home, nil
	}
	return ds.dc, nil
}

// MoveHome makes dc the account's home. It is safe while the account is
// in use, and can be resumed after an interruption by running it again:
//
//  1. fence: in the old home, an LWT sets home_dc = "moving:<dc>"; from
//     then on no DC's commit condition (home_dc = itself) holds;
//  2. copy: every partition of the account (state, mailboxes, emails,
//     changes, keyed records, blob references and the blobs) is read at
//     consistency ALL, whose blocking read repair leaves each replica in
//     every DC up to date;
//  3. open: in the new home, an LWT sets home_dc = dc if it is still
//     "moving:<dc>";
//  4. the accounts row gets the new home (routing hint).
//
// Commits wait (up to Options.Timeout, then ErrMoving) during the move.
// Step 2 needs every replica up; to abandon a lost DC see Failover.
func (e *Engine) MoveHome(ctx context.Context, account, dc string) error {
	if dc == "" || strings.HasPrefix(dc, movingPrefix) {
		return fmt.Errorf("cassandra: invalid DC %q", dc)
	}
	to, err := e.session(dc)
	if err != nil {
		return err
	}
	e.homes.Delete(account)
	e.mem.Delete(account)
	_, row, err := e.settle(ctx, account, false)
	if err != nil {
		return err
	}
	switch {
	case row.exists && row.home == dc:
		return e.setAccountHome(ctx, to, account, dc)
	case row.exists && row.home == movingPrefix+dc:
		// Resume after step 1.
	case row.exists && strings.HasPrefix(row.home, movingPrefix):
		return fmt.Errorf("cassandra: account %s is moving to %s already", account, strings.TrimPrefix(row.home, movingPrefix))
	default:
		// Fence in the old home (with the commit queue of this process held).
		if err := e.fence(ctx, account, movingPrefix+dc); err != nil {
			return err
		}
	}
	t0 := time.Now()
	e.o.Logger.Info("cassandra: move home: fenced", "account", account, "to", dc)
	if err := e.readRepair(ctx, to, account); err != nil {
		return fmt.Errorf("cassandra: move %s to %s: copy: %w (run the move again)", account, dc, err)
	}
	cur := map[string]any{}
	e.counters.lwts.Add(1)
	applied, err := to.s.Query(`UPDATE account_state SET home_dc = ? WHERE account = ? IF home_dc = ?`,
		dc, account, movingPrefix+dc).WithContext(ctx).Idempotent(false).SerialConsistency(e.ser).MapScanCAS(cur)
	if err != nil {
		return fmt.Errorf("cassandra: move %s to %s: open: %w (run the move again)", account, dc, err)
	}
	if !applied && cur["home_dc"] != dc {
		return fmt.Errorf("cassandra: move %s to %s: state row says home %v", account, dc, cur["home_dc"])
	}
	e.homes.Store(account, dc)
	e.o.Logger.Info("cassandra: move home: done", "account", account, "to", dc, "copy+open", time.Since(t0))
	return e.setAccountHome(ctx, to, account, dc)
}

// fence takes the account away from its home DC with one LWT there. It
// runs in the account's commit queue, alone, so that this process commits
// nothing concurrently; other processes' commits fail their condition.
func (e *Engine) fence(ctx context.Context, account string, home string) error {
	var err error
	for try := 0; try < 10; try++ {
		if err = e.fenceOnce(ctx, account, home); !errors.Is(err, storage.ErrConflict) {
			return err
		}
		time.Sleep(time.Duration(10<<min(try, 5)) * time.Millisecond)
	}
	return err
}

func (e *Engine) fenceOnce(ctx context.Context, account string, home string) error {
	return e.exclusive(ctx, account, func() error {
		e.mem.Delete(account)
		ds, row, err := e.settle(ctx, account, true)
		if err != nil {
			return err
		}
		cur := map[string]any{}
		var q *gocql.Query
		if row.exists {
			q = ds.s.Query(`UPDATE account_state SET home_dc = ? WHERE account = ? IF version = ? AND home_dc = ?`,
				home, account, i64(row.st.Version), ds.dc)
		} else {
			q = ds.s.Query(`INSERT INTO account_state (account, version, home_dc, last_ts) VALUES (?, 0, ?, ?) IF NOT EXISTS`,
				account, home, time.Now().UnixMicro())
		}
		e.counters.lwts.Add(1)
		applied, err := q.WithContext(ctx).Idempotent(false).SerialConsistency(e.ser).MapScanCAS(cur)
		switch {
		case err != nil:
			return err
		case !applied:
			return fmt.Errorf("%w: state row changed during the fence (run the move again)", storage.ErrConflict)
		}
		return nil
	})
}

// Failover makes dc the home of an account whose home DC is lost,
// without the old home's agreement. Commits acknowledged in the old DC
// but not yet replicated are lost, and if the old DC is in fact alive and
// serving the account, UIDs can be allocated twice: an operator's
// decision, taken only once the old DC is fenced off (its Stoa nodes
// stopped). The old DC must be repaired before it serves again.
func (e *Engine) Failover(ctx context.Context, account, dc string) error {
	to, err := e.session(dc)
	if err != nil {
		return err
	}
	e.counters.lwts.Add(1)
	if _, err := to.s.Query(`UPDATE account_state SET home_dc = ? WHERE account = ? IF EXISTS`, dc, account).
		WithContext(ctx).Idempotent(false).SerialConsistency(e.ser).MapScanCAS(map[string]any{}); err != nil {
		return err
	}
	e.homes.Store(account, dc)
	return e.setAccountHome(ctx, to, account, dc)
}

func (e *Engine) setAccountHome(ctx context.Context, ds *dcSession, account, dc string) error {
	if _, err := e.getAccount(ctx, ds, account); errors.Is(err, storage.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	return ds.exec(ctx, `UPDATE accounts SET home_dc = ? WHERE id = ?`, dc, account)
}

// readRepair reads every partition of the account at consistency ALL.
func (e *Engine) readRepair(ctx context.Context, ds *dcSession, account string) error {
	all := func(stmt string, args ...any) *gocql.Iter {
		return ds.q(ctx, stmt, args...).Consistency(gocql.All).PageSize(1000).Iter()
	}
	drain := func(it *gocql.Iter) error {
		sc := it.Scanner()
		for sc.Next() {
		}
		return it.Close()
	}
	if err := drain(all(`SELECT * FROM account_state WHERE account = ?`, account)); err != nil {
		return err
	}
	row, err := ds.readState(ctx, account, gocql.All)
	if err != nil {
		return err
	}
	if !row.exists {
		return nil
	}
	st := row.st
	r := newReader(ctx, ds, e, account, st)
	if err := drain(all(`SELECT * FROM mailboxes WHERE account = ?`, account)); err != nil {
		return err
	}
	boxes, err := r.Mailboxes()
	if err != nil {
		return err
	}
	blobs := map[string]bool{}
	for _, m := range boxes {
		for b := uint32(0); b <= m.UIDNext/emailBucket; b++ {
			it := all(`SELECT * FROM emails WHERE account = ? AND mailbox = ? AND bucket = ?`, account, int64(m.ID), int64(b))
			for row := map[string]any{}; it.MapScan(row); row = map[string]any{} {
				if blob, _ := row["blob"].(string); blob != "" {
					blobs[blob] = true
				}
			}
			if err := it.Close(); err != nil {
				return err
			}
		}
	}
	for b := st.MinChangeSeq / changeBucket; b <= st.ModSeq/changeBucket; b++ {
		if err := drain(all(`SELECT * FROM changes WHERE account = ? AND bucket = ?`, account, int64(b))); err != nil {
			return err
		}
	}
	kg, _ := errgroup.WithContext(ctx)
	kg.SetLimit(16)
	for _, p := range kvParts() {
		kg.Go(func() error { return drain(all(`SELECT * FROM account_kv WHERE account = ? AND part = ?`, account, p)) })
	}
	for b := 0; b < dedupeParts; b++ {
		kg.Go(func() error { return drain(all(`SELECT * FROM dedupe WHERE account = ? AND bucket = ?`, account, b)) })
	}
	if err := kg.Wait(); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for blob := range blobs {
		g.Go(func() error {
			all := func(stmt string, args ...any) *gocql.Iter {
				return ds.q(gctx, stmt, args...).Consistency(gocql.All).PageSize(1000).Iter()
			}
			if err := drain(all(`SELECT * FROM blob_refs WHERE blob = ?`, blob)); err != nil {
				return err
			}
			if err := drain(all(`SELECT * FROM blobs WHERE blob = ?`, blob)); err != nil {
				return err
			}
			var chunks int
			if err := ds.q(gctx, `SELECT chunks FROM blobs WHERE blob = ?`, blob).Consistency(gocql.All).Scan(&chunks); err != nil {
				return fmt.Errorf("blob %s: %w", blob, err)
			}
			for g := 0; g*chunkGroup < chunks; g++ {
				if err := drain(all(`SELECT * FROM blob_chunks WHERE blob = ? AND grp = ?`, blob, g)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return nil
}
