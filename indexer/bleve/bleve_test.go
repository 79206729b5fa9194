package bleve

import (
	"path/filepath"
	"testing"

	"github.com/stoa-mail/stoa/indexer"
	"github.com/stoa-mail/stoa/indexer/indexertest"
)

func TestContract(t *testing.T) {
	indexertest.Run(t, indexertest.Harness{Open: func(t *testing.T) indexer.Backend {
		x, err := Open(filepath.Join(t.TempDir(), "index"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { x.Close() })
		return x
	}})
}
