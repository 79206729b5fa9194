package integration

import (
	"context"
	"fmt"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/embedded"
)

// TestCrashDuringDelivery kills the real server (os.Exit at a failpoint,
// nothing flushed) in the middle of a stream of SMTP deliveries, restarts
// it, and checks DESIGN §2.5: every message that got 250 is there, nothing
// is half-visible (counts exact, every email has its blob), and UIDs go on
// ascending.
func TestCrashDuringDelivery(t *testing.T) {
	for _, fp := range []string{storage.FPAfterBlob, storage.FPBeforeCommit, embedded.FPBeforeCommit, embedded.FPAfterCommit} {
		t.Run(fp, func(t *testing.T) {
			s := startSMTP(t, "STOA_FAILPOINTS="+fp+"=exit@8")
			var acked []string
			var died bool
			for i := 0; i < 20 && !died; i++ {
				id := fmt.Sprintf("<crash-%d-%d@remote.example>", i, time.Now().UnixNano())
				msg := "From: x@remote.example\r\nTo: alice@example.test\r\nSubject: crash " + fmt.Sprint(i) +
					"\r\nMessage-ID: " + id + "\r\n\r\nbody " + fmt.Sprint(i) + "\r\n"
				err := sendPlain(s.Addr["smtp"], "x@remote.example", "alice@example.test", msg)
				if err != nil {
					died = true // the server exited at the failpoint: this one was not acknowledged
					break
				}
				acked = append(acked, id)
			}
			if !died || !s.Wait(10*time.Second) {
				t.Fatalf("server did not die at failpoint %s", fp)
			}
			if len(acked) != 7 {
				t.Fatalf("%d messages acknowledged before the crash, want 7", len(acked))
			}
			// Restart without the failpoint; deliver one more.
			s.Restart("STOA_FAILPOINTS=")
			after := "<after-crash@remote.example>"
			if err := sendPlain(s.Addr["smtp"], "x@remote.example", "alice@example.test",
				"From: x@remote.example\r\nTo: alice@example.test\r\nSubject: after\r\nMessage-ID: "+after+"\r\n\r\nok\r\n"); err != nil {
				t.Fatalf("after restart: %v", err)
			}
			if out, err := s.Stoa("repair", "--fix=false"); err != nil || !strings.Contains(out, " 0 problems") {
				t.Fatalf("repair after crash: %v\n%s", err, out)
			}
			st := openStore(t, s)
			ctx := context.Background()
			a, err := st.AccountByAddress(ctx, "alice@example.test")
			if err != nil {
				t.Fatal(err)
			}
			in, err := st.MailboxByName(ctx, a.ID, "INBOX")
			if err != nil {
				t.Fatal(err)
			}
			es, err := st.Emails(ctx, a.ID, in.ID, 1, ^uint32(0), 0)
			if err != nil {
				t.Fatal(err)
			}
			have := map[string]uint32{}
			var prev uint32
			for _, e := range es {
				if e.UID <= prev {
					t.Fatalf("uid %d after %d", e.UID, prev)
				}
				prev = e.UID
				m, err := st.Meta(ctx, e.BlobID)
				if err != nil {
					t.Fatalf("uid %d has no metadata: %v", e.UID, err)
				}
				if _, err := st.Blob(ctx, e.BlobID); err != nil {
					t.Fatalf("uid %d has no blob: %v", e.UID, err)
				}
				have["<"+m.MessageID+">"] = e.UID
			}
			for _, id := range acked {
				if _, ok := have[id]; !ok {
					t.Errorf("acknowledged %s lost after crash at %s", id, fp)
				}
			}
			if u, ok := have[after]; !ok || u != prev {
				t.Errorf("message after restart: uid %d (ok=%v), last uid %d", u, ok, prev)
			}
			// 7 acknowledged + the one after restart, + the interrupted one if
			// its commit made it to disk (after-commit only).
			want := int64(8)
			if fp == embedded.FPAfterCommit {
				want = 9
			}
			if in.Messages != want || int64(len(es)) != want {
				t.Errorf("INBOX has %d (%d listed), want %d", in.Messages, len(es), want)
			}
		})
	}
}

// sendPlain sends one message over SMTP without STARTTLS (the MX port of a
// test server with a self-signed certificate) and returns an error unless
// the final reply is 250.
func sendPlain(addr, from, to, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.example"); err != nil {
		return err
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
