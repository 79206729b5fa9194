package storage

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// PasswordCost are the argon2id parameters (RFC 9106 §4).
type PasswordCost struct {
	Time    uint32
	MemoryK uint32
	Threads uint8
}

// DefaultPasswordCost follows OWASP's argon2id minimum (19 MiB, t=2).
var DefaultPasswordCost = PasswordCost{Time: 2, MemoryK: 19 * 1024, Threads: 1}

// HashPassword returns an argon2id PHC string.
func HashPassword(pw string, c PasswordCost) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, c.Time, c.MemoryK, c.Threads, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", c.MemoryK, c.Time, c.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// CheckPassword verifies pw against a PHC string made by HashPassword.
func CheckPassword(hash, pw string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	if m > 1<<22 || t > 64 || p == 0 { // refuse absurd stored costs
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// NormalizeAddress lower-cases the domain and the local part of an
// address for lookups. Quoted local parts keep their quotes (RFC 5321 §4.1.2).
func NormalizeAddress(addr string) (local, domain string, err error) {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return "", "", fmt.Errorf("invalid address %q", addr)
	}
	local, domain = addr[:at], strings.ToLower(strings.TrimSuffix(addr[at+1:], "."))
	if strings.ContainsAny(addr, "\r\n\x00") || strings.ContainsAny(domain, " @\"\\[]<>()") {
		return "", "", fmt.Errorf("invalid address %q", addr)
	}
	return strings.ToLower(local), domain, nil
}

// AddDomain creates a local domain (idempotent).
func (s *Store) AddDomain(ctx context.Context, name string) error {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if name == "" || strings.ContainsAny(name, " @/\\\"") {
		return fmt.Errorf("invalid domain %q", name)
	}
	if _, err := s.eng.GetDomain(ctx, name); err == nil {
		return nil
	}
	return s.eng.PutDomain(ctx, Domain{Name: name, Created: now()})
}

// AccountOptions are the optional settings of a new account.
type AccountOptions struct {
	QuotaBytes, QuotaMessages int64
	HomeDC                    string
}

// AddAccount creates an account whose login is its primary address, with
// the default mailboxes. The domain is created if needed.
func (s *Store) AddAccount(ctx context.Context, login, password string, o AccountOptions) (Account, error) {
	local, domain, err := NormalizeAddress(login)
	if err != nil {
		return Account{}, err
	}
	login = local + "@" + domain
	if err := s.AddDomain(ctx, domain); err != nil {
		return Account{}, err
	}
	hash := ""
	if password != "" {
		if hash, err = HashPassword(password, s.cfg.PasswordCost); err != nil {
			return Account{}, err
		}
	}
	a := Account{ID: newID(), Login: login, Domain: domain, PasswordHash: hash,
		QuotaBytes: o.QuotaBytes, QuotaMessages: o.QuotaMessages, HomeDC: o.HomeDC, Created: now()}
	// The account record first, then the address claim: a crash between
	// them leaves an unreachable record, never an address without account.
	if err := s.eng.PutAccount(ctx, a); err != nil {
		return Account{}, err
	}
	if err := s.eng.ClaimAddress(ctx, login, a.ID); err != nil {
		_ = s.eng.DeleteAccount(ctx, a.ID)
		if errors.Is(err, ErrExists) {
			return Account{}, fmt.Errorf("address %s is already taken: %w", login, err)
		}
		return Account{}, err
	}
	for _, b := range s.cfg.DefaultBoxes {
		if _, err := s.CreateMailbox(ctx, a.ID, b.Name, b.Role); err != nil && !errors.Is(err, ErrExists) {
			return a, err
		}
	}
	return a, nil
}

// Account returns an account by id.
func (s *Store) Account(ctx context.Context, id string) (Account, error) {
	return s.eng.GetAccount(ctx, id)
}

// AccountByAddress returns the account that owns addr exactly (login or alias).
func (s *Store) AccountByAddress(ctx context.Context, addr string) (Account, error) {
	local, domain, err := NormalizeAddress(addr)
	if err != nil {
		return Account{}, ErrNotFound
	}
	id, err := s.eng.LookupAddress(ctx, local+"@"+domain)
	if err != nil {
		return Account{}, err
	}
	return s.eng.GetAccount(ctx, id)
}

// Accounts lists every account.
func (s *Store) Accounts(ctx context.Context) ([]Account, error) { return s.eng.ListAccounts(ctx) }

// SetPassword replaces an account's password.
func (s *Store) SetPassword(ctx context.Context, id, password string) error {
	a, err := s.eng.GetAccount(ctx, id)
	if err != nil {
		return err
	}
	if a.PasswordHash, err = HashPassword(password, s.cfg.PasswordCost); err != nil {
		return err
	}
	return s.eng.PutAccount(ctx, a)
}

// AddAppPassword adds a named app password and returns the generated secret.
func (s *Store) AddAppPassword(ctx context.Context, id, name string) (string, error) {
	a, err := s.eng.GetAccount(ctx, id)
	if err != nil {
		return "", err
	}
	secret := newID() + newID()
	h, err := HashPassword(secret, s.cfg.PasswordCost)
	if err != nil {
		return "", err
	}
	a.AppPasswords = append(a.AppPasswords, AppPassword{ID: newID(), Name: name, Hash: h, Created: now()})
	return secret, s.eng.PutAccount(ctx, a)
}

// AddAlias makes addr deliver to account id.
func (s *Store) AddAlias(ctx context.Context, id, addr string) error {
	local, domain, err := NormalizeAddress(addr)
	if err != nil {
		return err
	}
	addr = local + "@" + domain
	a, err := s.eng.GetAccount(ctx, id)
	if err != nil {
		return err
	}
	if err := s.AddDomain(ctx, domain); err != nil {
		return err
	}
	if err := s.eng.ClaimAddress(ctx, addr, id); err != nil {
		if errors.Is(err, ErrExists) {
			return fmt.Errorf("address %s is already taken: %w", addr, err)
		}
		return err
	}
	for _, x := range a.Aliases {
		if x == addr {
			return nil
		}
	}
	a.Aliases = append(a.Aliases, addr)
	return s.eng.PutAccount(ctx, a)
}

// SetCatchAll routes unknown local parts of domain to account id ("" clears).
func (s *Store) SetCatchAll(ctx context.Context, domain, id string) error {
	domain = strings.ToLower(domain)
	d, err := s.eng.GetDomain(ctx, domain)
	if err != nil {
		return err
	}
	d.CatchAll = id
	return s.eng.PutDomain(ctx, d)
}

// DeleteAccount removes an account, its addresses and all its data.
func (s *Store) DeleteAccount(ctx context.Context, id string) error {
	a, err := s.eng.GetAccount(ctx, id)
	if err != nil {
		return err
	}
	for _, addr := range append([]string{a.Login}, a.Aliases...) {
		if got, err := s.eng.LookupAddress(ctx, addr); err == nil && got == id {
			if err := s.eng.ReleaseAddress(ctx, addr); err != nil {
				return err
			}
		}
	}
	s.acctCache.Delete(id)
	if err := s.eng.DropAccountData(ctx, id); err != nil {
		return err
	}
	if err := s.eng.DeleteAccount(ctx, id); err != nil {
		return err
	}
	s.noteActivity(id) // the indexer drops its documents (ADR 0009)
	return nil
}

// Authenticate checks a login (primary address or alias) and a password or
// app password. It always spends one hash computation on unknown users, so
// timing does not reveal which logins exist.
func (s *Store) Authenticate(ctx context.Context, login, password string) (Account, error) {
	a, err := s.AccountByAddress(ctx, login)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			CheckPassword(dummyHash, password)
			return Account{}, ErrAuthFailed
		}
		return Account{}, err
	}
	if a.Disabled {
		return Account{}, ErrAccountDisabled
	}
	if a.PasswordHash != "" && CheckPassword(a.PasswordHash, password) {
		return a, nil
	}
	for _, ap := range a.AppPasswords {
		if CheckPassword(ap.Hash, password) {
			return a, nil
		}
	}
	return Account{}, ErrAuthFailed
}

var dummyHash, _ = HashPassword("dummy", DefaultPasswordCost)

// Recipient is the result of resolving an envelope recipient.
type Recipient struct {
	AccountID string
	Address   string // the address as resolved (lower-case)
	Detail    string // sub-address (RFC 5233), e.g. "lists" in bob+lists@
}

// IsLocalDomain reports whether the domain is served here.
func (s *Store) IsLocalDomain(ctx context.Context, domain string) (bool, error) {
	_, err := s.eng.GetDomain(ctx, strings.ToLower(strings.TrimSuffix(domain, ".")))
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// ResolveRecipient maps an envelope address to an account: exact address
// or alias, then the address without its sub-address detail, then the
// domain's catch-all. Non-local domains give ErrNotLocal; unknown local
// users ErrNoSuchUser.
func (s *Store) ResolveRecipient(ctx context.Context, addr string) (Recipient, error) {
	local, domain, err := NormalizeAddress(addr)
	if err != nil {
		return Recipient{}, ErrNoSuchUser
	}
	d, err := s.eng.GetDomain(ctx, domain)
	if errors.Is(err, ErrNotFound) {
		return Recipient{}, ErrNotLocal
	} else if err != nil {
		return Recipient{}, err
	}
	full := local + "@" + domain
	if id, err := s.eng.LookupAddress(ctx, full); err == nil {
		return Recipient{AccountID: id, Address: full}, nil
	} else if !errors.Is(err, ErrNotFound) {
		return Recipient{}, err
	}
	if sep := s.cfg.PlusSeparator; sep != "" && !strings.HasPrefix(local, "\"") {
		if i := strings.Index(local, sep); i > 0 {
			base := local[:i] + "@" + domain
			if id, err := s.eng.LookupAddress(ctx, base); err == nil {
				return Recipient{AccountID: id, Address: base, Detail: local[i+len(sep):]}, nil
			} else if !errors.Is(err, ErrNotFound) {
				return Recipient{}, err
			}
		}
	}
	if d.CatchAll != "" {
		return Recipient{AccountID: d.CatchAll, Address: full}, nil
	}
	return Recipient{}, ErrNoSuchUser
}

// OwnsAddress reports whether the account may use addr as a sender:
// its login, an alias, or either with a sub-address detail.
func (s *Store) OwnsAddress(ctx context.Context, a Account, addr string) bool {
	local, domain, err := NormalizeAddress(addr)
	if err != nil {
		return false
	}
	full := local + "@" + domain
	if id, err := s.eng.LookupAddress(ctx, full); err == nil && id == a.ID {
		return true
	}
	if sep := s.cfg.PlusSeparator; sep != "" {
		if i := strings.Index(local, sep); i > 0 {
			if id, err := s.eng.LookupAddress(ctx, local[:i]+"@"+domain); err == nil && id == a.ID {
				return true
			}
		}
	}
	return false
}
