// Package config is Stoa's one configuration: a TOML file (ADR 0002) whose
// every key can be overridden by an environment variable STOA_<SECTION>_<KEY>
// and by a command-line flag --<section>.<key>. With no file at all the
// defaults run a complete development server on 127.0.0.1.
package config

import (
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Duration is a time.Duration written as "30s" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	d.Duration = v
	return err
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Config is the whole configuration.
type Config struct {
	Server    Server    `toml:"server"`
	Storage   Storage   `toml:"storage"`
	Cassandra Cassandra `toml:"cassandra"`
	TLS       TLS       `toml:"tls"`
	SMTP      SMTP      `toml:"smtp"`
	IMAP      IMAP      `toml:"imap"`
	HTTP      HTTP      `toml:"http"`
	Index     Index     `toml:"index"`
}

// Server is process-wide.
type Server struct {
	Hostname  string   `toml:"hostname" help:"name in greetings and Received headers"`
	DataDir   string   `toml:"data_dir" help:"embedded database, index and generated certificate"`
	Roles     []string `toml:"roles" help:"roles this process runs (smtp,imap,http,mta,indexer)"`
	LogFormat string   `toml:"log_format" help:"text or json"`
	LogLevel  string   `toml:"log_level" help:"debug, info, warn, error"`
}

// Storage selects the engine and the mail rules' limits.
type Storage struct {
	Engine          string   `toml:"engine" help:"embedded or cassandra"`
	Separator       string   `toml:"separator" help:"mailbox hierarchy separator"`
	PlusSeparator   string   `toml:"plus_separator" help:"sub-address separator (empty: none)"`
	MaxMessageSize  int64    `toml:"max_message_size" help:"bytes"`
	ChangeRetention uint64   `toml:"change_retention" help:"change records kept per account"`
	MaxMIMEDepth    int      `toml:"max_mime_depth"`
	MaxMIMEParts    int      `toml:"max_mime_parts"`
	MaxHeaders      int      `toml:"max_headers"`
	NoSync          bool     `toml:"no_sync" help:"DANGER: no fsync (benchmarks of logic only)"`
	ActivityFlush   Duration `toml:"activity_flush" help:"how often the accounts changed by this process are written to the activity feed the indexer reads"`
}

// Cassandra configures the CQL engine.
type Cassandra struct {
	Hosts             []string          `toml:"hosts"`
	Keyspace          string            `toml:"keyspace"`
	LocalDC           string            `toml:"local_dc"`
	Replication       map[string]int    `toml:"replication" help:"NetworkTopologyStrategy factor per DC"`
	SimpleReplication int               `toml:"simple_replication" help:"SimpleStrategy factor (single test node only)"`
	Consistency       string            `toml:"consistency"`
	SerialConsistency string            `toml:"serial_consistency"`
	Timeout           Duration          `toml:"timeout"`
	Username          string            `toml:"username"`
	Password          string            `toml:"password"`
	Extra             map[string]string `toml:"extra" help:"driver knobs"`
}

// TLS names certificate files; empty means a self-signed certificate
// generated at first start under data_dir.
type TLS struct {
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

// SMTP configures the SMTP listeners.
type SMTP struct {
	MXListen          string   `toml:"mx_listen"`
	SubmissionListen  string   `toml:"submission_listen"`
	SubmissionsListen string   `toml:"submissions_listen"`
	LMTPListen        string   `toml:"lmtp_listen"`
	MaxMessageSize    int64    `toml:"max_message_size"`
	MaxRecipients     int      `toml:"max_recipients"`
	MaxLineLength     int      `toml:"max_line_length"`
	MaxConns          int      `toml:"max_conns" help:"open SMTP connections per service (MX, submission 587+465, LMTP)"`
	MaxConnsPerIP     int      `toml:"max_conns_per_ip" help:"open SMTP connections per service from one IPv4 address or IPv6 /64 (not LMTP)"`
	ReadTimeout       Duration `toml:"read_timeout"`
	TLSHandshake      Duration `toml:"tls_handshake_timeout" help:"longest a TLS handshake may take (port 465 and STARTTLS)"`
	WriteTimeout      Duration `toml:"write_timeout"`
	AllowInsecureAuth bool     `toml:"allow_insecure_auth" help:"development only: AUTH without TLS"`
	RateLimitPerHour  int      `toml:"rate_limit_per_hour" help:"submitted messages per account per hour"`
	MaxHeaders        int      `toml:"max_headers" help:"top-level header fields per message"`
	MaxMIMEDepth      int      `toml:"max_mime_depth" help:"MIME nesting levels per message"`
	MaxMIMEParts      int      `toml:"max_mime_parts" help:"MIME parts per message"`
	AuthFailuresPerIP int      `toml:"auth_failures_per_ip" help:"failed AUTH per client address per 15 minutes"`
	AuthFailuresLogin int      `toml:"auth_failures_per_login" help:"failed AUTH per (client address, login) per 15 minutes"`
	DNSResolver       string   `toml:"dns_resolver" help:"host:port of the DNS server for SPF/DKIM/DMARC; empty: system"`
	DNSTimeout        Duration `toml:"dns_timeout" help:"time budget of the sender checks per message"`
	DNSCacheTTL       Duration `toml:"dns_cache_ttl" help:"keep DNS answers in memory this long (0: no cache)"`
	SkipSenderAuth    bool     `toml:"skip_sender_auth" help:"no SPF/DKIM/DMARC checks on MX (tests, benchmarks)"`
}

// IMAP configures the IMAP listeners.
type IMAP struct {
	Listen                string   `toml:"listen"`
	TLSListen             string   `toml:"tls_listen"`
	AllowInsecureAuth     bool     `toml:"allow_insecure_auth" help:"development only: LOGIN without TLS"`
	MaxLiteral            int64    `toml:"max_literal"`
	MaxLiteralBeforeLogin int64    `toml:"max_literal_before_login" help:"bytes of one literal before authentication (LOGIN, AUTHENTICATE)"`
	MaxLineLength         int      `toml:"max_line_length"`
	MaxConns              int      `toml:"max_conns" help:"open IMAP connections in all (143 and 993)"`
	MaxConnsPerIP         int      `toml:"max_conns_per_ip" help:"open IMAP connections from one IPv4 address or IPv6 /64"`
	IdleTimeout           Duration `toml:"idle_timeout"`
	TLSHandshakeTimeout   Duration `toml:"tls_handshake_timeout" help:"longest a TLS handshake may take (port 993 and STARTTLS)"`
	CommandTimeout        Duration `toml:"command_timeout" help:"longest one command (but IDLE) may work, e.g. a SEARCH scan of a huge mailbox; then NO [LIMIT]"`
	PollInterval          Duration `toml:"poll_interval" help:"how often sessions look for changes made by other nodes"`
	IdleKeepAlive         Duration `toml:"idle_keepalive" help:"untagged OK sent during IDLE (default 2m)"`
	MaxAuthFailures       int      `toml:"max_auth_failures" help:"failed logins before disconnect (default 3)"`
	AuthFailureDelay      Duration `toml:"auth_failure_delay" help:"delay after a failed login, doubled each time (default 1s)"`
	MaxSearchKeyLen       int      `toml:"max_search_key_length" help:"bytes of one SEARCH text key (BODY, TEXT…); longer: NO [LIMIT]"`
	MaxSearchTextKeys     int      `toml:"max_search_text_keys" help:"text keys in one SEARCH; more: NO [LIMIT]"`
	MaxSearchTerms        int      `toml:"max_search_terms" help:"words in all text keys of one SEARCH; more: NO [LIMIT]"`
}

// HTTP configures JMAP, DAV and the admin endpoints.
type HTTP struct {
	Listen      string `toml:"listen"`
	AdminListen string `toml:"admin_listen" help:"healthz, readyz, metrics; empty: same as listen"`
}

// Index configures full-text search (ADR 0008).
type Index struct {
	Backend       string   `toml:"backend" help:"bleve, opensearch or none (search scans messages)"`
	OpenSearchURL []string `toml:"opensearch_url"`
	IndexPrefix   string   `toml:"index_prefix" help:"OpenSearch names: <prefix>-mail-read, -write, -v1…"`
	BatchSize     int      `toml:"batch_size" help:"change records per index write"`
	FlushInterval Duration `toml:"flush_interval" help:"OpenSearch bulk flush interval: an indexing batch waits for it twice (documents, then checkpoint), so it adds to the delivery-to-searchable lag"`
	PollInterval  Duration `toml:"poll_interval" help:"how often the indexer reads the store's activity feed for changes made by other processes"`
	FeedOverlap   Duration `toml:"feed_overlap" help:"how far back the indexer re-reads the activity feed for notes written late (another data centre) or by a writer whose clock is behind; clocks must agree closer than this"`
	SweepInterval Duration `toml:"sweep_interval" help:"how often the indexer compares every account with its checkpoint (backstop for activity notes lost in a crash; reads every account's state)"`
	Workers       int      `toml:"workers" help:"accounts indexed at once"`
	SearchTimeout Duration `toml:"search_timeout" help:"longest a search may take in the index; then IMAP scans the mailbox instead"`
	Shards        int      `toml:"shards" help:"OpenSearch primary shards of a new index"`
	Replicas      int      `toml:"replicas" help:"OpenSearch replicas of a new index"`
}

// Default returns the zero-configuration development defaults.
func Default() Config {
	return Config{
		Server: Server{Hostname: "localhost", DataDir: "./data", Roles: []string{"smtp", "imap", "http", "mta", "indexer"}, LogFormat: "text", LogLevel: "info"},
		Storage: Storage{Engine: "embedded", Separator: "/", PlusSeparator: "+", MaxMessageSize: 50 << 20, ChangeRetention: 200_000, MaxMIMEDepth: 20, MaxMIMEParts: 1000, MaxHeaders: 1000,
			ActivityFlush: Duration{100 * time.Millisecond}},
		Cassandra: Cassandra{Hosts: []string{"127.0.0.1:9042"}, Keyspace: "stoa", LocalDC: "dc1",
			Replication: map[string]int{"dc1": 1}, Consistency: "LOCAL_QUORUM", SerialConsistency: "LOCAL_SERIAL",
			Timeout: Duration{5 * time.Second}},
		SMTP: SMTP{MXListen: "127.0.0.1:2525", SubmissionListen: "127.0.0.1:2587", SubmissionsListen: "127.0.0.1:2465",
			LMTPListen: "127.0.0.1:2424", MaxMessageSize: 50 << 20, MaxRecipients: 100, MaxLineLength: 4096,
			MaxConns: 10000, MaxConnsPerIP: 50, ReadTimeout: Duration{5 * time.Minute}, TLSHandshake: Duration{30 * time.Second}, WriteTimeout: Duration{5 * time.Minute}, RateLimitPerHour: 1000,
			MaxHeaders: 1000, MaxMIMEDepth: 20, MaxMIMEParts: 1000, AuthFailuresPerIP: 30, AuthFailuresLogin: 5,
			DNSTimeout: Duration{10 * time.Second}, DNSCacheTTL: Duration{time.Minute}},
		IMAP: IMAP{Listen: "127.0.0.1:2143", TLSListen: "127.0.0.1:2993", MaxLiteral: 50 << 20, MaxLiteralBeforeLogin: 64 << 10, MaxLineLength: 64 << 10,
			MaxConns: 20000, MaxConnsPerIP: 200, IdleTimeout: Duration{30 * time.Minute}, CommandTimeout: Duration{10 * time.Minute}, TLSHandshakeTimeout: Duration{30 * time.Second}, PollInterval: Duration{2 * time.Second},
			MaxAuthFailures: 3, AuthFailureDelay: Duration{time.Second}, IdleKeepAlive: Duration{2 * time.Minute},
			MaxSearchKeyLen: 1 << 10, MaxSearchTextKeys: 64, MaxSearchTerms: 256},
		HTTP: HTTP{Listen: "127.0.0.1:8080"},
		Index: Index{Backend: "bleve", OpenSearchURL: []string{"http://127.0.0.1:9200"}, IndexPrefix: "stoa", BatchSize: 500,
			FlushInterval: Duration{25 * time.Millisecond}, PollInterval: Duration{250 * time.Millisecond}, SweepInterval: Duration{10 * time.Minute}, FeedOverlap: Duration{30 * time.Second},
			Workers: 8, Shards: 1, SearchTimeout: Duration{30 * time.Second}},
	}
}

// field is one configuration key.
type field struct {
	key  string // section.key
	v    reflect.Value
	help string
}

func fields(c *Config) []field {
	var out []field
	rv := reflect.ValueOf(c).Elem()
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		sec := rt.Field(i).Tag.Get("toml")
		sv, st := rv.Field(i), rt.Field(i).Type
		for j := 0; j < st.NumField(); j++ {
			f := st.Field(j)
			out = append(out, field{key: sec + "." + f.Tag.Get("toml"), v: sv.Field(j), help: f.Tag.Get("help")})
		}
	}
	return out
}

// EnvName is the environment variable that overrides key ("smtp.mx_listen"
// → STOA_SMTP_MX_LISTEN).
func EnvName(key string) string {
	return "STOA_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

// set parses s into v: strings, numbers, bools, durations, lists
// (comma-separated) and maps ("dc1=3,dc2=3").
func set(v reflect.Value, s string) error {
	switch x := v.Addr().Interface().(type) {
	case *Duration:
		return x.UnmarshalText([]byte(s))
	case *[]string:
		*x = nil
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				*x = append(*x, p)
			}
		}
		return nil
	case *map[string]int:
		m := map[string]int{}
		for _, p := range strings.Split(s, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
			n, err := strconv.Atoi(val)
			if !ok || err != nil {
				return fmt.Errorf("want name=number, got %q", p)
			}
			m[k] = n
		}
		*x = m
		return nil
	case *map[string]string:
		m := map[string]string{}
		for _, p := range strings.Split(s, ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
			m[k] = val
		}
		*x = m
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return err
		}
		v.SetUint(n)
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

type flagValue struct {
	v   reflect.Value
	set map[string]string
	key string
}

func (f *flagValue) String() string     { return "" }
func (f *flagValue) Set(s string) error { f.set[f.key] = s; return nil }

// Flags registers --section.key flags on fs. Call Load after fs.Parse.
func Flags(fs *flag.FlagSet) *FlagSet {
	fl := &FlagSet{values: map[string]string{}}
	fs.StringVar(&fl.File, "config", os.Getenv("STOA_CONFIG"), "configuration file (TOML); env STOA_CONFIG")
	d := Default()
	for _, f := range fields(&d) {
		help := f.help
		if help != "" {
			help += "; "
		}
		fs.Var(&flagValue{v: f.v, set: fl.values, key: f.key}, f.key, help+"env "+EnvName(f.key))
	}
	return fl
}

// FlagSet holds the flags seen on the command line.
type FlagSet struct {
	File   string
	values map[string]string
}

// Load builds the configuration: defaults, then the file (if any), then
// environment variables, then flags.
func Load(fl *FlagSet) (Config, error) {
	c := Default()
	if fl != nil && fl.File != "" {
		md, err := toml.DecodeFile(fl.File, &c)
		if err != nil {
			return c, fmt.Errorf("config %s: %w", fl.File, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			var keys []string
			for _, k := range und {
				keys = append(keys, k.String())
			}
			sort.Strings(keys)
			return c, fmt.Errorf("config %s: unknown keys %s", fl.File, strings.Join(keys, ", "))
		}
	}
	for _, f := range fields(&c) {
		if s, ok := os.LookupEnv(EnvName(f.key)); ok {
			if err := set(f.v, s); err != nil {
				return c, fmt.Errorf("%s: %w", EnvName(f.key), err)
			}
		}
	}
	if fl != nil {
		for _, f := range fields(&c) {
			if s, ok := fl.values[f.key]; ok {
				if err := set(f.v, s); err != nil {
					return c, fmt.Errorf("--%s: %w", f.key, err)
				}
			}
		}
	}
	return c, c.Validate()
}

// Validate checks values that would fail later in a confusing way.
func (c *Config) Validate() error {
	switch c.Storage.Engine {
	case "embedded", "cassandra":
	default:
		return fmt.Errorf("storage.engine: %q is not embedded or cassandra", c.Storage.Engine)
	}
	switch c.Index.Backend {
	case "bleve", "opensearch", "none":
	default:
		return fmt.Errorf("index.backend: %q is not bleve, opensearch or none", c.Index.Backend)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return fmt.Errorf("tls: cert_file and key_file go together")
	}
	if c.Storage.Separator == "" || len(c.Storage.Separator) != 1 {
		return fmt.Errorf("storage.separator must be one character")
	}
	return nil
}

// HasRole reports whether the process runs role.
func (c *Config) HasRole(role string) bool {
	for _, r := range c.Server.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// Example returns the defaults as a TOML document.
func Example() string {
	var b strings.Builder
	d := Default()
	_ = toml.NewEncoder(&b).Encode(d)
	return b.String()
}

// Extract takes the configuration flags (--section.key V, --section.key=V,
// --config F) out of args and returns the rest in order.
func (fl *FlagSet) Extract(args []string) ([]string, error) {
	keys := map[string]bool{}
	d := Default()
	for _, f := range fields(&d) {
		keys[f.key] = true
	}
	sections := map[string]bool{}
	for k := range keys {
		sec, _, _ := strings.Cut(k, ".")
		sections[sec] = true
	}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" { // the rest is the command's, unread
			return append(rest, args[i:]...), nil
		}
		name := strings.TrimLeft(a, "-")
		if !strings.HasPrefix(a, "-") || name == "" {
			rest = append(rest, a)
			continue
		}
		name, val, hasVal := strings.Cut(name, "=")
		if !keys[name] && name != "config" {
			// A section.key of a known section that names no key is a
			// mistyped key (no command flag has a dot); anything else
			// (a value such as a password) is the command's.
			if sec, key, ok := strings.Cut(name, "."); ok && sections[sec] && key != "" && strings.Trim(key, "abcdefghijklmnopqrstuvwxyz_") == "" {
				return nil, fmt.Errorf("unknown configuration key --%s ('stoa help config' lists them)", name)
			}
			rest = append(rest, a)
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("flag --%s needs a value", name)
			}
			i++
			val = args[i]
		}
		if name == "config" {
			fl.File = val
		} else {
			fl.values[name] = val
		}
	}
	return rest, nil
}

// Write encodes c as TOML.
func Write(w io.Writer, c Config) error { return toml.NewEncoder(w).Encode(c) }
