package embedded_test

import (
	"testing"

	"github.com/stoa-mail/stoa/storage"
	"github.com/stoa-mail/stoa/storage/embedded"
	"github.com/stoa-mail/stoa/storage/storagetest"
)

type opened struct {
	*embedded.Engine
	dir string
}

func harness() storagetest.Harness {
	return storagetest.Harness{
		Open: func(t testing.TB) storage.Engine {
			dir := t.TempDir()
			e, err := embedded.Open(dir, embedded.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return opened{e, dir}
		},
		Reopen: func(t testing.TB, e storage.Engine) storage.Engine {
			o := e.(opened)
			o.Close()
			n, err := embedded.Open(o.dir, embedded.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return opened{n, o.dir}
		},
		Failpoints: []string{embedded.FPBeforeCommit, embedded.FPAfterCommit},
	}
}

func TestContract(t *testing.T) { storagetest.Run(t, harness()) }
