package tailbuf

import (
	"strings"
	"testing"
)

func TestBuffer(t *testing.T) {
	b := &Buffer{Max: 8}
	b.Write([]byte("0123456789"))
	b.Write([]byte("ab"))
	if got := b.String(); got != "456789ab" {
		t.Errorf("String() = %q, want the last 8 bytes", got)
	}
	all := &Buffer{}
	all.Write([]byte(strings.Repeat("x", 100)))
	if len(all.String()) != 100 {
		t.Errorf("Max 0 kept %d of 100 bytes", len(all.String()))
	}
}
