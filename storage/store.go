package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/stoa-mail/stoa/storage/mailmeta"
)

// Config holds the knobs of the mail rules. Zero values take defaults.
type Config struct {
	Separator       string          // mailbox hierarchy separator (default "/")
	PlusSeparator   string          // sub-addressing separator (default "+"; "-" is common too); "" after defaults means none
	NoPlus          bool            // disable sub-addressing
	ChangeRetention uint64          // change records kept per account (default 200,000)
	MaxMessageSize  int64           // bytes (default 64 MiB)
	MaxNameLength   int             // mailbox name bytes (default 1,000)
	MaxNameDepth    int             // mailbox hierarchy levels (default 64)
	MaxFlags        int             // flags and keywords per message (default 128)
	ParseLimits     mailmeta.Limits // metadata parse caps
	DefaultBoxes    []DefaultBox    // created with each account
	PasswordCost    PasswordCost
	ActivityFlush   time.Duration // how often activity notes are written (default 100 ms; ADR 0009)
	Logger          *slog.Logger
}

// DefaultBox is a mailbox every new account gets.
type DefaultBox struct{ Name, Role string }

func (c *Config) defaults() {
	if c.Separator == "" {
		c.Separator = "/"
	}
	if c.PlusSeparator == "" && !c.NoPlus {
		c.PlusSeparator = "+"
	}
	if c.ChangeRetention == 0 {
		c.ChangeRetention = 200_000
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = 64 << 20
	}
	if c.MaxNameLength == 0 {
		c.MaxNameLength = 1000
	}
	if c.MaxNameDepth == 0 {
		c.MaxNameDepth = 64
	}
	if c.MaxFlags == 0 {
		c.MaxFlags = 128
	}
	if c.ParseLimits == (mailmeta.Limits{}) {
		c.ParseLimits = mailmeta.DefaultLimits()
	}
	if c.DefaultBoxes == nil {
		c.DefaultBoxes = []DefaultBox{
			{"INBOX", RoleInbox}, {"Sent", RoleSent}, {"Drafts", RoleDrafts},
			{"Trash", RoleTrash}, {"Junk", RoleJunk}, {"Archive", RoleArchive},
		}
	}
	if c.PasswordCost == (PasswordCost{}) {
		c.PasswordCost = DefaultPasswordCost
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Store applies the mail rules over an Engine. It is safe for concurrent use.
type Store struct {
	eng Engine
	cfg Config

	mu        sync.Mutex
	watchers  map[string]map[chan struct{}]struct{}
	acctCache sync.Map // account id → cachedAccount (quota limits)

	// Activity feed writer (activity.go).
	writer     string // this Store's id in its notes
	actMu      sync.Mutex
	actPending map[string]struct{}
	actStop    chan struct{}
	actDone    chan struct{}
	actClosed  bool
}

// New returns a Store over eng.
func New(eng Engine, cfg Config) *Store {
	cfg.defaults()
	return &Store{eng: eng, cfg: cfg, watchers: map[string]map[chan struct{}]struct{}{}, writer: newID()[:12]}
}

// Engine returns the underlying engine.
func (s *Store) Engine() Engine { return s.eng }

// Config returns the effective configuration.
func (s *Store) Config() Config { return s.cfg }

// Close writes the queued activity notes and closes the engine.
func (s *Store) Close() error {
	s.stopActivity()
	return s.eng.Close()
}

// update runs one mutation: fn computes the writes over a txn; the engine
// commits them. Watchers of the account are told after the commit.
func (s *Store) update(ctx context.Context, account string, fn func(t *txn) error) error {
	committed := false
	err := s.eng.Update(ctx, account, func(r Reader) (*WriteSet, error) {
		committed = false
		t, err := newTxn(r)
		if err != nil {
			return nil, err
		}
		if err := fn(t); err != nil {
			return nil, err
		}
		s.maybeTrim(t)
		ws := t.writeSet()
		committed = ws != nil && len(ws.Changes) > 0
		return ws, nil
	})
	if committed {
		if err == nil {
			s.notify(account)
		}
		// Also when the outcome is unknown (a timeout after the
		// conditional update may still have applied): a note is a hint.
		s.noteActivity(account)
	}
	return err
}

func (s *Store) maybeTrim(t *txn) {
	keep := s.cfg.ChangeRetention
	if t.state.ModSeq > t.state.MinChangeSeq+keep+keep/8 {
		t.state.MinChangeSeq = t.state.ModSeq - keep
		t.trim = t.state.MinChangeSeq
	}
}

func (s *Store) view(ctx context.Context, account string, fn func(r Reader) error) error {
	return s.eng.View(ctx, account, fn)
}

// Watch returns a channel that receives a value (coalesced) after each
// committed change to account made through this Store, and a cancel func.
// Changes made by other processes are found by polling Changes.
func (s *Store) Watch(account string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	m := s.watchers[account]
	if m == nil {
		m = map[chan struct{}]struct{}{}
		s.watchers[account] = m
	}
	m[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.watchers[account], ch)
		if len(s.watchers[account]) == 0 {
			delete(s.watchers, account)
		}
		s.mu.Unlock()
	}
}

func (s *Store) notify(account string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.watchers[account] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func newID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}

func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// State returns the account's state row (MODSEQ, usage).
func (s *Store) State(ctx context.Context, account string) (AccountState, error) {
	var st AccountState
	err := s.view(ctx, account, func(r Reader) error {
		var err error
		st, err = r.State()
		return err
	})
	return st, err
}

// Quota is an account's exact usage and limits (RFC 9208).
type Quota struct {
	UsedBytes, UsedMessages   int64
	LimitBytes, LimitMessages int64 // 0 = unlimited
}

// Quota returns exact usage.
func (s *Store) Quota(ctx context.Context, account string) (Quota, error) {
	a, err := s.eng.GetAccount(ctx, account)
	if err != nil {
		return Quota{}, err
	}
	st, err := s.State(ctx, account)
	if err != nil {
		return Quota{}, err
	}
	return Quota{UsedBytes: st.UsedBytes, UsedMessages: st.UsedMessages,
		LimitBytes: a.QuotaBytes, LimitMessages: a.QuotaMessages}, nil
}

func lower(s string) string { return strings.ToLower(s) }
