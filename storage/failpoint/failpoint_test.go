package failpoint

import (
	"errors"
	"testing"
)

func TestFromEnvAndHits(t *testing.T) {
	defer Reset()
	if err := Inject("x"); err != nil {
		t.Fatal("unarmed failpoint fired")
	}
	if err := FromEnv("a=error@3, b=error"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		if err := Inject("a"); err != nil {
			t.Fatalf("fired at hit %d", i)
		}
	}
	if err := Inject("a"); !errors.Is(err, ErrInjected) {
		t.Fatalf("hit 3: %v", err)
	}
	if err := Inject("b"); !errors.Is(err, ErrInjected) || Hits("b") != 1 {
		t.Fatalf("b: %v", err)
	}
	if FromEnv("c=explode") == nil || FromEnv("c=exit@0") == nil {
		t.Fatal("bad specs accepted")
	}
}
