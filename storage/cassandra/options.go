package cassandra

import (
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/gocql/gocql"
)

// Options configure the engine. Zero values take the defaults noted.
type Options struct {
	// Hosts are contact points ("host" or "host:port"). Default 127.0.0.1:9042.
	Hosts []string
	// Keyspace holds every table. Default "stoa".
	Keyspace string
	// LocalDC is the data centre this process runs in; the driver sends
	// requests only to its hosts (token-aware, no DC failover). Default "dc1".
	LocalDC string
	// Replication is the NetworkTopologyStrategy factor per DC, used when
	// Migrate creates the keyspace. Default {LocalDC: 1}.
	Replication map[string]int
	// SimpleReplication > 0 creates the keyspace with SimpleStrategy and
	// this factor instead: for a single test node only.
	SimpleReplication int
	// Consistency of reads and writes. Default LOCAL_QUORUM.
	Consistency string
	// SerialConsistency of the per-account conditional update. Default
	// LOCAL_SERIAL (safe because each account's LWTs run in its home DC).
	SerialConsistency string
	// AddressSerialConsistency of the address claim (INSERT … IF NOT
	// EXISTS on a global record). Default SERIAL when Replication names
	// more than one DC, else SerialConsistency.
	AddressSerialConsistency string
	// Timeout bounds every request to Cassandra. Default 5s.
	Timeout time.Duration
	// ConnectTimeout bounds connection set-up. Default 10s.
	ConnectTimeout time.Duration
	// Username and Password for PasswordAuthenticator (optional).
	Username, Password string
	// NumConns per host. Default 2.
	NumConns int

	// AutoMigrate runs Migrate on Open (tests, development). Without it
	// Open fails with a "run stoa migrate" message when the schema is
	// missing or older than this binary.
	AutoMigrate bool

	// RemoteHome says what Update and View do for an account whose home
	// DC is not LocalDC: "forward" (default) runs them through
	// coordinators in the home DC; "refuse" returns a *NotHomeError.
	RemoteHome string
	// DefaultHomeDC is the home of accounts whose record names none.
	// Default LocalDC. It must be the same on every node.
	DefaultHomeDC string

	// DedupeTTL is how long delivery dedupe records ("dlv/…" keys) live.
	// Default 30 days.
	DedupeTTL time.Duration
	// MaxAttempts bounds the retries of one Update after lost conditional
	// updates (concurrent writers in other processes); retries also go on
	// for at least twice Timeout. Default 40.
	MaxAttempts int
	// MaxGroup bounds the mutations of one account committed by one
	// conditional update (group commit). Default 64.
	MaxGroup int
	// ApplyConcurrency bounds the parallel row writes of one commit.
	// Default 32.
	ApplyConcurrency int
	// ApplyGrace is how long a reader waits for another process to finish
	// applying a committed mutation before applying it itself. Default 250ms.
	ApplyGrace time.Duration

	Logger *slog.Logger
}

var identRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,47}$`)

func (o *Options) defaults() error {
	if len(o.Hosts) == 0 {
		o.Hosts = []string{"127.0.0.1:9042"}
	}
	if o.Keyspace == "" {
		o.Keyspace = "stoa"
	}
	if !identRE.MatchString(o.Keyspace) {
		return fmt.Errorf("cassandra: invalid keyspace name %q", o.Keyspace)
	}
	if o.LocalDC == "" {
		o.LocalDC = "dc1"
	}
	if len(o.Replication) == 0 && o.SimpleReplication == 0 {
		o.Replication = map[string]int{o.LocalDC: 1}
	}
	for dc, n := range o.Replication {
		if n < 1 || strings.ContainsAny(dc, "'\"\\") {
			return fmt.Errorf("cassandra: invalid replication %q: %d", dc, n)
		}
	}
	if o.Consistency == "" {
		o.Consistency = "LOCAL_QUORUM"
	}
	if o.SerialConsistency == "" {
		o.SerialConsistency = "LOCAL_SERIAL"
	}
	if o.AddressSerialConsistency == "" {
		if len(o.Replication) > 1 {
			o.AddressSerialConsistency = "SERIAL"
		} else {
			o.AddressSerialConsistency = o.SerialConsistency
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.NumConns <= 0 {
		o.NumConns = 2
	}
	switch o.RemoteHome {
	case "":
		o.RemoteHome = "forward"
	case "forward", "refuse":
	default:
		return fmt.Errorf("cassandra: remote_home %q is not forward or refuse", o.RemoteHome)
	}
	if o.DefaultHomeDC == "" {
		o.DefaultHomeDC = o.LocalDC
	}
	if o.DedupeTTL <= 0 {
		o.DedupeTTL = 30 * 24 * time.Hour
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 40
	}
	if o.MaxGroup <= 0 {
		o.MaxGroup = 64
	}
	if o.ApplyConcurrency <= 0 {
		o.ApplyConcurrency = 32
	}
	if o.ApplyGrace <= 0 {
		o.ApplyGrace = 250 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	for _, c := range []string{o.Consistency, o.SerialConsistency, o.AddressSerialConsistency} {
		if _, err := parseConsistency(c); err != nil {
			return err
		}
	}
	if c, _ := parseConsistency(o.SerialConsistency); !c.IsSerial() {
		return fmt.Errorf("cassandra: serial_consistency %s is not SERIAL or LOCAL_SERIAL", o.SerialConsistency)
	}
	if c, _ := parseConsistency(o.AddressSerialConsistency); !c.IsSerial() {
		return fmt.Errorf("cassandra: address serial consistency %s is not SERIAL or LOCAL_SERIAL", o.AddressSerialConsistency)
	}
	return nil
}

func parseConsistency(s string) (gocql.Consistency, error) {
	c, err := gocql.ParseConsistencyWrapper(strings.ToUpper(strings.TrimSpace(s)))
	if err != nil {
		return 0, fmt.Errorf("cassandra: consistency %q: %w", s, err)
	}
	return c, nil
}

func mustConsistency(s string) gocql.Consistency {
	c, err := parseConsistency(s)
	if err != nil {
		panic(err)
	}
	return c
}

// replicationCQL renders the keyspace replication map.
func (o *Options) replicationCQL() string {
	if o.SimpleReplication > 0 {
		return fmt.Sprintf("{'class': 'SimpleStrategy', 'replication_factor': %d}", o.SimpleReplication)
	}
	dcs := make([]string, 0, len(o.Replication))
	for dc := range o.Replication {
		dcs = append(dcs, dc)
	}
	sort.Strings(dcs)
	var b strings.Builder
	b.WriteString("{'class': 'NetworkTopologyStrategy'")
	for _, dc := range dcs {
		fmt.Fprintf(&b, ", '%s': %d", dc, o.Replication[dc])
	}
	b.WriteString("}")
	return b.String()
}

// multiDC reports whether the keyspace spans more than one DC.
func (o *Options) multiDC() bool { return len(o.Replication) > 1 }
