package luapattern

import (
	"context"
	"strings"
	"testing"

	"github.com/yuin/gopher-lua/pm"
)

// benchSubject is a log line like those flows search.
var benchSubject = strings.Repeat("INFO 2026-12-02 13:37:00 request served ", 20) + "SEVERE: deployment of app.war failed"

const benchPattern = "(%u+): deployment of ([%w%.]+) failed"

func BenchmarkFind(b *testing.B) {
	p, err := Compile(benchPattern)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		if m, _ := p.Find(ctx, benchSubject, 0); m == nil {
			b.Fatal("no match")
		}
	}
}

// BenchmarkFindGopherLua is gopher-lua's matcher on the same input, to
// compare with.
func BenchmarkFindGopherLua(b *testing.B) {
	subject := []byte(benchSubject)
	for b.Loop() {
		if mds, _ := pm.Find(benchPattern, subject, 0, 1); len(mds) == 0 {
			b.Fatal("no match")
		}
	}
}
