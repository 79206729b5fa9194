package config

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLayering(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "stoa.toml")
	os.WriteFile(file, []byte("[smtp]\nmx_listen = \"127.0.0.1:25\"\nmax_recipients = 7\n[imap]\nlisten = \"0.0.0.0:143\"\n"), 0o644)
	t.Setenv("STOA_SMTP_MAX_RECIPIENTS", "9")
	t.Setenv("STOA_CASSANDRA_REPLICATION", "dc1=3,dc2=2")
	t.Setenv("STOA_IMAP_POLL_INTERVAL", "5s")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fl := Flags(fs)
	if err := fs.Parse([]string{"--config", file, "--imap.listen", "127.0.0.1:1143", "--server.roles", "smtp,imap"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(fl)
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP.MXListen != "127.0.0.1:25" { // file
		t.Errorf("mx_listen %q", c.SMTP.MXListen)
	}
	if c.SMTP.MaxRecipients != 9 { // env beats file
		t.Errorf("max_recipients %d", c.SMTP.MaxRecipients)
	}
	if c.IMAP.Listen != "127.0.0.1:1143" { // flag beats file
		t.Errorf("imap listen %q", c.IMAP.Listen)
	}
	if c.Cassandra.Replication["dc2"] != 2 || c.IMAP.PollInterval.Duration != 5*time.Second {
		t.Errorf("env map/duration: %v %v", c.Cassandra.Replication, c.IMAP.PollInterval)
	}
	if len(c.Server.Roles) != 2 || c.HasRole("mta") {
		t.Errorf("roles %v", c.Server.Roles)
	}
	if c.SMTP.SubmissionListen != "127.0.0.1:2587" { // default
		t.Errorf("default lost: %q", c.SMTP.SubmissionListen)
	}
}

func TestUnknownKeyRefused(t *testing.T) {
	file := filepath.Join(t.TempDir(), "stoa.toml")
	os.WriteFile(file, []byte("[smtp]\nmx_lisen = \"x\"\n"), 0o644)
	if _, err := Load(&FlagSet{File: file, values: map[string]string{}}); err == nil {
		t.Fatal("typo in key accepted")
	}
}

func TestBadValues(t *testing.T) {
	t.Setenv("STOA_STORAGE_ENGINE", "mysql")
	if _, err := Load(nil); err == nil {
		t.Fatal("bad engine accepted")
	}
	t.Setenv("STOA_STORAGE_ENGINE", "embedded")
	t.Setenv("STOA_SMTP_MAX_RECIPIENTS", "many")
	if _, err := Load(nil); err == nil {
		t.Fatal("bad number accepted")
	}
}

func TestDefaultsNeedNoFile(t *testing.T) {
	c, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.Engine != "embedded" || c.IMAP.Listen != "127.0.0.1:2143" || c.HTTP.Listen != "127.0.0.1:8080" {
		t.Fatalf("defaults %+v", c)
	}
	if Example() == "" {
		t.Fatal("no example")
	}
}

// Extract refuses a mistyped section.key but leaves the command's values
// alone, dotted or not, and everything after --.
func TestExtractMistypedKeys(t *testing.T) {
	fl := Flags(flag.NewFlagSet("t", flag.ContinueOnError))
	if _, err := fl.Extract([]string{"--imap.lsiten", "x"}); err == nil {
		t.Error("--imap.lsiten accepted")
	}
	for _, args := range [][]string{
		{"--password", "-s3cr.et"},
		{"--password", "--s3cr.et"},
		{"--", "--imap.lsiten"},
		{"--account", "a@b.c", "file.mbox"},
	} {
		rest, err := fl.Extract(args)
		if err != nil || len(rest) != len(args) {
			t.Errorf("Extract(%q) = %q, %v", args, rest, err)
		}
	}
}
