package smtp

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stoa-mail/stoa/frontend/smtp/testdns"
)

// BenchmarkMXParallel drives 20 sessions over the MX port of an in-process
// server (embedded store with fsync) with 4 KiB messages; run with
// -cpuprofile to see where the time goes. `make bench-smtp` is the
// end-to-end figure.
func BenchmarkMXParallel(b *testing.B) {
	dns, err := testdns.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer dns.Close()
	dns.SetTXT("remote.example", "v=spf1 ip4:127.0.0.1 -all")
	t := &testing.T{}
	e := newEnvSync(b, t, Config{DNSCacheTTL: time.Minute}, Options{Resolver: ResolverAt(dns.Addr)})
	body := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345678\r\n", 56)
	msg := simpleMsg + body
	const sessions = 20
	var wg sync.WaitGroup
	n := b.N
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for s := 0; s < sessions; s++ {
		count := n / sessions
		if s < n%sessions {
			count++
		}
		wg.Add(1)
		go func(s, count int) {
			defer wg.Done()
			c := dialFrom(t, e.addr["mx"], "")
			c.cmd("EHLO client.remote.example", "250")
			rcpt := "alice@local.test"
			if s%2 == 1 {
				rcpt = "bob@local.test"
			}
			for i := 0; i < count; i++ {
				if r := c.transaction("carol@remote.example", []string{rcpt}, msg); !strings.HasPrefix(r, "250") {
					panic(fmt.Sprint(r))
				}
			}
		}(s, count)
	}
	wg.Wait()
}
