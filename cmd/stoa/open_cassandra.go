package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stoa-mail/stoa/cmd/stoa/config"
	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/cassandra"
)

// The Cassandra engine: `storage.engine = "cassandra"`, settings in
// [cassandra] (docs/adr/0004-cassandra-schema.md, 0005-multi-dc.md).
// `stoa migrate` creates or upgrades the keyspace; `stoa serve` refuses to
// start on a missing or older schema unless cassandra.extra.auto_migrate
// is "true" (development).
func init() {
	engineOpeners["cassandra"] = func(ctx context.Context, cfg config.Config) (storage.Engine, error) {
		o, err := cassandraOptions(cfg)
		if err != nil {
			return nil, err
		}
		return cassandra.Open(ctx, o)
	}
	migrators["cassandra"] = func(ctx context.Context, cfg config.Config) error {
		o, err := cassandraOptions(cfg)
		if err != nil {
			return err
		}
		done, err := cassandra.Migrate(ctx, o)
		if err != nil {
			return err
		}
		if len(done) == 0 {
			fmt.Fprintf(out(ctx), "keyspace %s is at schema version %d; nothing to do\n", o.Keyspace, cassandra.SchemaVersion())
			return nil
		}
		fmt.Fprintf(out(ctx), "keyspace %s: applied migrations %v; schema version %d\n", o.Keyspace, done, cassandra.SchemaVersion())
		return nil
	}
	register(command{name: "cassandra", usage: "home ADDRESS | move-home ADDRESS DC | failover ADDRESS DC | stats (cassandra engine)", run: cassandraCmd})
}

// cassandraOptions maps [cassandra] to the engine's options. Driver knobs
// go in cassandra.extra: auto_migrate, remote_home (forward|refuse),
// default_home_dc, address_serial_consistency, dedupe_ttl, connect_timeout,
// num_conns, max_group, apply_concurrency, apply_grace.
func cassandraOptions(cfg config.Config) (cassandra.Options, error) {
	c := cfg.Cassandra
	o := cassandra.Options{
		Hosts: c.Hosts, Keyspace: c.Keyspace, LocalDC: c.LocalDC,
		Replication: c.Replication, SimpleReplication: c.SimpleReplication,
		Consistency: c.Consistency, SerialConsistency: c.SerialConsistency,
		Timeout: c.Timeout.Duration, Username: c.Username, Password: c.Password,
	}
	if o.SimpleReplication > 0 {
		o.Replication = nil
	}
	for k, v := range c.Extra {
		var err error
		switch k {
		case "auto_migrate":
			o.AutoMigrate, err = strconv.ParseBool(v)
		case "remote_home":
			o.RemoteHome = v
		case "default_home_dc":
			o.DefaultHomeDC = v
		case "address_serial_consistency":
			o.AddressSerialConsistency = v
		case "dedupe_ttl":
			o.DedupeTTL, err = time.ParseDuration(v)
		case "connect_timeout":
			o.ConnectTimeout, err = time.ParseDuration(v)
		case "apply_grace":
			o.ApplyGrace, err = time.ParseDuration(v)
		case "num_conns":
			o.NumConns, err = strconv.Atoi(v)
		case "max_group":
			o.MaxGroup, err = strconv.Atoi(v)
		case "apply_concurrency":
			o.ApplyConcurrency, err = strconv.Atoi(v)
		default:
			return o, fmt.Errorf("cassandra.extra: unknown knob %q", k)
		}
		if err != nil {
			return o, fmt.Errorf("cassandra.extra.%s: %w", k, err)
		}
	}
	return o, nil
}

// cassandraCmd runs the engine's operator commands: show, move or fail
// over an account's home DC (docs/adr/0005-multi-dc.md), print counters.
func cassandraCmd(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("cassandra", flag.ContinueOnError)
	pos, err := splitFlags(fs, args)
	if err != nil {
		return err
	}
	if cfg.Storage.Engine != "cassandra" {
		return fmt.Errorf("storage.engine is %q, not cassandra", cfg.Storage.Engine)
	}
	if len(pos) == 0 {
		return fmt.Errorf("usage: stoa cassandra home ADDRESS | move-home ADDRESS DC | failover ADDRESS DC | stats")
	}
	s, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	e := s.Engine().(*cassandra.Engine)
	if pos[0] == "stats" {
		fmt.Fprintf(out(ctx), "%+v\n", e.Stats())
		return nil
	}
	if len(pos) < 2 {
		return fmt.Errorf("usage: stoa cassandra %s ADDRESS [DC]", pos[0])
	}
	a, err := s.AccountByAddress(ctx, pos[1])
	if err != nil {
		return fmt.Errorf("%s: %w", pos[1], err)
	}
	switch pos[0] {
	case "home":
		h, err := e.Home(ctx, a.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(out(ctx), "%s (id %s): home dc %s\n", a.Login, a.ID, h)
		return nil
	case "move-home", "failover":
		if len(pos) < 3 {
			return fmt.Errorf("usage: stoa cassandra %s ADDRESS DC", pos[0])
		}
		dc := strings.TrimSpace(pos[2])
		if pos[0] == "failover" {
			err = e.Failover(ctx, a.ID, dc)
		} else {
			err = e.MoveHome(ctx, a.ID, dc)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out(ctx), "%s: home dc is now %s\n", a.Login, dc)
		return nil
	}
	return fmt.Errorf("stoa cassandra: unknown subcommand %q", pos[0])
}
