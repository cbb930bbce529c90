package client

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParseSince reads any --since. An accepted value is a time: the RFC
// 3339 time given, or exactly the duration given (Go's, or whole days)
// back from now, which is in the past.
func FuzzParseSince(f *testing.F) {
	for _, s := range []string{"24h", "7d", "1h30m", "0d", "-5d", "-1h", "0", "2026-12-01T08:00:00Z", "2026-12-01T08:00:00+09:00",
		"106751d", "106752d", "213504d", "99999999999d", "9223372036854775807ns", "d", " 7d", "7D", "1.5d", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseSince(s, now)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--since "+strconv.Quote(s)+": ") {
				t.Fatalf("--since %q: error %q does not name the flag and the value", s, err)
			}
			return
		}
		if at, err := time.Parse(time.RFC3339, s); err == nil && got.Equal(at) {
			return
		}
		if !got.Before(now) {
			t.Fatalf("--since %q = %s, not before now (%s)", s, got, now)
		}
		back := now.Sub(got)
		if d, err := time.ParseDuration(s); err == nil {
			if back != d {
				t.Fatalf("--since %q = %s back, want %s", s, back, d)
			}
			return
		}
		days, ok := strings.CutSuffix(s, "d")
		n, err := strconv.Atoi(days)
		if !ok || err != nil || n <= 0 {
			t.Fatalf("--since %q accepted as %s", s, got)
		}
		// Sub saturates at ±292 years: compare days as far as it can tell.
		if want := time.Duration(n) * 24 * time.Hour; want/(24*time.Hour) != time.Duration(n) || back != want {
			t.Fatalf("--since %q = %s back, want %d days", s, back, n)
		}
	})
}
